//! Taking the Gil: the uncontended compare-and-swap, and the wait loop.
//!
//! # The wait loop (`wait_for_gil`), one decision at a time
//!
//! 1. Take a ticket: arrival order, kept across re-parks, so that a
//!    release can find the earliest waiter although re-parking moves it to
//!    the tail of the park queue.
//! 2. If the Gil is free, take it (compare-and-swap) and publish yourself
//!    as the holder.
//! 3. Otherwise announce yourself (`PARKED`), spinning a few rounds first
//!    only before the first park, and without yielding: the interval starts
//!    at the park.
//! 4. Park with a timeout of one switch interval. In `validate` (queue
//!    locked, word at `LOCKED | PARKED`, so the holder cannot leave): if the
//!    previous interval ran out with no switch, set the drop request on the
//!    holder's breaker (CPython's `SET_GIL_DROP_REQUEST`). A priority waiter
//!    (`Interactive`, back from a voluntary release) asks at once.
//! 5. Woken with `TOKEN_HANDOFF`: the releaser made you the holder. Woken
//!    plainly: a `Compete` release freed the word; look again. Timed out:
//!    if the deadline passed, give up; else remember whether a switch
//!    happened during the interval (step 4 asks only if none did), and
//!    park again, counted in `Transit` meanwhile so that a forced switch
//!    does not pass you over while you are out of the queue.
//! 6. An interrupt (interruptible waits only) ends the wait at any step.

use super::hooks::{self, GilEventKind};
use super::release::TOKEN_HANDOFF;
use super::stats::bump;
use super::thread_state::{ThreadState, ThreadStatus};
use super::{Gil, GilGuard, LOCKED, PARKED, PRIORITY, SwitchPolicy};
use crate::error::Interrupted;
use crate::interval::earliest;
use crate::park::{self, Instant, ParkResult, ParkToken};
use crate::sync::{Ordering, SpinWait};
use crate::wait::{self, ATTACHED};
use core::cell::Cell;
use core::time::Duration;

/// The default starvation bound of `SwitchPolicy::Interactive`
/// (`Gil::set_starvation_bound`): after this many handoffs in a row to
/// waiters back from a voluntary release that passed over a preempted
/// waiter, the oldest preempted waiter is served next.
pub(super) const DEFAULT_STARVATION_BOUND: usize = 4;

/// Under `SwitchPolicy::Interactive`, how long a thread switched out at a
/// checkpoint spins for the Gil before it parks: the thread that asked for
/// it is usually interactive and lets go again within microseconds (its next
/// socket call), and a parked thread would need a wake-up (tens of µs on a
/// loaded machine) and cost the CPU-bound thread as much again in its own
/// time. Spinning never delays the holder (it does not hold the Gil) and
/// costs at most this per forced switch.
const SPIN_AFTER_PREEMPTION: Duration = Duration::from_micros(50);

/// What a waiter may do while it waits.
#[derive(Clone, Copy)]
pub(super) struct Wait {
    pub(super) deadline: Option<Instant>,
    pub(super) interruptible: bool,
    /// Coming back from a voluntary release: under `Interactive` it
    /// outranks preempted waiters and asks for the Gil at once.
    pub(super) priority: bool,
    /// Ask for the Gil at once whatever the policy: coming back from a wait
    /// that an interrupt ended, which the interpreter should see promptly.
    pub(super) urgent: bool,
    /// Preempted under `Interactive`: spin a while before parking (see
    /// `SPIN_AFTER_PREEMPTION`).
    pub(super) spin: bool,
}

impl Wait {
    pub(super) const PLAIN: Wait = Wait {
        deadline: None,
        interruptible: false,
        priority: false,
        urgent: false,
        spin: false,
    };

    /// Back from a voluntary release (detach, a wait that ended normally).
    pub(super) const VOLUNTARY: Wait = Wait {
        priority: true,
        ..Wait::PLAIN
    };

    /// Back from a wait that an interrupt ended.
    pub(super) const INTERRUPTED: Wait = Wait {
        priority: true,
        urgent: true,
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
    #[inline]
    pub fn acquire(&self) -> GilGuard<'_> {
        let ts = self.current_state();
        if self.lock_fast() {
            self.became_holder_fast(ts);
            return GilGuard::new(self, ts);
        }
        self.acquire_slow(ts)
    }

    #[cold]
    fn acquire_slow<'a>(&'a self, ts: &'a ThreadState) -> GilGuard<'a> {
        self.refuse_reentry(ts, "acquire");
        match self.lock_slow(ts, Wait::PLAIN) {
            Outcome::Done => GilGuard::new(self, ts),
            Outcome::TimedOut | Outcome::Interrupted => {
                unreachable!("an untimed, uninterruptible wait ends with the Gil")
            }
        }
    }

