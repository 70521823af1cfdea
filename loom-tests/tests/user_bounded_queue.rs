//! A model written the way a user of gilock writes one: only the public API,
//! a bounded queue (Python's `queue.Queue` shape) on an `RLock` and two
//! `Condition`s, model-checked with loom because gilock's primitives run on
//! loom's atomics and park in its model parking lot under `--cfg loom`.
#![cfg(loom)]

use gilock::{Condition, RLock};
use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;
use std::collections::VecDeque;

/// `RLock` protects `items`; `not_empty` / `not_full` are signalled while it
/// is held, as `queue.Queue` does.
struct BoundedQueue {
    lock: RLock,
    not_empty: Condition,
    not_full: Condition,
    items: UnsafeCell<VecDeque<u32>>,
    capacity: usize,
}

// SAFETY: `items` is only touched while `lock` is held (see put/get).
unsafe impl Sync for BoundedQueue {}

impl BoundedQueue {
    fn new(capacity: usize) -> Self {
        Self {
            lock: RLock::new(),
            not_empty: Condition::new(),
            not_full: Condition::new(),
            items: UnsafeCell::new(VecDeque::new()),
            capacity,
        }
    }

    fn len(&self) -> usize {
        // SAFETY: called with `lock` held.
        self.items.with(|items| unsafe { (*items).len() })
    }

    fn put(&self, value: u32) {
        let mut guard = self.lock.lock();
        while self.len() == self.capacity {
            self.not_full.wait(&mut guard);
        }
        // SAFETY: `lock` is held.
        self.items
            .with_mut(|items| unsafe { (*items).push_back(value) });
        self.not_empty.notify_one();
    }

    fn get(&self) -> u32 {
        let mut guard = self.lock.lock();
        while self.len() == 0 {
            self.not_empty.wait(&mut guard);
        }
        // SAFETY: `lock` is held.
        let value = self
            .items
            .with_mut(|items| unsafe { (*items).pop_front() })
            .expect("checked non-empty under the lock");
        self.not_full.notify_one();
        value
    }
}

/// One producer and one consumer through a queue of capacity 1: every item
/// arrives once, in order, and neither side sleeps forever (loom reports a
/// deadlock if a wakeup is lost).
///
/// Mutation: in gilock's `Condition::wait_on`, counting the waiter in
/// `before_sleep` after releasing the lock instead of in `validate` (so a
/// `notify_one` in between sees no waiter and returns at once) → loom:
/// "deadlock; threads = [(Id(0), Blocked), (Id(1), Blocked)]", both sides
/// asleep in `wait`. This model sees it through the public API only.
#[test]
fn bounded_queue_delivers_everything_in_order() {
    loom::model(|| {
        let queue = Arc::new(BoundedQueue::new(1));
        let producer = {
            let queue = Arc::clone(&queue);
            thread::spawn(move || {
                for value in 1..=2 {
                    queue.put(value);
                }
            })
        };
        let received = [queue.get(), queue.get()];
        producer.join().unwrap();
        assert_eq!(received, [1, 2]);
        let guard = queue.lock.lock();
        assert_eq!(queue.len(), 0);
        drop(guard);
    });
}
