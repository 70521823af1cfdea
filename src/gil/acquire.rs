//! Taking the Gil: the uncontended compare-and-swap, and the wait loop.
//!
//! # The wait loop (`wait_for_gil`), one decision at a time
//!
//! 1. Take a ticket: arrival order, kept across re-parks, so that a
//!    release can find the earliest waiter although re-parking moves it to
//!    the tail of the park queue. Under `Interactive`, place the thread's
//!    virtual runtime (`fair_share`: a thread that was away starts from
//!    about the others', with a bounded credit if it comes back from a
//!    voluntary release).
//! 2. If the Gil is free, take it (compare-and-swap) and publish yourself
//!    as the holder.
//! 3. Otherwise announce yourself (`PARKED`), spinning a few rounds first
//!    only before the first park, and without yielding: the interval starts
//!    at the park.
//! 4. Park. In `validate` (queue locked, word at `LOCKED | PARKED`, so the
//!    holder cannot leave), decide whether to ask the holder to drop the
//!    Gil (set the drop request on its breaker, CPython's
//!    `SET_GIL_DROP_REQUEST`):
//!    - `Fifo`: if the previous interval ran out with no switch; the park
//!      lasts one interval;
//!    - `Interactive`: if the waiter's fair share is due (`fair_share`,
//!      rule 1); otherwise the park lasts until it would be. A waiter that
//!      asked, or that lent the Gil and waits for it back, may take a
//!      slot (`in_place`) instead of parking and spin for its handoff;
//!    - either policy: a waiter back from a wait that an interrupt ended
//!      asks at once.
//! 5. Woken with `TOKEN_HANDOFF` (or, spinning, finding itself in
//!    `holder`): the releaser made it the holder. Timed out: if the
//!    deadline passed, give up; else (`Fifo`) remember whether a switch
//!    happened during the interval, and park again, counted in `Transit`
//!    meanwhile so that a forced switch does not pass it over while it is
//!    out of the queue.
//! 6. An interrupt (interruptible waits only) ends the wait at any step.

use super::fair_share::{self, Arrival, Verdict};
use super::hooks::{self, GilEventKind};
use super::release::TOKEN_HANDOFF;
use super::stats::count_one;
use super::thread_state::{ThreadState, ThreadStatus};
use super::{Gil, GilGuard, LOCKED, PARKED, PRIORITY, SwitchPolicy};
use crate::error::Interrupted;
use crate::interval::earliest;
use crate::park::{self, Instant, ParkResult, ParkToken};
use crate::sync::{Ordering, SpinWait};
use crate::wait::{self, ATTACHED};
use core::cell::Cell;
use core::time::Duration;

/// Under `Interactive`, the most a waiter spins for its handoff before it
/// parks: the holder it asked hands over at its next checkpoint
/// (microseconds away when it runs), and a borrower that an interactive
/// thread is lent the Gil to lets go again within microseconds (its next
/// socket call). A parked thread would need a wake-up instead (tens of µs,
/// and as much again of the waker's time), with nobody holding the Gil
/// meanwhile. A spin ends at once when the handoff comes.
///
/// Spinning pays only while the thread it waits for runs on another core.
/// When there are more runnable threads than cores, spinners take the cores
/// the holder needs, so the budget adapts, per Gil and per kind of spin
/// (asking, lending), as adaptive mutexes' does: it moves a quarter of the
/// way to four times the length of each spin that ends with the handoff,
/// and shrinks by an eighth at each spin that runs out, never below
/// `MIN_HANDOFF_SPIN`.
pub(super) const HANDOFF_SPIN: Duration = Duration::from_micros(50);

/// The least spin budget (see `HANDOFF_SPIN`): a few handoffs between two
/// running threads, so that the budget can grow back.
const MIN_HANDOFF_SPIN: Duration = Duration::from_micros(5);

/// Spin checks per round of the backend's spin limit (10 with std: about
/// 1000 checks, longer than the spin budget; 0 by default under loom, where
/// a waiter takes a slot and leaves it at its next look, so that models
/// explore the handoff in place without spinning).
const SPIN_CHECKS_PER_ROUND: u32 = 100;

/// A validate that wants an earlier deadline than the park was given asks
/// for a new park only if it is earlier by more than this.
const DEADLINE_SLACK: Duration = Duration::from_micros(20);

/// How soon to look again when the holder has not published itself yet (it
/// took the Gil by compare-and-swap a moment ago).
const UNPUBLISHED_RETRY: Duration = Duration::from_micros(20);

