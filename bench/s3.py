"""Object-store benchmark: a logdir in a local S3 server (moto, loopback) against the same on disk.

Measures, with every request counted twice (kboard's counters, and a loopback proxy in front
of the server that sees each HTTP request):

- cold start: ``kboard serve`` from process start until every run's last tag is served with
  all its points, the logdir on disk and the same logdir in the bucket (no cache);
- warm start from the cache: GETs of event data (target 0);
- a reload that finds nothing new over ``--idle-files`` idle event files (target <= 5 requests);
- the writer: a ``SummaryWriter("s3://…")`` flushing every ``--flush-every`` points: PUTs,
  bytes uploaded against the bytes of the event files, objects made.

    python -m bench.s3 [--runs 10 --tags 20 --steps 10000] [--logdir DIR] [--idle-files 1000]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

from bench.generate import generate, write_scalar_run
from bench.run import Setup, measure
from bench.s3proxy import FaultProxy
from bench.server import free_port

BUCKET = "kboard-bench"


def start_s3() -> tuple[object, FaultProxy]:
    """moto's S3 server on loopback and a counting proxy in front; AWS_* point at the proxy."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    proxy = FaultProxy(f"http://{host}:{port}")
    os.environ.update(
        AWS_ENDPOINT_URL=proxy.url,
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
    )
    return server, proxy


def upload(fs: object, local: Path, prefix: str) -> str:
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        fs.put_file(str(path), f"{BUCKET}/{prefix}/{path.relative_to(local).as_posix()}")
    return f"s3://{BUCKET}/{prefix}"


def cold_start(logdir: str, urls: list[str], port: int, expected: int, timeout: float) -> float:
    cmd = [sys.executable, "-m", "kboard", "serve", "--logdir", logdir, "--no-cache"]
    cmd += ["--no-watch", "--reload-interval", "3600", "--port", str(port)]
    return measure(Setup(logdir, cmd, expected, dict(os.environ)), cmd, urls, timeout).seconds


def warm_start_gets(url: str, proxy: FaultProxy) -> tuple[int, int, int, float]:
    """(proxy object GETs, counted GETs, requests, seconds) of a start from a primed cache."""
    from kboard.cache import RunCache
    from kboard.ingest import LogdirReader

    cache_dir = tempfile.mkdtemp(prefix="kboard-bench-cache-")
    try:
        primer = LogdirReader(url, cache=RunCache(cache_dir))
        primer.reload()
        primer.save_cache(min_new_bytes=0)
        proxy.clear()
        started = time.perf_counter()
        warm = LogdirReader(url, cache=RunCache(cache_dir))
        warm.reload()
        seconds = time.perf_counter() - started
        [stats] = warm.io_stats()
        return proxy.object_gets(), stats.get_requests, stats.requests, seconds
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)


def idle_reload(fs: object, files: int, proxy: FaultProxy, tmp: Path) -> tuple[int, int, float]:
    """(proxy requests, counted requests, seconds) of a reload finding nothing new."""
    from kboard.ingest import LogdirReader

    local = tmp / "idle"
    per_run = 10
    for index in range(files):
        run = local / f"run_{index // per_run:04d}"
        write_scalar_run(run, 1, 2, seed=index)  # a file name of its own per seed
    url = upload(fs, local, "idle")
    reader = LogdirReader(url)
    reader.reload()
    proxy.clear()
    before = reader.io_stats()[0].requests
    started = time.perf_counter()
    reader.reload()
    seconds = time.perf_counter() - started
    return proxy.count(), reader.io_stats()[0].requests - before, seconds


