"""The many-records-at-once decoder gives exactly what decoding record by record gives."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tensorboard.compat.proto import event_pb2, summary_pb2

from bench.generate import scalar_event as encode_scalar
from kboard.tfevents.events import Datum, Kind, decode_record
from kboard.tfevents.fastpath import decode_block
from kboard.tfevents.records import encode_record, read_block
from kboard.writer import SummaryWriter

from .conftest import scalar_event

TAGS = ["loss", "lost", "acc/train", "acc/valid", "é/ü", "x" * 40]


def one_by_one(records: list[bytes]) -> tuple[dict, list]:
    """The reference: decode_record on each record, scalars gathered per tag."""
    infos: dict = {}
    scalars: dict[str, list[tuple[int, float, float]]] = {}
    others = []
    for index, data in enumerate(records):
        items, _ = decode_record(data, infos)
        for item in items:
            if isinstance(item, Datum) and item.info.kind is Kind.SCALARS:
                scalars.setdefault(item.tag, []).append((item.step, item.wall_time, item.value))
            else:
                others.append((index, item))
    return scalars, others


def all_at_once(records: list[bytes]) -> tuple[dict, list]:
    blob = b"".join(encode_record(r) for r in records)
    block = read_block(io.BytesIO(blob), 0)
    assert len(block) == len(records)
    decoded = decode_block(block, {})
    scalars = {
        tag: list(zip(b.steps.tolist(), b.wall_times.tolist(), b.values.tolist()))
        for tag, b in decoded.scalars.items()
    }
    return scalars, decoded.items


def same(a: tuple[dict, list], b: tuple[dict, list]) -> None:
    assert a[0].keys() == b[0].keys()
    for tag in a[0]:
        np.testing.assert_array_equal(np.array(a[0][tag]), np.array(b[0][tag]), err_msg=tag)
    assert [i for i, _ in a[1]] == [i for i, _ in b[1]]


record_kinds = st.sampled_from(["tf2", "tf2_meta", "legacy", "double", "text", "restart", "junk"])


@st.composite
def records(draw) -> list[bytes]:
    out = []
    for _ in range(draw(st.integers(0, 60))):
        kind = draw(record_kinds)
        tag = draw(st.sampled_from(TAGS))
        step = draw(st.one_of(st.integers(0, 300), st.integers(-(2**63), 2**63 - 1)))
        wall = draw(st.one_of(st.floats(allow_nan=True), st.just(1000.0 + step % 97)))
        value = draw(st.floats(width=32, allow_nan=True))
        if kind in ("tf2", "tf2_meta", "legacy"):
            out.append(
                encode_scalar(
                    tag.encode(),
                    step,
                    wall,
                    value,
                    tf2=kind != "legacy",
                    metadata=kind == "tf2_meta",
                )
            )
        elif kind == "double":
            event = scalar_event(tag, step, value, wall_time=wall)
            tensor = event.summary.value[0].tensor
            tensor.dtype = 2  # DT_DOUBLE
            tensor.tensor_content = np.float64(value).tobytes()
            out.append(event.SerializeToString())
        elif kind == "text":
            val = summary_pb2.Summary.Value(tag=tag + "_text")
            val.metadata.plugin_data.plugin_name = "text"
            val.tensor.dtype = 7
            val.tensor.string_val.append(b"hello")
            out.append(
                event_pb2.Event(
                    step=step, summary=summary_pb2.Summary(value=[val])
                ).SerializeToString()
            )
        elif kind == "restart":
            out.append(
                event_pb2.Event(
                    step=abs(step) % 50,
                    session_log=event_pb2.SessionLog(status=event_pb2.SessionLog.START),
                ).SerializeToString()
            )
        else:
            out.append(draw(st.binary(max_size=40)))
    return out


@settings(max_examples=300, deadline=None)
@given(records())
def test_block_decoding_equals_record_decoding(recs: list[bytes]) -> None:
    same(all_at_once(recs), one_by_one(recs))


def test_real_writer_files_decode_the_same(tmp_path) -> None:
    with SummaryWriter(str(tmp_path)) as writer:
        for step in range(300):
            writer.add_scalar("a", step * 0.5, step)
            writer.add_scalar("b", -step, step * 1000)
            if step % 50 == 0:
                writer.add_histogram("h", np.arange(10.0), step)
    (path,) = tmp_path.iterdir()
    with open(path, "rb") as stream:
        recs = read_block(stream, 0).records()
    fast, slow = all_at_once(recs), one_by_one(recs)
    same(fast, slow)
    assert len(fast[0]["a"]) == 300


def test_tf_summary_scalars_take_the_fast_path(tmp_path) -> None:
    tf = pytest.importorskip("tensorflow")
    writer = tf.summary.create_file_writer(str(tmp_path))
    with writer.as_default():
        for step in range(200):
            tf.summary.scalar("loss", 1.0 / (step + 1), step=step)
            tf.summary.scalar("acc", step / 200, step=step)
    writer.close()
    (path,) = tmp_path.iterdir()
    with open(path, "rb") as stream:
        block = read_block(stream, 0)
    decoded = decode_block(block, {})
    assert decoded.fast_records >= 390  # all but the first record of each tag
    same(all_at_once(block.records()), one_by_one(block.records()))
