//! Letting go of the Gil, and choosing whom it goes to.

use super::breaker::DROP_REQUEST;
use super::fair_share::{self, Candidate, Loan};
use super::hooks::{self, GilEventKind};
use super::stats::count_one;
use super::thread_state::{ThreadState, ThreadStatus};
use super::{Gil, HOOKED, LOCKED, PARKED, PRIORITY, SwitchPolicy};
use crate::park::{self, FilterOp, Instant, ParkToken, UnparkResult, UnparkToken};
use crate::sync::Ordering;
use crate::wait::TOKEN_LOW;
use core::cell::Cell;

/// The Gil is yours: the releaser left `LOCKED` set and made you the holder.
pub(super) const TOKEN_HANDOFF: UnparkToken = UnparkToken(1);

/// Not yours yet: a releaser woke you ahead of your turn, into a slot
/// (`in_place`), to spin for the handoff that is likely to come next
/// (`Gil::wake_ahead`).
pub(super) const TOKEN_AHEAD: UnparkToken = UnparkToken(2);

/// How a holder lets go of the Gil.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum How {
    /// At a drop request (a forced switch): hand to the heir; the releaser
    /// then waits for its turn again. If a waiter is between two parks (it
    /// would lose its turn), keep the Gil until the next checkpoint
    /// instead.
    Forced,
    /// `yield_now`: hand to the heir; the releaser waits for its turn again.
    Yield,
    /// The releaser steps away (`detach`, a wait, its last guard dropped):
    /// hand to the heir.
    Handoff,
}

impl How {
    /// Whether the releaser waits for the Gil again right after.
    fn rewaits(self) -> bool {
        self != How::Handoff
    }
}

/// What a release did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Released {
    /// Nobody waited: the Gil is free.
    Freed,
    /// Handed, still locked, to the heir. `lent`: under `Interactive`, a
    /// forced release to a thread back from a voluntary release, which
    /// gives the Gil back at its own next release unless another waiter is
    /// owed it more (see `fair_share`): the releaser should spin for it.
    HandedOff { lent: bool },
    /// A forced release found a waiter between two parks and kept the Gil:
    /// the caller still holds it.
    Kept,
}

/// The waiter `find_heir` chose.
#[derive(Clone, Copy)]
struct Heir {
    /// Its park token (`ThreadState` address and flags).
    token: usize,
    /// It waits in place (`in_place`) instead of being parked.
    in_place: bool,
    /// `Interactive`: the lowest virtual runtime among the waiters it was
    /// chosen from (`u64::MAX` under `Fifo`).
    lowest: u64,
}

impl Gil {
    /// Releases the Gil held by `ts` (see `How`), telling the event hook
    /// first. Runs no park callback of its own caller: never call it from
    /// one (the hook is user code).
    #[inline]
    pub(super) fn release(&self, ts: &ThreadState, how: How) -> Released {
        hooks::fire(
            self,
            ts,
            GilEventKind::Suspended {
                forced: how == How::Forced,
            },
        );
        let released = self.release_quietly(ts, how);
        self.after_release(ts, released);
        released
    }

    /// `release` for the drop of a thread's last guard, once the thread's
    /// word says `Detached`: the fast compare-and-swap fails while a hook is
    /// registered (`HOOKED`), and then the hook is told first.
    #[inline]
    pub(super) fn release_last_guard(&self, ts: &ThreadState) {
        let me = ts.address();
        match self
            .state
            .compare_exchange(me | LOCKED, me, Ordering::AcqRel, Ordering::Relaxed)
        {
            Ok(_) => self.freed(ts),
            Err(_) => self.release_last_guard_slow(ts),
        }
    }

    #[cold]
    fn release_last_guard_slow(&self, ts: &ThreadState) {
        if hooks::may_fire(self) {
            // The hook hears `Suspended` from a thread that is still
            // attached, as from every other release: the word said
            // `Detached` only for the compare-and-swap that failed.
            ts.set_status(ThreadStatus::Attached);
            self.release(ts, How::Handoff);
        } else {
            let released = self.let_go(ts, How::Handoff);
            self.after_release(ts, released);
        }
    }

