"""Write a deterministic benchmark logdir fast, without TensorFlow.

Records are encoded directly (protobuf wire format) in the exact layouts ``tf.summary``
(TF2 tensors) and torch/tensorboardX (legacy ``simple_value``) write, so a logdir of millions
of points takes seconds instead of minutes. Histograms and images go through kboard's writer.

    python -m bench.generate OUTDIR --runs 10 --tags 20 --steps 10000 [--format tf2|legacy]
        [--writer bench|tf]

The TF2 layout is byte for byte what ``tf.summary.scalar`` writes (step 0 and all; only the
wall times differ): ``tests/test_bench_generate.py`` compares the bytes. ``--writer tf``
writes the same values with TensorFlow itself, for benchmarks on TensorFlow's own files.
"""

from __future__ import annotations

import argparse
import os
import struct
from pathlib import Path

import numpy as np

from kboard.tfevents.records import encode_record

_DOUBLE = struct.Struct("<d")
_FLOAT = struct.Struct("<f")
START_TIME = 1_767_225_600.0


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


# TensorFlow's EventsWriter names itself in the first event (Event.source_metadata.writer).
TF_WRITER = b"tensorflow.core.util.events_writer"


def _wall_step(wall_time: float, step: int) -> bytes:
    """``Event.wall_time`` and ``Event.step`` as proto3 writes them: left out when zero."""
    wall = _DOUBLE.pack(wall_time)
    out = b"\x09" + wall if wall != bytes(8) else b""
    return out + (b"\x10" + _varint(step) if step else b"")


def file_version_record(wall_time: float) -> bytes:
    """The first record of a file, as TensorFlow's ``EventsWriter`` writes it."""
    event = (
        _wall_step(wall_time, 0) + _field(3, b"brain.Event:2") + _field(10, _field(1, TF_WRITER))
    )
    return encode_record(event)


def scalar_event(
    tag: bytes, step: int, wall_time: float, value: float, *, tf2: bool, metadata: bool
) -> bytes:
    """Encode one scalar Event as tf.summary (``tf2``) or torch writes it.

    ``tf.summary.scalar`` repeats the summary metadata in every event; pass ``metadata``.
    """
    if tf2:
        tensor = b"\x08\x01" + _field(2, b"") + _field(4, _FLOAT.pack(value))
        val = _field(1, tag) + _field(8, tensor)
        if metadata:
            val += _field(9, _field(1, _field(1, b"scalars")))
    else:
        val = _field(1, tag) + b"\x15" + _FLOAT.pack(value)
    summary = _field(1, val)
    return _wall_step(wall_time, step) + _field(5, summary)


def tag_names(tags: int) -> list[str]:
    """The scalar tags of every generated run."""
    return [f"metrics/tag_{i:03d}" for i in range(tags)]


def run_values(tags: int, steps: int, seed: int) -> np.ndarray:
    """The float32 values of one run, ``(steps, tags)``: a noisy decay, deterministic."""
    rng = np.random.default_rng(seed)
    return (
        np.exp(-np.arange(steps)[:, None] / (steps / 3 + 1)) + rng.normal(0, 0.05, (steps, tags))
    ).astype(np.float32)


def run_wall_times(tags: int, steps: int, seed: int) -> np.ndarray:
    """The wall time of every event of one run, ``(steps, tags)``: 4 steps a second."""
    walls = START_TIME + seed * 3600 + np.arange(steps) * 0.25
    return np.repeat(walls[:, None], tags, axis=1)