/// What a waiter may do while it waits.
#[derive(Clone, Copy)]
pub(super) struct Wait {
    pub(super) deadline: Option<Instant>,
    pub(super) interruptible: bool,
    /// How the thread came to wait (placement and spinning under
    /// `Interactive`; only `Returning` matters to `Fifo`, not at all).
    pub(super) arrival: Arrival,
    /// Ask for the Gil at once whatever the policy: coming back from a wait
    /// that an interrupt ended, which the interpreter should see promptly.
    pub(super) urgent: bool,
}

impl Wait {
    pub(super) const PLAIN: Wait = Wait {
        deadline: None,
        interruptible: false,
        arrival: Arrival::Fresh,
        urgent: false,
    };

    /// Back from a voluntary release (detach, a wait that ended normally).
    pub(super) const VOLUNTARY: Wait = Wait {
        arrival: Arrival::Returning,
        ..Wait::PLAIN
    };

    /// Back from a wait that an interrupt ended.
    pub(super) const INTERRUPTED: Wait = Wait {
        arrival: Arrival::Returning,
        urgent: true,
        ..Wait::PLAIN
    };

    /// Switched out at a checkpoint or by `yield_now`.
    pub(super) const PREEMPTED: Wait = Wait {
        arrival: Arrival::Preempted,
        ..Wait::PLAIN
    };

    /// Switched out for a loan (see `fair_share`).
    pub(super) const LENT: Wait = Wait {
        arrival: Arrival::Lent,
        ..Wait::PLAIN
    };
}

/// How a wait for the Gil ended.
pub(super) type Outcome = wait::WaitEnd;

