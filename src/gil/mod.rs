//! The global interpreter lock: `Gil`, with the switch interval, drop
//! requests, forced switching and detach of CPython's `ceval_gil.c`, on a
//! fair handoff core.
//!
//! # The algorithm
//!
//! The Gil's state word holds the `ThreadState` address of the holder (of
//! the last holder, while the Gil is free) and three bits: `LOCKED`,
//! `PARKED` (threads may be parked on it; `PARKED` implies `LOCKED`, apart
//! from a stale bit that an interrupted waiter may leave and the next
//! release clears) and `HOOKED` (an event hook is registered). Uncontended,
//! acquire and release are one compare-and-swap each, and a thread that
//! takes the Gil back after it was the last to hold it compares with its
//! own address and `LOCKED` alone: the fast paths find the holder, the
//! switch count and the hook in the compare-and-swap itself. Any other
//! word (another last holder, a hook, waiters) sends them to a path that
//! counts the switch, tells the hook or waits.
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
//! waiter. A waiter whose interval just ran out is out of the queue for the
//! moment it takes to park again; it is counted (`Transit`, changed only
//! with the queue locked), and a forced switch that finds it counted keeps
//! the Gil until the next checkpoint rather than pass it over.
//!
//! Under `SwitchPolicy::Interactive` the order is by fair share instead
//! (`fair_share`): each thread's virtual runtime (Gil time held while
//! others waited) decides when a waiter asks for the Gil and who gets it
//! next, a thread back from a voluntary release asks at once, and a holder
//! switched out for such a thread lends it the Gil and gets it back at that
//! thread's next release.
//!
//! A waiter out of the park queue for a moment (spinning for its handoff,
//! or between two parks) may wait *in place* in one of a few slots
//! (`in_place`): a releaser then makes it the holder where it is, by
//! writing its address into the word with `LOCKED` kept, and no wake-up.
//! `PARKED` means "threads may be waiting" and counts them too, so that a
//! release with such a waiter takes the slow path; and the word is never
//! freed while a slot is taken, so a waiter in place only ever leaves its
//! slot by a handoff or, with the queue locked, to park.
//!
//! The code is split by concern: `acquire.rs` (taking the Gil, and the
//! wait loop), `release.rs` (letting go and choosing the heir),
//! `fair_share.rs` (the Interactive policy's accounting), `guard.rs`
//! (`GilGuard`: checkpoints, `yield_now`, `detach`), `attached.rs` (the
//! Gil's side of the protocol by which every primitive waits while its
//! thread holds the Gil) and `waits.rs` (the primitives' `_with` forms on
//! that protocol).
//!
//! # Who may touch the holder's `ThreadState`
//!
//! While `LOCKED` is set, the word's address is the holder's
//! `ThreadState`: whoever sets `LOCKED` writes its address in the same
//! compare-and-swap, and a handoff writes the heir's. A waiter dereferences
//! it only inside its park `validate` callback, with the park queue locked
//! and `LOCKED | PARKED` both set in the word it read. Then the holder
//! cannot finish a release: the fast path needs the word without `PARKED`,
//! and the slow path needs the queue lock. While the Gil is free the
//! address is only compared, never followed: the thread it names may be
//! gone. And a holder's state cannot be freed under it: a thread's state
//! lives until the thread ends, and one that still holds a Gil then (a
//! leaked guard) is kept until the Gil drops (see `registry`). Nor after
//! it without order: a waiter that asked and then timed out, the last one
//! parked, clears `PARKED` with Release, and the fast release (which takes
//! no queue lock) acquires it, so the request is done before the holder's
//! thread can end and free its state.

mod acquire;
mod attached;
mod borrows;
mod breaker;
mod cell;
mod fair_share;
mod guard;
mod hooks;
mod in_place;
mod policy;
mod registry;
mod release;
mod stats;
mod thread_state;
mod thread_word;
#[cfg(feature = "std")]
mod trace;
mod waits;

