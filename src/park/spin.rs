//! The no-std backend: the shared FIFO queue behind a spin lock, each waiter
//! spinning on a flag in its own stack frame until an unparker sets it. Time
//! and thread identity come from what the user installed (`park::user`).
//!
//! # Nested parks
//!
//! There are no thread-locals without std, so a nested park (see the
//! contract in `park`) is recognised by thread id, when the user installed
//! a source of them:
//! - from a callback that runs with the queue locked, the nested call finds
//!   the lot lock held by its own thread (the lock records its holder);
//! - from `before_sleep`, it finds its own thread in the lot's list of
//!   threads running `before_sleep`.
//!
//! Either way it panics with a message, and the panic, inside a callback,
//! aborts. Without a source of thread ids neither can be told from another
//! thread's work: a nested park from a locked callback then spins for ever,
//! one from `before_sleep` goes unnoticed.

use super::queue::{
    self, FilterOp, NESTED_IN_BEFORE_SLEEP as NESTED_BEFORE_SLEEP,
    NESTED_IN_LOCKED_CALLBACK as REENTERED, ParkResult, ParkToken, Queue, RequeueOp,
    UnparkResult, UnparkToken,
};
use super::{Backend, Instant, abort_on_unwind, user};
use crate::sync::{Ordering, UnmodeledAtomicBool, UnmodeledAtomicU64, UnmodeledAtomicUsize};
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::num::NonZeroU64;
use core::time::Duration;

/// Spinning, on the user's clock and thread ids.
pub(crate) struct SpinLot;


/// A waiter's mailbox. It lives on the parked thread's stack; the thread
/// does not return from `park` before it is out of the queue (and nothing
/// unwinds in between: see `park`), so the queue never holds a dangling
/// pointer.
struct Mailbox {
    delivered: UnmodeledAtomicBool,
    token: UnmodeledAtomicUsize,
}

#[derive(Clone, Copy)]
struct MailboxPtr(*const Mailbox);

// SAFETY:
// - the pointer is dereferenced only under the lot's lock, while its owner
//   is parked (see `Mailbox`);
// - whichever thread holds the lock may do so: the mailbox's fields are
//   atomics.
unsafe impl Send for MailboxPtr {}

/// What the lot lock protects.
struct LotState {
    queue: Queue<MailboxPtr>,
    /// Threads (by id) between joining the queue and the end of their
    /// `before_sleep`: a park by one of them is nested.
    in_before_sleep: Vec<NonZeroU64>,
}

struct Lot {
    lock: SpinLock,
    state: UnsafeCell<LotState>,
}

// SAFETY:
// - `state` is only touched through `with`, between taking and releasing
//   `lock`, which makes those accesses mutually exclusive;
// - `lock`'s Acquire on taking and Release on release order them.
unsafe impl Sync for Lot {}

static LOT: Lot = Lot {
    lock: SpinLock::new(),
    state: UnsafeCell::new(LotState {
        queue: Queue::new(),
        in_before_sleep: Vec::new(),
    }),
};

impl Lot {
    /// Runs `f` with the lot locked by thread `me` (`None`: unknown).
    fn with<R>(&self, me: Option<NonZeroU64>, f: impl FnOnce(&mut LotState) -> R) -> R {
        let _locked = self.lock.lock(me);
        // SAFETY: the lock is held until `_locked` drops, after `f`
        // returns or unwinds, so this is the only live reference.
        f(unsafe { &mut *self.state.get() })
    }
}

/// A spin lock that knows its holder when the holder has a thread id, and
/// is released when its guard drops (on unwinding too).
struct SpinLock {
    locked: UnmodeledAtomicBool,
    /// The holder's thread id, 0 when unlocked or unknown. Written only by
    /// the holder, so a thread that reads its own id here holds the lock
    /// (its own last write to it was the 0 of its release).
    holder: UnmodeledAtomicU64,
}

struct SpinGuard<'a>(&'a SpinLock);

impl SpinLock {
    const fn new() -> Self {
        Self {
            locked: UnmodeledAtomicBool::new(false),
            holder: UnmodeledAtomicU64::new(0),
        }
    }

