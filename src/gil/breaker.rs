//! `EvalBreaker`: the word of flags an interpreter loop polls at every
//! instruction, as CPython's `eval_breaker`.

use crate::sync::{AtomicU8, Ordering, const_fn};
use core::fmt;

/// A waiter has waited a whole switch interval without seeing a switch: the
/// holder should let it run at its next checkpoint.
pub(crate) const DROP_REQUEST: u8 = 0b001;
/// [`ThreadState::interrupt`](crate::ThreadState::interrupt) was called.
pub(crate) const INTERRUPT: u8 = 0b010;
/// Someone asked the thread to run a pending call.
pub(crate) const PENDING_CALL: u8 = 0b100;

/// One atomic word of flags that tells a thread holding the [`Gil`](crate::Gil)
/// to leave its fast path: a drop request (another thread waited a whole
/// switch interval), an interrupt, or a pending call.
///
/// Every [`ThreadState`](crate::ThreadState) has one. Waiters set the drop
/// request on the *holder's* breaker, [`ThreadState::interrupt`](crate::ThreadState::interrupt)
/// sets the interrupt flag on its thread's breaker, and an interpreter may use
/// the pending-call flag to ask a thread to run something at its next
/// checkpoint. [`is_set`](Self::is_set) is one relaxed load, which is what
/// [`GilGuard::should_yield`](crate::GilGuard::should_yield) does.
///
/// ```
/// # #[cfg(feature = "std")] {
/// use gilock::Gil;
///
/// let gil = Gil::new();
/// let guard = gil.acquire();
/// let breaker = guard.thread_state().eval_breaker();
/// assert!(!breaker.is_set());
/// breaker.request_pending_call();
/// assert!(breaker.is_set() && guard.should_yield());
/// assert!(breaker.take_pending_call());
/// assert!(!breaker.is_set());
/// # }
/// ```
pub struct EvalBreaker {
    bits: AtomicU8,
}

impl EvalBreaker {
    const_fn! {
        pub(crate) const fn new() -> Self {
            Self { bits: AtomicU8::new(0) }
        }
    }

    /// Whether any flag is set: one relaxed load, cheap enough for every
    /// instruction of an interpreter loop.
    #[inline]
    pub fn is_set(&self) -> bool {
        self.bits.load(Ordering::Relaxed) != 0
    }

    /// Whether a waiter asked the holder to drop the Gil.
    pub fn is_drop_requested(&self) -> bool {
        self.bits.load(Ordering::Relaxed) & DROP_REQUEST != 0
    }

    /// Whether an interrupt is pending (see [`ThreadState::interrupt`](crate::ThreadState::interrupt)).
    pub fn is_interrupt_pending(&self) -> bool {
        self.bits.load(Ordering::Relaxed) & INTERRUPT != 0
    }

    /// Whether a pending call was requested and not yet taken.
    pub fn is_pending_call(&self) -> bool {
        self.bits.load(Ordering::Relaxed) & PENDING_CALL != 0
    }

    /// Asks the thread to run a pending call: sets the flag, which keeps
    /// [`is_set`](Self::is_set) true until [`take_pending_call`](Self::take_pending_call).
    /// The Gil does not act on it; the interpreter's checkpoint code does.
    /// What the caller wrote before the request is visible to the thread
    /// whose `take_pending_call` returns true (Release, then Acquire).
    pub fn request_pending_call(&self) {
        self.bits.fetch_or(PENDING_CALL, Ordering::Release);
    }

    /// Clears the pending-call flag; returns whether it was set.
    #[must_use = "the flag is cleared: run the pending call if it was set"]
    pub fn take_pending_call(&self) -> bool {
        self.is_pending_call()
            && self.bits.fetch_and(!PENDING_CALL, Ordering::Acquire) & PENDING_CALL != 0
    }

    #[inline]
    pub(crate) fn load(&self, order: Ordering) -> u8 {
        self.bits.load(order)
    }

    /// Sets `flags`; returns the flags that were set before.
    #[inline]
    pub(crate) fn set(&self, flags: u8, order: Ordering) -> u8 {
        self.bits.fetch_or(flags, order)
    }

    /// Clears `flags`; returns the flags that were set before.
    #[inline]
    pub(crate) fn clear(&self, flags: u8, order: Ordering) -> u8 {
        self.bits.fetch_and(!flags, order)
    }
}

impl fmt::Debug for EvalBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bits = self.bits.load(Ordering::Relaxed);
        f.debug_struct("EvalBreaker")
            .field("drop_request", &(bits & DROP_REQUEST != 0))
            .field("interrupt", &(bits & INTERRUPT != 0))
            .field("pending_call", &(bits & PENDING_CALL != 0))
            .finish()
    }
}
