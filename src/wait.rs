//! Waiting while attached: the one protocol through which every blocking
//! primitive waits, either plainly or while its thread holds the Gil.
//!
//! An interpreter thread runs user code holding the Gil, and that code
//! blocks on the interpreter's own `threading.Lock`, `Condition`,
//! `Semaphore`... If it slept on the primitive still holding the Gil, the
//! primitive's holder could never run to release it. So every blocking
//! primitive writes its slow path once, against [`Waiter`], and a waiter
//! that holds the Gil (the Gil's side of the protocol, in `gil/attached.rs`)
//! is put through these steps:
//!
//! 1. the primitive first tries without letting go: an uncontended call
//!    costs no switch;
//! 2. on contention it calls [`Waiter::detach`] *outside any park callback*
//!    (event hooks run there), which releases the Gil so that its heir runs,
//!    and records where an interrupt must look for the thread;
//! 3. it spins and parks as a plain waiter would, with the waiter's
//!    [`park_token`], refusing to queue (in `validate`) when
//!    [`interrupt_pending`](Waiter::interrupt_pending), and saying when it
//!    does queue ([`queued`](Waiter::queued));
//! 4. it takes the primitive (or gives up: timeout, interrupt), and only
//!    then [`finish`] takes the Gil back, again outside any callback.
//!
//! A thread therefore never sleeps on a primitive while it holds the Gil,
//! and no user code runs inside a park callback.
//!
//! # Park tokens
//!
//! A token is `owner | ATTACHED | bits`: `bits` (below [`TOKEN_BITS`]) are
//! the primitive's own (a fair mutex's "overdue", the Gil's "priority"),
//! and an interruptible waiter adds its `ThreadState` address (aligned to
//! 64) and the [`ATTACHED`] flag. `ThreadState::interrupt` wakes only a
//! token with `ATTACHED` and its own address, so no plain waiter — whatever
//! it keeps in the high bits of its token, as a semaphore's request size —
//! is ever taken for an interrupted one.

use crate::park::{ParkToken, UnparkToken};

/// The low bits of a park token that belong to the primitive.
pub(crate) const TOKEN_BITS: usize = 0b1_1111;

/// Marks the token of an interruptible waiter, whose high bits are its
/// `ThreadState` address.
pub(crate) const ATTACHED: usize = 0b10_0000;

/// Every bit below the owner's address.
pub(crate) const TOKEN_LOW: usize = TOKEN_BITS | ATTACHED;

/// The token that ends an interruptible wait: the waiter returns
/// [`WaitEnd::Interrupted`]. No primitive hands out this value for anything
/// else.
pub(crate) const TOKEN_INTERRUPTED: UnparkToken = UnparkToken(usize::MAX);

/// How a wait ended: the one answer every primitive's slow path gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitEnd {
    /// It got what it waited for: the lock, the permit, the notification,
    /// the flag.
    Done,
    /// Its deadline passed first.
    TimedOut,
    /// `ThreadState::interrupt` ended it (or was pending when it began).
    Interrupted,
}

/// What a primitive's slow path needs from the thread that waits.
///
/// `pub` only because the sealed `WaitGuard` machinery names it; this
/// module is private, so it stays out of the public API.
///
/// Implemented by [`Plain`] (a thread that holds nothing) and by the Gil
/// for a thread that holds it through a guard. The methods take `&self`
/// so that park callbacks may borrow the waiter while the slow path does.
pub trait Waiter {
    /// Whether the thread holds the Gil now: the slow path must not spin
    /// then (it would delay the holder of the primitive, who may need the
    /// Gil) and calls [`detach`](Self::detach) first.
    fn is_attached(&self) -> bool;

    /// The park token for `bits` (the primitive's own, below
    /// [`TOKEN_BITS`]), as a plain number so that this trait names no
    /// crate-private type; [`park_token`] wraps it.
    fn token_bits(&self, bits: usize) -> usize;

    /// Whether an interrupt is pending. Called in `validate` (queue locked):
    /// the waiter then refuses to queue. Must not park, unpark or unwind.
    /// (A read-modify-write: with `ThreadState::interrupt`'s order, either
    /// the waiter sees the interrupt here or the interrupter finds it
    /// queued.)
    fn interrupt_pending(&self) -> bool;

    /// Whether an interrupt was pending when the call began: one plain
    /// load, enough for an interrupt that happened before the call (the
    /// races that matter are settled in `validate`).
    fn interrupted_before(&self) -> bool;

    /// In `validate`, when it returns true: the thread joins the queue now
    /// (a thread holding the Gil shows as `Waiting` from here). Must not
    /// park, unpark or unwind.
    fn queued(&self);

    /// Outside any park callback, before the thread first spins or parks
    /// on the primitive whose park key is `key`: lets go of the Gil (its
    /// heir runs) and tells interrupts where to find the thread. Further
    /// calls change only the key.
    fn detach(&self, key: usize);

    /// After the wait, outside any park callback: takes back what
    /// [`detach`](Self::detach) let go of, and consumes the interrupt when
    /// the wait ended `Interrupted`.
    fn reattach(&self, end: WaitEnd);
}

/// A thread that holds no Gil: nothing to let go of, nothing interrupts it.
pub struct Plain;

impl Waiter for Plain {
    #[inline]
    fn is_attached(&self) -> bool {
        false
    }

    #[inline]
    fn token_bits(&self, bits: usize) -> usize {
        debug_assert!(bits <= TOKEN_BITS);
        bits
    }

    #[inline]
    fn interrupt_pending(&self) -> bool {
        false
    }

    #[inline]
    fn interrupted_before(&self) -> bool {
        false
    }

    #[inline]
    fn queued(&self) {}

    #[inline]
    fn detach(&self, _key: usize) {}

    #[inline]
    fn reattach(&self, _end: WaitEnd) {}
}

/// The park token `waiter` parks with, with the primitive's own `bits`.
#[inline]
pub(crate) fn park_token(waiter: &impl Waiter, bits: usize) -> ParkToken {
    ParkToken(waiter.token_bits(bits))
}

/// Runs one blocking call through the protocol: an interrupt pending when
/// the call starts ends it at once, before the first try; otherwise
/// `wait` (the primitive's try, then its slow path) decides, and the Gil
/// is taken back whatever it decided.
#[inline]
pub(crate) fn run<W: Waiter>(waiter: &W, wait: impl FnOnce(&W) -> WaitEnd) -> WaitEnd {
    if waiter.interrupted_before() {
        waiter.reattach(WaitEnd::Interrupted);
        return WaitEnd::Interrupted;
    }
    let end = wait(waiter);
    waiter.reattach(end);
    end
}

/// Whether a token is an interruptible waiter's, owned by the thread state
/// at `owner`.
#[inline]
pub(crate) fn token_owned_by(token: ParkToken, owner: usize) -> bool {
    token.0 & !TOKEN_BITS == owner | ATTACHED
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_tokens_are_never_taken_for_an_attached_one() {
        // A ThreadState address: aligned to 64.
        let owner = 0x7f00_0000_1240;
        assert!(token_owned_by(ParkToken(owner | ATTACHED | 1), owner));
        assert!(token_owned_by(ParkToken(owner | ATTACHED), owner));
        // A plain token with the same high bits (a semaphore's request
        // size, say) lacks ATTACHED.
        assert!(!token_owned_by(ParkToken(owner | 1), owner));
        assert!(!token_owned_by(ParkToken(owner | ATTACHED), owner + 64));
        assert!(!token_owned_by(park_token(&Plain, TOKEN_BITS), 0));
    }
}
