//! `ThreadWord`: one thread's guard count, status and flags for one Gil, in
//! one word that the uncontended acquire and release each read once and
//! write once.
//!
//! Four fields kept apart (the guard count, the status, "running an event
//! hook", "the thread's locals are gone") cost the fast paths four loads
//! and two stores between their two compare-and-swaps, each of which the
//! uncontended acquire + release pays for; in one word they are one load
//! and one store on each side.
//!
//! Only the thread the state belongs to writes the word (every writer is a
//! method of `ThreadState` called on its own thread: the Gil's paths for
//! the calling thread, its park callbacks, its event hooks, its thread-local
//! destructor), so a write is a load and a store, not a read-modify-write.
//! Other threads only read it, for [`ThreadState::status`].
//!
//! [`ThreadState::status`]: super::ThreadState::status

use crate::sync::{AtomicU64, Ordering};

/// The guards alive in the thread's current attachment (see `guard`).
const GUARDS: u64 = 0xFFFF_FFFF;
/// The status, one of `DETACHED`, `WAITING`, `ATTACHED`.
const STATUS_SHIFT: u32 = 32;
const STATUS: u64 = 0b11 << STATUS_SHIFT;
/// An event hook runs on the thread (which must not use the Gil it
/// observes).
const IN_HOOK: u64 = 1 << 34;
/// The thread's locals are gone: the state is kept only while something
/// points at it (see `registry`).
const ENDED: u64 = 1 << 35;

pub(super) const DETACHED: u8 = 0;
pub(super) const WAITING: u8 = 1;
pub(super) const ATTACHED: u8 = 2;

/// The word of a thread that holds the Gil through exactly one guard, with
/// neither flag set: what the release fast path expects.
const ONE_GUARD_ATTACHED: u64 = 1 | (ATTACHED as u64) << STATUS_SHIFT;

pub(super) struct ThreadWord(AtomicU64);

impl ThreadWord {
    pub(super) fn new() -> Self {
        Self(AtomicU64::new(0))
    }

    /// The word as its own thread last wrote it.
    #[inline]
    fn own(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Every store is Release: it may carry a status, which a reader on
    /// another thread acquires (see `ThreadState::status`).
    #[inline]
    fn put(&self, word: u64) {
        self.0.store(word, Ordering::Release);
    }

    /// The fast acquire's look, taken before the compare-and-swap: `None`
    /// if an event hook runs on the thread (the acquire must panic, and
    /// nothing is locked yet), else what `attach_one` takes.
    #[inline]
    pub(super) fn before_attach(&self) -> Option<u64> {
        let word = self.own();
        (word & IN_HOOK == 0).then_some(word)
    }

    /// The thread became the holder: one guard more, status `Attached`.
    /// `word` is from `before_attach` or `own` on this thread, which no
    /// other thread writes in between.
    #[inline]
    pub(super) fn attach_one(&self, word: u64) {
        debug_assert!(word & GUARDS < GUARDS, "guard count overflow");
        self.put(((word & !STATUS) + 1) | (ATTACHED as u64) << STATUS_SHIFT);
    }

    /// One guard more (a thread that became the holder, or a nested
    /// guard), status `Attached`.
    #[inline]
    pub(super) fn add_guard(&self) {
        self.attach_one(self.own());
    }

    /// The release fast path's look: if the thread's last guard is going
    /// and no flag is set, records no guards and `Detached` in one store and
    /// returns true; else returns false, having changed nothing.
    #[inline]
    pub(super) fn detach_last(&self) -> bool {
        if self.own() != ONE_GUARD_ATTACHED {
            return false;
        }
        self.put(0);
        true
    }

    /// A nested guard's drop: if more than one guard is alive, one fewer,
    /// and returns true; else returns false, having changed nothing.
    #[inline]
    pub(super) fn drop_nested(&self) -> bool {
        let word = self.own();
        if word & GUARDS <= 1 {
            return false;
        }
        self.put(word - 1);
        true
    }

    pub(super) fn guards(&self) -> usize {
        (self.own() & GUARDS) as usize
    }

    pub(super) fn set_guards(&self, guards: usize) {
        let guards = guards as u64;
        assert!(guards <= GUARDS, "guard count overflow");
        self.put((self.own() & !GUARDS) | guards);
    }

    /// The status, read from any thread.
    pub(super) fn status(&self) -> u8 {
        ((self.0.load(Ordering::Acquire) & STATUS) >> STATUS_SHIFT) as u8
    }

    pub(super) fn set_status(&self, status: u8) {
        self.put((self.own() & !STATUS) | (status as u64) << STATUS_SHIFT);
    }

    pub(super) fn in_hook(&self) -> bool {
        self.own() & IN_HOOK != 0
    }

    #[cfg(feature = "std")]
    pub(super) fn set_in_hook(&self, running: bool) {
        let word = self.own();
        self.put(if running {
            word | IN_HOOK
        } else {
            word & !IN_HOOK
        });
    }

    pub(super) fn is_ended(&self) -> bool {
        self.own() & ENDED != 0
    }

    pub(super) fn mark_ended(&self) {
        self.put(self.own() | ENDED);
    }
}
