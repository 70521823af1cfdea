//! Ctrl-C for interpreters: [`SigintBridge`] turns SIGINT into
//! [`ThreadState::interrupt`] of a thread you choose, so a thread blocked
//! in [`Lock::acquire_with`](crate::Lock::acquire_with) (or any other
//! Gil-releasing wait) gets `Err(Interrupted)` — the `KeyboardInterrupt`
//! that a CPython thread blocked on a lock never sees.
//!
//! `ThreadState::interrupt` is not async-signal-safe: it takes the park
//! queue's lock to wake the thread, and a signal handler that interrupted
//! a thread holding that lock would deadlock. So the handler does only what
//! a handler may: an atomic store and one `write(2)` of a byte to a
//! self-pipe (a `UnixStream` pair, its write end non-blocking). A bridge
//! thread reads the pipe and calls `interrupt` on the registered target.
//! Delivery therefore costs one thread wake-up more than a direct
//! `interrupt` from another thread.
//!
//! Unix only, with `std`. One bridge can be installed at a time (a signal
//! handler is process-wide).

use crate::ThreadState;
use alloc::sync::Arc;
use core::ffi::{c_int, c_void};
use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::io::{self, Read};
use std::os::unix::io::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::Instant;

/// SIGINT's number: 2 on every Unix.
const SIGINT: c_int = 2;
/// `SIG_ERR`: `(sighandler_t) -1`.
const SIG_ERR: usize = usize::MAX;

unsafe extern "C" {
    /// `signal(2)`: installs `handler` (a function address, `SIG_DFL` or
    /// `SIG_IGN`) and returns the previous one, or `SIG_ERR`.
    fn signal(signum: c_int, handler: usize) -> usize;
    /// `write(2)`; async-signal-safe.
    fn write(fd: c_int, buf: *const c_void, count: usize) -> isize;
    /// `raise(3)`: sends a signal to the calling thread.
    fn raise(signum: c_int) -> c_int;
}

/// Whether a bridge is installed.
static INSTALLED: AtomicBool = AtomicBool::new(false);
/// The pipe's write end, or -1 (no bridge, or one being taken down).
static WRITE_FD: AtomicI32 = AtomicI32::new(-1);
/// Handlers running right now: the write end is closed only when none is.
static IN_HANDLER: AtomicUsize = AtomicUsize::new(0);
/// A byte is in the pipe that the bridge thread has not taken out: the
/// handler writes only when none is, so the pipe never fills and `write`
/// never fails (and never changes `errno` under the interrupted code).
static PENDING: AtomicBool = AtomicBool::new(false);
/// SIGINTs received since the bridge was installed.
static RECEIVED: AtomicU64 = AtomicU64::new(0);

/// The SIGINT handler: atomics and one `write(2)`, all async-signal-safe.
extern "C" fn on_sigint(_signum: c_int) {
    // SeqCst, with `WRITE_FD`'s load here and `Drop`'s store of -1 and load
    // of `IN_HANDLER`: a store then a load of another location on each side
    // (Dekker), which only a single total order keeps from both missing.
    IN_HANDLER.fetch_add(1, Ordering::SeqCst);
    // AcqRel: a count, on one location (no total order needed).
    RECEIVED.fetch_add(1, Ordering::AcqRel);
    let fd = WRITE_FD.load(Ordering::SeqCst);
    // AcqRel: one location, handed back and forth with the bridge thread.
    if fd >= 0 && !PENDING.swap(true, Ordering::AcqRel) {
        let byte = 1u8;
        // SAFETY:
        // - `fd` is the bridge's write end: it is closed only after
        //   `WRITE_FD` is -1 and no handler runs (see `Drop`), and this
        //   handler counted itself in `IN_HANDLER` before reading it;
        // - `buf` points at one live byte;
        // - `write(2)` is async-signal-safe; the fd is non-blocking.
        unsafe { write(fd, (&raw const byte).cast(), 1) };
    }
    // AcqRel: its Release orders the `write` before `Drop`'s SeqCst load.
    IN_HANDLER.fetch_sub(1, Ordering::AcqRel);
}

