"""Restarted runs cost what plain runs cost: load time per point and memory, side by side.

Two runs of the same size: one written once, one restarted ``--restarts`` times into the same
directory (each training from step 0, no restart marker: the worst case of issue #13). Both
are loaded in this process; the figures are time per point and the store's memory per point
(tracemalloc), best of ``--repeat``.

    python -m bench.restarts [--points 47118] [--restarts 24] [--tags 4] [--repeat 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from pathlib import Path

from bench.generate import START_TIME, file_version_record, scalar_event
from kboard.ingest import LogdirReader
from kboard.tfevents.records import encode_record


def write_run(directory: Path, points: int, trainings: int, tags: int) -> None:
    """``points`` scalar values per tag, split over ``trainings`` files that each restart."""
    directory.mkdir(parents=True)
    per_training = points // trainings
    for training in range(trainings):
        records = [file_version_record(START_TIME)]
        for step in range(per_training):
            wall = START_TIME + training * 3600 + step
            for tag in range(tags):
                value = float(training * 1000 + step + tag)
                name = f"tag{tag}".encode()
                event = scalar_event(name, step, wall, value, tf2=True, metadata=True)
                records.append(encode_record(event))
        name = f"events.out.tfevents.{int(START_TIME) + training:010d}.bench"
        (directory / name).write_bytes(b"".join(records))


def measure(run_dir: Path, repeat: int) -> tuple[float, int, int, int]:
    """Best load time (s), store bytes, values kept in view, values kept in all."""
    best = float("inf")
    for _ in range(repeat):
        reader = LogdirReader(str(run_dir))
        start = time.perf_counter()
        reader.reload()
        best = min(best, time.perf_counter() - start)
    tracemalloc.start()
    reader = LogdirReader(str(run_dir))
    reader.reload()
    memory = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    store = reader.store
    shown = sum(len(cols) for _, _, cols in store.iter_scalars())
    kept = sum(len(store.scalar_history(run, tag)) for run, tag, _ in store.iter_scalars())
    return best, memory, shown, kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=47_118, help="values per tag")
    parser.add_argument("--restarts", type=int, default=24)
    parser.add_argument("--tags", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kboard-restarts-") as tmp:
        rows = []
        for label, trainings in (("written once", 1), ("restarted", args.restarts + 1)):
            run_dir = Path(tmp) / label.replace(" ", "_")
            write_run(run_dir, args.points, trainings, args.tags)
            seconds, memory, shown, kept = measure(run_dir, args.repeat)
            rows.append((label, trainings - 1, seconds, memory, shown, kept))
    print("| run | restarts | values kept | shown | load time | per value | memory | per value |")
    print("|---|---|---|---|---|---|---|---|")
    for label, restarts, seconds, memory, shown, kept in rows:
        print(
            f"| {label} | {restarts} | {kept:,} | {shown:,} | {seconds * 1000:.0f} ms | "
            f"{seconds / kept * 1e9:.0f} ns | {memory / 1e6:.1f} MB | {memory / kept:.1f} B |"
        )


if __name__ == "__main__":
    main()
