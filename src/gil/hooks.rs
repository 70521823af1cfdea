//! Event hooks: a callback that sees every thread's transitions on a Gil
//! (Ruby's GVL instrumentation API: started, ready, resumed, suspended,
//! exited).
//!
//! # Cost
//!
//! A registered hook sets a bit in the Gil's state word (`HOOKED`), so the
//! uncontended acquire and release, whose compare-and-swaps expect the word
//! without it, pay nothing to find out: with a hook they fail over to the
//! paths that tell it. The other transitions load a flag of the Gil
//! (relaxed) that says the same, and do nothing more when it is clear. Only
//! with a hook do events read the clock and look the hook up.
//!
//! # Where the hook lives
//!
//! Registered hooks are kept in one process-wide list keyed by the Gil's id
//! (not in the Gil), because a thread's `Exited` event fires from its
//! thread-local destructor, which cannot reach the Gil. An event clones the
//! hook's `Arc` under the list's lock and calls it after unlocking, so the
//! hook may run long or be replaced meanwhile, and an unregistered hook is
//! freed only when the last call in progress returns.
//!
//! # Builds
//!
//! Hooks need `std` (timestamps are `std::time::Instant`): without it the
//! flag and the bit are never set. Under `--cfg loom` hooks work but are
//! not part of what loom explores (the flag and the list are not loom
//! objects; the bit is, as part of the state word), and `Exited` is not
//! reported there: loom tears thread-locals down after the model's threads
//! are joined.

use super::Gil;
use super::thread_state::ThreadState;
use crate::sync::{Ordering, UnmodeledAtomicBool};

/// What happened to a thread on a [`Gil`]; see [`GilEvent`].
///
/// Per thread, the events come in this order (a regular expression over the
/// kinds):
///
/// ```text
/// Started ( Ready (Resumed Suspended | GaveUp) | Resumed Suspended )* Exited?
/// ```
///
/// `Ready` is sent only when the thread has to wait: a thread that takes a
/// free Gil at once (the uncontended fast path) goes straight to `Resumed`.
/// So every `Ready` → `Resumed` pair is a real wait, and a recorder sees no
/// zero-length waits. A thread may already hold the Gil when a hook is
/// registered; its first event is then `Suspended` (after `Started`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GilEventKind {
    /// The hook sees this thread for the first time: sent once per thread
    /// per registered hook, just before the thread's first other event
    /// (whether or not the thread used the Gil before the hook was set).
    Started,
    /// The thread found the Gil taken and began waiting for it.
    Ready,
    /// The thread took the Gil.
    Resumed,
    /// The thread is about to release the Gil (sent while it still holds
    /// it, so a `Resumed` of another thread always comes later).
    Suspended {
        /// Released because a waiter asked (a forced switch at a
        /// checkpoint); `false` for `detach`, `yield_now`, a Condition wait
        /// or the last guard dropped.
        forced: bool,
    },
    /// The thread stopped waiting without the Gil: a timeout
    /// ([`Gil::try_acquire_for`]) or an interrupt
    /// ([`Gil::acquire_interruptible`]).
    GaveUp,
    /// The thread ended and its state was removed (std only; sent from the
    /// thread's thread-local destructor, and only if the hook saw the
    /// thread's `Started`).
    Exited,
}

/// One event of one thread on a [`Gil`], passed to the hook registered with
/// `Gil::set_event_hook` (with `std`).
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct GilEvent<'a> {
    /// What happened.
    pub kind: GilEventKind,
    /// The thread it happened to (its [`ident`](ThreadState::ident) and
    /// [`name`](ThreadState::name) identify it in a trace).
    pub thread: &'a ThreadState,
    /// When, on the monotonic clock. Read on the thread the event is about,
    /// after the fact for `Resumed` and before it for `Suspended`, so the
    /// holding spans of different threads never overlap.
    #[cfg(feature = "std")]
    pub at: std::time::Instant,
}

