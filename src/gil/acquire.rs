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
//! 2. If the Gil is free, take it: a compare-and-swap that writes your
//!    address and `LOCKED`.
//! 3. Otherwise announce yourself (`PARKED`), spinning a few rounds first
//!    only before the first park, and without yielding: the interval starts
//!    at the park.
//! 4. Park. In `validate` (queue locked, word at `LOCKED | PARKED`, so the
//!    holder cannot leave), decide whether to ask the holder to drop the
//!    Gil (set the drop request on its breaker, CPython's
//!    `SET_GIL_DROP_REQUEST`):
//!    - `Fifo`: if the previous interval ran out with no switch (the switch
//!      count unchanged, and the same holder as at its start); the park
//!      lasts one interval;
//!    - `Interactive`: if the waiter's fair share is due (`fair_share`,
//!      rule 1); otherwise the park lasts until it would be. A waiter that
//!      asked, or that lent the Gil and waits for it back, may take a
//!      slot (`in_place`) instead of parking and spin for its handoff;
//!    - either policy: a waiter back from a wait that an interrupt ended
//!      asks at once.
//! 5. Woken with `TOKEN_HANDOFF` (or, spinning, finding its address in
//!    the word): the releaser made it the holder. Woken with `TOKEN_AHEAD`
//!    (`Interactive`): a releaser put it in a slot ahead of its turn; it
//!    spins there once for its handoff, then looks again. Timed out: if the
//!    deadline passed, give up; else (`Fifo`) remember whether a switch
//!    happened during the interval, and park again, counted in `Transit`
//!    meanwhile so that a forced switch does not pass it over while it is
//!    out of the queue.
//! 6. An interrupt (interruptible waits only) ends the wait at any step.

use super::fair_share::{self, Arrival, Verdict};
use super::hooks::{self, GilEventKind};
use super::in_place;
use super::release::{TOKEN_AHEAD, TOKEN_HANDOFF};
use super::thread_state::{ThreadState, ThreadStatus};
use super::{Gil, GilGuard, HOLDER, HOOKED, LOCKED, PARKED, PRIORITY, SwitchPolicy};
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

/// Spin checks per round of the backend's spin limit (10 with std: 1000
/// checks; 0 by default under loom, where a waiter takes a slot and leaves
/// it at its next look, so that models explore the handoff in place without
/// spinning). 1000 checks took 10.5 µs on a 2-core Intel Xeon VM (4
/// December), so there they end most spins before the budget does. Five
/// times as many, which let the budget govern, measured no better there:
/// the convoy's figures were the same, and the starvation scenario's
/// detaching threads got 45-49% of their fair share against 60-70% in the
/// runs alternating with them.
const SPIN_CHECKS_PER_ROUND: u32 = 100;

/// The ordering of every compare-and-swap that takes the Gil: Acquire for
/// what the previous holder did, and Release because the word then holds
/// the new holder's `ThreadState` address, which a waiter's `validate`
/// reads (Acquire) and dereferences: the state's contents must be visible
/// to it. (Acquire alone failed the loom models
/// `gil::interactive_detach_and_return` and
/// `gil_scheduling::detach_with_a_drop_request_pending_hands_the_gil_over`:
/// "Causality violation" in `judge`, reading a holder's state created
/// without order.) On x86 both compile to the same instruction.
const PUBLISH: Ordering = Ordering::AcqRel;

/// How many times its usual number of checks a thread that asked for the
/// Gil may spin while the holder it asked is still waking up (see
/// `spin_for_handoff`).
const WAKING_SPINS: u32 = 4;

/// A validate that wants an earlier deadline than the park was given asks
/// for a new park only if it is earlier by more than this.
const DEADLINE_SLACK: Duration = Duration::from_micros(20);

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

/// Why a waiter spins in its slot, each with its own adaptive budget (see
/// `HANDOFF_SPIN`): how soon the handoff comes differs between them.
#[derive(Clone, Copy)]
pub(super) enum Spin {
    /// It asked the holder to drop the Gil (back from a voluntary release).
    Asked = 0,
    /// It lent the Gil and waits for it back.
    Lent = 1,
    /// A releaser woke it ahead of its turn (`Gil::wake_ahead`).
    Ahead = 2,
}

