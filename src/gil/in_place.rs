//! Waiters outside the park queue that a release can hand the Gil to where
//! they are.
//!
//! A waiter is out of the park queue while it spins for a handoff (a thread
//! back from I/O that asked for the Gil, a lender waiting for its loan to
//! come back, a thread woken ahead of its turn) and for the moment between
//! two parks (its interval ran out,
//! or it wants another deadline). In either case it may take one of a few
//! slots, and then it is a candidate like a parked waiter: a releaser that
//! picks it makes it the holder in place (empties its slot, then writes
//! its address into the state word, keeps `LOCKED`), with no wake-up; the
//! waiter, spinning, sees its slot empty and then its address in the word
//! (it polls the slot, whose line only that handoff writes), or sees the
//! word at its next `validate`.
//!
//! The rules that make this sound, each kept with the park queue locked:
//! - a waiter enters and leaves a slot only in a park callback (its
//!   `validate` or `timed_out`), or is put in one by a releaser in an
//!   unpark callback (a lender as it lends, a thread woken ahead as it
//!   leaves the queue); a releaser reads the slots and empties the one it
//!   hands to only in an unpark callback, so every candidate a releaser
//!   sees is really waiting, and a handoff and a waiter's decision to park
//!   are never both made;
//! - the waiters bit stays set while a slot is taken, and the word is never
//!   freed then: an occupant can only leave its slot by a handoff or, in
//!   its `validate`, to park, so it never misses the Gil;
//! - only waits that end with the Gil take a slot (untimed, not
//!   interruptible): a handoff to a waiter that could leave would strand
//!   the Gil.
//!
//! A waiter that finds every slot taken parks (a spinner) or is counted in
//! `Transit` (between two parks), as before.

use crate::sync::{AtomicUsize, Ordering, const_fn};
use crate::wait::TOKEN_LOW;

/// How many waiters may wait in place at once: enough for a lender and a
/// thread back from I/O, or one of them and a waiter between two parks.
const SLOTS: usize = 2;

/// The slots: park tokens (a `ThreadState` address with flags), 0 when
/// free. Every method is called with the Gil's park queue locked, except
/// `holds` and `slot_of`, hints.
pub(super) struct InPlace {
    slots: [Slot; SLOTS],
}

/// One slot, on cache lines of its own: its occupant polls it while it
/// spins (`slot_of`), and a releaser's other writes, or the other
/// slot's, must not take the line away from under it. 128 bytes, as
/// crossbeam pads on x86-64, whose prefetcher pulls lines in pairs.
#[repr(align(128))]
struct Slot(AtomicUsize);

impl core::ops::Deref for Slot {
    type Target = AtomicUsize;

    fn deref(&self) -> &AtomicUsize {
        &self.0
    }
}

impl InPlace {
    const_fn! {
        pub(super) const fn new() -> Self {
            Self {
                slots: [Slot(AtomicUsize::new(0)), Slot(AtomicUsize::new(0))],
            }
        }
    }

    /// Takes a slot for `token` (or keeps the one it has); false if all are
    /// taken.
    pub(super) fn enter(&self, token: usize) -> bool {
        let mut free = None;
        for slot in &self.slots {
            match slot.load(Ordering::Relaxed) {
                t if t == token => return true,
                0 if free.is_none() => free = Some(slot),
                _ => {}
            }
        }
        free.inspect(|slot| slot.store(token, Ordering::Relaxed))
            .is_some()
    }

    /// Gives up the slot of the thread whose state is at `me`, if it has
    /// one.
    pub(super) fn leave(&self, me: usize) {
        for slot in &self.slots {
            if is_of(slot.load(Ordering::Relaxed), me) {
                slot.store(0, Ordering::Relaxed);
            }
        }
    }

    /// Empties the slot holding `token`, for a handoff to it; false if no
    /// slot holds it any more.
    pub(super) fn take(&self, token: usize) -> bool {
        self.slots.iter().any(|slot| {
            let found = slot.load(Ordering::Relaxed) == token;
            if found {
                slot.store(0, Ordering::Relaxed);
            }
            found
        })
    }

    /// Whether a slot is free.
    pub(super) fn has_room(&self) -> bool {
        self.slots.iter().any(|s| s.load(Ordering::Relaxed) == 0)
    }

