//! `ThreadWord`: one thread's guard count, status, flags and count of
//! acquisitions for one Gil, in one word that the uncontended acquire and
//! release each read once and write once.
//!
//! Five fields kept apart (the guard count, the status, "running an event
//! hook", "the thread's locals are gone", the acquisitions) cost the fast
//! paths five loads and three stores between their two compare-and-swaps,
//! each of which the uncontended acquire + release pays for; in one word
//! they are one load and one store on each side.
//!
//! The word keeps the acquisitions modulo 2^28; every 2^20 acquisitions
//! the thread also counts a lap in a second atomic, written before the word
//! (see `acquisitions` for how a reader puts the two together).
//!
//! Only the thread the state belongs to writes the word (every writer is a
//! method of `ThreadState` called on its own thread: the Gil's paths for
//! the calling thread, its park callbacks, its event hooks, its thread-local
//! destructor), so a write is a load and a store, not a read-modify-write.
//! Other threads only read it, for [`ThreadState::status`].
//!
//! [`ThreadState::status`]: super::ThreadState::status

use crate::sync::{AtomicU64, Ordering, UnmodeledAtomicU64};

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
/// The thread's acquisitions of the Gil, modulo 2^28.
const ACQ_SHIFT: u32 = 36;
const ACQ: u64 = !0 << ACQ_SHIFT;
const ACQ_ONE: u64 = 1 << ACQ_SHIFT;
/// The low 20 bits of the acquisitions: when they wrap to 0, a lap is
/// counted (`laps`); the top 8 bits of the field are then the laps modulo
/// 256.
const LAP_BITS: u32 = 20;
const LAP: u64 = ((1 << LAP_BITS) - 1) << ACQ_SHIFT;

pub(super) const DETACHED: u8 = 0;
pub(super) const WAITING: u8 = 1;
pub(super) const ATTACHED: u8 = 2;

/// The word of a thread that holds the Gil through exactly one guard, with
/// neither flag set: what the release fast path expects.
const ONE_GUARD_ATTACHED: u64 = 1 | (ATTACHED as u64) << STATUS_SHIFT;

pub(super) struct ThreadWord {
    word: AtomicU64,
    /// How many times the low `LAP_BITS` of the acquisitions wrapped.
    /// Stored before the word that shows the wrap. Real time only (no model
    /// takes 2^20 acquisitions): kept off the loom model.
    laps: UnmodeledAtomicU64,
}

impl ThreadWord {
    pub(super) fn new() -> Self {
        Self {
            word: AtomicU64::new(0),
            laps: UnmodeledAtomicU64::new(0),
        }
    }

    /// The word as its own thread last wrote it.
    #[inline]
    fn own(&self) -> u64 {
        self.word.load(Ordering::Relaxed)
    }

    /// Every store is Release: it may carry a status, which a reader on
    /// another thread acquires (see `ThreadState::status`).
    #[inline]
    fn put(&self, word: u64) {
        self.word.store(word, Ordering::Release);
    }

    /// The fast acquire's look, taken before the compare-and-swap: `None`
    /// if an event hook runs on the thread (the acquire must panic, and
    /// nothing is locked yet), else what `attach_one` takes.
    #[inline]
    pub(super) fn before_attach(&self) -> Option<u64> {
        let word = self.own();
        (word & IN_HOOK == 0).then_some(word)
    }

    /// The thread became the holder: one acquisition and one guard more,
    /// status `Attached`. `word` is from `before_attach` or `own` on this
    /// thread, which no other thread writes in between.
    #[inline]
    pub(super) fn attach_one(&self, word: u64) {
        debug_assert!(word & GUARDS < GUARDS, "guard count overflow");
        let attached = (word & !STATUS) | (ATTACHED as u64) << STATUS_SHIFT;
        self.put_counted(attached.wrapping_add(ACQ_ONE + 1));
    }

    /// `attach_one` for a slow path, which has not read the word yet.
    pub(super) fn attach(&self) {
        self.attach_one(self.own());
    }

    /// A nested guard (`ensure` by the holder): one guard more, status
    /// `Attached`; not an acquisition.
    pub(super) fn add_guard(&self) {
        let word = self.own();
        debug_assert!(word & GUARDS < GUARDS, "guard count overflow");
        self.put(((word & !STATUS) | (ATTACHED as u64) << STATUS_SHIFT) + 1);
    }

