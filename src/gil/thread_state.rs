//! `ThreadState`: what a Gil knows about one thread (PyThreadState).

use super::breaker::{DROP_REQUEST, EvalBreaker, INTERRUPT};
use super::stats::{GilCounters, ThreadCounters, ThreadStats};
use crate::park::{self, FilterOp, Instant, ParkToken};
use crate::sync::{AtomicBool, AtomicU64, AtomicUsize, Ordering, UnsafeCell};
use crate::wait;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Where a thread stands with respect to its [`Gil`](crate::Gil).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ThreadStatus {
    /// Not holding the Gil and not waiting for it (including inside
    /// [`GilGuard::detach`](crate::GilGuard::detach)).
    Detached,
    /// Blocked: waiting for the Gil (in an acquire, after a forced switch,
    /// or taking it back after a wait), or queued on a primitive in one of
    /// the Gil-releasing waits (`Lock::acquire_with`, a `Condition` wait
    /// through a [`GilGuard`](crate::GilGuard), ...). In those waits the
    /// status changes to `Waiting` as the thread joins the primitive's
    /// queue, so a thread seen `Waiting` there is woken by the primitive's
    /// next release, set or notify.
    Waiting,
    /// Holding the Gil.
    Attached,
}

use super::thread_word::{ATTACHED, DETACHED, ThreadWord, WAITING};

/// One thread's record for one [`Gil`](crate::Gil) (CPython's `PyThreadState`).
///
/// A thread gets one the first time it uses a Gil (any thread, including
/// threads not spawned by Rust), and keeps it until it ends.
/// [`Gil::thread_states`](crate::Gil::thread_states) lists them; an
/// `Arc<ThreadState>` can be kept and used from any thread, for example to
/// [`interrupt`](Self::interrupt) a thread blocked on the Gil.
///
/// ```
/// # #[cfg(feature = "std")] {
/// use gilock::{Gil, ThreadStatus};
///
/// let gil = Gil::new();
/// let guard = gil.acquire();
/// let me = guard.thread_state();
/// assert_eq!(me.status(), ThreadStatus::Attached);
/// assert_eq!(me.stats().acquisitions, 1);
/// drop(guard);
/// assert_eq!(gil.thread_states()[0].status(), ThreadStatus::Detached);
/// # }
/// ```
// C layout, fields the uncontended acquire + release touch first, aligned to
// a cache line so they share one; the alignment also leaves the low bits of
// the address free for the flags of a park token (`wait::TOKEN_LOW`).
#[repr(C, align(64))]
pub struct ThreadState {
    breaker: EvalBreaker,
    /// `Gil::eval_breaker` lent a reference bound to the Gil's lifetime:
    /// the state must outlive the thread (see `registry`).
    pub(crate) lent: AtomicBool,
    /// The guard count, status and flags (see `thread_word`); its own
    /// thread writes it.
    pub(super) word: ThreadWord,
    ident: u64,
    pub(crate) counters: ThreadCounters,
    /// The park key of the interruptible wait the thread is in, or 0.
    waiting_on: AtomicUsize,
    /// The thread's place in the Gil's queue while it waits (written by the
    /// thread before it parks, read by releasers under the queue lock).
    pub(crate) ticket: AtomicU64,
    /// Its virtual runtime under `SwitchPolicy::Interactive`, in ns (see
    /// `fair_share`): written by the thread itself before it waits and as
    /// it lets go with the queue locked, and by a waiter (queue locked)
    /// that finds it holding the Gil it took uncontended; read by others
    /// only with the queue locked.
    pub(crate) vruntime: AtomicU64,
    gil_id: u64,
    name: Option<String>,
    /// The event hook generation that has seen this thread's `Started`
    /// (see `hooks`); written by the thread itself only.
    pub(crate) hook_gen: crate::sync::UnmodeledAtomicU64,
    /// The id of the thread's current attachment (see `guard`); its own
    /// thread only.
    pub(crate) attachment: AtomicU64,
    /// The id the next suspension gives the attachments inside it.
    next_attachment: AtomicU64,
    /// The suspended attachments, innermost last: their ids and how many of
    /// their guards were dropped while they were suspended.
    suspended: UnsafeCell<Vec<(u64, usize)>>,
    /// The thread's live `GilCell` borrows for this Gil (see `cell`); its
    /// own thread only.
    pub(super) borrows: super::borrows::Borrows,
    /// When the thread last got the Gil after waiting for it: its contended
    /// hold is charged from then, not from the handoff (see `Gil::charge`),
    /// because until then it could not run (a parked heir's wake-up, a
    /// spinner's look). Its own thread only.
    resumed_at: UnsafeCell<Option<Instant>>,
}

