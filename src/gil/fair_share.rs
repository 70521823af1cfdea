//! Fair shares of the Gil under `SwitchPolicy::Interactive`: a virtual
//! runtime per thread, as Linux's CFS keeps per task, and the three rules
//! built on it.
//!
//! # Virtual runtime
//!
//! A thread's `vruntime` is the time it held the Gil while other threads
//! waited for it, in nanoseconds. It grows only on slow paths: a releaser
//! that finds waiters charges itself the time since its contended hold
//! began (`hold_start`), and an uncontended hold costs nothing and is never
//! timed (the fast paths read no clock); a holder that waited is charged
//! from when it got to run, if that came after the handoff (a parked heir's
//! wake-up is not its Gil time). The Gil keeps `min_vruntime`, the
//! lowest vruntime among the waiters at the latest handoff, which only
//! grows.
//!
//! A thread that was away has a stale, low vruntime, so it is *placed* when
//! it starts waiting:
//! - a fresh acquisition starts from at least `min_vruntime`, as a new
//!   task does (one that took the Gil uncontended is placed so when the
//!   first waiter finds it);
//! - a thread back from a voluntary release (`detach`, a wait) starts from
//!   at least `min_vruntime − bonus` (one switch interval): the credit of a
//!   sleeper, bounded, so that sleeping banks at most one interval;
//! - a thread switched out at a checkpoint keeps its vruntime (it was just
//!   charged).
//!
//! # The rules
//!
//! 1. **Preemption.** A waiter asks the holder to drop the Gil once its
//!    vruntime is at least a *granularity* (half an interval) below the
//!    holder's current one (the holder's vruntime plus its running hold).
//!    Two CPU-bound threads therefore alternate every interval, as under
//!    CPython; a thread back from I/O, placed one interval below
//!    `min_vruntime`, asks at once, whoever holds the Gil (its sleeper credit
//!    exceeds the granularity). A waiter that does not qualify yet parks
//!    until the moment it would.
//! 2. **Heir.** A release hands the Gil to the waiter with the lowest
//!    vruntime (ties: the one that came first), with two exceptions within
//!    a granularity of it: the *lender* (see 3), and then a waiter that is
//!    awake, spinning or between two parks, rather than parked: a parked
//!    heir needs a wake-up, tens of microseconds in which nobody holds the
//!    Gil, so threads that hold it for microseconds must not pay one per
//!    hold. A parked waiter is woken when it is owed the Gil; and when a
//!    release hands the Gil to a thread back from a voluntary release, the
//!    next such thread that is parked is woken ahead of its turn, into a
//!    slot, so that its wake-up overlaps the new holder's microseconds
//!    instead of following them (one at a time: more spinners would take
//!    the cores the holder and the threads away from the Gil need).
//! 3. **Loans.** A holder switched out for a thread back from a voluntary
//!    release has *lent* the Gil: it becomes the lender, and at the
//!    borrower's next release the Gil goes back to it, unless another waiter
//!    is a granularity below the lender (that waiter is owed the Gil more
//!    than the lender is). The lender spins for the return instead of
//!    parking, so an interactive thread's round trip costs no wake-up and
//!    only one CPU-bound thread is ever runnable: a second one, parked, is
//!    not woken to compete for the cores the I/O path needs.
//!
//! # The bound
//!
//! While a thread waits, its vruntime is fixed and `min_vruntime` cannot
//! pass it (it is one of the waiters). Every other thread starts each wait
//! at or above `min_vruntime − bonus`, and rules 1 and 2 stop its run once it
//! is a granularity above the waiter's, so while a thread waits every other
//! thread holds the Gil for at most about `bonus + 2 × granularity` (two
//! intervals) plus the gap between two of its checkpoints, and then the
//! waiter, lowest, is the heir. That is max-min fairness: threads that hold
//! the Gil briefly get all the time they ask for, and the rest is shared
//! equally among the others, in slices of about one interval.

use super::thread_state::ThreadState;
use super::{Gil, PRIORITY};
use crate::park::Instant;
use crate::sync::{Ordering, UnsafeCell, const_fn};
use crate::wait::TOKEN_LOW;
use core::time::Duration;

