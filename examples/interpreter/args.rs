//! Command-line flags, parsed by hand so the demo needs no dependency.

use std::path::PathBuf;
use std::time::Duration;

/// The scheduling policy asked for on the command line. Kept separate from
/// `gilock::SwitchPolicy` so that parsing does not depend on which policies
/// the library offers; `main` maps it (and reports one it cannot honour).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    Fifo,
    Interactive,
}

/// What to run: the main demo, or the interrupt scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    Main,
    Interrupt,
}

#[derive(Clone, Debug)]
pub struct Args {
    pub scenario: Scenario,
    /// Use the VM's `threading` module: locks in the CPU program, and a
    /// producer/consumer pair on a bounded queue.
    pub threading: bool,
    /// Interrupt scenario: how long to wait for a real Ctrl-C before the
    /// demo sends SIGINT itself (default: 3 s on a terminal, else 0).
    pub ctrl_c_wait: Option<Duration>,
    pub cpu_threads: usize,
    pub io_threads: usize,
    pub switch_interval: Duration,
    pub run_for: Duration,
    pub policy: Policy,
    /// How long the simulated device behind each I/O thread's socket takes
    /// to answer one request.
    pub io_latency: Duration,
    /// Where to write a Chrome trace-event timeline of the Gil, if asked.
    pub trace: Option<PathBuf>,
}

impl Default for Args {
    fn default() -> Self {
        Args {
            scenario: Scenario::Main,
            threading: false,
            ctrl_c_wait: None,
            cpu_threads: 2,
            io_threads: 1,
            switch_interval: Duration::from_millis(5),
            run_for: Duration::from_secs(3),
            policy: Policy::Fifo,
            io_latency: Duration::from_millis(1),
            trace: None,
        }
    }
}

pub const USAGE: &str = "\
interpreter: threads running a small bytecode VM take turns on one gilock::Gil

USAGE:
    cargo run --release --example interpreter -- [FLAGS]

FLAGS:
    --threads N            CPU-bound VM threads (counting loop)       [default: 2]
    --io-threads N         I/O-bound VM threads (socket round trips)  [default: 1]
    --switch-interval MS   Gil switch interval in ms, fractions ok    [default: 5]
    --seconds S            how long to run, fractions ok              [default: 3]
    --policy fifo|interactive
                           who gets the Gil after a voluntary release [default: fifo]
    --io-latency MS        reply delay of the loopback echo device    [default: 1]
    --trace FILE           write the Gil's timeline as Chrome trace-event JSON
                           (open it in https://ui.perfetto.dev or chrome://tracing)
    --threading            use the VM's threading module: CPU threads also update
                           counters under a threading.Lock and RLock, and a producer
                           and a consumer thread pass items through a bounded queue
                           of threading.RLock, Condition, Semaphore and Event
    --scenario main|interrupt
                           interrupt: a thread blocked in Lock.acquire() is
                           interrupted by a timer, then by Ctrl-C (SIGINT), with
                           the CPU threads running; prints each delivery latency
    --ctrl-c-wait S        interrupt scenario: seconds to wait for a real Ctrl-C
                           before sending SIGINT itself [default: 3 on a terminal, else 0]
    -h, --help             print this help

Every VM thread runs bytecode with the Gil held and polls the Gil's eval
breaker at every instruction; CPU threads are switched out by drop requests,
I/O threads release the Gil around each blocking socket read (detach).
At the end the shared interpreter state is checked: global counters must
equal the work the threads did and every refcount must be back where it
started; the exit code is non-zero if not.";

/// What the command line asked for: run, or print the help.
pub enum Command {
    Run(Args),
    Help,
}

/// Parses `argv[1..]`. Errors are messages for the user.
pub fn parse(mut argv: impl Iterator<Item = String>) -> Result<Command, String> {
    let mut args = Args::default();
    while let Some(flag) = argv.next() {
        // Accept both `--flag value` and `--flag=value`.
        let (flag, inline) = match flag.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (flag, None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| argv.next())
                .ok_or_else(|| format!("{flag} needs a value (see --help)"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--threads" => args.cpu_threads = count(&flag, &value()?)?,
            "--io-threads" => args.io_threads = count(&flag, &value()?)?,
            "--switch-interval" => args.switch_interval = millis(&flag, &value()?)?,
            "--io-latency" => args.io_latency = millis(&flag, &value()?)?,
            "--trace" => args.trace = Some(PathBuf::from(value()?)),
            "--threading" => args.threading = true,
            "--scenario" => {
                let v = value()?;
                args.scenario = match v.as_str() {
                    "main" => Scenario::Main,
                    "interrupt" => Scenario::Interrupt,
                    _ => return Err(format!("{flag}: '{v}' is not one of main, interrupt")),
                };
            }
            "--ctrl-c-wait" => {
                let v = value()?;
                let s: f64 = v
                    .parse()
                    .map_err(|_| format!("{flag}: '{v}' is not a number of seconds"))?;
                if !(0.0..=600.0).contains(&s) {
                    return Err(format!("{flag}: {v} must be within 0 ..= 600"));
                }
                args.ctrl_c_wait = Some(Duration::from_secs_f64(s));
            }
            "--seconds" => {
                let v = value()?;
                let s: f64 = v
                    .parse()
                    .map_err(|_| format!("{flag}: '{v}' is not a number of seconds"))?;
                if !(s > 0.0 && s <= 24.0 * 3600.0) {
                    return Err(format!("{flag}: {v} must be > 0 and at most a day"));
                }
                args.run_for = Duration::from_secs_f64(s);
            }
            "--policy" => {
                let v = value()?;
                args.policy = match v.to_ascii_lowercase().as_str() {
                    "fifo" => Policy::Fifo,
                    "interactive" => Policy::Interactive,
                    _ => return Err(format!("{flag}: '{v}' is not one of fifo, interactive")),
                };
            }
            _ => return Err(format!("unknown flag '{flag}' (see --help)")),
        }
    }
    if args.scenario == Scenario::Main && args.cpu_threads + args.io_threads == 0 && !args.threading
    {
        return Err("nothing to run: --threads and --io-threads are both 0".into());
    }
    Ok(Command::Run(args))
}

fn count(flag: &str, v: &str) -> Result<usize, String> {
    match v.parse::<usize>() {
        // A thread count beyond this is a typo, not a test of the Gil.
        Ok(n) if n <= 256 => Ok(n),
        _ => Err(format!("{flag}: '{v}' is not a thread count (0..=256)")),
    }
}

fn millis(flag: &str, v: &str) -> Result<Duration, String> {
    let ms: f64 = v
        .parse()
        .map_err(|_| format!("{flag}: '{v}' is not a number of milliseconds"))?;
    // 1 µs is the finest interval worth asking for; an hour the longest.
    if !(0.001..=3_600_000.0).contains(&ms) {
        return Err(format!(
            "{flag}: {v} ms is out of range (0.001 ..= 3600000)"
        ));
    }
    Ok(Duration::from_secs_f64(ms / 1000.0))
}