// SAFETY:
// - every field but `suspended` and `borrows` is `Sync` (atomics,
//   immutable data);
// - `suspended` is touched only by the thread this state belongs to
//   (`push_suspended`, `pop_suspended`, `count_stray_drop` are called from
//   `GilGuard` methods, and `GilGuard` is neither `Send` nor `Sync`), so no
//   two threads ever access it;
// - so is `borrows`: from `GilCell` borrows, made through a guard and
//   neither `Send` nor `Sync` themselves, and from `GilGuard` methods;
// - and `resumed_at`: written by the thread's own wait for the Gil and
//   read by its own releases (see `set_resumed_at`).
unsafe impl Sync for ThreadState {}
// SAFETY: no field is tied to the thread that created the state.
unsafe impl Send for ThreadState {}

impl ThreadState {
    pub(crate) fn new(gil_id: u64) -> Self {
        Self {
            ident: crate::thread_id::current().get(),
            gil_id,
            name: current_name(),
            breaker: EvalBreaker::new(),
            waiting_on: AtomicUsize::new(0),
            ticket: AtomicU64::new(0),
            vruntime: AtomicU64::new(0),
            word: ThreadWord::new(),
            lent: AtomicBool::new(false),
            counters: ThreadCounters::new(),
            hook_gen: crate::sync::UnmodeledAtomicU64::new(0),
            attachment: AtomicU64::new(0),
            next_attachment: AtomicU64::new(1),
            suspended: UnsafeCell::new(Vec::new()),
            borrows: super::borrows::Borrows::new(),
            resumed_at: UnsafeCell::new(None),
        }
    }

    /// Records that the thread got the Gil just now after waiting for it.
    /// Called only by the thread's own wait for the Gil (`lock_slow` runs on
    /// the thread whose state it is given: see `Gil::current_state`).
    pub(super) fn set_resumed_at(&self, at: Instant) {
        // SAFETY: called on the thread this state belongs to (see the
        // `Sync` impl), so this is the only access to `resumed_at`.
        self.resumed_at.with_mut(|p| unsafe { *p = Some(at) });
    }

    /// When the thread last got the Gil after waiting. Called only by the
    /// thread's own releases (the releaser's state is its own: a
    /// `GilGuard`, which releases, is neither `Send` nor `Sync`).
    pub(super) fn resumed_at(&self) -> Option<Instant> {
        // SAFETY: as in `set_resumed_at`.
        self.resumed_at.with(|p| unsafe { *p })
    }

    /// The state's address: what the Gil's state word holds for its holder
    /// and a park token carries.
    #[inline]
    pub(crate) fn address(&self) -> usize {
        self as *const Self as usize
    }

    /// The thread's identifier: unique among all threads of the process for
    /// its whole life, never reused (unlike OS thread ids).
    #[doc(alias = "get_ident")]
    #[inline]
    pub fn ident(&self) -> u64 {
        self.ident
    }

    /// The thread's name as std knows it (`std::thread::Builder::name`),
    /// `None` for an unnamed thread and always `None` without `std`.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Whether the thread holds the Gil, waits, or neither. A snapshot: it
    /// may change as soon as it is read.
    pub fn status(&self) -> ThreadStatus {
        // Acquire, paired with the word's Release stores (`thread_word`): a
        // thread seen `Waiting` in a primitive's wait is seen queued there
        // (see `ThreadStatus`).
        match self.word.status() {
            ATTACHED => ThreadStatus::Attached,
            WAITING => ThreadStatus::Waiting,
            _ => ThreadStatus::Detached,
        }
    }

    /// How many times the thread took the Gil (kept in its word).
    pub(super) fn acquisitions(&self) -> u64 {
        self.word.acquisitions()
    }

    /// A snapshot of the thread's counters.
    pub fn stats(&self) -> ThreadStats {
        self.counters.snapshot(self.acquisitions())
    }

    /// The thread's eval breaker: the flags its checkpoints act on.
    #[inline]
    pub fn eval_breaker(&self) -> &EvalBreaker {
        &self.breaker
    }

