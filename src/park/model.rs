//! The loom backend: a model parking lot, a model clock and loom's thread
//! identity.
//!
//! `parking_lot_core::park` would block loom's single OS thread, so here the
//! queue lives behind a `loom::sync::Mutex` and threads sleep in
//! `loom::thread::park`.
//!
//! # The model clock
//!
//! Loom has no clock. Model time is a count of nanoseconds that only the
//! model timer moves, and a deadline is "now + its duration" on it, so
//! deadlines compare as real ones do: of two waits that start together, the
//! shorter times out first. The timer moves the clock in steps, each with
//! the lot locked, and wakes every timed park whose deadline the step
//! reached:
//! - [`fire_timeouts`]: to the earliest deadline still ahead among the
//!   threads in a timed park (nothing when there is none);
//! - [`advance`]: by a given duration;
//! - a [`Timer`] thread: up to N steps of `fire_timeouts`, each one waiting
//!   (asleep, not spinning) until some thread is in a timed park, so that a
//!   wait that starts after the previous step still times out.
//!
//! Each step is one critical section of the lot, so loom explores it at
//! every point where the timer's thread can run: "the timeout fired here".
//! The number of steps is what the model asks for, so the branching stays
//! bounded even where waits re-arm themselves (a Gil waiter parks for one
//! switch interval after another).
//!
//! The clock is a thread-local of the OS thread: loom runs all model
//! threads of one `loom::model` on the test's thread, and tests that run in
//! parallel must not move each other's clocks. It changes only under the
//! lot's loom mutex, so its value is a function of the schedule loom
//! controls. It is not reset between executions, and need not be: only
//! differences of times are ever compared, and timeouts too long for any
//! model (`FOREVER`) are untimed whatever the clock reads.
//!
//! # Nested parks
//!
//! A loom thread-local records which kind of park callback the model thread
//! is running; `park` and `unpark_*` check it and panic with the rule they
//! broke (see the contract in `park`).

use super::queue::{
    self, FilterOp, NESTED_IN_BEFORE_SLEEP, NESTED_IN_LOCKED_CALLBACK, ParkResult, ParkToken,
    Queue, RequeueOp, UnparkResult, UnparkToken,
};
use super::{Backend, Instant};
use crate::sync::{Ordering, UnmodeledAtomicU64};
use alloc::vec::Vec;
use core::cell::Cell;
use core::num::NonZeroU64;
use core::time::Duration;
use loom::sync::{Mutex, MutexGuard};
use loom::thread::Thread;

/// The model parking lot, clock and thread ids.
pub(crate) struct ModelLot;

/// Nanoseconds of model time.
type Nanos = u128;

/// Timeouts of 2^64 ns (584 years) or more never expire in a model, as in
/// practice they never do. With the clock in 128 bits no deadline short of
/// that overflows, whatever earlier executions left on the clock.
const FOREVER: Nanos = 1 << 64;

std::thread_local! {
    static NOW: Cell<Nanos> = const { Cell::new(0) };
    static SPIN_LIMIT: Cell<u32> = const { Cell::new(0) };
}

fn now() -> Nanos {
    NOW.with(Cell::get)
}

/// Where std instants that carry model time start: 2^40 s (about 35 000
/// years) after the process first asked, so that no instant of the real
/// clock reaches it.
#[cfg(feature = "std")]
fn std_epoch() -> std::time::Instant {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(|| std::time::Instant::now() + Duration::from_secs(1 << 40))
}

/// Thread ids handed out so far: they must never repeat, even across model
/// executions, and carry no synchronisation.
static NEXT_THREAD_ID: UnmodeledAtomicU64 = UnmodeledAtomicU64::new(1);
/// Timer ids, likewise.
static NEXT_TIMER_ID: UnmodeledAtomicU64 = UnmodeledAtomicU64::new(1);

/// Which park callback the model thread is running.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Context {
    None,
    /// `validate`, `timed_out`, an unpark's filter or callback.
    QueueLocked,
    BeforeSleep,
}