def writer_cost(points: int, flush_every: int) -> dict[str, float]:
    """Upload cost of the object-store writer: PUTs, bytes uploaded, bytes kept, objects."""
    import fsspec

    from kboard import SummaryWriter

    url = f"s3://{BUCKET}/written/{points}_{flush_every}"
    writer = SummaryWriter(url, flush_secs=3600)
    sink = writer.file_writer._file._sink
    started = time.perf_counter()
    for step in range(points):
        writer.add_scalar("loss", 1.0 / (step + 1), step)
        if step % flush_every == flush_every - 1:
            writer.flush()
    writer.close()
    seconds = time.perf_counter() - started
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    sizes = [fs.size(p) for p in fs.find(url)]
    return {
        "flushes": points / flush_every,
        "puts": sink.io.put_requests,
        "uploaded": sink.io.bytes_written,
        "kept": sum(sizes),
        "objects": len(sizes),
        "ms_per_flush": seconds * 1000 / (points / flush_every),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--tags", type=int, default=20)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--logdir", help="reuse (or create) this logdir")
    parser.add_argument("--idle-files", type=int, default=1000)
    parser.add_argument("--write-points", type=int, default=20_000)
    parser.add_argument("--flush-every", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--repeat", type=int, default=1, help="cold starts each; best is kept")
    args = parser.parse_args(argv)

    import fsspec

    server, proxy = start_s3()
    tmp = Path(tempfile.mkdtemp(prefix="kboard-bench-s3-"))
    try:
        fs = fsspec.filesystem("s3", skip_instance_cache=True)
        fs.mkdir(BUCKET)
        logdir = args.logdir or str(tmp / "logs")
        if not any(Path(logdir).rglob("*tfevents*")):
            generate(logdir, args.runs, args.tags, args.steps)
        size = sum(f.stat().st_size for f in Path(logdir).rglob("*") if f.is_file())
        started = time.perf_counter()
        url = upload(fs, Path(logdir), "logs")
        print(
            f"logdir {logdir}: {args.runs * args.tags * args.steps:,} points, {size / 1e6:.0f} MB "
            f"(uploaded in {time.perf_counter() - started:.1f} s), {os.cpu_count()} cores"
        )
        last_tag = f"metrics/tag_{args.tags - 1:03d}"
        queries = [
            urllib.parse.urlencode({"run": f"run_{run:03d}", "tag": last_tag})
            for run in range(args.runs)
        ]
        times: dict[str, float] = {}
        for _ in range(args.repeat):  # alternating, so both see the same load
            for name, where in (("local disk", logdir), ("bucket", url)):
                port = free_port()
                base = f"http://127.0.0.1:{port}/data/plugin/scalars/scalars?"
                urls = [base + q for q in queries]
                proxy.clear()
                seconds = cold_start(where, urls, port, args.steps, args.timeout)
                times[name] = min(times.get(name, seconds), seconds)
                if name == "bucket":
                    cold_requests = proxy.count()
        print("\n| cold start to all points served | seconds | vs local disk |\n|---|---|---|")
        for name, seconds in times.items():
            print(f"| {name} | {seconds:.2f} s | {seconds / times['local disk']:.2f}x |")
        print(f"(the bucket's cold start made {cold_requests} HTTP requests)")
        proxy_gets, counted_gets, requests, warm_s = warm_start_gets(url, proxy)
        print(
            f"\nwarm start from the cache: {proxy_gets} GETs of event data seen by the proxy, "
            f"{counted_gets} counted by kboard, {requests} requests in all, {warm_s:.2f} s"
        )
        seen, counted, idle_s = idle_reload(fs, args.idle_files, proxy, tmp)
        print(
            f"reload finding nothing new over {args.idle_files} idle files: {seen} HTTP "
            f"requests seen by the proxy, {counted} counted by kboard, {idle_s * 1000:.0f} ms"
        )
        cost = writer_cost(args.write_points, args.flush_every)
        print(
            f"writer, {args.write_points} scalars flushed every {args.flush_every}: "
            f"{cost['puts']} PUTs, {cost['uploaded'] / 1e6:.2f} MB uploaded for "
            f"{cost['kept'] / 1e6:.2f} MB of event files ({cost['uploaded'] / cost['kept']:.1f}x), "
            f"{cost['objects']} objects, {cost['ms_per_flush']:.1f} ms a flush"
        )
    finally:
        proxy.close()
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