/// What the bridge thread shares with the [`SigintBridge`].
struct Shared {
    target: Mutex<Option<Arc<ThreadState>>>,
    delivered: AtomicU64,
    /// When the bridge thread last called `interrupt`.
    last_delivery: Mutex<Option<Instant>>,
}

/// Turns SIGINT (Ctrl-C) into [`ThreadState::interrupt`] of a target
/// thread, through a handler that is async-signal-safe and a bridge thread
/// that does the interrupting (see the [module docs](self)). Dropping the
/// bridge restores the handler that was installed before and ends the
/// bridge thread.
///
/// The target can be set and changed at any time
/// ([`set_target`](Self::set_target)): an interpreter points it at the
/// thread that should see `KeyboardInterrupt`, usually its main thread.
/// A SIGINT with no target set is counted and otherwise ignored.
///
/// ```
/// use gilock::signal::SigintBridge;
/// use gilock::{Gil, Interrupted, Lock, ThreadStatus};
///
/// # // Not under Miri: its isolation has no signal handlers or socketpairs.
/// # #[cfg(miri)] fn main() {}
/// # #[cfg(not(miri))] fn main() {
/// let bridge = SigintBridge::install().unwrap();
/// let gil = Gil::new();
/// let lock = Lock::new();
/// lock.acquire(); // held by "another interpreter thread"
/// std::thread::scope(|s| {
///     let mut guard = gil.acquire();
///     let me = gil.current_thread_state();
///     bridge.set_target(Some(me.clone()));
///     let bridge = &bridge;
///     s.spawn(move || {
///         // Once the interpreter thread is blocked on the lock: Ctrl-C.
///         while me.status() != ThreadStatus::Waiting {
///             std::thread::yield_now();
///         }
///         bridge.raise().unwrap();
///     });
///     assert_eq!(lock.acquire_with(&mut guard), Err(Interrupted));
///     assert!(gil.is_held_by_current_thread());
/// });
/// # }
/// ```
pub struct SigintBridge {
    shared: Arc<Shared>,
    /// The handler installed before ours.
    previous: usize,
    write_end: Option<UnixStream>,
    thread: Option<JoinHandle<()>>,
}

