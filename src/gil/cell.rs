//! Gil-bound data: `GilCell`, the state only the Gil's holder touches, and
//! `Gil::with_attached`, for code that has no guard in hand.
//!
//! # Why it is sound
//!
//! A `GilCell` keeps a `RefCell`-style borrow flag next to its value. Both
//! are plain memory, touched only by a thread that holds the cell's Gil
//! right now, through a guard of its current attachment (checked at every
//! borrow). The Gil is one lock, so two threads never touch them at once,
//! and its acquire/release orderings carry each thread's writes to the
//! next holder. What is left is to keep a borrow from outliving the Gil:
//!
//! - a borrow borrows the guard it came through, so `checkpoint`,
//!   `yield_now`, `detach` and every wait (they take `&mut GilGuard`) do
//!   not compile while it lives, and the guard cannot be dropped;
//! - through *another* guard of the same thread (a nested `ensure()` guard,
//!   one from [`Gil::with_attached`]) the compiler cannot see it, so each
//!   thread counts its live borrows (`Borrows`, in its `ThreadState`):
//!   a checkpoint or `yield_now` skips the switch while any is alive, and
//!   `detach` and the waits panic before they let go of anything (naming
//!   where it was made, in debug builds);
//! - borrows are neither `Send` nor `Sync`, so none can be carried into a
//!   `detach` closure (which must be `Send`) or to another thread.
//!
//! Leaking a borrow (`mem::forget`) leaves the cell borrowed for good and
//! the thread unable to let go of the Gil through `detach` or a wait, as a
//! leaked `RefCell` borrow leaves its cell: nothing unsound follows.

use super::Gil;
use super::borrows::Mark;
use super::guard::GilGuard;
use super::thread_state::ThreadState;
use crate::error::BorrowError;
use crate::sync::{Ordering, UnmodeledAtomicU64, UnsafeCell};
use core::fmt;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};
use core::panic::Location;

/// Borrow flag: this many shared borrows are alive; [`MUT`] is the mutable one.
type Flag = isize;
const MUT: Flag = -1;