    /// Interrupts the thread (the Ctrl-C that CPython delivers only to the
    /// main thread, and never to a thread blocked on a lock): its next
    /// [`GilGuard::checkpoint`](crate::GilGuard::checkpoint) reports
    /// `interrupted: true`, and if it is blocked in a wait that can be
    /// interrupted, that wait ends at once with `Err(Interrupted)`:
    /// - [`Gil::acquire_interruptible`](crate::Gil::acquire_interruptible)
    ///   (returning without the Gil);
    /// - every Gil-releasing `_with` wait (`Lock::acquire_with`,
    ///   `MutexExt::lock_with`, `Condition::wait_on_lock_with`,
    ///   `Semaphore::acquire_with`, `Event::wait_with`, `Barrier::wait_with`
    ///   and the rest) and every Condition wait through a `GilGuard`: they
    ///   return with the Gil held again and the primitive not taken (a
    ///   Condition wait takes its lock back first, as Python's does).
    ///
    /// An interrupt that comes before such a wait starts ends it before its
    /// first try. The flag is consumed by whichever of these sees it first.
    /// Callable from any thread, but not from a signal handler (it takes the
    /// park queue's lock to wake the thread).
    ///
    /// ```
    /// # #[cfg(feature = "std")] {
    /// use gilock::{Gil, Interrupted, Semaphore, ThreadStatus};
    ///
    /// let gil = Gil::new();
    /// let empty = Semaphore::new(0);
    /// std::thread::scope(|s| {
    ///     let (tx, rx) = std::sync::mpsc::channel();
    ///     s.spawn(move || {
    ///         let blocked: std::sync::Arc<gilock::ThreadState> = rx.recv().unwrap();
    ///         while blocked.status() != ThreadStatus::Waiting {
    ///             std::thread::yield_now();
    ///         }
    ///         blocked.interrupt(); // the Ctrl-C it would never see in CPython
    ///     });
    ///     let mut guard = gil.acquire();
    ///     tx.send(gil.current_thread_state()).unwrap();
    ///     assert_eq!(empty.acquire_with(&mut guard), Err(Interrupted));
    ///     assert!(gil.is_held_by_current_thread());
    /// });
    /// # }
    /// ```
    pub fn interrupt(&self) {
        // Dekker with the waiter (`set_waiting_on` then the flag check in
        // its `validate`): at least one side sees the other's write, and the
        // park queue's lock orders the rest, so no wakeup is lost. Both
        // sides use read-modify-writes, which always read the latest value:
        // if our read of `waiting_on` comes first, the waiter's swap reads
        // from it and, AcqRel to AcqRel, then sees our flag; if it comes
        // second, we see the key. So no single total order (SeqCst) is
        // needed, and loom checks AcqRel exactly (SeqCst it does not).
        self.breaker.set(INTERRUPT, Ordering::AcqRel);
        let key = self.waiting_on.fetch_add(0, Ordering::AcqRel);
        if key != 0 {
            let mine = self.address();
            let filter = |token: ParkToken| {
                if wait::token_owned_by(token, mine) {
                    FilterOp::Unpark
                } else {
                    FilterOp::Skip
                }
            };
            // SAFETY:
            // - waking a thread out of a wait on `key` with
            //   TOKEN_INTERRUPTED is part of every interruptible wait's
            //   protocol (`wait`), and only this thread's interruptible
            //   tokens match the filter;
            // - the callbacks touch nothing, and neither park nor unwind;
            // - if the wait is over, nobody carries our token and nothing
            //   happens.
            unsafe { park::unpark_filter(key, filter, |_| wait::TOKEN_INTERRUPTED) };
        }
    }

    /// The token this thread parks with in an interruptible wait, with the
    /// primitive's own `bits`, so that [`interrupt`](Self::interrupt) can
    /// pick it out of the queue (see `wait`'s module docs).
    pub(crate) fn interruptible_token(&self, bits: usize) -> ParkToken {
        debug_assert!(bits <= wait::TOKEN_BITS);
        ParkToken(self.address() | wait::ATTACHED | bits)
    }

