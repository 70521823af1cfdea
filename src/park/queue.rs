//! The FIFO wait queue shared by the loom model and the spinning backend,
//! with `parking_lot_core`'s token and result types, and the messages with
//! which both reject a nested park.
//!
//! It holds one queue for all keys (the model and no-std builds favour
//! simplicity over a hash table); order within a key is arrival order.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

/// The panic of a park or unpark from a callback that runs with the queue
/// locked (loom and spin backends).
pub(super) const NESTED_IN_LOCKED_CALLBACK: &str = "gilock: park or unpark called from a park callback that \
     runs with the queue locked (validate, timed_out, an unpark filter or callback); these \
     callbacks must not call into the parking lot";

/// The panic of a park from `before_sleep` (loom and spin backends).
pub(super) const NESTED_IN_BEFORE_SLEEP: &str = "gilock: park called from inside a park's before_sleep \
     callback on the same thread; before_sleep may unpark, never park";

/// A value a parked thread carries, for `unpark_filter` to inspect.
#[derive(Copy, Clone, Eq, PartialEq, Debug)]
pub(crate) struct ParkToken(pub usize);

/// A value an unparker hands to each thread it wakes.
#[derive(Copy, Clone, Eq, PartialEq, Debug)]
pub(crate) struct UnparkToken(pub usize);

/// How a park ended.
#[derive(Copy, Clone, Eq, PartialEq, Debug)]
pub(crate) enum ParkResult {
    /// Another thread unparked us with this token.
    Unparked(UnparkToken),
    /// `validate` returned false; the thread never joined the queue.
    Invalid,
    /// The deadline passed and the thread left the queue by itself.
    TimedOut,
}

/// What an unpark did, passed to its callback under the queue lock.
#[derive(Copy, Clone, Default, Eq, PartialEq, Debug)]
pub(crate) struct UnparkResult {
    /// How many threads were removed from the queue to be woken.
    pub unparked_threads: usize,
    /// How many threads were moved to another key (`unpark_requeue`).
    pub requeued_threads: usize,
    /// Whether threads remain parked on the key.
    pub have_more_threads: bool,
}

/// `unpark_filter`'s verdict on one parked thread.
#[derive(Copy, Clone, Eq, PartialEq, Debug)]
#[allow(dead_code)]
pub(crate) enum FilterOp {
    /// Wake it and look at the next one.
    Unpark,
    /// Leave it parked and look at the next one.
    Skip,
    /// Leave it and every later one parked.
    Stop,
}

/// What `unpark_requeue` does, as its `validate` decides.
#[derive(Copy, Clone, Eq, PartialEq, Debug)]
#[allow(dead_code)]
pub(crate) enum RequeueOp {
    /// Nothing.
    Abort,
    /// Wake the oldest thread and move the rest to the other key.
    UnparkOneRequeueRest,
    /// Move every thread to the other key.
    RequeueAll,
    /// Wake the oldest thread, leave the rest.
    UnparkOne,
    /// Move the oldest thread to the other key, leave the rest.
    RequeueOne,
}

struct Waiter<S> {
    key: usize,
    token: ParkToken,
    slot: S,
}

/// Parked threads in arrival order; `S` is how a backend wakes one.
pub(super) struct Queue<S> {
    waiters: VecDeque<Waiter<S>>,
}

impl<S> Queue<S> {
    pub(super) const fn new() -> Self {
        Self {
            waiters: VecDeque::new(),
        }
    }

    pub(super) fn push(&mut self, key: usize, token: ParkToken, slot: S) {
        self.waiters.push_back(Waiter { key, token, slot });
    }

    /// Takes the waiter whose slot `is_mine` out of the queue, as a timed-out
    /// thread does; returns its key and whether it was the last one on that
    /// key, or `None` when an unparker removed it first.
    pub(super) fn remove(&mut self, is_mine: impl Fn(&S) -> bool) -> Option<(usize, bool)> {
        let index = self.waiters.iter().position(|w| is_mine(&w.slot))?;
        let key = self.waiters.remove(index)?.key;
        let was_last = !self.waiters.iter().any(|w| w.key == key);
        Some((key, was_last))
    }

    /// Every waiter's slot, for the model timer to wake timed waiters.
    #[cfg(loom)]
    pub(super) fn slots(&self) -> impl Iterator<Item = &S> {
        self.waiters.iter().map(|w| &w.slot)
    }

    /// Removes the waiters on `key` that `filter` selects, oldest first, and
    /// runs `callback` before anyone is woken. Returns what happened, the
    /// token for the woken and their slots.
    pub(super) fn unpark_filter(
        &mut self,
        key: usize,
        mut filter: impl FnMut(ParkToken) -> FilterOp,
        callback: impl FnOnce(UnparkResult) -> UnparkToken,
    ) -> (UnparkResult, UnparkToken, Vec<S>) {
        let mut result = UnparkResult::default();
        let mut woken = Vec::new();
        let mut index = 0;
        while index < self.waiters.len() {
            if self.waiters[index].key != key {
                index += 1;
                continue;
            }
            match filter(self.waiters[index].token) {
                FilterOp::Unpark => {
                    if let Some(waiter) = self.waiters.remove(index) {
                        woken.push(waiter.slot);
                    }
                }
                FilterOp::Skip => {
                    result.have_more_threads = true;
                    index += 1;
                }
                FilterOp::Stop => {
                    result.have_more_threads = true;
                    break;
                }
            }
        }
        result.unparked_threads = woken.len();
        let token = callback(result);
        (result, token, woken)
    }
}

