//! `Condvar`: `parking_lot`'s name for `lock_api::Condvar` over
//! [`RawCondition`], which waits with a [`Mutex`](crate::Mutex) guard.

use crate::condition::RawCondition;

pub use lock_api::WaitTimeoutResult;

/// A condition variable for [`Mutex`](crate::Mutex) (= [`FairMutex`](crate::FairMutex))
/// guards, under `parking_lot`'s name: `lock_api::Condvar<RawCondition>`.
///
/// `wait`, `wait_while`, `notify_one` and `notify_all` everywhere;
/// `wait_for`, `wait_until`, `wait_while_for` and `wait_while_until` with
/// `std`. No spurious wakeups: a wait that returns without timing out was
/// notified, `notify_one` says whether it woke a thread and `notify_all`
/// how many; a waiter that timed out is never counted.
///
/// For Python's `threading.Condition`, or to wait with a [`Lock`](crate::Lock),
/// [`RLock`](crate::RLock) or [`GilGuard`](crate::GilGuard), use
/// [`Condition`](crate::Condition).
///
/// # Example
///
/// ```
/// use gilock::{Condvar, Mutex};
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// let pair = Arc::new((Mutex::new(false), Condvar::new()));
/// let pair2 = Arc::clone(&pair);
/// let t = std::thread::spawn(move || {
///     let (started, cvar) = &*pair2;
///     *started.lock() = true;
///     cvar.notify_one();
/// });
/// let (started, cvar) = &*pair;
/// let mut started = started.lock();
/// cvar.wait_while(&mut started, |started| !*started);
/// assert!(*started);
/// // Nobody notifies now: a timed wait (with `std`) times out.
/// # #[cfg(feature = "std")]
/// assert!(cvar.wait_for(&mut started, Duration::from_millis(1)).timed_out());
/// drop(started);
/// t.join().unwrap();
/// ```
pub type Condvar = lock_api::Condvar<RawCondition>;
