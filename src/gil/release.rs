//! Letting go of the Gil, and choosing whom it goes to.

use super::breaker::DROP_REQUEST;
use super::hooks::{self, GilEventKind};
use super::stats::bump;
use super::thread_state::{ThreadState, ThreadStatus};
use super::{Gil, LOCKED, PARKED, PRIORITY};
use crate::park::{self, FilterOp, ParkToken, UnparkResult, UnparkToken};
use crate::sync::Ordering;
use crate::wait::TOKEN_LOW;
use core::cell::Cell;

/// The Gil is yours: the releaser left `LOCKED` set and made you the holder.
pub(super) const TOKEN_HANDOFF: UnparkToken = UnparkToken(1);

/// How a holder lets go of the Gil.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum How {
    /// At a drop request (a forced switch): hand to the heir, unless a
    /// waiter is between two parks (it would lose its turn): then keep the
    /// Gil until the next checkpoint.
    Forced,
    /// Hand to the heir.
    Handoff,
    /// `SwitchPolicy::Interactive`, a voluntary release (detach, a wait):
    /// free the Gil and wake the heir to take it, so that a thread back from
    /// a short detach (a non-blocking send) takes it straight back instead
    /// of waiting for the heir to wake up, run to a checkpoint and hand it
    /// back. A release with a drop request pending hands off.
    Compete,
}

/// What a release did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Released {
    /// Nobody was parked: the Gil is free.
    Freed,
    /// Handed, still locked, to the heir.
    HandedOff,
    /// Freed, and the heir woken to compete for it (`How::Compete`).
    Competing,
    /// A forced release found a waiter between two parks and kept the Gil:
    /// the caller still holds it.
    Kept,
}

/// The waiter `find_heir` chose.
#[derive(Clone, Copy)]
struct Heir {
    token: ParkToken,
    /// It has `PRIORITY` and a waiter without it is passed over.
    overtakes: bool,
}

/// What `find_heir` saw: its heir, if anyone waits, and the `rejoined`
/// count at that moment.
#[derive(Clone, Copy)]
struct Choice {
    heir: Option<Heir>,
    rejoined: usize,
}

impl Gil {
    /// Releases the Gil held by `ts` (see `How`), telling the event hook
    /// first. Runs no park callback of its own caller: never call it from
    /// one (the hook is user code).
    pub(super) fn release(&self, ts: &ThreadState, how: How) -> Released {
        hooks::fire(
            self,
            ts,
            GilEventKind::Suspended {
                forced: how == How::Forced,
            },
        );
        let released = self.release_quietly(ts, how);
        if released == Released::Kept {
            // Told `Suspended`, it holds the Gil again: to the hook and the
            // counters, a release and a fresh acquisition (every `Resumed`
            // is an acquisition).
            bump(&self.counters.acquisitions);
            bump(&ts.counters.acquisitions);
            hooks::fire(self, ts, GilEventKind::Resumed);
        }
        released
    }

    /// [`release`](Self::release) without the event hook: what a
    /// `before_sleep` callback may run (it only unparks). The caller has
    /// told the hook already.
    pub(super) fn release_quietly(&self, ts: &ThreadState, how: How) -> Released {
        ts.set_status(ThreadStatus::Detached);
        // Unpublished before the word is released (see the module docs); if
        // waiters make the fast path fail, the slow path names the heir.
        self.holder.store(0, Ordering::Relaxed);
        if self
            .state
            .compare_exchange(LOCKED, 0, Ordering::Release, Ordering::Relaxed)
            .is_ok()
        {
            // A waiter that asked us (and then left) did so before `holder`
            // was cleared; nobody can ask us now, so this clear is final and
            // the next acquisition starts without a stale request.
            if ts.eval_breaker().load(Ordering::Relaxed) & DROP_REQUEST != 0 {
                ts.eval_breaker().clear(DROP_REQUEST, Ordering::Relaxed);
            }
            return Released::Freed;
        }
        self.release_slow(ts, how)
    }

