//! Soak test: every primitive at once, with many threads, random timeouts,
//! interrupts, detaches and condition waits, for a given time. At the end it
//! checks that no increment was lost (each lock guards a plain, non-atomic
//! counter), no waiter was stranded (every thread joins within a bound after
//! one `notify_all`), and every lock is free; it prints how many of each
//! operation ran. Exits with status 1 on any failure.
//!
//! ```sh
//! cargo run --release --example stress                  # 16 threads, 5 s
//! cargo run --release --example stress -- --seconds 600 --threads 32 --seed 7
//! ```
//!
//! Options: `--seconds N` (default 5), `--threads N` (default 16),
//! `--seed N` (default: from the clock; printed, so a failure can be re-run).

use gilock::{Condition, FairMutex, Gil, GilCell, Lock, RLock, SwitchPolicy};
use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

/// How long the threads get to finish after the stop flag and one
/// `notify_all`: far more than any timeout used here.
const JOIN_BOUND: Duration = Duration::from_secs(30);

/// Capacity of the bounded queue.
const CAPACITY: usize = 8;

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

/// A counter that only a lock protects: plain reads and writes with a
/// pause in between, so two threads inside at once would lose updates.
struct Plain(UnsafeCell<u64>);

// SAFETY: every access goes through `bump`, whose callers hold the lock
// that guards this counter (see each call site).
unsafe impl Sync for Plain {}

impl Plain {
    const fn new() -> Self {
        Self(UnsafeCell::new(0))
    }

    /// # Safety
    /// The caller holds the lock that guards this counter.
    unsafe fn bump(&self) {
        // SAFETY: the caller holds the guarding lock.
        slow_increment(unsafe { &mut *self.0.get() });
    }

    fn get(&self) -> u64 {
        // SAFETY: read after every thread has joined.
        unsafe { *self.0.get() }
    }
}

/// `*v += 1` as a read, a pause and a write: a second thread inside the
/// critical section meanwhile makes one of the two increments vanish.
fn slow_increment(v: &mut u64) {
    let read = v as *mut u64;
    // SAFETY: `read` comes from a live `&mut`.
    unsafe {
        let old = std::ptr::read_volatile(read);
        for _ in 0..16 {
            std::hint::spin_loop();
        }
        std::ptr::write_volatile(read, old + 1);
    }
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
    /// Under the Gil: a `GilCell`, reached through the thread's guard (or
    /// a nested one), with the same slow read-pause-write.
    gil_count: GilCell<u64>,
    /// A bounded queue: FairMutex + two Conditions.
    queue: FairMutex<VecDeque<u64>>,
    not_empty: Condition,
    not_full: Condition,
    /// Waited on through a Lock, an RLock or the Gil.
    cond: Condition,
    /// Threads in an untimed queue wait, and how many may be: if every
    /// thread waited untimed for an item, nobody would produce one.
    untimed: AtomicUsize,
    max_untimed: usize,
}

