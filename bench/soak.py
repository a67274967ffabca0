"""A long soak in miniature: thousands of reloads over a logdir that keeps changing.

In one process, a :class:`~kboard.ingest.LogdirReader` reloads ``--cycles`` times while the
logdir changes under it in every way a real one does: points appended to several runs, runs
created and deleted, files truncated and written again, corrupt files appearing and going,
half-written records completed later. The logdir's size stays bounded, so the memory held
(``tracemalloc``) and the open file handles (``/proc/self/fd``) must be too: both are printed
after a warm-up and at the end. Exit status 1 if either grew.

    python -m bench.soak [--cycles 10000] [--quick]
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import shutil
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from bench.generate import file_version_record, scalar_event
from kboard.ingest import LogdirReader
from kboard.tfevents.records import encode_record

SLOTS = 6  # run directories that are written, deleted and created again in turn
LIFETIME = 300  # cycles a run lives before it is deleted and started afresh
EVENTS = "events.out.tfevents.1.soak"


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def record(step: int, value: float) -> bytes:
    return encode_record(scalar_event(b"loss", step, 1e9 + step, value, tf2=True, metadata=True))


class ChangingLogdir:
    """Applies cycle ``i``'s change to the logdir: bounded in size, every kind of change."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.steps = [0] * SLOTS
        self.partial: bytes = b""

    def run_dir(self, slot: int) -> Path:
        return self.root / f"run_{slot}"

    def append(self, slot: int, count: int) -> None:
        path = self.run_dir(slot) / EVENTS
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab") as out:
            if out.tell() == 0:
                out.write(file_version_record(1e9))
            for _ in range(count):
                out.write(record(self.steps[slot], float(self.steps[slot] % 13)))
                self.steps[slot] += 1

    def change(self, i: int) -> None:
        slot = i % SLOTS
        self.append(slot, 3)
        if i % LIFETIME == LIFETIME - 1:  # a run ends; its directory is deleted, later reused
            gone = (i // LIFETIME) % SLOTS
            shutil.rmtree(self.run_dir(gone), ignore_errors=True)
            self.steps[gone] = 0
        if i % 97 == 0:  # truncated in place and written again
            path = self.run_dir(slot) / EVENTS
            path.write_bytes(file_version_record(1e9))
            self.steps[slot] = 0
            self.append(slot, 2)
        corrupt = self.root / "corrupt" / "events.out.tfevents.9.bad"
        if i % 50 == 10:
            corrupt.parent.mkdir(exist_ok=True)
            corrupt.write_bytes(b"not an event file" * (1 + i % 7))
        elif i % 50 == 35:
            shutil.rmtree(corrupt.parent, ignore_errors=True)
        partial = self.run_dir((slot + 1) % SLOTS) / EVENTS
        if i % 10 == 3 and partial.exists():  # half a record now, the rest next cycle
            whole = record(self.steps[(slot + 1) % SLOTS], 0.5)
            self.steps[(slot + 1) % SLOTS] += 1
            half = len(whole) // 2
            with open(partial, "ab") as out:
                out.write(whole[:half])
            self.partial = whole[half:]
            self.partial_path = partial
        elif i % 10 == 4 and self.partial:
            if self.partial_path.exists():
                with open(self.partial_path, "ab") as out:
                    out.write(self.partial)
            self.partial = b""


def presize_interned_strings(count: int = 100_000) -> None:
    """Grow the interpreter's table of interned strings now, before memory is traced.

    pathlib interns every path part; the table never shrinks, and one resize (about 1 MB once
    the modules imported hold ~20,000 names) would read as growth if it happened mid-soak.
    """
    interned = [sys.intern(f"kboard-soak-{i}") for i in range(count)]
    del interned


def measure() -> tuple[int, int]:
    """Bytes still allocated, less this script's own and the interpreter's string tables."""
    gc.collect()
    ignore = [tracemalloc.Filter(False, f) for f in ("*/pathlib.py", "*/tracemalloc.py", __file__)]
    snapshot = tracemalloc.take_snapshot().filter_traces(ignore)
    return sum(stat.size for stat in snapshot.statistics("filename")), open_fds()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cycles", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="1,500 cycles, a few seconds")
    args = parser.parse_args(argv)
    cycles = 1500 if args.quick else args.cycles
    warm_up = max(cycles // 5, 2 * LIFETIME)
    logging.getLogger("kboard").setLevel(logging.ERROR)  # the corrupt file warns each time

    root = Path(tempfile.mkdtemp(prefix="kboard-soak-"))
    try:
        logdir = ChangingLogdir(root)
        reader = LogdirReader(str(root))
        presize_interned_strings()
        tracemalloc.start()
        started = time.monotonic()
        before = (0, 0)
        for i in range(cycles):
            logdir.change(i)
            reader.reload()
            if i == warm_up:
                before = measure()
        after = measure()
        seconds = time.monotonic() - started
        tracemalloc.stop()
        points = sum(len(c) for _, _, c in reader.store.iter_scalars())
    finally:
        shutil.rmtree(root, ignore_errors=True)
    grew_kb = (after[0] - before[0]) / 1024
    each = seconds / cycles * 1e3
    print(f"kboard soak: {cycles} reload cycles in {seconds:.1f} s ({each:.2f} ms each)")
    print(f"  traced memory after warm-up ({warm_up} cycles): {before[0] / 1024:.0f} KiB")
    print(f"  traced memory at the end: {after[0] / 1024:.0f} KiB ({grew_kb:+.0f} KiB)")
    print(f"  open file descriptors: {before[1]} after warm-up, {after[1]} at the end")
    print(f"  points held at the end: {points}")
    # The store holds at most SLOTS runs of ~LIFETIME/SLOTS*3 points: a few KiB either way.
    ok = grew_kb < 256 and after[1] <= before[1]
    print("  result: " + ("PASS" if ok else "FAIL (memory or file handles grew)"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
