"""Load test: many clients poll a live ``kboard serve`` while a writer appends points.

A ``kboard serve`` process on a free 127.0.0.1 port follows a fresh logdir; a writer process
appends ``--rate`` points a second spread over ``--runs`` runs; ``--clients`` threads poll the
data routes (``/api/runs``, ``/api/tags/scalars``, ``/api/scalars``) over keep-alive loopback
connections. Everything stops by itself after ``--duration`` seconds. Printed: requests,
failures, p50/p99 latency, the server's RSS over time (``VmRSS``) and whether the served
series finally equal what was written, point for point. Exit status 1 if anything failed.

With ``--streams N``, N live-update streams (``/api/stream``, as N open pages hold) stay open
the whole time, read by one selector thread: printed are how many opened, how many change
notifications each got (every stream must get every one the others got, ending at the
server's final generation), and the server's thread count.

    python -m bench.load [--duration 60] [--clients 50] [--runs 20] [--rate 1000]
                         [--streams 0] [--threads 16] [--quick]
"""

from __future__ import annotations

import argparse
import collections
import http.client
import json
import multiprocessing
import os
import re
import selectors
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import numpy as np

from bench.generate import file_version_record, scalar_event
from bench.server import served
from kboard.tfevents.records import encode_record

TAG = "metrics/value"
PAGE_POINTS = 720
START = 1_767_225_600.0


def value_of(run: int, step: int) -> float:
    """The value written at ``step`` of run ``run`` (exact in float32)."""
    return float(np.float32(run * 1000 + (step % 997) * 0.5))


def writer(logdir: str, runs: int, rate: int, duration: float, done: str) -> None:
    """Append ``rate`` points a second over ``runs`` runs for ``duration`` s; then say how many."""
    files = []
    for run in range(runs):
        path = Path(logdir) / f"run_{run:02d}"
        path.mkdir(parents=True, exist_ok=True)
        out = open(path / f"events.out.tfevents.{int(START)}.load", "wb")  # noqa: SIM115
        out.write(file_version_record(START))
        out.flush()
        files.append(out)
    steps = [0] * runs
    ticks = max(int(duration * 20), 1)  # 20 appends a second, each flushed
    per_tick = rate / 20
    started = time.monotonic()
    owed = 0.0
    for tick in range(ticks):
        owed += per_tick
        for _ in range(int(owed)):
            run = min(range(runs), key=steps.__getitem__)  # round robin
            step = steps[run]
            payload = scalar_event(
                TAG.encode(), step, START + step, value_of(run, step), tf2=True, metadata=step == 0
            )
            files[run].write(encode_record(payload))
            steps[run] += 1
        owed -= int(owed)
        for out in files:
            out.flush()
        delay = started + (tick + 1) / 20 - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    for out in files:
        out.close()
    Path(done).write_text(json.dumps(steps))


