//! The Gil's side of the attached-wait protocol (see `crate::wait`): a
//! thread that holds the Gil through a guard and must wait on a primitive.

use super::Gil;
use super::acquire::Wait;
use super::guard::{GilGuard, Suspension};
use super::release::How;
use super::stats::count_one;
use super::thread_state::{ThreadState, ThreadStatus};
use crate::wait::{WaitEnd, Waiter};
use core::cell::{Cell, RefCell};

/// What the thread lets go of while it waits.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// It waits on another primitive: the Gil goes before the thread spins
    /// or parks, and comes back after the primitive is taken (or not).
    Around,
    /// The Gil *is* the lock of the wait (a `Condition` wait through a
    /// `GilGuard`): it must go only once the thread is queued on the
    /// condition, so the wait's `before_sleep` lets go of it (quietly: the
    /// hook was told beforehand).
    OnGil,
}

/// Rule 1's fast path for the `_with` forms: whether the call may take a
/// free primitive at once, without building an [`Attached`] waiter. True
/// when the thread holds the Gil through `guard`, no `GilCell` borrow of
/// the thread is alive and no interrupt is pending. Otherwise the call goes
/// the protocol's way (`Attached::around`), which reports each of those as
/// the rules say (a panic, or `Interrupted` before the first try), so the
/// fast path changes no outcome, only what an uncontended call costs.
#[inline]
pub(crate) fn may_take_at_once(guard: &GilGuard<'_>) -> bool {
    let ts = guard.ts();
    !ts.borrows.any() && !ts.eval_breaker().is_interrupt_pending() && guard.is_attached()
}

/// A thread waiting while it holds the Gil through `guard`.
pub struct Attached<'a, 'g> {
    guard: RefCell<&'a mut GilGuard<'g>>,
    gil: &'g Gil,
    ts: &'g ThreadState,
    mode: Mode,
    /// The thread held the Gil through the guard when the wait began.
    held: bool,
    /// Set between `detach` and `reattach`.
    suspension: Cell<Option<Suspension>>,
}

impl<'a, 'g> Attached<'a, 'g> {
    /// For a wait on a primitive other than the Gil.
    ///
    /// # Panics
    /// If the thread does not hold the Gil through `guard` (a guard smuggled
    /// into its own `detach` closure): checked here, outside any park
    /// callback, so that nothing later can panic inside one.
    pub(crate) fn around(guard: &'a mut GilGuard<'g>, what: &str) -> Self {
        let attached = Self::new(guard, Mode::Around, what);
        assert!(
            attached.held,
            "{what} through a GilGuard whose thread does not hold the Gil through it right now \
             (was the guard smuggled into its own detach closure?): wait without the guard"
        );
        attached
    }

    /// For a `Condition` wait whose lock is the Gil. Whether the thread
    /// holds it is for the wait to check ([`holds_gil`](Self::holds_gil)).
    pub(crate) fn on_gil(guard: &'a mut GilGuard<'g>) -> Self {
        Self::new(guard, Mode::OnGil, "a Condition wait through a GilGuard")
    }

    fn new(guard: &'a mut GilGuard<'g>, mode: Mode, what: &str) -> Self {
        let (gil, ts) = (guard.gil, guard.ts());
        // Whether or not the wait will have to let go of the Gil: a live
        // GilCell borrow is a bug even when the primitive happens to be
        // free, so it is reported on every call, not only under contention.
        ts.borrows.check_none(what);
        let held = guard.is_attached();
        Self {
            guard: RefCell::new(guard),
            gil,
            ts,
            mode,
            held,
            suspension: Cell::new(None),
        }
    }

    /// Whether the thread held the Gil through the guard when the wait
    /// began.
    pub(crate) fn holds_gil(&self) -> bool {
        self.held
    }

    /// In the `before_sleep` of a wait whose lock is the Gil: lets go of
    /// it. Runs no user code (the hook was told in `detach`) and only
    /// unparks.
    pub(crate) fn release_in_park(&self) {
        debug_assert!(self.mode == Mode::OnGil);
        count_one(&self.ts.counters.voluntary_releases);
        self.gil.release_quietly(self.ts, How::Handoff);
        self.ts.set_status(ThreadStatus::Waiting);
    }
}

impl Waiter for Attached<'_, '_> {
    fn is_attached(&self) -> bool {
        // Taken out only by `reattach`, so "suspended" is "not attached".
        let suspension = self.suspension.take();
        let attached = suspension.is_none();
        self.suspension.set(suspension);
        attached
    }

    fn token_bits(&self, bits: usize) -> usize {
        self.ts.interruptible_token(bits).0
    }

    fn interrupt_pending(&self) -> bool {
        self.ts.interrupt_pending()
    }

    fn interrupted_before(&self) -> bool {
        self.ts.eval_breaker().is_interrupt_pending()
    }

    fn queued(&self) {
        self.ts.set_status(ThreadStatus::Waiting);
    }

    fn detach(&self, key: usize) {
        self.ts.set_waiting_on(key);
        let suspension = self.suspension.take();
        if suspension.is_some() {
            self.suspension.set(suspension);
            return;
        }
        let mut guard = self.guard.borrow_mut();
        let suspension = match self.mode {
            Mode::Around => {
                let suspension = guard.suspend("a wait", How::Handoff);
                self.ts.set_status(ThreadStatus::Detached);
                suspension
            }
            Mode::OnGil => {
                guard.announce_release();
                guard.suspend_quietly("a Condition wait")
            }
        };
        self.suspension.set(Some(suspension));
    }

    fn reattach(&self, end: WaitEnd) {
        if end == WaitEnd::Interrupted {
            self.ts.take_interrupt();
        }
        if let Some(suspension) = self.suspension.take() {
            // Set by `detach`, which made the suspension: an uncontended
            // call touches neither.
            self.ts.clear_waiting_on();
            // An interrupted thread asks for the Gil at once: the interpreter
            // should see the interrupt promptly.
            let wait = if end == WaitEnd::Interrupted {
                Wait::INTERRUPTED
            } else {
                Wait::VOLUNTARY
            };
            self.guard.borrow_mut().resume(suspension, wait);
        }
    }
}