// Per model thread: `std::thread_local!` would be shared by all model
// threads (they run on one OS thread).
loom::thread_local! {
    static THREAD_ID: NonZeroU64 = {
        let id = NEXT_THREAD_ID.fetch_add(1, Ordering::Relaxed);
        NonZeroU64::new(id).expect("thread ids exhausted")
    };
    static CONTEXT: Cell<Context> = Cell::new(Context::None);
}

/// Marks the model thread as running a callback of one kind until dropped.
struct InCallback(Context);

fn in_callback(context: Context) -> InCallback {
    InCallback(CONTEXT.with(|c| c.replace(context)))
}

impl Drop for InCallback {
    fn drop(&mut self) {
        CONTEXT.with(|c| c.set(self.0));
    }
}

fn check_may_park() {
    match CONTEXT.with(Cell::get) {
        Context::None => {}
        Context::QueueLocked => panic!("{NESTED_IN_LOCKED_CALLBACK}"),
        Context::BeforeSleep => panic!("{NESTED_IN_BEFORE_SLEEP}"),
    }
}

fn check_may_unpark() {
    if CONTEXT.with(Cell::get) == Context::QueueLocked {
        panic!("{NESTED_IN_LOCKED_CALLBACK}");
    }
}

struct Slot {
    id: u64,
    deadline: Option<Nanos>,
    thread: Thread,
}

/// A timer thread asleep until some thread enters a timed park.
struct IdleTimer {
    id: u64,
    thread: Thread,
}

struct Lot {
    queue: Queue<Slot>,
    /// Tokens handed to threads that were unparked but have not woken yet.
    handed: Vec<(u64, UnparkToken)>,
    next_slot: u64,
    idle_timers: Vec<IdleTimer>,
    /// Timers told to stop once nothing is left for them to fire.
    stopping: Vec<u64>,
}

loom::lazy_static! {
    static ref LOT: Mutex<Lot> = Mutex::new(Lot {
        queue: Queue::new(),
        handed: Vec::new(),
        next_slot: 0,
        idle_timers: Vec::new(),
        stopping: Vec::new(),
    });
}

fn lot() -> MutexGuard<'static, Lot> {
    LOT.lock().expect("a model thread panicked in the parking lot")
}

impl Lot {
    /// The earliest deadline still ahead among the queued threads.
    fn next_deadline(&self) -> Option<Nanos> {
        let now = now();
        self.queue
            .slots()
            .filter_map(|s| s.deadline)
            .filter(|&d| d > now)
            .min()
    }

    /// Moves the clock forward to `to` (never back) and wakes the queued
    /// threads whose deadlines it passed; returns how many.
    fn move_clock_to(&self, to: Nanos) -> usize {
        let from = now();
        if to <= from {
            return 0;
        }
        NOW.with(|now| now.set(to));
        let mut woken = 0;
        for slot in self.queue.slots() {
            if slot.deadline.is_some_and(|d| from < d && d <= to) {
                slot.thread.unpark();
                woken += 1;
            }
        }
        woken
    }
}

impl Backend for ModelLot {
    type Time = Nanos;

    unsafe fn park(
        key: usize,
        validate: impl FnOnce() -> bool,
        before_sleep: impl FnOnce(),
        timed_out: impl FnOnce(usize, bool),
        token: ParkToken,
        deadline: Option<Instant>,
    ) -> ParkResult {
        check_may_park();
        let deadline = deadline.map(Instant::time);
        let id = {
            let mut lot = lot();
            let valid = {
                let _in = in_callback(Context::QueueLocked);
                validate()
            };
            if !valid {
                return ParkResult::Invalid;
            }
            let id = lot.next_slot;
            lot.next_slot += 1;
            let slot = Slot {
                id,
                deadline,
                thread: loom::thread::current(),
            };
            lot.queue.push(key, token, slot);
            if deadline.is_some_and(|d| d > now()) {
                for timer in lot.idle_timers.drain(..) {
                    timer.thread.unpark();
                }
            }
            id
        };
        {
            let _in = in_callback(Context::BeforeSleep);
            before_sleep();
        }
        let mut timed_out = Some(timed_out);
        loop {
            {
                let mut lot = lot();
                if let Some(index) = lot.handed.iter().position(|(who, _)| *who == id) {
                    let (_, token) = lot.handed.swap_remove(index);
                    return ParkResult::Unparked(token);
                }
                if deadline.is_some_and(|d| d <= now())
                    && let Some((key, was_last)) = lot.queue.remove(|s| s.id == id)
                {
                    if let Some(timed_out) = timed_out.take() {
                        let _in = in_callback(Context::QueueLocked);
                        timed_out(key, was_last);
                    }
                    return ParkResult::TimedOut;
                }
            }
            loom::thread::park();
        }
    }