    /// Takes the lock for thread `me`; panics if `me` holds it already.
    fn lock(&self, me: Option<NonZeroU64>) -> SpinGuard<'_> {
        while self
            .locked
            // Acquire, and Release in `drop`: a spin lock over the queue.
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            if me.is_some_and(|me| self.holder.load(Ordering::Relaxed) == me.get()) {
                panic!("{REENTERED}");
            }
            core::hint::spin_loop();
        }
        self.holder
            .store(me.map_or(0, NonZeroU64::get), Ordering::Relaxed);
        SpinGuard(self)
    }
}

impl Drop for SpinGuard<'_> {
    fn drop(&mut self) {
        self.0.holder.store(0, Ordering::Relaxed);
        self.0.locked.store(false, Ordering::Release);
    }
}

impl Backend for SpinLot {
    type Time = Duration;

    unsafe fn park(
        key: usize,
        validate: impl FnOnce() -> bool,
        before_sleep: impl FnOnce(),
        timed_out: impl FnOnce(usize, bool),
        token: ParkToken,
        deadline: Option<Instant>,
    ) -> ParkResult {
        // The user's code first, while a panic in it can still unwind.
        let me = user::thread_id();
        let deadline = deadline.map(Instant::time);
        let mailbox = Mailbox {
            delivered: UnmodeledAtomicBool::new(false),
            token: UnmodeledAtomicUsize::new(0),
        };
        let mine = MailboxPtr(&mailbox);
        // From the push to the removal the queue holds a pointer into this
        // frame: nothing may unwind out of it (the user's clock runs in
        // between, in `has_passed`).
        abort_on_unwind(|| {
            let joined = LOT.with(me, |lot| {
                if let Some(me) = me
                    && lot.in_before_sleep.contains(&me)
                {
                    panic!("{NESTED_BEFORE_SLEEP}");
                }
                if !validate() {
                    return false;
                }
                lot.queue.push(key, token, mine);
                if let Some(me) = me {
                    lot.in_before_sleep.push(me);
                }
                true
            });
            if !joined {
                return ParkResult::Invalid;
            }
            before_sleep();
            if let Some(me) = me {
                LOT.with(Some(me), |lot| {
                    if let Some(at) = lot.in_before_sleep.iter().position(|t| *t == me) {
                        lot.in_before_sleep.swap_remove(at);
                    }
                });
            }
            let mut timed_out = Some(timed_out);
            loop {
                // Acquire, after the unparker's Release: the token and what
                // the unparker's callback published.
                if mailbox.delivered.load(Ordering::Acquire) {
                    let token = mailbox.token.load(Ordering::Relaxed);
                    return ParkResult::Unparked(UnparkToken(token));
                }
                if deadline.is_some_and(|d| user::now() >= d) {
                    let left = LOT.with(me, |lot| {
                        let removed = lot.queue.remove(|slot| core::ptr::eq(slot.0, mine.0));
                        if let (Some((key, was_last)), Some(timed_out)) =
                            (removed, timed_out.take())
                        {
                            timed_out(key, was_last);
                        }
                        removed.is_some()
                    });
                    if left {
                        return ParkResult::TimedOut;
                    }
                    // An unparker took us out first; its delivery is
                    // visible at the next look.
                }
                core::hint::spin_loop();
            }
        })
    }

    unsafe fn unpark_one(
        key: usize,
        callback: impl FnOnce(UnparkResult) -> UnparkToken,
    ) -> UnparkResult {
        // SAFETY: same contract.
        unsafe { Self::unpark_filter(key, queue::first_only(), callback) }
    }

    unsafe fn unpark_filter(
        key: usize,
        filter: impl FnMut(ParkToken) -> FilterOp,
        callback: impl FnOnce(UnparkResult) -> UnparkToken,
    ) -> UnparkResult {
        let me = user::thread_id();
        // Threads taken out of the queue and not yet told would spin for
        // ever: nothing may unwind between the two.
        abort_on_unwind(|| {
            LOT.with(me, |lot| {
                let (result, token, woken) = lot.queue.unpark_filter(key, filter, callback);
                for mailbox in woken {
                    // SAFETY:
                    // - the waiter is still spinning in `park` (it has not
                    //   seen `delivered`), so its mailbox is alive;
                    // - after the Release store below we never touch it
                    //   again.
                    let mailbox = unsafe { &*mailbox.0 };
                    mailbox.token.store(token.0, Ordering::Relaxed);
                    mailbox.delivered.store(true, Ordering::Release);
                }
                result
            })
        })
    }

