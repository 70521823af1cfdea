//! A real interpreter on gilock: scripts of the Rhai scripting engine run
//! on 4 OS threads that take turns on one `Gil`, as Python threads do.
//!
//! ```sh
//! cargo run --release --example rhai
//! ```
//!
//! - The Gil is taken by each thread before it runs a script and held
//!   while Rhai evaluates it. Rhai calls its progress callback
//!   (`Engine::on_progress`) between operations; the callback has no guard
//!   in hand, so it reaches the thread's attachment with
//!   `Gil::with_attached` and checkpoints: a thread that waited a switch
//!   interval gets the Gil there, so forced switches fall between Rhai
//!   operations (counted below).
//! - State shared by the scripts lives in `GilCell`s, borrowed through the
//!   guard that `with_attached` gives the native functions: a counter that
//!   every script increments (it must add up exactly), a second one that
//!   scripts update with a get and a set (two calls, so a switch in
//!   between loses updates, as `x = x + 1` does in Python), a third under
//!   a `gilock::Lock` taken with `acquire_with` (exact again: a thread
//!   that blocks on the lock lets go of the Gil, so its holder can run on
//!   to release it), and a board of Rhai values (`rhai::Map`).
//! - A native function that blocks (`sleep_ms`, standing for a read) runs
//!   detached: the other threads run meanwhile.
//!
//! Rhai's features: `sync`. Without it Rhai's values (`Dynamic`) and
//! compiled scripts (`AST`) hold `Rc`/`RefCell`, so they are not `Send`: a
//! `GilCell<rhai::Map>` would not be `Sync`, and one `Engine` and one
//! `AST` could not be shared by the threads, short of an `unsafe impl
//! Send` that would be unsound (two threads would touch one `Rc` count,
//! whatever lock is held, once a value escaped the lock). With `sync` they
//! are `Send + Sync` (`Arc`/`RwLock` inside), the registered closures must
//! be `Send + Sync` too, and the program needs no `unsafe` at all.
//! `only_i64` and `no_float` only keep the build small.

use gilock::{Gil, GilCell, Interrupted, Lock, ThreadStats};
use rhai::{Dynamic, Engine, EvalAltResult, Map, Scope};
use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::thread;
use std::time::{Duration, Instant};

/// How long the threads run scripts.
const RUN_FOR: Duration = Duration::from_secs(2);
/// Loop iterations per run of the CPU script.
const ITERATIONS: i64 = 2_000;
/// Sleeps per run of the I/O script.
const SLEEPS: i64 = 5;

/// What the scripts share, under the Gil.
struct Shared {
    gil: Gil,
    /// `incr()`: one native call per increment, exact.
    counter: GilCell<i64>,
    /// `racy_get()` then `racy_set(v)`: loses updates across switches.
    racy: GilCell<i64>,
    /// Updated between `lock()` and `unlock()`: exact.
    locked: GilCell<i64>,
    lock: Lock,
    /// `put(key, value)` / `get(key)`: Rhai values shared by all scripts.
    board: GilCell<Map>,
}

thread_local! {
    /// Checkpoints in the progress callback that switched, this thread.
    static SWITCHES: Cell<u64> = const { Cell::new(0) };
    /// Rhai operations, this thread (the progress callback's count).
    static OPS: Cell<u64> = const { Cell::new(0) };
    /// Native calls that ran detached, this thread.
    static DETACHED: Cell<u64> = const { Cell::new(0) };
}

type NativeResult<T> = Result<T, Box<EvalAltResult>>;