def write_scalar_run(
    path: Path,
    tags: int,
    steps: int,
    *,
    seed: int,
    tf2: bool = True,
    wall_times: np.ndarray | None = None,
    first_wall_time: float = START_TIME,
) -> int:
    """Write one run's event file of ``tags`` scalar series of ``steps`` points each.

    ``wall_times`` (``(steps, tags)``) and ``first_wall_time`` (of the file-version event)
    replace the generated clock, e.g. to reproduce a file that TensorFlow wrote.
    """
    values = run_values(tags, steps, seed)
    walls = run_wall_times(tags, steps, seed) if wall_times is None else wall_times
    names = [name.encode() for name in tag_names(tags)]
    path.mkdir(parents=True, exist_ok=True)
    filename = path / f"events.out.tfevents.{int(START_TIME) + seed}.bench.{seed}.v2"
    written = 0
    with open(filename, "wb") as out:
        out.write(file_version_record(first_wall_time))
        chunk: list[bytes] = []
        for step in range(steps):
            row, wall_row = values[step].tolist(), walls[step].tolist()
            for i, name in enumerate(names):
                event = scalar_event(name, step, wall_row[i], row[i], tf2=tf2, metadata=True)
                chunk.append(encode_record(event))
            if len(chunk) >= 50_000:
                out.write(b"".join(chunk))
                written += len(chunk)
                chunk = []
        out.write(b"".join(chunk))
        written += len(chunk)
    return written


def write_tf_run(path: Path, tags: int, steps: int, *, seed: int) -> int:
    """Write the same run with real ``tf.summary.scalar`` (TensorFlow's own bytes and clock)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    from tensorflow.python.framework import ops

    values = tf.constant(run_values(tags, steps, seed))
    names = tag_names(tags)
    writer = tf.summary.create_file_writer(str(path), max_queue=100_000, flush_millis=60_000)

    @tf.function
    def write_all() -> None:
        with writer.as_default():
            for step in tf.range(steps, dtype=tf.int64):
                row = values[step]
                # The loop's name scope ("while/") would prefix every tag: reset it.
                with ops.name_scope_v1(None):
                    for i, name in enumerate(names):
                        tf.summary.scalar(name, row[i], step=step)

    write_all()
    writer.close()
    return tags * steps


def write_extras(path: Path, steps: int, seed: int) -> None:
    """A few histograms and images through kboard's writer (lazy import keeps --help quick)."""
    from kboard import SummaryWriter

    rng = np.random.default_rng(seed)
    with SummaryWriter(str(path), flush_secs=60) as writer:
        for step in range(0, steps, max(steps // 20, 1)):
            wall = START_TIME + seed * 3600 + step * 0.25
            writer.add_histogram("weights/histogram", rng.normal(0, 1, 1000), step, walltime=wall)
            writer.add_image("samples", rng.random((3, 16, 16)), step, walltime=wall)


def generate(
    outdir: str,
    runs: int,
    tags: int,
    steps: int,
    *,
    fmt: str = "tf2",
    extras: bool = False,
    writer: str = "bench",
) -> int:
    """Write the whole logdir; return the number of scalar points.

    ``writer="tf"`` writes the same values with real ``tf.summary`` (TF2 format only).
    """
    total = 0
    for run in range(runs):
        path = Path(outdir) / f"run_{run:03d}"
        if writer == "tf":
            total += write_tf_run(path, tags, steps, seed=run)
        else:
            total += write_scalar_run(path, tags, steps, seed=run, tf2=(fmt == "tf2"))
        if extras:
            write_extras(path, steps, run)
    return total


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("outdir")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--tags", type=int, default=20)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--format", choices=("tf2", "legacy"), default="tf2")
    parser.add_argument("--extras", action="store_true", help="add histograms and images")
    parser.add_argument(
        "--writer",
        choices=("bench", "tf"),
        default="bench",
        help="bench: encode records here (fast); tf: real tf.summary (slow, needs TensorFlow)",
    )
    args = parser.parse_args(argv)
    if args.writer == "tf" and args.format != "tf2":
        parser.error("--writer tf writes the tf2 format only")
    total = generate(
        args.outdir,
        args.runs,
        args.tags,
        args.steps,
        fmt=args.format,
        extras=args.extras,
        writer=args.writer,
    )
    size = sum(f.stat().st_size for f in Path(args.outdir).rglob("*") if f.is_file())
    print(f"{args.outdir}: {total} points, {size / 1e6:.1f} MB ({os.cpu_count()} cores here)")


if __name__ == "__main__":
    main()
