//! A bounded queue built the way Python's `queue.Queue` is: one `RLock`
//! and two `Condition`s ("not empty", "not full") waiting through it, used
//! by interpreter threads that hold a `Gil`. The items live in a `GilCell`
//! (no `unsafe`): only the Gil's holder reaches them, and every blocking
//! call is a `_with` form that lets go of the Gil while it waits.
//! Producers and consumers move numbered items through it; the totals are
//! checked at the end.
//!
//! ```sh
//! cargo run --release --example producer_consumer
//! ```

use gilock::{Condition, Gil, GilCell, GilGuard, RLock};
use std::collections::VecDeque;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// A bounded FIFO queue, as `queue.Queue(maxsize)`.
///
/// The Gil alone makes each borrow of `items` safe, but `queue.Queue` is
/// Python code: a switch can fall between its length check and its
/// `append`. The `RLock` makes each method atomic across such switches
/// (here, the checkpoint in `put` stands for them).
struct Queue<T> {
    mutex: RLock,
    not_empty: Condition,
    not_full: Condition,
    capacity: usize,
    items: GilCell<VecDeque<T>>,
}

impl<T> Queue<T> {
    fn new(capacity: usize) -> Self {
        Self {
            mutex: RLock::new(),
            not_empty: Condition::new(),
            not_full: Condition::new(),
            capacity,
            items: GilCell::new(VecDeque::with_capacity(capacity)),
        }
    }

    /// Waits for room if the queue is full (`Queue.put`).
    fn put(&self, guard: &mut GilGuard<'_>, item: T) {
        self.mutex.acquire_with(guard).expect("not interrupted");
        while self.items.borrow(guard).len() == self.capacity {
            // Releases the RLock and the Gil while it waits.
            self.not_full
                .wait_on_rlock_with(&self.mutex, guard)
                .expect("we own the mutex");
        }
        // The interpreter may switch threads here: the mutex keeps the
        // check above true until the append.
        guard.checkpoint();
        self.items.borrow_mut(guard).push_back(item);
        self.not_empty
            .notify_on_rlock(&self.mutex, 1)
            .expect("we own the mutex");
        self.mutex.release().expect("we own the mutex");
    }

    /// Waits for an item (`Queue.get`).
    fn get(&self, guard: &mut GilGuard<'_>) -> T {
        self.get_timeout(guard, None).expect("no timeout")
    }

    /// Waits for an item, at most `timeout` (`Queue.get(timeout=...)`).
    fn get_timeout(&self, guard: &mut GilGuard<'_>, timeout: Option<Duration>) -> Option<T> {
        self.mutex.acquire_with(guard).expect("not interrupted");
        let deadline = timeout.map(|t| Instant::now() + t);
        while self.items.borrow(guard).is_empty() {
            let notified = match deadline {
                None => self
                    .not_empty
                    .wait_on_rlock_with(&self.mutex, guard)
                    .map(|()| true),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    self.not_empty
                        .wait_on_rlock_timeout_with(&self.mutex, guard, left)
                }
            };
            if !notified.expect("we own the mutex") {
                self.mutex.release().expect("we own the mutex");
                return None;
            }
        }
        let item = self.items.borrow_mut(guard).pop_front();
        self.not_full
            .notify_on_rlock(&self.mutex, 1)
            .expect("we own the mutex");
        self.mutex.release().expect("we own the mutex");
        item
    }

    /// Size, as `Queue.qsize()`; takes the lock re-entrantly, so it works
    /// from inside another method too.
    fn len(&self, guard: &mut GilGuard<'_>) -> usize {
        self.mutex.acquire_with(guard).expect("not interrupted");
        let len = self.items.borrow(guard).len();
        self.mutex.release().expect("we own the mutex");
        len
    }
}

const PRODUCERS: u64 = 3;
const CONSUMERS: usize = 3;
const PER_PRODUCER: u64 = 50_000;
const CAPACITY: usize = 16;

fn main() {
    let start = Instant::now();
    // The interpreter: one Gil, and a queue its threads share.
    let gil = Arc::new(Gil::new());
    let queue = Arc::new(Queue::new(CAPACITY));

    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let (gil, queue) = (Arc::clone(&gil), Arc::clone(&queue));
            thread::spawn(move || {
                let mut guard = gil.acquire();
                for i in 0..PER_PRODUCER {
                    queue.put(&mut guard, Some(p * PER_PRODUCER + i));
                }
            })
        })
        .collect();

    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|_| {
            let (gil, queue) = (Arc::clone(&gil), Arc::clone(&queue));
            thread::spawn(move || {
                let mut guard = gil.acquire();
                let (mut count, mut sum) = (0u64, 0u64);
                // `None` is the sentinel the main thread sends when the
                // producers are done, as Python programs do.
                while let Some(item) = queue.get(&mut guard) {
                    count += 1;
                    sum += item;
                    guard.checkpoint();
                }
                (count, sum)
            })
        })
        .collect();

    for p in producers {
        p.join().expect("producer panicked");
    }
    let mut guard = gil.acquire();
    for _ in 0..CONSUMERS {
        queue.put(&mut guard, None);
    }
    // Joined without the Gil: the consumers need it to finish.
    let results = guard.detach(|| {
        consumers
            .into_iter()
            .map(|c| c.join().expect("consumer panicked"))
            .collect::<Vec<_>>()
    });
    let mut count = 0;
    let mut sum = 0;
    for (i, (n, s)) in results.into_iter().enumerate() {
        println!("consumer {i}: {n} items");
        count += n;
        sum += s;
    }

    let total = PRODUCERS * PER_PRODUCER;
    assert_eq!(count, total, "every item consumed exactly once");
    assert_eq!(
        sum,
        total * (total - 1) / 2,
        "and no item changed on the way"
    );
    assert_eq!(queue.len(&mut guard), 0);
    assert_eq!(
        queue.get_timeout(&mut guard, Some(Duration::from_millis(10))),
        None,
        "nothing left"
    );
    let stats = gil.stats();
    drop(guard);
    println!(
        "{total} items through a queue of {CAPACITY} by {PRODUCERS} producers and \
         {CONSUMERS} consumers on one Gil in {:?} ({} Gil switches)",
        start.elapsed(),
        stats.switches
    );
}
