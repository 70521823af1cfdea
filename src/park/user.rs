//! What a no-std user installs: the monotonic clock (`set_clock`) and the
//! source of thread identity (`set_thread_id_source`). The spin backend
//! reads them; each is one function pointer in an atomic.
// The docs.rs build (std) compiles this module only for `set_clock` and
// `set_thread_id_source` to show up; nothing reads it there.
#![cfg_attr(docsrs, allow(dead_code))]

use crate::sync::{Ordering, UnmodeledAtomicPtr};
use core::num::NonZeroU64;
use core::time::Duration;

static CLOCK: UnmodeledAtomicPtr<()> = UnmodeledAtomicPtr::new(core::ptr::null_mut());
static THREAD_ID_SOURCE: UnmodeledAtomicPtr<()> = UnmodeledAtomicPtr::new(core::ptr::null_mut());

pub(crate) fn install_clock(now: fn() -> Duration) {
    // Relaxed here and below: a function pointer carries no data that its
    // reader would need ordered.
    CLOCK.store(now as *mut (), Ordering::Relaxed);
}

pub(crate) fn clock_installed() -> bool {
    !CLOCK.load(Ordering::Relaxed).is_null()
}

/// The user's clock; zero (time stands still) before one is installed.
pub(crate) fn now() -> Duration {
    let ptr = CLOCK.load(Ordering::Relaxed);
    if ptr.is_null() {
        return Duration::ZERO;
    }
    // SAFETY:
    // - the only non-null value ever stored in `CLOCK` is a
    //   `fn() -> Duration` cast to a pointer (`install_clock`);
    // - function pointers and data pointers have the same size on every
    //   target Rust supports without std, so the cast round-trips.
    let now: fn() -> Duration = unsafe { core::mem::transmute::<*mut (), fn() -> Duration>(ptr) };
    now()
}

pub(crate) fn install_thread_id_source(source: fn() -> NonZeroU64) {
    // Relaxed: as `install_clock`.
    THREAD_ID_SOURCE.store(source as *mut (), Ordering::Relaxed);
}

/// The calling thread's id from the user's source, `None` before one is
/// installed.
pub(crate) fn thread_id() -> Option<NonZeroU64> {
    let ptr = THREAD_ID_SOURCE.load(Ordering::Relaxed);
    if ptr.is_null() {
        return None;
    }
    // SAFETY:
    // - the only non-null value ever stored in `THREAD_ID_SOURCE` is a
    //   `fn() -> NonZeroU64` cast to a pointer (`install_thread_id_source`);
    // - function and data pointers have the same size (as in `now`).
    let source: fn() -> NonZeroU64 =
        unsafe { core::mem::transmute::<*mut (), fn() -> NonZeroU64>(ptr) };
    Some(source())
}
