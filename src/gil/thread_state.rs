//! `ThreadState`: what a Gil knows about one thread (PyThreadState).

use super::breaker::{EvalBreaker, INTERRUPT};
use super::stats::{ThreadCounters, ThreadStats};
use crate::park::{self, FilterOp, ParkToken};
use crate::sync::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use alloc::string::String;
use core::fmt;

/// Where a thread stands with respect to its [`Gil`](crate::Gil).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ThreadStatus {
    /// Not holding the Gil and not waiting for it (including inside
    /// [`GilGuard::detach`](crate::GilGuard::detach)).
    Detached,
    /// Blocked waiting for the Gil (in an acquire, after a forced switch,
    /// or in a Condition wait through a [`GilGuard`](crate::GilGuard)).
    Waiting,
    /// Holding the Gil.
    Attached,
}

const DETACHED: u8 = 0;
const WAITING: u8 = 1;
const ATTACHED: u8 = 2;

/// Low bits of a park token that the Gil uses for a waiter's rank; the rest
/// is the waiter's `ThreadState` address, which is aligned to 64.
pub(crate) const TOKEN_FLAGS: usize = 0b111;

/// One thread's record for one [`Gil`](crate::Gil) (CPython's `PyThreadState`).
///
/// A thread gets one the first time it uses a Gil (any thread, including
/// threads not spawned by Rust), and keeps it until it ends.
/// [`Gil::thread_states`](crate::Gil::thread_states) lists them; an
/// `Arc<ThreadState>` can be kept and used from any thread, for example to
/// [`interrupt`](Self::interrupt) a thread blocked on the Gil.
///
/// ```
/// use gilock::{Gil, ThreadStatus};
///
/// let gil = Gil::new();
/// let guard = gil.acquire();
/// let me = guard.thread_state();
/// assert_eq!(me.status(), ThreadStatus::Attached);
/// assert_eq!(me.stats().acquisitions, 1);
/// drop(guard);
/// assert_eq!(gil.thread_states()[0].status(), ThreadStatus::Detached);
/// ```
// C layout, fields the uncontended acquire + release touch first, aligned to
// a cache line so they share one; the alignment also leaves the low bits of
// the address free for `TOKEN_FLAGS`.
#[repr(C, align(64))]
pub struct ThreadState {
    breaker: EvalBreaker,
    status: AtomicU8,
    /// `Gil::eval_breaker` lent a reference bound to the Gil's lifetime:
    /// the state must outlive the thread (see `registry`).
    pub(crate) lent: AtomicBool,
    /// Guards of this thread alive for this Gil (its own thread only).
    pub(crate) depth: AtomicUsize,
    ident: u64,
    pub(crate) counters: ThreadCounters,
    /// The park key of the interruptible wait the thread is in, or 0.
    waiting_on: AtomicUsize,
    /// The thread's place in the Gil's queue while it waits (written by the
    /// thread before it parks, read by releasers under the queue lock).
    pub(crate) ticket: AtomicU64,
    gil_id: u64,
    name: Option<String>,
    /// The event hook generation that has seen this thread's `Started`
    /// (see `hooks`); written by the thread itself only.
    pub(crate) hook_gen: crate::sync::UnmodeledAtomicU64,
}

impl ThreadState {
    pub(crate) fn new(gil_id: u64) -> Self {
        Self {
            ident: crate::thread_id::current().get(),
            gil_id,
            name: current_name(),
            status: AtomicU8::new(DETACHED),
            breaker: EvalBreaker::new(),
            waiting_on: AtomicUsize::new(0),
            ticket: AtomicU64::new(0),
            depth: AtomicUsize::new(0),
            lent: AtomicBool::new(false),
            counters: ThreadCounters::new(),
            hook_gen: crate::sync::UnmodeledAtomicU64::new(0),
        }
    }

    /// The thread's identifier: unique among all threads of the process for
    /// its whole life, never reused (unlike OS thread ids).
    pub fn ident(&self) -> u64 {
        self.ident
    }

    /// The thread's name as std knows it (`std::thread::Builder::name`),
    /// `None` for an unnamed thread and always `None` without `std`.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Whether the thread holds the Gil, waits for it, or neither. A
    /// snapshot: it may change as soon as it is read.
    pub fn status(&self) -> ThreadStatus {
        match self.status.load(Ordering::Relaxed) {
            ATTACHED => ThreadStatus::Attached,
            WAITING => ThreadStatus::Waiting,
            _ => ThreadStatus::Detached,
        }
    }

    /// A snapshot of the thread's counters.
    pub fn stats(&self) -> ThreadStats {
        self.counters.snapshot()
    }

    /// The thread's eval breaker: the flags its checkpoints act on.
    pub fn eval_breaker(&self) -> &EvalBreaker {
        &self.breaker
    }