    unsafe fn unpark_one(
        key: usize,
        callback: impl FnOnce(UnparkResult) -> UnparkToken,
    ) -> UnparkResult {
        // SAFETY: same contract.
        unsafe { Self::unpark_filter(key, queue::first_only(), callback) }
    }

    unsafe fn unpark_filter(
        key: usize,
        filter: impl FnMut(ParkToken) -> FilterOp,
        callback: impl FnOnce(UnparkResult) -> UnparkToken,
    ) -> UnparkResult {
        check_may_unpark();
        let mut lot = lot();
        let (result, token, woken) = {
            let _in = in_callback(Context::QueueLocked);
            lot.queue.unpark_filter(key, filter, callback)
        };
        for slot in woken {
            lot.handed.push((slot.id, token));
            slot.thread.unpark();
        }
        result
    }

    unsafe fn unpark_requeue(
        key_from: usize,
        key_to: usize,
        validate: impl FnOnce() -> RequeueOp,
        callback: impl FnOnce(RequeueOp, UnparkResult) -> UnparkToken,
    ) -> UnparkResult {
        check_may_unpark();
        let mut lot = lot();
        let (result, token, woken) = {
            let _in = in_callback(Context::QueueLocked);
            lot.queue.unpark_requeue(key_from, key_to, validate, callback)
        };
        if let Some(slot) = woken {
            lot.handed.push((slot.id, token));
            slot.thread.unpark();
        }
        result
    }

    fn now() -> Nanos {
        now()
    }

    fn checked_add(at: Nanos, d: Duration) -> Option<Nanos> {
        let d = d.as_nanos();
        (d < FOREVER).then(|| at + d)
    }

    fn duration_between(earlier: Nanos, later: Nanos) -> Duration {
        let nanos = later.saturating_sub(earlier);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// A std instant made by `std_deadline_after` carries model time (it
    /// lies at or past `std_epoch`): it is decoded. Any other comes from
    /// the real clock, which the model does not follow: one already past
    /// has passed, any other passes at the clock's next step.
    #[cfg(feature = "std")]
    fn from_std(instant: std::time::Instant) -> Nanos {
        if let Some(model_time) = instant.checked_duration_since(std_epoch()) {
            return model_time.as_nanos();
        }
        if instant <= std::time::Instant::now() {
            now()
        } else {
            now() + 1
        }
    }

    /// Model time, carried in a std instant: `std_epoch` plus the model
    /// clock's reading plus `timeout`. lock_api's timed condition variable
    /// turns its timeout into a std instant before it calls us; taking it
    /// from the real clock made a model's outcome depend on how long the
    /// machine took between that conversion and the wait (on a loaded
    /// machine, 1 ms of real time could pass there in one execution and not
    /// in the next), which loom cannot replay ("expected to be able to
    /// acquire lock" in `condition::notify_all_requeues_onto_the_fair_mutex`).
    #[cfg(feature = "std")]
    fn std_deadline_after(timeout: Duration) -> Option<std::time::Instant> {
        let model_now = Duration::from_nanos(u64::try_from(now()).ok()?);
        std_epoch().checked_add(model_now)?.checked_add(timeout)
    }

    fn thread_id() -> Option<NonZeroU64> {
        Some(THREAD_ID.with(|id| *id))
    }

    fn yield_now() {
        loom::thread::yield_now();
    }

    fn spin_limit() -> u32 {
        SPIN_LIMIT.with(Cell::get)
    }
}

/// One step of the model clock: to the earliest deadline still ahead among
/// the threads in a timed park. Returns how many timed parks it reached (0,
/// and the clock unmoved, when no thread is in one).
pub(crate) fn fire_timeouts() -> usize {
    let lot = lot();
    lot.next_deadline().map_or(0, |next| lot.move_clock_to(next))
}

/// Moves the model clock forward by `by`; returns how many timed parks it
/// reached.
pub(crate) fn advance(by: Duration) -> usize {
    let lot = lot();
    lot.move_clock_to(now().saturating_add(by.as_nanos()))
}

/// The model clock's reading, as a duration since its origin.
pub(crate) fn now_since_origin() -> Duration {
    ModelLot::duration_between(0, now())
}

/// How many threads sit in the queue (any key), without waking anyone.
pub(crate) fn parked_threads() -> usize {
    lot().queue.slots().count()
}

/// Sets how many rounds `SpinWait` spins in models run on this OS thread.
pub(crate) fn set_spin_limit(rounds: u32) {
    SPIN_LIMIT.with(|limit| limit.set(rounds));
}

/// A model timer thread (see the module docs).
pub(crate) struct Timer {
    id: u64,
    thread: Option<loom::thread::JoinHandle<usize>>,
}

impl Timer {
    pub(crate) fn spawn(steps: usize) -> Self {
        let id = NEXT_TIMER_ID.fetch_add(1, Ordering::Relaxed);
        let thread = loom::thread::spawn(move || run_timer(id, steps));
        Self {
            id,
            thread: Some(thread),
        }
    }

