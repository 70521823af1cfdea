//! A bounded queue built the way Python's `queue.Queue` is: one `RLock`
//! and two `Condition`s ("not empty", "not full") waiting through it.
//! Producers and consumers move numbered items through it; the totals are
//! checked at the end.
//!
//! ```sh
//! cargo run --release --example producer_consumer
//! ```

use gilock::{Condition, RLock};
use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// A bounded FIFO queue, as `queue.Queue(maxsize)`.
struct Queue<T> {
    mutex: RLock,
    not_empty: Condition,
    not_full: Condition,
    capacity: usize,
    items: UnsafeCell<VecDeque<T>>,
}

// SAFETY: `items` is only reached through `items()`, which requires the
// calling thread to hold `mutex`; an RLock admits one owner at a time.
unsafe impl<T: Send> Sync for Queue<T> {}

impl<T> Queue<T> {
    fn new(capacity: usize) -> Self {
        Self {
            mutex: RLock::new(),
            not_empty: Condition::new(),
            not_full: Condition::new(),
            capacity,
            items: UnsafeCell::new(VecDeque::with_capacity(capacity)),
        }
    }

    #[allow(clippy::mut_from_ref)]
    fn items(&self) -> &mut VecDeque<T> {
        assert!(self.mutex.is_owned(), "queue touched without its lock");
        // SAFETY: the calling thread owns `mutex` (checked above), and each
        // caller uses the reference only while it does.
        unsafe { &mut *self.items.get() }
    }

    /// Waits for room if the queue is full (`Queue.put`).
    fn put(&self, item: T) {
        let mut guard = self.mutex.lock();
        self.not_full
            .wait_while(&mut guard, |()| self.items().len() == self.capacity);
        self.items().push_back(item);
        self.not_empty.notify_one();
    }

    /// Waits for an item (`Queue.get`).
    fn get(&self) -> T {
        let mut guard = self.mutex.lock();
        self.not_empty
            .wait_while(&mut guard, |()| self.items().is_empty());
        let item = self.items().pop_front().expect("not empty");
        self.not_full.notify_one();
        item
    }

    /// Waits for an item, at most `timeout` (`Queue.get(timeout=...)`).
    fn get_timeout(&self, timeout: Duration) -> Option<T> {
        let mut guard = self.mutex.lock();
        let ready =
            self.not_empty
                .wait_timeout_while(&mut guard, |()| self.items().is_empty(), timeout);
        if !ready {
            return None;
        }
        let item = self.items().pop_front();
        self.not_full.notify_one();
        item
    }

    /// Size, as `Queue.qsize()`; takes the lock re-entrantly, so it works
    /// from inside another method too.
    fn len(&self) -> usize {
        let _guard = self.mutex.lock();
        self.items().len()
    }
}

const PRODUCERS: u64 = 3;
const CONSUMERS: usize = 3;
const PER_PRODUCER: u64 = 50_000;
const CAPACITY: usize = 16;

fn main() {
    let start = Instant::now();
    let queue = Arc::new(Queue::new(CAPACITY));

    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let queue = Arc::clone(&queue);
            thread::spawn(move || {
                for i in 0..PER_PRODUCER {
                    queue.put(Some(p * PER_PRODUCER + i));
                }
            })
        })
        .collect();

    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|_| {
            let queue = Arc::clone(&queue);
            thread::spawn(move || {
                let (mut count, mut sum) = (0u64, 0u64);
                // `None` is the sentinel the main thread sends when the
                // producers are done, as Python programs do.
                while let Some(item) = queue.get() {
                    count += 1;
                    sum += item;
                }
                (count, sum)
            })
        })
        .collect();

    for p in producers {
        p.join().expect("producer panicked");
    }
    for _ in 0..CONSUMERS {
        queue.put(None);
    }
    let mut count = 0;
    let mut sum = 0;
    for (i, c) in consumers.into_iter().enumerate() {
        let (n, s) = c.join().expect("consumer panicked");
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
    assert_eq!(queue.len(), 0);
    assert_eq!(
        queue.get_timeout(Duration::from_millis(10)),
        None,
        "nothing left"
    );
    println!(
        "{total} items through a queue of {CAPACITY} by {PRODUCERS} producers and \
         {CONSUMERS} consumers in {:?}",
        start.elapsed()
    );
}