impl Gil {
    /// Takes the Gil, waiting as long as it takes.
    ///
    /// # Panics
    /// If the calling thread already holds this Gil (that would deadlock):
    /// use [`ensure`](Self::ensure) to take it re-entrantly.
    #[doc(alias = "lock")]
    #[doc(alias = "take_gil")]
    #[doc(alias = "PyEval_AcquireThread")]
    #[inline(always)]
    pub fn acquire(&self) -> GilGuard<'_> {
        let ts = self.current_state();
        if !self.lock_fast(ts) {
            self.acquire_slow(ts);
        }
        GilGuard::new(self, ts)
    }

    #[cold]
    fn acquire_slow(&self, ts: &ThreadState) {
        self.refuse_reentry(ts, "acquire");
        match self.lock_slow(ts, Wait::PLAIN) {
            Outcome::Done => {}
            Outcome::TimedOut | Outcome::Interrupted => {
                unreachable!("an untimed, uninterruptible wait ends with the Gil")
            }
        }
    }

    /// Takes the Gil if it is free right now. Returns `None` when another
    /// thread holds it, or when the calling thread does.
    ///
    /// # Panics
    /// Only if called from inside an event hook of this Gil (which must not
    /// use the Gil it observes); the Gil is left as it was.
    #[must_use = "if unused the Gil is released at once"]
    #[doc(alias = "try_lock")]
    #[inline]
    pub fn try_acquire(&self) -> Option<GilGuard<'_>> {
        let ts = self.current_state();
        if self.lock_fast(ts) {
            Some(GilGuard::new(self, ts))
        } else {
            None
        }
    }

    /// Takes the Gil, waiting at most `timeout` (on the monotonic clock).
    /// Returns `None` on timeout, or at once when the calling thread already
    /// holds the Gil. A timeout too large to represent waits without end.
    #[must_use = "if unused the Gil is released at once"]
    #[doc(alias = "try_lock_for")]
    #[doc(alias = "acquire_timeout")]
    pub fn try_acquire_for(&self, timeout: Duration) -> Option<GilGuard<'_>> {
        let ts = self.current_state();
        if self.lock_fast(ts) {
            return Some(GilGuard::new(self, ts));
        }
        if self.held_by(ts) {
            return None;
        }
        let wait = Wait {
            deadline: park::clock::deadline_after(timeout),
            ..Wait::PLAIN
        };
        match self.lock_slow(ts, wait) {
            Outcome::Done => Some(GilGuard::new(self, ts)),
            Outcome::TimedOut | Outcome::Interrupted => {
                // A thread-local destructor's state may go now: `ts` is a
                // local here (freeing what a reference argument of a live
                // frame points at is not allowed), untouched after.
                drop(super::registry::unlist_if_ended(&self.listing, ts));
                None
            }
        }
    }

    /// Takes the Gil like [`acquire`](Self::acquire), but gives up with
    /// `Err(Interrupted)` (without the Gil) when
    /// [`ThreadState::interrupt`] is called for this thread while it waits.
    /// An interrupt that arrived before the call is not lost: the call
    /// returns `Err` at once and consumes it.
    ///
    /// # Panics
    /// As `acquire`, if the calling thread already holds this Gil.
    ///
    /// ```
    /// # #[cfg(feature = "std")] {
    /// use gilock::{Gil, Interrupted};
    ///
    /// let gil = Gil::new();
    /// let me = gil.current_thread_state();
    /// me.interrupt();
    /// assert_eq!(gil.acquire_interruptible().err(), Some(Interrupted));
    /// assert!(gil.acquire_interruptible().is_ok());
    /// # }
    /// ```
    pub fn acquire_interruptible(&self) -> Result<GilGuard<'_>, Interrupted> {
        let ts = self.current_state();
        if ts.take_interrupt() {
            return Err(Interrupted);
        }
        if self.lock_fast(ts) {
            return Ok(GilGuard::new(self, ts));
        }
        self.refuse_reentry(ts, "acquire_interruptible");
        let wait = Wait {
            interruptible: true,
            ..Wait::PLAIN
        };
        match self.lock_slow(ts, wait) {
            Outcome::Done => Ok(GilGuard::new(self, ts)),
            Outcome::Interrupted => {
                // As in `try_acquire_for`.
                drop(super::registry::unlist_if_ended(&self.listing, ts));
                Err(Interrupted)
            }
            Outcome::TimedOut => unreachable!("an untimed wait does not time out"),
        }
    }

    /// Takes the Gil re-entrantly (`PyGILState_Ensure`): if the calling
    /// thread already holds it, returns a nested guard at once; the Gil is
    /// released when the last of the thread's guards drops.
    ///
    /// ```
    /// # #[cfg(feature = "std")] {
    /// use gilock::Gil;
    ///
    /// let gil = Gil::new();
    /// let outer = gil.acquire();
    /// {
    ///     let _inner = gil.ensure();
    ///     assert!(gil.is_held_by_current_thread());
    /// }
    /// assert!(gil.is_held_by_current_thread());
    /// drop(outer);
    /// assert!(!gil.is_locked());
    /// # }
    /// ```
    #[doc(alias = "PyGILState_Ensure")]
    pub fn ensure(&self) -> GilGuard<'_> {
        let ts = self.current_state();
        if self.held_by(ts) {
            ts.check_not_in_hook("ensure");
            ts.word.add_guard();
            return GilGuard::new(self, ts);
        }
        self.acquire()
    }

    /// The checks of a blocking acquire that found the Gil taken: by the
    /// calling thread itself (a self-deadlock), or from inside an event
    /// hook (which must not use the Gil it observes).
    fn refuse_reentry(&self, ts: &ThreadState, what: &str) {
        ts.check_not_in_hook(what);
        if self.held_by(ts) {
            panic!(
                "Gil::{what}: the calling thread already holds this Gil, \
                 which would deadlock; use Gil::ensure to take it re-entrantly"
            );
        }
    }

    /// Takes the Gil by compare-and-swap if it is free, and does the new
    /// holder's bookkeeping. Panics, with nothing locked, if called from
    /// inside an event hook (which must not use the Gil it observes).
    #[inline]
    fn lock_fast(&self, ts: &ThreadState) -> bool {
        // Read before the compare-and-swap, where a load costs least; only
        // this thread writes the word, so it is still current after.
        let word = ts.before_fast_acquire();
        if self
            .state
            .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        self.publish_holder(ts);
        count_one(&ts.counters.acquisitions);
        ts.word.attach_one(word);
        hooks::fire(self, ts, GilEventKind::Resumed);
        true
    }

    /// Makes `ts` the published holder after it took the Gil by
    /// compare-and-swap (a handoff does this in the releaser's callback).
    #[inline]
    fn publish_holder(&self, ts: &ThreadState) {
        // No drop request is pending on a thread that does not hold the Gil:
        // every release clears it once nobody can set it any more.
        // The switch number moves *before* the Release store of `holder`: a
        // waiter that reads this holder (Acquire) then sees the new number
        // and asks nothing of a thread that took over during its interval
        // (the other order failed the loom model at bound 3).
        self.count_switch_to(ts);
        self.holder.store(ts.address(), Ordering::Release);
    }

    /// A thread became the holder: count it and tell the hook.
    #[inline]
    pub(super) fn attached(&self, ts: &ThreadState) {
        // Counted on the thread's own state only: `Gil::stats` adds the
        // threads' counts up (one store fewer on every acquisition).
        count_one(&ts.counters.acquisitions);
        ts.word.add_guard();
        hooks::fire(self, ts, GilEventKind::Resumed);
    }

    /// Takes the Gil back after a release in the middle of a guard's life
    /// (a switch, `detach`, a wait), as `wait` says (not timed, not
    /// interruptible). Leaves the thread's guard count to the caller, who
    /// restores it.
    pub(super) fn reacquire(&self, ts: &ThreadState, wait: Wait) {
        if self.lock_fast(ts) {
            return;
        }
        match self.lock_slow(ts, wait) {
            Outcome::Done => {}
            Outcome::TimedOut | Outcome::Interrupted => {
                unreachable!("an untimed, uninterruptible wait ends with the Gil")
            }
        }
    }

    /// Waits for the Gil. On `Done` the bookkeeping is done, the guard
    /// count raised by one as for a fresh acquire.
    #[cold]
    fn lock_slow(&self, ts: &ThreadState, wait: Wait) -> Outcome {
        let start = Instant::now();
        ts.set_status(ThreadStatus::Waiting);
        hooks::fire(self, ts, GilEventKind::Ready);
        if wait.interruptible {
            ts.set_waiting_on(self.key());
        }
        let outcome = self.wait_for_gil(ts, wait);
        if wait.interruptible {
            ts.clear_waiting_on();
        }
        match outcome {
            Outcome::Done => {
                let waited = start.elapsed();
                self.counters.record_wait(waited);
                ts.counters.record_wait(waited);
                self.attached(ts);
            }
            Outcome::Interrupted | Outcome::TimedOut => {
                if outcome == Outcome::Interrupted {
                    ts.take_interrupt();
                }
                ts.set_status(ThreadStatus::Detached);
                hooks::fire(self, ts, GilEventKind::GaveUp);
                // An ended state (a thread-local destructor's wait) may
                // go now, but not in here, where `ts` is a reference
                // argument: the callers that can give up free it.
            }
        }
        outcome
    }

    /// The wait loop: see the module docs for each decision.
    fn wait_for_gil(&self, ts: &ThreadState, wait: Wait) -> Outcome {
        ts.ticket.store(
            self.next_ticket.fetch_add(1, Ordering::Relaxed),
            Ordering::Relaxed,
        );
        // The policy of this wait (a change applies from the next one).
        let interactive = self.policy() == SwitchPolicy::Interactive;
        if interactive {
            self.place(ts, wait.arrival);
        }
        // Only a wait that ends with the Gil may wait in place (a timed or
        // interruptible one could leave while a releaser hands it over);
        // only under Interactive does it spin there.
        let in_place = wait.deadline.is_none() && !wait.interruptible;
        let may_spin = interactive && in_place;
        let mut spin = SpinWait::new();
        let mut parked_before = false;
        // Fifo: the switch number at the start of the interval that just ran
        // out without a switch, if one did: ask the holder to drop the Gil.
        let mut request_drop: Option<u64> = None;
        // Interactive: when to look again (validate's estimate), if sooner
        // than an interval.
        let mut look_again: Option<Instant> = None;
        // Set by validate: a releaser made us the holder while we waited in
        // place; we took a slot to spin in; a deadline validate wants sooner
        // than the park's.
        let handed = Cell::new(false);
        let spin_next = Cell::new(false);
        let sooner: Cell<Option<Instant>> = Cell::new(None);
        // A thread back from a voluntary release spins once per hold it
        // asked to end (the switch number when it took the slot); a lender
        // once per wait. Then they park.
        let spun_at = Cell::new(u64::MAX);
        let lent_spun = Cell::new(false);
        let transit = Transit {
            gil: self,
            counted: Cell::new(false),
        };
        let me = ts.address();
        let mut token = me;
        if wait.interruptible {
            token |= ATTACHED;
        }
        if wait.urgent || (interactive && wait.arrival == Arrival::Returning) {
            // Fifo serves an interrupted waiter first; Interactive lends to
            // a thread back from a voluntary release.
            token |= PRIORITY;
        }
        if wait.arrival == Arrival::Lent
            && (self.in_place.holds(token) || self.holder.load(Ordering::Relaxed) == me)
        {
            // The release that lent the Gil put us in the slot (or the
            // borrower already gave it back): spin for the return at once,
            // with no queue pass.
            lent_spun.set(true);
            if self.spin_for_handoff(me, Arrival::Lent) {
                return Outcome::Done;
            }
        }
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if wait.interruptible && ts.interrupt_pending() {
                return Outcome::Interrupted;
            }
            if state & LOCKED == 0 {
                match self.state.compare_exchange_weak(
                    state,
                    state | LOCKED,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        self.publish_holder(ts);
                        return Outcome::Done;
                    }
                    Err(actual) => state = actual,
                }
                continue;
            }
            if state & PARKED == 0 {
                // Spin only before the first park, and without yielding: the
                // interval starts at the park, and a yield under load can
                // cost a whole scheduler slice (measured: drop requests 9-16
                // ms late at a 5 ms interval with yields, 0.035 ms without).
                if !parked_before && spin.spin_without_yield() {
                    state = self.state.load(Ordering::Relaxed);
                    continue;
                }
                if let Err(actual) = self.state.compare_exchange_weak(
                    state,
                    state | PARKED,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    state = actual;
                    continue;
                }
            }

            if wait.urgent && request_drop.is_none() {
                // Ask at once instead of after an interval.
                request_drop = Some(self.switch_number());
            }
            let now = Instant::now();
            let interval = self.switch_interval();
            let interval_start_switches = self.switch_number();
            let ends = look_again.take().or_else(|| now.checked_add(interval));
            let deadline = earliest(wait.deadline, ends);
            let validate = || {
                transit.leave();
                if wait.interruptible && ts.interrupt_pending() {
                    return false;
                }
                // Relaxed: this only decides whether to park. Any other word
                // sends us round the loop to the compare-and-swap (Acquire);
                // for a parked wait, what a holder published comes through
                // `holder` (Acquire, next) or the unpark.
                if self.state.load(Ordering::Relaxed) != LOCKED | PARKED {
                    return false;
                }
                // `holder` is read first (Acquire), so the switch number
                // read next is at least the one its holder published (see
                // `publish_holder`).
                let holder = self.holder.load(Ordering::Acquire);
                if holder == me {
                    // Handed over while we waited in place (the releaser
                    // emptied our slot).
                    handed.set(true);
                    return false;
                }
                let ask = if interactive {
                    if holder == 0 {
                        None
                    } else {
                        // SAFETY:
                        // - the park queue is locked (we are in `validate`)
                        //   and the word is LOCKED | PARKED, so the holder
                        //   cannot finish a release;
                        // - so its state is alive (module docs).
                        let holder_ts = unsafe { &*(holder as *const ThreadState) };
                        // SAFETY: as above, and `holder_ts` is the holder.
                        let verdict = unsafe { self.judge(ts, holder_ts, now) };
                        Some(match verdict {
                            _ if wait.urgent => (true, None),
                            Verdict::Ask => (true, None),
                            Verdict::WaitFor(d) if d.is_zero() => (false, None),
                            Verdict::WaitFor(d) => (false, Some(d)),
                        })
                    }
                } else {
                    // Only if still no switch since the interval began.
                    let due = request_drop.is_some_and(|switches| self.switch_number() == switches);
                    (holder != 0 || !due).then_some((due, None))
                };
                let Some((ask, wait_for)) = ask else {
                    // A new holder has not published itself yet (it took the
                    // word by compare-and-swap a moment ago, or a release is
                    // under way): nobody to ask or judge. Look again soon
                    // (a park with a short deadline, not a retry loop: a
                    // model must not spin).
                    self.in_place.leave(me);
                    return !self.wants_sooner(
                        now.checked_add(UNPUBLISHED_RETRY),
                        deadline,
                        &sooner,
                        in_place.then_some(token),
                        &transit,
                    );
                };
                if ask {
                    // SAFETY: as above (holder != 0 here). Asking again
                    // during the same hold changes nothing.
                    let holder_ts = unsafe { &*(holder as *const ThreadState) };
                    holder_ts.ask_to_drop(&self.counters);
                }
                let switches = self.switch_number();
                // Only a thread back from a voluntary release (whose
                // handoff comes at the holder's next checkpoint) and a
                // lender (whose borrower lets go within microseconds) spin:
                // a CPU-bound thread owed its fair share parks, so that it
                // never occupies a core the I/O path needs, and it leaves
                // the slot to the threads whose latency counts.
                let spins = match wait.arrival {
                    Arrival::Returning => ask && spun_at.get() != switches,
                    Arrival::Lent => !lent_spun.get(),
                    Arrival::Fresh | Arrival::Preempted => false,
                };
                if may_spin && spins && self.in_place.enter(token) {
                    spun_at.set(switches);
                    lent_spun.set(true);
                    spin_next.set(true);
                    return false;
                }
                self.in_place.leave(me);
                if interactive {
                    // Asked (or owed the Gil at a borrower's release): the
                    // handoff normally comes first; look again after half an
                    // interval in case it went elsewhere.
                    let wait_for = wait_for.unwrap_or(interval / 2).min(interval);
                    let wanted = now.checked_add(wait_for);
                    let token = in_place.then_some(token);
                    if self.wants_sooner(wanted, deadline, &sooner, token, &transit) {
                        return false;
                    }
                }
                true
            };
            let timed_out = |_key: usize, was_last: bool| {
                if wait.deadline.is_some_and(|d| d.has_passed()) {
                    // It gives up. The last waiter to leave clears the
                    // waiters bit (unless one waits in place), so that the
                    // holder's release is fast again.
                    if was_last && !self.in_place.any() {
                        // Release: this waiter may have written to the
                        // holder's breaker (`ask_to_drop` above); with
                        // PARKED gone the holder can release by the fast
                        // path, without the queue lock, then end and free
                        // its state. Its Acquire there must see our write
                        // done first.
                        self.state.fetch_and(!PARKED, Ordering::Release);
                        // SAFETY: `timed_out` runs with the queue locked.
                        // Nobody waits any more: the holder is not timed.
                        unsafe { self.hold_start.set(None) };
                    }
                } else {
                    // Only an interval ran out: it parks again at once, and
                    // is still waiting (the bit stays, and the holder's
                    // contended hold goes on being timed). Until it parks it
                    // waits in place if it may and a slot is free, else it
                    // is counted in transit.
                    if !(in_place && self.in_place.enter(token)) {
                        transit.enter();
                    }
                }
            };
            // SAFETY:
            // - the key is this Gil's own address;
            // - the callbacks touch only the Gil's atomics, its queue-locked
            //   cell and the states of the holder and the lender (see
            //   `validate`): they neither park, unpark nor unwind, and run
            //   no user code.
            let result = unsafe {
                park::park(
                    self.key(),
                    validate,
                    || {},
                    timed_out,
                    ParkToken(token),
                    deadline,
                )
            };
            request_drop = None;
            parked_before = true;
            match result {
                ParkResult::Unparked(TOKEN_HANDOFF) => {
                    // The releaser made us the holder and cleared our breaker's
                    // drop request.
                    return Outcome::Done;
                }
                ParkResult::Unparked(wait::TOKEN_INTERRUPTED) => {
                    // Only interruptible waits carry `ATTACHED`, the one
                    // token an interrupt wakes.
                    return Outcome::Interrupted;
                }
                // Nothing else wakes a Gil waiter; look again.
                ParkResult::Unparked(_) => {}
                ParkResult::Invalid => {
                    if handed.replace(false) {
                        return Outcome::Done;
                    }
                    if spin_next.replace(false) && self.spin_for_handoff(me, wait.arrival) {
                        return Outcome::Done;
                    }
                    if let Some(at) = sooner.take() {
                        look_again = Some(at);
                    }
                }
                ParkResult::TimedOut => {
                    if wait.deadline.is_some_and(|d| d.has_passed()) {
                        return Outcome::TimedOut;
                    }
                    look_again = None;
                    if self.switch_number() == interval_start_switches {
                        request_drop = Some(interval_start_switches);
                    }
                }
            }
            state = self.state.load(Ordering::Relaxed);
        }
    }

    /// In `validate`: whether `wanted` comes before the park's `deadline` by
    /// more than the slack; then it is recorded in `sooner` for the next
    /// park (and `validate` returns false), and until that park the waiter
    /// waits in place (`token`, if it may and a slot is free) or is counted
    /// in `transit`, so that no release passes it over unseen.
    fn wants_sooner(
        &self,
        wanted: Option<Instant>,
        deadline: Option<Instant>,
        sooner: &Cell<Option<Instant>>,
        token: Option<usize>,
        transit: &Transit<'_>,
    ) -> bool {
        let Some(wanted) = wanted else {
            return false;
        };
        let earlier = match deadline {
            None => true,
            Some(d) => wanted.checked_add(DEADLINE_SLACK).is_some_and(|w| w < d),
        };
        if earlier {
            sooner.set(Some(wanted));
            if !token.is_some_and(|t| self.in_place.enter(t)) {
                transit.enter();
            }
        }
        earlier
    }

    /// Spins, in its slot, until a releaser makes `me` the holder
    /// (true) or the spin budget of `kind` passes (false: the caller looks
    /// again, and parks or finds itself handed over). Adapts the budget
    /// (see `HANDOFF_SPIN`).
    fn spin_for_handoff(&self, me: usize, kind: Arrival) -> bool {
        let checks = park::spin_limit().saturating_mul(SPIN_CHECKS_PER_ROUND);
        if checks == 0 {
            // A build that does not spin (a loom model): look once.
            return self.handed_to(me);
        }
        let budget = &self.spin_budget[usize::from(kind == Arrival::Lent)];
        let nanos = budget.load(Ordering::Relaxed);
        let start = Instant::now();
        let until = start.checked_add(Duration::from_nanos(nanos));
        let mut handed = false;
        for i in 0..checks {
            if self.handed_to(me) {
                handed = true;
                break;
            }
            if i % 64 == 63 && until.is_none_or(|u| u.has_passed()) {
                break;
            }
            core::hint::spin_loop();
        }
        let next = if handed {
            let target = fair_share::nanos(start.elapsed()).saturating_mul(4).clamp(
                fair_share::nanos(MIN_HANDOFF_SPIN),
                fair_share::nanos(HANDOFF_SPIN),
            );
            if target > nanos {
                nanos + (target - nanos) / 4
            } else {
                nanos - (nanos - target) / 4
            }
        } else {
            (nanos - nanos / 8).max(fair_share::nanos(MIN_HANDOFF_SPIN))
        };
        budget.store(next, Ordering::Relaxed);
        handed
    }

    /// Whether a releaser made `me` the holder while it waits in place.
    /// One load for the spinning look and the loom build's single look, so
    /// that the model that spins checks the ordering both use.
    fn handed_to(&self, me: usize) -> bool {
        // Acquire, paired with `hand_to`'s Release store: what the releaser
        // did while it held the Gil is ours now.
        self.holder.load(Ordering::Acquire) == me
    }
}

