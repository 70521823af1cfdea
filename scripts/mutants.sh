#!/usr/bin/env bash
# Mutation testing of src/ with cargo-mutants, where "the tests" are the
# std build's unit and integration tests *and* the loom models.
#
#   scripts/mutants.sh [cargo-mutants options]
#   scripts/mutants.sh --file src/event.rs          # one file
#   MUTANTS_SUITE=full scripts/mutants.sh --iterate  # the survivors, every test
#
# cargo-mutants copies the tree to a scratch directory, applies one mutant at
# a time and runs `cargo test` there. It calls cargo through $CARGO, so this
# script puts itself there: a `cargo test` from cargo-mutants becomes
#   1. the std tests (debug build; the doctests are left out), then
#   2. the loom models at preemption bound 2 (release, `--cfg loom`, their
#      own target directory),
# stopping at the first failure. Every other cargo command (metadata, ...)
# goes to cargo unchanged. Which tests: with MUTANTS_SUITE=mapped (the
# default) those that concern the mutated file (the table below), with
# MUTANTS_SUITE=full all of them. A mapped run is several times faster; its
# survivors are then run again with the full suite (`--iterate` skips what
# a previous run in the same output directory caught).
#
# Needs cargo-mutants (`cargo install cargo-mutants`). The configuration
# (files left out, and why; timeouts) is .cargo/mutants.toml. MUTANTS.md has
# the results.
set -euo pipefail

if [ -z "${GILOCK_MUTANTS_SHIM:-}" ]; then
    here="$(cd "$(dirname "$0")" && pwd)"
    export GILOCK_MUTANTS_SHIM=1
    export GILOCK_REAL_CARGO="${CARGO:-$(command -v cargo)}"
    export MUTANTS_SUITE="${MUTANTS_SUITE:-mapped}"
    export CARGO="$here/mutants.sh"
    cd "$here/.."
    exec cargo-mutants mutants "$@"
fi

cargo="$GILOCK_REAL_CARGO"
if [ "${1:-}" != test ]; then
    exec "$cargo" "$@"
fi

# cargo-mutants marks the line it changed; at most one file carries it.
mutated="$(grep -rl --include='*.rs' 'changed by cargo-mutants' src 2>/dev/null | head -n1 || true)"

# The tests that concern each file: std integration tests, then loom
# models. "lib" is the library's unit tests.
case "$mutated" in
    src/barrier.rs) std="lib barrier attached"; loom="barrier attached" ;;
    src/condition.rs | src/condvar.rs)
        std="lib condition attached parking_lot_suite"
        loom="condition attached statics user_bounded_queue" ;;
    src/event.rs) std="lib event attached"; loom="event attached" ;;
    src/fair_mutex.rs | src/mutex.rs)
        std="lib fair_mutex lock condition parking_lot_suite"
        loom="fair_mutex spinning statics lock rlock condition attached reentrant_mutex" ;;
    src/fair_mutex_ext.rs) std="lib fair_mutex"; loom="" ;;
    src/lock.rs) std="lib lock condition attached edges"; loom="lock condition attached" ;;
    src/rlock.rs | src/reentrant_mutex.rs | src/thread_id.rs)
        std="lib rlock reentrant_mutex condition attached parking_lot_suite edges"
        loom="rlock reentrant_mutex condition attached user_bounded_queue" ;;
    src/semaphore.rs) std="lib semaphore attached edges"; loom="semaphore attached" ;;
    src/wait.rs | src/gil/waits.rs | src/gil/attached.rs)
        std="lib attached gil_cell semaphore event barrier condition lock rlock"
        loom="attached semaphore event barrier condition" ;;
    src/gil/cell.rs | src/gil/borrows.rs) std="lib gil_cell interpreter_core"; loom="gil_cell" ;;
    src/gil/trace.rs) std="lib trace"; loom="" ;;
    src/gil/stats.rs) std="lib gil trace hooks thread_exit"; loom="gil" ;;
    src/gil/hooks.rs) std="lib hooks trace gil edges"; loom="hooks" ;;
    src/gil/registry.rs)
        std="lib gil thread_exit hooks gil_cell bad_input edges"; loom="gil gil_cell hooks" ;;
    src/gil/*)
        std="lib gil gil_cell attached hooks trace thread_exit bad_input panic_safety convoy interpreter_core edges"
        loom="gil gil_scheduling scheduling gil_cell attached hooks condition spinning" ;;
    src/signal.rs) std="lib signal"; loom="" ;;
    src/error.rs) std="lib bad_input lock rlock semaphore barrier attached condition"; loom="" ;;
    src/interval.rs) std="lib fair_mutex gil"; loom="fair_mutex gil clock" ;;
    src/sync.rs) std="lib fair_mutex gil semaphore"; loom="spinning fair_mutex statics gil" ;;
    src/park/*)
        std="lib fair_mutex lock gil condition semaphore event barrier panic_safety trace"
        loom="clock fair_mutex gil lock condition scheduling" ;;
    src/lib.rs) std="lib"; loom="clock spinning" ;;
    *) MUTANTS_SUITE=full ;;
esac
if [ "$MUTANTS_SUITE" = full ]; then
    std="all"
    loom="all"
fi

# --test X for each name, or nothing for "all".
targets() {
    local name
    [ "$1" = all ] && return
    for name in $1; do
        if [ "$name" = lib ]; then echo --lib; else printf '%s\n' --test "$name"; fi
    done
}

# The std tests, as cargo-mutants asked (its --package, --verbose, ...).
shift
no_run=false
args=()
for a in "$@"; do
    if [ "$a" = --no-run ]; then no_run=true; else args+=("$a"); fi
done
std_targets=()
if [ "$std" = all ]; then std_targets=(--lib --tests); else
    mapfile -t std_targets < <(targets "$std")
fi
if $no_run; then
    # cargo-mutants' build phase: only the std tests. The loom build is part
    # of the test phase, so a mutant that the std tests kill costs no loom
    # build.
    exec "$cargo" test --no-run "${args[@]}" "${std_targets[@]}"
fi
"$cargo" test "${args[@]}" "${std_targets[@]}"
[ -z "$loom" ] && exit 0

# The library's own loom tests (the model parking lot's contract checks, in
# child processes) for the park layer, and in the full suite.
if [ "$loom" = all ] || [[ "$mutated" == src/park/* ]]; then
    RUSTFLAGS="--cfg loom" CARGO_PROFILE_RELEASE_INCREMENTAL=true \
        "$cargo" test -p gilock --lib --release --target-dir target/loom
fi
loom_targets=()
[ "$loom" != all ] && mapfile -t loom_targets < <(targets "$loom")
# Incremental: a mutant changes one function, and a release build of the
# crate from scratch is most of a mutant's build time.
RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS="${MUTANTS_LOOM_BOUND:-2}" \
    CARGO_PROFILE_RELEASE_INCREMENTAL=true \
    exec "$cargo" test -p loom-tests --release --target-dir target/loom \
    "${loom_targets[@]}"
