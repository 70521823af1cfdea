//! `SwitchPolicy`: whom the Gil is handed to.

/// How the [`Gil`](crate::Gil) chooses the next holder among its waiters.
///
/// Both policies switch CPU-bound threads every switch interval, and behave
/// the same while nobody comes back from a voluntary release (`detach`, a
/// wait through a guard). They differ for a thread that does I/O next to
/// CPU-bound ones:
///
/// | (2 cores, AMD EPYC VM, 4 December; 5 ms interval; quiet machine) | `Fifo` | `Interactive` | CPython 3 |
/// |---|---|---|---|
/// | echo round trips with 1 / 2 / 4 CPU-bound threads, share of the rate without | 0.5-0.6% / 0.3% / 0.1% | 275-303% / 256-315% / 131-240% | 0.9-1% / 0.1-0.3% / 0.1% |
/// | p99 of a round trip, 2 CPU-bound threads | 28.7-28.8 ms | 45-60 µs | 56-79 ms |
/// | CPU-bound threads' work while the echo runs, share of Fifo's | 100% | 66-83% | (other units) |
/// | thread back from 1 ms of I/O, 2 CPU-bound threads: mean / p99 wait | 9.4-9.7 / 10.3-12.0 ms | 0.01 / 0.04-0.05 ms | 23-24 / 91-122 ms |
/// | CPU-only: slice p99 / a pair's throughput against one thread | 5.2 ms / 97-99% | 5.4-6.2 ms / 97-98% | 5.2 ms / 100-104% |
///
/// The README has the full table and how to reproduce it
/// (`cargo run --release --example convoy`, `cargo bench --bench gil`).
///
/// # The default
///
/// `Fifo`, because it is what CPython does and because `Interactive` costs
/// CPU-bound threads a fifth to a quarter of their throughput while an I/O
/// thread runs flat out next to them (66-83% of their work under `Fifo`,
/// against a target of 85%): the I/O thread really holds the Gil then (its
/// 2 µs of work per message at 50-70 thousand round trips a second, three
/// times its rate without CPU-bound threads, whose busy cores keep its
/// wake-ups short), and every round trip costs the CPU-bound holder two
/// loans and two returns. Under `Fifo` that thread barely runs at all.
/// Choose `Interactive` (`gil.set_policy(SwitchPolicy::Interactive)`) for
/// a server or GUI thread next to CPU-bound threads: its round trips go
/// from intervals to microseconds.
///
/// One target is missed by both policies: in the README's starvation
/// scenario (2 CPU-bound threads against 4 threads that hold the Gil 2 µs
/// and detach 5 µs of busy work) the detaching threads get 51-58% of
/// their max-min fair share in their worst second under `Interactive`
/// (0.3% under `Fifo`), against a target of 80% (75-80% in three quiet
/// runs on an Intel Xeon VM). The README shows that the figure rises when
/// the CPU-bound threads hold the Gil less, even when the detaching
/// threads then hold it no more.
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
