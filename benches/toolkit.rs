//! `Event` and `Semaphore` side by side with the closest constructions on
//! std and parking_lot, in one process, one table of ratios.
//!
//! ```sh
//! cargo bench --bench toolkit                  # about 5 s
//! GILOCK_BENCH_SECS=2 cargo bench --bench toolkit
//! cargo bench --bench toolkit -- --secs 0.1    # the same, as an argument
//! ```
//!
//! Scenarios:
//! - Event handoff: two threads pass a turn back and forth through two
//!   events (set the other's, wait for and clear one's own); round trips
//!   per second for `gilock::Event` and for an event made of a
//!   `Mutex<bool>` and a `Condvar` (parking_lot, std) — the closest
//!   construction those crates offer;
//! - Semaphore handoff: the same through two semaphores of zero permits
//!   (release the other's, acquire one's own), `gilock::Semaphore` vs a
//!   `Mutex<usize>` + `Condvar` semaphore (parking_lot, std);
//! - uncontended `acquire` + `release` of a semaphore on one thread, ns.
//!
//! Each figure is the median of several rounds. Numbers taken while other
//! processes compete for the 2 CPUs are indicative only.

use std::hint::black_box;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// How long each measured round runs, from `--secs` or `GILOCK_BENCH_SECS`
/// (total seconds per figure); short by default.
fn budget() -> Duration {
    let mut args = std::env::args().skip_while(|a| a != "--secs");
    let from_arg = args.nth(1).and_then(|s| s.parse::<f64>().ok());
    let from_env = std::env::var("GILOCK_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok());
    Duration::from_secs_f64(from_arg.or(from_env).unwrap_or(0.4))
}

const ROUNDS: u32 = 5;

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    xs[xs.len() / 2]
}

/// An event: a flag threads wait for.
trait EventLike: Send + Sync + 'static {
    const NAME: &'static str;
    fn new() -> Self;
    fn set(&self);
    fn wait(&self);
    fn clear(&self);
}

impl EventLike for gilock::Event {
    const NAME: &'static str = "gilock::Event";
    fn new() -> Self {
        gilock::Event::new()
    }
    fn set(&self) {
        gilock::Event::set(self);
    }
    fn wait(&self) {
        gilock::Event::wait(self);
    }
    fn clear(&self) {
        gilock::Event::clear(self);
    }
}

macro_rules! condvar_event {
    ($name:ident, $label:expr, $mutex:ty, $condvar:ty, |$m:ident| $lock:expr) => {
        struct $name {
            flag: $mutex,
            cond: $condvar,
        }
        impl EventLike for $name {
            const NAME: &'static str = $label;
            fn new() -> Self {
                Self {
                    flag: <$mutex>::new(false),
                    cond: <$condvar>::new(),
                }
            }
            fn set(&self) {
                let $m = &self.flag;
                let mut g = $lock;
                *g = true;
                self.cond.notify_all();
            }
            fn wait(&self) {
                let $m = &self.flag;
                let mut g = $lock;
                while !*g {
                    condvar_event!(@wait self.cond, g);
                }
            }
            fn clear(&self) {
                let $m = &self.flag;
                *$lock = false;
            }
        }
    };
    (@wait $cond:expr, $g:ident) => {
        $g = wait_any(&$cond, $g)
    };
}

/// One condvar wait, for either crate's guard type.
trait WaitAny<G> {
    fn wait_any(&self, guard: G) -> G;
}

impl<'a, T> WaitAny<parking_lot::MutexGuard<'a, T>> for parking_lot::Condvar {
    fn wait_any(
        &self,
        mut guard: parking_lot::MutexGuard<'a, T>,
    ) -> parking_lot::MutexGuard<'a, T> {
        self.wait(&mut guard);
        guard
    }
}

impl<'a, T> WaitAny<std::sync::MutexGuard<'a, T>> for std::sync::Condvar {
    fn wait_any(&self, guard: std::sync::MutexGuard<'a, T>) -> std::sync::MutexGuard<'a, T> {
        self.wait(guard).unwrap()
    }
}

fn wait_any<G, C: WaitAny<G>>(cond: &C, guard: G) -> G {
    cond.wait_any(guard)
}

condvar_event!(
    PlEvent,
    "parking_lot Mutex<bool> + Condvar",
    parking_lot::Mutex<bool>,
    parking_lot::Condvar,
    |m| m.lock()
);
condvar_event!(
    StdEvent,
    "std Mutex<bool> + Condvar",
    std::sync::Mutex<bool>,
    std::sync::Condvar,
    |m| m.lock().unwrap()
);

/// A counting semaphore.
trait SemaphoreLike: Send + Sync + 'static {
    const NAME: &'static str;
    fn new(permits: usize) -> Self;
    fn acquire(&self);
    fn release(&self);
}

impl SemaphoreLike for gilock::Semaphore {
    const NAME: &'static str = "gilock::Semaphore";
    fn new(permits: usize) -> Self {
        gilock::Semaphore::new(permits)
    }
    fn acquire(&self) {
        gilock::Semaphore::acquire(self);
    }
    fn release(&self) {
        gilock::Semaphore::release_one(self);
    }
}

