"""Start-up benchmark: kboard against TensorBoard on the same logdir, side by side.

For each server: start the process, then poll over HTTP until every run's last tag is
served with all its points; report the wall time from process start and the peak memory of the
whole process tree (TensorBoard's Rust data server included).

TensorBoard runs in both of its set-ups: TensorFlow importable (as Keras users have it: it
imports TensorFlow, 3-6 s and 500 MB) and TensorFlow blocked (a ``tensorflow`` package on
``PYTHONPATH`` that raises ``ImportError``: its fastest set-up). The targets are held against
the faster of the two in the same run. Every value each server serves is compared with
kboard's, exactly (``bench/compare.py``). The logdir is written by ``bench.generate`` and, when
TensorFlow is installed, a second one by real ``tf.summary`` (``--writer``).

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

from bench.compare import Comparison, Series, compare, fetch_all
from bench.generate import generate
from bench.phases import startup_phases
from bench.server import free_port, running, served

PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


# TensorBoard says this when it cannot import TensorFlow (its stub takes over).
TB_WITHOUT_TF = "TensorFlow installation not found"
# The targets: ratios against TensorBoard's faster set-up.
DEFAULT_TARGETS = "cold=3,warm=10,memory=5"


@dataclass
class Result:
    name: str
    seconds: float
    peak_mb: float
    points: int
    url_seconds: float = 0.0  # when the process printed its URL
    values: str = ""  # how its values compare with kboard's
    seconds_range: tuple[float, float] = (0.0, 0.0)  # fastest and slowest of the repeats


@dataclass
class Setup:
    """One server to measure: its command, environment and what to check."""

    name: str
    cmd: list[str]
    expected: int  # points each polled series must have
    env: dict[str, str]
    tensorboard: bool = False
    tf_blocked: bool = False
    sampled: bool = False  # serves a sample of each series (compare only those points)


def blocked_tf_dir(parent: str) -> str:
    """A directory whose ``tensorflow`` package raises ImportError (put it on PYTHONPATH)."""
    package = Path(parent) / "no-tensorflow" / "tensorflow"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text(
        'raise ImportError("TensorFlow is blocked for this benchmark")\n'
    )
    return str(package.parent)


def compile_kboard() -> None:
    """Compile kboard's modules to bytecode, as ``pip install`` does for an installed package.

    TensorBoard is measured as installed, bytecode and all; an editable checkout run with
    ``PYTHONDONTWRITEBYTECODE`` (as some sandboxes set it) would otherwise compile every
    module at every start (0.46 s of imports instead of 0.31 s here).
    """
    import compileall

    import kboard

    compileall.compile_dir(os.path.dirname(kboard.__file__), quiet=1)


def tensorflow_importable() -> bool:
    """Whether TensorFlow can be imported here (without importing it: that takes seconds)."""
    import importlib.util

    return importlib.util.find_spec("tensorflow") is not None


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


def measure(
    setup: Setup,
    cmd: list[str],
    urls: list[str],
    timeout: float,
    collect: dict[tuple[str, str], Series] | None = None,
    only: set[tuple[str, str]] | None = None,
) -> Result:
    """Run ``cmd`` and time it until every URL answers with ``setup.expected`` points.

    With ``collect``, every series it serves (or ``only`` those) is fetched into it afterwards
    (not timed).
    """
    name, expected = setup.name, setup.expected
    started = time.perf_counter()
    # SIGKILL: nothing to wait for once measured (the process group goes, data server too).
    with running(cmd, timeout=timeout, stop_signal=signal.SIGKILL, env=setup.env) as server:
        url_seconds = time.perf_counter() - started
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
        result = Result(name, elapsed, peak_rss_mb(peaks), points, url_seconds)
        if setup.tensorboard and setup.tf_blocked != (TB_WITHOUT_TF in server.output()):
            raise RuntimeError(
                f"{name}: TensorFlow was not {'blocked' if setup.tf_blocked else 'imported'}"
            )
        if collect is not None:
            collect.update(fetch_all(server.url, timeout=timeout, only=only))
        return result


def servers(
    logdir: str, steps: int, include_slow: bool, cache_dir: str, no_tf_dir: str
) -> list[Setup]:
    """kboard cold and warm, then TensorBoard in each set-up this machine has."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    path = env.get("PYTHONPATH", "")
    blocked = {**env, "PYTHONPATH": no_tf_dir + (os.pathsep + path if path else "")}
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
    fast = tb + ["--load_fast=true", "--samples_per_plugin", f"scalars={steps}"]
    out = [
        Setup("kboard (cold: empty cache)", kb, steps, env),
        Setup("kboard (warm: same logdir again)", kb, steps, env),
    ]
    if tensorflow_importable():
        out.append(
            Setup("tensorboard --load_fast=true, TensorFlow importable", fast, steps, env, True)
        )
    out.append(
        Setup("tensorboard --load_fast=true, TensorFlow blocked", fast, steps, blocked, True, True)
    )
    if include_slow:
        slow = tb + ["--load_fast=false"]
        name = "tensorboard --load_fast=false (1,000 sampled), TensorFlow blocked"
        out.append(Setup(name, slow, min(steps, 1000), blocked, True, True, sampled=True))
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