/// Interpreter state that only the holder of a [`Gil`] touches: the data
/// inside the lock, as in a `Mutex<T>`, reached through the guard that
/// proves the Gil is held (PyO3's `GILProtected`, with `RefCell`'s rules).
///
/// - [`borrow`](Self::borrow) / [`borrow_mut`](Self::borrow_mut) take a
///   `&GilGuard` and give a [`GilRef`] / [`GilRefMut`] that lives no longer
///   than that borrow of the guard. `RefCell`'s rules hold between all
///   borrows, whichever guard of the thread they come through (nested
///   [`Gil::ensure`] guards included): shared borrows coexist, a mutable one
///   is exclusive, and a conflicting `borrow_mut` panics
///   ([`try_borrow_mut`](Self::try_borrow_mut) returns [`BorrowError`]).
/// - A cell is bound to the first Gil whose guard borrows it; a guard of
///   another Gil panics (the `try_` forms too: that is misuse, not a
///   conflict), and so does a guard whose thread does not hold the Gil
///   through it right now (one smuggled into its own `detach` closure).
/// - `Send + Sync` when `T: Send`, as `Mutex<T>`: one thread at a time
///   reaches the value. Neither otherwise.
///
/// ```
/// # #[cfg(feature = "std")] {
/// use gilock::{Gil, GilCell};
/// use std::sync::Arc;
///
/// struct Interp {
///     gil: Gil,
///     globals: GilCell<Vec<i64>>,
/// }
///
/// let interp = Arc::new(Interp { gil: Gil::new(), globals: GilCell::new(vec![0]) });
/// let threads: Vec<_> = (0..2)
///     .map(|_| {
///         let interp = Arc::clone(&interp);
///         std::thread::spawn(move || {
///             let mut guard = interp.gil.acquire();
///             for _ in 0..1000 {
///                 // A plain read-modify-write: the Gil makes it atomic.
///                 interp.globals.borrow_mut(&guard)[0] += 1;
///                 guard.checkpoint(); // the borrow above has ended
///             }
///         })
///     })
///     .collect();
/// for t in threads {
///     t.join().unwrap();
/// }
/// let interp = Arc::into_inner(interp).unwrap();
/// assert_eq!(interp.globals.into_inner(), [2000]);
/// # }
/// ```
///
/// # The Gil is never let go of while a borrow lives
///
/// A borrow borrows its guard, so nothing that could release the Gil
/// through that guard compiles while it lives:
///
/// ```compile_fail
/// let gil = gilock::Gil::new();
/// let cell = gilock::GilCell::new(0);
/// let mut guard = gil.acquire();
/// let value = cell.borrow(&guard);
/// guard.checkpoint(); // error: `guard` is borrowed by `value`
/// drop(value);
/// ```
///
/// ```compile_fail
/// let gil = gilock::Gil::new();
/// let cell = gilock::GilCell::new(0);
/// let mut guard = gil.acquire();
/// let value = cell.borrow_mut(&guard);
/// guard.yield_now(); // error: `guard` is borrowed by `value`
/// drop(value);
/// ```
///
/// ```compile_fail
/// let gil = gilock::Gil::new();
/// let cell = gilock::GilCell::new(0);
/// let mut guard = gil.acquire();
/// let value = cell.borrow(&guard);
/// guard.detach(|| ()); // error: `guard` is borrowed by `value`
/// drop(value);
/// ```
///
/// ```compile_fail
/// let gil = gilock::Gil::new();
/// let cond = gilock::Condition::new();
/// let cell = gilock::GilCell::new(0);
/// let mut guard = gil.acquire();
/// let value = cell.borrow(&guard);
/// cond.wait_timeout(&mut guard, std::time::Duration::from_millis(1)); // error: borrowed
/// drop(value);
/// ```
///
/// Through a *nested* guard the compiler cannot see the outer guard's
/// borrows, so the rule is kept at run time: a checkpoint or `yield_now`
/// skips the switch while any borrow made by the thread is alive, and
/// `detach` and every wait (`Lock::acquire_with`, a Condition wait through
/// a guard, ...) panic, naming the live borrow, before they let go of
/// anything:
///
/// ```should_panic
/// use gilock::{Gil, GilCell};
///
/// let gil = Gil::new();
/// let cell = GilCell::new(0);
/// let outer = gil.acquire();
/// let value = cell.borrow(&outer);
/// let mut inner = gil.ensure();
/// inner.detach(|| ()); // panics: `value` is alive
/// # drop(value);
/// ```
pub struct GilCell<T> {
    /// The id of the Gil the cell is bound to, 0 before its first borrow.
    /// Identity, not synchronisation: kept off the loom model.
    gil: UnmodeledAtomicU64,
    /// The borrow flag, a loom-checked cell: under `--cfg loom` every
    /// access to it is checked to happen-after the previous one, so a
    /// model sees any path on which two threads reach the cell without
    /// the Gil in between.
    flag: UnsafeCell<Flag>,
    value: core::cell::UnsafeCell<T>,
}

// SAFETY:
// - `flag` and `value` are touched only by a thread that holds the Gil the
//   cell is bound to, through a guard of its current attachment (checked by
//   `enter`), or through `&mut self` / `self`;
// - the Gil is held by one thread at a time, and its release and acquire
//   order each holder's accesses before the next holder's;
// - the Gil is never let go of while a borrow made by its holder is alive
//   (module docs), and borrows are neither `Send` nor `Sync`;
// - so `value` is reached by one thread at a time, as a `Mutex<T>`'s: `T`
//   must be `Send` (it is used from several threads), not `Sync`.
unsafe impl<T: Send> Sync for GilCell<T> {}

