#!/usr/bin/env python3
"""The convoy experiment of examples/convoy.rs in CPython threads.

An echo server thread (its socket calls release the GIL, as every blocking
call in CPython does), 0, 1, 2 or 4 CPU-bound threads running about 1 us of
Python work per loop iteration, and a client outside the GIL (a child
process, since a thread would need the GIL itself) doing 16-byte UDP round
trips on 127.0.0.1. Switch interval 5 ms (sys.setswitchinterval(0.005), the
default).

Prints one JSON object per line on stdout, one per CPU-thread count:
    {"cpu_threads": N, "round_trips_per_s": ..., "mean_us": ..., "p99_us": ...,
     "cpu_units_per_s": ...}
Every loop is bounded in time; every socket read has a timeout.

    python3 examples/convoy_cpython.py [--seconds 2]
"""

import json
import socket
import subprocess
import sys
import threading
import time

READ_TIMEOUT = 0.05
WARMUP = 0.1
CPU_COUNTS = (0, 1, 2, 4)


def client(port, seconds):
    """Child process: round trips for `seconds`, then a JSON summary."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(READ_TIMEOUT)
    sock.connect(("127.0.0.1", port))
    print("start", flush=True)
    latencies = []
    seq = 0
    begin = time.perf_counter()
    end = begin + seconds
    now = begin
    while now < end:
        seq += 1
        msg = seq.to_bytes(8, "little")
        sent = now
        sock.send(msg)
        while True:
            try:
                reply = sock.recv(64)
            except socket.timeout:
                now = time.perf_counter()
                break
            if reply == msg:
                now = time.perf_counter()
                latencies.append((now - sent) * 1e6)
                break
    elapsed = time.perf_counter() - begin
    latencies.sort()
    n = len(latencies)
    print(json.dumps({
        "round_trips": n,
        "elapsed": elapsed,
        "mean_us": sum(latencies) / n if n else 0.0,
        "p99_us": latencies[min(n * 99 // 100, n - 1)] if n else 0.0,
    }), flush=True)


def calibrate():
    """Loop iterations of `work` that take about 1 us."""
    k = 1
    while True:
        start = time.perf_counter()
        x = 1
        for _ in range(1000):
            x = work(x, k)
        if (time.perf_counter() - start) / 1000 >= 1e-6 or k > 1 << 16:
            return k
        k *= 2


def work(x, k):
    for _ in range(k):
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF
    return x


def run_cell(cpu_threads, seconds, k):
    stop = threading.Event()
    hard_end = time.monotonic() + WARMUP + seconds + 10
    counts = [[0] for _ in range(cpu_threads)]

    def cpu(count):
        x = 1
        while not stop.is_set() and time.monotonic() < hard_end:
            for _ in range(64):
                x = work(x, k)
                count[0] += 1

    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    server.settimeout(READ_TIMEOUT)
    port = server.getsockname()[1]

    def echo():
        x = 7
        while not stop.is_set() and time.monotonic() < hard_end:
            try:
                data, addr = server.recvfrom(64)
            except socket.timeout:
                continue
            x = work(x, k)  # a little interpreter work per message
            x = work(x, k)
            server.sendto(data, addr)

    threads = [threading.Thread(target=cpu, args=(c,)) for c in counts]
    threads.append(threading.Thread(target=echo))
    for t in threads:
        t.start()
    time.sleep(WARMUP)
    child = subprocess.Popen(
        [sys.executable, __file__, "--client", str(port), str(seconds)],
        stdout=subprocess.PIPE, text=True)
    try:
        first = child.stdout.readline()
        before = sum(c[0] for c in counts)
        t0 = time.perf_counter()
        summary = child.stdout.readline()
        after = sum(c[0] for c in counts)
        t1 = time.perf_counter()
        child.wait(timeout=seconds + 10)
    finally:
        stop.set()
        if child.poll() is None:
            child.kill()
        for t in threads:
            t.join(timeout=10)
        server.close()
    if first.strip() != "start" or not summary:
        raise SystemExit("convoy_cpython: the client process failed")
    s = json.loads(summary)
    return {
        "cpu_threads": cpu_threads,
        "round_trips_per_s": s["round_trips"] / s["elapsed"],
        "mean_us": s["mean_us"],
        "p99_us": s["p99_us"],
        "cpu_units_per_s": (after - before) / (t1 - t0),
    }


def main():
    args = sys.argv[1:]
    if args[:1] == ["--client"]:
        client(int(args[1]), float(args[2]))
        return
    seconds = 2.0
    if args[:1] == ["--seconds"] and len(args) == 2:
        seconds = float(args[1])
    elif args:
        raise SystemExit(__doc__)
    sys.setswitchinterval(0.005)
    k = calibrate()
    for n in CPU_COUNTS:
        print(json.dumps(run_cell(n, seconds, k)), flush=True)


if __name__ == "__main__":
    main()
