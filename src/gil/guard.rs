//! `GilGuard`: the proof that a thread holds the Gil, and what it does with
//! it: checkpoints, `yield_now`, `detach`, and letting go around a wait.
//!
//! # Guards, attachments and suspensions
//!
//! An *attachment* is one span during which the thread holds the Gil; its
//! guards (the first from `acquire`, nested ones from `ensure`) are counted
//! in the thread's word (`thread_word`), and the Gil is released when the
//! last one drops. `detach` and every wait *suspend* the attachment: they
//! save its count, let go of the Gil, and restore the count when they take
//! it back.
//! Inside a suspension the thread may attach again (a fresh `acquire` in a
//! detach closure); that is a new attachment, with a new id.
//!
//! Each guard records the id of its attachment. Normally a guard is dropped
//! in its own attachment. The two exceptions are counted rather than
//! trusted: a guard of a *suspended* attachment dropped inside the
//! suspension (smuggled in through a thread-local: `detach` takes only
//! `Send` closures, and guards are not `Send`) is subtracted from that
//! attachment's count when it resumes; and a guard of an inner attachment
//! still alive when its suspension ends joins the resumed attachment. So
//! whatever a program does with its guards, the Gil is released exactly
//! when the thread's last guard drops.

use super::Gil;
use super::acquire::Wait;
use super::breaker::{DROP_REQUEST, INTERRUPT};
use super::hooks::{self, GilEventKind};
use super::release::{How, Released};
use super::stats::count_one;
use super::thread_state::{ThreadState, ThreadStatus};
use crate::sync::Ordering;
use core::fmt;
use core::marker::PhantomData;
use core::ptr::NonNull;

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
/// Neither `Send` nor `Sync`: the Gil belongs to a thread. Leaking a guard
/// (`mem::forget`) leaves the Gil taken for good, as a CPython thread that
/// exits holding the GIL does; nothing unsound follows, other threads just
/// wait (or time out).
pub struct GilGuard<'a> {
    pub(super) gil: &'a Gil,
    /// The thread's state: a pointer, not a reference, because the drop of
    /// the thread's last guard may free it (an ended state, see
    /// `registry`), and a reference field would have to stay valid for as
    /// long as the guard is an argument of a running function (`mem::drop`
    /// included): Rust's aliasing rules, which Miri checks.
    state: NonNull<ThreadState>,
    /// The attachment this guard belongs to (see the module docs).
    attachment: u64,
    _not_send: PhantomData<*const ()>,
}

/// A suspended attachment: what `suspend` saved for `resume`.
#[must_use]
pub(super) struct Suspension {
    depth: usize,
    attachment: u64,
}

impl<'a> GilGuard<'a> {
    /// A guard of the thread's current attachment (its count already
    /// raised by the caller).
    #[inline]
    pub(super) fn new(gil: &'a Gil, ts: &'a ThreadState) -> Self {
        Self {
            gil,
            state: NonNull::from(ts),
            attachment: ts.attachment.load(Ordering::Relaxed),
            _not_send: PhantomData,
        }
    }

    /// Whether the thread should call [`checkpoint`](Self::checkpoint): a
    /// waiter asked for the Gil, an interrupt is pending, or a pending call
    /// was requested. One relaxed load of the thread's [`EvalBreaker`]:
    /// cheap enough for every instruction.
    ///
    /// [`EvalBreaker`]: crate::EvalBreaker
    #[must_use]
    #[inline]
    pub fn should_yield(&self) -> bool {
        self.ts().eval_breaker().is_set()
    }

    /// Handles what the eval breaker asks (CPython's
    /// `_Py_HandlePending`): on a drop request, hands the Gil to the oldest
    /// waiter and waits until it is this thread's turn again (a forced
    /// switch); reports and consumes a pending interrupt. Cheap (one load)
    /// when nothing is asked. Pending calls are left for the caller
    /// ([`EvalBreaker::take_pending_call`](crate::EvalBreaker::take_pending_call)).
    ///
    /// While a waiter is re-parking after an interval (microseconds), the
    /// switch is put off and the request stays set, so that the waiter does
    /// not lose its turn: a later checkpoint switches.
    ///
    /// # Panics
    /// If called on a guard whose thread has the Gil released (a guard
    /// smuggled into its own `detach` closure).
    #[inline]
    pub fn checkpoint(&mut self) -> Checkpoint {
        let bits = self.ts().eval_breaker().load(Ordering::Relaxed);
        if bits & (DROP_REQUEST | INTERRUPT) == 0 {
            return Checkpoint::default();
        }
        self.checkpoint_slow(bits)
    }