/// The callback type of `Gil::set_event_hook` (with `std`).
///
/// It runs on the thread the event is about, at the transition itself
/// (`Resumed` and `Suspended` with the Gil held), so it should be quick. It
/// never runs inside a park callback, so it may take other locks (a
/// `FairMutex`, [`Gil::thread_states`]) and block. It must not use the Gil
/// it observes: taking, releasing (dropping a guard) or waiting for that
/// Gil from inside the hook panics with a message saying so. A hook that
/// panics is removed: the panic is reported by the panic hook as usual,
/// then caught, so it never leaves the Gil half-released or taken by a
/// thread that does not know it.
pub type GilHook = dyn Fn(&GilEvent<'_>) + Send + Sync;

/// The per-Gil "a hook is registered" flag. Not a loom atomic: it carries
/// no synchronisation (the list's lock does), and a load of it must not add
/// branches to loom models.
pub(super) struct Flag(UnmodeledAtomicBool);

impl Flag {
    pub(super) const fn new() -> Self {
        Self(UnmodeledAtomicBool::new(false))
    }
}

/// Sets or clears the flag and the word's `HOOKED` together. Called with
/// the list locked, so that concurrent registrations leave both agreeing
/// with the list. Relaxed: neither carries data (an event clones the hook
/// under the list's lock).
#[cfg(feature = "std")]
fn set_flag(gil: &Gil, on: bool) {
    gil.hooks.0.store(on, Ordering::Relaxed);
    if on {
        gil.state.fetch_or(super::HOOKED, Ordering::Relaxed);
    } else {
        gil.state.fetch_and(!super::HOOKED, Ordering::Relaxed);
    }
}

/// Whether `gil` may have an event hook (a fast path that finds none skips
/// the hook's bookkeeping; one set meanwhile sees the next event).
#[inline]
pub(super) fn may_fire(gil: &Gil) -> bool {
    gil.hooks.0.load(Ordering::Relaxed)
}

/// Sends `kind` about `ts` to `gil`'s hook, if one is registered.
#[inline(always)]
pub(super) fn fire(gil: &Gil, ts: &ThreadState, kind: GilEventKind) {
    if may_fire(gil) {
        imp::fire_slow(gil, ts, kind);
    }
}

/// Forgets a dropped Gil's hook.
pub(super) fn gil_dropped(gil: &Gil) {
    if gil.hooks.0.load(Ordering::Relaxed) {
        imp::unregister(gil);
    }
}

/// Sends `Exited` for the states of a thread that ended.
#[cfg(all(feature = "std", not(loom)))]
pub(super) fn thread_ended(states: &[alloc::sync::Arc<ThreadState>]) {
    imp::thread_ended(states);
}

#[cfg(feature = "std")]
mod imp {
    use super::{Gil, GilEvent, GilEventKind, GilHook, ThreadState};
    use crate::sync::{Ordering, UnmodeledAtomicU64, UnmodeledAtomicUsize};
    use alloc::sync::Arc;
    use alloc::vec::Vec;

    struct Entry {
        gil_id: u64,
        /// Unique per registration: a thread whose `hook_gen` differs has
        /// not been announced (`Started`) to this hook yet.
        generation: u64,
        hook: Arc<GilHook>,
    }

    /// The registered hooks. A std mutex even under loom: its critical
    /// sections touch no loom object, so they never switch model threads.
    static HOOKS: std::sync::Mutex<Vec<Entry>> = std::sync::Mutex::new(Vec::new());
    /// How many entries `HOOKS` has: ending threads look only if any.
    static REGISTERED: UnmodeledAtomicUsize = UnmodeledAtomicUsize::new(0);
    static NEXT_GENERATION: UnmodeledAtomicU64 = UnmodeledAtomicU64::new(1);

    fn hooks() -> std::sync::MutexGuard<'static, Vec<Entry>> {
        // A hook never runs under this lock, so a poisoned lock only means
        // a panic in our own few lines; the list is still consistent.
        HOOKS.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lookup(gil_id: u64) -> Option<(u64, Arc<GilHook>)> {
        hooks()
            .iter()
            .find(|e| e.gil_id == gil_id)
            .map(|e| (e.generation, Arc::clone(&e.hook)))
    }

    /// Calls the hook; returns false if it panicked. The events fire in the
    /// middle of the Gil's transitions (holding it, or about to release
    /// it), where an unwind would leave the Gil taken for good.
    fn call(hook: &GilHook, kind: GilEventKind, ts: &ThreadState) -> bool {
        let event = GilEvent {
            kind,
            thread: ts,
            at: std::time::Instant::now(),
        };
        // While the hook runs, the thread's Gil calls panic (see
        // `ThreadState::check_not_in_hook`); the panic is caught below.
        ts.set_in_hook(true);
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(&event))).is_ok();
        ts.set_in_hook(false);
        ok
    }

    /// Sends `kind`, preceded by `Started` if the hook of `generation` has
    /// not seen `ts` yet. Returns false if the hook panicked.
    fn send(hook: &GilHook, generation: u64, ts: &ThreadState, kind: GilEventKind) -> bool {
        // Only the thread itself sends events about its state, so a plain
        // load and store suffice.
        if ts.hook_gen.load(Ordering::Relaxed) != generation {
            ts.hook_gen.store(generation, Ordering::Relaxed);
            if !call(hook, GilEventKind::Started, ts) {
                return false;
            }
        }
        call(hook, kind, ts)
    }

    #[cold]
    #[inline(never)]
    pub(super) fn fire_slow(gil: &Gil, ts: &ThreadState, kind: GilEventKind) {
        let Some((generation, hook)) = lookup(gil.id()) else {
            return; // unregistered since the flag was read
        };
        if !send(&*hook, generation, ts, kind) {
            remove_panicked(gil.id(), generation, Some(gil));
        }
    }

    /// Removes the hook of `generation` after it panicked (unless it was
    /// replaced meanwhile).
    #[cold]
    fn remove_panicked(gil_id: u64, generation: u64, gil: Option<&Gil>) {
        let mut list = hooks();
        let Some(i) = list
            .iter()
            .position(|e| e.gil_id == gil_id && e.generation == generation)
        else {
            return;
        };
        let entry = list.swap_remove(i);
        if let Some(gil) = gil {
            super::set_flag(gil, false);
        }
        REGISTERED.store(list.len(), Ordering::Relaxed);
        drop(list);
        // Dropped outside the lock: the hook's captures may run code.
        drop(entry);
    }

    pub(super) fn register(gil: &Gil, hook: Option<Arc<GilHook>>) -> Option<Arc<GilHook>> {
        let gil_id = gil.id();
        let mut list = hooks();
        let old = list
            .iter()
            .position(|e| e.gil_id == gil_id)
            .map(|i| list.swap_remove(i).hook);
        if let Some(hook) = hook {
            list.push(Entry {
                gil_id,
                generation: NEXT_GENERATION.fetch_add(1, Ordering::Relaxed),
                hook,
            });
        }
        // Under the lock, so that concurrent registrations leave the flag
        // agreeing with the list.
        let on = list.iter().any(|e| e.gil_id == gil_id);
        super::set_flag(gil, on);
        REGISTERED.store(list.len(), Ordering::Relaxed);
        old
    }

    pub(super) fn unregister(gil: &Gil) {
        drop(register(gil, None));
    }

    #[cfg(not(loom))]
    pub(super) fn thread_ended(states: &[Arc<ThreadState>]) {
        if REGISTERED.load(Ordering::Relaxed) == 0 {
            return;
        }
        for ts in states {
            if let Some((generation, hook)) = lookup(ts.gil_id())
                && ts.hook_gen.load(Ordering::Relaxed) == generation
                && !call(&*hook, GilEventKind::Exited, ts)
            {
                // The Gil may be gone: its flag is left alone, and an event
                // that finds no hook sends nothing.
                remove_panicked(ts.gil_id(), generation, None);
            }
        }
    }

    impl Gil {
        /// Registers `hook` to be called at every thread's transitions on
        /// this Gil ([`GilEventKind`]), replacing the previous hook, or with
        /// `None` removes it. Returns the previous hook. Needs `std`.
        ///
        /// May be called at any time, from any thread, while threads use the
        /// Gil. Calls already under way when the hook is replaced or removed
        /// finish with the old hook (it stays alive until they return: when
        /// the returned `Arc` is the last one, none is left); events that
        /// start later see the new one. Each hook receives `Started` for a
        /// thread before any other event of that thread.
        ///
        /// With no hook registered, each transition costs one relaxed load
        /// of a flag in the Gil's first cache line.
        ///
        /// ```
        /// use gilock::{Gil, GilEventKind};
        /// use std::sync::{Arc, Mutex};
        ///
        /// let gil = Gil::new();
        /// let seen = Arc::new(Mutex::new(Vec::new()));
        /// let log = Arc::clone(&seen);
        /// gil.set_event_hook(Some(Arc::new(move |e: &gilock::GilEvent<'_>| {
        ///     log.lock().unwrap().push(e.kind);
        /// })));
        /// drop(gil.acquire());
        /// gil.set_event_hook(None);
        /// assert_eq!(
        ///     *seen.lock().unwrap(),
        ///     [
        ///         GilEventKind::Started,
        ///         GilEventKind::Resumed,
        ///         GilEventKind::Suspended { forced: false },
        ///     ]
        /// );
        /// ```
        pub fn set_event_hook(&self, hook: Option<Arc<GilHook>>) -> Option<Arc<GilHook>> {
            register(self, hook)
        }

        /// Whether an event hook is registered on this Gil.
        pub fn has_event_hook(&self) -> bool {
            self.hooks.0.load(Ordering::Relaxed)
        }
    }
}

#[cfg(not(feature = "std"))]
mod imp {
    use super::{Gil, GilEventKind, ThreadState};

    // Without std no hook can be registered, so the flag is never set.
    pub(super) fn fire_slow(_: &Gil, _: &ThreadState, _: GilEventKind) {}
    pub(super) fn unregister(_: &Gil) {}
}
