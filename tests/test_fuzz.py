"""Property-based fuzzing of the record reader, the decoders and the whole logdir reader.

Random bytes, and random truncations, bit flips, overwrites and insertions in valid files:
nothing may raise out of the reader, and no point may come out that was not written (each
point read is one of the written ones, with its exact step, wall time and value).
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tensorboard.compat.proto import types_pb2

from bench.generate import scalar_event as encode_scalar
from kboard.ingest import LogdirReader
from kboard.tfevents.events import decode_record
from kboard.tfevents.fastpath import decode_block
from kboard.tfevents.records import encode_record, frame_block, read_block, read_records

from .test_fastpath import (
    all_at_once,
    content,
    event,
    field,
    metadata,
    one_by_one,
    repeated,
    same,
    tensor,
)

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TAGS = (b"loss", b"acc", b"lr")


def _payload(i: int, tag: bytes, step: int, wall: float, value: float) -> bytes:
    """Point ``i`` in one of the layouts writers use (a bit flip away from many others)."""
    if i % 5 < 3:  # tf.summary's, with its metadata on the first event of each tag
        return encode_scalar(tag, step, wall, value, tf2=True, metadata=i < 3)
    if i % 5 == 3:  # torch's legacy simple_value
        return encode_scalar(tag, step, wall, value, tf2=False, metadata=False)
    if i % 2:  # a float64 tensor
        val = tensor(types_pb2.DT_DOUBLE, (), content([value], "<f8"))
        return event(wall, step, field(1, tag) + field(8, val))
    # one unpacked float_val in a [1, 1] tensor, with display name and description
    val = tensor(types_pb2.DT_FLOAT, (1, 1), repeated("float_val", [value], packed=False))
    meta = metadata("scalars", "Loss", "what it measures")
    return event(wall, step, field(1, tag) + field(9, meta) + field(8, val))


def _written() -> tuple[list[bytes], dict[bytes, set[tuple[int, float, float]]]]:
    """Payloads of distinct points in the layouts writers use, and the points themselves."""
    payloads, points = [], {}
    for i in range(60):
        tag = TAGS[i % 3]
        step, wall, value = i // 3, 1_700_000_000.0 + i, float(np.float32(0.001 * i + 1.5))
        payloads.append(_payload(i, tag, step, wall, value))
        points.setdefault(tag, set()).add((step, wall, value))
    return payloads, points


PAYLOADS, POINTS = _written()
FILE = b"".join(encode_record(p) for p in PAYLOADS)


@st.composite
def corrupted(draw, data: bytes = FILE) -> bytes:
    """``data`` with a few random truncations, bit flips, overwrites and insertions."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["flip", "overwrite", "insert", "truncate", "delete"]))
        at = draw(st.integers(0, max(len(out) - 1, 0)))
        if action == "flip" and out:
            out[at] ^= 1 << draw(st.integers(0, 7))
        elif action == "overwrite":
            patch = draw(st.binary(min_size=1, max_size=16))
            out[at : at + len(patch)] = patch
        elif action == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif action == "delete":
            del out[at : at + draw(st.integers(1, 16))]
        else:
            del out[at:]
    return bytes(out)


# -- framing ----------------------------------------------------------------------------
@FUZZ
@given(st.binary(max_size=3000), st.integers(0, 64), st.integers(1, 4096))
def test_framing_random_bytes_never_raises(data: bytes, offset: int, block_bytes: int) -> None:
    result = read_records(io.BytesIO(data), offset, chunk_size=block_bytes)
    assert offset <= result.end_offset or not data[offset:]
    assert result.end_offset <= max(len(data), offset)
    block = read_block(io.BytesIO(data), offset, block_bytes=block_bytes)
    assert all(isinstance(r, bytes) for r in block.records())


@FUZZ
@given(corrupted(), st.integers(1, 4096))
def test_framing_of_a_corrupted_file_yields_only_written_records(data: bytes, chunk: int) -> None:
    result = read_records(io.BytesIO(data), 0, chunk_size=chunk)
    assert set(result.records) <= set(PAYLOADS)
    # Records are yielded in file order: a subsequence of what was written.
    positions = [PAYLOADS.index(r) for r in result.records]
    assert positions == sorted(positions)


@FUZZ
@given(st.integers(0, len(FILE)))
def test_a_truncated_file_yields_exactly_the_whole_records(cut: int) -> None:
    result = read_records(io.BytesIO(FILE[:cut]), 0)
    whole = sum(1 for end in np.cumsum([len(encode_record(p)) for p in PAYLOADS]) if end <= cut)
    assert result.records == PAYLOADS[:whole]
    assert not result.problems and not result.stopped


# -- decoding ---------------------------------------------------------------------------
@FUZZ
@given(st.binary(max_size=400))
def test_decode_record_random_bytes_never_raises(data: bytes) -> None:
    items, problems = decode_record(data, {})
    assert isinstance(items, list) and isinstance(problems, list)


@st.composite
def mutated_payloads(draw) -> list[bytes]:
    """Valid scalar payloads, some of them changed by a byte here and there (no CRC to stop it)."""
    chosen = draw(st.lists(st.sampled_from(PAYLOADS), min_size=1, max_size=40))
    out = []
    for payload in chosen:
        if draw(st.booleans()):
            payload = draw(corrupted(payload))
        out.append(payload)
    return out


@FUZZ
@given(mutated_payloads())
def test_block_decoding_of_mutated_records_equals_record_decoding(payloads: list[bytes]) -> None:
    same(all_at_once(payloads), one_by_one(payloads))
    block = frame_block(b"".join(encode_record(p) for p in payloads), 0)
    fast = [i for i, _ in decode_block(block, {}).problems]
    infos: dict = {}
    slow = [i for i, p in enumerate(payloads) for _ in decode_record(p, infos)[1]]
    assert fast == slow


# -- the whole reader -------------------------------------------------------------------
def _read_points(logdir: Path, reader: LogdirReader) -> dict[bytes, list[tuple]]:
    reader.reload()
    out = {}
    for run, tag, cols in reader.store.iter_scalars():
        assert run == "run"
        out[tag.encode()] = list(
            zip(cols.steps.tolist(), cols.wall_times.tolist(), cols.values.tolist())
        )
    return out


@FUZZ
@given(corrupted(), st.integers(0, len(FILE)))
def test_reader_on_a_corrupted_file_never_raises_nor_invents_points(
    data: bytes, split: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        logdir = Path(tmp)
        path = logdir / "run" / "events.out.tfevents.1.fuzz"
        path.parent.mkdir()
        reader = LogdirReader(str(logdir), pending_report_seconds=0.0)
        path.write_bytes(data[:split])  # first what a writer had flushed, then the rest
        _read_points(logdir, reader)
        with open(path, "ab") as out:
            out.write(data[split:])
        points = _read_points(logdir, reader)
        for tag, got in points.items():
            assert tag in POINTS
            assert all(p in POINTS[tag] for p in got), (tag, got)
            assert [s for s, _, _ in got] == sorted({s for s, _, _ in got})
        for problem in reader.store.problems():
            assert problem.kind in {"data_crc", "length_crc", "too_long", "decode", "zero_tail"}