macro_rules! condvar_semaphore {
    ($name:ident, $label:expr, $mutex:ty, $condvar:ty, |$m:ident| $lock:expr) => {
        struct $name {
            permits: $mutex,
            cond: $condvar,
        }
        impl SemaphoreLike for $name {
            const NAME: &'static str = $label;
            fn new(permits: usize) -> Self {
                Self {
                    permits: <$mutex>::new(permits),
                    cond: <$condvar>::new(),
                }
            }
            fn acquire(&self) {
                let $m = &self.permits;
                let mut g = $lock;
                while *g == 0 {
                    g = wait_any(&self.cond, g);
                }
                *g -= 1;
            }
            fn release(&self) {
                let $m = &self.permits;
                *$lock += 1;
                self.cond.notify_one();
            }
        }
    };
}

condvar_semaphore!(
    PlSemaphore,
    "parking_lot Mutex<usize> + Condvar",
    parking_lot::Mutex<usize>,
    parking_lot::Condvar,
    |m| m.lock()
);
condvar_semaphore!(
    StdSemaphore,
    "std Mutex<usize> + Condvar",
    std::sync::Mutex<usize>,
    std::sync::Condvar,
    |m| m.lock().unwrap()
);

/// Round trips per second of a turn passed back and forth between two
/// threads through two primitives, `send` handing the turn over one of
/// them and `recv` waiting for it.
fn round_trips<P: Send + Sync + 'static>(
    budget: Duration,
    make: impl Fn() -> P,
    send: fn(&P),
    recv: fn(&P),
) -> f64 {
    use std::sync::atomic::{AtomicBool, Ordering};
    let per_round = budget / ROUNDS;
    let rates = (0..ROUNDS)
        .map(|_| {
            let pair = Arc::new((make(), make()));
            let stop = Arc::new(AtomicBool::new(false));
            let other = {
                let (pair, stop) = (pair.clone(), stop.clone());
                thread::spawn(move || {
                    loop {
                        recv(&pair.0);
                        // Set before the last turn was handed over, so
                        // seen with it; never seen earlier.
                        let last = stop.load(Ordering::Relaxed);
                        send(&pair.1);
                        if last {
                            break;
                        }
                    }
                })
            };
            let start = Instant::now();
            let mut trips = 0u64;
            while start.elapsed() < per_round {
                for _ in 0..64 {
                    send(&pair.0);
                    recv(&pair.1);
                }
                trips += 64;
            }
            let rate = trips as f64 / start.elapsed().as_secs_f64();
            stop.store(true, Ordering::Relaxed);
            send(&pair.0);
            recv(&pair.1);
            other.join().unwrap();
            rate
        })
        .collect();
    median(rates)
}

fn event_handoff<E: EventLike>(budget: Duration) -> f64 {
    round_trips(budget, E::new, E::set, |e| {
        e.wait();
        e.clear();
    })
}

fn semaphore_handoff<S: SemaphoreLike>(budget: Duration) -> f64 {
    round_trips(budget, || S::new(0), S::release, S::acquire)
}

/// ns per uncontended acquire + release.
fn uncontended<S: SemaphoreLike>(budget: Duration) -> f64 {
    let per_round = budget / ROUNDS;
    let sem = S::new(1);
    let times = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            let mut n = 0u64;
            while start.elapsed() < per_round {
                for _ in 0..1024 {
                    black_box(&sem).acquire();
                    black_box(&sem).release();
                }
                n += 1024;
            }
            start.elapsed().as_nanos() as f64 / n as f64
        })
        .collect();
    median(times)
}

fn main() {
    let budget = budget();
    println!("gilock toolkit bench ({budget:?} per figure, median of {ROUNDS} rounds)\n");

    println!("Event set/wait handoff, 2 threads (round trips/s; ratio to parking_lot):");
    let rows = [
        (gilock::Event::NAME, event_handoff::<gilock::Event>(budget)),
        (PlEvent::NAME, event_handoff::<PlEvent>(budget)),
        (StdEvent::NAME, event_handoff::<StdEvent>(budget)),
    ];
    let peer = rows[1].1;
    for (name, rate) in rows {
        println!(
            "  {name:36} {rate:>10.0}/s  {:>6.1} us/trip  {:.2}x",
            1e6 / rate,
            rate / peer
        );
    }

    println!(
        "\nSemaphore release/acquire handoff, 2 threads (round trips/s; ratio to parking_lot):"
    );
    let rows = [
        (
            gilock::Semaphore::NAME,
            semaphore_handoff::<gilock::Semaphore>(budget),
        ),
        (PlSemaphore::NAME, semaphore_handoff::<PlSemaphore>(budget)),
        (
            StdSemaphore::NAME,
            semaphore_handoff::<StdSemaphore>(budget),
        ),
    ];
    let peer = rows[1].1;
    for (name, rate) in rows {
        println!(
            "  {name:36} {rate:>10.0}/s  {:>6.1} us/trip  {:.2}x",
            1e6 / rate,
            rate / peer
        );
    }

    println!("\nSemaphore uncontended acquire+release, 1 thread (ns; ratio to parking_lot):");
    let rows = [
        (
            gilock::Semaphore::NAME,
            uncontended::<gilock::Semaphore>(budget),
        ),
        (PlSemaphore::NAME, uncontended::<PlSemaphore>(budget)),
        (StdSemaphore::NAME, uncontended::<StdSemaphore>(budget)),
    ];
    let peer = rows[1].1;
    for (name, ns) in rows {
        println!("  {name:36} {ns:>8.1} ns  {:.2}x", ns / peer);
    }
}
