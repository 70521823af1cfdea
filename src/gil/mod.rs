//! The global interpreter lock: `Gil`, with the switch interval, drop
//! requests, forced switching and detach of CPython's `ceval_gil.c`, on a
//! fair handoff core.
//!
//! # The algorithm
//!
//! The Gil's state word has two bits, `LOCKED` and `PARKED` (threads may be
//! parked on it; `PARKED` implies `LOCKED`, apart from a stale bit that an
//! interrupted waiter may leave and the next release clears). Uncontended,
//! acquire and release are one compare-and-swap each.
//!
//! A waiter parks with a timeout of one switch interval. If the timeout
//! fires and the Gil's switch number did not change meanwhile, it sets the
//! drop request on the *holder's* [`EvalBreaker`] (CPython's
//! `SET_GIL_DROP_REQUEST`) and parks again. The holder sees the request at
//! its next [`GilGuard::checkpoint`] (one relaxed load) and hands the Gil
//! directly to the oldest waiter: the Gil never becomes free in between, so
//! nobody can barge in, and the dropper cannot take the Gil back before the
//! heir has held it (forced switching) — it simply queues behind.
//!
//! Every release with waiters is such a handoff, so waiters are served in
//! order. Re-parking after an interval puts a waiter at the tail of the park
//! queue, so each waiter takes a ticket when it starts waiting and keeps it;
//! a release looks over the queue for the lowest ticket (a second pass under
//! the queue lock, only when someone waits) and hands the Gil to that
//! waiter. Under `SwitchPolicy::Interactive`, waiters back from a voluntary
//! release carry a `PRIORITY` flag in their park token and come first, but
//! at most `MAX_OVERTAKES` handoffs in a row pass over a waiter without it
//! (the starvation bound). Under `Interactive` a voluntary release (detach,
//! a Condition wait) without a pending drop request is the one release that
//! does not hand over: it frees the word (keeping `PARKED`) and wakes the
//! heir to compete for it, so the detached thread may take it back first.
//! A waiter whose interval just ran out is out of the queue for the moment
//! it takes to park again; it is counted (`Transit`), and a forced switch
//! waits for the next checkpoint rather than pass it over.
//!
//! # Who may touch the holder's `ThreadState`
//!
//! `holder` points at the holder's `ThreadState`. A waiter dereferences it
//! only inside its park `validate` callback, with the park queue locked and
//! the state word at `LOCKED | PARKED`. In that state the holder cannot
//! finish a release: the fast path needs the word to be exactly `LOCKED`,
//! and the slow path needs the queue lock. A releaser clears `holder` before
//! its release (fast path) or changes it under the queue lock (handoff), so
//! the pointer a waiter reads is the current holder's, or null (a fresh
//! holder has not published itself yet: the waiter skips the request this
//! time). And a holder's state cannot be freed under it: a thread's state
//! lives until the thread ends, and one that still holds a Gil then (a
//! leaked guard) is kept until the Gil drops (see `registry`).

mod breaker;
mod hooks;
mod policy;
mod registry;
mod stats;
mod thread_state;
#[cfg(feature = "std")]
mod trace;

pub use breaker::EvalBreaker;
pub use hooks::{GilEvent, GilEventKind, GilHook};
pub use policy::SwitchPolicy;
pub use stats::{GilStats, ThreadStats, WaitHistogram};
pub use thread_state::{ThreadState, ThreadStatus};
#[cfg(feature = "std")]
pub use trace::{Span, SpanKind, TraceRecorder};

use crate::error::Interrupted;
use crate::park::{self, FilterOp, Instant, ParkResult, ParkToken, UnparkResult, UnparkToken};
use crate::sync::{AtomicU8, AtomicU64, AtomicUsize, Ordering, SpinWait, const_fn};
use alloc::sync::Arc;
use alloc::vec::Vec;
use breaker::{DROP_REQUEST, INTERRUPT};
use core::cell::Cell;
use core::fmt;
use core::marker::PhantomData;
use core::time::Duration;
use stats::{GilCounters, bump};
use thread_state::TOKEN_FLAGS;

const LOCKED: u8 = 0b01;
const PARKED: u8 = 0b10;

/// Park-token flag: the waiter comes back from a voluntary release and the
/// policy is `Interactive`.
const PRIORITY: usize = 0b001;

/// The starvation bound of `SwitchPolicy::Interactive`: after this many
/// handoffs in a row to waiters back from a voluntary release that passed
/// over a preempted waiter, the oldest preempted waiter is served next.
/// (1 under loom, so that a model reaches the bound with few threads.)
pub(crate) const MAX_OVERTAKES: usize = if cfg!(loom) { 1 } else { 4 };

/// Under `SwitchPolicy::Interactive`, how long a thread switched out at a
/// checkpoint spins for the Gil before it parks: the thread that asked for
/// it is usually interactive and lets go again within microseconds (its next
/// socket call), and a parked thread would need a wake-up (tens of µs on a
/// loaded machine) and cost the CPU-bound thread as much again in its own
/// time. Spinning never delays the holder (it does not hold the Gil) and
/// costs at most this per forced switch.
const SPIN_AFTER_PREEMPTION: Duration = Duration::from_micros(50);

/// The Gil is yours: the releaser left `LOCKED` set and made you the holder.
const TOKEN_HANDOFF: UnparkToken = UnparkToken(1);