def measure_logdir(logdir: str, args: argparse.Namespace, no_tf_dir: str) -> list[Result]:
    """Every set-up on one logdir, ``args.repeat`` times each; values compared with kboard's."""
    last_tag = f"metrics/tag_{args.tags - 1:03d}"
    queries = [
        urllib.parse.urlencode({"run": f"run_{run:03d}", "tag": last_tag})
        for run in range(args.runs)
    ]
    results: list[Result] = []
    reference: dict[tuple[str, str], Series] = {}
    # Every series, or (--compare polled, for big logdirs) the last tag of every run.
    only = None if args.compare == "all" else {(f"run_{r:03d}", last_tag) for r in range(args.runs)}
    cache_dir = tempfile.mkdtemp(prefix="kboard-bench-cache-")
    try:
        for setup in servers(logdir, args.steps, not args.skip_slow, cache_dir, no_tf_dir):
            best: Result | None = None
            seconds = []
            served_values: dict[tuple[str, str], Series] = {}
            for attempt in range(args.repeat):
                if "cold" in setup.name:
                    shutil.rmtree(cache_dir, ignore_errors=True)
                elif "warm" in setup.name:
                    prime_cache(logdir, cache_dir)
                port = free_port()
                base = f"http://127.0.0.1:{port}/data/plugin/scalars/scalars?"
                urls = [base + q for q in queries]
                cmd = [*setup.cmd, "--port", str(port)]
                collect = served_values if attempt == 0 else None
                result = measure(setup, cmd, urls, args.timeout, collect, only)
                seconds.append(result.seconds)
                if best is None or result.seconds < best.seconds:
                    best = result
            assert best is not None
            if not reference:  # kboard cold comes first: the others are compared with it
                reference = served_values
                best.values = f"reference: {sum(len(v.steps) for v in reference.values()):,} points"
            else:
                comparison: Comparison = compare(reference, served_values, sampled=setup.sampled)
                best.values = comparison.summary()
            best.seconds_range = (min(seconds), max(seconds))
            results.append(best)
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)
    return results


