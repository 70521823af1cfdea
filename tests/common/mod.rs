//! What every integration test file needs: bounded joins (a deadlock fails
//! the test instead of hanging it) and the clock and thread identity that the
//! no-std build takes from the user.
#![allow(dead_code)] // each test file uses its own subset

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Far beyond any mechanism under test; reached only by a deadlock. Under
/// Miri, longer: whenever every thread is blocked its clock jumps to the
/// next timeout (a contended `FairMutex` or Gil waiter parks one switch
/// interval at a time), so its time runs far ahead of the work done.
pub const BOUND: Duration = Duration::from_secs(if cfg!(miri) { 120 } else { 10 });

/// Installs the clock and thread identity the no-std build needs (a no-op
/// with `std`).
pub fn setup() {
    #[cfg(not(feature = "std"))]
    {
        use std::num::NonZeroU64;
        use std::sync::OnceLock;
        use std::sync::atomic::{AtomicU64, Ordering};
        static START: OnceLock<Instant> = OnceLock::new();
        static NEXT: AtomicU64 = AtomicU64::new(1);
        START.get_or_init(Instant::now);
        gilock::set_clock(|| START.get().unwrap().elapsed());
        std::thread_local!(static ID: NonZeroU64 =
            NonZeroU64::new(NEXT.fetch_add(1, Ordering::Relaxed)).unwrap());
        gilock::set_thread_id_source(|| ID.with(|id| *id));
    }
}

/// A thread whose `join` waits at most [`BOUND`].
pub struct Bounded<T> {
    rx: mpsc::Receiver<thread::Result<T>>,
}

/// Runs `f` on a new thread.
pub fn spawn<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Bounded<T> {
    spawn_named(None, f)
}

/// Runs `f` on a new thread with the given std thread name.
pub fn spawn_named<T: Send + 'static>(
    name: Option<&str>,
    f: impl FnOnce() -> T + Send + 'static,
) -> Bounded<T> {
    let (tx, rx) = mpsc::channel();
    let mut builder = thread::Builder::new();
    if let Some(name) = name {
        builder = builder.name(name.to_string());
    }
    builder
        .spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            let _ = tx.send(result);
        })
        .expect("spawn a test thread");
    Bounded { rx }
}

impl<T> Bounded<T> {
    /// The thread's result or its panic payload; fails after [`BOUND`].
    pub fn outcome(self) -> thread::Result<T> {
        match self.rx.recv_timeout(BOUND) {
            Ok(result) => result,
            Err(_) => panic!("thread did not finish within {BOUND:?}: deadlock?"),
        }
    }

    /// The thread's result; its panic is resumed here; fails after [`BOUND`].
    pub fn join(self) -> T {
        match self.outcome() {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    /// Whether the thread finished within `d` (its result is dropped).
    pub fn finished_within(&self, d: Duration) -> bool {
        self.rx.recv_timeout(d).is_ok()
    }
}

/// Polls `cond` until it holds; fails the test after [`BOUND`].
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < BOUND, "timed out waiting until {what}");
        thread::sleep(Duration::from_micros(200));
    }
}

/// Waits until the thread of `state` is queued in a Gil-releasing wait
/// (`acquire_with`, `wait_with`, ...): it shows `Waiting` from the moment it
/// joins the primitive's queue.
pub fn wait_until_queued(state: &gilock::ThreadState) {
    wait_until("the waiter is queued", || {
        state.status() == gilock::ThreadStatus::Waiting
    });
}

/// Spawns a CPU-bound interpreter thread: it takes the free `gil` and runs
/// checkpoints until `stop` is set. Returns once it holds the Gil.
pub fn spawn_cpu_bound(
    gil: &std::sync::Arc<gilock::Gil>,
    stop: &std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Bounded<()> {
    let (gil, stop) = (gil.clone(), stop.clone());
    let held = gil.clone();
    let thread = spawn(move || {
        let mut guard = gil.acquire();
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            std::hint::black_box(0u64);
            guard.checkpoint();
        }
    });
    wait_until("the CPU-bound thread holds the Gil", || held.is_locked());
    thread
}