static_assertions::assert_impl_all!(GilCell<u64>: Send, Sync);
static_assertions::assert_impl_all!(GilCell<core::cell::Cell<u64>>: Send, Sync);
static_assertions::assert_not_impl_any!(GilCell<alloc::rc::Rc<u64>>: Send, Sync);
static_assertions::assert_not_impl_any!(GilRef<'static, u64>: Send, Sync);
static_assertions::assert_not_impl_any!(GilRefMut<'static, u64>: Send, Sync);

impl<T> GilCell<T> {
    crate::sync::const_fn! {
        /// A cell holding `value`, bound to no Gil yet.
        ///
        /// `const` (so a cell can be a `static` beside a `static` Gil)
        /// except under `--cfg loom`, whose cells cannot be built in
        /// constants.
        pub const fn new(value: T) -> Self {
            Self {
                gil: UnmodeledAtomicU64::new(0),
                flag: UnsafeCell::new(0),
                value: core::cell::UnsafeCell::new(value),
            }
        }
    }

    /// Borrows the value through `guard`, for as long as the guard stays
    /// borrowed. Shared borrows coexist.
    ///
    /// # Panics
    ///
    /// If the value is mutably borrowed (by this thread, through any of its
    /// guards); if the cell is bound to another Gil than `guard`'s; if the
    /// thread does not hold the Gil through `guard` right now.
    ///
    /// ```
    /// # #[cfg(feature = "std")] {
    /// use gilock::{Gil, GilCell};
    ///
    /// let gil = Gil::new();
    /// let cell = GilCell::new(String::from("spam"));
    /// let guard = gil.acquire();
    /// let (a, b) = (cell.borrow(&guard), cell.borrow(&guard));
    /// assert_eq!(*a, *b);
    /// # }
    /// ```
    #[track_caller]
    #[inline]
    pub fn borrow<'a>(&'a self, guard: &'a GilGuard<'_>) -> GilRef<'a, T> {
        match self.try_borrow(guard) {
            Ok(value) => value,
            Err(error) => conflict_panic("borrow", error),
        }
    }

    /// Borrows the value mutably through `guard`, for as long as the guard
    /// stays borrowed. The borrow is exclusive.
    ///
    /// # Panics
    ///
    /// If the value is borrowed at all (by this thread, through any of its
    /// guards); otherwise as [`borrow`](Self::borrow).
    ///
    /// ```
    /// # #[cfg(feature = "std")] {
    /// use gilock::{Gil, GilCell};
    ///
    /// let gil = Gil::new();
    /// let cell = GilCell::new(vec![1, 2]);
    /// let guard = gil.acquire();
    /// cell.borrow_mut(&guard).push(3);
    /// assert_eq!(*cell.borrow(&guard), [1, 2, 3]);
    /// # }
    /// ```
    #[track_caller]
    #[inline]
    pub fn borrow_mut<'a>(&'a self, guard: &'a GilGuard<'_>) -> GilRefMut<'a, T> {
        match self.try_borrow_mut(guard) {
            Ok(value) => value,
            Err(error) => conflict_panic("borrow_mut", error),
        }
    }

    /// As [`borrow`](Self::borrow), but a conflicting borrow is an error.
    ///
    /// # Errors
    ///
    /// [`BorrowError::MutablyBorrowed`] when the value is mutably borrowed.
    ///
    /// # Panics
    ///
    /// If the cell is bound to another Gil than `guard`'s, or the thread
    /// does not hold the Gil through `guard` right now: misuse, not a
    /// conflict.
    ///
    /// ```
    /// # #[cfg(feature = "std")] {
    /// use gilock::{BorrowError, Gil, GilCell};
    ///
    /// let gil = Gil::new();
    /// let cell = GilCell::new(1);
    /// let guard = gil.acquire();
    /// let nested = gil.ensure();
    /// let writer = cell.borrow_mut(&guard);
    /// // A nested guard sees the outer guard's borrows.
    /// assert_eq!(cell.try_borrow(&nested).err(), Some(BorrowError::MutablyBorrowed));
    /// drop(writer);
    /// assert_eq!(*cell.try_borrow(&nested).unwrap(), 1);
    /// # }
    /// ```
    #[track_caller]
    #[inline]
    pub fn try_borrow<'a>(&'a self, guard: &'a GilGuard<'_>) -> Result<GilRef<'a, T>, BorrowError> {
        let ts = self.enter(guard, "try_borrow");
        // SAFETY (both accesses): the thread holds the cell's Gil (`enter`),
        // so no other thread touches the flag; no reference to it is alive.
        let flag = self.flag.with(|flag| unsafe { *flag });
        if flag < 0 {
            return Err(BorrowError::MutablyBorrowed);
        }
        let flag = flag
            .checked_add(1)
            .expect("GilCell: too many shared borrows");
        self.flag.with_mut(|slot| unsafe { *slot = flag });
        let mark = ts.borrows.push(Location::caller());
        Ok(GilRef {
            cell: self,
            ts,
            mark,
            _not_send: PhantomData,
        })
    }

    /// As [`borrow_mut`](Self::borrow_mut), but a conflicting borrow is an
    /// error.
    ///
    /// # Errors
    ///
    /// [`BorrowError::Borrowed`] when shared borrows are alive,
    /// [`BorrowError::MutablyBorrowed`] when a mutable one is.
    ///
    /// # Panics
    ///
    /// As [`try_borrow`](Self::try_borrow).
    #[track_caller]
    #[inline]
    pub fn try_borrow_mut<'a>(
        &'a self,
        guard: &'a GilGuard<'_>,
    ) -> Result<GilRefMut<'a, T>, BorrowError> {
        let ts = self.enter(guard, "try_borrow_mut");
        // SAFETY (both accesses): as in `try_borrow`.
        let flag = self.flag.with(|flag| unsafe { *flag });
        match flag {
            0 => {}
            MUT => return Err(BorrowError::MutablyBorrowed),
            _ => return Err(BorrowError::Borrowed),
        }
        self.flag.with_mut(|slot| unsafe { *slot = MUT });
        let mark = ts.borrows.push(Location::caller());
        Ok(GilRefMut {
            cell: self,
            ts,
            mark,
            _not_send: PhantomData,
        })
    }

    /// The value, through exclusive access to the cell: no Gil needed.
    pub fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }

    /// The value, taking the cell apart: no Gil needed.
    pub fn into_inner(self) -> T {
        self.value.into_inner()
    }

    /// Checks that `guard` may reach the cell now and binds the cell to its
    /// Gil on first use; returns the thread's state.
    #[track_caller]
    #[inline]
    fn enter<'a>(&self, guard: &'a GilGuard<'_>, what: &str) -> &'a ThreadState {
        let gil = guard.ts().gil_id();
        let bound = self.gil.load(Ordering::Relaxed);
        if bound != gil {
            self.bind(gil, what);
        }
        if !guard.is_attached() {
            not_attached_panic(what);
        }
        guard.ts()
    }

    #[cold]
    #[track_caller]
    fn bind(&self, gil: u64, what: &str) {
        match self
            .gil
            .compare_exchange(0, gil, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => {}
            Err(bound) if bound == gil => {}
            Err(_) => other_gil_panic(what, core::any::type_name::<T>()),
        }
    }

    /// Ends one borrow: `next` is the flag without it.
    #[inline]
    fn end(&self, ts: &ThreadState, mark: Mark, next: Flag) {
        // SAFETY: a borrow is alive, so the thread holds the cell's Gil (the
        // Gil is not let go of while one is, module docs); no reference to
        // the flag is alive.
        self.flag.with_mut(|slot| unsafe { *slot = next });
        ts.borrows.pop(mark);
    }
}