    #[cold]
    fn checkpoint_slow(&mut self, bits: u8) -> Checkpoint {
        let mut result = Checkpoint {
            switched: false,
            interrupted: bits & INTERRUPT != 0 && self.ts().take_interrupt(),
        };
        if bits & DROP_REQUEST != 0 {
            self.assert_held("checkpoint");
            let (gil, ts) = (self.gil, self.ts());
            if !gil.has_waiters() {
                // Nobody seems to wait: drop the request, then look again.
                // The load above may be older than the request (both are
                // Relaxed), and a waiter may queue and ask right now. The
                // clear reads the waiter's Release `ask_to_drop` (or a
                // later write), so the second look sees the waiters bit that
                // waiter saw before it asked: a request is never cleared
                // while its asker waits.
                ts.eval_breaker().clear(DROP_REQUEST, Ordering::Acquire);
                if !gil.has_waiters() {
                    return result;
                }
                // Someone waits after all: the request stands, for the
                // checks below that keep it for a later checkpoint.
                ts.eval_breaker().set(DROP_REQUEST, Ordering::Relaxed);
            }
            if ts.borrows.any() {
                // A GilCell borrow of this thread (through another guard)
                // is alive: keep the Gil, and the request, for a later
                // checkpoint.
                return result;
            }
            if gil.in_transit.load(Ordering::Relaxed) != 0 {
                // A waiter is re-parking after an interval and would lose
                // its turn: keep the request and switch at a later
                // checkpoint, a moment from now. (A quick look; the release
                // looks again with the queue locked, where it counts.)
                return result;
            }
            let before = gil.switch_number();
            let depth = ts.word.guards();
            ts.word.set_guards(0);
            let released = gil.release(ts, How::Forced);
            match released {
                Released::Kept => {}
                // Lent to a thread back from I/O: it comes back soon.
                Released::HandedOff { lent: true } => gil.reacquire(ts, Wait::LENT),
                _ => gil.reacquire(ts, Wait::PREEMPTED),
            }
            ts.word.set_guards(depth);
            let handed = matches!(released, Released::HandedOff { .. });
            result.switched = handed || gil.switch_number() != before;
            // A release that found no heir parked yet (it was between
            // raising the waiters bit and joining the queue) frees the Gil,
            // and the waiter takes it: a forced switch all the same.
            if result.switched {
                count_one(&ts.counters.forced_releases);
                if !handed {
                    count_one(&gil.counters.forced_switches);
                }
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
        let (gil, ts) = (self.gil, self.ts());
        if !Self::sees_a_waiter(gil, ts) || ts.borrows.any() {
            // Nobody to yield to, or a GilCell borrow of this thread
            // (through another guard) is alive: keep the Gil.
            return false;
        }
        let before = gil.switch_number();
        let depth = ts.word.guards();
        ts.word.set_guards(0);
        let released = gil.release(ts, How::Yield);
        gil.reacquire(ts, Wait::PREEMPTED);
        ts.word.set_guards(depth);
        let switched =
            matches!(released, Released::HandedOff { .. }) || gil.switch_number() != before;
        if switched {
            count_one(&ts.counters.voluntary_releases);
        }
        switched
    }

    /// Whether a thread waits for the Gil, as `yield_now` must see it: the
    /// waiters bit, which a Relaxed load may see older than a waiter's
    /// arrival; and if it looks clear while a drop request is pending, the
    /// bit again after reading the request with Acquire. The waiter that
    /// asked raised the bit before its Release `ask_to_drop`, so a caller
    /// that saw the request (`should_yield`) also sees that waiter. The
    /// request is left alone: it is the checkpoint's to clear.
    fn sees_a_waiter(gil: &Gil, ts: &ThreadState) -> bool {
        gil.has_waiters()
            || (ts.eval_breaker().load(Ordering::Acquire) & DROP_REQUEST != 0 && gil.has_waiters())
    }

    /// Releases the Gil around `f` and takes it back afterwards
    /// (`Py_BEGIN_ALLOW_THREADS` / `Py_END_ALLOW_THREADS`): for blocking
    /// work that does not touch interpreter state. A waiting thread gets the
    /// Gil at once. Coming back, the thread waits for its turn like any
    /// other under [`SwitchPolicy::Fifo`](super::SwitchPolicy::Fifo); under
    /// [`SwitchPolicy::Interactive`](super::SwitchPolicy::Interactive) it asks for the Gil at once (within its
    /// fair share) and the holder lends it. The Gil is taken back even if
    /// `f` panics.
    ///
    /// `f` must be `Send`, as PyO3's `allow_threads` requires: what runs
    /// without the Gil must not carry anything that proves or needs the
    /// Gil, and every such thing (a `GilGuard`, a [`GilRef`](crate::GilRef)
    /// or [`GilRefMut`](crate::GilRefMut) borrow of a
    /// [`GilCell`](crate::GilCell)) is neither `Send` nor `Sync`, so it can
    /// be neither moved nor referenced into `f`. What the bound costs:
    /// other values that are not `Sync` cannot be used by reference in `f`
    /// (a `&std::sync::mpsc::Receiver`, a `&Cell`), nor non-`Send` ones at
    /// all (an `Rc`): move a `Receiver` in and hand it back as `f`'s
    /// result, and keep `Rc`s out of blocking work. Inside `f` the thread
    /// may take the Gil again (a fresh [`Gil::acquire`] or
    /// [`Gil::ensure`]).
    ///
    /// Live `GilCell` borrows made through *other* guards of the thread
    /// (which the compiler cannot see here) make `detach` panic before it
    /// lets go of the Gil, naming one of them.
    ///
    /// ```
    /// # #[cfg(feature = "std")] {
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
    /// # }
    /// ```
    ///
    /// A guard cannot be moved into the closure, so no guard can be dropped
    /// while its Gil is let go of:
    ///
    /// ```compile_fail
    /// let gil = gilock::Gil::new();
    /// let mut outer = gil.acquire();
    /// let inner = gil.ensure();
    /// outer.detach(move || drop(inner));
    /// ```
    ///
    /// and neither can a borrow of Gil-bound data made through another
    /// guard:
    ///
    /// ```compile_fail
    /// let gil = gilock::Gil::new();
    /// let cell = gilock::GilCell::new(0);
    /// let mut outer = gil.acquire();
    /// let inner = gil.ensure();
    /// let value = cell.borrow(&inner);
    /// outer.detach(move || *value + 1);
    /// ```
    ///
    /// A `Receiver` is moved in, not borrowed:
    ///
    /// ```
    /// # #[cfg(feature = "std")] {
    /// let gil = gilock::Gil::new();
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// tx.send(7).unwrap();
    /// let mut guard = gil.acquire();
    /// let (value, rx) = guard.detach(move || (rx.recv().unwrap(), rx));
    /// assert_eq!(value, 7);
    /// # drop(rx);
    /// # }
    /// ```
    ///
    /// # Panics
    /// As [`checkpoint`](Self::checkpoint).
    #[doc(alias = "allow_threads")]
    #[doc(alias = "Py_BEGIN_ALLOW_THREADS")]
    pub fn detach<R>(&mut self, f: impl FnOnce() -> R + Send) -> R {
        let suspension = self.suspend("detach", How::Handoff);
        self.ts().set_status(ThreadStatus::Detached);
        struct Resume<'g, 'a> {
            guard: &'g mut GilGuard<'a>,
            suspension: Option<Suspension>,
        }
        impl Drop for Resume<'_, '_> {
            fn drop(&mut self) {
                if let Some(suspension) = self.suspension.take() {
                    self.guard.resume(suspension, Wait::VOLUNTARY);
                }
            }
        }
        let _resume = Resume {
            guard: self,
            suspension: Some(suspension),
        };
        f()
    }

    /// The calling thread's state for this Gil.
    #[must_use]
    pub fn thread_state(&self) -> &ThreadState {
        self.ts()
    }

    /// The thread's state, as the reference the guard was made with.
    /// Crate code must not keep it past the guard's drop.
    #[inline]
    pub(super) fn ts(&self) -> &'a ThreadState {
        // SAFETY:
        // - `state` came from a `&'a ThreadState` (`new`): the calling
        //   thread's state for this Gil;
        // - it lives while the thread does, and past that while any guard
        //   of the thread pins it (see `registry`): only the drop of the
        //   thread's last guard frees it, after its last use there.
        unsafe { self.state.as_ref() }
    }

    /// The Gil this guard holds.
    #[must_use]
    pub fn gil(&self) -> &'a Gil {
        self.gil
    }

