//! The no-std (spinning) backend in a program that installed no source of
//! thread ids: `cargo test --no-default-features --test spin_backend`.
//!
//! Each test runs itself again as a child process, with nothing installed
//! (the other test files install a clock and thread ids in `setup()`, once
//! per process, for good), and checks how the child ended. Every wait on a
//! child is bounded, so a wedged child fails the test instead of hanging it.

// Not under Miri: each test runs the test binary again as a child process,
// which Miri's isolation does not allow (the other files run the spinning
// backend under Miri with `--no-default-features`).
#![cfg(all(not(feature = "std"), not(miri)))]

mod common;

use gilock::{Condition, FairMutex, RLock};
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::{Arc, mpsc};

const CHILD: &str = "GILOCK_SPIN_BACKEND_CHILD";

/// What the child printed and how it ended; `None` if it ran past
/// [`common::BOUND`] (it is killed then).
struct Outcome {
    success: bool,
    stdout: String,
    stderr: String,
}

fn run_child(test: &str) -> Option<Outcome> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD, test)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the test binary as a child");
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut stdout, mut stderr) = (String::new(), String::new());
        out.read_to_string(&mut stdout).unwrap();
        err.read_to_string(&mut stderr).unwrap();
        let _ = tx.send((stdout, stderr));
    });
    match rx.recv_timeout(common::BOUND) {
        Ok((stdout, stderr)) => Some(Outcome {
            success: child.wait().unwrap().success(),
            stdout,
            stderr,
        }),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            None
        }
    }
}

const STILL_WORKS: &str = "the park queue still works";

/// A `Condition` wait on an `RLock` checks that the caller owns the lock
/// inside `validate`, with the park queue locked; with no source of thread
/// ids that check panics ("call gilock::set_thread_id_source first"). The
/// regression: the panic left the spin backend's global queue lock held,
/// and every later park or unpark of every primitive spun for ever; the
/// program hung with no message.
///
/// What a user may rely on now: the mistake never wedges the program. It
/// either ends it with the panic's message (a panic inside a park callback
/// aborts, as in every backend), or the wait reports the lock as not held
/// and the program goes on; either way the parking lot still works. Here
/// the child catches whatever the misuse did, then parks in a condition
/// wait on a `FairMutex` (which needs no thread ids) and is woken by a
/// second thread.
///
/// Mutation: the abort-on-unwind wrappers in `park::park` removed and
/// `SpinGuard::drop` emptied (the release only at the end of
/// `Lot::with`, as before the fix) → "the child wedged".
#[test]
fn a_panic_in_a_park_callback_never_wedges_the_program() {
    const NAME: &str = "a_panic_in_a_park_callback_never_wedges_the_program";
    if std::env::var(CHILD).is_ok_and(|v| v == NAME) {
        let (cond, lock) = (Condition::new(), RLock::new());
        let misuse =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cond.wait_on_rlock(&lock)));
        eprintln!("the misuse ended: {misuse:?}");

        let shared = Arc::new((FairMutex::new(false), Condition::new()));
        let mut ready = shared.0.lock();
        let waker = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || {
                *shared.0.lock() = true;
                shared.1.notify_one();
            })
        };
        // The flag can only turn true while this thread waits: it parks.
        shared.1.wait_while(&mut ready, |ready| !*ready);
        drop(ready);
        waker.join().unwrap();
        println!("{STILL_WORKS}");
        return;
    }
    let Some(child) = run_child(NAME) else {
        panic!("the child wedged: no progress within {:?}", common::BOUND);
    };
    if child.success {
        assert!(
            child.stdout.contains(STILL_WORKS),
            "stdout:\n{}",
            child.stdout
        );
    } else {
        for expected in ["set_thread_id_source", "aborting"] {
            assert!(
                child.stderr.contains(expected),
                "the child ended without saying why ({expected:?} missing); stderr:\n{}",
                child.stderr
            );
        }
    }
}