impl<T: Default> Default for GilCell<T> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

impl<T> From<T> for GilCell<T> {
    fn from(value: T) -> Self {
        Self::new(value)
    }
}

impl<T> fmt::Debug for GilCell<T> {
    /// Shows whether the cell is bound to a Gil, never the value: reading it
    /// needs the Gil, which a `Debug` call may not hold.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GilCell")
            .field("bound", &(self.gil.load(Ordering::Relaxed) != 0))
            .finish_non_exhaustive()
    }
}

/// A shared borrow of a [`GilCell`]'s value, from
/// [`GilCell::borrow`]; the borrow ends when it drops.
///
/// Neither `Send` nor `Sync`: it stands for the Gil its thread holds, so it
/// cannot go into a `detach` closure or to another thread.
///
/// ```compile_fail
/// let gil = gilock::Gil::new();
/// let cell = gilock::GilCell::new(0);
/// let mut outer = gil.acquire();
/// let inner = gil.ensure();
/// let value = cell.borrow(&inner);
/// outer.detach(move || drop(value)); // error: `GilRef` is not `Send`
/// ```
pub struct GilRef<'a, T> {
    cell: &'a GilCell<T>,
    ts: &'a ThreadState,
    mark: Mark,
    _not_send: PhantomData<*const ()>,
}

impl<T> Deref for GilRef<'_, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: this shared borrow is counted in the flag, so no mutable
        // one exists, and the thread holds the Gil while it lives (module
        // docs); `&self` keeps the reference within the borrow.
        unsafe { &*self.cell.value.get() }
    }
}

impl<T> Drop for GilRef<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: as in `GilCell::end`: the thread holds the Gil.
        let flag = self.cell.flag.with(|flag| unsafe { *flag });
        self.cell.end(self.ts, self.mark, flag - 1);
    }
}