    /// Stops the timer once no thread is in a timed park, and joins it;
    /// returns how many steps it took.
    pub(crate) fn join(mut self) -> usize {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> usize {
        let Some(thread) = self.thread.take() else {
            return 0;
        };
        {
            let mut lot = lot();
            lot.stopping.push(self.id);
            if let Some(index) = lot.idle_timers.iter().position(|t| t.id == self.id) {
                lot.idle_timers.swap_remove(index).thread.unpark();
            }
        }
        thread.join().expect("the model timer thread panicked")
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        // A model that fails is unwinding already: joining could only hide
        // its panic behind another one.
        if !std::thread::panicking() {
            self.stop_and_join();
        }
    }
}

fn run_timer(id: u64, steps: usize) -> usize {
    let mut taken = 0;
    while taken < steps {
        let mut lot = lot();
        // Listed only while asleep: whoever woke it took it off the list.
        lot.idle_timers.retain(|t| t.id != id);
        if let Some(next) = lot.next_deadline() {
            lot.move_clock_to(next);
            taken += 1;
            continue;
        }
        if let Some(index) = lot.stopping.iter().position(|&t| t == id) {
            lot.stopping.swap_remove(index);
            break;
        }
        lot.idle_timers.push(IdleTimer {
            id,
            thread: loom::thread::current(),
        });
        drop(lot);
        loom::thread::park();
    }
    taken
}

#[cfg(test)]
mod tests {
    //! The contract checks of this backend, inside loom models. Run with
    //! `RUSTFLAGS="--cfg loom" cargo test -p gilock --lib --release`. The
    //! rejections abort the process, so those tests run in a child process
    //! (see `queue::child_process`).

    use super::super::queue::child_process;
    use super::*;

    fn is_child(name: &str) -> bool {
        child_process::is_child(module_path!(), name)
    }

    fn assert_child_aborts_with(name: &str, message: &str) {
        child_process::assert_aborts_with(module_path!(), name, message);
    }

    /// A park with the given callbacks on a key of the test's own.
    fn park_on(key: &u8, validate: impl FnOnce() -> bool, before_sleep: impl FnOnce()) -> ParkResult {
        // SAFETY: the key is the tests' own address; the callbacks are theirs.
        unsafe {
            super::super::park(
                core::ptr::from_ref(key) as usize,
                validate,
                before_sleep,
                |_, _| {},
                ParkToken(0),
                None,
            )
        }
    }