    /// Whether any slot is taken.
    pub(super) fn any(&self) -> bool {
        self.slots.iter().any(|s| s.load(Ordering::Relaxed) != 0)
    }

    /// The tokens in the slots.
    pub(super) fn each(&self, mut f: impl FnMut(usize)) {
        for slot in &self.slots {
            let t = slot.load(Ordering::Relaxed);
            if t != 0 {
                f(t);
            }
        }
    }

    /// Whether `token` has a slot: a hint, read without the queue lock (only
    /// its owner and a handoff to it change its slot).
    pub(super) fn holds(&self, token: usize) -> bool {
        self.slots
            .iter()
            .any(|s| s.load(Ordering::Relaxed) == token)
    }

    /// For the tests: whether the thread whose state is at `me` has a slot,
    /// whatever the flags of its token (what its spin polls, `slot_of`).
    #[cfg(test)]
    fn holds_address(&self, me: usize) -> bool {
        self.slot_of(me).is_some()
    }

    /// The slot of the thread whose state is at `me`, if it has one, for
    /// that thread to poll while it spins: its token stays in that slot
    /// until a handoff takes it (it never moves to the other), so the
    /// spinner reads this one line, not every slot's.
    pub(super) fn slot_of(&self, me: usize) -> Option<&AtomicUsize> {
        self.slots
            .iter()
            .find(|s| is_of(s.load(Ordering::Relaxed), me))
            .map(|s| &s.0)
    }
}

/// Whether the slot's `token` is that of the thread whose state is at
/// `me` (whatever its flags; never a free slot's 0).
pub(super) fn is_of(token: usize, me: usize) -> bool {
    token != 0 && token & !TOKEN_LOW == me
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::gil::PRIORITY;

    // Tokens stand for states' addresses (aligned, so the low bits are
    // free for flags); no state is read.
    const A: usize = 0x1000;
    const B: usize = 0x2000 | PRIORITY;
    const C: usize = 0x3000;

    /// Each waiter takes one slot, and keeps it when it enters again; a
    /// third finds none.
    ///
    /// Mutations: `enter` not recognising a token it holds (`t == token` as
    /// `false`) → A took both slots; `has_room` always `true` → room where
    /// both slots were taken; `any` always `false` → no slot taken beside
    /// A and B (a release would then drop the waiters bit under them);
    /// `holds` always `true`, or with `!=` for `==` → C held a slot.
    #[test]
    fn each_waiter_takes_one_slot_and_a_third_finds_none() {
        let slots = InPlace::new();
        assert!(!slots.any());
        assert!(slots.has_room());
        assert!(slots.enter(A));
        assert!(slots.enter(A));
        assert!(slots.has_room(), "A took both slots");
        assert!(slots.enter(B));
        assert!(!slots.has_room());
        assert!(slots.any());
        assert!(!slots.enter(C));
        assert!(slots.holds(A) && slots.holds(B));
        assert!(!slots.holds(C));
        let (mut tokens, mut n) = ([0; 3], 0);
        slots.each(|t| {
            tokens[n] = t;
            n += 1;
        });
        tokens[..n].sort_unstable();
        assert_eq!(tokens[..n], [A, B]);
    }

    /// A waiter leaving (by its address, whatever its flags) and a handoff
    /// taking a slot each empty only their own, and a spinner, which looks
    /// for its slot by its address, sees its own go and only its own.
    ///
    /// Mutations: `leave` emptying every taken slot (`&&` as `||`) → A's
    /// slot went with B's; `holds` always `true` → B still held a slot
    /// after leaving; `is_of` comparing the whole token (flags kept) → B,
    /// which carries `PRIORITY`, did not find its slot; `slot_of` taking
    /// any slot → C found a slot it never took.
    #[test]
    fn leaving_or_taking_empties_only_the_own_slot() {
        let slots = InPlace::new();
        assert!(slots.enter(A) && slots.enter(B));
        assert!(slots.holds_address(B & !TOKEN_LOW), "B's slot, by address");
        assert!(!slots.holds_address(C));
        slots.leave(B & !TOKEN_LOW);
        assert!(slots.holds(A), "A's slot went with B's");
        assert!(!slots.holds(B));
        assert!(slots.has_room());
        assert!(slots.take(A));
        assert!(
            !slots.holds_address(A),
            "A's slot was taken for its handoff"
        );
        assert!(!slots.take(A), "a slot can be taken once");
        assert!(!slots.any());
    }
}
