//! Which thread is running: a small non-zero number, unique for the life of
//! the process (never reused), for the primitives that track an owner.
//!
//! The park backend provides it: a std thread-local; under loom a loom
//! thread-local (`std::thread_local!` is shared by all model threads, which
//! run on one OS thread); without std the user's source, installed with
//! [`set_thread_id_source`](crate::set_thread_id_source).

use core::num::NonZeroU64;

/// The calling thread's id.
///
/// # Panics
/// Without std, when no source of thread ids is installed.
#[inline]
pub(crate) fn current() -> NonZeroU64 {
    match crate::park::thread_id() {
        Some(id) => id,
        None => no_source(),
    }
}

#[cold]
#[inline(never)]
fn no_source() -> ! {
    panic!("gilock without `std` needs a thread identity: call gilock::set_thread_id_source first")
}