pub use breaker::EvalBreaker;
pub use cell::{GilCell, GilRef, GilRefMut};
pub use guard::{Checkpoint, GilGuard};
pub use hooks::{GilEvent, GilEventKind, GilHook};
pub use policy::SwitchPolicy;
pub use stats::{GilStats, ThreadStats, WaitHistogram};
pub use thread_state::{ThreadState, ThreadStatus};
#[cfg(feature = "std")]
pub use trace::{Span, SpanKind, TraceRecorder};
pub use waits::MutexExt;

use crate::interval;
use crate::sync::{AtomicU8, AtomicU64, AtomicUsize, Ordering, const_fn};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;
use stats::GilCounters;

/// State-word bit: a thread holds the Gil (the word's address).
const LOCKED: usize = 0b001;
/// State-word bit: threads may be waiting (see the module docs).
const PARKED: usize = 0b010;
/// State-word bit: an event hook is registered, so that both fast paths
/// fail over to the paths that tell it (see `hooks`).
const HOOKED: usize = 0b100;
/// The state word's address bits: a `ThreadState` (aligned to 64 bytes).
const HOLDER: usize = !(LOCKED | PARKED | HOOKED);
const _: () = assert!(core::mem::align_of::<ThreadState>() > !HOLDER);

/// Park-token flag: under `Interactive`, the waiter comes back from a
/// voluntary release (a holder switched out for it lends it the Gil); under
/// either policy, it comes back from a wait that an interrupt ended (Fifo
/// serves it first).
const PRIORITY: usize = 0b001;

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
/// (`Py_BEGIN_ALLOW_THREADS`), which lets other threads run meanwhile, and
/// every blocking primitive of the crate has a `_with` form
/// ([`Lock::acquire_with`](crate::Lock::acquire_with), ...) that lets go of
/// the Gil only while it must wait.
///
/// ```
/// # #[cfg(feature = "std")] {
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
/// # }
/// ```
// C layout on a cache line of its own: what the uncontended acquire and
// release touch comes first, then, on the same line, what a handoff between
// two threads reads and writes (`state` to `lender`), so that a loan moves
// one line between their cores, not four (a constant assertion below
// checks the fit); statistics last.
#[repr(C, align(64))]
pub struct Gil {
    /// The holder's (or last holder's) `ThreadState` address and the bits
    /// `LOCKED`, `PARKED`, `HOOKED` (see the module docs).
    state: AtomicUsize,
    policy: AtomicU8,
    /// Whether an event hook is registered, for the slow paths (see
    /// `hooks`; the fast paths see `HOOKED` in the word).
    hooks: hooks::Flag,
    /// Configuration, not synchronisation: kept off the loom model.
    interval_micros: crate::sync::UnmodeledAtomicU32,
    /// How many times the Gil changed hands. Algorithm state, not only a
    /// statistic: a waiter asks for a drop only if it did not move during
    /// its interval (and the holder is the same), and a thread that let go
    /// knows another thread held the Gil in between exactly when it moved.
    switch_number: AtomicU64,
    /// Waiters' tickets: their arrival order.
    next_ticket: AtomicU64,
    /// Waiters between an interval's end and their next park (`Transit`).
    /// Changed only with the park queue locked.
    in_transit: AtomicUsize,
    /// How many times a waiter left `in_transit` (wrapping): a forced
    /// release that sees it move between its two looks at the queue looks
    /// again, so that a waiter that re-parked in between is not passed over.
    transit_leaves: AtomicUsize,
    /// `Interactive`: the lowest virtual runtime among the waiters at the
    /// latest handoff, never lower than before (see `fair_share`). Written
    /// with the queue locked.
    min_vruntime: AtomicU64,
    /// `Interactive`: the `ThreadState` address of the holder that lent the
    /// Gil to a thread back from a voluntary release and waits for it back,
    /// or 0. Changed only with the queue locked.
    lender: AtomicUsize,
    /// `Interactive`: when the holder's contended hold began (see
    /// `fair_share`).
    hold_start: fair_share::HoldStart,
    /// Waiters out of the park queue that a release can hand the Gil to
    /// where they are (see `in_place`).
    in_place: in_place::InPlace,
    /// How long, in ns, a waiter in place spins for its handoff, per
    /// `acquire::Spin` (adapted by `spin_for_handoff`). Tuning, not
    /// synchronisation: kept off the loom model.
    spin_budget: [crate::sync::UnmodeledAtomicU64; acquire::SPIN_KINDS],
    /// The address of a holder that was handed the Gil while parked and
    /// has not run yet (its wake-up is under way), or 0: a waiter that asked
    /// that holder to drop the Gil does not count the wake-up against its
    /// spin budget (see `spin_for_handoff`). A hint for spinning, not
    /// synchronisation: kept off the loom model.
    waking: crate::sync::UnmodeledAtomicUsize,
    listing: registry::Listing,
    /// Assigned at first use (see `registry`); never a loom atomic.
    id: crate::sync::UnmodeledAtomicU64,
    counters: GilCounters,
}

