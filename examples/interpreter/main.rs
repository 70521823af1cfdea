//! The main demo: a small bytecode interpreter whose threads take turns on
//! one `gilock::Gil`, as CPython's threads do.
//!
//! ```sh
//! cargo run --release --example interpreter
//! cargo run --release --example interpreter -- --threads 4 --io-threads 2 --seconds 3
//! cargo run --release --example interpreter -- --help
//! ```
//!
//! CPU-bound threads run a counting loop that updates shared globals and the
//! refcount of a shared object with plain (non-atomic) read-modify-writes,
//! each within one instruction; only the Gil keeps those updates from being
//! lost. One more global is updated over three instructions, like Python's
//! `x = x + 1`, and does lose updates when a switch falls in between: a Gil
//! makes instructions atomic, not sequences of them (CPython's neither).
//! I/O-bound threads do blocking round trips to a loopback "device" with the
//! Gil released (`GilGuard::detach`). The VM polls the eval breaker at every
//! instruction and switches when another thread asked for the Gil.
//!
//! The shared state is a `gilock::GilCell` (no `unsafe` anywhere), and the
//! VM's `threading` module (Lock, RLock, Condition, Semaphore, Event) is
//! built on gilock's `_with` forms. With `--threading`, CPU threads also
//! update counters under a `threading.Lock` and an `RLock` (exact, where
//! `racy` is not), and a producer and a consumer thread pass items through
//! a bounded queue made as Python's `queue.Queue` is (RLock, Condition,
//! Semaphore, Event). `--scenario interrupt` shows a thread
//! blocked in `Lock.acquire()` being interrupted, by a timer and by
//! Ctrl-C (SIGINT, through `gilock::signal::SigintBridge`), while CPU
//! threads run, and prints how long each interrupt took to reach it.
//!
//! The run prints progress once a second, then a per-thread table, the Gil's
//! statistics, an integrity check of the shared state (exit code 1 if it
//! fails) and histograms of how long threads waited for the Gil, and a
//! contention table from the library's own statistics. `--trace FILE` records
//! the Gil's timeline (every thread's holding and waiting spans) through an
//! event hook and writes it as Chrome trace-event JSON for Perfetto.

mod args;
mod interrupt;
mod report;
mod vm;

use args::{Args, Command, Policy, Scenario};
use gilock::{Gil, SwitchPolicy, ThreadStats, TraceRecorder};
use report::{ContentionRow, Row, contention_table, histogram, ms, si, table};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::thread;
use std::time::{Duration, Instant};
use vm::{Device, Interp, Vm, Waits};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Cpu,
    Io,
    Producer,
    Consumer,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Cpu => "cpu",
            Kind::Io => "io",
            Kind::Producer => "put",
            Kind::Consumer => "get",
        }
    }
}

/// How the consumer keeps in step with the producer: it starts a run only
/// once the producer has started the same run, so that it never waits for
/// items that will not come.
#[derive(Default)]
struct QueueRuns {
    started: AtomicU64,
    finished: AtomicBool,
}

/// What a VM thread hands back when it stops.
struct Finished {
    name: String,
    kind: Kind,
    ops: u64,
    runs: u64,
    waits: Waits,
    acquisitions: u64,
    forced_releases: u64,
    voluntary_releases: u64,
    /// The library's counters for this thread.
    stats: ThreadStats,
}

/// Counters a VM thread publishes for the progress line. Updated once per
/// program run, so the main thread's reads cost the VM nothing measurable.
#[derive(Default)]
struct Live {
    ops: AtomicU64,
    io_round_trips: AtomicU64,
}