    #[inline]
    fn after_release(&self, ts: &ThreadState, released: Released) {
        if released == Released::Kept {
            // Told `Suspended`, it holds the Gil again: to the hook and the
            // counters, a release and a fresh acquisition (every `Resumed`
            // is an acquisition).
            ts.word.count_acquisition();
            hooks::fire(self, ts, GilEventKind::Resumed);
        }
    }

    /// [`release`](Self::release) without the event hook: what a
    /// `before_sleep` callback may run (it only unparks). The caller has
    /// told the hook already.
    #[inline]
    pub(super) fn release_quietly(&self, ts: &ThreadState, how: How) -> Released {
        ts.set_status(ThreadStatus::Detached);
        self.let_go(ts, how)
    }

    /// `release_quietly` once the thread's status says `Detached`.
    #[inline]
    fn let_go(&self, ts: &ThreadState, how: How) -> Released {
        let me = ts.address();
        // The word keeps our address: the next acquire by this thread is
        // then the fast one, with no switch to count. If waiters make the
        // compare-and-swap fail, the slow path names the heir.
        //
        // AcqRel: a waiter that asked us to drop (a write to our breaker,
        // under the queue lock, which this path does not take) and then
        // timed out cleared PARKED with Release; acquiring it orders that
        // write before anything we do next, such as freeing our state when
        // the thread ends.
        let mut state = me | LOCKED;
        loop {
            match self.state.compare_exchange(
                state,
                state & !LOCKED,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    self.freed(ts);
                    return Released::Freed;
                }
                // Only a hook registered (or unregistered) meanwhile: again,
                // with the word's bit kept.
                Err(actual) if actual & !HOOKED == me | LOCKED => state = actual,
                Err(_) => return self.release_slow(ts, how),
            }
        }
    }

    /// After a release that freed the word with nobody waiting.
    #[inline]
    fn freed(&self, ts: &ThreadState) {
        // A waiter that asked us (and then left) did so while the word
        // named us as the holder, with `PARKED` set; nobody can ask us now,
        // so this clear is final and the next acquisition starts without a
        // stale request.
        if ts.eval_breaker().load(Ordering::Relaxed) & DROP_REQUEST != 0 {
            ts.eval_breaker().clear(DROP_REQUEST, Ordering::Relaxed);
        }
    }

    #[cold]
    fn release_slow(&self, ts: &ThreadState, how: How) -> Released {
        let interactive = self.policy() == SwitchPolicy::Interactive;
        // The clock, for the fair-share accounting only (a slow path).
        let now = interactive.then(Instant::now);
        loop {
            let ahead = Cell::new(None);
            let released = match self.find_heir(ts, how, now, &ahead) {
                Ok(released) => released,
                Err((heir, leaves)) => match self.wake_heir(ts, heir, leaves, how, now) {
                    Some(released) => released,
                    // The heir left (timed out, interrupted, left its slot)
                    // or someone queued between the two looks: look again.
                    None => continue,
                },
            };
            if let (Released::HandedOff { .. }, Some(next)) = (released, ahead.get()) {
                self.wake_ahead(next);
            }
            return released;
        }
    }

    /// The waiter that should get the Gil next, among the parked ones and
    /// those waiting in place:
    /// - `Fifo`: the one that started waiting first (lowest ticket; a
    ///   waiter keeps its ticket when it re-parks after an interval, so this
    ///   is arrival order although re-parking moves it to the tail of the
    ///   queue), except that a waiter back from a wait that an interrupt
    ///   ended (`PRIORITY`) comes first;
    /// - `Interactive`: the lowest virtual runtime, with the lender's claim
    ///   and then an awake waiter's within a granularity of it (rules 2 and
    ///   3 of `fair_share`).
    ///
    /// Under `Interactive` (`now` is `Some`) this first pass also finishes
    /// the release when it can without waking anyone: it hands the Gil to
    /// the heir if the heir waits in place, and frees it if nobody waits
    /// (`Ok`).
    /// Otherwise (`Err`) `wake_heir` hands over to the heir it returns,
    /// given the count of departures from transit read with it.
    ///
    /// Under `Interactive` it also names in `ahead` the parked waiter to
    /// wake ahead of its turn once the Gil is handed over (see
    /// `wake_ahead`), if any.
    fn find_heir(
        &self,
        ts: &ThreadState,
        how: How,
        now: Option<Instant>,
        ahead: &Cell<Option<usize>>,
    ) -> Result<Released, (Option<Heir>, usize)> {
        let interactive = now.is_some();
        let granularity = fair_share::granularity(self.switch_interval());
        // The waiter that comes first, and the lender if it waits, each
        // with whether it waits in place.
        let first: Cell<Option<(Candidate, bool)>> = Cell::new(None);
        let lender: Cell<Option<(Candidate, bool)>> = Cell::new(None);
        // The first of those waiting in place.
        let awake: Cell<Option<Candidate>> = Cell::new(None);
        // The first two parked waiters back from a voluntary release
        // (`PRIORITY`): one of them is the waiter to wake ahead.
        let returning: Cell<[Option<Candidate>; 2]> = Cell::new([None; 2]);
        let lowest = Cell::new(u64::MAX);
        // Read with the queue locked, at the first waiter considered.
        let lender_addr = Cell::new(None);
        let consider = |token: usize, in_place: bool| {
            // SAFETY:
            // - every token on the Gil's key, and in a slot, is a waiter's
            //   `ThreadState` address with flags in the low bits;
            // - a waiter's state is alive while it waits, and it cannot stop
            //   waiting (leave the queue or its slot) while we hold the
            //   queue lock.
            let waiter = unsafe { &*((token & !TOKEN_LOW) as *const ThreadState) };
            let ticket = waiter.ticket.load(Ordering::Relaxed);
            let candidate = if interactive {
                let vruntime = waiter.vruntime.load(Ordering::Relaxed);
                lowest.set(lowest.get().min(vruntime));
                Candidate {
                    token,
                    vruntime,
                    ticket,
                }
            } else {
                // Interrupted waiters first, then arrival order.
                Candidate {
                    token,
                    vruntime: u64::from(token & PRIORITY == 0),
                    ticket,
                }
            };
            if first.get().is_none_or(|(f, _)| candidate.before(&f)) {
                first.set(Some((candidate, in_place)));
            }
            if in_place && awake.get().is_none_or(|a| candidate.before(&a)) {
                awake.set(Some(candidate));
            }
            if interactive && fair_share::may_wake_ahead(token, in_place) {
                returning.set(fair_share::first_two(returning.get(), candidate));
            }
            let addr = lender_addr
                .get()
                .unwrap_or_else(|| self.lender.load(Ordering::Relaxed));
            lender_addr.set(Some(addr));
            // (Fifo never reads `lender`: the choice below is Interactive's.)
            if fair_share::is_lender(addr, token) {
                lender.set(Some((candidate, in_place)));
            }
        };
        let filter = |token: ParkToken| {
            consider(token.0, false);
            FilterOp::Skip
        };
        let heir: Cell<Option<Heir>> = Cell::new(None);
        let done: Cell<Option<Released>> = Cell::new(None);
        let leaves = Cell::new(0);
        let callback = |result: UnparkResult| {
            leaves.set(self.transit_leaves.load(Ordering::Relaxed));
            self.in_place.each(|token| consider(token, true));
            let Some((first, first_in_place)) = first.get() else {
                let in_transit = how == How::Forced && self.in_transit.load(Ordering::Relaxed) != 0;
                if interactive && !result.have_more_threads && !in_transit {
                    self.free(ts);
                    done.set(Some(Released::Freed));
                }
                return park::DEFAULT_UNPARK_TOKEN;
            };
            let (chosen, in_place) = if interactive {
                let lender = lender.get();
                let chosen =
                    fair_share::choose(first, awake.get(), lender.map(|(l, _)| l), granularity);
                match lender {
                    Some((l, l_in_place)) if chosen == l => (l, l_in_place),
                    _ if chosen == first => (first, first_in_place),
                    // The first awake waiter.
                    _ => (chosen, true),
                }
            } else {
                (first, first_in_place)
            };
            let chosen = Heir {
                token: chosen.token,
                in_place,
                lowest: lowest.get(),
            };
            if interactive {
                ahead.set(self.to_wake_ahead(chosen.token, returning.get()));
            }
            let in_transit = how == How::Forced && self.in_transit.load(Ordering::Relaxed) != 0;
            if interactive && in_place && !in_transit && self.in_place.take(chosen.token) {
                // Made the holder where it waits: no wake-up, no second pass.
                let more = self.others_wait(result.have_more_threads);
                let lent = self.hand_to(ts, chosen, how, more, now);
                done.set(Some(Released::HandedOff { lent }));
            } else {
                heir.set(Some(chosen));
            }
            park::DEFAULT_UNPARK_TOKEN
        };
        // SAFETY:
        // - our own key;
        // - the filter reads waiters' states (alive, see above); the
        //   callback also touches the Gil (its atomics and its queue-locked
        //   cell) and the states of the releaser and the heir (alive), runs
        //   no user code, and neither parks nor unwinds; nobody is unparked.
        unsafe { park::unpark_filter(self.key(), filter, callback) };
        match done.get() {
            Some(released) => Ok(released),
            None => Err((heir.get(), leaves.get())),
        }
    }

    /// In `find_heir`'s callback, once it chose `heir`: the parked waiter
    /// to wake ahead of its turn, given the first two parked waiters back
    /// from a voluntary release. Only while the heir is one of those too
    /// (it holds the Gil for microseconds, so a parked successor's wake-up
    /// would leave the Gil idle), and while no other such waiter waits in
    /// place already (one spinner is enough; more take the cores the
    /// holder and the threads away from the Gil need).
    fn to_wake_ahead(&self, heir: usize, returning: [Option<Candidate>; 2]) -> Option<usize> {
        if heir & PRIORITY == 0 {
            return None;
        }
        let mut awake_already = false;
        self.in_place
            .each(|token| awake_already |= token & PRIORITY != 0 && token != heir);
        if awake_already {
            return None;
        }
        returning
            .into_iter()
            .flatten()
            .map(|c| c.token)
            .find(|&token| token != heir)
    }

    /// After a handoff to a thread back from a voluntary release: wakes
    /// `next`, the parked waiter likely to be the heir at the new holder's
    /// release (see `to_wake_ahead`), into a free slot, to spin there
    /// (`TOKEN_AHEAD`). Its wake-up then overlaps the new holder's
    /// microseconds with the Gil instead of following them with the Gil
    /// idle. Nothing happens if it no longer parks (it was handed the Gil
    /// meanwhile, or left) or no slot is free.
    ///
    /// Only waiters that cannot leave take a slot (`in_place`): `next`
    /// carries `PRIORITY`, which only untimed, uninterruptible waits carry
    /// under `Interactive`.
    fn wake_ahead(&self, next: usize) {
        let filter = |token: ParkToken| {
            if token.0 != next {
                FilterOp::Skip
            } else if self.in_place.has_room() {
                FilterOp::Unpark
            } else {
                FilterOp::Stop
            }
        };
        let callback = |result: UnparkResult| {
            if result.unparked_threads == 0 {
                return park::DEFAULT_UNPARK_TOKEN;
            }
            // Out of the queue and into a slot in one step (the queue is
            // locked), so a releaser sees it waiting throughout; the
            // waiters bit is set, as it was while it parked. The slot is
            // free: the filter saw it so, with the queue locked since.
            self.in_place.enter(next);
            count_one(&self.counters.woken_ahead);
            TOKEN_AHEAD
        };
        // SAFETY:
        // - our own key;
        // - the callbacks touch only the Gil's slots and counters, run no
        //   user code, and neither park nor unwind.
        unsafe { park::unpark_filter(self.key(), filter, callback) };
    }

    /// Frees the Gil in an unpark callback (the queue locked): nobody waits,
    /// parked or in place.
    fn free(&self, ts: &ThreadState) {
        ts.eval_breaker().clear(DROP_REQUEST, Ordering::Relaxed);
        // SAFETY: the queue is locked (an unpark callback). Nobody waits:
        // nobody is owed a return or timed.
        unsafe { self.hold_start.set(None) };
        self.lender.store(0, Ordering::Relaxed);
        // A read-modify-write, not a store: a waiter may be setting PARKED
        // right now (outside the queue lock). Its `validate` then sees the
        // word free and retries. (Loom, which does not order a plain store
        // after a concurrent read-modify-write, let a waiter see the stale
        // PARKED and sleep forever.) The word keeps our address, as the fast
        // release's does, and `HOOKED`.
        self.state.fetch_and(!(LOCKED | PARKED), Ordering::Release);
    }

    /// Hands the Gil to `heir` (woken with `TOKEN_HANDOFF` if parked, made
    /// the holder where it is if it waits in place), or with `None` releases
    /// it if nobody waits. Returns what it did, or `None` when the waiters changed
    /// since `find_heir` (nothing changed then).
    fn wake_heir(
        &self,
        ts: &ThreadState,
        heir: Option<Heir>,
        leaves: usize,
        how: How,
        now: Option<Instant>,
    ) -> Option<Released> {
        // A forced switch does not pass over a waiter between two parks: it
        // keeps the Gil for a checkpoint instead (the waiter is back in a
        // moment, and the request stays set).
        let keep_for_transit = how == How::Forced;
        let found = Cell::new(false);
        // Read with the queue locked, where waiters enter and leave it: a
        // waiter between two parks cannot be passed over unseen.
        let in_transit = || keep_for_transit && self.in_transit.load(Ordering::Relaxed) != 0;
        // A waiter left transit since `find_heir` looked (it re-parked, or
        // took a slot): it was no candidate there and may come first, so a
        // forced switch looks again (each look again needs another such
        // departure, so this ends).
        let rejoined = || keep_for_transit && self.transit_leaves.load(Ordering::Relaxed) != leaves;
        let outcome = Cell::new(None);
        let filter = |token: ParkToken| {
            if found.get() || in_transit() || rejoined() {
                return FilterOp::Stop;
            }
            match heir {
                Some(h) if h.in_place => FilterOp::Stop,
                Some(h) if token.0 == h.token => {
                    found.set(true);
                    FilterOp::Unpark
                }
                _ => FilterOp::Skip,
            }
        };
        let callback = |result: UnparkResult| {
            if result.unparked_threads == 0 {
                if in_transit() {
                    // Keep the Gil: the word still names us.
                    ts.set_status(ThreadStatus::Attached);
                    outcome.set(Some(Released::Kept));
                    return park::DEFAULT_UNPARK_TOKEN;
                }
                if rejoined() {
                    // Look again (nothing changed).
                    return park::DEFAULT_UNPARK_TOKEN;
                }
                match heir {
                    Some(h) if h.in_place && self.in_place.take(h.token) => {
                        // Made the holder where it waits: no wake-up.
                        let more = self.others_wait(result.have_more_threads);
                        let lent = self.hand_to(ts, h, how, more, now);
                        outcome.set(Some(Released::HandedOff { lent }));
                    }
                    None if !result.have_more_threads && !self.in_place.any() => {
                        self.free(ts);
                        outcome.set(Some(Released::Freed));
                    }
                    // The heir left its slot, or a waiter came: again.
                    _ => {}
                }
                return park::DEFAULT_UNPARK_TOKEN;
            }
            // The filter unparks only the heir.
            if let Some(h) = heir {
                let more = self.others_wait(result.have_more_threads);
                let lent = self.hand_to(ts, h, how, more, now);
                if now.is_some() {
                    // Interactive: its waiters may spin for its release
                    // (see `Gil::waking`); it clears the mark once awake.
                    self.waking.store(h.token & !TOKEN_LOW, Ordering::Relaxed);
                }
                outcome.set(Some(Released::HandedOff { lent }));
            }
            TOKEN_HANDOFF
        };
        // SAFETY:
        // - our own key;
        // - the callbacks touch the Gil (its atomics and its queue-locked
        //   cell) and the states of the releaser and the heir (both alive),
        //   run no user code, and neither park nor unwind.
        unsafe { park::unpark_filter(self.key(), filter, callback) };
        outcome.get()
    }

    /// In an unpark callback, once the heir is chosen (and its slot emptied,
    /// if it waited in one): whether anyone else still waits, parked (the
    /// queue `has_more` threads) or in a slot. If so, the word must keep the
    /// waiters bit for the heir's release to hand the Gil on: without it,
    /// that release frees the word, and whoever is parked waits out its
    /// interval.
    fn others_wait(&self, has_more: bool) -> bool {
        has_more || self.in_place.any()
    }

    /// Makes `heir` the holder, in an unpark callback (the queue locked,
    /// the heir not yet woken or still in its slot). `more`: other threads
    /// still wait. `now` is `Some` under `Interactive`, whose accounting
    /// this does too. Returns whether the Gil was lent (see `Released`).
    fn hand_to(
        &self,
        ts: &ThreadState,
        heir: Heir,
        how: How,
        more: bool,
        now: Option<Instant>,
    ) -> bool {
        let heir_addr = heir.token & !TOKEN_LOW;
        // SAFETY:
        // - the heir's token is its `ThreadState` address (flags masked);
        // - it waited until this moment and cannot stop before the callback
        //   returns, so its state is alive.
        let heir_state = unsafe { &*(heir_addr as *const ThreadState) };
        let mut lent = false;
        // Whether the word keeps the waiters bit: someone else waits, or
        // (Interactive) the releaser is about to wait again, so that the
        // heir's release takes the slow path, which times and charges it.
        let waiters = more || (now.is_some() && how.rewaits());
        let lender = self.lender.load(Ordering::Relaxed);
        let start = match now {
            Some(now) => {
                // SAFETY: we run in an unpark callback on our key.
                unsafe { self.charge(ts, now, heir.lowest, how.rewaits()) };
                let forced = how == How::Forced;
                match fair_share::loan_after_handoff(heir.token, lender, ts.address(), forced) {
                    Loan::Ends => self.lender.store(0, Ordering::Relaxed),
                    Loan::Begins => {
                        self.lender.store(ts.address(), Ordering::Relaxed);
                        lent = true;
                        // The lender waits in place from now on (if a slot
                        // is free): it spins for the return as soon as this
                        // release is over, with no queue pass of its own
                        // (its wait takes a fresh ticket then).
                        self.in_place.enter(ts.address());
                    }
                    Loan::Stays => {}
                }
                waiters.then_some(now)
            }
            None => {
                // Fifo lends nothing (and a loan made under Interactive ends
                // with the policy change, so `lender` never outlives its
                // thread).
                if lender != 0 {
                    self.lender.store(0, Ordering::Relaxed);
                }
                None
            }
        };
        // SAFETY: as above. `None` whenever the waiters bit goes.
        unsafe { self.hold_start.set(start) };
        // No drop request may stay on a thread that takes the Gil (it would
        // switch at once) or on one that lets go. A look first: the heir's
        // is rarely set.
        for breaker in [heir_state.eval_breaker(), ts.eval_breaker()] {
            if breaker.load(Ordering::Relaxed) & DROP_REQUEST != 0 {
                breaker.clear(DROP_REQUEST, Ordering::Relaxed);
            }
        }
        // Before the word names the heir (Release, next): a waiter that
        // reads the heir there (Acquire) sees the count.
        self.count_switch();
        if how == How::Forced {
            count_one(&self.counters.forced_switches);
        }
        let parked = if waiters { PARKED } else { 0 };
        // A read-modify-write for the same reason as in `free`, which keeps
        // `HOOKED`. Release: a heir waiting in place learns of the handoff
        // here (`look_at_word`, Acquire), and a waiter's `validate` reads the
        // switch count after it.
        let heir_word = heir_addr | LOCKED | parked;
        let _ = self
            .state
            .fetch_update(Ordering::Release, Ordering::Relaxed, |state| {
                Some(heir_word | (state & HOOKED))
            });
        lent
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// A parked waiter back from a voluntary release (the token stands for
    /// its state's address; no state is read).
    fn returning(token: usize) -> Candidate {
        Candidate {
            token,
            vruntime: 0,
            ticket: 0,
        }
    }

    /// A release moves `min_vruntime` up to the lowest vruntime among the
    /// waiters, counting the releaser's own only if it waits again (a
    /// forced switch, a yield), not when it steps away (`detach`, a wait):
    /// a thread that left cannot hold the floor of fresh arrivals down.
    ///
    /// Mutation: `How::rewaits` always `true` → a thread that stepped away
    /// held `min_vruntime` at its own, lower vruntime. (With std: a thread
    /// state needs a thread-id source installed without it.)
    #[cfg(feature = "std")]
    #[test]
    fn min_vruntime_counts_the_releaser_only_if_it_waits_again() {
        let ts = ThreadState::new(0);
        let after = |how: How| {
            let gil = Gil::new();
            let floor = gil.min_vruntime.load(Ordering::Relaxed);
            ts.vruntime.store(floor + 1_000, Ordering::Relaxed);
            // SAFETY: no other thread uses this Gil, so nothing else
            // touches its queue-locked cell (no hold began: nothing is
            // charged, only `min_vruntime` moves).
            unsafe { gil.charge(&ts, Instant::now(), floor + 5_000, how.rewaits()) };
            gil.min_vruntime.load(Ordering::Relaxed) - floor
        };
        assert_eq!(after(How::Handoff), 5_000);
        assert_eq!(after(How::Forced), 1_000);
        assert_eq!(after(How::Yield), 1_000);
    }

    /// Others wait after a handoff if the queue still holds threads or a
    /// slot is taken, either one.
    ///
    /// Mutation (4 December): in `wake_heir`'s handoff to a heir in a slot,
    /// this test inline with `&&` for `||` survived every std test and the
    /// whole Interactive loom suite: the word lost the waiters bit while
    /// threads were parked (they then waited out their interval, which the
    /// models' timer allows). Here `&&` fails the first assertion, and
    /// either operand alone the first or the second.
    #[test]
    fn others_wait_while_a_thread_is_parked_or_in_a_slot() {
        let gil = Gil::new();
        assert!(gil.others_wait(true), "parked threads, no slot taken");
        assert!(gil.in_place.enter(0x1000));
        assert!(gil.others_wait(false), "a slot taken, nobody parked");
        assert!(gil.others_wait(true));
        assert!(gil.in_place.take(0x1000));
        assert!(!gil.others_wait(false), "nobody at all");
    }

    /// Who is woken ahead of their turn: of the first two parked threads
    /// back from a voluntary release, the one that is not the heir, and
    /// only when the heir is such a thread too and no other such thread
    /// waits in a slot already.
    ///
    /// Mutations: the check of the slots dropped (`awake_already` never
    /// set) → `Some(0x2001)` where `None` was due; the check of the heir's
    /// `PRIORITY` dropped → `Some(0x1001)` for a CPU-bound heir.
    #[test]
    fn the_next_thread_back_from_a_voluntary_release_is_woken_ahead() {
        let gil = Gil::new();
        let (heir, next) = (0x1000 | PRIORITY, 0x2000 | PRIORITY);
        let pair = [Some(returning(heir)), Some(returning(next))];
        assert_eq!(gil.to_wake_ahead(heir, pair), Some(next));
        assert_eq!(gil.to_wake_ahead(next, pair), Some(heir));
        // A CPU-bound heir: its successor's wake-up can wait.
        assert_eq!(gil.to_wake_ahead(0x4000, pair), None);
        // Nobody but the heir.
        assert_eq!(gil.to_wake_ahead(heir, [Some(returning(heir)), None]), None);
        // Another such thread already waits in a slot: one spinner is enough.
        assert!(gil.in_place.enter(0x3000 | PRIORITY));
        assert_eq!(gil.to_wake_ahead(heir, pair), None);
        // A lender in a slot is no such thread.
        gil.in_place.leave(0x3000);
        assert!(gil.in_place.enter(0x5000));
        assert_eq!(gil.to_wake_ahead(heir, pair), Some(next));
    }
}