impl SigintBridge {
    /// Installs the SIGINT handler and starts the bridge thread (named
    /// `gilock-sigint`).
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::AlreadyExists`] when a bridge is installed already;
    /// otherwise the error of creating the pipe, the thread or the handler.
    pub fn install() -> io::Result<SigintBridge> {
        // AcqRel here, Release where it is cleared: one location.
        if INSTALLED.swap(true, Ordering::AcqRel) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "a SigintBridge is installed already",
            ));
        }
        Self::start().inspect_err(|_| INSTALLED.store(false, Ordering::Release))
    }

    fn start() -> io::Result<SigintBridge> {
        let (mut read_end, write_end) = UnixStream::pair()?;
        write_end.set_nonblocking(true)?;
        let shared = Arc::new(Shared {
            target: Mutex::new(None),
            delivered: AtomicU64::new(0),
            last_delivery: Mutex::new(None),
        });
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("gilock-sigint".into())
                .spawn(move || {
                    let mut buf = [0u8; 16];
                    // Ends at EOF: the bridge closed the write end.
                    while let Ok(1..) = read_end.read(&mut buf) {
                        // Cleared before delivering: a SIGINT from now on
                        // writes a new byte, so none is left undelivered.
                        PENDING.store(false, Ordering::Release);
                        let target = shared
                            .target
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .clone();
                        if let Some(target) = target {
                            // Counted before the interrupt: whoever sees
                            // the interrupted wait return sees it counted.
                            *shared
                                .last_delivery
                                .lock()
                                .unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
                            // AcqRel: one location; what orders it before
                            // the interrupted wait's return is `interrupt`.
                            shared.delivered.fetch_add(1, Ordering::AcqRel);
                            target.interrupt();
                        }
                    }
                })?
        };
        // Release: each one location; the handler is installed after them.
        RECEIVED.store(0, Ordering::Release);
        PENDING.store(false, Ordering::Release);
        WRITE_FD.store(write_end.as_raw_fd(), Ordering::Release);
        let handler: extern "C" fn(c_int) = on_sigint;
        // SAFETY:
        // - `signal(2)` with a valid signal number and the address of an
        //   `extern "C" fn(c_int)` handler;
        // - the handler is async-signal-safe (atomics and `write(2)`) and
        //   cannot unwind;
        // - it reads `WRITE_FD`, set above, before anything else uses it.
        let previous = unsafe { signal(SIGINT, handler as usize) };
        let mut bridge = SigintBridge {
            shared,
            previous,
            write_end: Some(write_end),
            thread: Some(thread),
        };
        if previous == SIG_ERR {
            let error = io::Error::last_os_error();
            bridge.previous = SIG_ERR;
            drop(bridge);
            return Err(error);
        }
        Ok(bridge)
    }

    /// Sets the thread that the next SIGINTs interrupt (`None`: nobody);
    /// returns the one set before. Callable from any thread, at any time.
    pub fn set_target(&self, target: Option<Arc<ThreadState>>) -> Option<Arc<ThreadState>> {
        core::mem::replace(
            &mut *self.shared.target.lock().unwrap_or_else(|e| e.into_inner()),
            target,
        )
    }

    /// The thread that SIGINTs interrupt now.
    #[must_use]
    pub fn target(&self) -> Option<Arc<ThreadState>> {
        self.shared
            .target
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// SIGINTs received since the bridge was installed.
    pub fn received(&self) -> u64 {
        RECEIVED.load(Ordering::Acquire)
    }

    /// Interrupts delivered to a target so far, counted just before each
    /// `interrupt` call: a thread that saw an interrupted wait return sees
    /// it counted. Signals that arrive while the bridge thread is still
    /// delivering the previous one are delivered once, as the OS merges
    /// pending signals.
    #[must_use]
    pub fn delivered(&self) -> u64 {
        self.shared.delivered.load(Ordering::Acquire)
    }

    /// When the bridge thread last called [`ThreadState::interrupt`] on a
    /// target (taken just before the call): a delivery latency is measured
    /// from here to the moment the interrupted wait returned.
    #[must_use]
    pub fn last_delivery(&self) -> Option<Instant> {
        *self
            .shared
            .last_delivery
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Sends SIGINT to the calling thread (`raise(3)`), as a Ctrl-C would
    /// to the process: for demos and tests. The handler has run when it
    /// returns; the bridge thread delivers the interrupt a moment later.
    ///
    /// # Errors
    ///
    /// The OS error of `raise`.
    pub fn raise(&self) -> io::Result<()> {
        // SAFETY: `raise(3)` with a valid signal number; our handler is
        // installed (`self` is alive), so the signal does not end the
        // process.
        if unsafe { raise(SIGINT) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

impl Drop for SigintBridge {
    fn drop(&mut self) {
        if self.previous != SIG_ERR {
            // SAFETY: `signal(2)` with the handler that `signal` returned
            // when ours was installed (a valid handler, `SIG_DFL` or
            // `SIG_IGN`).
            unsafe { signal(SIGINT, self.previous) };
        }
        // No handler may write once the write end is closed (its fd number
        // could be reused): stop new ones, then wait for running ones.
        // SeqCst: the Dekker pair of `on_sigint`.
        WRITE_FD.store(-1, Ordering::SeqCst);
        while IN_HANDLER.load(Ordering::SeqCst) != 0 {
            std::thread::yield_now();
        }
        // EOF for the bridge thread.
        drop(self.write_end.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        INSTALLED.store(false, Ordering::Release);
    }
}

impl fmt::Debug for SigintBridge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigintBridge")
            .field("target", &self.target().map(|t| t.ident()))
            .field("received", &self.received())
            .field("delivered", &self.delivered())
            .finish()
    }
}
