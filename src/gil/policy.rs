//! `SwitchPolicy`: whom the Gil is handed to.

/// How the [`Gil`](crate::Gil) chooses the next holder among its waiters.
///
/// The default is [`Fifo`](Self::Fifo), CPython's behaviour made fair, until
/// the convoy measurements show [`Interactive`](Self::Interactive) to be the
/// better default for the workloads this crate targets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SwitchPolicy {
    /// Waiters are served in arrival order. A waiter that waited a whole
    /// switch interval without seeing a switch asks the holder to drop the
    /// Gil (CPython's `ceval_gil.c`), so each waiter waits about one
    /// interval per thread ahead of it.
    #[default]
    Fifo,
    /// Beazley's remedy for the convoy effect: a thread coming back from a
    /// voluntary release (`detach`, a Condition wait) outranks threads that
    /// were preempted, and asks for the Gil at once instead of waiting a
    /// whole interval. I/O-bound threads then get the Gil back within one
    /// checkpoint of a CPU-bound holder, at the cost of strict arrival order.
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