    /// Suspends this guard's attachment and lets go of the Gil as `how`
    /// says, telling the event hook. Must not be called from a park
    /// callback (the hook is user code). Pair with [`resume`](Self::resume).
    pub(super) fn suspend(&mut self, what: &str, how: How) -> Suspension {
        let suspension = self.suspend_quietly(what);
        count_one(&self.ts().counters.voluntary_releases);
        self.gil.release(self.ts(), how);
        suspension
    }

    /// Suspends the attachment without letting go of the Gil: the caller
    /// lets go later with `Gil::release_quietly` (inside a `before_sleep`,
    /// where no user code may run), so the hook is told here, beforehand.
    pub(super) fn suspend_quietly(&mut self, what: &str) -> Suspension {
        self.assert_held(what);
        let ts = self.ts();
        ts.check_not_in_hook(what);
        // Before anything is let go of: no GilCell borrow of this thread
        // may outlive the Gil (see `cell`).
        ts.borrows.check_none(what);
        let suspension = Suspension {
            depth: ts.word.guards(),
            attachment: self.attachment,
        };
        ts.word.set_guards(0);
        ts.push_suspended(self.attachment);
        suspension
    }

    /// Tells the hook the Gil is about to go (for `suspend_quietly`).
    pub(super) fn announce_release(&self) {
        hooks::fire(
            self.gil,
            self.ts(),
            GilEventKind::Suspended { forced: false },
        );
    }