/// The default switch interval: 5 ms, CPython's `sys.getswitchinterval()`.
const DEFAULT_INTERVAL_MICROS: u64 = 5_000;
/// The largest interval kept (as the fair mutex's): about 71 minutes.
const MAX_INTERVAL_MICROS: u64 = u32::MAX as u64;

const fn interval_to_micros(interval: Duration) -> u64 {
    let micros = interval.as_micros();
    if micros == 0 {
        1
    } else if micros > MAX_INTERVAL_MICROS as u128 {
        MAX_INTERVAL_MICROS
    } else {
        micros as u64
    }
}

/// A global interpreter lock: one lock over interpreter state that threads
/// take turns on, with CPython's switch interval, drop requests and forced
/// switching, and fair (FIFO) handoff.
///
/// A thread takes the Gil with [`acquire`](Self::acquire) and runs
/// interpreter code, calling [`GilGuard::checkpoint`] between instructions
/// (or [`GilGuard::should_yield`], one relaxed load, and `checkpoint` only
/// when it returns true). A thread that waits for the Gil a whole switch
/// interval (default 5 ms) without seeing a switch asks the holder to drop
/// it; the holder's next checkpoint hands the Gil to the oldest waiter and
/// queues behind it. Blocking work goes inside [`GilGuard::detach`]
/// (`Py_BEGIN_ALLOW_THREADS`), which lets other threads run meanwhile.
///
/// ```
/// use gilock::Gil;
/// use std::sync::Arc;
///
/// let gil = Arc::new(Gil::new());
/// let threads: Vec<_> = (0..2)
///     .map(|_| {
///         let gil = Arc::clone(&gil);
///         std::thread::spawn(move || {
///             let mut guard = gil.acquire();
///             for _ in 0..1000 {
///                 // ... one bytecode instruction ...
///                 if guard.should_yield() {
///                     guard.checkpoint();
///                 }
///             }
///             guard.detach(|| { /* blocking I/O without the Gil */ });
///         })
///     })
///     .collect();
/// for t in threads {
///     t.join().unwrap();
/// }
/// // Each thread took the Gil at least twice (more if a switch was forced).
/// assert!(gil.stats().acquisitions >= 4);
/// ```
// C layout: what the uncontended acquire + release touch comes first.
#[repr(C)]
pub struct Gil {
    state: AtomicU8,
    policy: AtomicU8,
    /// Whether an event hook is registered (see `hooks`).
    hooks: hooks::Flag,
    /// The holder's `ThreadState` address, or 0 (see the module docs).
    holder: AtomicUsize,
    /// The ident of the thread that took the Gil last, to count switches.
    last_holder: AtomicU64,
    /// Assigned at first use (see `registry`); never a loom atomic.
    id: crate::sync::UnmodeledAtomicU64,
    counters: GilCounters,
    interval_micros: AtomicU64,
    /// Waiters' tickets: their arrival order.
    next_ticket: AtomicU64,
    /// Waiters between an interval's end and their next park (`Transit`).
    in_transit: AtomicUsize,
    /// Handoffs in a row to a `PRIORITY` waiter that passed over a waiter
    /// without it (the starvation bound, see `find_heir`). Only a releaser
    /// touches it, under the park queue's lock.
    overtakes: AtomicUsize,
    listing: registry::Listing,
}