    /// One acquisition more, nothing else changed (a forced release that
    /// kept the Gil counts as a release and a fresh acquisition).
    pub(super) fn count_acquisition(&self) {
        self.put_counted(self.own().wrapping_add(ACQ_ONE));
    }

    /// Stores `word`, whose acquisitions just went up by one: first the lap
    /// if the low bits wrapped (so that a reader who sees the wrap sees the
    /// lap, see `acquisitions`).
    #[inline]
    fn put_counted(&self, word: u64) {
        if word & LAP == 0 {
            self.count_lap();
        }
        self.put(word);
    }

    #[cold]
    fn count_lap(&self) {
        let laps = self.laps.load(Ordering::Relaxed);
        self.laps.store(laps + 1, Ordering::Relaxed);
    }

    /// How many times the thread took the Gil, read from any thread.
    pub(super) fn acquisitions(&self) -> u64 {
        // Acquire: a word that shows a wrap was stored (Release) after the
        // lap that goes with it, so `laps` read next is at least the word's
        // own count of laps, and at most 255 ahead of it (a thread would
        // need 2^28 acquisitions between these two loads). The word has
        // that count modulo 256 in its top 8 bits: the largest count of
        // laps up to `laps` with those bits is the word's.
        let field = self.word.load(Ordering::Acquire) >> ACQ_SHIFT;
        let laps = self.laps.load(Ordering::Relaxed);
        let behind = laps.wrapping_sub(field >> LAP_BITS) & 0xFF;
        let word_laps = laps - behind;
        word_laps << LAP_BITS | (field & ((1 << LAP_BITS) - 1))
    }

    /// The release fast path's look: if the thread's last guard is going
    /// and no flag is set, records no guards and `Detached` in one store and
    /// returns true; else returns false, having changed nothing.
    #[inline]
    pub(super) fn detach_last(&self) -> bool {
        let word = self.own();
        if word & !ACQ != ONE_GUARD_ATTACHED {
            return false;
        }
        self.put(word & ACQ);
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
        ((self.word.load(Ordering::Acquire) & STATUS) >> STATUS_SHIFT) as u8
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

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// A word whose thread took the Gil `n` times, as its own thread left
    /// it: the field and the laps agree.
    fn after(n: u64) -> ThreadWord {
        let word = ThreadWord::new();
        word.word.store(n << ACQ_SHIFT, Ordering::Relaxed);
        word.laps.store(n >> LAP_BITS, Ordering::Relaxed);
        word
    }

    /// The count goes on by one across a lap, and across the wrap of the
    /// word's whole field (2^28), as a user's statistics expect.
    ///
    /// Mutation: `put_counted` without its `count_lap` → the read found the
    /// word's laps ahead of `laps` ("attempt to subtract with overflow").
    #[test]
    fn acquisitions_count_on_across_laps_and_the_fields_wrap() {
        for start in [(1 << LAP_BITS) - 2, (1 << 28) - 2, (300 << LAP_BITS) - 1] {
            let word = after(start);
            assert_eq!(word.acquisitions(), start);
            for n in 1..=3 {
                word.attach();
                assert_eq!(word.acquisitions(), start + n, "after {n} from {start}");
                word.detach_last();
            }
        }
    }

    /// A reader between the owner's two stores (the lap counted, the word
    /// not yet stored) sees the count before the wrap, not a lap ahead.
    ///
    /// Mutation: `acquisitions` taking `laps` as it is (`behind` = 0) →
    /// 2097151 read as 4194303.
    #[test]
    fn a_read_between_the_lap_and_the_word_is_not_a_lap_ahead() {
        let n = (2 << LAP_BITS) - 1;
        let word = after(n);
        word.laps.store(3, Ordering::Relaxed);
        assert_eq!(word.acquisitions(), n);
    }

    /// The fast release's look ignores the count: a thread with one guard
    /// whose count is not zero still detaches by the fast path, and the
    /// count survives it.
    ///
    /// Mutation: `detach_last` comparing the whole word → false.
    #[test]
    fn detach_last_ignores_and_keeps_the_count() {
        let word = after(41);
        word.attach();
        assert!(word.detach_last());
        assert_eq!(word.acquisitions(), 42);
        assert_eq!(word.guards(), 0);
    }
}
