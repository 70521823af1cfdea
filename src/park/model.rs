//! The loom backend: a model parking lot.
//!
//! `parking_lot_core::park` would block loom's single OS thread, so here the
//! queue lives behind a `loom::sync::Mutex` and threads sleep in
//! `loom::thread::park`. Loom has no clock: a timed park ends only when the
//! model timer ([`fire_timeouts`]) ticks, and loom explores that tick at every
//! point where the timer thread can run, which is "a timeout can fire at any
//! moment".

use super::Instant;
use super::queue::{self, FilterOp, ParkResult, ParkToken, Queue, UnparkResult, UnparkToken};
use alloc::vec::Vec;
use core::cell::Cell;
use loom::sync::Mutex;
use loom::thread::Thread;

// Ticks of the model clock. Only their order matters, so they are not reset
// between executions. A thread-local of the OS thread is per model: loom runs
// all model threads of one `loom::model` on the test's OS thread, and tests
// running in parallel must not advance each other's clocks. The value changes
// only under the lot's loom mutex, so it is a function of the schedule loom
// controls.
std::thread_local! {
    static TICKS: Cell<i64> = const { Cell::new(0) };
}

pub(crate) fn ticks() -> i64 {
    TICKS.with(Cell::get)
}

struct Slot {
    id: u64,
    timed: bool,
    thread: Thread,
}

struct Lot {
    queue: Queue<Slot>,
    /// Tokens handed to threads that were unparked but have not woken yet.
    handed: Vec<(u64, UnparkToken)>,
    next_id: u64,
}

loom::lazy_static! {
    static ref LOT: Mutex<Lot> = Mutex::new(Lot {
        queue: Queue::new(),
        handed: Vec::new(),
        next_id: 0,
    });
}

/// Parks the calling model thread (see the module docs of `park`).
///
/// # Safety
/// Nothing beyond the safe contract here; `unsafe` for parity with the std
/// backend.
pub(crate) unsafe fn park(
    key: usize,
    validate: impl FnOnce() -> bool,
    before_sleep: impl FnOnce(),
    timed_out: impl FnOnce(usize, bool),
    token: ParkToken,
    deadline: Option<Instant>,
) -> ParkResult {
    let id = {
        let mut lot = LOT.lock().unwrap();
        if !validate() {
            return ParkResult::Invalid;
        }
        let id = lot.next_id;
        lot.next_id += 1;
        let slot = Slot {
            id,
            timed: deadline.is_some(),
            thread: loom::thread::current(),
        };
        lot.queue.push(key, token, slot);
        id
    };
    before_sleep();
    let mut timed_out = Some(timed_out);
    loop {
        {
            let mut lot = LOT.lock().unwrap();
            if let Some(index) = lot.handed.iter().position(|(who, _)| *who == id) {
                let (_, token) = lot.handed.swap_remove(index);
                return ParkResult::Unparked(token);
            }
            if deadline.is_some_and(|d| d.has_passed())
                && let Some((key, was_last)) = lot.queue.remove(|s| s.id == id)
            {
                if let Some(timed_out) = timed_out.take() {
                    timed_out(key, was_last);
                }
                return ParkResult::TimedOut;
            }
        }
        loom::thread::park();
    }
}

/// Unparks the threads on `key` that `filter` selects.
///
/// # Safety
/// As [`park`].
pub(crate) unsafe fn unpark_filter(
    key: usize,
    filter: impl FnMut(ParkToken) -> FilterOp,
    callback: impl FnOnce(UnparkResult) -> UnparkToken,
) -> UnparkResult {
    let mut lot = LOT.lock().unwrap();
    let (result, token, woken) = lot.queue.unpark_filter(key, filter, callback);
    for slot in woken {
        lot.handed.push((slot.id, token));
        slot.thread.unpark();
    }
    result
}

/// Unparks the oldest thread on `key`.
///
/// # Safety
/// As [`park`].
pub(crate) unsafe fn unpark_one(
    key: usize,
    callback: impl FnOnce(UnparkResult) -> UnparkToken,
) -> UnparkResult {
    // SAFETY: same contract.
    unsafe { unpark_filter(key, queue::first_only(), callback) }
}

/// Advances the model clock by one tick: every deadline taken so far has
/// passed, and every thread in a timed park wakes to time out (unless an
/// unpark reaches it first). Returns how many timed waiters were woken.
pub(crate) fn fire_timeouts() -> usize {
    let lot = LOT.lock().unwrap();
    TICKS.with(|ticks| ticks.set(ticks.get() + 1));
    let mut woken = 0;
    for slot in lot.queue.slots().filter(|s| s.timed) {
        slot.thread.unpark();
        woken += 1;
    }
    woken
}

/// How many threads sit in the queue (any key), without waking anyone.
pub(crate) fn parked_threads() -> usize {
    LOT.lock().unwrap().queue.slots().count()
}
