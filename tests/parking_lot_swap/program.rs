// A small job server written for parking_lot 0.13, as its users write one.
// `tests/parking_lot_swap.rs` compiles it twice: once where `parking_lot`
// is the parking_lot crate, once after `use gilock as parking_lot;`.
// Nothing in this file changes between the two.

use parking_lot::{
    Condvar, FairMutex, FairMutexGuard, MappedFairMutexGuard, MappedMutexGuard,
    MappedReentrantMutexGuard, Mutex, MutexGuard, ReentrantMutex, ReentrantMutexGuard,
    WaitTimeoutResult,
};
use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// Jobs served since start-up, over every pool: a `static` needs no lazy
/// initialisation because `Mutex::new` is `const`.
static SERVED: Mutex<u64> = Mutex::new(0);

/// A process-wide log that helpers may write to while their caller holds it.
static LOG: ReentrantMutex<RefCell<Vec<String>>> = ReentrantMutex::new(RefCell::new(Vec::new()));

#[derive(Debug, Clone, PartialEq)]
pub enum Job {
    Square(u64),
    Sum(Vec<u64>),
    Greet(String),
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<(usize, Job)>,
    closed: bool,
    /// Workers waiting for a job.
    sleeping: usize,
}

#[derive(Default, Debug)]
struct Stats {
    done: usize,
    by_worker: BTreeMap<usize, usize>,
}

#[derive(Default)]
struct Results {
    answers: BTreeMap<usize, String>,
    stats: Stats,
}

pub struct Pool {
    queue: Mutex<Queue>,
    ready: Condvar,
    idle: Condvar,
    results: Mutex<Results>,
    /// Taken in turn by every worker that reports; fairness matters more
    /// than throughput here.
    audit: FairMutex<Vec<usize>>,
}

/// What the program reports at the end; equal for both builds.
#[derive(Debug, PartialEq)]
pub struct Report {
    pub answers: BTreeMap<usize, String>,
    pub done: usize,
    pub jobs_by_worker: usize,
    pub audit_len: usize,
    pub served_total: u64,
    pub log_lines: usize,
    pub log_records_whole: bool,
    pub timed_lock_while_held: bool,
    pub timed_lock_when_free: bool,
    pub idle_wait_timed_out: bool,
}

fn log(line: String) {
    LOG.lock().borrow_mut().push(line);
}

/// A two-line record: the header, then a helper writes the body. Holding
/// the outer level keeps other threads' lines out in between.
fn log_record(header: &str, body: &str) {
    let guard: ReentrantMutexGuard<'_, RefCell<Vec<String>>> = LOG.lock();
    guard.borrow_mut().push(format!("{header}:"));
    thread::yield_now(); // a real sink may block here
    log(format!("{header}: {body}"));
    drop(guard);
}

/// The log's lines, through a guard narrowed to the cell.
fn log_lines() -> MappedReentrantMutexGuard<'static, RefCell<Vec<String>>> {
    ReentrantMutexGuard::map(LOG.lock(), |cell| cell)
}

fn run_job(job: &Job) -> String {
    match job {
        Job::Square(n) => (n * n).to_string(),
        Job::Sum(v) => v.iter().sum::<u64>().to_string(),
        Job::Greet(name) => format!("hello, {name}"),
    }
}

impl Pool {
    pub fn new() -> Arc<Self> {
        Arc::new(Pool {
            queue: Mutex::new(Queue::default()),
            ready: Condvar::new(),
            idle: Condvar::new(),
            results: Mutex::new(Results::default()),
            audit: FairMutex::new(Vec::new()),
        })
    }

    pub fn submit(&self, id: usize, job: Job) {
        let mut queue = self.queue.lock();
        assert!(!queue.closed, "submit after close");
        queue.jobs.push_back((id, job));
        drop(queue);
        self.ready.notify_one();
    }

    pub fn close(&self) {
        let mut queue = self.queue.lock();
        queue.closed = true;
        MutexGuard::unlock_fair(queue);
        self.ready.notify_all();
    }

