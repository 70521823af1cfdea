//! `SwitchPolicy`: whom the Gil is handed to.

/// How the [`Gil`](crate::Gil) chooses the next holder among its waiters.
///
/// Both policies switch CPU-bound threads every switch interval, and behave
/// the same while nobody comes back from a voluntary release (`detach`, a
/// wait through a guard). They differ for a thread that does I/O next to
/// CPU-bound ones:
///
/// | (2 cores, 5 ms interval; quiet machine) | `Fifo` | `Interactive` | CPython 3 |
/// |---|---|---|---|
/// __TABLE__
///
/// The README has the full table and how to reproduce it
/// (`cargo run --release --example convoy`, `cargo bench --bench gil`).
///
/// # The default
///
/// __DEFAULT__
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SwitchPolicy {
    /// CPython's `ceval_gil.c`: a waiter that waited a whole switch interval
    /// without seeing a switch asks the holder to drop the Gil, and waiters
    /// are served in arrival order, so each waits about one interval per
    /// thread ahead of it. A thread back from `detach` queues at the tail
    /// like any other: behind a CPU-bound waiter it waits out the holder's
    /// slice and that waiter's (the convoy effect, bpo-7946).
    #[default]
    Fifo,
    /// Fair shares by time, as Linux's CFS schedules tasks, against the
    /// convoy effect:
    /// - each thread has a virtual runtime: the Gil time it held while
    ///   others waited (timed on slow paths only). A waiter asks the holder
    ///   to drop the Gil once it is half an interval below the holder, and
    ///   the Gil goes to the waiter with the lowest: CPU-bound threads take
    ///   turns every interval, and every thread gets at least its max-min
    ///   fair share (one that holds the Gil briefly gets all it asks for);
    /// - a thread back from a voluntary release comes back with up to one
    ///   interval of credit, so it asks at once and gets the Gil at the
    ///   holder's next checkpoint (it spins for it rather than sleeping);
    /// - the holder it preempted *lends* it the Gil: at the borrower's next
    ///   release the Gil goes back to the lender (which spins for it),
    ///   unless another waiter is owed it more; a parked CPU-bound thread is
    ///   not woken to compete for the cores the I/O path needs.
    ///
    /// A waiter is therefore served once its fair share is due, whatever
    /// the threads around it do: while it waits, no other thread holds the
    /// Gil for more than about two intervals.
    Interactive,
}

impl SwitchPolicy {
    pub(crate) const fn to_u8(self) -> u8 {
        match self {
            SwitchPolicy::Fifo => 0,
            SwitchPolicy::Interactive => 1,
        }
    }

    pub(crate) const fn from_u8(v: u8) -> Self {
        match v {
            1 => SwitchPolicy::Interactive,
            _ => SwitchPolicy::Fifo,
        }
    }
}
