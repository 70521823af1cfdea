//! `--scenario interrupt`: the interpreter's main thread blocks in
//! `Lock.acquire()` on a lock that is never released, while CPU-bound VM
//! threads run; it is interrupted, first by a timer (another thread calls
//! `ThreadState::interrupt`), then by Ctrl-C (SIGINT, turned into the same
//! call by `gilock::signal::SigintBridge`). Each time, `Lock.acquire()`
//! raises KeyboardInterrupt with the Gil held again, and the demo prints
//! how long that took from `interrupt()`: the latency CPython cannot offer
//! (its Ctrl-C waits for the lock, which here is never released).

use crate::args::Args;
use crate::report::ms;
use crate::vm::{self, Interp, Raised, Vm, Waits};
use gilock::signal::SigintBridge;
use gilock::{Gil, Semaphore, SwitchPolicy, ThreadState, ThreadStatus};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

const TIMER_ROUNDS: usize = 5;
const SIGNAL_ROUNDS: usize = 3;

/// One delivered KeyboardInterrupt.
struct Round {
    how: &'static str,
    /// From `ThreadState::interrupt` to `Lock.acquire()` raising, Gil held.
    latency: Duration,
    /// For a SIGINT the demo sent itself: from the signal to the raise.
    from_signal: Option<Duration>,
}