/// Where every Gil's `min_vruntime` starts: far enough above zero that
/// `min_vruntime − bonus` never saturates, whatever the interval (a new
/// thread's vruntime, zero, is then always below it and placement raises
/// it).
pub(super) const ORIGIN: u64 = 1 << 42;

/// How the thread came to wait, for its placement.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Arrival {
    /// A fresh acquisition.
    Fresh,
    /// Back from a voluntary release (`detach`, a wait).
    Returning,
    /// Switched out at a checkpoint or by `yield_now`: charged just now.
    Preempted,
    /// Switched out for a loan (rule 3): charged just now, and the Gil is
    /// expected back soon.
    Lent,
}

/// Half the switch interval: how far below the holder a waiter must be to
/// preempt it (rule 1). Two CPU-bound threads then hold the Gil one
/// interval each in turn.
pub(super) fn granularity(interval: Duration) -> u64 {
    nanos(interval) / 2
}

/// One switch interval: the most credit a thread back from a voluntary
/// release gets. More than the granularity, so that it preempts any holder
/// at or above `min_vruntime` at once.
pub(super) fn sleeper_bonus(interval: Duration) -> u64 {
    nanos(interval)
}

/// A duration in whole nanoseconds, saturating.
pub(super) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A waiter as the heir choice sees it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct Candidate {
    /// Its park token (`ThreadState` address and flags).
    pub(super) token: usize,
    pub(super) vruntime: u64,
    pub(super) ticket: u64,
}

impl Candidate {
    /// Whether `self` comes before `other`: lower vruntime, then earlier
    /// arrival.
    pub(super) fn before(&self, other: &Candidate) -> bool {
        (self.vruntime, self.ticket) < (other.vruntime, other.ticket)
    }
}

/// Rules 2 and 3: the heir, given the waiter that comes first, the first
/// of those awake (waiting in place rather than parked), and the lender if
/// it waits. The lender gets the Gil back unless `first` is a granularity
/// below it; otherwise an awake waiter gets it unless `first` is a
/// granularity below that one (a parked heir costs a wake-up, during which
/// nobody runs, so it is woken only when it is owed the Gil).
pub(super) fn choose(
    first: Candidate,
    awake: Option<Candidate>,
    lender: Option<Candidate>,
    granularity: u64,
) -> Candidate {
    let within = |c: &Candidate| first.vruntime.saturating_add(granularity) > c.vruntime;
    match (lender, awake) {
        (Some(lender), _) if within(&lender) => lender,
        (_, Some(awake)) if within(&awake) => awake,
        _ => first,
    }
}

/// Whether the waiter with park token `token` is the lender recorded in
/// `lender` (a `ThreadState` address, 0 while no loan is outstanding):
/// only that thread has the lender's claim of rule 2.
pub(super) fn is_lender(lender: usize, token: usize) -> bool {
    lender != 0 && token & !TOKEN_LOW == lender
}

/// Whether the waiter with park token `token` may be woken ahead of its
/// turn (`Gil::wake_ahead`): a parked one (one in a slot is awake already)
/// back from a voluntary release (`PRIORITY`), whose holds are short, so
/// that a wake-up after its predecessor's handoff would leave the Gil idle.
pub(super) fn may_wake_ahead(token: usize, in_place: bool) -> bool {
    !in_place && token & PRIORITY != 0
}

/// What a handoff under `Interactive` does to the loan (rule 2).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Loan {
    /// No loan is outstanding any more: the Gil went back to the lender,
    /// or to a thread not back from a voluntary release (one owed it more).
    Ends,
    /// The releaser lends the Gil and waits for it back: a forced release
    /// to a thread back from a voluntary release, with no loan outstanding
    /// or with the releaser's own (the lender of a chain of borrowers keeps
    /// its claim).
    Begins,
    /// Unchanged: any other handoff to a thread back from a voluntary
    /// release.
    Stays,
}

/// The loan after the releaser at `releaser` hands the Gil to the waiter
/// with park token `heir` (its address, and `PRIORITY` if it is back from
/// a voluntary release), by a forced release or not, while `lender` is the
/// recorded lender (0 if none).
pub(super) fn loan_after_handoff(
    heir: usize,
    lender: usize,
    releaser: usize,
    forced: bool,
) -> Loan {
    let returning = heir & PRIORITY != 0;
    if heir & !TOKEN_LOW == lender || !returning {
        Loan::Ends
    } else if forced && (lender == 0 || lender == releaser) {
        Loan::Begins
    } else {
        Loan::Stays
    }
}