def print_results(results: list[Result], targets: dict[str, float]) -> bool:
    """Print the table and the targets against TensorBoard's faster set-up; True if all met."""
    ours, warm = results[0], results[1]
    tb = [r for r in results if r.name.startswith("tensorboard --load_fast=true")]
    fastest = min(tb, key=lambda r: r.seconds)
    print(
        "\n| server | start to all points served (range) | URL printed | peak memory "
        "| time vs TB's faster | values |\n|---|---|---|---|---|---|"
    )
    for r in results:
        lo, hi = r.seconds_range
        print(
            f"| {r.name} | {r.seconds:.2f} s ({lo:.2f}-{hi:.2f}) | {r.url_seconds:.2f} s | "
            f"{r.peak_mb:.0f} MB | {r.seconds / fastest.seconds:.2f}x | {r.values} |"
        )
    ratios = {
        "cold": fastest.seconds / ours.seconds,
        "warm": fastest.seconds / warm.seconds,
        "memory": fastest.peak_mb / ours.peak_mb,
    }
    print(f"\nTargets against TensorBoard's faster set-up here ({fastest.name}):")
    met = True
    for key, target in targets.items():
        ok = ratios[key] >= target
        met &= ok
        what = {"cold": "faster cold", "warm": "faster warm", "memory": "less peak memory"}[key]
        print(f"- {what}: {ratios[key]:.2f}x (target {target:g}x): {'met' if ok else 'NOT met'}")
    values_ok = all("DIFFERENT" not in r.values for r in results)
    print(f"- every served value equal to kboard's: {'yes' if values_ok else 'NO'}")
    return met and values_ok


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--tags", type=int, default=20)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--format", choices=("tf2", "legacy"), default="tf2")
    parser.add_argument("--logdir", help="the generator's logdir: reuse (or create) this one")
    parser.add_argument("--tf-logdir", help="the tf.summary logdir: reuse (or create) this one")
    parser.add_argument(
        "--writer",
        choices=("bench", "tf", "both"),
        help="whose logdir to measure (default: both when TensorFlow is installed)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per server; best is kept")
    parser.add_argument(
        "--skip-slow",
        action="store_true",
        help="leave out TensorBoard's Python loader (slow on big logdirs)",
    )
    parser.add_argument("--targets", default=DEFAULT_TARGETS, help="cold=3,warm=10,memory=5")
    parser.add_argument("--no-phases", action="store_true", help="skip the per-phase timing")
    parser.add_argument(
        "--compare",
        choices=("all", "polled"),
        default="all",
        help="compare the values of every series, or of the polled ones (big logdirs)",
    )
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--json", dest="json_out", help="also write the results here")
    args = parser.parse_args(argv)
    targets = {k: float(v) for k, v in (part.split("=") for part in args.targets.split(","))}
    compile_kboard()
    writers = args.writer or ("both" if tensorflow_importable() else "bench")
    writers_list = ["bench", "tf"] if writers == "both" else [writers]

    tmp = tempfile.mkdtemp(prefix="kboard-bench-")
    no_tf_dir = blocked_tf_dir(tmp)
    report: dict[str, list[dict]] = {}
    all_met = True
    try:
        for writer in writers_list:
            logdir = args.logdir if writer == "bench" else args.tf_logdir
            logdir = logdir or os.path.join(tmp, writer)
            if not any(Path(logdir).rglob("*tfevents*")):
                generate(logdir, args.runs, args.tags, args.steps, fmt=args.format, writer=writer)
            size = sum(f.stat().st_size for f in Path(logdir).rglob("*") if f.is_file())
            who = "real tf.summary" if writer == "tf" else "bench.generate"
            print(
                f"\n## logdir {logdir} ({who}): {args.runs} runs x {args.tags} tags x "
                f"{args.steps} steps = {args.runs * args.tags * args.steps:,} points, "
                f"{size / 1e6:.0f} MB, {os.cpu_count()} cores"
            )
            results = measure_logdir(logdir, args, no_tf_dir)
            all_met &= print_results(results, targets)
            report[writer] = [r.__dict__ for r in results]
            if not args.no_phases:
                print("\nWhere kboard's cold start goes (in-process, best of 3):")
                for name, seconds in startup_phases(logdir).items():
                    print(f"- {name}: {seconds * 1000:.0f} ms")
                ours = results[0]
                print(
                    f"- server process: URL printed after {ours.url_seconds * 1000:.0f} ms, "
                    f"all points served {(ours.seconds - ours.url_seconds) * 1000:.0f} ms later"
                )
        print(
            f"\nA reload that finds nothing new ({args.runs} runs): "
            f"{idle_reload_ms(logdir):.1f} ms (median)"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"A flushed point served over HTTP after: {live_latency_s(args.runs) * 1000:.0f} ms "
        "(median, watched logdir)"
    )
    print(f"\nAll targets met: {'yes' if all_met else 'no'}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