/// How many kinds of spin keep a budget.
pub(super) const SPIN_KINDS: usize = Spin::Ahead as usize + 1;

impl Spin {
    fn of(arrival: Arrival) -> Spin {
        if arrival == Arrival::Lent {
            Spin::Lent
        } else {
            Spin::Asked
        }
    }
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
        let me = ts.address();
        // The word this thread left when it let go last, with no hook and no
        // waiter: no switch to count, no hook to tell.
        //
        // AcqRel: Acquire for what the last holder did; Release because the
        // word now publishes our address, which a waiter's `validate` reads
        // (Acquire) and follows to our state (see `PUBLISH`).
        match self
            .state
            .compare_exchange(me, me | LOCKED, PUBLISH, Ordering::Relaxed)
        {
            Ok(_) => {
                ts.word.attach_one(word);
                true
            }
            Err(state) => self.lock_free(ts, word, state),
        }
    }

    /// `lock_fast` for any other free word: the last holder was another
    /// thread, or a hook is registered. Still no wait (no `Waiting`, no
    /// `Ready`): a waiter or a held Gil return false.
    #[cold]
    fn lock_free(&self, ts: &ThreadState, word: u64, mut state: usize) -> bool {
        let me = ts.address();
        loop {
            if state & (LOCKED | PARKED) != 0 {
                return false;
            }
            match self.state.compare_exchange(
                state,
                me | LOCKED | (state & HOOKED),
                PUBLISH,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(actual) => state = actual,
            }
        }
        self.took_free_word(state, me);
        ts.word.attach_one(word);
        hooks::fire(self, ts, GilEventKind::Resumed);
        true
    }

    /// The holder's bookkeeping after it took the free word `state` by
    /// compare-and-swap (a handoff counts its switch in `hand_to`).
    #[inline]
    fn took_free_word(&self, state: usize, me: usize) {
        // No drop request is pending on a thread that does not hold the Gil:
        // every release clears it once nobody can set it any more.
        // Counted after the compare-and-swap, so a waiter may see the new
        // holder before the new count: `validate` also compares the holder
        // with the one its interval began under (see there).
        if state & HOLDER != me {
            self.count_switch();
        }
    }

    /// A thread became the holder: count it and tell the hook.
    #[inline]
    pub(super) fn attached(&self, ts: &ThreadState) {
        // Counted in the thread's own word only: `Gil::stats` adds the
        // threads' counts up (no store of its own on any acquisition).
        ts.word.attach();
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
        // Set by a spin that ended with the handoff: its clock reading then
        // serves as the wait's end too (one reading fewer while the thread
        // that lent us the Gil waits for it back).
        let handed_at = Cell::new(None);
        let outcome = self.wait_for_gil(ts, wait, &handed_at);
        if wait.interruptible {
            ts.clear_waiting_on();
        }
        match outcome {
            Outcome::Done => {
                let resumed = handed_at.get().unwrap_or_else(Instant::now);
                let waited = resumed.saturating_duration_since(start);
                // Its contended hold is charged from here (`Gil::charge`).
                ts.set_resumed_at(resumed);
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
    fn wait_for_gil(
        &self,
        ts: &ThreadState,
        wait: Wait,
        handed_at: &Cell<Option<Instant>>,
    ) -> Outcome {
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
        // out without a switch, if one did, and the holder seen at that
        // start (`None`: any holder): ask the holder to drop the Gil.
        let mut request_drop: Option<(u64, Option<usize>)> = None;
        // The holder the last `validate` saw, which the interval of the
        // park it let happen began under.
        let seen_holder = Cell::new(0);
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
            && (self.in_place.holds(token)
                || self.is_holder(self.state.load(Ordering::Relaxed), me))
        {
            // The release that lent the Gil put us in the slot (or the
            // borrower already gave it back): spin for the return at once,
            // with no queue pass.
            lent_spun.set(true);
            if self.spin_for_handoff(me, Spin::Lent, handed_at) {
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
                    me | LOCKED | (state & (PARKED | HOOKED)),
                    PUBLISH,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        self.took_free_word(state, me);
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
                // Ask at once instead of after an interval: whoever holds
                // the Gil now.
                request_drop = Some((self.switch_number(), None));
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
                // Acquire: the word names the holder, and a holder that took
                // a free word counts its switch after (`took_free_word`), so
                // the count read below is at least that of every switch
                // before this holder's; what a handoff published comes with
                // the word too (`hand_to`). Any word without both bits sends
                // us round the loop to the compare-and-swap.
                let state = self.state.load(Ordering::Acquire);
                if state & (LOCKED | PARKED) != LOCKED | PARKED {
                    return false;
                }
                let holder = state & HOLDER;
                if holder == me {
                    // Handed over while we waited in place (the releaser
                    // emptied our slot).
                    handed.set(true);
                    return false;
                }
                seen_holder.set(holder);
                let (ask, wait_for) = if interactive {
                    // SAFETY:
                    // - the park queue is locked (we are in `validate`) and
                    //   the word is LOCKED | PARKED, so the holder cannot
                    //   finish a release;
                    // - so its state is alive (module docs).
                    let holder_ts = unsafe { &*(holder as *const ThreadState) };
                    // SAFETY: as above, and `holder_ts` is the holder.
                    let verdict = unsafe { self.judge(ts, holder_ts, now) };
                    match verdict {
                        _ if wait.urgent => (true, None),
                        Verdict::Ask => (true, None),
                        Verdict::WaitFor(d) if d.is_zero() => (false, None),
                        Verdict::WaitFor(d) => (false, Some(d)),
                    }
                } else {
                    // Only if still no switch since the interval began: the
                    // count has not moved, and the holder is the one it began
                    // under (a holder that took a free word a moment ago may
                    // not have counted its switch yet).
                    let due = request_drop.is_some_and(|(switches, began_under)| {
                        self.switch_number() == switches && began_under.is_none_or(|h| h == holder)
                    });
                    (due, None)
                };
                if ask {
                    // SAFETY: as above. Asking again during the same hold
                    // changes nothing.
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
            // Whether `timed_out` found the wait's own deadline passed:
            // decided once, with the queue locked, so that the waiter does
            // what the callback did (the clock moves on between the two).
            let gave_up = Cell::new(false);
            let timed_out = |_key: usize, was_last: bool| {
                if wait.deadline.is_some_and(|d| d.has_passed()) {
                    gave_up.set(true);
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
                    // Awake: a waiter spinning for our release may count
                    // its budget now. A look first: only an Interactive
                    // release marks its heir, so under Fifo the line is
                    // only read. (Nobody can mark another heir meanwhile:
                    // we hold the Gil.)
                    if self.waking.load(Ordering::Relaxed) == me {
                        self.waking.store(0, Ordering::Relaxed);
                    }
                    // The releaser made us the holder and cleared our breaker's
                    // drop request.
                    return Outcome::Done;
                }
                ParkResult::Unparked(TOKEN_AHEAD) => {
                    // Woken ahead of our turn into a slot (`wake_ahead`):
                    // spin there for the handoff, once per hold, as a
                    // thread that asked does.
                    spun_at.set(self.switch_number());
                    if self.spin_for_handoff(me, Spin::Ahead, handed_at) {
                        return Outcome::Done;
                    }
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
                    if spin_next.replace(false)
                        && self.spin_for_handoff(me, Spin::of(wait.arrival), handed_at)
                    {
                        return Outcome::Done;
                    }
                    if let Some(at) = sooner.take() {
                        look_again = Some(at);
                    }
                }
                ParkResult::TimedOut => {
                    // Not the clock again: a deadline that passed after the
                    // callback counted only an interval's end would leave
                    // with the waiters bit up and no waiter behind it.
                    if gave_up.get() {
                        return Outcome::TimedOut;
                    }
                    look_again = None;
                    if self.switch_number() == interval_start_switches {
                        request_drop = Some((interval_start_switches, Some(seen_holder.get())));
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
    /// (true, with the time it saw so in `handed_at`) or the spin budget of
    /// `kind` passes (false: the caller looks again, and parks or finds
    /// itself handed over). Adapts the budget (see `HANDOFF_SPIN`).
    fn spin_for_handoff(&self, me: usize, kind: Spin, handed_at: &Cell<Option<Instant>>) -> bool {
        let checks = park::spin_limit().saturating_mul(SPIN_CHECKS_PER_ROUND);
        if checks == 0 {
            // A build that does not spin (a loom model): look once.
            return self.handed_to(me);
        }
        let budget = &self.spin_budget[kind as usize];
        let nanos = budget.load(Ordering::Relaxed);
        let mut start = Instant::now();
        let mut until = start.checked_add(Duration::from_nanos(nanos));
        // A thread that asked the holder to drop the Gil, while that holder
        // is still waking up (its checkpoint cannot come yet), starts its
        // budget, and the spin's measured length, once the holder runs,
        // within `WAKING_SPINS` times the usual checks. Otherwise a thread
        // back from I/O and a CPU-bound one that hand the Gil back and forth
        // fall into a state where each finds the other parked and gives up
        // spinning before its wake-up ends, and every handoff then costs a
        // wake-up (measured with one echo thread and two CPU-bound ones:
        // 41 000 wake-ups in 95 000 loans). A lender does not wait so: the
        // same for it cost a quarter of the echo's round trips with four
        // CPU-bound threads, whose cores a spinning lender takes.
        let waits_out_a_wake_up = matches!(kind, Spin::Asked);
        let mut allowed = checks;
        let most = checks.saturating_mul(WAKING_SPINS);
        let mut handed = false;
        let mut i = 0;
        // Our slot (none if the handoff came before we could look).
        let slot = self.in_place.slot_of(me);
        while i < allowed {
            // A releaser empties our slot before it writes our address into
            // the word, in the same callback, and nobody else empties it
            // while we spin: until it is empty, the handoff has not come.
            // So we poll our slot's own cache line, which the releaser
            // writes once, and read the word only after: polling the word,
            // whose line the releaser writes several times on its way, has
            // each of those writes wait for the line to come back from our
            // core (a loan cost 5% less so, measured in place of 0.666 µs).
            let in_slot = slot.is_some_and(|s| in_place::is_of(s.load(Ordering::Relaxed), me));
            if !in_slot && self.is_holder(self.look_at_word(), me) {
                handed = true;
                break;
            }
            if i % 64 == 63 {
                let state = self.state.load(Ordering::Relaxed);
                if waits_out_a_wake_up && self.is_waking(state) {
                    start = Instant::now();
                    until = start.checked_add(Duration::from_nanos(nanos));
                    allowed = (i + checks).min(most);
                } else if until.is_none_or(|u| u.has_passed()) {
                    break;
                }
            }
            i += 1;
            core::hint::spin_loop();
        }
        let next = if handed {
            let at = Instant::now();
            handed_at.set(Some(at));
            let spun = at.saturating_duration_since(start);
            let target = fair_share::nanos(spun).saturating_mul(4).clamp(
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

    /// Whether the holder that `state` names was handed the Gil while
    /// parked and is still waking up (see `Gil::waking`).
    fn is_waking(&self, state: usize) -> bool {
        let waking = self.waking.load(Ordering::Relaxed);
        waking != 0 && self.is_holder(state, waking)
    }

    /// Whether a releaser made `me` the holder while it waits in place.
    fn handed_to(&self, me: usize) -> bool {
        self.is_holder(self.look_at_word(), me)
    }

    /// The state word, as a waiter in place looks for its handoff: one load
    /// for the spinning look and the loom build's single look, so that the
    /// model that spins checks the ordering both use.
    fn look_at_word(&self) -> usize {
        // Acquire, paired with `hand_to`'s Release write of the word: what
        // the releaser did while it held the Gil is ours now.
        self.state.load(Ordering::Acquire)
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