static_assertions::assert_impl_all!(Gil: Send, Sync);
static_assertions::assert_not_impl_any!(GilGuard<'static>: Send);
static_assertions::assert_impl_all!(ThreadState: Send, Sync);
static_assertions::assert_impl_all!(EvalBreaker: Send, Sync);

/// What a waiter may do while it waits.
#[derive(Clone, Copy)]
struct Wait {
    deadline: Option<Instant>,
    interruptible: bool,
    /// Coming back from a voluntary release under `Interactive`.
    priority: bool,
    /// Preempted under `Interactive`: spin a while before parking (see
    /// `SPIN_AFTER_PREEMPTION`).
    spin: bool,
}

enum Outcome {
    Acquired,
    TimedOut,
    Interrupted,
}

impl Gil {
    const_fn! {
        /// An unlocked Gil with the default 5 ms switch interval and the
        /// [`Fifo`](SwitchPolicy::Fifo) policy.
        ///
        /// `const` (so a Gil can be a `static`) except under `--cfg loom`,
        /// whose atomics cannot be built in constants.
        #[must_use]
        pub const fn new() -> Self {
            Self::with_switch_interval(Duration::from_micros(DEFAULT_INTERVAL_MICROS))
        }
    }

    const_fn! {
        /// An unlocked Gil whose waiters ask for a switch after `interval`
        /// (rounded as in [`set_switch_interval`](Self::set_switch_interval)).
        #[must_use]
        pub const fn with_switch_interval(interval: Duration) -> Self {
            Self {
                state: AtomicU8::new(0),
                holder: AtomicUsize::new(0),
                last_holder: AtomicU64::new(0),
                interval_micros: AtomicU64::new(interval_to_micros(interval)),
                next_ticket: AtomicU64::new(0),
                in_transit: AtomicUsize::new(0),
                overtakes: AtomicUsize::new(0),
                policy: AtomicU8::new(SwitchPolicy::Fifo.to_u8()),
                hooks: hooks::Flag::new(),
                id: crate::sync::UnmodeledAtomicU64::new(0),
                counters: GilCounters::new(),
                listing: registry::Listing::new(),
            }
        }
    }

    /// Sets the switch interval (`sys.setswitchinterval`); waits that start
    /// later use it. Kept in whole microseconds: zero becomes 1 µs (a waiter
    /// asks for the Gil at once) and anything over about 71 minutes
    /// (`u32::MAX` µs) becomes that, so no deadline ever overflows. May be
    /// called at any time, from any thread.
    pub fn set_switch_interval(&self, interval: Duration) {
        self.interval_micros
            .store(interval_to_micros(interval), Ordering::Relaxed);
    }

    /// The switch interval (`sys.getswitchinterval`).
    pub fn switch_interval(&self) -> Duration {
        Duration::from_micros(self.interval_micros.load(Ordering::Relaxed))
    }

    /// Sets the switch policy; applies from the next wait. May be called at
    /// any time, from any thread.
    pub fn set_policy(&self, policy: SwitchPolicy) {
        self.policy.store(policy.to_u8(), Ordering::Relaxed);
    }

    /// The switch policy.
    pub fn policy(&self) -> SwitchPolicy {
        SwitchPolicy::from_u8(self.policy.load(Ordering::Relaxed))
    }

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
        if self.held_by(ts) {
            panic!(
                "Gil::acquire: the calling thread already holds this Gil, \
                 which would deadlock; use Gil::ensure to take it re-entrantly"
            );
        }
        let wait = Wait {
            deadline: None,
            interruptible: false,
            priority: false,
            spin: false,
        };
        match self.lock_slow(ts, wait) {
            Outcome::Acquired => GilGuard::new(self, ts),
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
            interruptible: false,
            priority: false,
            spin: false,
        };
        match self.lock_slow(ts, wait) {
            Outcome::Acquired => Some(GilGuard::new(self, ts)),
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
    /// // Any thread may interrupt this one through its ThreadState.
    /// let me = gil.thread_states().into_iter().next();
    /// assert!(me.is_none()); // this thread has not used the Gil yet
    /// let guard = gil.acquire();
    /// let me = std::sync::Arc::clone(&gil.thread_states()[0]);
    /// drop(guard);
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
        if self.held_by(ts) {
            panic!(
                "Gil::acquire_interruptible: the calling thread already holds this Gil, \
                 which would deadlock; use Gil::ensure to take it re-entrantly"
            );
        }
        let wait = Wait {
            deadline: None,
            interruptible: true,
            priority: false,
            spin: false,
        };
        match self.lock_slow(ts, wait) {
            Outcome::Acquired => Ok(GilGuard::new(self, ts)),
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
            ts.depth
                .store(ts.depth.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
            return GilGuard::new_nested(self, ts);
        }
        self.acquire()
    }

    /// Whether any thread holds the Gil.
    pub fn is_locked(&self) -> bool {
        self.state.load(Ordering::Relaxed) & LOCKED != 0
    }

    /// Whether the calling thread holds the Gil.
    pub fn is_held_by_current_thread(&self) -> bool {
        match registry::existing(&self.listing, self.id()) {
            // SAFETY: the calling thread's own state, alive while it runs.
            Some(ptr) => self.held_by(unsafe { ptr.as_ref() }),
            None => false,
        }
    }

    /// A snapshot of the Gil's counters.
    pub fn stats(&self) -> GilStats {
        self.counters.snapshot()
    }

    /// The states of every live thread that has used this Gil, including
    /// threads blocked waiting for it (`ThreadStatus::Waiting`), in no
    /// particular order. A thread's state leaves the list when the thread
    /// ends, from its thread-local destructor (with `std`). Without `std`
    /// nothing reports a thread's end, so states stay listed until the Gil
    /// is dropped; the same holds under loom, whose model threads drop their
    /// locals after `join` returns.
    pub fn thread_states(&self) -> Vec<Arc<ThreadState>> {
        registry::states_of(&self.listing, self.id())
    }

    /// The calling thread's eval breaker for this Gil: for the holder, the
    /// flags its checkpoints act on (the same as
    /// `guard.thread_state().eval_breaker()`). Registers the thread if it
    /// had not used the Gil yet. Because the reference lives as long as the
    /// Gil, the thread's state is then kept (unlisted) until the Gil drops,
    /// even if the thread ends first.
    pub fn eval_breaker(&self) -> &EvalBreaker {
        let ts = self.current_state();
        // The reference lives as long as the Gil: keep the state until the
        // Gil drops even if the thread ends first.
        ts.lent.store(true, Ordering::Relaxed);
        ts.eval_breaker()
    }

    // ---- internals ----

    fn key(&self) -> usize {
        &self.state as *const AtomicU8 as usize
    }

    #[inline]
    fn id(&self) -> u64 {
        let id = self.id.load(Ordering::Relaxed);
        if id != 0 { id } else { self.assign_id() }
    }

    #[cold]
    fn assign_id(&self) -> u64 {
        use crate::sync::Ordering::Relaxed;
        let fresh = registry::fresh_gil_id();
        match self.id.compare_exchange(0, fresh, Relaxed, Relaxed) {
            Ok(_) => fresh,
            Err(winner) => winner,
        }
    }

    #[inline]
    fn current_state(&self) -> &ThreadState {
        let ptr = registry::current(&self.listing, self.id());
        // SAFETY: the calling thread's state for this Gil; it lives while
        // the thread does, and is kept until the Gil drops if it is pinned
        // (a guard or a lent breaker) when the thread ends. The returned
        // borrow is tied to `&self`, so it cannot outlive the Gil.
        unsafe { ptr.as_ref() }
    }

    #[inline]
    fn held_by(&self, ts: &ThreadState) -> bool {
        self.holder.load(Ordering::Relaxed) == ts as *const ThreadState as usize
    }

    #[inline]
    fn lock_fast(&self) -> bool {
        self.state
            .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    fn has_waiters(&self) -> bool {
        self.state.load(Ordering::Relaxed) & PARKED != 0
    }

    /// Bookkeeping of a thread that took the Gil by compare-and-swap.
    #[inline]
    fn became_holder_fast(&self, ts: &ThreadState) {
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
        // (invariant 5; the other order failed the loom model at bound 3).
        if self.last_holder.load(Ordering::Relaxed) != ts.ident() {
            self.last_holder.store(ts.ident(), Ordering::Relaxed);
            bump(&self.counters.switches);
        }
        self.holder
            .store(ts as *const ThreadState as usize, Ordering::Release);
    }

    #[inline]
    fn attached(&self, ts: &ThreadState) {
        bump(&self.counters.acquisitions);
        bump(&ts.counters.acquisitions);
        ts.depth
            .store(ts.depth.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        ts.set_status(ThreadStatus::Attached);
        hooks::fire(self, ts, GilEventKind::Resumed);
    }

    /// Waits for the Gil. On `Acquired` the bookkeeping is done except for
    /// `depth`, which the caller adjusts.
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
            Outcome::Acquired => {
                let waited = start.elapsed();
                self.counters.record_wait(waited);
                ts.counters.record_wait(waited);
                self.attached(ts);
            }
            Outcome::Interrupted => {
                ts.take_interrupt();
                ts.set_status(ThreadStatus::Detached);
                hooks::fire(self, ts, GilEventKind::GaveUp);
            }
            Outcome::TimedOut => {
                ts.set_status(ThreadStatus::Detached);
                hooks::fire(self, ts, GilEventKind::GaveUp);
            }
        }
        outcome
    }

    fn wait_for_gil(&self, ts: &ThreadState, wait: Wait) -> Outcome {
        // Arrival order, kept across re-parks (see `find_heir`).
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
        if wait.spin && !cfg!(loom) && self.spin_for_gil(ts) {
            return Outcome::Acquired;
        }
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
                        return Outcome::Acquired;
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

            let interval = self.switch_interval();
            let priority = wait.priority && self.policy() == SwitchPolicy::Interactive;
            if priority && request_drop.is_none() {
                // Interactive: ask at once instead of after an interval.
                request_drop = Some(self.counters.switches.load(Ordering::Relaxed));
            }
            let interval_start_switches = self.counters.switches.load(Ordering::Relaxed);
            let interval_ends = Instant::now().checked_add(interval);
            let deadline = earliest(wait.deadline, interval_ends);
            let mut token = ts.park_token().0;
            if priority {
                token |= PRIORITY;
            }
            let me = ts.park_token().0;
            let validate = || {
                transit.leave();
                if wait.interruptible && ts.interrupt_pending() {
                    return false;
                }
                if self.state.load(Ordering::Acquire) != LOCKED | PARKED {
                    return false;
                }
                if let Some(switches) = request_drop {
                    // Only if still no switch since the interval began
                    // (invariant 5). `holder` is read first (Acquire), so
                    // the switch number read next is at least the one its
                    // holder published (see `publish_holder`).
                    let holder = self.holder.load(Ordering::Acquire);
                    if self.counters.switches.load(Ordering::Relaxed) == switches {
                        if holder != 0 && holder != me {
                            // SAFETY: with the queue locked and the word at
                            // LOCKED | PARKED, the holder cannot finish a
                            // release, so its state is alive (module docs).
                            let holder = unsafe { &*(holder as *const ThreadState) };
                            let before = holder.eval_breaker().set(DROP_REQUEST, Ordering::Relaxed);
                            if before & DROP_REQUEST == 0 {
                                self.counters.drop_requests.fetch_add(1, Ordering::Relaxed);
                            }
                        } else if holder == 0 && priority && !cfg!(loom) {
                            // A new holder has not published itself yet
                            // (it took the word by compare-and-swap a moment
                            // ago, or a release is under way). A priority
                            // waiter that parked now would wait a whole
                            // interval for nothing: look again in a moment.
                            // (Under loom, with no spinning, it parks and
                            // waits for the handoff.)
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
            // SAFETY: the key is this Gil's own address; the callbacks touch
            // only the Gil and the holder's breaker (see validate) and cannot
            // unwind.
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
                    return Outcome::Acquired;
                }
                ParkResult::Unparked(park::TOKEN_INTERRUPTED) if wait.interruptible => {
                    return Outcome::Interrupted;
                }
                // A late `ThreadState::interrupt` aimed at an interruptible
                // wait this thread has left since: this wait ignores it (the
                // flag stays set for the next checkpoint) and parks again.
                ParkResult::Unparked(park::TOKEN_INTERRUPTED) => {}
                ParkResult::Unparked(_) => competing.set(true),
                ParkResult::Invalid => {
                    if undelivered.replace(false) {
                        for _ in 0..64 {
                            core::hint::spin_loop();
                        }
                    }
                }
                ParkResult::TimedOut => {
                    if wait.deadline.is_some_and(|d| d.has_passed()) {
                        return Outcome::TimedOut;
                    }
                    if self.counters.switches.load(Ordering::Relaxed) == interval_start_switches {
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
            for _ in 0..32 {
                core::hint::spin_loop();
            }
        }
    }

    /// Releases the Gil held by `ts`, handing it to the next waiter if there
    /// is one (see `How` for `Compete`). Returns whether it was handed to
    /// another thread.
    fn release(&self, ts: &ThreadState, how: How) -> bool {
        hooks::fire(
            self,
            ts,
            GilEventKind::Suspended {
                forced: how == How::Forced,
            },
        );
        ts.set_status(ThreadStatus::Detached);
        // Unpublished before the word is released (see the module docs); if
        // waiters make the fast path fail, the slow path names the heir.
        self.holder.store(0, Ordering::Relaxed);
        if self
            .state
            .compare_exchange(LOCKED, 0, Ordering::Release, Ordering::Relaxed)
            .is_ok()
        {
            // A waiter that asked us (and then left) did so before `holder`
            // was cleared; nobody can ask us now, so this clear is final and
            // the next acquisition starts without a stale request.
            if ts.eval_breaker().load(Ordering::Relaxed) & DROP_REQUEST != 0 {
                ts.eval_breaker().clear(DROP_REQUEST, Ordering::Relaxed);
            }
            return false;
        }
        self.release_slow(ts, how)
    }

    #[cold]
    fn release_slow(&self, ts: &ThreadState, how: How) -> bool {
        loop {
            let heir = self.find_heir();
            if let Some(handed) = self.wake_heir(ts, heir, how) {
                return handed;
            }
            // The heir left (timed out, interrupted) or someone queued
            // between the two looks: look again.
        }
    }

    /// The waiter that should get the Gil next: under `Interactive` one
    /// back from a voluntary release (`PRIORITY`) first, unless
    /// `MAX_OVERTAKES` such handoffs in a row have passed over a waiter
    /// without the flag (a preempted thread): then that one, so that it
    /// cannot starve. Within each rank, the one that started waiting first
    /// (lowest ticket). A waiter keeps its ticket when it re-parks after an
    /// interval, so this is arrival order although re-parking moves it to
    /// the tail of the queue.
    fn find_heir(&self) -> Option<Heir> {
        // The lowest ticket with and without the PRIORITY flag.
        let first: Cell<[Option<(u64, ParkToken)>; 2]> = Cell::new([None; 2]);
        let filter = |token: ParkToken| {
            // SAFETY: a parked waiter's state is alive while it is parked,
            // and it cannot leave the queue while we hold the queue lock.
            let waiter = unsafe { &*((token.0 & !TOKEN_FLAGS) as *const ThreadState) };
            let ticket = waiter.ticket.load(Ordering::Relaxed);
            let rank = usize::from(token.0 & PRIORITY == 0);
            let mut best = first.get();
            if best[rank].is_none_or(|(t, _)| ticket < t) {
                best[rank] = Some((ticket, token));
                first.set(best);
            }
            FilterOp::Skip
        };
        // SAFETY: our own key; the filter only reads waiters' states (alive,
        // see above) and nothing here unwinds.
        unsafe { park::unpark_filter(self.key(), filter, |_| park::DEFAULT_UNPARK_TOKEN) };
        match first.get() {
            [Some((_, token)), Some(_)]
                if self.overtakes.load(Ordering::Relaxed) < MAX_OVERTAKES =>
            {
                Some(Heir {
                    token,
                    overtakes: true,
                })
            }
            [_, Some((_, token))] | [Some((_, token)), None] => Some(Heir {
                token,
                overtakes: false,
            }),
            [None, None] => None,
        }
    }

    /// Hands the Gil to the waiter parked with `heir` (or, `How::Compete`
    /// and no drop request, frees it and wakes that waiter to take it), or
    /// with `None` releases it if nobody waits. Returns `Some(handed)`, or
    /// `None` when the queue changed since `find_heir` (nothing changed
    /// then).
    fn wake_heir(&self, ts: &ThreadState, heir: Option<Heir>, how: How) -> Option<bool> {
        let forced = how == How::Forced;
        let competed = Cell::new(false);
        let overtakes = heir.is_some_and(|h| h.overtakes);
        let heir = heir.map(|h| h.token);
        let found = Cell::new(false);
        let filter = |token: ParkToken| {
            if found.get() {
                return FilterOp::Stop;
            }
            if Some(token) == heir {
                found.set(true);
                return FilterOp::Unpark;
            }
            FilterOp::Skip
        };
        let callback = |result: UnparkResult| {
            if result.unparked_threads == 0 {
                if heir.is_none() && !result.have_more_threads {
                    self.holder.store(0, Ordering::Relaxed);
                    ts.eval_breaker().clear(DROP_REQUEST, Ordering::Relaxed);
                    // A swap, not a store: a waiter may be setting PARKED
                    // right now (outside the queue lock). Its `validate`
                    // then sees 0 and retries. (Loom, which does not order
                    // a plain store after a concurrent read-modify-write,
                    // let a waiter see the stale PARKED and sleep forever.)
                    self.state.swap(0, Ordering::Release);
                }
                return park::DEFAULT_UNPARK_TOKEN;
            }
            // Under the queue lock with `holder` already cleared, no waiter
            // can ask us any more: this look at the drop request is final.
            if how == How::Compete && ts.eval_breaker().load(Ordering::Relaxed) & DROP_REQUEST == 0
            {
                // Free the word (a swap, as above) and let the heir take it,
                // unless the releaser is back first.
                let parked = if result.have_more_threads { PARKED } else { 0 };
                self.state.swap(parked, Ordering::Release);
                competed.set(true);
                return park::DEFAULT_UNPARK_TOKEN;
            }
            let rank = heir.map_or(0, |t| t.0 & PRIORITY);
            if overtakes {
                self.overtakes.store(
                    self.overtakes.load(Ordering::Relaxed) + 1,
                    Ordering::Relaxed,
                );
            } else if rank == 0 {
                // A waiter without priority got its turn: the count restarts.
                self.overtakes.store(0, Ordering::Relaxed);
            }
            let heir = heir.map_or(0, |t| t.0 & !TOKEN_FLAGS);
            // SAFETY: the heir was parked until this moment and is not woken
            // before the callback returns, so its state is alive.
            let heir_state = unsafe { &*(heir as *const ThreadState) };
            heir_state
                .eval_breaker()
                .clear(DROP_REQUEST, Ordering::Relaxed);
            ts.eval_breaker().clear(DROP_REQUEST, Ordering::Relaxed);
            self.holder.store(heir, Ordering::Release);
            if self.last_holder.load(Ordering::Relaxed) != heir_state.ident() {
                self.last_holder
                    .store(heir_state.ident(), Ordering::Relaxed);
                bump(&self.counters.switches);
            }
            if forced {
                bump(&self.counters.forced_switches);
            }
            let parked = if result.have_more_threads { PARKED } else { 0 };
            // A swap for the same reason as above.
            self.state.swap(LOCKED | parked, Ordering::Release);
            TOKEN_HANDOFF
        };
        // SAFETY: our own key; the callbacks touch the Gil and the states of
        // the releaser and the heir (both alive), and cannot unwind.
        let result = unsafe { park::unpark_filter(self.key(), filter, callback) };
        if result.unparked_threads != 0 {
            Some(!competed.get())
        } else if heir.is_none() && !result.have_more_threads {
            Some(false)
        } else {
            None
        }
    }

    /// Wakes the waiter `find_heir` picks to compete for the Gil, for a
    /// waiter that was woken to do so and leaves (interrupted) instead.
    #[cold]
    fn wake_competitor(&self) {
        let Some(heir) = self.find_heir() else {
            return;
        };
        let filter = |token: ParkToken| {
            if token == heir.token {
                FilterOp::Unpark
            } else {
                FilterOp::Skip
            }
        };
        // SAFETY: our own key; waking a waiter with the default token makes
        // it look at the word again, which every Gil wait handles; nothing
        // here unwinds. (If the heir left meanwhile, it looks by itself.)
        unsafe { park::unpark_filter(self.key(), filter, |_| park::DEFAULT_UNPARK_TOKEN) };
    }

    /// Takes the Gil back after a release in the middle of a guard's life
    /// (a switch, `detach`, a Condition wait). `priority`: coming back from
    /// a voluntary release. Returns whether it had to wait.
    /// How many times the Gil changed hands. A thread that let go and took
    /// the Gil back knows another thread held it in between exactly when
    /// this moved: whether it had to wait says less, since the other thread
    /// may have come and gone before it even tried again.
    fn switch_number(&self) -> u64 {
        self.counters.switches.load(Ordering::Relaxed)
    }

    fn reacquire(&self, ts: &ThreadState, priority: bool, spin: bool) -> bool {
        let depth = ts.depth.load(Ordering::Relaxed);
        let waited = if self.lock_fast() {
            self.became_holder_fast(ts);
            false
        } else {
            let wait = Wait {
                deadline: None,
                interruptible: false,
                priority,
                spin: spin && !priority && self.policy() == SwitchPolicy::Interactive,
            };
            match self.lock_slow(ts, wait) {
                Outcome::Acquired => true,
                Outcome::TimedOut | Outcome::Interrupted => {
                    unreachable!("an untimed, uninterruptible wait ends with the Gil")
                }
            }
        };
        // The guard's depth did not change while it let go.
        ts.depth.store(depth, Ordering::Relaxed);
        waited
    }
}

/// How a holder lets go of the Gil.
#[derive(Clone, Copy, PartialEq, Eq)]
enum How {
    /// At a drop request (a forced switch): hand to the heir.
    Forced,
    /// Hand to the heir.
    Handoff,
    /// `SwitchPolicy::Interactive`, a voluntary release (detach, a Condition
    /// wait): free the Gil and wake the heir to take it, so that a thread
    /// back from a short detach (a non-blocking send) takes it straight back
    /// instead of waiting for the heir to wake up, run to a checkpoint and
    /// hand it back. A release with a drop request pending hands off.
    Compete,
}

/// The waiter `find_heir` chose.
#[derive(Clone, Copy)]
struct Heir {
    token: ParkToken,
    /// It has `PRIORITY` and a waiter without it is passed over.
    overtakes: bool,
}

/// A waiter between the end of an interval and its next park: out of the
/// park queue for a moment, but still waiting, with its ticket. Counted, so
/// that a forced switch waits a checkpoint for it instead of handing the Gil
/// past it to a later waiter. Leaves the count when it parks again or stops
/// waiting (drop).
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
        }
    }
}

impl Drop for Transit<'_> {
    fn drop(&mut self) {
        self.leave();
    }
}

impl Default for Gil {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Gil {
    fn drop(&mut self) {
        let id = self.id.load(Ordering::Relaxed);
        if id != 0 {
            registry::gil_dropped(&self.listing, id);
            hooks::gil_dropped(self);
        }
    }
}

impl fmt::Debug for Gil {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gil")
            .field("locked", &self.is_locked())
            .field("waiters", &self.has_waiters())
            .field("switch_interval", &self.switch_interval())
            .field("policy", &self.policy())
            .field("stats", &self.stats())
            .finish()
    }
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// What a [`GilGuard::checkpoint`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Checkpoint {
    /// The thread handed the Gil to a waiter that asked for it and took it
    /// back after another thread had held it (a forced switch).
    pub switched: bool,
    /// An interrupt was pending ([`ThreadState::interrupt`]); it is now
    /// consumed. The interpreter raises its `KeyboardInterrupt` here.
    pub interrupted: bool,
}

/// Proof that the calling thread holds the [`Gil`]; the Gil is released
/// when the thread's last guard drops (guards from [`Gil::ensure`] nest).
///
/// Not `Send`: the Gil belongs to a thread. Leaking a guard
/// (`mem::forget`) leaves the Gil taken for good, as a CPython thread that
/// exits holding the GIL does; nothing unsound follows, other threads just
/// wait (or time out).
pub struct GilGuard<'a> {
    gil: &'a Gil,
    ts: &'a ThreadState,
    /// The thread's guard count while this guard let go of the Gil.
    saved_depth: usize,
    _not_send: PhantomData<*const ()>,
}

impl<'a> GilGuard<'a> {
    #[inline]
    fn new(gil: &'a Gil, ts: &'a ThreadState) -> Self {
        Self {
            gil,
            ts,
            saved_depth: 0,
            _not_send: PhantomData,
        }
    }

    fn new_nested(gil: &'a Gil, ts: &'a ThreadState) -> Self {
        Self::new(gil, ts)
    }

    /// Whether the thread should call [`checkpoint`](Self::checkpoint): a
    /// waiter asked for the Gil, an interrupt is pending, or a pending call
    /// was requested. One relaxed load of the thread's [`EvalBreaker`]:
    /// cheap enough for every instruction.
    #[inline]
    pub fn should_yield(&self) -> bool {
        self.ts.eval_breaker().is_set()
    }

    /// Handles what the eval breaker asks (CPython's
    /// `_Py_HandlePending`): on a drop request, hands the Gil to the oldest
    /// waiter and waits until it is this thread's turn again (a forced
    /// switch); reports and consumes a pending interrupt. Cheap (one load)
    /// when nothing is asked. Pending calls are left for the caller
    /// ([`EvalBreaker::take_pending_call`]).
    ///
    /// While a waiter is re-parking after an interval (microseconds), the
    /// switch is put off and the request stays set, so that the waiter does
    /// not lose its turn: a later checkpoint switches.
    ///
    /// # Panics
    /// If called on a guard whose thread has the Gil released (a guard
    /// moved into another guard's `detach` closure).
    #[inline]
    pub fn checkpoint(&mut self) -> Checkpoint {
        let bits = self.ts.eval_breaker().load(Ordering::Relaxed);
        if bits & (DROP_REQUEST | INTERRUPT) == 0 {
            return Checkpoint::default();
        }
        self.checkpoint_slow(bits)
    }

    #[cold]
    fn checkpoint_slow(&mut self, bits: u8) -> Checkpoint {
        let mut result = Checkpoint {
            switched: false,
            interrupted: bits & INTERRUPT != 0 && self.ts.take_interrupt(),
        };
        if bits & DROP_REQUEST != 0 {
            self.assert_held("checkpoint");
            if self.gil.in_transit.load(Ordering::Relaxed) != 0 {
                // A waiter is re-parking after an interval and would lose
                // its turn: keep the request and switch at a later
                // checkpoint, a moment from now.
            } else if self.gil.has_waiters() {
                let (gil, ts) = (self.gil, self.ts);
                let before = gil.switch_number();
                let handed = gil.release(ts, How::Forced);
                gil.reacquire(ts, false, true);
                result.switched = handed || gil.switch_number() != before;
                // A release that found no heir parked yet (it was between
                // raising the waiters bit and joining the queue) frees the
                // Gil, and the waiter takes it: a forced switch all the same.
                if result.switched {
                    bump(&ts.counters.forced_releases);
                    if !handed {
                        bump(&gil.counters.forced_switches);
                    }
                }
            } else {
                self.ts
                    .eval_breaker()
                    .clear(DROP_REQUEST, Ordering::Relaxed);
            }
        }
        result
    }

    /// Lets a waiting thread run: if any thread waits for the Gil, hands it
    /// over and waits for it to come back. Returns whether it switched.
    ///
    /// # Panics
    /// As [`checkpoint`](Self::checkpoint).
    pub fn yield_now(&mut self) -> bool {
        self.assert_held("yield_now");
        if !self.gil.has_waiters() {
            return false;
        }
        let (gil, ts) = (self.gil, self.ts);
        let before = gil.switch_number();
        let handed = gil.release(ts, How::Handoff);
        gil.reacquire(ts, false, false);
        let switched = handed || gil.switch_number() != before;
        if switched {
            bump(&ts.counters.voluntary_releases);
        }
        switched
    }

    /// Releases the Gil around `f` and takes it back afterwards
    /// (`Py_BEGIN_ALLOW_THREADS` / `Py_END_ALLOW_THREADS`): for blocking
    /// work that does not touch interpreter state. A waiting thread gets the
    /// Gil at once (under [`SwitchPolicy::Interactive`] it is woken to take
    /// it, and this thread may take it back first if `f` returns before the
    /// waiter runs). The Gil is taken back even if `f` panics.
    ///
    /// ```
    /// use gilock::{Gil, ThreadStatus};
    ///
    /// let gil = Gil::new();
    /// let mut guard = gil.acquire();
    /// let status = guard.detach(|| {
    ///     assert!(!gil.is_locked());
    ///     gil.thread_states()[0].status()
    /// });
    /// assert_eq!(status, ThreadStatus::Detached);
    /// assert!(gil.is_held_by_current_thread());
    /// ```
    ///
    /// # Panics
    /// As [`checkpoint`](Self::checkpoint). Moving another guard of the
    /// same thread into `f` and dropping it there panics too.
    pub fn detach<R>(&mut self, f: impl FnOnce() -> R) -> R {
        self.release_for_wait();
        self.ts.set_status(ThreadStatus::Detached);
        struct Reattach<'g, 'a>(&'g mut GilGuard<'a>);
        impl Drop for Reattach<'_, '_> {
            fn drop(&mut self) {
                self.0.reacquire_after_wait();
            }
        }
        let _reattach = Reattach(self);
        f()
    }

    /// The calling thread's state for this Gil.
    pub fn thread_state(&self) -> &ThreadState {
        self.ts
    }

    /// Releases the Gil in the middle of the guard's life, voluntarily (as
    /// `detach` does before running its closure): hands it at once to the
    /// next waiter if there is one, and marks the thread `Waiting`. For
    /// Condition waits through a `GilGuard`: call this, park (interruptibly,
    /// see `ThreadState::set_waiting_on`), then
    /// [`reacquire_after_wait`](Self::reacquire_after_wait) on every path out.
    ///
    /// # Panics
    /// If the thread does not hold the Gil (see `checkpoint`).
    pub(crate) fn release_for_wait(&mut self) {
        self.assert_held("detach or a Condition wait");
        let (gil, ts) = (self.gil, self.ts);
        self.saved_depth = ts.depth.swap(0, Ordering::Relaxed);
        bump(&ts.counters.voluntary_releases);
        let how = if gil.policy() == SwitchPolicy::Interactive {
            How::Compete
        } else {
            How::Handoff
        };
        gil.release(ts, how);
        ts.set_status(ThreadStatus::Waiting);
    }

    /// Takes the Gil back after [`release_for_wait`](Self::release_for_wait),
    /// uninterruptibly, and restores the thread's guard count. Under the
    /// `Interactive` policy the thread outranks preempted waiters.
    pub(crate) fn reacquire_after_wait(&mut self) {
        let (gil, ts) = (self.gil, self.ts);
        // Guards taken (and leaked out of) a detach closure count on top.
        let extra = ts.depth.load(Ordering::Relaxed);
        if !gil.held_by(ts) {
            ts.depth.store(0, Ordering::Relaxed);
            gil.reacquire(ts, true, false);
        }
        ts.depth.store(self.saved_depth + extra, Ordering::Relaxed);
        ts.set_status(ThreadStatus::Attached);
    }

    fn assert_held(&self, what: &str) {
        assert!(
            self.gil.held_by(self.ts),
            "GilGuard::{what}: this thread does not hold the Gil right now \
             (was this guard moved into another guard's detach closure?)"
        );
    }
}

impl Drop for GilGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        let ts = self.ts;
        let depth = ts.depth.load(Ordering::Relaxed);
        if depth > 1 {
            ts.depth.store(depth - 1, Ordering::Relaxed);
            return;
        }
        // Never release a Gil this thread does not hold, whatever a misuse
        // did to the count (one load of a line the release touches anyway).
        if depth == 0 || !self.gil.held_by(ts) {
            // Only reachable by moving a guard into another guard's detach
            // closure: the Gil is not ours to release.
            if !std_panicking() {
                panic!("GilGuard dropped while its thread had released the Gil (inside detach)");
            }
            return;
        }
        ts.depth.store(0, Ordering::Relaxed);
        self.gil.release(ts, How::Handoff);
    }
}

#[cfg(any(feature = "std", loom))]
fn std_panicking() -> bool {
    std::thread::panicking()
}

#[cfg(not(any(feature = "std", loom)))]
fn std_panicking() -> bool {
    false
}

impl fmt::Debug for GilGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GilGuard")
            .field("thread", &self.ts.ident())
            .field("eval_breaker", self.ts.eval_breaker())
            .finish()
    }
}