    /// The statistics part of the results, through a mapped guard.
    fn stats(&self) -> MappedMutexGuard<'_, Stats> {
        MutexGuard::map(self.results.lock(), |r| &mut r.stats)
    }

    fn audit_tail(&self) -> MappedFairMutexGuard<'_, [usize]> {
        let guard: FairMutexGuard<'_, Vec<usize>> = self.audit.lock();
        FairMutexGuard::map(guard, |v| v.as_mut_slice())
    }

    fn worker(&self, me: usize) {
        loop {
            let mut queue = self.queue.lock();
            while queue.jobs.is_empty() && !queue.closed {
                queue.sleeping += 1;
                self.idle.notify_all();
                self.ready.wait(&mut queue);
                queue.sleeping -= 1;
            }
            let Some((id, job)) = queue.jobs.pop_front() else {
                return; // closed and drained
            };
            drop(queue);

            let answer = run_job(&job);
            log_record(&format!("worker {me} job {id}"), &answer);
            {
                let mut results = self.results.lock();
                results.answers.insert(id, answer);
            }
            {
                let mut stats = self.stats();
                stats.done += 1;
                *stats.by_worker.entry(me).or_default() += 1;
            }
            self.audit.lock().push(id);
            *SERVED.lock() += 1;
        }
    }

    /// Waits until the queue is empty and all `workers` wait for a job,
    /// giving up after `timeout`.
    fn wait_idle(&self, workers: usize, timeout: Duration) -> WaitTimeoutResult {
        let mut queue = self.queue.lock();
        self.idle.wait_while_for(
            &mut queue,
            |q| !q.jobs.is_empty() || q.sleeping < workers,
            timeout,
        )
    }
}

fn total<R: parking_lot::lock_api::RawMutex>(m: &parking_lot::lock_api::Mutex<R, u64>) -> u64 {
    *m.lock()
}

/// Runs the server: 4 workers, 60 jobs, then a clean shutdown.
pub fn run() -> Report {
    let pool = Pool::new();
    let workers: Vec<_> = (0..4)
        .map(|me| {
            let pool = Arc::clone(&pool);
            thread::spawn(move || pool.worker(me))
        })
        .collect();

    // Three waves of 20 jobs; between waves the workers go idle and wait
    // for the next submission.
    for wave in 0..3 {
        for id in wave * 20..(wave + 1) * 20 {
            let job = match id % 3 {
                0 => Job::Square(id as u64),
                1 => Job::Sum((0..=id as u64).collect()),
                _ => Job::Greet(format!("client {id}")),
            };
            pool.submit(id, job);
        }
        while pool.wait_idle(4, Duration::from_secs(10)).timed_out() {}
    }

    // A timed lock gives up while someone holds the lock, and succeeds
    // once it is free.
    let held = pool.results.lock();
    let pool2 = Arc::clone(&pool);
    let timed_lock_while_held = thread::spawn(move || {
        pool2
            .results
            .try_lock_for(Duration::from_millis(5))
            .is_some()
    })
    .join()
    .unwrap();
    drop(held);
    let timed_lock_when_free = pool.results.try_lock_for(Duration::from_secs(10)).is_some();

    // Nobody signals `idle` now: a short wait times out.
    let idle_wait_timed_out = {
        let mut queue = pool.queue.lock();
        pool.idle
            .wait_for(&mut queue, Duration::from_millis(1))
            .timed_out()
    };

    pool.close();
    for w in workers {
        w.join().unwrap();
    }

    let results = std::mem::take(&mut *pool.results.lock());
    let audit_len = pool.audit_tail().len();
    assert!(!pool.queue.is_locked() && !pool.results.is_locked());
    let lines = log_lines().borrow().clone();
    let log_records_whole = lines
        .chunks(2)
        .all(|pair| pair.len() == 2 && pair[1].starts_with(&format!("{} ", pair[0])));
    Report {
        answers: results.answers,
        done: results.stats.done,
        jobs_by_worker: results.stats.by_worker.values().sum(),
        audit_len,
        served_total: total(&SERVED),
        log_lines: lines.len(),
        log_records_whole,
        timed_lock_while_held,
        timed_lock_when_free,
        idle_wait_timed_out,
    }
}