    /// Takes the Gil if it is free right now. Returns `None` when another
    /// thread holds it, or when the calling thread does (never panics).
    #[inline]
    pub fn try_acquire(&self) -> Option<GilGuard<'_>> {
        let ts = self.current_state();
        if self.lock_fast() {
            self.became_holder_fast(ts);
            Some(GilGuard::new(self, ts))
        } else {
            None
        }
    }

    /// Takes the Gil, waiting at most `timeout` (on the monotonic clock).
    /// Returns `None` on timeout, or at once when the calling thread already
    /// holds the Gil. A timeout too large to represent waits without end.
    pub fn try_acquire_for(&self, timeout: Duration) -> Option<GilGuard<'_>> {
        let ts = self.current_state();
        if self.lock_fast() {
            self.became_holder_fast(ts);
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
            Outcome::TimedOut | Outcome::Interrupted => None,
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
    /// use gilock::{Gil, Interrupted};
    ///
    /// let gil = Gil::new();
    /// let me = gil.current_thread_state();
    /// me.interrupt();
    /// assert_eq!(gil.acquire_interruptible().err(), Some(Interrupted));
    /// assert!(gil.acquire_interruptible().is_ok());
    /// ```
    pub fn acquire_interruptible(&self) -> Result<GilGuard<'_>, Interrupted> {
        let ts = self.current_state();
        if ts.take_interrupt() {
            return Err(Interrupted);
        }
        if self.lock_fast() {
            self.became_holder_fast(ts);
            return Ok(GilGuard::new(self, ts));
        }
        self.refuse_reentry(ts, "acquire_interruptible");
        let wait = Wait {
            interruptible: true,
            ..Wait::PLAIN
        };
        match self.lock_slow(ts, wait) {
            Outcome::Done => Ok(GilGuard::new(self, ts)),
            Outcome::Interrupted => Err(Interrupted),
            Outcome::TimedOut => unreachable!("an untimed wait does not time out"),
        }
    }

    /// Takes the Gil re-entrantly (`PyGILState_Ensure`): if the calling
    /// thread already holds it, returns a nested guard at once; the Gil is
    /// released when the last of the thread's guards drops.
    ///
    /// ```
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
    /// ```
    pub fn ensure(&self) -> GilGuard<'_> {
        let ts = self.current_state();
        if self.held_by(ts) {
            ts.check_not_in_hook("ensure");
            ts.depth
                .store(ts.depth.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
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

    #[inline]
    fn lock_fast(&self) -> bool {
        self.state
            .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Bookkeeping of a thread that took the Gil by compare-and-swap.
    #[inline]
    pub(super) fn became_holder_fast(&self, ts: &ThreadState) {
        ts.check_not_in_hook("acquire");
        self.publish_holder(ts);
        self.attached(ts);
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
        bump(&self.counters.acquisitions);
        bump(&ts.counters.acquisitions);
        ts.depth
            .store(ts.depth.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        ts.set_status(ThreadStatus::Attached);
        hooks::fire(self, ts, GilEventKind::Resumed);
    }

    /// Takes the Gil back after a release in the middle of a guard's life
    /// (a switch, `detach`, a wait), as `wait` says (not timed, not
    /// interruptible). Leaves the thread's guard count to the caller, who
    /// restores it.
    pub(super) fn reacquire(&self, ts: &ThreadState, wait: Wait) {
        if self.lock_fast() {
            self.became_holder_fast(ts);
            return;
        }
        let wait = Wait {
            spin: wait.spin && !wait.priority && self.policy() == SwitchPolicy::Interactive,
            ..wait
        };
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
                if ts.is_ended() {
                    // A thread-local destructor's wait: the state may go now
                    // (the caller does not touch it after a give-up).
                    super::registry::forget_if_ended(&self.listing, ts);
                }
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
        let mut spin = SpinWait::new();
        let mut parked_before = false;
        // Woken to compete for a freed Gil (`How::Compete`) and not parked
        // since: leaving now must pass the wake on (see below).
        let competing = Cell::new(false);
        // A priority waiter's request found no published holder to ask.
        let undelivered = Cell::new(false);
        // The switch number at the start of the interval that just ran out
        // without a switch, if one did: ask the holder to drop the Gil.
        let mut request_drop: Option<u64> = None;
        let transit = Transit {
            gil: self,
            counted: Cell::new(false),
        };
        // A spin limit of 0 (loom's default) means no spinning at all.
        if wait.spin && park::spin_limit() != 0 && self.spin_for_gil(ts) {
            return Outcome::Done;
        }
        let me = ts.address();
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if wait.interruptible && ts.interrupt_pending() {
                if competing.get() {
                    // The Gil may be free with waiters parked and nobody
                    // woken to take it: wake the next one.
                    self.wake_competitor();
                }
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

            let priority = wait.priority && self.policy() == SwitchPolicy::Interactive;
            let ask_now = priority || wait.urgent;
            if ask_now && request_drop.is_none() {
                // Ask at once instead of after an interval.
                request_drop = Some(self.switch_number());
            }
            let interval_start_switches = self.switch_number();
            let interval_ends = Instant::now().checked_add(self.switch_interval());
            let deadline = earliest(wait.deadline, interval_ends);
            let mut token = me;
            if wait.interruptible {
                token |= ATTACHED;
            }
            if ask_now {
                // Ranked first by `find_heir` (within the starvation bound).
                token |= PRIORITY;
            }
            let validate = || {
                if transit.leave() {
                    // Back in the queue with its old ticket: a release that
                    // chose its heir meanwhile must look again.
                    self.rejoined.fetch_add(1, Ordering::Relaxed);
                }
                if wait.interruptible && ts.interrupt_pending() {
                    return false;
                }
                // Relaxed: it only decides whether to park (the Gil is taken
                // by an Acquire compare-and-swap, `holder` read below).
                if self.state.load(Ordering::Relaxed) != LOCKED | PARKED {
                    return false;
                }
                if let Some(switches) = request_drop {
                    // Only if still no switch since the interval began.
                    // `holder` is read first (Acquire), so the switch number
                    // read next is at least the one its holder published
                    // (see `publish_holder`).
                    let holder = self.holder.load(Ordering::Acquire);
                    if self.switch_number() == switches {
                        if holder != 0 && holder != me {
                            // SAFETY:
                            // - the park queue is locked (we are in
                            //   `validate`) and the word is LOCKED | PARKED,
                            //   so the holder cannot finish a release;
                            // - so its state is alive (module docs).
                            let holder = unsafe { &*(holder as *const ThreadState) };
                            holder.ask_to_drop(&self.counters);
                        } else if holder == 0 && ask_now {
                            // A new holder has not published itself yet
                            // (it took the word by compare-and-swap a moment
                            // ago, or a release is under way). A waiter that
                            // asks at once and parked now would wait a whole
                            // interval for nothing: look again in a moment.
                            undelivered.set(true);
                            return false;
                        }
                    }
                }
                competing.set(false);
                true
            };
            let timed_out = |_key: usize, was_last: bool| {
                if was_last {
                    self.state.fetch_and(!PARKED, Ordering::Relaxed);
                }
                if !wait.deadline.is_some_and(|d| d.has_passed()) {
                    // Only an interval ran out: it parks again at once.
                    transit.enter();
                }
            };
            // SAFETY:
            // - the key is this Gil's own address;
            // - the callbacks touch only the Gil's atomics and the holder's
            //   breaker (see `validate`): they neither park, unpark nor
            //   unwind, and run no user code.
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
                ParkResult::Unparked(_) => competing.set(true),
                ParkResult::Invalid => {
                    if undelivered.replace(false) {
                        // 64 pause instructions (a yield under loom).
                        crate::sync::pause_round(6);
                    }
                }
                ParkResult::TimedOut => {
                    if wait.deadline.is_some_and(|d| d.has_passed()) {
                        return Outcome::TimedOut;
                    }
                    if self.switch_number() == interval_start_switches {
                        request_drop = Some(interval_start_switches);
                    }
                }
            }
            state = self.state.load(Ordering::Relaxed);
        }
    }

    /// Spins up to `SPIN_AFTER_PREEMPTION` for the Gil to be free and takes
    /// it; false if it was not (the caller parks as usual).
    fn spin_for_gil(&self, ts: &ThreadState) -> bool {
        let until = Instant::now().checked_add(SPIN_AFTER_PREEMPTION);
        loop {
            let state = self.state.load(Ordering::Relaxed);
            if state & LOCKED == 0 {
                if self
                    .state
                    .compare_exchange_weak(
                        state,
                        state | LOCKED,
                        Ordering::Acquire,
                        Ordering::Relaxed,
                    )
                    .is_ok()
                {
                    self.publish_holder(ts);
                    return true;
                }
                continue;
            }
            if until.is_none_or(|u| u.has_passed()) {
                return false;
            }
            // 32 pause instructions (a yield under loom, where model time
            // stands still: the loop ends when the Gil is free).
            crate::sync::pause_round(5);
        }
    }
}

/// A waiter between the end of an interval and its next park: out of the
/// park queue for a moment, but still waiting, with its ticket. Counted, so
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

    /// Leaves the count; whether the waiter was in it.
    fn leave(&self) -> bool {
        let counted = self.counted.replace(false);
        if counted {
            self.gil.in_transit.fetch_sub(1, Ordering::Relaxed);
        }
        counted
    }
}

impl Drop for Transit<'_> {
    fn drop(&mut self) {
        self.leave();
    }
}