    /// Mutation: `check_may_park` emptied → the nested park re-locked the
    /// lot inside `validate` and the child died of loom's "deadlock"
    /// instead of our message ("did not report ...").
    #[test]
    fn a_park_from_validate_is_rejected() {
        const NAME: &str = "a_park_from_validate_is_rejected";
        if is_child(NAME) {
            loom::model(|| {
                let (outer, inner) = (0u8, 0u8);
                park_on(&outer, || park_on(&inner, || false, || {}) == ParkResult::Invalid, || {});
            });
            return;
        }
        assert_child_aborts_with(NAME, NESTED_IN_LOCKED_CALLBACK);
    }

    /// Mutation: `check_may_park` emptied → the nested park returned
    /// `Invalid`, the outer one slept with nobody to wake it, and the child
    /// died of loom's "deadlock" instead of our message ("did not report").
    #[test]
    fn a_park_from_before_sleep_is_rejected() {
        const NAME: &str = "a_park_from_before_sleep_is_rejected";
        if is_child(NAME) {
            loom::model(|| {
                let (outer, inner) = (0u8, 0u8);
                park_on(&outer, || true, || {
                    park_on(&inner, || false, || {});
                });
            });
            return;
        }
        assert_child_aborts_with(NAME, NESTED_IN_BEFORE_SLEEP);
    }

    /// Mutation: `check_may_unpark` emptied → the unpark re-locked the lot
    /// inside `validate` and the child died of loom's "deadlock" instead of
    /// our message ("did not report ...").
    #[test]
    fn an_unpark_from_validate_is_rejected() {
        const NAME: &str = "an_unpark_from_validate_is_rejected";
        if is_child(NAME) {
            loom::model(|| {
                let (outer, other) = (0u8, 0u8);
                park_on(
                    &outer,
                    || {
                        // SAFETY: the tests' own key; an empty callback.
                        unsafe {
                            super::super::unpark_one(core::ptr::from_ref(&other) as usize, |_| {
                                UnparkToken(0)
                            })
                        };
                        false
                    },
                    || {},
                );
            });
            return;
        }
        assert_child_aborts_with(NAME, NESTED_IN_LOCKED_CALLBACK);
    }

    /// The rejections are not over-broad: `before_sleep` may unpark (a
    /// condition wait releases its lock there). Here it wakes a thread
    /// that parked first, which then wakes this one; in every schedule.
    ///
    /// Mutation: `check_may_unpark` rejected every context but `None`
    /// (`before_sleep` too) → the test binary aborted on the rejection.
    #[test]
    fn before_sleep_may_unpark() {
        loom::model(|| {
            use loom::sync::Arc;
            use loom::sync::atomic::{AtomicBool, Ordering};
            // Two distinct addresses for the two queues.
            let keys = Arc::new([0u8, 0u8]);
            let key = |k: &u8| core::ptr::from_ref(k) as usize;
            let first_queued = Arc::new(AtomicBool::new(false));
            let first = {
                let (keys, first_queued) = (keys.clone(), first_queued.clone());
                loom::thread::spawn(move || {
                    let result = park_on(&keys[0], || true, || {
                        // Relaxed: only the value matters; the main thread
                        // then takes the lot's lock, after this queueing.
                        first_queued.store(true, Ordering::Relaxed);
                    });
                    // SAFETY: the test's own key; an empty callback.
                    unsafe { super::super::unpark_one(key(&keys[1]), |_| UnparkToken(2)) };
                    result
                })
            };
            while !first_queued.load(Ordering::Relaxed) {
                loom::thread::yield_now();
            }
            let mine = park_on(&keys[1], || true, || {
                // SAFETY: the test's own key; an empty callback.
                unsafe { super::super::unpark_one(key(&keys[0]), |_| UnparkToken(1)) };
            });
            assert_eq!(mine, ParkResult::Unparked(UnparkToken(2)));
            assert_eq!(first.join().unwrap(), ParkResult::Unparked(UnparkToken(1)));
        });
    }
}