    unsafe fn unpark_requeue(
        key_from: usize,
        key_to: usize,
        validate: impl FnOnce() -> RequeueOp,
        callback: impl FnOnce(RequeueOp, UnparkResult) -> UnparkToken,
    ) -> UnparkResult {
        let me = user::thread_id();
        // As in `unpark_filter`: nothing may unwind between taking a thread
        // out of the queue and telling it.
        abort_on_unwind(|| {
            LOT.with(me, |lot| {
                let (result, token, woken) =
                    lot.queue.unpark_requeue(key_from, key_to, validate, callback);
                if let Some(mailbox) = woken {
                    // SAFETY: as in `unpark_filter`:
                    // - the waiter is still spinning in `park`, so its
                    //   mailbox is alive;
                    // - after the Release store below we never touch it.
                    let mailbox = unsafe { &*mailbox.0 };
                    mailbox.token.store(token.0, Ordering::Relaxed);
                    mailbox.delivered.store(true, Ordering::Release);
                }
                result
            })
        })
    }

    fn now() -> Duration {
        user::now()
    }

    fn checked_add(at: Duration, d: Duration) -> Option<Duration> {
        if !d.is_zero() && !user::clock_installed() {
            // Time stands still without a clock: the deadline never comes.
            return None;
        }
        at.checked_add(d)
    }

    fn duration_between(earlier: Duration, later: Duration) -> Duration {
        later.saturating_sub(earlier)
    }

    fn thread_id() -> Option<NonZeroU64> {
        user::thread_id()
    }

    fn yield_now() {
        // No scheduler to ask: a longer pause.
        for _ in 0..64 {
            core::hint::spin_loop();
        }
    }

    fn spin_limit() -> u32 {
        10
    }
}

#[cfg(test)]
mod tests {
    //! The nested-park rejections abort the process: those tests run in a
    //! child process (see `queue::child_process`). A rejection that does
    //! not fire leaves the child spinning, and the test fails at the bound.
    // Under Miri the child-process tests are compiled out, and with them
    // the only users of some helpers.
    #![cfg_attr(miri, allow(dead_code, unused_imports))]

    use super::super::queue::child_process::{self, BOUND};
    use super::*;
    use std::num::NonZeroU64;
    use std::sync::mpsc;
    use std::sync::{Arc, Barrier};

    /// Thread ids for the child role: one per std thread.
    fn install_thread_ids() {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(1);
        std::thread_local! {
            static ID: NonZeroU64 = NonZeroU64::new(NEXT.fetch_add(1, Ordering::Relaxed)).unwrap();
        }
        user::install_thread_id_source(|| ID.with(|id| *id));
    }

    fn is_child(name: &str) -> bool {
        child_process::is_child(module_path!(), name)
    }

    fn assert_child_aborts_with(name: &str, message: &str) {
        child_process::assert_aborts_with(module_path!(), name, message);
    }

    /// A park with the given callbacks on a key of this test's own.
    fn park_on(key: &u8, validate: impl FnOnce() -> bool, before_sleep: impl FnOnce()) -> ParkResult {
        // SAFETY: the key is a local's address; the callbacks are the tests'.
        unsafe {
            super::super::park(
                core::ptr::from_ref(key) as usize,
                validate,
                before_sleep,
                |_, _| {},
                ParkToken(0),
                None,
            )
        }
    }