    /// Interrupts the thread (the Ctrl-C that CPython delivers only to the
    /// main thread): its next [`GilGuard::checkpoint`](crate::GilGuard::checkpoint)
    /// reports `interrupted: true`, and if it is blocked in
    /// [`Gil::acquire_interruptible`](crate::Gil::acquire_interruptible) or in
    /// a Condition wait through a `GilGuard`, that wait returns
    /// `Err(Interrupted)` promptly, without the Gil. The flag is consumed by
    /// whichever of these sees it first. Callable from any thread.
    pub fn interrupt(&self) {
        // Dekker with the waiter (`set_waiting_on` then the flag check in
        // its `validate`): at least one side sees the other's write, and the
        // park queue's lock orders the rest, so no wakeup is lost. Both
        // sides use read-modify-writes where a SeqCst store and load would
        // do: loom does not model the single total order of SeqCst accesses
        // to different locations, and reports lost wakeups that cannot
        // happen; read-modify-writes always see the latest value, there and
        // on real hardware.
        self.breaker.set(INTERRUPT, Ordering::SeqCst);
        let key = self.waiting_on.fetch_add(0, Ordering::SeqCst);
        if key != 0 {
            let mine = self.token_bits();
            let filter = |token: ParkToken| {
                if token.0 & !TOKEN_FLAGS == mine {
                    FilterOp::Unpark
                } else {
                    FilterOp::Skip
                }
            };
            // SAFETY: waking a thread out of a wait on `key` with
            // TOKEN_INTERRUPTED is part of every interruptible wait's
            // protocol; the callbacks touch nothing and cannot unwind. If
            // the wait is over, nobody carries our token and nothing happens.
            unsafe { park::unpark_filter(key, filter, |_| park::TOKEN_INTERRUPTED) };
        }
    }

    fn token_bits(&self) -> usize {
        self as *const Self as usize
    }

    /// The token this thread parks with in an interruptible wait, so that
    /// [`interrupt`](Self::interrupt) can pick it out of the queue. Unique
    /// to this `ThreadState` (its address) for as long as the thread waits.
    /// The Gil's own waits add rank flags in the low bits
    /// ([`TOKEN_FLAGS`]); `interrupt` ignores them.
    pub(crate) fn park_token(&self) -> ParkToken {
        ParkToken(self.token_bits())
    }

    /// Records the park key of the interruptible wait this thread is about
    /// to enter. Call it *before* parking, and have the park's `validate`
    /// return false when [`interrupt_pending`](Self::interrupt_pending):
    /// together with `interrupt`'s order (flag, then key) no interrupt is
    /// lost. A wait woken with `park::TOKEN_INTERRUPTED` must call
    /// [`take_interrupt`](Self::take_interrupt) and return `Err(Interrupted)`.
    pub(crate) fn set_waiting_on(&self, key: usize) {
        // A read-modify-write: see `interrupt`.
        self.waiting_on.swap(key, Ordering::SeqCst);
    }

    /// Ends what [`set_waiting_on`](Self::set_waiting_on) began.
    pub(crate) fn clear_waiting_on(&self) {
        self.waiting_on.store(0, Ordering::SeqCst);
    }

    /// Whether an interrupt is pending, for `validate` callbacks: a
    /// read-modify-write that changes nothing (see `interrupt`).
    pub(crate) fn interrupt_pending(&self) -> bool {
        self.breaker.set(0, Ordering::SeqCst) & INTERRUPT != 0
    }

    /// Consumes a pending interrupt; returns whether there was one.
    pub(crate) fn take_interrupt(&self) -> bool {
        self.interrupt_pending() && self.breaker.clear(INTERRUPT, Ordering::SeqCst) & INTERRUPT != 0
    }

    pub(crate) fn gil_id(&self) -> u64 {
        self.gil_id
    }

    #[inline]
    pub(crate) fn set_status(&self, status: ThreadStatus) {
        let v = match status {
            ThreadStatus::Detached => DETACHED,
            ThreadStatus::Waiting => WAITING,
            ThreadStatus::Attached => ATTACHED,
        };
        self.status.store(v, Ordering::Relaxed);
    }

    /// Whether the state must outlive its thread: a guard (or a breaker
    /// reference bound to the Gil's lifetime) may still point at it.
    #[cfg(all(feature = "std", not(loom)))]
    pub(crate) fn pinned(&self) -> bool {
        self.depth.load(Ordering::Relaxed) != 0
            || self.status.load(Ordering::Relaxed) != DETACHED
            || self.lent.load(Ordering::Relaxed)
    }
}

impl fmt::Debug for ThreadState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadState")
            .field("ident", &self.ident)
            .field("name", &self.name)
            .field("status", &self.status())
            .field("eval_breaker", &self.breaker)
            .field("stats", &self.stats())
            .finish()
    }
}

#[cfg(all(feature = "std", not(loom)))]
fn current_name() -> Option<String> {
    std::thread::current().name().map(String::from)
}

#[cfg(loom)]
fn current_name() -> Option<String> {
    loom::thread::current().name().map(String::from)
}

#[cfg(all(not(feature = "std"), not(loom)))]
fn current_name() -> Option<String> {
    None
}