    #[cold]
    fn release_slow(&self, ts: &ThreadState, how: How) -> Released {
        loop {
            let choice = self.find_heir();
            if let Some(released) = self.wake_heir(ts, choice, how) {
                return released;
            }
            // The heir left (timed out, interrupted), someone queued
            // between the two looks, or an older waiter came back into the
            // queue after an interval: look again.
        }
    }

    /// The waiter that should get the Gil next: under `Interactive` one
    /// back from a voluntary release (`PRIORITY`) first, unless
    /// `starvation_bound` such handoffs in a row have passed over a waiter
    /// without the flag (a preempted thread): then that one, so that it
    /// cannot starve. Within each rank, the one that started waiting first
    /// (lowest ticket). A waiter keeps its ticket when it re-parks after an
    /// interval, so this is arrival order although re-parking moves it to
    /// the tail of the queue.
    fn find_heir(&self) -> Choice {
        // The lowest ticket with and without the PRIORITY flag.
        let first: Cell<[Option<(u64, ParkToken)>; 2]> = Cell::new([None; 2]);
        let rejoined = Cell::new(0);
        let filter = |token: ParkToken| {
            // SAFETY:
            // - every token on the Gil's key is a parked waiter's
            //   `ThreadState` address with flags in the low bits;
            // - a parked waiter's state is alive while it is parked, and it
            //   cannot leave the queue while we hold the queue lock.
            let waiter = unsafe { &*((token.0 & !TOKEN_LOW) as *const ThreadState) };
            let ticket = waiter.ticket.load(Ordering::Relaxed);
            let rank = usize::from(token.0 & PRIORITY == 0);
            let mut best = first.get();
            if best[rank].is_none_or(|(t, _)| ticket < t) {
                best[rank] = Some((ticket, token));
                first.set(best);
            }
            FilterOp::Skip
        };
        let callback = |_| {
            rejoined.set(self.rejoined.load(Ordering::Relaxed));
            park::DEFAULT_UNPARK_TOKEN
        };
        // SAFETY:
        // - our own key;
        // - the filter only reads waiters' states (alive, see above), the
        //   callback reads one of our counters: neither parks, unparks nor
        //   unwinds.
        unsafe { park::unpark_filter(self.key(), filter, callback) };
        let heir = match first.get() {
            [Some((_, token)), Some(_)]
                if self.overtakes.load(Ordering::Relaxed) < self.starvation_bound() =>
            {
                Some(Heir {
                    token,
                    overtakes: true,
                })
            }
            [_, Some((_, token))] | [Some((_, token)), None] => Some(Heir {
                token,
                overtakes: false,
            }),
            [None, None] => None,
        };
        Choice {
            heir,
            rejoined: rejoined.get(),
        }
    }