    /// Takes the Gil back after [`suspend`](Self::suspend) (uninterruptibly,
    /// as `wait` says) and restores the attachment, minus its guards that
    /// were dropped meanwhile, plus those of an inner attachment still
    /// alive.
    pub(super) fn resume(&mut self, suspension: Suspension, wait: Wait) {
        let (gil, ts) = (self.gil, self.ts());
        let dropped = ts.pop_suspended(suspension.attachment);
        let inner = if gil.held_by(ts) {
            // Either the Gil was never let go (a wait refused to queue), or
            // guards taken inside the suspension are still alive.
            let inner = ts.word.guards();
            if inner == 0 {
                hooks::fire(gil, ts, GilEventKind::Resumed);
            }
            inner
        } else {
            gil.reacquire(ts, wait);
            0
        };
        ts.attachment
            .store(suspension.attachment, Ordering::Relaxed);
        ts.word.set_guards(suspension.depth - dropped + inner);
        ts.set_status(ThreadStatus::Attached);
    }

    fn assert_held(&self, what: &str) {
        assert!(
            self.gil.held_by(self.ts()) && self.is_current(),
            "GilGuard::{what}: this thread does not hold the Gil through this guard right now \
             (was the guard smuggled into its own detach closure?)"
        );
    }

    /// Whether this guard belongs to the thread's current attachment.
    #[inline]
    fn is_current(&self) -> bool {
        self.attachment == self.ts().attachment.load(Ordering::Relaxed)
    }

    /// Whether the thread holds the Gil through this guard now.
    #[inline]
    pub(super) fn is_attached(&self) -> bool {
        self.gil.held_by(self.ts()) && self.is_current()
    }

    #[cold]
    fn drop_outside_attachment(&mut self) {
        if !self.ts().count_stray_drop(self.attachment) {
            // A guard of an inner attachment that outlived its suspension
            // and joined the resumed one (see the module docs).
            self.drop_in_attachment();
        }
    }

    // Inlined: with `acquire`, the whole uncontended round trip of an
    // interpreter's entry from native code. What is rare stays out of line.
    #[inline(always)]
    fn drop_in_attachment(&mut self) {
        let (gil, ts) = (self.gil, self.ts());
        // The common case, a thread's last guard with neither flag of
        // `thread_word` set, in one look at the word (a hook to tell fails
        // the release's compare-and-swap, see `release_last_guard`).
        if ts.word.detach_last() {
            // Guards of the current attachment hold the Gil.
            debug_assert!(gil.held_by(ts));
            gil.release_last_guard(ts);
            return;
        }
        if ts.word.drop_nested() {
            return;
        }
        self.drop_in_attachment_slow();
    }

    /// The last guard, with a hook to tell or a flag set (`drop_nested`
    /// took every drop of a guard that is not the last).
    #[cold]
    fn drop_in_attachment_slow(&mut self) {
        let ts = self.ts();
        debug_assert!(ts.word.guards() <= 1, "a nested guard's drop came here");
        ts.check_not_in_hook("a GilGuard drop");
        ts.word.set_guards(0);
        // Never release a Gil this thread does not hold (a guard of the
        // current attachment implies it does; this keeps a bug elsewhere
        // from unlocking another thread's Gil).
        if self.gil.held_by(ts) {
            self.gil.release(ts, How::Handoff);
        }
        if ts.is_ended() {
            self.unlist_ended();
        }
    }

    /// The last guard of a thread-local destructor dropped: the state may
    /// go now (`ts` is a local here, not a reference argument: freeing its
    /// target is allowed, and nothing touches it after).
    #[cold]
    fn unlist_ended(&self) {
        let ts = self.ts();
        drop(super::registry::unlist_if_ended(&self.gil.listing, ts));
    }
}

impl Drop for GilGuard<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        if !self.is_current() {
            return self.drop_outside_attachment();
        }
        self.drop_in_attachment();
    }
}

impl fmt::Debug for GilGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GilGuard")
            .field("thread", &self.ts().ident())
            .field("eval_breaker", self.ts().eval_breaker())
            .finish()
    }
}