/// Runs `f` with the calling thread's Gil guard: native functions are
/// called by Rhai on a thread that holds the Gil, with no guard in hand.
fn attached<R>(shared: &Shared, f: impl FnOnce(&mut gilock::GilGuard<'_>) -> R) -> NativeResult<R> {
    shared
        .gil
        .with_attached(f)
        .ok_or_else(|| "a native function was called without the Gil".into())
}

fn engine(shared: &Arc<Shared>) -> Engine {
    let mut engine = Engine::new();
    // Between Rhai operations: the eval breaker, and a checkpoint if a
    // thread asked for the Gil (or an interrupt is pending, which ends the
    // script as KeyboardInterrupt would).
    let s = Arc::clone(shared);
    engine.on_progress(move |_ops| {
        OPS.with(|n| n.set(n.get() + 1));
        s.gil
            .with_attached(|guard| {
                if !guard.should_yield() {
                    return None;
                }
                let cp = guard.checkpoint();
                if cp.switched {
                    SWITCHES.with(|n| n.set(n.get() + 1));
                }
                cp.interrupted.then(|| Dynamic::from("KeyboardInterrupt"))
            })
            .flatten()
    });
    let s = Arc::clone(shared);
    engine.register_fn("incr", move || {
        attached(&s, |g| *s.counter.borrow_mut(g) += 1)
    });
    let s = Arc::clone(shared);
    engine.register_fn("racy_get", move || attached(&s, |g| *s.racy.borrow(g)));
    let s = Arc::clone(shared);
    engine.register_fn("racy_set", move |v: i64| {
        attached(&s, |g| *s.racy.borrow_mut(g) = v)
    });
    let s = Arc::clone(shared);
    engine.register_fn("lock", move || -> NativeResult<()> {
        attached(&s, |g| s.lock.acquire_with(g))?.map_err(|Interrupted| "KeyboardInterrupt".into())
    });
    let s = Arc::clone(shared);
    engine.register_fn("unlock", move || -> NativeResult<()> {
        s.lock.release().map_err(|e| e.to_string().into())
    });
    let s = Arc::clone(shared);
    engine.register_fn("locked_get", move || attached(&s, |g| *s.locked.borrow(g)));
    let s = Arc::clone(shared);
    engine.register_fn("locked_set", move |v: i64| {
        attached(&s, |g| *s.locked.borrow_mut(g) = v)
    });
    let s = Arc::clone(shared);
    engine.register_fn("put", move |key: &str, value: Dynamic| {
        attached(&s, |g| {
            s.board.borrow_mut(g).insert(key.into(), value);
        })
    });
    let s = Arc::clone(shared);
    engine.register_fn("get", move |key: &str| {
        attached(&s, |g| {
            s.board.borrow(g).get(key).cloned().unwrap_or(Dynamic::UNIT)
        })
    });
    // Blocking work without the Gil. (The closure captures only a
    // Duration: `detach` takes `Send` closures, so no guard or GilCell
    // borrow could be carried into it.)
    let s = Arc::clone(shared);
    engine.register_fn("sleep_ms", move |ms: i64| {
        let pause = Duration::from_millis(ms.clamp(0, 1000) as u64);
        DETACHED.with(|n| n.set(n.get() + 1));
        attached(&s, |g| g.detach(|| thread::sleep(pause)))
    });
    engine.register_fn("thread_name", || {
        thread::current().name().unwrap_or("?").to_string()
    });
    engine
}

const CPU_SCRIPT: &str = r#"
    let sum = 0;
    for i in 0..ITERATIONS {
        incr();                         // exact: one native call
        let v = racy_get();             // a switch may fall here...
        racy_set(v + 1);                // ...and this store is stale
        if i % 10 == 0 {
            lock();                     // threading.Lock, Gil released if it must wait
            let w = locked_get();
            locked_set(w + 1);          // exact: under the lock
            unlock();
        }
        sum += i;
    }
    put(thread_name(), sum);
"#;

const IO_SCRIPT: &str = r#"
    for i in 0..SLEEPS {
        sleep_ms(1);                    // blocking, detached
        incr();
    }
    let seen = get("cpu-0");            // what another thread put on the board
    put(thread_name(), if seen == () { 0 } else { seen });
"#;

/// What one thread reports.
struct Report {
    name: String,
    script: &'static str,
    runs: i64,
    ops: u64,
    switches: u64,
    detached: u64,
    stats: ThreadStats,
}

fn main() {
    let shared = Arc::new(Shared {
        gil: Gil::new(),
        counter: GilCell::new(0),
        racy: GilCell::new(0),
        locked: GilCell::new(0),
        lock: Lock::new(),
        board: GilCell::new(Map::new()),
    });
    let engine = Arc::new(engine(&shared));
    let cpu = Arc::new(engine.compile(CPU_SCRIPT).expect("the CPU script compiles"));
    let io = Arc::new(engine.compile(IO_SCRIPT).expect("the I/O script compiles"));
    let stop = Arc::new(AtomicBool::new(false));
    println!(
        "4 threads run Rhai scripts under one gilock::Gil for {:.1} s: 3 CPU-bound ({ITERATIONS} \
         loop iterations a run), 1 sleeping ({SLEEPS} x 1 ms detached a run)\n",
        RUN_FOR.as_secs_f64()
    );

    let started = Instant::now();
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let (shared, engine, stop) = (shared.clone(), engine.clone(), stop.clone());
            let (name, script, ast) = if i < 3 {
                (format!("cpu-{i}"), "cpu", cpu.clone())
            } else {
                ("io-0".to_string(), "io", io.clone())
            };
            thread::Builder::new()
                .name(name.clone())
                .spawn(move || {
                    let mut scope = Scope::new();
                    scope.push_constant("ITERATIONS", ITERATIONS);
                    scope.push_constant("SLEEPS", SLEEPS);
                    let mut runs = 0;
                    let guard = shared.gil.acquire();
                    while !stop.load(Relaxed) {
                        // Rhai runs with the Gil held: `guard` stays alive,
                        // and what runs inside reaches it with
                        // `with_attached`.
                        engine
                            .run_ast_with_scope(&mut scope, &ast)
                            .unwrap_or_else(|e| panic!("{name}: {e}"));
                        runs += 1;
                    }
                    let stats = guard.thread_state().stats();
                    drop(guard);
                    Report {
                        name,
                        script,
                        runs,
                        ops: OPS.with(Cell::get),
                        switches: SWITCHES.with(Cell::get),
                        detached: DETACHED.with(Cell::get),
                        stats,
                    }
                })
                .expect("spawn a script thread")
        })
        .collect();
    thread::sleep(RUN_FOR);
    stop.store(true, Relaxed);
    let reports: Vec<Report> = threads
        .into_iter()
        .map(|t| t.join().expect("a script thread panicked"))
        .collect();
    let elapsed = started.elapsed();

    println!(
        "{:<6} {:<6} {:>6} {:>11} {:>9} {:>9} {:>9} {:>10} {:>9}",
        "thread",
        "script",
        "runs",
        "rhai ops",
        "forced",
        "detached",
        "acquired",
        "wait mean",
        "wait max"
    );
    for r in &reports {
        println!(
            "{:<6} {:<6} {:>6} {:>11} {:>9} {:>9} {:>9} {:>7.3} ms {:>6.2} ms",
            r.name,
            r.script,
            r.runs,
            r.ops,
            r.switches,
            r.detached,
            r.stats.acquisitions,
            r.stats.mean_wait().as_secs_f64() * 1e3,
            r.stats.longest_wait.as_secs_f64() * 1e3,
        );
    }
    let gil_stats = shared.gil.stats();
    let ops: u64 = reports.iter().map(|r| r.ops).sum();
    println!(
        "\n{} Rhai operations in {:.2} s ({:.1} M/s, one thread at a time); Gil: {} switches, {} \
         forced between Rhai operations",
        ops,
        elapsed.as_secs_f64(),
        ops as f64 / elapsed.as_secs_f64() / 1e6,
        gil_stats.switches,
        gil_stats.forced_switches,
    );

    // The integrity check: every increment of the exact counters is there.
    let cpu_runs: i64 = reports
        .iter()
        .filter(|r| r.script == "cpu")
        .map(|r| r.runs)
        .sum();
    let io_runs: i64 = reports
        .iter()
        .filter(|r| r.script == "io")
        .map(|r| r.runs)
        .sum();
    let guard = shared.gil.acquire();
    let counter = *shared.counter.borrow(&guard);
    let locked = *shared.locked.borrow(&guard);
    let racy = *shared.racy.borrow(&guard);
    let board = shared.board.borrow(&guard).len();
    drop(guard);
    let want_counter = cpu_runs * ITERATIONS + io_runs * SLEEPS;
    let want_locked = cpu_runs * ((ITERATIONS + 9) / 10);
    let want_racy = cpu_runs * ITERATIONS;
    println!(
        "racy (get, then set: two calls): {racy} of {want_racy} kept, {} lost to switches in \
         between (expected, as in Python)",
        want_racy - racy
    );
    if counter == want_counter && locked == want_locked && board == reports.len() {
        println!(
            "integrity: OK — counter = {counter} (= {cpu_runs} CPU runs x {ITERATIONS} + \
             {io_runs} I/O runs x {SLEEPS}), locked = {locked}, {board} entries on the board"
        );
    } else {
        println!(
            "integrity: FAILED — counter {counter} (want {want_counter}), locked {locked} \
             (want {want_locked}), board {board} entries (want {})",
            reports.len()
        );
        std::process::exit(1);
    }
}