    /// Hands the Gil to the waiter `find_heir` chose (or, `How::Compete`
    /// and no drop request, frees it and wakes that waiter to take it), or
    /// with no heir releases it if nobody waits. Returns what it did, or
    /// `None` when the queue changed since `find_heir` (nothing changed
    /// then).
    fn wake_heir(&self, ts: &ThreadState, choice: Choice, how: How) -> Option<Released> {
        let forced = how == How::Forced;
        let overtakes = choice.heir.is_some_and(|h| h.overtakes);
        let heir = choice.heir.map(|h| h.token);
        let found = Cell::new(false);
        // An older waiter came back into the queue since the choice (from
        // `Transit`, with its old ticket): the choice may be wrong, so
        // change nothing and look again. (Seen in the loom model at
        // preemption bound 3: the heir chosen while the oldest waiter was
        // between two parks got the Gil at a forced switch.)
        let stale = || self.rejoined.load(Ordering::Relaxed) != choice.rejoined;
        // Read with the queue locked, where waiters enter and leave it: a
        // waiter between two parks cannot be passed over unseen.
        let in_transit = || forced && self.in_transit.load(Ordering::Relaxed) != 0;
        let outcome = Cell::new(None);
        let filter = |token: ParkToken| {
            if found.get() || in_transit() || stale() {
                return FilterOp::Stop;
            }
            if Some(token) == heir {
                found.set(true);
                return FilterOp::Unpark;
            }
            FilterOp::Skip
        };
        let callback = |result: UnparkResult| {
            if result.unparked_threads == 0 {
                if in_transit() {
                    // Keep the Gil: publish ourselves again (waiters read
                    // `holder` with the queue locked, as we are, so Relaxed).
                    self.holder.store(ts.address(), Ordering::Relaxed);
                    ts.set_status(ThreadStatus::Attached);
                    outcome.set(Some(Released::Kept));
                } else if heir.is_none() && !result.have_more_threads {
                    ts.eval_breaker().clear(DROP_REQUEST, Ordering::Relaxed);
                    // A swap, not a store: a waiter may be setting PARKED
                    // right now (outside the queue lock). Its `validate`
                    // then sees 0 and retries. (Loom, which does not order
                    // a plain store after a concurrent read-modify-write,
                    // let a waiter see the stale PARKED and sleep forever.)
                    self.state.swap(0, Ordering::Release);
                    outcome.set(Some(Released::Freed));
                }
                return park::DEFAULT_UNPARK_TOKEN;
            }
            // Under the queue lock with `holder` already cleared, no waiter
            // can ask us any more: this look at the drop request is final.
            if how == How::Compete && ts.eval_breaker().load(Ordering::Relaxed) & DROP_REQUEST == 0
            {
                // Free the word (a swap, as above) and let the heir take it,
                // unless the releaser is back first.
                let parked = if result.have_more_threads { PARKED } else { 0 };
                self.state.swap(parked, Ordering::Release);
                outcome.set(Some(Released::Competing));
                return park::DEFAULT_UNPARK_TOKEN;
            }
            let rank = heir.map_or(0, |t| t.0 & PRIORITY);
            if overtakes {
                self.overtakes.store(
                    self.overtakes.load(Ordering::Relaxed) + 1,
                    Ordering::Relaxed,
                );
            } else if rank == 0 {
                // A waiter without priority got its turn: the count restarts.
                self.overtakes.store(0, Ordering::Relaxed);
            }
            let heir = heir.map_or(0, |t| t.0 & !TOKEN_LOW);
            // SAFETY:
            // - the heir's token is its `ThreadState` address (flags masked);
            // - it was parked until this moment and is not woken before the
            //   callback returns, so its state is alive.
            let heir_state = unsafe { &*(heir as *const ThreadState) };
            heir_state
                .eval_breaker()
                .clear(DROP_REQUEST, Ordering::Relaxed);
            ts.eval_breaker().clear(DROP_REQUEST, Ordering::Relaxed);
            self.count_switch_to(heir_state);
            // Relaxed: waiters read `holder` (and then the switch number)
            // in `validate`, with the queue locked, as it is here.
            self.holder.store(heir, Ordering::Relaxed);
            if forced {
                bump(&self.counters.forced_switches);
            }
            let parked = if result.have_more_threads { PARKED } else { 0 };
            // A swap for the same reason as above; Relaxed: the heir learns
            // of the handoff through the park queue, and a locked word is
            // nobody else's to take.
            self.state.swap(LOCKED | parked, Ordering::Relaxed);
            outcome.set(Some(Released::HandedOff));
            TOKEN_HANDOFF
        };
        // SAFETY:
        // - our own key;
        // - the callbacks touch the Gil and the states of the releaser and
        //   the heir (both alive), run no user code, and neither park nor
        //   unwind.
        unsafe { park::unpark_filter(self.key(), filter, callback) };
        outcome.get()
    }

    /// Wakes the waiter `find_heir` picks to compete for the Gil, for a
    /// waiter that was woken to do so and leaves (interrupted) instead.
    #[cold]
    pub(super) fn wake_competitor(&self) {
        let Some(heir) = self.find_heir().heir else {
            return;
        };
        let filter = |token: ParkToken| {
            if token == heir.token {
                FilterOp::Unpark
            } else {
                FilterOp::Skip
            }
        };
        // SAFETY:
        // - our own key;
        // - waking a waiter with the default token makes it look at the
        //   word again, which every Gil wait handles (if the heir left
        //   meanwhile, it looks by itself);
        // - the callbacks do nothing that parks or unwinds.
        unsafe { park::unpark_filter(self.key(), filter, |_| park::DEFAULT_UNPARK_TOKEN) };
    }
}