/// A waiter between the end of an interval (or a `validate` that wants
/// another deadline) and its next park: out of the park queue for a moment,
/// but still waiting, with its ticket. Counted, so
/// that a forced switch waits a checkpoint for it instead of handing the Gil
/// past it to a later waiter. Enters the count in `timed_out` and leaves it
/// in the next `validate`, both with the queue locked, so a releaser that
/// reads the count with the queue locked sees it exactly; leaves it also
/// when it stops waiting (drop).
struct Transit<'g> {
    gil: &'g Gil,
    counted: Cell<bool>,
}

impl Transit<'_> {
    fn enter(&self) {
        if !self.counted.replace(true) {
            self.gil.in_transit.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn leave(&self) {
        if self.counted.replace(false) {
            self.gil.in_transit.fetch_sub(1, Ordering::Relaxed);
            self.gil.transit_leaves.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Drop for Transit<'_> {
    fn drop(&mut self) {
        self.leave();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// A wait that ends while counted in transit (an interrupt or its
    /// deadline right after an interval ran out) leaves the count as it
    /// goes: a count left up would make every later forced switch keep
    /// the Gil for a waiter that is gone, and CPU-bound holders would never
    /// be switched out again.
    ///
    /// Mutation (2 December, a survivor of cargo-mutants): `Transit`'s
    /// `drop` doing nothing → the count stayed at 1.
    #[test]
    fn a_wait_that_ends_in_transit_leaves_the_count() {
        let gil = Gil::new();
        {
            let transit = Transit {
                gil: &gil,
                counted: Cell::new(false),
            };
            transit.enter();
            transit.enter();
            assert_eq!(gil.in_transit.load(Ordering::Relaxed), 1, "counted once");
        }
        assert_eq!(gil.in_transit.load(Ordering::Relaxed), 0);
        assert_eq!(gil.transit_leaves.load(Ordering::Relaxed), 1);
    }
}
