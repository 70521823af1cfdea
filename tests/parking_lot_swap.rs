//! A program written for parking_lot (`parking_lot_swap/program.rs`: a job
//! server with a `Mutex<VecDeque<_>>` and `Condvar` work queue, a
//! `ReentrantMutex<RefCell<_>>` logger in a `static`, mapped guards,
//! `try_lock_for`, `Condvar::wait_for`, a `FairMutex`) compiled twice,
//! unchanged: once on parking_lot itself, once after
//! `use gilock as parking_lot;`. Both runs must report the same results,
//! and the right ones.
#![cfg(feature = "std")]

mod common;

mod on_parking_lot {
    include!("parking_lot_swap/program.rs");
}

mod on_gilock {
    use gilock as parking_lot; // the one line that changes
    include!("parking_lot_swap/program.rs");
}

fn expected_answers() -> std::collections::BTreeMap<usize, String> {
    (0..60usize)
        .map(|id| {
            let n = id as u64;
            let answer = match id % 3 {
                0 => (n * n).to_string(),
                1 => (n * (n + 1) / 2).to_string(),
                _ => format!("hello, client {id}"),
            };
            (id, answer)
        })
        .collect()
}

/// One test, since the program keeps its totals and log in `static`s
/// (each build has its own): it runs once on each.
#[test]
fn the_parking_lot_program_runs_unchanged_on_gilock() {
    common::setup();
    let report = common::spawn(on_gilock::run).join();
    assert_eq!(report.answers, expected_answers());
    assert_eq!(report.done, 60);
    assert_eq!(report.jobs_by_worker, 60);
    assert_eq!(report.audit_len, 60);
    assert_eq!(report.served_total, 60);
    assert_eq!(report.log_lines, 120);
    assert!(report.log_records_whole, "a log record was split");
    assert!(
        !report.timed_lock_while_held,
        "try_lock_for took a held lock"
    );
    assert!(report.timed_lock_when_free);
    assert!(report.idle_wait_timed_out);

    // The program means what the assertions above say it means: on
    // parking_lot it reports the same (the two builds' `Report` types are
    // distinct, so they are compared as printed).
    let theirs = common::spawn(on_parking_lot::run).join();
    assert_eq!(format!("{report:?}"), format!("{theirs:?}"));
}
