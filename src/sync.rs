//! The one place where loom and ordinary builds differ in their atomics and
//! cells.
//!
//! Every algorithm in the crate imports its atomics and cells from here, so
//! a `--cfg loom` build runs the same code on loom's model types and the
//! models check the real thing. The paths mirror loom's (`sync::atomic`,
//! `sync::cell`), so the same `use` lines compile either way; the flat
//! re-exports (`sync::AtomicU8`) are the short form most files use.
//!
//! Three kinds of atomics, named so that a reader sees which is which:
//! - `AtomicU8`, `AtomicUsize`, ...: modelled under loom. The default.
//! - `StaticAtomicU8`, `StaticAtomicUsize`: modelled too, but a `const` item
//!   can hold them (`lock_api`'s `INIT`); under loom the model object is
//!   created at first use in each execution.
//! - `UnmodeledAtomic*`: core's atomics in every build, for values that
//!   carry no synchronisation between the threads of a model (ids that must
//!   never repeat, even across model executions; "is anything registered"
//!   flags whose load must not add schedules to every model) or that only
//!   code loom never runs uses (the no-std backend, the user's clock).
//!
//! Spinning (`SpinWait`) is here too; how long to spin, and how to yield,
//! comes from the park backend.

// Not every build uses every one of them (the no-std user clock, the
// std-only hook registry).

/// Core's atomics in every build: see the module docs for when to use them.
#[allow(dead_code)]
pub(crate) type UnmodeledAtomicBool = core::sync::atomic::AtomicBool;
/// Core's atomics in every build: see the module docs for when to use them.
#[allow(dead_code)]
pub(crate) type UnmodeledAtomicU32 = core::sync::atomic::AtomicU32;
/// Core's atomics in every build: see the module docs for when to use them.
#[allow(dead_code)]
pub(crate) type UnmodeledAtomicU64 = core::sync::atomic::AtomicU64;
/// Core's atomics in every build: see the module docs for when to use them.
#[allow(dead_code)]
pub(crate) type UnmodeledAtomicUsize = core::sync::atomic::AtomicUsize;
/// Core's atomics in every build: see the module docs for when to use them.
#[allow(dead_code)]
pub(crate) type UnmodeledAtomicPtr<T> = core::sync::atomic::AtomicPtr<T>;