pub fn run(args: &Args) -> Result<(), String> {
    let gil = Gil::with_switch_interval(args.switch_interval);
    if args.policy == crate::args::Policy::Interactive {
        gil.set_policy(SwitchPolicy::Interactive);
    }
    let interp = Interp::new(gil);
    let blocker = &interp.threading.locks[vm::LOCK_BLOCKER];
    // Held by "another thread" that never lets go: this controller, which
    // holds no Gil. Only a KeyboardInterrupt ends `blocker.acquire()`.
    blocker.acquire();
    let cpu_threads = args.cpu_threads.max(1);
    println!(
        "interrupt scenario: the main VM thread blocks in Lock.acquire() on a lock nobody \
         releases; {cpu_threads} CPU thread(s) run meanwhile (switch interval {:.3} ms)\n",
        ms(args.switch_interval)
    );

    let stop = AtomicBool::new(false);
    let in_acquire = AtomicBool::new(false);
    // The main VM thread waits on it (Gil released) between rounds.
    let next_round = Semaphore::new(0);
    let done = AtomicBool::new(false);
    let cpu_code = vm::cpu_program(true);
    let blocked_code = vm::blocked_program();
    let (state_tx, state_rx) = mpsc::channel::<Arc<ThreadState>>();
    let (raised_tx, raised_rx) = mpsc::channel::<Instant>();

    let (rounds, cpu_runs) = thread::scope(|s| -> Result<(Vec<Round>, u64), String> {
        let cpu: Vec<_> = (0..cpu_threads)
            .map(|i| {
                let (interp, stop, code) = (&interp, &stop, &cpu_code);
                thread::Builder::new()
                    .name(format!("cpu-{i}"))
                    .spawn_scoped(s, move || {
                        let (mut vm, mut waits) = (Vm::new(code), Waits::default());
                        let mut guard = interp.gil.acquire();
                        let mut runs = 0u64;
                        while !stop.load(Relaxed) {
                            if let Err(raised) = vm.run(interp, &mut guard, None, &mut waits) {
                                panic!("cpu-{i}: uncaught {raised}");
                            }
                            runs += 1;
                        }
                        runs
                    })
                    .expect("spawn a CPU thread")
            })
            .collect();
        let main_vm = {
            let (interp, in_acquire, next_round, done) = (&interp, &in_acquire, &next_round, &done);
            let code = &blocked_code;
            thread::Builder::new()
                .name("main".into())
                .spawn_scoped(s, move || {
                    let mut vm = Vm::new(code);
                    vm.in_lock_acquire = Some(in_acquire);
                    let mut waits = Waits::default();
                    let mut guard = interp.gil.acquire();
                    state_tx.send(interp.gil.current_thread_state()).unwrap();
                    loop {
                        match vm.run(interp, &mut guard, None, &mut waits) {
                            Err(Raised::KeyboardInterrupt { at, op }) => {
                                assert!(
                                    matches!(op, vm::Op::LockAcquire(vm::LOCK_BLOCKER)),
                                    "interrupted elsewhere: {op:?}"
                                );
                                assert!(interp.gil.is_held_by_current_thread());
                                raised_tx.send(at).unwrap();
                            }
                            other => panic!("main: Lock.acquire() ended with {other:?}"),
                        }
                        // The next round, without the Gil while it waits.
                        next_round
                            .acquire_with(&mut guard)
                            .expect("not interrupted");
                        if done.load(Relaxed) {
                            break;
                        }
                    }
                })
                .expect("spawn the main VM thread")
        };

        let me = state_rx.recv().map_err(|e| e.to_string())?;
        // Blocked in Lock.acquire(): inside the call and queued on the lock.
        let wait_until_blocked = || {
            while !(in_acquire.load(Relaxed) && me.status() == ThreadStatus::Waiting) {
                thread::sleep(Duration::from_micros(100));
            }
            // Let it sit blocked for a moment, the CPU threads running.
            thread::sleep(Duration::from_millis(20));
        };
        let receive = || {
            raised_rx
                .recv_timeout(Duration::from_secs(10))
                .map_err(|_| "the interrupt did not reach the main VM thread".to_string())
        };
        let mut rounds = Vec::new();
        for _ in 0..TIMER_ROUNDS {
            wait_until_blocked();
            let sent = Instant::now();
            me.interrupt();
            let at = receive()?;
            rounds.push(Round {
                how: "timer: ThreadState::interrupt",
                latency: at - sent,
                from_signal: None,
            });
            next_round.release(1);
        }

        let bridge = SigintBridge::install().map_err(|e| format!("SIGINT bridge: {e}"))?;
        bridge.set_target(Some(me.clone()));
        let wait = args
            .ctrl_c_wait
            .unwrap_or(if std::io::stdin().is_terminal() {
                Duration::from_secs(3)
            } else {
                Duration::ZERO
            });
        if !wait.is_zero() {
            wait_until_blocked();
            println!(
                "press Ctrl-C within {:.0} s to interrupt Lock.acquire() yourself \
                 (else the demo sends SIGINT itself)...",
                wait.as_secs_f64()
            );
            let until = Instant::now() + wait;
            while bridge.delivered() == 0 && Instant::now() < until {
                thread::sleep(Duration::from_millis(5));
            }
            if bridge.delivered() > 0 {
                let at = receive()?;
                let delivered = bridge.last_delivery().expect("delivered");
                rounds.push(Round {
                    how: "your Ctrl-C: SIGINT -> bridge",
                    latency: at - delivered,
                    from_signal: None,
                });
                next_round.release(1);
            }
        }
        for _ in 0..SIGNAL_ROUNDS {
            wait_until_blocked();
            let before = bridge.delivered();
            let sent = Instant::now();
            bridge.raise().map_err(|e| format!("raise(SIGINT): {e}"))?;
            let at = receive()?;
            assert!(bridge.delivered() > before);
            let delivered = bridge.last_delivery().expect("delivered");
            rounds.push(Round {
                how: "Ctrl-C: SIGINT -> bridge",
                latency: at - delivered,
                from_signal: Some(at - sent),
            });
            next_round.release(1);
        }
        drop(bridge); // Ctrl-C ends the demo again from here on
        done.store(true, Relaxed);
        next_round.release(1);
        main_vm.join().map_err(|_| "the main VM thread panicked")?;
        stop.store(true, Relaxed);
        let cpu_runs = cpu
            .into_iter()
            .map(|h| h.join().expect("a CPU thread panicked"))
            .sum();
        Ok((rounds, cpu_runs))
    })?;
    blocker.release().map_err(|e| e.to_string())?;

    println!(
        "{:<3} {:<32} {:>28} {:>18}",
        "#", "how", "interrupt() -> raised, Gil held", "SIGINT -> raised"
    );
    for (i, r) in rounds.iter().enumerate() {
        println!(
            "{:<3} {:<32} {:>25.3} ms {:>15}",
            i + 1,
            r.how,
            ms(r.latency),
            r.from_signal
                .map_or_else(|| "-".to_string(), |d| format!("{:.3} ms", ms(d)))
        );
    }
    let worst = rounds.iter().map(|r| r.latency).max().unwrap_or_default();
    println!(
        "\nevery interrupt raised KeyboardInterrupt in Lock.acquire() with the Gil held (worst \
         {:.3} ms), though the lock was never released; CPython's Ctrl-C would wait for it",
        ms(worst)
    );

    // The CPU threads' shared state is checked as in the main demo.
    let state = interp.into_state();
    let want = cpu_runs as i64 * vm::CPU_BATCH;
    let ok = state.globals[vm::G_COUNTER] == want
        && state.globals[vm::G_LOCKED] == cpu_runs as i64
        && state.globals[vm::G_RLOCKED] == cpu_runs as i64
        && state.objects.iter().all(|o| o.refcount == 1);
    if ok {
        println!(
            "integrity: OK — {cpu_runs} CPU runs: counter = {want}, locked = rlocked = {cpu_runs}, \
             refcounts 1"
        );
        Ok(())
    } else {
        Err(format!(
            "integrity: FAILED — counter {} (want {want}), locked {}, rlocked {} (want {cpu_runs})",
            state.globals[vm::G_COUNTER],
            state.globals[vm::G_LOCKED],
            state.globals[vm::G_RLOCKED]
        ))
    }
}