impl<T: fmt::Debug> fmt::Debug for GilRef<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: fmt::Display> fmt::Display for GilRef<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

/// An exclusive borrow of a [`GilCell`]'s value, from
/// [`GilCell::borrow_mut`]; the borrow ends when it drops.
///
/// Neither `Send` nor `Sync`, as [`GilRef`].
///
/// ```compile_fail
/// let gil = gilock::Gil::new();
/// let cell = gilock::GilCell::new(0);
/// let mut outer = gil.acquire();
/// let inner = gil.ensure();
/// let mut value = cell.borrow_mut(&inner);
/// outer.detach(move || *value += 1); // error: `GilRefMut` is not `Send`
/// ```
pub struct GilRefMut<'a, T> {
    cell: &'a GilCell<T>,
    ts: &'a ThreadState,
    mark: Mark,
    _not_send: PhantomData<*const ()>,
}

impl<T> Deref for GilRefMut<'_, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the flag marks this borrow exclusive, and the thread holds
        // the Gil while it lives (module docs); `&self` keeps the reference
        // within the borrow.
        unsafe { &*self.cell.value.get() }
    }
}

impl<T> DerefMut for GilRefMut<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes the reference unique
        // among those this borrow hands out.
        unsafe { &mut *self.cell.value.get() }
    }
}

impl<T> Drop for GilRefMut<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.cell.end(self.ts, self.mark, 0);
    }
}

impl<T: fmt::Debug> fmt::Debug for GilRefMut<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: fmt::Display> fmt::Display for GilRefMut<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

#[cold]
#[inline(never)]
#[track_caller]
fn conflict_panic(what: &str, error: BorrowError) -> ! {
    panic!("GilCell::{what}: {error}")
}

#[cold]
#[inline(never)]
#[track_caller]
fn other_gil_panic(what: &str, type_name: &str) -> ! {
    panic!(
        "GilCell::{what}: this GilCell<{type_name}> is bound to another Gil (the first one \
         whose guard borrowed it); a guard of a different Gil cannot reach it"
    )
}

#[cold]
#[inline(never)]
#[track_caller]
fn not_attached_panic(what: &str) -> ! {
    panic!(
        "GilCell::{what}: the calling thread does not hold the Gil through this guard right \
         now (was the guard smuggled into its own detach closure?)"
    )
}

impl Gil {
    /// Runs `f` with a guard of the calling thread's attachment, if the
    /// thread holds this Gil: for code with no guard in hand, as a foreign
    /// engine's progress callback or an FFI callback, called by code that
    /// does hold one. The guard is nested, as one from [`ensure`](Self::ensure):
    /// dropping it releases nothing, and what it does (a checkpoint, a
    /// `detach`, a wait) acts on the thread's attachment. Returns `None`,
    /// without calling `f` and without taking the Gil, when the calling
    /// thread does not hold it.
    ///
    /// ```
    /// # #[cfg(feature = "std")] {
    /// use gilock::{Gil, GilCell};
    ///
    /// static GIL: Gil = Gil::new();
    /// static OPS: GilCell<u64> = GilCell::new(0);
    ///
    /// // A callback that a foreign engine calls between its operations.
    /// fn on_progress() {
    ///     GIL.with_attached(|guard| {
    ///         *OPS.borrow_mut(guard) += 1;
    ///         if guard.should_yield() {
    ///             guard.checkpoint();
    ///         }
    ///     })
    ///     .expect("the engine runs with the Gil held");
    /// }
    ///
    /// assert_eq!(GIL.with_attached(|_| ()), None);
    /// let guard = GIL.acquire();
    /// on_progress();
    /// on_progress();
    /// assert_eq!(*OPS.borrow(&guard), 2);
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// When called from inside an event hook of this Gil.
    #[doc(alias = "with_gil")]
    pub fn with_attached<R>(&self, f: impl FnOnce(&mut GilGuard<'_>) -> R) -> Option<R> {
        if !self.is_held_by_current_thread() {
            return None;
        }
        let ts = self.current_state();
        ts.check_not_in_hook("Gil::with_attached");
        ts.word.add_guard();
        let mut guard = GilGuard::new(self, ts);
        Some(f(&mut guard))
    }
}
