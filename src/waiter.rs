//! How a thread waits in a park queue: plainly, or holding the Gil through
//! a `GilGuard`, which the wait releases while the thread sleeps, takes back
//! afterwards, and makes interruptible. One implementation for every
//! primitive that offers waits through a `GilGuard` (Condition, Semaphore,
//! Event, Barrier).

use crate::gil::{GilGuard, ThreadStatus};
use crate::park::ParkToken;
use core::cell::RefCell;

/// How a thread waits: plainly, or holding the Gil through a guard that the
/// wait releases while the thread sleeps and takes back afterwards
/// (interruptibly, as `Condition` waits through a `GilGuard`).
pub(crate) struct Waiter<'a, 'g> {
    gil: Option<RefCell<&'a mut GilGuard<'g>>>,
}

impl<'a, 'g> Waiter<'a, 'g> {
    pub(crate) fn plain() -> Self {
        Self { gil: None }
    }

    pub(crate) fn gil(guard: &'a mut GilGuard<'g>) -> Self {
        // `release_for_wait` in `before_sleep` must not panic, so check here
        // (outside any park callback) what it would assert.
        assert!(
            guard.thread_state().status() == ThreadStatus::Attached,
            "a wait through a GilGuard whose thread does not hold the Gil \
             (inside its own detach closure?): wait without the guard instead"
        );
        Self::through(guard)
    }

    /// As [`gil`](Self::gil) without the check, for a caller that checks
    /// with [`holds_gil`](Self::holds_gil) and reports it otherwise.
    pub(crate) fn through(guard: &'a mut GilGuard<'g>) -> Self {
        Self {
            gil: Some(RefCell::new(guard)),
        }
    }

    /// Whether the waiting thread holds its Gil now (a guard moved into
    /// another guard's `detach` closure does not), so that the release in
    /// `before_sleep` cannot panic. True for a plain wait.
    pub(crate) fn holds_gil(&self) -> bool {
        self.gil
            .as_ref()
            .is_none_or(|g| g.borrow().thread_state().status() == ThreadStatus::Attached)
    }

    pub(crate) fn is_gil(&self) -> bool {
        self.gil.is_some()
    }

    /// The park token: the thread state's for an interruptible wait (so
    /// `ThreadState::interrupt` finds it), else `plain`.
    pub(crate) fn token(&self, plain: usize) -> ParkToken {
        match &self.gil {
            Some(g) => g.borrow().thread_state().park_token(),
            None => ParkToken(plain),
        }
    }

    /// Before anything else: where an interrupt must look for the thread.
    pub(crate) fn begin(&self, key: usize) {
        if let Some(g) = &self.gil {
            g.borrow().thread_state().set_waiting_on(key);
        }
    }

    /// With the queue locked: whether an interrupt is pending.
    pub(crate) fn interrupt_pending(&self) -> bool {
        self.gil
            .as_ref()
            .is_some_and(|g| g.borrow().thread_state().interrupt_pending())
    }

    /// In `before_sleep`: lets other interpreter threads run.
    pub(crate) fn release(&self) {
        if let Some(g) = &self.gil {
            g.borrow_mut().release_for_wait();
        }
    }

    /// After a park that released the Gil.
    pub(crate) fn reacquire(&self) {
        if let Some(g) = &self.gil {
            g.borrow_mut().reacquire_after_wait();
        }
    }

    /// On every way out: stops interrupts looking for the thread, and
    /// consumes the interrupt that ended the wait.
    pub(crate) fn end(&self, interrupted: bool) {
        if let Some(g) = &self.gil {
            let guard = g.borrow();
            let ts = guard.thread_state();
            ts.clear_waiting_on();
            if interrupted {
                ts.take_interrupt();
            }
        }
    }
}
