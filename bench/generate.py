"""Write a deterministic benchmark logdir fast, without TensorFlow.

Records are encoded directly (protobuf wire format) in the exact layouts ``tf.summary``
(TF2 tensors) and torch/tensorboardX (legacy ``simple_value``) write, so a logdir of millions
of points takes seconds instead of minutes. Histograms and images go through kboard's writer.

    python -m bench.generate OUTDIR --runs 10 --tags 20 --steps 10000 [--format tf2|legacy]
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


def file_version_record(wall_time: float) -> bytes:
    event = b"\x09" + _DOUBLE.pack(wall_time) + _field(3, b"brain.Event:2")
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
    return b"\x09" + _DOUBLE.pack(wall_time) + b"\x10" + _varint(step) + _field(5, summary)


def write_scalar_run(path: Path, tags: int, steps: int, *, seed: int, tf2: bool = True) -> int:
    """Write one run's event file of ``tags`` scalar series of ``steps`` points each."""
    rng = np.random.default_rng(seed)
    values = (
        np.exp(-np.arange(steps)[:, None] / (steps / 3 + 1)) + rng.normal(0, 0.05, (steps, tags))
    ).astype(np.float32)
    names = [f"metrics/tag_{i:03d}".encode() for i in range(tags)]
    path.mkdir(parents=True, exist_ok=True)
    filename = path / f"events.out.tfevents.{int(START_TIME) + seed}.bench.{seed}.v2"
    written = 0
    with open(filename, "wb") as out:
        out.write(file_version_record(START_TIME))
        chunk: list[bytes] = []
        for step in range(steps):
            wall = START_TIME + seed * 3600 + step * 0.25
            row = values[step].tolist()
            for i, name in enumerate(names):
                chunk.append(
                    encode_record(scalar_event(name, step, wall, row[i], tf2=tf2, metadata=True))
                )
            if len(chunk) >= 50_000:
                out.write(b"".join(chunk))
                written += len(chunk)
                chunk = []
        out.write(b"".join(chunk))
        written += len(chunk)
    return written


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
    outdir: str, runs: int, tags: int, steps: int, *, fmt: str = "tf2", extras: bool = False
) -> int:
    """Write the whole logdir; return the number of scalar points."""
    total = 0
    for run in range(runs):
        path = Path(outdir) / f"run_{run:03d}"
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
    args = parser.parse_args(argv)
    total = generate(
        args.outdir, args.runs, args.tags, args.steps, fmt=args.format, extras=args.extras
    )
    size = sum(f.stat().st_size for f in Path(args.outdir).rglob("*") if f.is_file())
    print(f"{args.outdir}: {total} points, {size / 1e6:.1f} MB ({os.cpu_count()} cores here)")


if __name__ == "__main__":
    main()
