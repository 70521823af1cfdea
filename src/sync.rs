//! The one place where std, loom and no-std builds differ in their atomics.
//!
//! Every algorithm in the crate imports its atomics, cells and spin hints from
//! here, so that a `--cfg loom` build runs the same code on loom's model
//! types and the models check the real thing.

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::AtomicU32;
pub(crate) use core::sync::atomic::Ordering;
#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize};
#[cfg(loom)]
pub(crate) use loom::sync::atomic::AtomicU32;
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize};

/// Atomics deliberately kept off the loom model (as tokio's
/// `StaticAtomicU64`): they carry identity or diagnostics, never the
/// synchronisation a model checks, and some must survive across model
/// executions or be built in a `const`.
pub(crate) use core::sync::atomic::{
    AtomicBool as StaticAtomicBool, AtomicU32 as StaticAtomicU32, AtomicU64 as StaticAtomicU64,
};

/// Declares a function `const` in ordinary builds and plain under loom, whose
/// atomics have no `const fn new` (tokio's shim takes the same road).
macro_rules! const_fn {
    ($(#[$attr:meta])* $vis:vis const fn $($rest:tt)*) => {
        #[cfg(not(loom))]
        $(#[$attr])* $vis const fn $($rest)*
        #[cfg(loom)]
        $(#[$attr])* $vis fn $($rest)*
    };
}
pub(crate) use const_fn;

/// An `UnsafeCell` with loom's closure API, so that loom can check every
/// access to data that a lock protects.
#[cfg(not(loom))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(value: T) -> Self {
        Self(core::cell::UnsafeCell::new(value))
    }

    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;

/// Bounded spinning before a thread parks.
///
/// Spinning pays off only when the holder runs on another core and is about
/// to leave; loom explores every spin iteration as a branch, so loom builds
/// never spin and park at once.
#[derive(Debug, Default)]
pub(crate) struct SpinWait {
    counter: u32,
}

impl SpinWait {
    pub(crate) const fn new() -> Self {
        Self { counter: 0 }
    }

    pub(crate) fn reset(&mut self) {
        self.counter = 0;
    }

    /// Spins a little longer each time; `false` once parking is the better bet.
    #[cfg(not(loom))]
    pub(crate) fn spin(&mut self) -> bool {
        if self.counter >= 10 {
            return false;
        }
        self.counter += 1;
        if self.counter <= 3 {
            for _ in 0..(1u32 << self.counter) {
                core::hint::spin_loop();
            }
        } else {
            yield_thread();
        }
        true
    }

    #[cfg(loom)]
    pub(crate) fn spin(&mut self) -> bool {
        false
    }

    /// Spins a few rounds with pause instructions only, never yielding:
    /// for waits where the next event is a timer. On a loaded machine one
    /// `yield_now` can give the CPU away for a whole scheduler slice (about
    /// 4 ms seen here), which would push back the start of a switch interval.
    #[cfg(not(loom))]
    pub(crate) fn spin_without_yield(&mut self) -> bool {
        if self.counter >= 3 {
            return false;
        }
        self.counter += 1;
        for _ in 0..(1u32 << self.counter) {
            core::hint::spin_loop();
        }
        true
    }

    #[cfg(loom)]
    pub(crate) fn spin_without_yield(&mut self) -> bool {
        false
    }
}

/// Gives up the CPU for a moment when the OS can be asked to.
#[cfg(not(loom))]
pub(crate) fn yield_thread() {
    #[cfg(feature = "std")]
    std::thread::yield_now();
    #[cfg(not(feature = "std"))]
    for _ in 0..64 {
        core::hint::spin_loop();
    }
}

/// A value that loom requires to be created inside the model, but that a
/// `const` item (`lock_api`'s `INIT`) must describe before any model runs.
///
/// `eager` values are created at construction and cost nothing more. `lazy`
/// ones are created at first use; because loom checks that every access to a
/// loom object happens after its creation, each thread's first access
/// synchronises through one model-wide loom mutex (under which the value was
/// created). That adds happens-before edges the real program does not have,
/// so models that want the most faithful check construct eagerly
/// (`RawFairMutex::new()`, `RawCondition::new()`).
#[cfg(loom)]
pub(crate) struct LoomLazy<T> {
    cell: std::sync::OnceLock<T>,
    eager: bool,
    synced: std::sync::Mutex<alloc::vec::Vec<core::num::NonZeroU64>>,
}

#[cfg(loom)]
loom::lazy_static! {
    static ref LAZY_INIT: loom::sync::Mutex<()> = loom::sync::Mutex::new(());
}

#[cfg(loom)]
impl<T> LoomLazy<T> {
    pub(crate) const fn lazy() -> Self {
        Self {
            cell: std::sync::OnceLock::new(),
            eager: false,
            synced: std::sync::Mutex::new(alloc::vec::Vec::new()),
        }
    }

    pub(crate) fn eager(value: T) -> Self {
        let cell = std::sync::OnceLock::new();
        let _ = cell.set(value);
        Self {
            cell,
            eager: true,
            synced: std::sync::Mutex::new(alloc::vec::Vec::new()),
        }
    }

    pub(crate) fn get(&self, init: impl FnOnce() -> T) -> &T {
        if !self.eager {
            let me = crate::thread_id::current();
            // The std mutex is never held across a loom operation: loom runs
            // every model thread on one OS thread, so that would deadlock.
            let seen = self.synced.lock().unwrap().contains(&me);
            if !seen {
                let serial = LAZY_INIT.lock().unwrap();
                self.cell.get_or_init(init);
                drop(serial);
                self.synced.lock().unwrap().push(me);
            }
        }
        self.cell
            .get()
            .expect("initialised above or at construction")
    }
}
