//! Which `ThreadState` belongs to the calling thread, and the list of them
//! per Gil.
//!
//! - A global registry (behind a `FairMutex`) lists every live thread's
//!   state per Gil id, for `Gil::thread_states`. It is only touched when a
//!   thread first uses a Gil, when it ends, and when a Gil is dropped.
//!   (Under loom each Gil has a list of its own, see `Listing`.)
//! - std and loom: a thread-local cache maps Gil ids to the thread's states,
//!   with the last one used in a `Cell`, so the uncontended acquire finds its
//!   state without a lock. Its destructor removes the thread's states from
//!   the list when the thread ends. A state that may still be pointed at (a
//!   guard that is still alive — perhaps in another thread-local whose
//!   destructor runs later — or was leaked, or a breaker reference lent by
//!   `Gil::eval_breaker`, whose lifetime is the Gil's) is kept instead,
//!   unlisted, as an *ended* state: the thread's Gil calls from later
//!   thread-local destructors still find it (by thread id), so the thread
//!   stays one thread to the Gil to the end. An ended state is freed as soon
//!   as nothing points at it any more (its last guard released, or a wait
//!   given up), or when its Gil is dropped. A Gil call from a destructor
//!   after the thread's states are gone gets a fresh ended state, freed the
//!   same way; none of them is ever listed.
//! - loom: a model thread's locals are dropped *after* `join` returns (and
//!   the main thread's after the model's statics are gone), so a destructor
//!   that took the registry lock would race the model's teardown. Under loom
//!   a thread's states therefore stay listed until their Gil is dropped;
//!   the thread-local only caches them.
//! - no std: there are no thread-locals, so every lookup scans the registry
//!   under its lock, and states are never removed before their Gil is
//!   dropped (nothing tells us that a thread ended).
//!
//! Gils are keyed by an id taken from a global counter at first use, never
//! by address: a Gil can be moved or freed and its address reused.

use super::thread_state::ThreadState;
use crate::fair_mutex::RawFairMutex;
use crate::sync::Ordering;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::ptr::NonNull;

struct Registry {
    /// The states of live threads: what `Gil::thread_states` lists.
    live: Vec<Arc<ThreadState>>,
    /// States of threads that ended (or are ending) but may still be
    /// pointed at; never listed.
    ended: Vec<Arc<ThreadState>>,
    /// Per Gil id, the acquisitions of its threads whose states left both
    /// lists: with the listed states' counts, the Gil's total.
    retired: Vec<(u64, u64)>,
}

impl Registry {
    const fn new() -> Self {
        Self {
            live: Vec::new(),
            ended: Vec::new(),
            retired: Vec::new(),
        }
    }

    /// Keeps the acquisitions of `state`, which leaves both lists now (its
    /// thread is done with the Gil), in its Gil's total.
    fn retire(&mut self, state: &ThreadState) {
        let count = state.acquisitions();
        let gil_id = state.gil_id();
        match self.retired.iter_mut().find(|(id, _)| *id == gil_id) {
            Some((_, total)) => *total = total.wrapping_add(count),
            None => self.retired.push((gil_id, count)),
        }
    }
}

type Mutex<T> = lock_api::Mutex<RawFairMutex, T>;

#[cfg(not(loom))]
static REGISTRY: Mutex<Registry> = Mutex::from_raw(RawFairMutex::new(), Registry::new());

/// Where a Gil's thread states are listed: the global registry, or under
/// loom a list of the Gil's own. (Loom drops its statics in no particular
/// order when a model ends, so a Gil kept in a `loom::lazy_static` could
/// outlive a global registry; and with no removal at thread end under loom,
/// nothing needs a list that outlives the Gil.)
pub(super) struct Listing {
    #[cfg(loom)]
    own: Mutex<Registry>,
}

impl Listing {
    crate::sync::const_fn! {
        pub(super) const fn new() -> Self {
            Self {
                #[cfg(loom)]
                own: Mutex::from_raw(RawFairMutex::new(), Registry::new()),
            }
        }
    }

    fn lock(&self) -> &Mutex<Registry> {
        #[cfg(not(loom))]
        {
            &REGISTRY
        }
        #[cfg(loom)]
        {
            &self.own
        }
    }
}

