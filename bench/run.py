"""Start-up benchmark: kboard against TensorBoard on the same logdir, side by side.

For each server: start the process, then poll over HTTP until every run's last tag is
served with all its points; report the wall time from process start and the peak memory of the
whole process tree (TensorBoard's Rust data server included). Ratios are against kboard.

    python -m bench.run --runs 10 --tags 20 --steps 10000 [--logdir DIR] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench.generate import generate
from bench.server import free_port, running, served

PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass
class Result:
    name: str
    seconds: float
    peak_mb: float
    points: int


def process_tree(root: int) -> list[int]:
    """The pid and every descendant's pid, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def peak_rss_mb(pids: dict[int, float]) -> float:
    """Update each process's own peak (VmHWM) and return their sum in MB."""
    for pid in list(pids):
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        pids[pid] = max(pids[pid], int(line.split()[1]) / 1024)
        except OSError:
            pass
    return sum(pids.values())


def measure(name: str, cmd: list[str], urls: list[str], expected: int, timeout: float) -> Result:
    """Run ``cmd`` and time it until every URL answers with ``expected`` points."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    started = time.perf_counter()
    # SIGKILL: nothing to wait for once measured (the process group goes, data server too).
    with running(cmd, timeout=timeout, stop_signal=signal.SIGKILL, env=env) as server:
        peaks: dict[int, float] = {}
        done = 0  # URLs answered in full so far (each is asked until it is, then never again)
        points = -1
        while done < len(urls):
            if time.perf_counter() - started > timeout:
                raise RuntimeError(f"{name}: no full answer within {timeout}s ({done} done)")
            for pid in process_tree(server.proc.pid):
                peaks.setdefault(pid, 0.0)
            peak_rss_mb(peaks)
            try:
                with urllib.request.urlopen(urls[done], timeout=60) as response:
                    points = len(json.loads(response.read()))
            except (urllib.error.URLError, ConnectionError, json.JSONDecodeError, TimeoutError):
                points = -1
            if points >= expected:
                done += 1
            else:
                time.sleep(0.02)
        elapsed = time.perf_counter() - started
        for pid in process_tree(server.proc.pid):
            peaks.setdefault(pid, 0.0)
        return Result(name, elapsed, peak_rss_mb(peaks), points)


def servers(
    logdir: str, steps: int, include_slow: bool, cache_dir: str
) -> list[tuple[str, list[str], int]]:
    py = sys.executable
    tb = [py, "-m", "tensorboard.main", "--logdir", logdir, "--host", "127.0.0.1"]
    kb = [
        py,
        "-m",
        "kboard",
        "serve",
        "--logdir",
        logdir,
        "--no-watch",
        "--reload-interval",
        "3600",
        "--cache-dir",
        cache_dir,
    ]
    out = [
        ("kboard (cold: empty cache)", kb, steps),
        ("kboard (warm: same logdir again)", kb, steps),
        (
            "tensorboard --load_fast=true (all points)",
            tb + ["--load_fast=true", "--samples_per_plugin", f"scalars={steps}"],
            steps,
        ),
    ]
    if include_slow:
        out.append(
            (
                "tensorboard --load_fast=false (1,000 sampled)",
                tb + ["--load_fast=false"],
                min(steps, 1000),
            )
        )
    return out


def prime_cache(logdir: str, cache_dir: str) -> None:
    """Fill the cache as a previous ``kboard serve`` of this logdir would have."""
    from kboard.cache import RunCache
    from kboard.ingest import LogdirReader

    reader = LogdirReader(logdir, cache=RunCache(cache_dir))
    reader.reload()
    reader.save_cache(min_new_bytes=0)


def idle_reload_ms(logdir: str, repeat: int = 30) -> float:
    """Median time of a reload that finds nothing new, in-process."""
    from kboard.ingest import LogdirReader

    reader = LogdirReader(logdir)
    reader.reload()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        reader.reload()
        times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2] * 1000


def live_latency_s(runs: int, repeat: int = 5) -> float:
    """Median time from a flushed point to the HTTP API serving it (a watched logdir)."""
    from kboard.writer import SummaryWriter

    with tempfile.TemporaryDirectory(prefix="kboard-live-") as logdir:
        writers = [SummaryWriter(f"{logdir}/run_{i:03d}", flush_secs=3600) for i in range(runs)]
        for w in writers:
            w.add_scalar("loss", 0.0, 0)
            w.flush()
        times = []
        try:
            with served(logdir, "--port", "0", "--no-cache") as server:
                url = f"http://127.0.0.1:{server.port}/api/scalars?tag=loss&run=run_000"
                for step in range(1, repeat + 2):
                    writers[0].add_scalar("loss", float(step), step)
                    writers[0].flush()
                    written = time.perf_counter()
                    while time.perf_counter() - written < 30:
                        try:
                            with urllib.request.urlopen(url + "&points=100000", timeout=10) as r:
                                if json.loads(r.read())["series"][0]["steps"][-1] == step:
                                    break
                        except (urllib.error.URLError, ConnectionError):
                            pass
                        time.sleep(0.005)
                    if step > 1:  # the first one also waits for the server's first read
                        times.append(time.perf_counter() - written)
        finally:
            for w in writers:
                w.close()
    return sorted(times)[len(times) // 2]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--tags", type=int, default=20)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--format", choices=("tf2", "legacy"), default="tf2")
    parser.add_argument("--logdir", help="reuse (or create) this logdir")
    parser.add_argument("--repeat", type=int, default=1, help="runs per server; best is kept")
    parser.add_argument(
        "--skip-slow",
        action="store_true",
        help="leave out TensorBoard's Python loader (slow on big logdirs)",
    )
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--json", dest="json_out", help="also write the results here")
    args = parser.parse_args(argv)

    tmp = None
    logdir = args.logdir
    if logdir is None:
        tmp = tempfile.mkdtemp(prefix="kboard-bench-")
        logdir = tmp
    if not any(Path(logdir).rglob("*tfevents*")):
        generate(logdir, args.runs, args.tags, args.steps, fmt=args.format)
    size = sum(f.stat().st_size for f in Path(logdir).rglob("*") if f.is_file())
    last_tag = f"metrics/tag_{args.tags - 1:03d}"
    queries = [
        urllib.parse.urlencode({"run": f"run_{run:03d}", "tag": last_tag})
        for run in range(args.runs)
    ]
    print(
        f"logdir {logdir}: {args.runs} runs x {args.tags} tags x {args.steps} steps = "
        f"{args.runs * args.tags * args.steps:,} points, {size / 1e6:.0f} MB, "
        f"{os.cpu_count()} cores"
    )
    results: list[Result] = []
    cache_dir = tempfile.mkdtemp(prefix="kboard-bench-cache-")
    try:
        for name, cmd, expected in servers(logdir, args.steps, not args.skip_slow, cache_dir):
            best: Result | None = None
            for _ in range(args.repeat):
                if "cold" in name:
                    shutil.rmtree(cache_dir, ignore_errors=True)
                elif "warm" in name:
                    prime_cache(logdir, cache_dir)
                port = free_port()
                base = f"http://127.0.0.1:{port}/data/plugin/scalars/scalars?"
                urls = [base + q for q in queries]
                result = measure(name, [*cmd, "--port", str(port)], urls, expected, args.timeout)
                if best is None or result.seconds < best.seconds:
                    best = result
            results.append(best)
        idle_ms = idle_reload_ms(logdir)
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    ours = results[0]
    print(
        "\n| server | start to all points served | peak memory | time vs kboard "
        "| memory vs kboard |\n|---|---|---|---|---|"
    )
    for r in results:
        print(
            f"| {r.name} | {r.seconds:.2f} s | {r.peak_mb:.0f} MB | "
            f"{r.seconds / ours.seconds:.1f}x | {r.peak_mb / ours.peak_mb:.1f}x |"
        )
    print(f"\nA reload that finds nothing new ({args.runs} runs): {idle_ms:.1f} ms (median)")
    print(
        f"A flushed point served over HTTP after: {live_latency_s(args.runs) * 1000:.0f} ms "
        "(median, watched logdir)"
    )
    if args.json_out:
        Path(args.json_out).write_text(json.dumps([r.__dict__ for r in results], indent=2))


if __name__ == "__main__":
    main()