    /// The regression behind it: the lot lock was released only when
    /// `Lot::with`'s closure returned, so a panic under it wedged every
    /// primitive. Mutation: `SpinGuard::drop` emptied → the second lock
    /// spun: "the lock stayed held".
    #[test]
    fn the_lot_lock_is_released_when_its_holder_unwinds() {
        // A static, not a leaked box: Miri reports leaked memory.
        static LOCK: SpinLock = SpinLock::new();
        let lock: &'static SpinLock = &LOCK;
        let unwound = std::panic::catch_unwind(|| {
            let _locked = lock.lock(None);
            panic!("a panic while holding the lot lock");
        });
        assert!(unwound.is_err());
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            drop(lock.lock(None));
            let _ = tx.send(());
        });
        assert!(rx.recv_timeout(BOUND).is_ok(), "the lock stayed held");
    }

    /// Mutation: `SpinLock::lock`'s holder check replaced by `false` → the
    /// child spun for ever ("hung ... the rejection did not fire").
    #[test]
    // Not under Miri: it runs the test binary again as a child process,
    // which Miri's isolation does not allow.
    #[cfg(not(miri))]
    fn a_park_from_validate_is_rejected() {
        const NAME: &str = "a_park_from_validate_is_rejected";
        if is_child(NAME) {
            install_thread_ids();
            let (outer, inner) = (0u8, 0u8);
            park_on(&outer, || matches!(park_on(&inner, || false, || {}), ParkResult::Invalid), || {});
            return;
        }
        assert_child_aborts_with(NAME, REENTERED);
    }

    /// Mutation: the `in_before_sleep` check in `park` disabled (`&&
    /// false`) → the nested park queued and spun for ever ("hung").
    #[test]
    // Not under Miri: it runs the test binary again as a child process,
    // which Miri's isolation does not allow.
    #[cfg(not(miri))]
    fn a_park_from_before_sleep_is_rejected() {
        const NAME: &str = "a_park_from_before_sleep_is_rejected";
        if is_child(NAME) {
            install_thread_ids();
            let (outer, inner) = (0u8, 0u8);
            // Nobody unparks the outer park: the nested one must end it.
            park_on(&outer, || true, || {
                park_on(&inner, || false, || {});
            });
            return;
        }
        assert_child_aborts_with(NAME, NESTED_BEFORE_SLEEP);
    }

    /// Mutation: as for `a_park_from_validate_is_rejected` → "hung".
    #[test]
    // Not under Miri: it runs the test binary again as a child process,
    // which Miri's isolation does not allow.
    #[cfg(not(miri))]
    fn an_unpark_from_validate_is_rejected() {
        const NAME: &str = "an_unpark_from_validate_is_rejected";
        if is_child(NAME) {
            install_thread_ids();
            let (outer, other) = (0u8, 0u8);
            park_on(&outer, || {
                // SAFETY: a key of this test's own; the callback is empty.
                unsafe {
                    super::super::unpark_one(core::ptr::from_ref(&other) as usize, |_| UnparkToken(0))
                };
                false
            }, || {});
            return;
        }
        assert_child_aborts_with(NAME, REENTERED);
    }

    /// The rejections are not over-broad: `before_sleep` may unpark (a
    /// condition wait releases its lock there), here waking the thread that
    /// parked first, which then wakes this one.
    ///
    /// Mutation: `unpark_filter` rejected callers in `in_before_sleep` as
    /// `park` does → the child aborted ("child failed").
    #[test]
    // Not under Miri: it runs the test binary again as a child process,
    // which Miri's isolation does not allow.
    #[cfg(not(miri))]
    fn before_sleep_may_unpark() {
        const NAME: &str = "before_sleep_may_unpark";
        if is_child(NAME) {
            install_thread_ids();
            // Two distinct addresses for the two queues.
            static KEYS: [u8; 2] = [0, 0];
            let (first_key, second_key) = (&KEYS[0], &KEYS[1]);
            let key = |k: &'static u8| core::ptr::from_ref(k) as usize;
            let queued = Arc::new(Barrier::new(2));
            let first = {
                let queued = queued.clone();
                std::thread::spawn(move || {
                    let result = park_on(first_key, || true, || {
                        queued.wait();
                    });
                    // SAFETY: the tests' own key; an empty callback.
                    unsafe { super::super::unpark_one(key(second_key), |_| UnparkToken(2)) };
                    result
                })
            };
            queued.wait();
            let mine = park_on(second_key, || true, || {
                // SAFETY: the tests' own key; an empty callback.
                unsafe { super::super::unpark_one(key(first_key), |_| UnparkToken(1)) };
            });
            assert_eq!(mine, ParkResult::Unparked(UnparkToken(2)));
            assert_eq!(first.join().unwrap(), ParkResult::Unparked(UnparkToken(1)));
            return;
        }
        let (success, stderr) = child_process::run(module_path!(), NAME);
        assert!(success, "child failed; stderr:\n{stderr}");
    }
}