/// The first two of some candidates, seen one at a time: `pair` as it was
/// before `candidate`, as it is after.
pub(super) fn first_two(
    pair: [Option<Candidate>; 2],
    candidate: Candidate,
) -> [Option<Candidate>; 2] {
    match pair {
        [Some(a), _] if candidate.before(&a) => [Some(candidate), Some(a)],
        [Some(a), Some(b)] if !candidate.before(&b) => [Some(a), Some(b)],
        [Some(a), _] => [Some(a), Some(candidate)],
        [None, _] => [Some(candidate), None],
    }
}

/// What a waiter should do about the holder's run (rule 1).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Verdict {
    /// Ask the holder to drop the Gil now.
    Ask,
    /// Look again after this long, unless handed the Gil first. Zero: a
    /// loan is under way and this waiter is owed the Gil before the lender
    /// (rule 3): it comes at the borrower's release.
    WaitFor(Duration),
}

/// Rule 1 for a waiter at `mine`, a holder at `holder_now` (its vruntime
/// plus its running hold), and the lender's vruntime if a loan is under way
/// (the lender does not run, so the moment computed against it comes early,
/// never late).
pub(super) fn verdict(
    mine: u64,
    holder_now: u64,
    lender: Option<u64>,
    granularity: u64,
) -> Verdict {
    let due = mine.saturating_add(granularity);
    if due <= holder_now {
        return Verdict::Ask;
    }
    let mut wait = due - holder_now;
    if let Some(lender) = lender {
        wait = wait.min(due.saturating_sub(lender));
    }
    Verdict::WaitFor(Duration::from_nanos(wait))
}

/// When the holder's contended hold began: `None` while nobody waits (the
/// holder is then not being timed). Touched only with the Gil's park queue
/// locked (every write and read is in a park callback on the Gil's key), so
/// that a plain cell serves; and it is `None` whenever the waiters bit is
/// clear (whoever clears the bit, with the queue locked, clears it too),
/// so that an uncontended acquisition, which takes a clear word, never
/// finds a stale start.
pub(super) struct HoldStart(UnsafeCell<Option<Instant>>);

// SAFETY:
// - the cell is only accessed through `get` and `set`, whose callers hold
//   the Gil's park queue lock (their contract), so no two threads access it
//   at once, and the lock orders their accesses;
// - `Instant` is plain data, `Send` in every build.
unsafe impl Sync for HoldStart {}

impl HoldStart {
    const_fn! {
        pub(super) const fn new() -> Self {
            Self(UnsafeCell::new(None))
        }
    }

    /// # Safety
    /// The caller holds the Gil's park queue lock (it runs inside a park
    /// callback on the Gil's key).
    pub(super) unsafe fn get(&self) -> Option<Instant> {
        // SAFETY: the queue lock excludes every other access (contract).
        self.0.with(|p| unsafe { *p })
    }

    /// # Safety
    /// As [`get`](Self::get).
    pub(super) unsafe fn set(&self, start: Option<Instant>) {
        // SAFETY: as in `get`.
        self.0.with_mut(|p| unsafe { *p = start });
    }
}

impl Gil {
    /// Places `ts` as it starts to wait (see the module docs).
    pub(super) fn place(&self, ts: &ThreadState, arrival: Arrival) {
        let min = self.min_vruntime.load(Ordering::Relaxed);
        let floor = match arrival {
            Arrival::Fresh => min,
            Arrival::Returning => min.saturating_sub(sleeper_bonus(self.switch_interval())),
            Arrival::Preempted | Arrival::Lent => return,
        };
        if ts.vruntime.load(Ordering::Relaxed) < floor {
            ts.vruntime.store(floor, Ordering::Relaxed);
        }
    }