    /// Sets the drop request on this thread (the holder's) breaker, from a
    /// waiter whose interval ran out without a switch.
    pub(crate) fn ask_to_drop(&self, counters: &GilCounters) {
        // Release: the holder that finds no waiters bit clears the request
        // with Acquire and looks again (`GilGuard::checkpoint`); it must then
        // see the bit this waiter saw before asking.
        let before = self.breaker.set(DROP_REQUEST, Ordering::Release);
        if before & DROP_REQUEST == 0 {
            counters.drop_requests.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Panics with a clear message when called from inside an event hook
    /// running on this thread: a hook must not use the Gil it observes (a
    /// `Suspended` hook calling `ensure` would release the Gil in the middle
    /// of its own release, and recurse).
    #[inline]
    pub(crate) fn check_not_in_hook(&self, what: &str) {
        if self.word.in_hook() {
            in_hook_panic(what);
        }
    }

    /// The fast acquire's look at the thread's word, before its
    /// compare-and-swap: panics (with nothing locked) if called from inside
    /// an event hook, as `check_not_in_hook`; else returns the word for
    /// `ThreadWord::attach_one`.
    #[inline]
    pub(crate) fn before_fast_acquire(&self) -> u64 {
        match self.word.before_attach() {
            Some(word) => word,
            None => in_hook_panic("acquire"),
        }
    }

    /// Marks the thread as running an event hook (or not any more).
    #[cfg(feature = "std")]
    pub(crate) fn set_in_hook(&self, running: bool) {
        self.word.set_in_hook(running);
    }

    /// Records that the attachment `id` is suspended, and gives the
    /// attachments inside the suspension a fresh id.
    pub(crate) fn push_suspended(&self, id: u64) {
        // SAFETY: called on the thread this state belongs to (see the
        // `Sync` impl), so this is the only access to `suspended`.
        self.suspended
            .with_mut(|list| unsafe { (*list).push((id, 0)) });
        let fresh = self.next_attachment.load(Ordering::Relaxed);
        self.next_attachment.store(fresh + 1, Ordering::Relaxed);
        self.attachment.store(fresh, Ordering::Relaxed);
    }

    /// Ends the suspension of attachment `id` (the innermost one); returns
    /// how many of its guards were dropped while it was suspended.
    pub(crate) fn pop_suspended(&self, id: u64) -> usize {
        // SAFETY: as in `push_suspended`.
        let top = self.suspended.with_mut(|list| unsafe { (*list).pop() });
        match top {
            Some((top, dropped)) if top == id => dropped,
            _ => unreachable!("suspensions end innermost first"),
        }
    }

    /// Counts the drop of a guard of attachment `id` if that attachment is
    /// suspended; false if it is not (the guard's attachment ended or
    /// joined the current one).
    pub(crate) fn count_stray_drop(&self, id: u64) -> bool {
        // SAFETY: as in `push_suspended`.
        self.suspended.with_mut(|list| unsafe {
            match (*list).iter_mut().find(|(suspended, _)| *suspended == id) {
                Some((_, dropped)) => {
                    *dropped += 1;
                    true
                }
                None => false,
            }
        })
    }

    /// Records the park key of the interruptible wait this thread is about
    /// to enter. Call it *before* parking, and have the park's `validate`
    /// return false when [`interrupt_pending`](Self::interrupt_pending):
    /// together with `interrupt`'s order (flag, then key) no interrupt is
    /// lost. A wait woken with `wait::TOKEN_INTERRUPTED` must call
    /// [`take_interrupt`](Self::take_interrupt) and return `Err(Interrupted)`.
    pub(crate) fn set_waiting_on(&self, key: usize) {
        // A read-modify-write, AcqRel: see `interrupt`.
        self.waiting_on.swap(key, Ordering::AcqRel);
    }

    /// Ends what [`set_waiting_on`](Self::set_waiting_on) began.
    pub(crate) fn clear_waiting_on(&self) {
        // Release (no total order: a late interrupt that still reads the
        // key finds no token of ours there, or a wait it may end).
        self.waiting_on.store(0, Ordering::Release);
    }

    /// Whether an interrupt is pending, for `validate` callbacks: a
    /// read-modify-write that changes nothing (see `interrupt`).
    pub(crate) fn interrupt_pending(&self) -> bool {
        // AcqRel: see `interrupt`.
        self.breaker.set(0, Ordering::AcqRel) & INTERRUPT != 0
    }

    /// Consumes a pending interrupt; returns whether there was one.
    pub(crate) fn take_interrupt(&self) -> bool {
        // AcqRel, as `interrupt_pending`: one location, no total order needed.
        self.interrupt_pending() && self.breaker.clear(INTERRUPT, Ordering::AcqRel) & INTERRUPT != 0
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
        self.word.set_status(v);
    }

    /// Whether something may still point at the state: a guard, a wait or
    /// detach in progress, or a breaker reference bound to the Gil's
    /// lifetime. Asked on the thread the state belongs to.
    pub(crate) fn pinned(&self) -> bool {
        // SAFETY: as in `push_suspended` (asked on the owning thread).
        let suspended = self.suspended.with(|list| unsafe { !(*list).is_empty() });
        suspended
            || self.word.guards() != 0
            || self.word.status() != DETACHED
            || self.lent.load(Ordering::Relaxed)
    }

    /// Marks the state as its thread's after the thread's locals are gone
    /// (see `registry`).
    pub(crate) fn mark_ended(&self) {
        self.word.mark_ended();
    }

    /// Whether the thread's locals are gone (see `registry`).
    #[inline]
    pub(crate) fn is_ended(&self) -> bool {
        self.word.is_ended()
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

#[cold]
#[inline(never)]
fn in_hook_panic(what: &str) -> ! {
    panic!(
        "{what} called from inside an event hook of the same Gil: a hook must not \
         take, release or wait for the Gil it observes (record the event and act on \
         it after the hook returns)"
    )
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
