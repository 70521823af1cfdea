//! Soak test: every primitive at once, with many threads, random timeouts,
//! interrupts, detaches and condition waits, for a given time. Interpreter
//! threads hold the Gil and block in the attached forms (`acquire_with`,
//! `lock_with`, `wait_on_lock_with`, the `Semaphore` / `Event` / `Barrier`
//! `_with` waits), through their own guard, a nested `ensure` guard or
//! `with_attached`, while other threads aim interrupts at the ones that
//! are blocked. At the end it checks that no increment was lost (each lock
//! guards a plain, non-atomic counter; the Gil guards a `GilCell`), no
//! waiter was stranded (every thread joins within a bound after the stop),
//! every lock is free and every permit is back; it prints how many of each
//! operation ran. Exits with status 1 on any failure.
//!
//! ```sh
//! cargo run --release --example stress                  # 16 threads, 5 s
//! cargo run --release --example stress -- --seconds 600 --threads 32 --seed 7
//! ```
//!
//! Options: `--seconds N` (default 5), `--threads N` (default 16),
//! `--seed N` (default: from the clock; printed, so a failure can be re-run).

use gilock::{
    Barrier, BoundedSemaphore, Condition, Event, FairMutex, FairMutexExt, Gil, GilCell, GilGuard,
    Interrupted, Lock, MutexExt, RLock, ReleaseError, Semaphore, SwitchPolicy, ThreadStatus,
    WaitError,
};
use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::hint::black_box;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

/// How long the threads get to finish after the stop: far more than any
/// timeout used here.
const JOIN_BOUND: Duration = Duration::from_secs(30);

/// Capacity of the bounded queue.
const CAPACITY: usize = 8;

/// Permits of the counting semaphore.
const PERMITS: usize = 3;

/// Parties of the barrier.
const PARTIES: usize = 3;

/// A tiny xorshift64* generator: no dependency, reproducible from a seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A timeout from zero to 3 ms, zero one time in eight.
    fn timeout(&mut self) -> Duration {
        if self.below(8) == 0 {
            Duration::ZERO
        } else {
            Duration::from_micros(self.below(3_000))
        }
    }
}

/// A counter that only a `Lock`, an `RLock` or a binary semaphore protects.
/// Those guard no data of their own, so no safe type ties the counter to
/// them; and it must stay a plain, non-atomic location: a missing
/// happens-before edge between two holders is then a data race that
/// ThreadSanitizer reports, not just a lost update.
struct Plain(UnsafeCell<u64>);

// SAFETY:
// - every access but `get` goes through `bump`, whose callers hold the
//   lock that guards this counter (see each call site);
// - `get` runs after every thread has joined.
unsafe impl Sync for Plain {}

impl Plain {
    const fn new() -> Self {
        Self(UnsafeCell::new(0))
    }

    /// # Safety
    /// The caller holds the lock that guards this counter.
    unsafe fn bump(&self) {
        // SAFETY: the caller holds the guarding lock, so no other thread
        // reads or writes the counter meanwhile.
        slow_increment(unsafe { &mut *self.0.get() });
    }

    fn get(&self) -> u64 {
        // SAFETY: read after every thread has joined.
        unsafe { *self.0.get() }
    }
}

/// `*v += 1` as a read, a pause and a write: a second thread inside the
/// critical section meanwhile makes one of the two increments vanish.
/// `black_box` keeps the compiler from folding the three into one add.
fn slow_increment(v: &mut u64) {
    let old = black_box(*v);
    for _ in 0..16 {
        std::hint::spin_loop();
    }
    *v = black_box(old + 1);
}

/// Everything the threads share.
struct Shared {
    stop: AtomicBool,
    fair: FairMutex<u64>,
    lock: Lock,
    lock_count: Plain,
    rlock: RLock,
    rlock_count: Plain,
    gil: Gil,
    /// Under the Gil: a `GilCell`, reached through the thread's guard, a
    /// nested `ensure` guard or `with_attached`, with the same slow
    /// read-pause-write.
    gil_count: GilCell<u64>,
    /// A bounded queue: FairMutex + two Conditions. Its mutex also orders
    /// the stop: `stop` is set under it, and `Event::clear` and
    /// `Barrier::reset` happen under it only while `stop` is false, so
    /// after the main thread's final `set` and `abort` every waiter comes
    /// home, even one that starts its wait late.
    queue: FairMutex<VecDeque<u64>>,
    not_empty: Condition,
    not_full: Condition,
    /// Waited on through a Lock, an RLock or the Gil.
    cond: Condition,
    /// At most `PERMITS` holders: `sem_inside` counts them.
    sem: Semaphore,
    sem_inside: AtomicUsize,
    /// A binary semaphore guarding `bsem_count`.
    bsem: BoundedSemaphore,
    bsem_count: Plain,
    event: Event,
    /// Its action counts its runs (`rounds`).
    barrier: Barrier,
    rounds: Arc<AtomicU64>,
    /// Threads in an untimed wait, and how many may be: if every thread
    /// waited untimed, nobody would produce, set, arrive or notify.
    untimed: AtomicUsize,
    max_untimed: usize,
}