cfg_select! {
    loom => {
        /// loom's atomics (mirrors `loom::sync::atomic`).
        pub(crate) mod atomic {
            pub(crate) use core::sync::atomic::Ordering;
            pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize};
        }

        /// loom's cells (mirrors `loom::cell`).
        pub(crate) mod cell {
            pub(crate) use loom::cell::UnsafeCell;
        }

        /// Declares a function `const` in ordinary builds and plain under
        /// loom, whose atomics have no `const fn new` (tokio's shim takes
        /// the same road). Each build sees one item without a `cfg`, so the
        /// docs show the function as it is in that build.
        macro_rules! const_fn {
            ($(#[$attr:meta])* $vis:vis const fn $($rest:tt)*) => {
                $(#[$attr])* $vis fn $($rest)*
            };
        }

        mod static_atomic {
            //! Under loom a const item cannot hold a model object: loom
            //! objects belong to one execution and must be created inside
            //! it. A `StaticAtomic*` built by `zero()` holds only a key; at
            //! first use in each execution the atomic is created as a loom
            //! `lazy_static` under that key, which loom discards when the
            //! execution ends. So a `static` primitive starts every
            //! execution fresh, as the real one starts every run fresh.
            //!
            //! The key is a leaked allocation, never freed, so no later
            //! object (a heap primitive reusing a freed address within the
            //! same execution) can find an older object's value: 8 bytes per
            //! lazily created object, in model builds only.
            //!
            //! What loom sees: the creation happens-before every later use
            //! in any thread (loom's lazy statics synchronise from the
            //! initialising thread, as `std::sync::Once` does). That is one
            //! edge more than a real static has (it is initialised before
            //! any thread runs, so it orders nothing): a use in thread B
            //! "sees" what thread A did before its first use. Models that
            //! want the most faithful check construct the primitive inside
            //! the model with `new` (`RawFairMutex::new()`), which creates
            //! the atomic at once and adds no edge.

            use loom::lazy_static::Lazy;
            use loom::sync::atomic::{AtomicU8, AtomicUsize};
            use std::boxed::Box;
            use std::sync::OnceLock;

            macro_rules! static_atomic {
                ($name:ident, $atomic:ident, $int:ty) => {
                    /// A modelled atomic that a `const` item can hold (see
                    /// the module docs).
                    pub(crate) struct $name {
                        eager: Option<$atomic>,
                        key: OnceLock<&'static Lazy<$atomic>>,
                    }

                    impl $name {
                        /// A zero atomic, created at first use in each
                        /// loom execution.
                        pub(crate) const fn zero() -> Self {
                            Self {
                                eager: None,
                                key: OnceLock::new(),
                            }
                        }

                        /// An atomic created now (so: inside the model).
                        pub(crate) fn new(value: $int) -> Self {
                            Self {
                                eager: Some($atomic::new(value)),
                                key: OnceLock::new(),
                            }
                        }

                        /// The model atomic of the running execution.
                        #[inline]
                        pub(crate) fn get(&self) -> &$atomic {
                            if let Some(eager) = &self.eager {
                                return eager;
                            }
                            let key = self.key.get_or_init(|| {
                                // `Lazy`'s fields are public so that loom's
                                // `lazy_static!` can build it in a const;
                                // that macro, expanded in users' crates,
                                // keeps them stable within loom 0.7.
                                Box::leak(Box::new(Lazy {
                                    init: || $atomic::new(0),
                                    _p: core::marker::PhantomData,
                                }))
                            });
                            key.get()
                        }
                    }
                };
            }

            static_atomic!(StaticAtomicU8, AtomicU8, u8);
            static_atomic!(StaticAtomicUsize, AtomicUsize, usize);
        }

        mod spin_hint {
            /// One round of `SpinWait`'s pause instructions: a single
            /// scheduling point, since how many pause instructions a round
            /// has is timing, not logic.
            pub(crate) fn pause_round(_round: u32) {
                loom::hint::spin_loop();
            }
        }
    }
    _ => {
        /// Core's atomics (mirrors `loom::sync::atomic`).
        pub(crate) mod atomic {
            pub(crate) use core::sync::atomic::{
                AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering,
            };
        }

        /// Cells with loom's closure API (mirrors `loom::cell`).
        pub(crate) mod cell {
            /// An `UnsafeCell` with loom's closure API, so that loom can
            /// check every access to data that a lock protects.
            #[derive(Debug)]
            pub(crate) struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

            impl<T> UnsafeCell<T> {
                pub(crate) const fn new(value: T) -> Self {
                    Self(core::cell::UnsafeCell::new(value))
                }

                #[inline(always)]
                pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
                    f(self.0.get())
                }

                #[inline(always)]
                pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
                    f(self.0.get())
                }
            }
        }

        /// Declares a function `const` in ordinary builds and plain under
        /// loom, whose atomics have no `const fn new` (tokio's shim takes
        /// the same road). Each build sees one item without a `cfg`, so the
        /// docs show the function as it is in that build.
        macro_rules! const_fn {
            ($(#[$attr:meta])* $vis:vis const fn $($rest:tt)*) => {
                $(#[$attr])* $vis const fn $($rest)*
            };
        }

        mod static_atomic {
            //! Off loom a const item holds core's atomic itself.

            use core::sync::atomic::{AtomicU8, AtomicUsize};

            macro_rules! static_atomic {
                ($name:ident, $atomic:ident, $int:ty) => {
                    /// A modelled atomic that a `const` item can hold; here
                    /// simply core's.
                    #[repr(transparent)]
                    pub(crate) struct $name($atomic);

                    impl $name {
                        /// A zero atomic.
                        pub(crate) const fn zero() -> Self {
                            Self($atomic::new(0))
                        }

                        /// An atomic holding `value`.
                        pub(crate) const fn new(value: $int) -> Self {
                            Self($atomic::new(value))
                        }

                        #[inline(always)]
                        pub(crate) fn get(&self) -> &$atomic {
                            &self.0
                        }
                    }
                };
            }

            static_atomic!(StaticAtomicU8, AtomicU8, u8);
            static_atomic!(StaticAtomicUsize, AtomicUsize, usize);
        }

        mod spin_hint {
            /// Round `round` of `SpinWait`'s pause instructions: 2^round.
            #[inline]
            pub(crate) fn pause_round(round: u32) {
                for _ in 0..(1u32 << round) {
                    core::hint::spin_loop();
                }
            }
        }
    }
}

pub(crate) use atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
pub(crate) use cell::UnsafeCell;
pub(crate) use const_fn;
pub(crate) use spin_hint::pause_round;
pub(crate) use static_atomic::{StaticAtomicU8, StaticAtomicUsize};

/// Rounds of pause instructions (2, 4, 8 of them) before `spin` yields.
const PAUSE_ROUNDS: u32 = 3;

/// Bounded spinning before a thread parks.
///
/// Spinning pays off only when the holder runs on another core and is about
/// to leave. How many rounds a thread spins is the backend's
/// [`spin_limit`](crate::park::spin_limit): 10 with std and without, 0 by
/// default under loom (every round is a scheduling point, which multiplies
/// the schedules a model explores), where a model may raise it to check the
/// spinning paths too. The code is the same in every build.
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
    pub(crate) fn spin(&mut self) -> bool {
        if self.counter >= crate::park::spin_limit() {
            return false;
        }
        self.counter += 1;
        if self.counter <= PAUSE_ROUNDS {
            spin_hint::pause_round(self.counter);
        } else {
            crate::park::yield_now();
        }
        true
    }

    /// Spins a few rounds with pause instructions only, never yielding:
    /// for waits where the next event is a timer. On a loaded machine one
    /// `yield_now` can give the CPU away for a whole scheduler slice (about
    /// 4 ms seen here), which would push back the start of a switch interval.
    pub(crate) fn spin_without_yield(&mut self) -> bool {
        if self.counter >= PAUSE_ROUNDS.min(crate::park::spin_limit()) {
            return false;
        }
        self.counter += 1;
        spin_hint::pause_round(self.counter);
        true
    }
}
