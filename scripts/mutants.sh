#!/usr/bin/env bash
# Mutation check of the loom models: applies each mutation below, one at a
# time, to a private copy of the repository, runs the loom models at
# preemption bound 2, and counts a mutant as killed when a model fails (or
# the run exceeds its time limit: loom reports most lost wakeups as a
# deadlock, but a livelock would just run on). Prints killed / total and
# the survivors. Never touches the working tree it is started from.
#
#   scripts/mutants.sh                 # every mutant
#   scripts/mutants.sh 3 7             # only mutants 3 and 7 (1-based)
#
# Environment: MUTANTS_DIR (private copy, default /tmp/gilock-mutants-$USER),
# CARGO_TARGET_DIR (default $MUTANTS_DIR-target), MUTANT_TIMEOUT (seconds
# per mutant's model run, default 300), LOOM_MAX_PREEMPTIONS (default 2).
# Needs perl (for literal search and replace).
set -uo pipefail

src="$(cd "$(dirname "$0")/.." && pwd)"
work="${MUTANTS_DIR:-/tmp/gilock-mutants-${USER:-me}}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$work-target}"
limit="${MUTANT_TIMEOUT:-300}"
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-2}"
export RUSTFLAGS="--cfg loom"

# One mutant per entry: file, the exact text to replace (it must occur once),
# its replacement, the loom test files to run ("all" for every one), and
# what the mutation breaks. Fields are separated by " ~~ "; "\n" in a text
# stands for a newline.
mutants=(
  "src/fair_mutex.rs ~~ .compare_exchange_weak(0, LOCKED, Ordering::Acquire, Ordering::Relaxed) ~~ .compare_exchange_weak(0, LOCKED, Ordering::Relaxed, Ordering::Relaxed) ~~ fair_mutex ~~ lock fast path without Acquire"
  "src/fair_mutex.rs ~~ if state & (LOCKED | PARKED) != LOCKED | PARKED { ~~ if false { ~~ fair_mutex ~~ park although the mutex was released meanwhile"
  "src/fair_mutex.rs ~~ if state & PARKED != 0 {\n            self.wake_to_retry(); ~~ if false {\n            self.wake_to_retry(); ~~ fair_mutex ~~ plain unlock wakes nobody"
  "src/fair_mutex.rs ~~ if self.only_overdue && token != TOKEN_OVERDUE { ~~ if false { ~~ fair_mutex ~~ handoff on a drop request goes to the first waiter, overdue or not"
  "src/fair_mutex.rs ~~ if was_last {\n                    word.fetch_and ~~ if true {\n                    word.fetch_and ~~ fair_mutex ~~ timed-out waiter clears PARKED though others remain"
  "src/lock.rs ~~ self.held.swap(false, Ordering::Acquire) ~~ self.held.load(Ordering::Acquire) ~~ lock ~~ a release claims without clearing held"
  "src/rlock.rs ~~ if left == 0 { ~~ if left <= 1 { ~~ rlock condition ~~ the lock is released one level early"
  "src/rlock.rs ~~ *count = 0 });\n        self.owner.store(NO_OWNER, Ordering::Relaxed); ~~ *count = 0 }); ~~ rlock condition ~~ a condition wait keeps the owner id while the lock is free"
  "src/condition.rs ~~ target.release(state); ~~ let _ = state; ~~ condition ~~ a condition wait never releases the lock"
  "src/condition.rs ~~ left -= 1;\n                FilterOp::Unpark ~~ FilterOp::Unpark ~~ condition ~~ notify(n) wakes everyone"
  "src/condition.rs ~~ ParkResult::Unparked(_) => WaitEnd::Notified, ~~ ParkResult::Unparked(_) => WaitEnd::TimedOut, ~~ condition ~~ notified waits report a timeout"
  "src/gil/mod.rs ~~ if self.state.load(Ordering::Acquire) != LOCKED | PARKED { ~~ if false { ~~ gil ~~ a Gil waiter parks although the Gil was released meanwhile"
  "src/gil/mod.rs ~~ if best[rank].is_none_or(|(t, _)| ticket < t) { ~~ if best[rank].is_none_or(|(t, _)| ticket > t) { ~~ gil ~~ the Gil goes to the newest waiter instead of the oldest"
  "src/gil/mod.rs ~~ } else if self.gil.has_waiters() { ~~ } else if false { ~~ gil ~~ a checkpoint never performs the forced switch"
  "src/gil/thread_state.rs ~~ self.breaker.set(INTERRUPT, Ordering::SeqCst); ~~ let _ = INTERRUPT; ~~ gil condition ~~ interrupt sets no flag"
)

mkdir -p "$work"
echo "copying $src to $work"
(cd "$src" && tar --exclude='./target*' --exclude='./.git' -cf - .) | (cd "$work" && tar xf -)
pristine="$work.pristine"
rm -rf "$pristine" && mkdir -p "$pristine"
(cd "$work" && tar -cf - src) | (cd "$pristine" && tar xf -)

selected=("$@")
killed=0
total=0
survivors=()
for i in "${!mutants[@]}"; do
  n=$((i + 1))
  if [ ${#selected[@]} -gt 0 ] && [[ ! " ${selected[*]} " == *" $n "* ]]; then continue; fi
  IFS=$'\x01' read -r file old new tests what <<<"$(printf '%s' "${mutants[$i]}" | sed 's/ ~~ /\x01/g; s/ ~~$/\x01/')"
  rm -rf "$work/src" && cp -a "$pristine/src" "$work/src"
  if ! OLD="$old" NEW="$new" perl -0pi -e '
      my ($o, $r) = ($ENV{OLD}, $ENV{NEW});
      s/\\n/\n/g for $o, $r;
      my $c = () = /\Q$o\E/g;
      die "mutant text found $c times, expected once\n" unless $c == 1;
      s/\Q$o\E/$r/;' "$work/$file"; then
    echo "mutant $n: SKIPPED (text not found in $file: the code changed; update the list)"
    continue
  fi
  total=$((total + 1))
  args=()
  if [ "$tests" != "all" ]; then for t in $tests; do args+=(--test "$t"); done; fi
  start=$SECONDS
  (cd "$work" && timeout "$limit" cargo test -q -p loom-tests --release "${args[@]}" -- --test-threads=1) \
      >"$work.mutant-$n.log" 2>&1
  rc=$?
  took=$((SECONDS - start))
  if grep -q "^error\[E\|^error: could not compile" "$work.mutant-$n.log"; then
    echo "mutant $n: does not compile ($what); see $work.mutant-$n.log"
    total=$((total - 1))
    continue
  fi
  if [ $rc -ne 0 ]; then
    killed=$((killed + 1))
    why=$(grep -m1 -E "panicked at|deadlock|Causality|timed out" "$work.mutant-$n.log" | cut -c1-120)
    [ $rc -eq 124 ] && why="no result within ${limit}s"
    echo "mutant $n: killed in ${took}s ($what): $why"
  else
    survivors+=("$n: $file: $what")
    echo "mutant $n: SURVIVED in ${took}s ($what)"
  fi
done
rm -rf "$work/src" && cp -a "$pristine/src" "$work/src"
echo "killed $killed / $total"
for s in "${survivors[@]}"; do echo "survivor $s"; done