/// A fresh Gil id. Not a loom atomic: it carries uniqueness, not
/// synchronisation, and must never repeat, even across model executions.
pub(super) fn fresh_gil_id() -> u64 {
    use crate::sync::UnmodeledAtomicU64;
    static NEXT: UnmodeledAtomicU64 = UnmodeledAtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The live states of a Gil's threads.
pub(super) fn states_of(listing: &Listing, gil_id: u64) -> Vec<Arc<ThreadState>> {
    let registry = listing.lock().lock();
    registry
        .live
        .iter()
        .filter(|s| s.gil_id() == gil_id)
        .cloned()
        .collect()
}

/// How many times the Gil's threads took it: the counts of its listed
/// states and of those that left the lists.
pub(super) fn acquisitions(listing: &Listing, gil_id: u64) -> u64 {
    let registry = listing.lock().lock();
    let retired = registry
        .retired
        .iter()
        .find(|(id, _)| *id == gil_id)
        .map_or(0, |(_, total)| *total);
    registry
        .live
        .iter()
        .chain(registry.ended.iter())
        .filter(|s| s.gil_id() == gil_id)
        .fold(retired, |sum, s| sum.wrapping_add(s.acquisitions()))
}

/// Forgets a dropped Gil's states (the thread-locals keep theirs until the
/// thread ends, unlisted). Under loom the Gil's own list goes with it.
pub(super) fn gil_dropped(listing: &Listing, gil_id: u64) {
    let removed: Vec<Arc<ThreadState>>;
    {
        let mut registry = listing.lock().lock();
        let mut taken = Vec::new();
        let Registry {
            live,
            ended,
            retired,
        } = &mut *registry;
        retired.retain(|(id, _)| *id != gil_id);
        for list in [live, ended] {
            let mut i = 0;
            while i < list.len() {
                if list[i].gil_id() == gil_id {
                    taken.push(list.swap_remove(i));
                } else {
                    i += 1;
                }
            }
        }
        removed = taken;
    }
    // Freed outside the lock.
    drop(removed);
}

#[cfg(any(feature = "std", loom))]
fn register(listing: &Listing, state: &Arc<ThreadState>) {
    listing.lock().lock().live.push(Arc::clone(state));
}

/// Removes an ended thread's states from the listing; keeps the pinned ones
/// alive, as ended states, until nothing points at them.
#[cfg(all(feature = "std", not(loom)))]
fn thread_ended(states: Vec<Arc<ThreadState>>) {
    if states.is_empty() {
        return;
    }
    super::hooks::thread_ended(&states);
    let mut freed = Vec::new();
    let mut registry = REGISTRY.lock();
    for state in states {
        if let Some(i) = registry.live.iter().position(|s| Arc::ptr_eq(s, &state)) {
            registry.live.swap_remove(i);
        }
        if state.pinned() {
            state.mark_ended();
            registry.ended.push(state);
        } else {
            registry.retire(&state);
            freed.push(state);
        }
    }
    drop(registry);
    // The cache must not point at a state about to be freed.
    let _ = LAST.try_with(|last| {
        let (_, ptr) = last.get();
        if freed.iter().any(|s| core::ptr::eq(&**s, ptr)) {
            last.set((0, core::ptr::null()));
        }
    });
    // Freed outside the lock.
    drop(freed);
}

/// Unlists `state` if it is an ended state that nothing points at any more
/// (called after its thread let go of the Gil for good, or gave up a wait),
/// and hands back the last `Arc` to it. The caller drops that after this
/// call has returned, and must not touch `state` afterwards: freeing it in
/// here would free what a live reference argument points at, which Rust's
/// aliasing rules forbid (Miri reports it).
#[must_use = "dropping the state is the caller's job"]
pub(super) fn unlist_if_ended(listing: &Listing, state: &ThreadState) -> Option<Arc<ThreadState>> {
    if !state.is_ended() || state.pinned() {
        return None;
    }
    let address = state.address();
    let removed = {
        let mut registry = listing.lock().lock();
        let removed = registry
            .ended
            .iter()
            .position(|s| s.address() == address)
            .map(|i| registry.ended.swap_remove(i));
        if let Some(state) = &removed {
            registry.retire(state);
        }
        removed
    };
    #[cfg(any(feature = "std", loom))]
    let _ = LAST.try_with(|last| {
        if last.get().1 as usize == address {
            last.set((0, core::ptr::null()));
        }
    });
    removed
}

/// The calling thread's state for a Gil, looked up (or created) in the
/// registry itself: the no-std path (`ending` false: a live state, listed
/// until the Gil drops), and the std path once the thread's locals are gone
/// (`ending`: an ended state, see the module docs).
fn find_or_create(listing: &Listing, gil_id: u64, ending: bool) -> Arc<ThreadState> {
    if let Some(state) = find_registered(listing, gil_id) {
        return state;
    }
    // Created outside the lock; only this thread can add its own state, so
    // nobody else adds it meanwhile.
    let fresh = Arc::new(ThreadState::new(gil_id));
    let mut registry = listing.lock().lock();
    if ending {
        fresh.mark_ended();
        registry.ended.push(Arc::clone(&fresh));
    } else {
        registry.live.push(Arc::clone(&fresh));
    }
    fresh
}

/// The calling thread's registered state for the Gil, live or ended.
fn find_registered(listing: &Listing, gil_id: u64) -> Option<Arc<ThreadState>> {
    let me = crate::thread_id::current().get();
    let registry = listing.lock().lock();
    registry
        .live
        .iter()
        .chain(registry.ended.iter())
        .find(|s| s.gil_id() == gil_id && s.ident() == me)
        .cloned()
}

/// The calling thread's state for the Gil `gil_id`, created on first use.
///
/// The pointer stays valid while the thread lives, and past that until the
/// Gil is dropped if the state is pinned when the thread ends (see the
/// module docs).
#[inline]
pub(super) fn current(listing: &Listing, gil_id: u64) -> NonNull<ThreadState> {
    #[cfg(any(feature = "std", loom))]
    {
        let (id, ptr) = LAST.with(Cell::get);
        if id == gil_id
            && let Some(ptr) = NonNull::new(ptr.cast_mut())
        {
            return ptr;
        }
        current_slow(listing, gil_id)
    }
    #[cfg(not(any(feature = "std", loom)))]
    {
        // Listed until the Gil drops, so the pointer stays valid.
        NonNull::from(&*find_or_create(listing, gil_id, false))
    }
}

/// The calling thread's state for the Gil, created on first use, as an
/// `Arc` that another thread can keep (to interrupt this one).
pub(super) fn current_arc(listing: &Listing, gil_id: u64) -> Arc<ThreadState> {
    #[cfg(any(feature = "std", loom))]
    {
        let found = LOCAL.try_with(|local| {
            local.get(listing, gil_id);
            local.find_arc(gil_id)
        });
        if let Ok(Some(state)) = found {
            return state;
        }
        let state = find_or_create(listing, gil_id, true);
        LAST.with(|last| last.set((gil_id, Arc::as_ptr(&state))));
        state
    }
    #[cfg(not(any(feature = "std", loom)))]
    {
        find_or_create(listing, gil_id, false)
    }
}

#[cfg(any(feature = "std", loom))]
#[cold]
fn current_slow(listing: &Listing, gil_id: u64) -> NonNull<ThreadState> {
    let ptr = match LOCAL.try_with(|local| local.get(listing, gil_id)) {
        Ok(ptr) => ptr,
        // The thread's locals are gone (a Gil call from a thread-local
        // destructor): its ended state, kept in the registry.
        Err(_) => NonNull::from(&*find_or_create(listing, gil_id, true)),
    };
    LAST.with(|last| last.set((gil_id, ptr.as_ptr())));
    ptr
}

/// The calling thread's state for the Gil if it has one; never creates it.
pub(super) fn existing(listing: &Listing, gil_id: u64) -> Option<NonNull<ThreadState>> {
    #[cfg(any(feature = "std", loom))]
    {
        let (id, ptr) = LAST.with(Cell::get);
        if id == gil_id
            && let Some(ptr) = NonNull::new(ptr.cast_mut())
        {
            return Some(ptr);
        }
        if let Ok(found) = LOCAL.try_with(|local| local.find(gil_id)) {
            return found;
        }
    }
    // Registered states stay alive at least while their thread runs (live)
    // or something points at them (ended), and the caller's use is brief.
    find_registered(listing, gil_id).map(|s| NonNull::from(&*s))
}

#[cfg(any(feature = "std", loom))]
use core::cell::{Cell, RefCell};

/// The thread's states, one per Gil it used.
#[cfg(any(feature = "std", loom))]
struct Local {
    states: RefCell<Vec<Arc<ThreadState>>>,
}

#[cfg(any(feature = "std", loom))]
impl Local {
    const fn new() -> Self {
        Self {
            states: RefCell::new(Vec::new()),
        }
    }

    fn find(&self, gil_id: u64) -> Option<NonNull<ThreadState>> {
        let states = self.states.borrow();
        states
            .iter()
            .find(|s| s.gil_id() == gil_id)
            .map(|s| NonNull::from(&**s))
    }

    fn find_arc(&self, gil_id: u64) -> Option<Arc<ThreadState>> {
        let states = self.states.borrow();
        states.iter().find(|s| s.gil_id() == gil_id).cloned()
    }

    fn get(&self, listing: &Listing, gil_id: u64) -> NonNull<ThreadState> {
        match self.find(gil_id) {
            Some(ptr) => ptr,
            None => {
                let state = Arc::new(ThreadState::new(gil_id));
                register(listing, &state);
                let ptr = NonNull::from(&*state);
                let mut states = self.states.borrow_mut();
                // Drop states of Gils that are gone (only we still hold them).
                states.retain(|s| Arc::strong_count(s) > 1);
                states.push(state);
                ptr
            }
        }
    }
}

#[cfg(all(feature = "std", not(loom)))]
impl Drop for Local {
    fn drop(&mut self) {
        thread_ended(core::mem::take(self.states.get_mut()));
    }
}

// Two thread-locals: the cache of the state used last has no destructor,
// so reading it is a plain load from thread-local storage (the fast path of
// every acquire); the list of states has one, and is touched only on a miss.
#[cfg(all(feature = "std", not(loom)))]
std::thread_local! {
    static LAST: Cell<(u64, *const ThreadState)> = const { Cell::new((0, core::ptr::null())) };
    static LOCAL: Local = const { Local::new() };
}

#[cfg(loom)]
loom::thread_local! {
    static LAST: Cell<(u64, *const ThreadState)> = Cell::new((0, core::ptr::null()));
    static LOCAL: Local = Local::new();
}