    /// Rule 1 for the waiter `me` against `holder` at `now`; starts timing
    /// the holder if nobody did yet (it took the Gil uncontended, so it was
    /// never placed: it is placed now as a fresh acquisition, which is what
    /// an uncontended one is, and without a sleeper's credit, which a
    /// CPU-bound thread that started alone must not get).
    ///
    /// # Safety
    /// - The caller runs in a park callback on this Gil's key (the queue is
    ///   locked) and read the word with `LOCKED | PARKED` set: the holder
    ///   cannot finish a release meanwhile.
    /// - `holder` is the state whose address that word holds.
    pub(super) unsafe fn judge(
        &self,
        me: &ThreadState,
        holder: &ThreadState,
        now: Instant,
    ) -> Verdict {
        // SAFETY: the queue is locked (contract).
        let start = match unsafe { self.hold_start.get() } {
            Some(start) => start,
            None => {
                // SAFETY: as above.
                unsafe { self.hold_start.set(Some(now)) };
                self.place(holder, Arrival::Fresh);
                now
            }
        };
        let running = nanos(now.saturating_duration_since(start));
        let holder_now = holder
            .vruntime
            .load(Ordering::Relaxed)
            .saturating_add(running);
        let lender = self.lender.load(Ordering::Relaxed);
        let lender =
            (lender != 0 && lender != holder.address() && lender != me.address()).then(|| {
                // SAFETY:
                // - a lender waits, untimed and uninterruptible, until it is
                //   handed the Gil or takes a free one; both clear `lender`
                //   with the queue locked, which we hold;
                // - so its state is alive.
                let lender = unsafe { &*(lender as *const ThreadState) };
                lender.vruntime.load(Ordering::Relaxed)
            });
        verdict(
            me.vruntime.load(Ordering::Relaxed),
            holder_now,
            lender,
            granularity(self.switch_interval()),
        )
    }