/// What one thread did.
#[derive(Default, Clone, Copy)]
struct Counts {
    fair: u64,
    lock: u64,
    rlock: u64,
    gil: u64,
    produced: u64,
    consumed: u64,
    // Operation counts for the report.
    timeouts: u64,
    cond_waits: u64,
    cond_notified: u64,
    interrupts_sent: u64,
    interrupted: u64,
    detaches: u64,
    checkpoint_switches: u64,
    bumps: u64,
    ops: u64,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.fair += o.fair;
        self.lock += o.lock;
        self.rlock += o.rlock;
        self.gil += o.gil;
        self.produced += o.produced;
        self.consumed += o.consumed;
        self.timeouts += o.timeouts;
        self.cond_waits += o.cond_waits;
        self.cond_notified += o.cond_notified;
        self.interrupts_sent += o.interrupts_sent;
        self.interrupted += o.interrupted;
        self.detaches += o.detaches;
        self.checkpoint_switches += o.checkpoint_switches;
        self.bumps += o.bumps;
        self.ops += o.ops;
    }
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
    // SAFETY: only reads the drop-request bit.
    if unsafe { s.fair.raw() }.is_drop_requested() || rng.below(16) == 0 {
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

/// A place among the threads allowed an untimed queue wait.
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
        if step % 2 == 0 {
            slow_increment(&mut s.gil_count.borrow_mut(&guard));
        } else {
            slow_increment(&mut s.gil_count.borrow_mut(&s.gil.ensure()));
        }
        c.gil += 1;
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

fn interrupt_op(s: &Shared, rng: &mut Rng, c: &mut Counts) {
    let states = s.gil.thread_states();
    if !states.is_empty() {
        let i = rng.below(states.len() as u64) as usize;
        states[i].interrupt();
        c.interrupts_sent += 1;
    }
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
    // SAFETY: only sets the interval.
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
            0..=14 => fair_op(s, &mut rng, &mut c),
            15..=29 => lock_op(s, &mut rng, &mut c),
            30..=44 => rlock_op(s, &mut rng, &mut c),
            45..=64 => queue_op(s, &mut rng, &mut c, &mut next_item),
            65..=89 => gil_op(s, &mut rng, &mut c),
            90..=93 => interrupt_op(s, &mut rng, &mut c),
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

fn main() -> ExitCode {
    let (seconds, threads, seed) = parse_args();
    println!(
        "stress: {threads} threads for {seconds} s on {} CPUs, seed {seed}",
        thread::available_parallelism().map_or(0, |n| n.get())
    );
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
    // Stop: the flag under the queue's mutex (so no waiter checks it and
    // then misses the notify), then one notify_all per condition. A thread
    // that a lost wakeup stranded would not join.
    {
        let _queue = shared.queue.lock();
        shared.stop.store(true, Ordering::SeqCst);
    }
    shared.not_empty.notify_all();
    shared.not_full.notify_all();

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
        // Every increment landed exactly once.
        let checks = [
            ("FairMutex counter", *shared.fair.lock(), total.fair),
            ("Lock counter", shared.lock_count.get(), total.lock),
            ("RLock counter", shared.rlock_count.get(), total.rlock),
            (
                "Gil counter",
                *shared.gil_count.borrow(&shared.gil.acquire()),
                total.gil,
            ),
            (
                "queue items (consumed + left)",
                total.consumed + shared.queue.lock().len() as u64,
                total.produced,
            ),
        ];
        for (what, found, expected) in checks {
            if found != expected {
                failures.push(format!(
                    "{what}: {found}, expected {expected}: lost updates"
                ));
            }
        }
        // Every lock is free and no waiter is left.
        if shared.fair.is_locked() || shared.queue.is_locked() {
            failures.push("a FairMutex is still locked".into());
        }
        if shared.lock.locked() {
            failures.push("the Lock is still locked".into());
        }
        if shared.rlock.locked() {
            failures.push("the RLock is still locked".into());
        }
        if shared.gil.is_locked() {
            failures.push("the Gil is still locked".into());
        }
        for (name, cond) in [
            ("cond", &shared.cond),
            ("not_empty", &shared.not_empty),
            ("not_full", &shared.not_full),
        ] {
            let woken = cond.notify_all();
            if woken != 0 {
                failures.push(format!("{woken} waiter(s) still queued on {name}"));
            }
        }
        if !(shared.lock.try_acquire() && shared.lock.release().is_ok()) {
            failures.push("the Lock cannot be taken".into());
        }
        if !shared.rlock.try_acquire() || shared.rlock.release().is_err() {
            failures.push("the RLock cannot be taken".into());
        }
        if shared.gil.try_acquire().is_none() {
            failures.push("the Gil cannot be taken".into());
        }
        if shared.fair.try_lock().is_none() || shared.queue.try_lock().is_none() {
            failures.push("a FairMutex cannot be taken".into());
        }
    }

    let t = &total;
    println!(
        "ran {:.1} s: {} operations; increments: FairMutex {}, Lock {}, RLock {}, Gil {}",
        elapsed.as_secs_f64(),
        t.ops,
        t.fair,
        t.lock,
        t.rlock,
        t.gil
    );
    println!(
        "queue: {} produced, {} consumed; condition waits {} ({} notified); timeouts {}",
        t.produced, t.consumed, t.cond_waits, t.cond_notified, t.timeouts
    );
    println!(
        "interrupts: {} sent, {} seen; detaches {}; forced switches at checkpoints {}; bumps {}",
        t.interrupts_sent, t.interrupted, t.detaches, t.checkpoint_switches, t.bumps
    );
    println!("gil stats: {:?}", shared.gil.stats());
    if failures.is_empty() {
        println!("OK: no increment lost, no waiter stranded, every lock free");
        ExitCode::SUCCESS
    } else {
        for f in &failures {
            eprintln!("FAILED: {f}");
        }
        ExitCode::FAILURE
    }
}