def proc_status(pid: int, field: str) -> int:
    """A number from ``/proc/PID/status`` (``VmRSS`` in kB, ``Threads``); 0 when gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            match = re.search(rf"{field}:\s+(\d+)", f.read())
        return int(match.group(1)) if match else 0
    except OSError:
        return 0


def rss_kb(pid: int) -> int:
    return proc_status(pid, "VmRSS")


class Client(threading.Thread):
    """Polls the data routes over one keep-alive connection until the deadline."""

    def __init__(self, port: int, deadline: float, runs: int) -> None:
        super().__init__(daemon=True)
        self.port, self.deadline, self.runs = port, deadline, runs
        self.latencies: list[float] = []
        self.failures: list[str] = []

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        # What an open page asks for: 720 points a chart (so once the series are longer than
        # that, each answer has the same size, and memory after warm-up must be flat).
        scalars = "/api/scalars?" + urlencode({"tag": TAG, "points": PAGE_POINTS})
        paths = ["/api/runs", "/api/tags/scalars", scalars]
        i = 0
        while time.monotonic() < self.deadline:
            path = paths[i % len(paths)]
            i += 1
            started = time.perf_counter()
            try:
                conn.request("GET", path, headers={"Host": f"127.0.0.1:{self.port}"})
                response = conn.getresponse()
                body = response.read()
                if response.status != 200:
                    self.failures.append(f"{response.status} {path} {body[:100]!r}")
            except (OSError, http.client.HTTPException) as exc:
                self.failures.append(f"{type(exc).__name__}: {exc} ({path})")
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            self.latencies.append(time.perf_counter() - started)
        conn.close()


class Streams(threading.Thread):
    """Holds ``count`` open ``/api/stream`` connections and records every generation sent."""

    GENERATION = re.compile(rb"event: generation\r?\ndata: \{\"generation\": (\d+)\}")

    def __init__(self, port: int, count: int, deadline: float) -> None:
        super().__init__(daemon=True)
        self.port, self.count, self.deadline = port, count, deadline
        self.received: dict[int, bytes] = {}
        self.connect_failures: list[str] = []
        self.ready = threading.Event()

    def run(self) -> None:
        selector = selectors.DefaultSelector()
        socks = []
        request = f"GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n\r\n".encode()
        for i in range(self.count):
            try:
                sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
                sock.sendall(request)
            except OSError as exc:
                self.connect_failures.append(f"{type(exc).__name__}: {exc}")
                continue
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ, i)
            self.received[i] = b""
            socks.append(sock)
        self.ready.set()
        while time.monotonic() < self.deadline:
            for key, _ in selector.select(timeout=0.5):
                try:
                    chunk = key.fileobj.recv(65536)
                except OSError:
                    chunk = b""
                if chunk:
                    self.received[key.data] += chunk
                else:
                    selector.unregister(key.fileobj)
        for sock in socks:
            sock.close()
        selector.close()

    def generations(self) -> dict[int, list[int]]:
        return {i: [int(g) for g in self.GENERATION.findall(b)] for i, b in self.received.items()}

    def opened(self) -> int:
        return sum(b.startswith(b"HTTP/1.1 200") for b in self.received.values())


def get_json(port: int, path: str) -> object:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"{response.status} for {path}: {body[:200]!r}")
        return json.loads(body)
    finally:
        conn.close()


def served_points(port: int, runs: int) -> dict[str, tuple[list[int], list[float]]]:
    query = urlencode({"tag": TAG, "points": 100_000})
    body = get_json(port, f"/api/scalars?{query}")
    return {s["run"]: (s["steps"], s["values"]) for s in body["series"]}


def load(port: int, pid: int, logdir: str, done: str, args: argparse.Namespace) -> bool:
    """Write, poll and check against the server on ``port`` (process ``pid``); True if it passed."""
    ctx = multiprocessing.get_context("spawn")
    pen = ctx.Process(
        target=writer, args=(logdir, args.runs, args.rate, args.duration, done), daemon=True
    )
    started = time.monotonic()
    pen.start()
    deadline = started + args.duration
    for _ in range(100):  # the clients start once the first points are served
        if TAG in json.dumps(get_json(port, "/api/tags/scalars")):
            break
        time.sleep(0.1)
    streams = Streams(port, args.streams, deadline + 5)  # open until the last check is done
    if args.streams:
        streams.start()
        streams.ready.wait(timeout=120)
    clients = [Client(port, deadline, args.runs) for _ in range(args.clients)]
    for c in clients:
        c.start()
    rss: list[tuple[float, int]] = []
    threads: list[int] = []
    while time.monotonic() < deadline:
        rss.append((time.monotonic() - started, rss_kb(pid)))
        threads.append(proc_status(pid, "Threads"))
        time.sleep(min(1.0, max(deadline - time.monotonic(), 0)))
    for c in clients:
        c.join(timeout=60)
    pen.join(timeout=60)
    rss.append((time.monotonic() - started, rss_kb(pid)))

    latencies = np.array([x for c in clients for x in c.latencies]) * 1000
    failures = [f for c in clients for f in c.failures]
    seconds = time.monotonic() - started
    print(
        f"kboard load test: {args.clients} clients, {args.streams} open streams, "
        f"{args.runs} runs, {args.rate} points/s, --threads {args.threads}"
    )
    print(f"  requests    {len(latencies)} in {seconds:.1f} s ({len(latencies) / seconds:.0f}/s)")
    print(f"  failures    {len(failures)}")
    for failure in failures[:5]:
        print(f"    {failure}")
    if len(latencies):
        p50, p99 = np.percentile(latencies, [50, 99])
        print(f"  latency     p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {latencies.max():.1f} ms")
    shown = rss[:: max(len(rss) // 12, 1)]
    print("  server RSS  " + ", ".join(f"{t:.0f}s {kb / 1024:.0f} MB" for t, kb in shown))
    # Warm-up: until every series is longer than a chart shows (answers stop growing).
    warm_up = max(PAGE_POINTS * 2 * args.runs / args.rate, args.duration / 4)
    warm = [kb for t, kb in rss if t >= warm_up]
    if warm:
        print(
            f"  RSS after warm-up ({warm_up:.0f} s): {warm[0] / 1024:.0f} MB, then at most "
            f"{max(warm) / 1024:.0f} MB, {warm[-1] / 1024:.0f} MB at the end "
            f"({(warm[-1] - warm[0]) / 1024:+.1f} MB)"
        )

    # Every written point must finally be served, exactly.
    written = json.loads(Path(done).read_text()) if os.path.exists(done) else None
    lost = "writer did not finish"
    if written is not None:
        expected = {
            f"run_{run:02d}": (
                list(range(n)),
                [value_of(run, s) for s in range(n)],
            )
            for run, n in enumerate(written)
        }
        for _ in range(120):  # the server catches up within a reload or two
            got = served_points(port, args.runs)
            if got == expected:
                lost = ""
                break
            time.sleep(0.25)
        else:
            missing = sum(len(v[0]) for v in expected.values()) - sum(
                len(v[0]) for v in got.values()
            )
            lost = f"{missing} points not served, or served wrong"
    total = sum(written or [])
    print(f"  written     {total} points; all served exactly: {lost or 'yes'}")
    print(f"  threads     server: at most {max(threads, default=0)}")
    missed = ""
    if args.streams:
        final = get_json(port, "/api/runs")["generation"]
        time.sleep(1.5)  # the last notification is on its way
        streams.join(timeout=30)
        seen = streams.generations()
        # From when the last stream had opened (the writer starts first), every stream must
        # get every notification sent to all (a stream just opened may get one more: the
        # change made while it was opening).
        since = max((gens[0] for gens in seen.values() if gens), default=0)
        seen = {i: [g for g in gens if g >= since] for i, gens in seen.items()}
        tally = collections.Counter(g for gens in seen.values() for g in set(gens))
        every = {g for g, n in tally.items() if n > len(seen) / 2}
        # A change coming while the last is sent is told with it (the newest generation), so
        # "every notification" means: each stream ends at the final generation, and (with one
        # loop sending to all) each got the very same notifications as the others.
        current = [i for i, gens in seen.items() if gens[-1:] == [final]]
        same = [i for i, gens in seen.items() if every <= set(gens)]
        counts = [len(gens) for gens in seen.values()] or [0]
        print(
            f"  streams     {streams.opened()} of {args.streams} open "
            f"({len(streams.connect_failures)} failed to connect); notifications a stream: "
            f"{min(counts)} to {max(counts)}; ended at the final generation ({final}): "
            f"{len(current)}; got all {len(every)} notifications sent once all were open: "
            f"{len(same)}"
        )
        if len(current) != args.streams or len(same) != args.streams:
            missed = f"{args.streams - min(len(current), len(same))} streams missed a change"
            print(f"  FAILED      {missed}")
    return not failures and not lost and not missed and len(latencies) > 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--rate", type=int, default=1000, help="points written per second")
    parser.add_argument("--streams", type=int, default=0, help="open /api/stream connections")
    parser.add_argument("--threads", type=int, default=16, help="the server's --threads")
    parser.add_argument("--quick", action="store_true", help="a few seconds, for a smoke test")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.clients, args.runs, args.rate = 3.0, 8, 4, 200

    with tempfile.TemporaryDirectory(prefix="kboard-load-") as tmp:
        logdir = os.path.join(tmp, "logs")
        os.makedirs(logdir)
        server_args = ("--host", "127.0.0.1", "--port", "0", "--no-cache", "--reload-interval", "1")
        server_args += ("--threads", str(args.threads))
        with served(logdir, *server_args) as server:
            done = os.path.join(tmp, "written.json")
            ok = load(server.port, server.proc.pid, logdir, done, args)
    print("  result      " + ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