    /// A release's accounting, with the queue locked: charges the releaser
    /// `ts` its contended hold and moves `min_vruntime` up to the lowest
    /// vruntime among the waiters: `lowest` (those the heir was chosen
    /// from) and the releaser if it `rewaits`.
    ///
    /// # Safety
    /// The caller runs in a park callback on this Gil's key.
    pub(super) unsafe fn charge(&self, ts: &ThreadState, now: Instant, lowest: u64, rewaits: bool) {
        let mut v = ts.vruntime.load(Ordering::Relaxed);
        // SAFETY: the queue is locked (contract).
        if let Some(start) = unsafe { self.hold_start.get() } {
            // From when the holder got to run, not from the handoff: a
            // parked heir's wake-up (tens of microseconds in which it
            // could not run) would charge a thread that holds the Gil for
            // microseconds several times its hold, and leave it a fraction
            // of its fair share. A resumption from an earlier hold came
            // before this hold's start, and changes nothing.
            let start = ts.resumed_at().map_or(start, |resumed| resumed.max(start));
            v = v.saturating_add(nanos(now.saturating_duration_since(start)));
            ts.vruntime.store(v, Ordering::Relaxed);
        }
        let lowest = if rewaits { lowest.min(v) } else { lowest };
        if lowest != u64::MAX && self.min_vruntime.load(Ordering::Relaxed) < lowest {
            self.min_vruntime.store(lowest, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn c(token: usize, vruntime: u64, ticket: u64) -> Candidate {
        Candidate {
            token,
            vruntime,
            ticket,
        }
    }

    #[test]
    fn lower_vruntime_comes_first_then_arrival() {
        assert!(c(1, 5, 9).before(&c(2, 6, 0)));
        assert!(c(1, 5, 1).before(&c(2, 5, 2)));
        assert!(!c(1, 5, 2).before(&c(2, 5, 1)));
    }

    #[test]
    fn the_lender_gets_the_gil_back_unless_someone_is_a_granularity_below_it() {
        let lender = c(1, 10 * MS, 0);
        // Below it, but by less than the granularity: the loan returns.
        assert_eq!(choose(c(2, 8 * MS, 5), None, Some(lender), 3 * MS), lender);
        // A granularity below: that waiter is owed the Gil first.
        assert_eq!(choose(c(2, 7 * MS, 5), None, Some(lender), 3 * MS).token, 2);
        // No lender waiting: plain lowest vruntime.
        assert_eq!(choose(c(2, 9 * MS, 5), None, None, 3 * MS).token, 2);
    }

    #[test]
    fn an_awake_waiter_goes_before_a_parked_one_not_owed_the_gil() {
        let awake = c(3, 10 * MS, 7);
        // The parked first is below, but within a granularity: no wake-up.
        assert_eq!(choose(c(2, 8 * MS, 5), Some(awake), None, 3 * MS), awake);
        // A granularity below: it is owed the Gil, and woken.
        assert_eq!(choose(c(2, 7 * MS, 5), Some(awake), None, 3 * MS).token, 2);
        // The lender's claim comes first.
        let lender = c(1, 9 * MS, 0);
        assert_eq!(
            choose(c(2, 8 * MS, 5), Some(awake), Some(lender), 3 * MS),
            lender
        );
    }

    /// Mutation: the second arm dropped (a candidate after both replaced
    /// the second) → `[Some(1), Some(5)]` for `[Some(1), Some(2)]`.
    #[test]
    fn first_two_keeps_the_two_that_come_first() {
        let seen = [
            c(3, 30, 0),
            c(1, 10, 1),
            c(4, 40, 2),
            c(2, 20, 3),
            c(5, 50, 4),
        ];
        let pair = seen.iter().fold([None; 2], |p, &c| first_two(p, c));
        assert_eq!(pair.map(|c| c.map(|c| c.token)), [Some(1), Some(2)]);
        assert_eq!(first_two([None; 2], c(7, 1, 0))[1], None);
    }

    #[test]
    fn a_waiter_asks_once_it_is_a_granularity_below_the_holder() {
        assert_eq!(verdict(10 * MS, 13 * MS, None, 3 * MS), Verdict::Ask);
        assert_eq!(
            verdict(10 * MS, 12 * MS, None, 3 * MS),
            Verdict::WaitFor(Duration::from_millis(1))
        );
    }

    #[test]
    fn during_a_loan_a_waiter_owed_the_gil_before_the_lender_just_waits() {
        // The holder borrowed (far below), the lender is far above: the
        // waiter does not ask the borrower, and is due at its release.
        assert_eq!(
            verdict(10 * MS, 2 * MS, Some(20 * MS), 3 * MS),
            Verdict::WaitFor(Duration::ZERO)
        );
        // Not owed it yet: it looks again when the lender's run would make
        // it so (early: the lender does not run during the loan).
        assert_eq!(
            verdict(10 * MS, 2 * MS, Some(12 * MS), 3 * MS),
            Verdict::WaitFor(Duration::from_millis(1))
        );
    }

    /// A contended hold is charged from when its holder got to run, not
    /// from the handoff: a parked heir's wake-up is not its Gil time.
    ///
    /// Mutation: `charge` from `hold_start` alone (the resumption ignored)
    /// → 32 000 ns charged for a 2 000 ns run. (With std: without it a
    /// thread state needs a thread-id source installed.)
    #[cfg(all(feature = "std", not(loom)))]
    #[test]
    fn a_hold_is_charged_from_when_its_holder_got_to_run() {
        use crate::gil::thread_state::ThreadState;
        let gil = Gil::new();
        let ts = ThreadState::new(0);
        let base = Instant::now();
        let at = |us: u64| base.checked_add(Duration::from_micros(us)).unwrap();
        let (earlier, handed, ran, released) = (at(0), at(10), at(40), at(42));
        let charged = |resumed: Instant| {
            ts.set_resumed_at(resumed);
            let before = ts.vruntime.load(Ordering::Relaxed);
            // SAFETY: no other thread uses this Gil, so nothing else
            // touches its queue-locked cell.
            unsafe {
                gil.hold_start.set(Some(handed));
                gil.charge(&ts, released, u64::MAX, false);
            }
            ts.vruntime.load(Ordering::Relaxed) - before
        };
        assert_eq!(charged(ran), 2_000);
        // A resumption from before this hold (an earlier one) changes
        // nothing: the hold is charged from its handoff.
        assert_eq!(charged(earlier), 32_000);
    }

    /// Only the recorded lender has the lender's claim, whatever flags its
    /// token carries; with no loan outstanding nobody has it.
    ///
    /// Mutations (4 December): in `Gil::find_heir`, `interactive && addr !=
    /// 0 && ...` with `||` (every waiter taken for the lender, found by
    /// cargo-mutants) survived every test and model; here its like,
    /// `is_lender` always `true`, fails the first assertion; `&&` as `||`
    /// the last; `!=` as `==`, or `!TOKEN_LOW` as `TOKEN_LOW`, the second.
    #[test]
    fn only_the_recorded_lender_has_its_claim() {
        let (a, b) = (0x1000, 0x2000);
        assert!(!is_lender(0, b));
        assert!(is_lender(a, a));
        assert!(is_lender(a, a | TOKEN_LOW));
        assert!(!is_lender(a, b));
    }

    /// Only a parked thread back from a voluntary release may be woken
    /// ahead of its turn: not one awake in a slot, and not a CPU-bound one.
    ///
    /// Mutations (4 December): in `Gil::find_heir`, this test inline as
    /// `!in_place && token & PRIORITY != 0` survived every std test and the
    /// whole Interactive loom suite (one run each) with its `&&` as `||`
    /// and its `&` as `|` or `^` (a CPU-bound or timed waiter woken into a
    /// slot); `!=` as `==` was caught by the `wake_ahead` model only. Here
    /// `||` fails the second assertion, `|` and `^` the third, `==` (and
    /// `!` deleted) the first.
    #[test]
    fn only_a_parked_thread_back_from_a_voluntary_release_is_woken_ahead() {
        let (returning, cpu_bound) = (0x1000 | PRIORITY, 0x2000);
        assert!(may_wake_ahead(returning, false));
        assert!(!may_wake_ahead(returning, true), "awake already, in a slot");
        assert!(!may_wake_ahead(cpu_bound, false), "its wake-up can wait");
        assert!(!may_wake_ahead(cpu_bound, true));
    }

    /// A loan ends when the Gil goes back to the lender or to a thread not
    /// back from a voluntary release; it begins at a forced release to a
    /// returning thread, unless another thread's loan is outstanding; any
    /// other handoff leaves it as it is.
    ///
    /// Mutation (4 December, found by cargo-mutants): in `Gil::hand_to`,
    /// `heir == lender || !returning` with `&&` (a forced switch to a
    /// CPU-bound thread lent it the Gil, and the releaser spun for it)
    /// survived every test and model; here it fails the second assertion.
    #[test]
    fn a_loan_begins_at_a_forced_release_to_a_returning_thread_and_ends_with_it() {
        let (lender, borrower, cpu, other) = (0x1000, 0x2000, 0x3000, 0x4000);
        // Park tokens: a thread back from a voluntary release carries
        // `PRIORITY`.
        let back = |addr: usize| addr | PRIORITY;
        // Back to the lender, or to a CPU-bound thread: over.
        assert_eq!(
            loan_after_handoff(lender, lender, borrower, false),
            Loan::Ends
        );
        assert_eq!(loan_after_handoff(cpu, 0, lender, true), Loan::Ends);
        assert_eq!(loan_after_handoff(cpu, lender, borrower, true), Loan::Ends);
        assert_eq!(
            loan_after_handoff(back(lender), lender, borrower, false),
            Loan::Ends
        );
        // A forced release to a returning thread lends the Gil.
        assert_eq!(
            loan_after_handoff(back(borrower), 0, lender, true),
            Loan::Begins
        );
        // The lender forced out again, to another returning thread: its
        // claim holds.
        assert_eq!(
            loan_after_handoff(back(other), lender, lender, true),
            Loan::Begins
        );
        // A borrower forced out, to another returning thread: the first
        // lender keeps its claim.
        assert_eq!(
            loan_after_handoff(back(other), lender, borrower, true),
            Loan::Stays
        );
        // A voluntary release to a returning thread lends nothing.
        assert_eq!(
            loan_after_handoff(back(borrower), 0, cpu, false),
            Loan::Stays
        );
    }

    #[test]
    fn a_thread_back_from_io_preempts_any_holder_at_or_above_min_vruntime() {
        let interval = Duration::from_millis(5);
        let min = ORIGIN;
        let returning = min - sleeper_bonus(interval);
        assert_eq!(
            verdict(returning, min, None, granularity(interval)),
            Verdict::Ask
        );
    }
}