impl<S> Queue<S> {
    /// Moves the threads on `from` to the tail of `to`'s queue (in their
    /// order), waking the oldest first if `op` says so, as
    /// `parking_lot_core::unpark_requeue`: `callback` runs (unless `op` is
    /// `Abort`) before anyone is woken, and learns how many were woken and
    /// requeued and whether threads remain on `from`.
    pub(super) fn unpark_requeue(
        &mut self,
        from: usize,
        to: usize,
        validate: impl FnOnce() -> RequeueOp,
        callback: impl FnOnce(RequeueOp, UnparkResult) -> UnparkToken,
    ) -> (UnparkResult, UnparkToken, Option<S>) {
        let mut result = UnparkResult::default();
        let op = validate();
        if op == RequeueOp::Abort {
            return (result, UnparkToken(0), None);
        }
        let wake_one = matches!(op, RequeueOp::UnparkOneRequeueRest | RequeueOp::UnparkOne);
        let only_one = matches!(op, RequeueOp::UnparkOne | RequeueOp::RequeueOne);
        let mut woken = None;
        let mut moved = Vec::new();
        let mut index = 0;
        while index < self.waiters.len() {
            if self.waiters[index].key != from {
                index += 1;
                continue;
            }
            if only_one && (woken.is_some() || !moved.is_empty()) {
                result.have_more_threads = true;
                break;
            }
            let Some(mut waiter) = self.waiters.remove(index) else {
                break;
            };
            if wake_one && woken.is_none() {
                woken = Some(waiter.slot);
                result.unparked_threads = 1;
            } else {
                waiter.key = to;
                moved.push(waiter);
                result.requeued_threads += 1;
            }
        }
        self.waiters.extend(moved);
        let token = callback(op, result);
        (result, token, woken)
    }
}

/// The filter of `unpark_one`: the oldest waiter, and a look at whether
/// another one remains.
pub(super) fn first_only() -> impl FnMut(ParkToken) -> FilterOp {
    let mut taken = false;
    move |_| {
        if taken {
            FilterOp::Stop
        } else {
            taken = true;
            FilterOp::Unpark
        }
    }
}

#[cfg(test)]
// Under Miri, whose isolation has no child processes, the tests that use
// this are compiled out.
#[cfg_attr(miri, allow(dead_code))]
pub(super) mod child_process {
    //! For the backends' tests of what aborts the process: such a test runs
    //! itself again as a child process (the same test, told by an
    //! environment variable to play the child) and checks how the child
    //! ended. Every wait on a child is bounded, so a child that hangs fails
    //! the test instead of hanging it.

    use std::string::String;
    use std::sync::mpsc;
    use std::time::Duration;

    /// Far beyond any mechanism under test; reached only by a hang.
    pub(crate) const BOUND: Duration = Duration::from_secs(10);
    const CHILD: &str = "GILOCK_PARK_TEST_CHILD";

    /// The test's path as the harness names it (without the crate).
    fn test_path(module: &str, name: &str) -> String {
        let module = module.split_once("::").map_or("", |(_, path)| path);
        std::format!("{module}::{name}")
    }

    /// Whether this process is the child of test `name` in `module`
    /// (`module_path!()` of the test).
    pub(crate) fn is_child(module: &str, name: &str) -> bool {
        std::env::var(CHILD).is_ok_and(|v| v == test_path(module, name))
    }

    /// Runs the test as a child; returns whether it exited successfully,
    /// and its stderr. Fails if it runs past [`BOUND`].
    pub(crate) fn run(module: &str, name: &str) -> (bool, String) {
        let path = test_path(module, name);
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", &path, "--nocapture", "--test-threads=1"])
            .env(CHILD, &path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn the test binary as a child");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut { stderr }, &mut text).unwrap();
            let _ = tx.send(text);
        });
        let text = match rx.recv_timeout(BOUND) {
            Ok(text) => text,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("child `{path}` hung for {BOUND:?}: the rejection did not fire");
            }
        };
        (child.wait().unwrap().success(), text)
    }

    /// Asserts that the child aborted after panicking with `message`.
    pub(crate) fn assert_aborts_with(module: &str, name: &str, message: &str) {
        let (success, stderr) = run(module, name);
        assert!(!success, "child `{name}` should have aborted; stderr:\n{stderr}");
        assert!(
            stderr.contains(message),
            "child `{name}` did not report {message:?}; stderr:\n{stderr}"
        );
        assert!(
            stderr.contains("aborting"),
            "child `{name}` did not abort; stderr:\n{stderr}"
        );
    }
}
