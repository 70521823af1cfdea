//! Which thread is running: a small non-zero number, unique for the life of
//! the process (never reused), for the primitives that track an owner.
//!
//! - std: a thread-local taken from a global counter on first use.
//! - loom: loom's per-model-thread locals, because `std::thread_local!` is
//!   shared by all model threads (they run on one OS thread).
//! - no std: the user supplies the identity with
//!   [`set_thread_id_source`](crate::set_thread_id_source).

#[cfg(any(feature = "std", loom))]
use core::num::NonZeroU64;
#[cfg(any(feature = "std", loom))]
use core::sync::atomic::{AtomicU64, Ordering};

/// Ids handed out so far. Not a loom atomic: it carries no synchronisation,
/// only uniqueness, and must survive across model executions.
#[cfg(any(feature = "std", loom))]
static NEXT: AtomicU64 = AtomicU64::new(1);

#[cfg(any(feature = "std", loom))]
fn fresh() -> NonZeroU64 {
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    NonZeroU64::new(id).expect("thread ids exhausted")
}

#[cfg(all(feature = "std", not(loom)))]
std::thread_local! {
    static ID: NonZeroU64 = fresh();
}

#[cfg(loom)]
loom::thread_local! {
    static ID: NonZeroU64 = fresh();
}

/// The calling thread's id.
#[cfg(any(feature = "std", loom))]
#[inline]
pub(crate) fn current() -> NonZeroU64 {
    ID.with(|id| *id)
}

#[cfg(all(not(feature = "std"), not(loom)))]
mod user_source {
    use core::num::NonZeroU64;
    use core::sync::atomic::{AtomicPtr, Ordering};

    static SOURCE: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());

    pub(crate) fn install(source: fn() -> NonZeroU64) {
        SOURCE.store(source as *mut (), Ordering::Release);
    }

    pub(crate) fn current() -> NonZeroU64 {
        let ptr = SOURCE.load(Ordering::Acquire);
        assert!(
            !ptr.is_null(),
            "gilock without `std` needs a thread identity: call gilock::set_thread_id_source first"
        );
        // SAFETY: the only non-null value ever stored is a
        // `fn() -> NonZeroU64` cast to a pointer in `install`.
        let source = unsafe { core::mem::transmute::<*mut (), fn() -> NonZeroU64>(ptr) };
        source()
    }
}

#[cfg(all(not(feature = "std"), not(loom)))]
pub(crate) use user_source::{current, install};
