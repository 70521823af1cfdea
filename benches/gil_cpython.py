#!/usr/bin/env python3
"""CPython's GIL under the scenarios of benches/gil.rs, for a side-by-side table.

Run by `cargo bench --bench gil` when python3 is on PATH; prints one JSON
object on stdout (all times in ms). Standalone:

    python3 benches/gil_cpython.py [--secs S] [--interval-ms MS]

Scenarios (sys.setswitchinterval = interval):
  c  two CPU-bound threads doing ~1 us of work per iteration. A thread cannot
     see the GIL, so a gap between two consecutive iterations longer than
     GAP_MS, during which the other thread made progress, is taken as "lost
     the GIL and waited to get it back": its length is the wait, the time
     between such gaps is a slice. (Gaps during which neither thread ran are
     the OS preempting the process, and are not counted.) Throughput of the pair is
     compared with one thread alone, per wall-clock second and per CPU-second
     of the threads (time.thread_time).
  d  the same two CPU threads plus one thread that sleeps 1 ms in a loop
     (time.sleep releases the GIL). Its wait to get the GIL back is the
     elapsed time of each sleep minus the median of the same sleep measured
     with no other thread running.
"""

import bisect
import json
import os
import statistics
import sys
import threading
import time

perf = time.perf_counter

# Longer than any iteration (~1 us) or ordinary OS hiccup, much shorter than
# an interval: a gap this long means another thread ran.
GAP_MS = 0.2


