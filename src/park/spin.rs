//! The no-std backend: the shared FIFO queue behind a spin lock, each waiter
//! spinning on a flag in its own stack frame until an unparker sets it.

use super::Instant;
use super::queue::{self, FilterOp, ParkResult, ParkToken, Queue, UnparkResult, UnparkToken};
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// A waiter's mailbox. It lives on the parked thread's stack; the thread
/// does not return from `park` before it is out of the queue, so the queue
/// never holds a dangling pointer.
struct Mailbox {
    delivered: AtomicBool,
    token: AtomicUsize,
}

#[derive(Clone, Copy)]
struct MailboxPtr(*const Mailbox);

// SAFETY: the pointer is only dereferenced under the lot's lock while its
// owner is parked (see `Mailbox`), from whichever thread holds the lock.
unsafe impl Send for MailboxPtr {}

struct Lot {
    locked: AtomicBool,
    queue: UnsafeCell<Queue<MailboxPtr>>,
}

// SAFETY: `queue` is only touched between `lock` and `unlock`, which make
// those accesses mutually exclusive and ordered (Acquire / Release).
unsafe impl Sync for Lot {}

static LOT: Lot = Lot {
    locked: AtomicBool::new(false),
    queue: UnsafeCell::new(Queue::new()),
};

impl Lot {
    fn with<R>(&self, f: impl FnOnce(&mut Queue<MailboxPtr>) -> R) -> R {
        while self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            core::hint::spin_loop();
        }
        // SAFETY: the flag above makes this the only live reference.
        let result = f(unsafe { &mut *self.queue.get() });
        self.locked.store(false, Ordering::Release);
        result
    }
}

/// Parks the calling thread by spinning (see the module docs of `park`).
///
/// # Safety
/// As the std backend's `park`.
pub(crate) unsafe fn park(
    key: usize,
    validate: impl FnOnce() -> bool,
    before_sleep: impl FnOnce(),
    timed_out: impl FnOnce(usize, bool),
    token: ParkToken,
    deadline: Option<Instant>,
) -> ParkResult {
    let mailbox = Mailbox {
        delivered: AtomicBool::new(false),
        token: AtomicUsize::new(0),
    };
    let me = MailboxPtr(&mailbox);
    let joined = LOT.with(|queue| {
        if !validate() {
            return false;
        }
        queue.push(key, token, me);
        true
    });
    if !joined {
        return ParkResult::Invalid;
    }
    before_sleep();
    let mut timed_out = Some(timed_out);
    loop {
        if mailbox.delivered.load(Ordering::Acquire) {
            return ParkResult::Unparked(UnparkToken(mailbox.token.load(Ordering::Relaxed)));
        }
        if deadline.is_some_and(|d| d.has_passed()) {
            let left = LOT.with(|queue| {
                let removed = queue.remove(|slot| core::ptr::eq(slot.0, me.0));
                if let (Some((key, was_last)), Some(timed_out)) = (removed, timed_out.take()) {
                    timed_out(key, was_last);
                }
                removed.is_some()
            });
            if left {
                return ParkResult::TimedOut;
            }
            // An unparker took us out first; its delivery is already visible.
        }
        core::hint::spin_loop();
    }
}

/// Unparks the threads on `key` that `filter` selects.
///
/// # Safety
/// As [`park`].
pub(crate) unsafe fn unpark_filter(
    key: usize,
    filter: impl FnMut(ParkToken) -> FilterOp,
    callback: impl FnOnce(UnparkResult) -> UnparkToken,
) -> UnparkResult {
    LOT.with(|queue| {
        let (result, token, woken) = queue.unpark_filter(key, filter, callback);
        for mailbox in woken {
            // SAFETY: the waiter is still spinning in `park` (it has not seen
            // `delivered`), so its mailbox is alive; after the store below we
            // never touch it again.
            let mailbox = unsafe { &*mailbox.0 };
            mailbox.token.store(token.0, Ordering::Relaxed);
            mailbox.delivered.store(true, Ordering::Release);
        }
        result
    })
}

/// Unparks the oldest thread on `key`.
///
/// # Safety
/// As [`park`].
pub(crate) unsafe fn unpark_one(
    key: usize,
    callback: impl FnOnce(UnparkResult) -> UnparkToken,
) -> UnparkResult {
    // SAFETY: same contract.
    unsafe { unpark_filter(key, queue::first_only(), callback) }
}