static_assertions::assert_impl_all!(Gil: Send, Sync);
static_assertions::assert_not_impl_any!(GilGuard<'static>: Send, Sync);
static_assertions::assert_impl_all!(ThreadState: Send, Sync);
static_assertions::assert_impl_all!(EvalBreaker: Send, Sync);

// What a handoff touches fits the Gil's first cache line (see the layout
// comment on `Gil`). Loom's atomics are larger, and its models do not time.
#[cfg(not(loom))]
const _: () = assert!(
    core::mem::offset_of!(Gil, lender) + core::mem::size_of::<AtomicUsize>() <= 64,
    "the handoff fields of Gil no longer fit one cache line"
);

impl Gil {
    const_fn! {
        /// An unlocked Gil with the default 5 ms switch interval and the
        /// [`Fifo`](SwitchPolicy::Fifo) policy.
        ///
        /// `const` (so a Gil can be a `static`) except under `--cfg loom`,
        /// whose atomics cannot be built in constants.
        #[must_use]
        pub const fn new() -> Self {
            Self::with_micros(interval::DEFAULT_MICROS)
        }
    }

    const_fn! {
        /// An unlocked Gil whose waiters ask for a switch after `interval`
        /// (rounded as in [`set_switch_interval`](Self::set_switch_interval)).
        #[must_use]
        pub const fn with_switch_interval(interval: Duration) -> Self {
            Self::with_micros(interval::to_micros(interval))
        }
    }

    const_fn! {
        const fn with_micros(micros: u32) -> Self {
            Self {
                state: AtomicUsize::new(0),
                switch_number: AtomicU64::new(0),
                interval_micros: crate::sync::UnmodeledAtomicU32::new(micros),
                next_ticket: AtomicU64::new(0),
                in_transit: AtomicUsize::new(0),
                transit_leaves: AtomicUsize::new(0),
                min_vruntime: AtomicU64::new(fair_share::ORIGIN),
                hold_start: fair_share::HoldStart::new(),
                lender: AtomicUsize::new(0),
                in_place: in_place::InPlace::new(),
                spin_budget: [const {
                    crate::sync::UnmodeledAtomicU64::new(acquire::HANDOFF_SPIN.as_micros() as u64 * 1000)
                }; acquire::SPIN_KINDS],
                waking: crate::sync::UnmodeledAtomicUsize::new(0),
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
    #[doc(alias = "setswitchinterval")]
    pub fn set_switch_interval(&self, interval: Duration) {
        self.interval_micros
            .store(interval::to_micros(interval), Ordering::Relaxed);
    }

    /// The switch interval (`sys.getswitchinterval`).
    #[doc(alias = "getswitchinterval")]
    pub fn switch_interval(&self) -> Duration {
        interval::from_micros(self.interval_micros.load(Ordering::Relaxed))
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

    /// Whether any thread holds the Gil.
    #[doc(alias = "locked")]
    pub fn is_locked(&self) -> bool {
        self.state.load(Ordering::Relaxed) & LOCKED != 0
    }

    /// Whether the calling thread holds the Gil.
    #[doc(alias = "PyGILState_Check")]
    #[doc(alias = "is_owned_by_current_thread")]
    pub fn is_held_by_current_thread(&self) -> bool {
        match registry::existing(&self.listing, self.id()) {
            // SAFETY:
            // - `existing` returns the calling thread's own state, which
            //   lives at least while the thread runs (see `registry`);
            // - the reference does not outlive this call.
            Some(ptr) => self.held_by(unsafe { ptr.as_ref() }),
            None => false,
        }
    }

    /// A snapshot of the Gil's counters.
    ///
    /// Takes the lock of the list of threads (to add up their
    /// acquisitions, which each thread counts on its own state): a call for
    /// diagnostics, not for a hot loop.
    pub fn stats(&self) -> GilStats {
        let acquisitions = registry::acquisitions(&self.listing, self.id());
        self.counters
            .snapshot(self.switch_number.load(Ordering::Relaxed), acquisitions)
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

    /// The calling thread's state for this Gil, registering the thread if
    /// it had not used the Gil yet: the handle another thread needs to
    /// [`interrupt`](ThreadState::interrupt) this one (hand it over before
    /// blocking). The same state as [`GilGuard::thread_state`].
    ///
    /// ```
    /// # #[cfg(feature = "std")] {
    /// use gilock::{Gil, Interrupted, Lock, ThreadStatus};
    ///
    /// let gil = Gil::new();
    /// let lock = Lock::new();
    /// lock.acquire(); // held elsewhere, as it were: acquire_with must wait
    /// std::thread::scope(|s| {
    ///     let (tx, rx) = std::sync::mpsc::channel();
    ///     s.spawn(move || {
    ///         let me: std::sync::Arc<gilock::ThreadState> = rx.recv().unwrap();
    ///         // Once it is queued on the lock, interrupt it (Ctrl-C).
    ///         while me.status() != ThreadStatus::Waiting {
    ///             std::thread::yield_now();
    ///         }
    ///         me.interrupt();
    ///     });
    ///     let mut guard = gil.acquire();
    ///     tx.send(gil.current_thread_state()).unwrap();
    ///     // Blocked in acquire_with, the Gil released: the interrupt ends it.
    ///     assert_eq!(lock.acquire_with(&mut guard), Err(Interrupted));
    /// });
    /// # }
    /// ```
    #[doc(alias = "PyThreadState_Get")]
    pub fn current_thread_state(&self) -> Arc<ThreadState> {
        registry::current_arc(&self.listing, self.id())
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

    // ---- internals shared by acquire, release and the guard ----

    fn key(&self) -> usize {
        &self.state as *const AtomicUsize as usize
    }

    #[inline]
    fn id(&self) -> u64 {
        let id = self.id.load(Ordering::Relaxed);
        if id != 0 { id } else { self.assign_id() }
    }

    #[cold]
    fn assign_id(&self) -> u64 {
        let fresh = registry::fresh_gil_id();
        match self
            .id
            .compare_exchange(0, fresh, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => fresh,
            Err(winner) => winner,
        }
    }

    #[inline]
    fn current_state(&self) -> &ThreadState {
        let ptr = registry::current(&self.listing, self.id());
        // SAFETY:
        // - `current` returns the calling thread's state for this Gil, which
        //   lives while the thread does, and is kept until the Gil drops if
        //   it is pinned (a guard, a lent breaker) when the thread ends;
        // - the returned borrow is tied to `&self`, so it cannot outlive the
        //   Gil.
        unsafe { ptr.as_ref() }
    }

    #[inline]
    fn held_by(&self, ts: &ThreadState) -> bool {
        self.is_holder(self.state.load(Ordering::Relaxed), ts.address())
    }

    /// Whether the state word `state` says the Gil is held by the thread
    /// whose `ThreadState` is at `addr`.
    #[inline]
    fn is_holder(&self, state: usize, addr: usize) -> bool {
        state & (HOLDER | LOCKED) == addr | LOCKED
    }

    fn has_waiters(&self) -> bool {
        self.state.load(Ordering::Relaxed) & PARKED != 0
    }

    fn switch_number(&self) -> u64 {
        self.switch_number.load(Ordering::Relaxed)
    }

    /// Counts a switch: the Gil went to a thread other than the one that
    /// held it last. Called by the new holder after it took the Gil, or by
    /// the releaser in a handoff before it writes the heir into the word:
    /// only a holder writes the count.
    fn count_switch(&self) {
        let n = self.switch_number.load(Ordering::Relaxed);
        self.switch_number.store(n + 1, Ordering::Relaxed);
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