fn main() -> ExitCode {
    let args = match args::parse(std::env::args().skip(1)) {
        Ok(Command::Run(a)) => a,
        Ok(Command::Help) => {
            println!("{}", args::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("error: {msg}");
            return ExitCode::from(2);
        }
    };
    let result = match args.scenario {
        Scenario::Main => run(&args),
        Scenario::Interrupt => interrupt::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("{msg}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let gil = Gil::with_switch_interval(args.switch_interval);
    gil.set_policy(match args.policy {
        Policy::Fifo => SwitchPolicy::Fifo,
        Policy::Interactive => SwitchPolicy::Interactive,
    });
    let interp = Interp::new(gil);
    // The recorder is registered before any VM thread starts, so every
    // thread's whole timeline is in the trace.
    let recorder = args.trace.as_ref().map(|_| {
        let recorder = TraceRecorder::new();
        interp.gil.set_event_hook(Some(recorder.hook()));
        recorder
    });
    let cpu_code = vm::cpu_program(args.threading);
    let io_code = vm::io_program();
    let producer_code = vm::producer_program();
    let consumer_code = vm::consumer_program();

    println!(
        "{} CPU thread(s) + {} I/O thread(s) share one Gil: switch interval {:.3} ms, policy {:?}, \
         {:.1} s; I/O = loopback round trip with {:.3} ms device latency",
        args.cpu_threads,
        args.io_threads,
        ms(args.switch_interval),
        args.policy,
        args.run_for.as_secs_f64(),
        ms(args.io_latency),
    );
    println!(
        "programs: cpu loop ({} instructions), io loop ({}){}\n",
        cpu_code.len(),
        io_code.len(),
        if args.threading {
            format!(
                ", producer ({}) and consumer ({}) on a queue of {} (RLock, Condition, Semaphore, Event)",
                producer_code.len(),
                consumer_code.len(),
                vm::QUEUE_CAPACITY
            )
        } else {
            String::new()
        }
    );

    // One loopback connection per I/O thread, each served by a device thread
    // that never touches the Gil (it stands for the kernel and the network).
    let mut devices = Vec::new();
    let mut device_ends = Vec::new();
    for _ in 0..args.io_threads {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
        let client = TcpStream::connect(listener.local_addr().map_err(|e| e.to_string())?)
            .map_err(|e| format!("connect: {e}"))?;
        let (server, _) = listener.accept().map_err(|e| format!("accept: {e}"))?;
        // One-byte requests and 8-byte replies: without NODELAY, Nagle's
        // algorithm and delayed ACKs would add tens of ms per round trip.
        client.set_nodelay(true).map_err(|e| e.to_string())?;
        server.set_nodelay(true).map_err(|e| e.to_string())?;
        devices.push(Device::new(client));
        device_ends.push(server);
    }

    let stop = AtomicBool::new(false);
    let queue_runs = QueueRuns::default();
    let n_threads = args.cpu_threads + args.io_threads + if args.threading { 2 } else { 0 };
    let live: Vec<Live> = (0..n_threads).map(|_| Live::default()).collect();

    let started = Instant::now();
    let finished: Vec<Finished> = thread::scope(|s| {
        for end in device_ends {
            let latency = args.io_latency;
            thread::Builder::new()
                .name("device".into())
                .spawn_scoped(s, move || vm::serve_device(end, latency))
                .expect("spawn device thread");
        }
        let mut devices = devices.into_iter();
        let mut handles = Vec::new();
        for (i, live) in live.iter().enumerate() {
            let (kind, name, code, device) = if i < args.cpu_threads {
                (Kind::Cpu, format!("cpu-{i}"), &cpu_code, None)
            } else if i < args.cpu_threads + args.io_threads {
                let j = i - args.cpu_threads;
                (Kind::Io, format!("io-{j}"), &io_code, devices.next())
            } else if i == args.cpu_threads + args.io_threads {
                (Kind::Producer, "producer".into(), &producer_code, None)
            } else {
                (Kind::Consumer, "consumer".into(), &consumer_code, None)
            };
            let (interp, stop, queue_runs) = (&interp, &stop, &queue_runs);
            let h = thread::Builder::new()
                .name(name.clone())
                .spawn_scoped(s, move || {
                    vm_thread(interp, name, kind, code, device, stop, live, queue_runs)
                })
                .expect("spawn VM thread");
            handles.push(h);
        }

        progress(&interp.gil, &live, args.run_for);
        stop.store(true, Relaxed);
        // Dropping each Device (when its VM thread returns) closes the
        // client end, which ends the device thread.
        handles
            .into_iter()
            .map(|h| h.join().expect("VM thread panicked"))
            .collect()
    });
    // Threads finish the program run they are in after the stop flag, so
    // rates use the time until the last one returned.
    let elapsed = started.elapsed();
    if let (Some(recorder), Some(path)) = (&recorder, &args.trace) {
        interp.gil.set_event_hook(None);
        recorder
            .write_to_file(path)
            .map_err(|e| format!("--trace {}: {e}", path.display()))?;
        println!(
            "\ntrace: {} spans written to {} (open it in https://ui.perfetto.dev or chrome://tracing)",
            recorder.spans().len(),
            path.display()
        );
    }

    // Per-thread table.
    println!();
    let rows: Vec<Row> = finished
        .iter()
        .map(|f| {
            let mut waits = f.waits.samples.clone();
            waits.sort();
            Row {
                name: f.name.clone(),
                kind: f.kind.label(),
                ops: f.ops,
                acquisitions: f.acquisitions,
                forced: f.forced_releases,
                voluntary: f.voluntary_releases,
                waits,
            }
        })
        .collect();
    table(&rows);
    // Cross-check the library's counters against what the VM saw itself.
    for f in &finished {
        if f.forced_releases != f.waits.forced_switches {
            println!(
                "  note: {}: ThreadStats says {} forced releases, the VM saw {} switching checkpoints",
                f.name, f.forced_releases, f.waits.forced_switches
            );
        }
    }
    println!(
        "  (waits: cpu = checkpoint -> Gil back after a forced switch; io = I/O done -> Gil back)"
    );

    let total_ops: u64 = finished.iter().map(|f| f.ops).sum();
    let st = interp.gil.stats();
    let secs = elapsed.as_secs_f64();
    println!(
        "\nall threads: {} ops, {}/s",
        total_ops,
        si(total_ops as f64 / secs)
    );
    println!(
        "Gil: {} acquisitions, {} switches ({:.0}/s; 1/interval = {:.0}/s), {} forced, \
         {} drop requests, total wait {:.1} ms",
        st.acquisitions,
        st.switches,
        st.switches as f64 / secs,
        1.0 / args.switch_interval.as_secs_f64(),
        st.forced_switches,
        st.drop_requests,
        ms(st.total_wait),
    );

    // The library's own view of contention: per thread, then the Gil's.
    println!("\ncontention (gilock's ThreadStats / GilStats):");
    let contention: Vec<ContentionRow> = finished
        .iter()
        .map(|f| ContentionRow {
            name: f.name.clone(),
            stats: f.stats,
        })
        .collect();
    contention_table(&contention, elapsed);
    print!("{st}");

    let state = interp.into_state();
    let integrity = check_integrity(&state, &finished, args.threading);
    match &integrity {
        Ok(msg) => println!("integrity: OK — {msg}"),
        Err(msg) => println!("integrity: FAILED — {msg}"),
    }
    // Not part of the check: `racy` is updated over three instructions, and
    // a Gil (CPython's too) makes single instructions atomic, not sequences.
    let increments = runs_of(&finished, Kind::Cpu) as i64 * vm::CPU_BATCH;
    let racy = state.globals[vm::G_RACY];
    println!(
        "racy = racy + 1 (3 instructions): {racy} of {increments} increments kept; {} lost to \
         switches between LOAD_GLOBAL and STORE_GLOBAL, as in CPython (expected)",
        increments - racy
    );

    println!();
    let interval = ms(args.switch_interval);
    let cpu: Vec<Duration> = samples_of(&finished, Kind::Cpu);
    let io: Vec<Duration> = samples_of(&finished, Kind::Io);
    if args.cpu_threads > 0 {
        histogram(
            &format!("CPU threads: wait for the Gil after a forced switch, interval {interval} ms"),
            &cpu,
        );
    }
    if args.io_threads > 0 {
        println!();
        histogram(
            &format!(
                "I/O threads: wait for the Gil after each blocking call, interval {interval} ms"
            ),
            &io,
        );
    }
    println!();
    match args.policy {
        Policy::Fifo => println!(
            "Fifo serves waiters in arrival order: a thread waits about one interval per CPU-bound \
             thread ahead of it, and an I/O thread queues behind them too (the convoy effect; \
             compare --policy interactive)."
        ),
        Policy::Interactive => println!(
            "Interactive shares the Gil by time: a thread coming back from I/O is owed its share, \
             asks for the Gil at once and the CPU-bound holder lends it, getting it back at that \
             thread's next blocking call: its wait is about one checkpoint, not a queue of \
             intervals, and the CPU-bound threads still take turns every interval."
        ),
    }
    integrity
        .map(|_| ())
        .map_err(|_| "integrity check failed".to_string())
}

fn runs_of(finished: &[Finished], kind: Kind) -> u64 {
    finished
        .iter()
        .filter(|f| f.kind == kind)
        .map(|f| f.runs)
        .sum()
}

fn samples_of(finished: &[Finished], kind: Kind) -> Vec<Duration> {
    finished
        .iter()
        .filter(|f| f.kind == kind)
        .flat_map(|f| f.waits.samples.iter().copied())
        .collect()
}

/// One VM thread: take the Gil, run the program again and again until told
/// to stop (checked between runs, so every run completes and the work done
/// is exactly runs × what one run adds).
#[allow(clippy::too_many_arguments)]
fn vm_thread(
    interp: &Interp,
    name: String,
    kind: Kind,
    code: &[vm::Op],
    mut device: Option<Device>,
    stop: &AtomicBool,
    live: &Live,
    queue_runs: &QueueRuns,
) -> Finished {
    let mut vm = Vm::new(code);
    let mut waits = Waits::default();
    let mut runs = 0u64;
    let mut guard = interp.gil.acquire();
    loop {
        match kind {
            Kind::Producer if stop.load(Relaxed) => {
                queue_runs.finished.store(true, Relaxed);
                break;
            }
            Kind::Producer => {
                queue_runs.started.fetch_add(1, Relaxed);
            }
            Kind::Consumer if runs < queue_runs.started.load(Relaxed) => {}
            Kind::Consumer if queue_runs.finished.load(Relaxed) => break,
            Kind::Consumer => {
                // The producer has not started its next run yet.
                guard.detach(thread::yield_now);
                continue;
            }
            _ if stop.load(Relaxed) => break,
            _ => {}
        }
        let before = vm.ops;
        if let Err(raised) = vm.run(interp, &mut guard, device.as_mut(), &mut waits) {
            panic!("{name}: uncaught {raised}");
        }
        runs += 1;
        live.ops.fetch_add(vm.ops - before, Relaxed);
        if kind == Kind::Io {
            live.io_round_trips.fetch_add(vm::IO_BATCH as u64, Relaxed);
        }
    }
    // Read the library's per-thread statistics while still attached.
    let stats = guard.thread_state().stats();
    drop(guard);
    Finished {
        name,
        kind,
        ops: vm.ops,
        runs,
        waits,
        acquisitions: stats.acquisitions,
        forced_releases: stats.forced_releases,
        voluntary_releases: stats.voluntary_releases,
        stats,
    }
}

/// Prints one line per second until `run_for` has passed.
fn progress(gil: &Gil, live: &[Live], run_for: Duration) {
    let start = Instant::now();
    let mut last = (start, 0u64, gil.stats(), 0u64);
    let sum_ops = || live.iter().map(|l| l.ops.load(Relaxed)).sum::<u64>();
    let sum_io = || {
        live.iter()
            .map(|l| l.io_round_trips.load(Relaxed))
            .sum::<u64>()
    };
    loop {
        let elapsed = start.elapsed();
        if elapsed >= run_for {
            break;
        }
        // Wake at whole seconds since the start, or at the end.
        let next = Duration::from_secs(elapsed.as_secs() + 1).min(run_for);
        thread::sleep(next - elapsed);
        let now = Instant::now();
        let (ops, st, io) = (sum_ops(), gil.stats(), sum_io());
        let dt = now.duration_since(last.0).as_secs_f64();
        println!(
            "[{:5.1} s] ops/s {:>7}  switches/s {:>5.0}  forced/s {:>5.0}  io round trips/s {:>5.0}",
            now.duration_since(start).as_secs_f64(),
            si((ops - last.1) as f64 / dt),
            (st.switches - last.2.switches) as f64 / dt,
            (st.forced_switches - last.2.forced_switches) as f64 / dt,
            (io - last.3) as f64 / dt,
        );
        last = (now, ops, st, io);
    }
}

/// Compares the shared state with what the threads say they did. With a
/// working Gil every non-atomic update is serialised, so the sums are exact
/// and every INCREF met its DECREF.
fn check_integrity(
    state: &vm::State,
    finished: &[Finished],
    threading: bool,
) -> Result<String, String> {
    let (cpu_runs, io_runs) = (runs_of(finished, Kind::Cpu), runs_of(finished, Kind::Io));
    let locked_runs = if threading { cpu_runs as i64 } else { 0 };
    let producer_runs = runs_of(finished, Kind::Producer) as i64;
    let consumer_runs = runs_of(finished, Kind::Consumer) as i64;
    let expected = [
        (vm::G_COUNTER, cpu_runs as i64 * vm::CPU_RUN_COUNTER),
        (vm::G_TOTAL, cpu_runs as i64 * vm::CPU_RUN_TOTAL),
        (vm::G_IO_BYTES, io_runs as i64 * vm::IO_RUN_BYTES),
        (vm::G_LOCKED, locked_runs),
        (vm::G_RLOCKED, locked_runs),
        (vm::G_PRODUCED, producer_runs * vm::QUEUE_BATCH),
        (vm::G_CONSUMED, consumer_runs * vm::QUEUE_BATCH),
        (vm::G_QUEUED, 0),
    ];
    let mut problems = Vec::new();
    if producer_runs != consumer_runs {
        problems.push(format!(
            "the producer ran {producer_runs} times, the consumer {consumer_runs}"
        ));
    }
    for (i, want) in expected {
        let name = vm::GLOBAL_NAMES[i];
        if state.globals[i] != want {
            problems.push(format!(
                "global {name} = {} but the threads did {want}",
                state.globals[i]
            ));
        }
    }
    for (i, name) in vm::OBJECT_NAMES.iter().enumerate() {
        let rc = state.objects[i].refcount;
        if rc != 1 {
            problems.push(format!("object {name} has refcount {rc}, expected 1"));
        }
    }
    if problems.is_empty() {
        let mut msg = format!(
            "counter = {} runs x {} = {}, total = {}, io_bytes = {}, refcounts back to 1",
            cpu_runs,
            vm::CPU_RUN_COUNTER,
            state.globals[vm::G_COUNTER],
            state.globals[vm::G_TOTAL],
            state.globals[vm::G_IO_BYTES],
        );
        if threading {
            msg += &format!(
                "; threading: locked = rlocked = {}, queue: {} produced = {} consumed, 0 left",
                state.globals[vm::G_LOCKED],
                state.globals[vm::G_PRODUCED],
                state.globals[vm::G_CONSUMED],
            );
        }
        Ok(msg)
    } else {
        Err(problems.join("; "))
    }
}