def percentile(xs, p):
    """Nearest-rank percentile, as benches/gil.rs computes it."""
    if not xs:
        return None
    xs = sorted(xs)
    rank = max(1, min(len(xs), -(-len(xs) * p // 100)))
    return xs[int(rank) - 1]


def active_time(w, t0, t1):
    """How long worker `w` made progress between t0 and t1."""
    lo, hi = max(t0, w["start"]), min(t1, w["end"])
    if hi <= lo:
        return 0.0
    t = hi - lo
    gaps = w["gaps"]
    i = max(0, bisect.bisect_left(gaps, (lo,)) - 1)
    while i < len(gaps) and gaps[i][0] < hi:
        g0, g1 = gaps[i]
        t -= max(0.0, min(g1, hi) - max(g0, lo))
        i += 1
    return t


def gil_gaps(me, other):
    """The gaps of `me` during which `other` ran: `me` had lost the GIL.

    A gap during which the other thread did not run either was the OS
    preempting `me` (other processes use the CPUs too), not a GIL switch;
    counting those would make CPython look as if it switched more often and
    had shorter slices than it does.
    """
    return [(g0, g1) for g0, g1 in me["gaps"] if active_time(other, g0, g1) > 0.5 * (g1 - g0)]


def calibrate():
    """Inner-loop count that makes one iteration of `work` take about 1 us."""
    k = 1
    while True:
        n = 20000
        t0 = perf()
        for _ in range(n):
            x = 0
            for _ in range(k):
                x += 1
        per_iter = (perf() - t0) / n
        if per_iter >= 1e-6 or k >= 1 << 12:
            return k
        k = max(k + 1, int(k * 1e-6 / per_iter))


def cpu_worker(k, barrier, stop, out):
    gap = GAP_MS / 1e3
    n = 0
    gaps = []  # (start, end) of each gap
    barrier.wait()
    stop_at = stop[0]
    cpu0 = time.thread_time()
    last = perf()
    start = last
    while last < stop_at:
        x = 0
        for _ in range(k):
            x += 1
        now = perf()
        if now - last > gap:
            gaps.append((last, now))
        last = now
        n += 1
    out.append({"n": n, "gaps": gaps, "start": start, "end": last, "cpu": time.thread_time() - cpu0})


def io_worker(baseline, barrier, stop, out):
    waits = []
    barrier.wait()
    stop_at = stop[0]
    while perf() < stop_at:
        t0 = perf()
        time.sleep(0.001)
        waits.append(max(0.0, perf() - t0 - baseline))
    out.append({"waits": waits})


def run(k, cpu_threads, secs, baseline=None):
    parties = cpu_threads + (1 if baseline is not None else 0)
    barrier = threading.Barrier(parties + 1)
    cpu_out, io_out = [], []
    # The main thread sets the deadline, then passes the barrier with the
    # workers, so all of them start together and read the same deadline.
    stop = [0.0]
    threads = [
        threading.Thread(target=cpu_worker, args=(k, barrier, stop, cpu_out))
        for _ in range(cpu_threads)
    ]
    if baseline is not None:
        threads.append(threading.Thread(target=io_worker, args=(baseline, barrier, stop, io_out)))
    for t in threads:
        t.start()
    stop[0] = perf() + secs
    barrier.wait()
    for t in threads:
        t.join()
    return cpu_out, io_out


def ms(x):
    return None if x is None else x * 1e3


def main():
    secs = float(os.environ.get("GILOCK_BENCH_SECS", "3"))
    interval_ms = 5.0
    argv = sys.argv[1:]
    while argv:
        flag = argv.pop(0)
        if flag == "--secs":
            secs = float(argv.pop(0))
        elif flag == "--interval-ms":
            interval_ms = float(argv.pop(0))
        else:
            sys.exit(f"unknown flag {flag}")
    sys.setswitchinterval(interval_ms / 1e3)
    k = calibrate()

    # (c) two CPU threads. The ceiling (one thread alone) and the pair
    # alternate in three rounds, so that load from other processes, which
    # comes and goes, hits both alike; an unmeasured run first warms up.
    run(k, 1, secs / 10)
    alone, pair, pair_runs = [], [], []
    for _ in range(3):
        alone += run(k, 1, secs / 6)[0]
        p, _ = run(k, 2, secs / 3)
        pair += p
        pair_runs.append(p)
        alone += run(k, 1, secs / 6)[0]
    alone_n = sum(w["n"] for w in alone)
    alone_rate = alone_n / sum(w["end"] - w["start"] for w in alone)
    alone_cpu_rate = alone_n / sum(w["cpu"] for w in alone)
    span = sum(max(w["end"] for w in p) - min(w["start"] for w in p) for p in pair_runs)
    pair_rate = sum(w["n"] for w in pair) / span
    # Per CPU-second of the threads: meaningful even when other processes
    # take CPUs away, which wall-clock rates are not.
    pair_cpu_rate = sum(w["n"] for w in pair) / sum(w["cpu"] for w in pair)
    waits, slices, switches = [], [], 0
    for a, b in pair_runs:
        for me, other in ((a, b), (b, a)):
            lost = gil_gaps(me, other)
            switches += len(lost)
            waits += [g1 - g0 for g0, g1 in lost]
            # A slice runs from the end of one GIL gap to the start of the
            # next (OS preemptions inside it count as part of it, as in the
            # Rust bench, which times slices by the clock too).
            slices += [lost[i + 1][0] - lost[i][1] for i in range(len(lost) - 1)]

    # (d) two CPU threads + a thread sleeping 1 ms in a loop.
    base = []
    for _ in range(200):
        t0 = perf()
        time.sleep(0.001)
        base.append(perf() - t0)
    baseline = statistics.median(base)
    _, io = run(k, 2, secs, baseline)
    io_waits = io[0]["waits"]

    print(
        json.dumps(
            {
                "python": sys.version.split()[0],
                "interval_ms": interval_ms,
                "secs": secs,
                "work_loop": k,
                "c": {
                    "switches_per_s": switches / span,
                    "wait_p50_ms": ms(percentile(waits, 50)),
                    "wait_p99_ms": ms(percentile(waits, 99)),
                    "slice_p50_ms": ms(percentile(slices, 50)),
                    "slice_p99_ms": ms(percentile(slices, 99)),
                    "alone_iters_per_s": alone_rate,
                    "pair_iters_per_s": pair_rate,
                    "pair_vs_alone": pair_rate / alone_rate,
                    "pair_vs_alone_cpu": pair_cpu_rate / alone_cpu_rate,
                },
                "d": {
                    "sleep_baseline_ms": ms(baseline),
                    "samples": len(io_waits),
                    "wait_mean_ms": ms(statistics.fmean(io_waits)) if io_waits else None,
                    "wait_p50_ms": ms(percentile(io_waits, 50)),
                    "wait_p99_ms": ms(percentile(io_waits, 99)),
                },
            }
        )
    )


if __name__ == "__main__":
    main()