/// What one thread did, field by field; `add` sums two.
macro_rules! counts {
    ($($(#[$doc:meta])* $field:ident,)*) => {
        #[derive(Default, Clone, Copy)]
        struct Counts {
            $($(#[$doc])* $field: u64,)*
        }

        impl Counts {
            fn add(&mut self, o: &Counts) {
                $(self.$field += o.$field;)*
            }
        }
    };
}

counts! {
    // Increments, checked against the counters at the end.
    fair,
    lock,
    rlock,
    gil,
    bsem,
    produced,
    consumed,
    /// Barrier waits that passed, and those that passed first (index 0)
    /// and last: one of each per round.
    barrier_passed,
    barrier_first,
    barrier_last,
    // Operation counts for the report.
    timeouts,
    cond_waits,
    cond_notified,
    attached_waits,
    attached_interrupted,
    nested_waits,
    sem_acquired,
    event_sets,
    event_waits,
    barrier_broken,
    interrupts_sent,
    interrupts_aimed,
    interrupted,
    detaches,
    checkpoint_switches,
    bumps,
    ops,
}

fn fair_op(s: &Shared, rng: &mut Rng, c: &mut Counts) {
    let guard = if rng.below(2) == 0 {
        Some(s.fair.lock())
    } else {
        s.fair.try_lock_for(rng.timeout())
    };
    let Some(mut guard) = guard else {
        c.timeouts += 1;
        return;
    };
    slow_increment(&mut guard);
    c.fair += 1;
    if s.fair.is_drop_requested() || rng.below(16) == 0 {
        lock_api::MutexGuard::bump(&mut guard);
        c.bumps += 1;
        slow_increment(&mut guard);
        c.fair += 1;
    }
    if rng.below(8) == 0 {
        lock_api::MutexGuard::unlock_fair(guard);
    }
}

fn lock_op(s: &Shared, rng: &mut Rng, c: &mut Counts) {
    match rng.below(3) {
        0 => {
            let _guard = s.lock.lock();
            // SAFETY: `lock` is held.
            unsafe { s.lock_count.bump() };
            c.lock += 1;
        }
        1 => {
            if s.lock.acquire_timeout(rng.timeout()) {
                // SAFETY: `lock` is held.
                unsafe { s.lock_count.bump() };
                c.lock += 1;
                s.lock.release().expect("held by this acquisition");
            } else {
                c.timeouts += 1;
            }
        }
        _ => {
            // A condition wait through the guard: the counter is guarded
            // again when the wait returns, however it ended.
            let mut guard = s.lock.lock();
            c.cond_waits += 1;
            if s.cond.wait_timeout(&mut guard, rng.timeout()) {
                c.cond_notified += 1;
            }
            // SAFETY: `lock` is held again.
            unsafe { s.lock_count.bump() };
            c.lock += 1;
        }
    }
}

fn rlock_op(s: &Shared, rng: &mut Rng, c: &mut Counts) {
    let depth = 1 + rng.below(3) as usize;
    match rng.below(3) {
        0 => {
            let guards: Vec<_> = (0..depth).map(|_| s.rlock.lock()).collect();
            assert_eq!(s.rlock.recursion_count(), depth);
            // SAFETY: `rlock` is held.
            unsafe { s.rlock_count.bump() };
            c.rlock += 1;
            drop(guards);
        }
        1 => {
            if !s.rlock.acquire_timeout(rng.timeout()) {
                c.timeouts += 1;
                return;
            }
            for _ in 1..depth {
                assert!(
                    s.rlock.acquire_timeout(rng.timeout()),
                    "re-entry is at once"
                );
            }
            // SAFETY: `rlock` is held.
            unsafe { s.rlock_count.bump() };
            c.rlock += 1;
            for _ in 0..depth {
                s.rlock.release().expect("owned");
            }
        }
        _ => {
            // Waiting N levels deep releases all N and restores them.
            for _ in 0..depth {
                s.rlock.acquire();
            }
            c.cond_waits += 1;
            if s.cond.wait_on_rlock_timeout(&s.rlock, rng.timeout()) == Ok(true) {
                c.cond_notified += 1;
            }
            assert_eq!(s.rlock.recursion_count(), depth, "levels restored");
            // SAFETY: `rlock` is held again.
            unsafe { s.rlock_count.bump() };
            c.rlock += 1;
            for _ in 0..depth {
                s.rlock.release().expect("owned");
            }
        }
    }
}

/// A place among the threads allowed an untimed wait.
struct UntimedSlot<'a>(&'a AtomicUsize);

impl<'a> UntimedSlot<'a> {
    fn take(s: &'a Shared) -> Option<Self> {
        if s.untimed.fetch_add(1, Ordering::Relaxed) < s.max_untimed {
            Some(Self(&s.untimed))
        } else {
            s.untimed.fetch_sub(1, Ordering::Relaxed);
            None
        }
    }
}

impl Drop for UntimedSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn queue_op(s: &Shared, rng: &mut Rng, c: &mut Counts, next_item: &mut u64) {
    let mut queue = s.queue.lock();
    if rng.below(2) == 0 {
        // Produce: an untimed wait for room (or for the stop), or a timed one.
        if let Some(_slot) = UntimedSlot::take(s) {
            s.not_full.wait_while(&mut queue, |q| {
                q.len() == CAPACITY && !s.stop.load(Ordering::Relaxed)
            });
        } else if !s
            .not_full
            .wait_timeout_while(&mut queue, |q| q.len() == CAPACITY, rng.timeout())
        {
            c.timeouts += 1;
        }
        if queue.len() < CAPACITY {
            queue.push_back(*next_item);
            *next_item += 1;
            c.produced += 1;
            drop(queue);
            s.not_empty.notify_one();
        }
    } else {
        // Consume: untimed or timed.
        c.cond_waits += 1;
        let untimed = if rng.below(2) == 0 {
            UntimedSlot::take(s)
        } else {
            None
        };
        if untimed.is_some() {
            s.not_empty.wait_while(&mut queue, |q| {
                q.is_empty() && !s.stop.load(Ordering::Relaxed)
            });
        } else if !s
            .not_empty
            .wait_timeout_while(&mut queue, |q| q.is_empty(), rng.timeout())
        {
            c.timeouts += 1;
        }
        if queue.pop_front().is_some() {
            c.consumed += 1;
            drop(queue);
            s.not_full.notify_one();
        }
    }
}

/// Increments the Gil-guarded counter, borrowing the cell through `guard`,
/// through a nested `ensure` guard, or through `with_attached`; now and
/// then two shared borrows through two guards of the thread at once, and
/// a `try_borrow_mut` that they must refuse.
fn gil_bump(s: &Shared, guard: &GilGuard<'_>, rng: &mut Rng, c: &mut Counts) {
    match rng.below(8) {
        0..=2 => slow_increment(&mut s.gil_count.borrow_mut(guard)),
        3..=4 => slow_increment(&mut s.gil_count.borrow_mut(&s.gil.ensure())),
        5..=6 => s
            .gil
            .with_attached(|g| slow_increment(&mut s.gil_count.borrow_mut(g)))
            .expect("the thread holds the Gil"),
        _ => {
            let nested = s.gil.ensure();
            let (a, b) = (s.gil_count.borrow(guard), s.gil_count.borrow(&nested));
            assert_eq!(*a, *b, "two shared borrows of one cell");
            assert!(
                s.gil_count.try_borrow_mut(&nested).is_err(),
                "a mutable borrow beside shared ones"
            );
            drop((a, b));
            slow_increment(&mut s.gil_count.borrow_mut(&nested));
        }
    }
    c.gil += 1;
}

fn gil_op(s: &Shared, rng: &mut Rng, c: &mut Counts) {
    let guard = match rng.below(4) {
        0 => s.gil.try_acquire_for(rng.timeout()),
        1 => match s.gil.acquire_interruptible() {
            Ok(guard) => Some(guard),
            Err(_) => {
                c.interrupted += 1;
                return;
            }
        },
        _ => Some(s.gil.acquire()),
    };
    let Some(mut guard) = guard else {
        c.timeouts += 1;
        return;
    };
    for step in 0..(1 + rng.below(200)) {
        gil_bump(s, &guard, rng, c);
        if guard.should_yield() {
            let cp = guard.checkpoint();
            c.checkpoint_switches += u64::from(cp.switched);
            c.interrupted += u64::from(cp.interrupted);
        }
        if step % 64 == 63 {
            match rng.below(4) {
                0 => {
                    c.detaches += 1;
                    // Blocking work without the Gil: another primitive.
                    guard.detach(|| fair_op(s, rng, c));
                }
                1 => {
                    c.cond_waits += 1;
                    match s.cond.wait_timeout(&mut guard, rng.timeout()) {
                        Ok(true) => c.cond_notified += 1,
                        Ok(false) => {}
                        Err(_) => c.interrupted += 1,
                    }
                }
                2 => {
                    guard.yield_now();
                }
                _ => {
                    let _nested = s.gil.ensure();
                }
            }
            assert!(s.gil.is_held_by_current_thread());
        }
    }
}

/// Runs `f` with the thread's outer guard, with a nested `ensure` guard or
/// inside `with_attached`: an attached wait acts on the thread's
/// attachment whichever guard it is given.
fn through<R>(
    s: &Shared,
    guard: &mut GilGuard<'_>,
    rng: &mut Rng,
    c: &mut Counts,
    f: impl FnOnce(&mut GilGuard<'_>, &mut Rng) -> R,
) -> R {
    let r = match rng.below(4) {
        0 => {
            c.nested_waits += 1;
            f(&mut s.gil.ensure(), rng)
        }
        1 => {
            c.nested_waits += 1;
            s.gil
                .with_attached(|g| f(g, rng))
                .expect("the thread holds the Gil")
        }
        _ => f(guard, rng),
    };
    assert!(
        s.gil.is_held_by_current_thread(),
        "an attached wait returned without the Gil"
    );
    r
}

/// `Ok(true)`: taken; `Ok(false)`: timed out; `Err`: interrupted. Counts
/// the outcome.
fn took(r: Result<bool, Interrupted>, c: &mut Counts) -> bool {
    c.attached_waits += 1;
    match r {
        Ok(true) => true,
        Ok(false) => {
            c.timeouts += 1;
            false
        }
        Err(Interrupted) => {
            c.attached_interrupted += 1;
            false
        }
    }
}

/// An untimed attached call as a timed one that cannot time out.
fn untimed(r: Result<(), Interrupted>) -> Result<bool, Interrupted> {
    r.map(|()| true)
}

/// As [`took`], for a Condition wait: the lock is held again whichever way
/// it ended.
fn waited(r: Result<bool, WaitError>, c: &mut Counts) {
    c.attached_waits += 1;
    c.cond_waits += 1;
    match r {
        Ok(true) => c.cond_notified += 1,
        Ok(false) => c.timeouts += 1,
        Err(WaitError::Interrupted) => c.attached_interrupted += 1,
        Err(e) => panic!("a Condition wait with the lock held failed: {e}"),
    }
}

/// The lock is held (all RLock levels): bump its counter, maybe notify.
fn lock_held(s: &Shared, rng: &mut Rng, c: &mut Counts) {
    assert!(s.lock.locked());
    // SAFETY: `lock` is held by this thread.
    unsafe { s.lock_count.bump() };
    c.lock += 1;
    if rng.below(4) == 0 {
        s.cond
            .notify_on_lock(&s.lock, 1 + rng.below(2) as usize)
            .expect("the lock is held");
    }
}

fn rlock_held(s: &Shared, rng: &mut Rng, c: &mut Counts, depth: usize) {
    assert_eq!(s.rlock.recursion_count(), depth, "every level held");
    // SAFETY: `rlock` is owned by this thread.
    unsafe { s.rlock_count.bump() };
    c.rlock += 1;
    if rng.below(4) == 0 {
        s.cond
            .notify_on_rlock(&s.rlock, usize::MAX)
            .expect("the rlock is owned");
    }
}

/// An interpreter thread's blocking call: one of the attached forms,
/// through one of the thread's guards, timed or untimed.
fn attached_wait(s: &Shared, guard: &mut GilGuard<'_>, rng: &mut Rng, c: &mut Counts) {
    let slot = if rng.below(4) == 0 {
        UntimedSlot::take(s)
    } else {
        None
    };
    let untimed_wait = slot.is_some();
    match rng.below(9) {
        0 => lock_with(s, guard, rng, c, untimed_wait),
        1 => rlock_with(s, guard, rng, c, untimed_wait),
        2 => fair_with(s, guard, rng, c, untimed_wait),
        3 => cond_lock_with(s, guard, rng, c, untimed_wait),
        4 => cond_rlock_with(s, guard, rng, c, untimed_wait),
        5 => sem_with(s, guard, rng, c, untimed_wait),
        6 => bsem_with(s, guard, rng, c, untimed_wait),
        7 => event_with(s, guard, rng, c, untimed_wait),
        _ => barrier_with(s, guard, rng, c, untimed_wait),
    }
    drop(slot);
}

/// `Lock::acquire_with` / `acquire_timeout_with`.
fn lock_with(
    s: &Shared,
    guard: &mut GilGuard<'_>,
    rng: &mut Rng,
    c: &mut Counts,
    untimed_wait: bool,
) {
    let r = through(s, guard, rng, c, |g, rng| {
        if untimed_wait {
            untimed(s.lock.acquire_with(g))
        } else {
            s.lock.acquire_timeout_with(g, rng.timeout())
        }
    });
    if took(r, c) {
        lock_held(s, rng, c);
        s.lock.release().expect("taken above");
    }
}

/// `RLock::acquire_with` / `acquire_timeout_with`, one to three levels.
fn rlock_with(
    s: &Shared,
    guard: &mut GilGuard<'_>,
    rng: &mut Rng,
    c: &mut Counts,
    untimed_wait: bool,
) {
    // Re-entry never waits, but an interrupt that arrived ends it
    // before its first try: only the levels taken are released.
    let depth = 1 + rng.below(3) as usize;
    let mut held = 0;
    while held < depth {
        let r = through(s, guard, rng, c, |g, rng| {
            if untimed_wait {
                untimed(s.rlock.acquire_with(g))
            } else {
                s.rlock.acquire_timeout_with(g, rng.timeout())
            }
        });
        if !took(r, c) {
            break;
        }
        held += 1;
    }
    if held == depth {
        rlock_held(s, rng, c, depth);
    }
    for _ in 0..held {
        s.rlock.release().expect("owned");
    }
}

/// `MutexExt::lock_with` / `try_lock_for_with`.
fn fair_with(
    s: &Shared,
    guard: &mut GilGuard<'_>,
    rng: &mut Rng,
    c: &mut Counts,
    untimed_wait: bool,
) {
    let r = through(s, guard, rng, c, |g, rng| {
        if untimed_wait {
            s.fair.lock_with(g).map(Some)
        } else {
            s.fair.try_lock_for_with(g, rng.timeout())
        }
    });
    c.attached_waits += 1;
    match r {
        Ok(Some(mut fair)) => {
            slow_increment(&mut fair);
            c.fair += 1;
        }
        Ok(None) => c.timeouts += 1,
        Err(Interrupted) => c.attached_interrupted += 1,
    }
}

/// `Condition::wait_on_lock_with` / `wait_on_lock_timeout_with`, then
/// `notify_on_lock`.
fn cond_lock_with(
    s: &Shared,
    guard: &mut GilGuard<'_>,
    rng: &mut Rng,
    c: &mut Counts,
    untimed_wait: bool,
) {
    // A Condition wait on a Lock: untimed ones wait for the stop
    // (checked with the lock held; the main thread notifies with
    // it held after setting `stop`).
    if !took(
        through(s, guard, rng, c, |g, _| untimed(s.lock.acquire_with(g))),
        c,
    ) {
        return;
    }
    if untimed_wait {
        if !s.stop.load(Ordering::Relaxed) {
            waited(
                through(s, guard, rng, c, |g, _| {
                    s.cond.wait_on_lock_with(&s.lock, g).map(|()| true)
                }),
                c,
            );
        }
    } else {
        waited(
            through(s, guard, rng, c, |g, rng| {
                s.cond.wait_on_lock_timeout_with(&s.lock, g, rng.timeout())
            }),
            c,
        );
    }
    lock_held(s, rng, c);
    s.lock.release().expect("held again after the wait");
}

/// `Condition::wait_on_rlock_with` / `wait_on_rlock_timeout_with` N
/// levels deep, then `notify_on_rlock`.
fn cond_rlock_with(
    s: &Shared,
    guard: &mut GilGuard<'_>,
    rng: &mut Rng,
    c: &mut Counts,
    untimed_wait: bool,
) {
    // The same on an RLock held N levels deep (taken with the
    // attached form: a plain `acquire` here could sleep holding
    // the Gil that the RLock's owner needs to get back).
    let depth = 1 + rng.below(3) as usize;
    for level in 0..depth {
        if !took(
            through(s, guard, rng, c, |g, _| untimed(s.rlock.acquire_with(g))),
            c,
        ) {
            for _ in 0..level {
                s.rlock.release().expect("owned");
            }
            return;
        }
    }
    if untimed_wait {
        if !s.stop.load(Ordering::Relaxed) {
            waited(
                through(s, guard, rng, c, |g, _| {
                    s.cond.wait_on_rlock_with(&s.rlock, g).map(|()| true)
                }),
                c,
            );
        }
    } else {
        waited(
            through(s, guard, rng, c, |g, rng| {
                s.cond
                    .wait_on_rlock_timeout_with(&s.rlock, g, rng.timeout())
            }),
            c,
        );
    }
    rlock_held(s, rng, c, depth);
    for _ in 0..depth {
        s.rlock.release().expect("owned");
    }
    if !s.rlock.is_owned() {
        assert!(
            s.cond.notify_on_rlock(&s.rlock, 1).is_err(),
            "notify on an RLock this thread does not own"
        );
    }
}

/// `Semaphore::acquire_with` / `acquire_timeout_with`: never more holders
/// than permits.
fn sem_with(
    s: &Shared,
    guard: &mut GilGuard<'_>,
    rng: &mut Rng,
    c: &mut Counts,
    untimed_wait: bool,
) {
    let r = through(s, guard, rng, c, |g, rng| {
        if untimed_wait {
            untimed(s.sem.acquire_with(g))
        } else {
            s.sem.acquire_timeout_with(g, rng.timeout())
        }
    });
    if took(r, c) {
        let inside = s.sem_inside.fetch_add(1, Ordering::Relaxed) + 1;
        assert!(inside <= PERMITS, "{inside} holders of {PERMITS} permits");
        c.sem_acquired += 1;
        gil_bump(s, guard, rng, c);
        s.sem_inside.fetch_sub(1, Ordering::Relaxed);
        s.sem.release_one();
    }
}

/// `BoundedSemaphore::acquire_with` / `acquire_timeout_with`: a binary
/// semaphore guarding a counter.
fn bsem_with(
    s: &Shared,
    guard: &mut GilGuard<'_>,
    rng: &mut Rng,
    c: &mut Counts,
    untimed_wait: bool,
) {
    let r = through(s, guard, rng, c, |g, rng| {
        if untimed_wait {
            untimed(s.bsem.acquire_with(g))
        } else {
            s.bsem.acquire_timeout_with(g, rng.timeout())
        }
    });
    if took(r, c) {
        // SAFETY: this thread holds the binary semaphore's only
        // permit.
        unsafe { s.bsem_count.bump() };
        c.bsem += 1;
        s.bsem.release_one().expect("one permit out, one back");
    }
}

/// `Event::set`, `clear` (not after the stop), `wait_with` /
/// `wait_timeout_with`.
fn event_with(
    s: &Shared,
    guard: &mut GilGuard<'_>,
    rng: &mut Rng,
    c: &mut Counts,
    untimed_wait: bool,
) {
    match rng.below(4) {
        0 => {
            s.event.set();
            c.event_sets += 1;
        }
        1 => {
            if let Ok(_stop) = s.queue.lock_with(guard)
                && !s.stop.load(Ordering::Relaxed)
            {
                s.event.clear();
            }
        }
        _ => {
            c.event_waits += 1;
            let r = through(s, guard, rng, c, |g, rng| {
                if untimed_wait {
                    untimed(s.event.wait_with(g))
                } else {
                    s.event.wait_timeout_with(g, rng.timeout())
                }
            });
            // Ok(true): the flag was set when the wait ended (it may
            // be cleared since).
            took(r, c);
        }
    }
}

/// `Barrier::wait_with` / `wait_timeout_with`.
fn barrier_with(
    s: &Shared,
    guard: &mut GilGuard<'_>,
    rng: &mut Rng,
    c: &mut Counts,
    untimed_wait: bool,
) {
    // A timeout or an interrupt breaks the round for everyone; a
    // thread that finds it broken resets it (not after the stop).
    let r = through(s, guard, rng, c, |g, rng| {
        if untimed_wait {
            s.barrier.wait_with(g)
        } else {
            s.barrier.wait_timeout_with(g, rng.timeout())
        }
    });
    c.attached_waits += 1;
    match r {
        Ok(Ok(index)) => {
            assert!(index < PARTIES);
            c.barrier_passed += 1;
            c.barrier_first += u64::from(index == 0);
            c.barrier_last += u64::from(index == PARTIES - 1);
        }
        Ok(Err(_broken)) => {
            c.barrier_broken += 1;
            if let Ok(_stop) = s.queue.lock_with(guard)
                && !s.stop.load(Ordering::Relaxed)
                && s.barrier.broken()
            {
                s.barrier.reset();
            }
        }
        Err(Interrupted) => c.attached_interrupted += 1,
    }
}

/// Holds the Gil through a few attached waits, with Gil-guarded work
/// between them.
fn attached_op(s: &Shared, rng: &mut Rng, c: &mut Counts) {
    let mut guard = match s.gil.acquire_interruptible() {
        Ok(guard) => guard,
        Err(Interrupted) => {
            c.interrupted += 1;
            return;
        }
    };
    for _ in 0..(1 + rng.below(4)) {
        gil_bump(s, &guard, rng, c);
        attached_wait(s, &mut guard, rng, c);
        if guard.should_yield() {
            let cp = guard.checkpoint();
            c.checkpoint_switches += u64::from(cp.switched);
            c.interrupted += u64::from(cp.interrupted);
        }
    }
}

/// Interrupts a thread, one blocked in a wait (status `Waiting`) when
/// there is one.
fn interrupt_op(s: &Shared, rng: &mut Rng, c: &mut Counts) {
    let states = s.gil.thread_states();
    let waiting: Vec<_> = states
        .iter()
        .filter(|t| t.status() == ThreadStatus::Waiting)
        .collect();
    if !waiting.is_empty() {
        waiting[rng.below(waiting.len() as u64) as usize].interrupt();
        c.interrupts_aimed += 1;
    } else if !states.is_empty() {
        states[rng.below(states.len() as u64) as usize].interrupt();
    } else {
        return;
    }
    c.interrupts_sent += 1;
}

fn notify_op(s: &Shared, rng: &mut Rng) {
    match rng.below(3) {
        0 => {
            s.cond.notify_one();
        }
        1 => {
            s.cond.notify(1 + rng.below(3) as usize);
        }
        _ => {
            s.cond.notify_all();
        }
    }
}

fn settings_op(s: &Shared, rng: &mut Rng) {
    // Setters may be called at any time, from any thread.
    let interval = Duration::from_micros(50 + rng.below(5_000));
    s.gil.set_switch_interval(interval);
    // SAFETY:
    // - `raw` is unsafe because locking or unlocking behind the Mutex's
    //   back breaks its guards' promise;
    // - `set_switch_interval` only sets the interval.
    unsafe { s.fair.raw() }.set_switch_interval(interval);
    s.gil.set_policy(if rng.below(2) == 0 {
        SwitchPolicy::Fifo
    } else {
        SwitchPolicy::Interactive
    });
}

fn worker(s: &Shared, seed: u64, id: u64) -> Counts {
    let mut rng = Rng::new(seed ^ (id + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut c = Counts::default();
    let mut next_item = id << 40;
    while !s.stop.load(Ordering::Relaxed) {
        c.ops += 1;
        match rng.below(100) {
            0..=11 => fair_op(s, &mut rng, &mut c),
            12..=23 => lock_op(s, &mut rng, &mut c),
            24..=35 => rlock_op(s, &mut rng, &mut c),
            36..=51 => queue_op(s, &mut rng, &mut c, &mut next_item),
            52..=68 => gil_op(s, &mut rng, &mut c),
            69..=88 => attached_op(s, &mut rng, &mut c),
            89..=93 => interrupt_op(s, &mut rng, &mut c),
            94..=98 => notify_op(s, &mut rng),
            _ => settings_op(s, &mut rng),
        }
    }
    c
}

fn parse_args() -> (u64, u64, u64) {
    let mut seconds = 5;
    let mut threads = 16;
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| -> u64 {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} needs a number"))
        };
        match arg.as_str() {
            "--seconds" => seconds = value("--seconds"),
            "--threads" => threads = value("--threads").max(1),
            "--seed" => seed = value("--seed"),
            "--help" | "-h" => {
                println!("stress [--seconds N] [--threads N] [--seed N]");
                std::process::exit(0);
            }
            other => panic!("unknown argument {other:?} (try --help)"),
        }
    }
    (seconds, threads, seed)
}

/// Stops the workers so that every waiter comes home: `stop` under the
/// queue's mutex (no queue waiter checks it and then misses the notify,
/// and no `clear` or `reset` follows), one notify_all per condition (the
/// shared one with its Lock and RLock held, as its untimed waiters check
/// `stop` with one of them held), then the event set and the barrier
/// broken for good. A thread that a lost wakeup stranded would not join.
fn stop(s: &Shared) {
    {
        let _queue = s.queue.lock();
        s.stop.store(true, Ordering::SeqCst);
    }
    s.not_empty.notify_all();
    s.not_full.notify_all();
    {
        let _lock = s.lock.lock();
        s.cond.notify_all();
    }
    {
        let _rlock = s.rlock.lock();
        s.cond.notify_all();
    }
    s.event.set();
    s.barrier.abort();
}

/// What was lost or left behind, once every thread has joined.
fn final_checks(s: &Shared, t: &Counts) -> Vec<String> {
    let mut failures = Vec::new();
    // Every increment landed exactly once.
    let rounds = s.rounds.load(Ordering::SeqCst);
    let checks = [
        ("FairMutex counter", *s.fair.lock(), t.fair),
        ("Lock counter", s.lock_count.get(), t.lock),
        ("RLock counter", s.rlock_count.get(), t.rlock),
        ("BoundedSemaphore counter", s.bsem_count.get(), t.bsem),
        ("Gil counter", *s.gil_count.borrow(&s.gil.acquire()), t.gil),
        (
            "queue items (consumed + left)",
            t.consumed + s.queue.lock().len() as u64,
            t.produced,
        ),
        // A round passes for all its parties or for none: one first
        // (index 0) and one last arrival in each.
        (
            "barrier passes",
            t.barrier_passed,
            t.barrier_first * PARTIES as u64,
        ),
        ("barrier last arrivals", t.barrier_last, t.barrier_first),
    ];
    for (what, found, expected) in checks {
        if found != expected {
            failures.push(format!(
                "{what}: {found}, expected {expected}: lost updates"
            ));
        }
    }
    // The action runs once per round that passes, and also in a round that
    // an interrupt, an abort or a reset broke while it ran (a waiter whose
    // timeout passes during the action passes with the round).
    if rounds < t.barrier_first {
        failures.push(format!(
            "{} barrier rounds passed, but the action ran {rounds} times",
            t.barrier_first
        ));
    }
    // Every lock is free, every permit back, and no waiter is left.
    if s.fair.is_locked() || s.queue.is_locked() {
        failures.push("a FairMutex is still locked".into());
    }
    if s.lock.locked() {
        failures.push("the Lock is still locked".into());
    }
    if s.rlock.locked() {
        failures.push("the RLock is still locked".into());
    }
    if s.gil.is_locked() {
        failures.push("the Gil is still locked".into());
    }
    for (name, cond) in [
        ("cond", &s.cond),
        ("not_empty", &s.not_empty),
        ("not_full", &s.not_full),
    ] {
        let woken = cond.notify_all();
        if woken != 0 {
            failures.push(format!("{woken} waiter(s) still queued on {name}"));
        }
    }
    if s.sem.available_permits() != PERMITS || s.sem_inside.load(Ordering::SeqCst) != 0 {
        failures.push(format!(
            "the Semaphore has {} of {PERMITS} permits",
            s.sem.available_permits()
        ));
    }
    if s.bsem.available_permits() != 1 {
        failures.push("the BoundedSemaphore's permit is not back".into());
    }
    if !s.event.is_set() {
        failures.push("the Event was cleared after the stop".into());
    }
    if s.barrier.n_waiting() != 0 {
        failures.push(format!(
            "{} thread(s) left at the barrier",
            s.barrier.n_waiting()
        ));
    }
    if !(s.lock.try_acquire() && s.lock.release().is_ok()) {
        failures.push("the Lock cannot be taken".into());
    }
    if !s.rlock.try_acquire() || s.rlock.release().is_err() {
        failures.push("the RLock cannot be taken".into());
    }
    if s.rlock.release() != Err(ReleaseError::NotLocked) {
        failures.push("the RLock is still owned".into());
    }
    if s.gil.try_acquire().is_none() {
        failures.push("the Gil cannot be taken".into());
    }
    if s.fair.try_lock().is_none() || s.queue.try_lock().is_none() {
        failures.push("a FairMutex cannot be taken".into());
    }
    if !(s.sem.try_acquire_n(PERMITS) && s.bsem.try_acquire()) {
        failures.push("a semaphore's permits cannot be taken".into());
    }
    failures
}

fn main() -> ExitCode {
    let (seconds, threads, seed) = parse_args();
    println!(
        "stress: {threads} threads for {seconds} s on {} CPUs, seed {seed}",
        thread::available_parallelism().map_or(0, |n| n.get())
    );
    let rounds = Arc::new(AtomicU64::new(0));
    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        fair: FairMutex::new(0),
        lock: Lock::new(),
        lock_count: Plain::new(),
        rlock: RLock::new(),
        rlock_count: Plain::new(),
        gil: Gil::new(),
        gil_count: GilCell::new(0),
        queue: FairMutex::new(VecDeque::new()),
        not_empty: Condition::new(),
        not_full: Condition::new(),
        cond: Condition::new(),
        sem: Semaphore::new(PERMITS),
        sem_inside: AtomicUsize::new(0),
        bsem: BoundedSemaphore::new(1),
        bsem_count: Plain::new(),
        event: Event::new(),
        barrier: {
            let rounds = Arc::clone(&rounds);
            Barrier::with_action(PARTIES, move || {
                rounds.fetch_add(1, Ordering::Relaxed);
            })
            .expect("PARTIES > 0")
        },
        rounds,
        untimed: AtomicUsize::new(0),
        max_untimed: (threads as usize / 4).max(1),
    });
    let (done_tx, done_rx) = mpsc::channel();
    let started = Instant::now();
    for id in 0..threads {
        let (shared, done_tx) = (shared.clone(), done_tx.clone());
        thread::Builder::new()
            .name(format!("stress-{id}"))
            .spawn(move || {
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    worker(&shared, seed, id)
                }));
                let _ = done_tx.send((id, result));
            })
            .expect("spawn a worker");
    }
    drop(done_tx);

    let mut failures = Vec::new();
    let deadline = started + Duration::from_secs(seconds);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        thread::sleep(left.min(Duration::from_millis(100)));
    }
    stop(&shared);

    let mut total = Counts::default();
    let mut joined = 0;
    let join_deadline = Instant::now() + JOIN_BOUND;
    while joined < threads {
        let left = join_deadline.saturating_duration_since(Instant::now());
        match done_rx.recv_timeout(left) {
            Ok((_, Ok(counts))) => {
                total.add(&counts);
                joined += 1;
            }
            Ok((id, Err(panic))) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failures.push(format!("thread {id} panicked: {msg}"));
                joined += 1;
            }
            Err(_) => {
                failures.push(format!(
                    "{} of {threads} threads stranded: not joined {JOIN_BOUND:?} after the stop",
                    threads - joined
                ));
                break;
            }
        }
    }
    let elapsed = started.elapsed();
    if failures.is_empty() {
        failures = final_checks(&shared, &total);
    }

    let t = &total;
    println!(
        "ran {:.1} s: {} operations; increments: FairMutex {}, Lock {}, RLock {}, \
         BoundedSemaphore {}, Gil {}",
        elapsed.as_secs_f64(),
        t.ops,
        t.fair,
        t.lock,
        t.rlock,
        t.bsem,
        t.gil
    );
    println!(
        "queue: {} produced, {} consumed; condition waits {} ({} notified); timeouts {}",
        t.produced, t.consumed, t.cond_waits, t.cond_notified, t.timeouts
    );
    println!(
        "attached waits {} ({} through a nested guard, {} interrupted); semaphore holds {}; \
         event: {} sets, {} waits; barrier: {} rounds passed ({} actions), {} broken waits",
        t.attached_waits,
        t.nested_waits,
        t.attached_interrupted,
        t.sem_acquired,
        t.event_sets,
        t.event_waits,
        t.barrier_first,
        shared.rounds.load(Ordering::SeqCst),
        t.barrier_broken
    );
    println!(
        "interrupts: {} sent ({} at waiting threads), {} seen elsewhere; detaches {}; \
         forced switches at checkpoints {}; bumps {}",
        t.interrupts_sent,
        t.interrupts_aimed,
        t.interrupted,
        t.detaches,
        t.checkpoint_switches,
        t.bumps
    );
    println!("gil stats: {:?}", shared.gil.stats());
    if failures.is_empty() {
        println!("OK: no increment lost, no waiter stranded, every lock free, every permit back");
        ExitCode::SUCCESS
    } else {
        for f in &failures {
            eprintln!("FAILED: {f}");
        }
        ExitCode::FAILURE
    }
}
