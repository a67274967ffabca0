"""The many-records-at-once decoder gives exactly what decoding record by record gives.

Besides the layouts writers use, events are built by hand in the protobuf wire format (repeated
fields packed or one tag per element, fields out of order, a tensor given twice, values of the
wrong type or count), so that layouts whose value window is *not* the value get generated: the
fast path's probe must turn those down, and these tests fail if it does not.
"""

from __future__ import annotations

import io
from typing import Any, NamedTuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tensorboard.compat.proto import event_pb2, summary_pb2, types_pb2

from bench.generate import scalar_event as encode_scalar
from kboard.tfevents.events import Datum, Kind, decode_record
from kboard.tfevents.fastpath import decode_block
from kboard.tfevents.records import encode_record, read_block
from kboard.writer import SummaryWriter

from .conftest import scalar_event

TAGS = ["loss", "lost", "acc/train", "acc/valid", "é/ü", "x" * 40]


class Decoded(NamedTuple):
    """What a decoder gave, in a form to compare."""

    scalars: dict[str, tuple[list[int], list[float], list[float]]]  # steps, walls, values
    infos: dict[str, Any]  # the TagInfo of each scalar tag
    others: list[tuple[int, str]]  # (record index, repr of the item)
    problems: list[tuple[int, Any]]


def one_by_one(records: list[bytes]) -> Decoded:
    """The reference: decode_record on each record, scalars gathered per tag."""
    tag_infos: dict = {}
    out = Decoded({}, {}, [], [])
    for index, data in enumerate(records):
        items, problems = decode_record(data, tag_infos)
        out.problems.extend((index, p) for p in problems)
        for item in items:
            if isinstance(item, Datum) and item.info.kind is Kind.SCALARS:
                steps, walls, values = out.scalars.setdefault(item.tag, ([], [], []))
                steps.append(item.step)
                walls.append(item.wall_time)
                values.append(item.value)
                out.infos.setdefault(item.tag, item.info)
            else:
                out.others.append((index, repr(item)))
    return out


def all_at_once(records: list[bytes]) -> Decoded:
    blob = b"".join(encode_record(r) for r in records)
    block = read_block(io.BytesIO(blob), 0)
    assert len(block) == len(records)
    decoded = decode_block(block, {})
    return Decoded(
        {
            tag: (b.steps.tolist(), b.wall_times.tolist(), b.values.tolist())
            for tag, b in decoded.scalars.items()
        },
        {tag: b.info for tag, b in decoded.scalars.items()},
        [(i, repr(item)) for i, item in decoded.items],
        decoded.problems,
    )


def same(a: Decoded, b: Decoded) -> None:
    assert a.scalars.keys() == b.scalars.keys()
    for tag, (steps, walls, values) in a.scalars.items():
        other_steps, other_walls, other_values = b.scalars[tag]
        assert steps == other_steps, tag
        for mine, theirs in ((walls, other_walls), (values, other_values)):
            np.testing.assert_array_equal(np.array(mine), np.array(theirs), err_msg=tag)
            assert np.signbit(mine).tolist() == np.signbit(theirs).tolist(), tag
    assert a.infos == b.infos
    assert a.others == b.others
    assert a.problems == b.problems


# -- protobuf wire format by hand -------------------------------------------------------
# The protobuf library always packs repeated scalars and writes fields in number order; these
# write them unpacked too, in any order, and repeat a message field (which protobuf merges).


def varint(n: int) -> bytes:
    """A varint (negative numbers as 64-bit two's complement, as for int32 and int64)."""
    n &= (1 << 64) - 1
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (a string, bytes, a message or a packed repeated field)."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


# TensorProto's repeated value fields: (field number, element type).
REPEATED = {
    "half_val": (13, "<f2"),
    "float_val": (5, "<f4"),
    "double_val": (6, "<f8"),
    "int_val": (7, "<i4"),
    "int64_val": (10, "<i8"),
    "uint32_val": (16, "<u4"),
}
# The repeated field each DataType's values are in, when not in tensor_content.
OWN_FIELD = {
    types_pb2.DT_FLOAT: "float_val",
    types_pb2.DT_DOUBLE: "double_val",
    types_pb2.DT_INT32: "int_val",
    types_pb2.DT_INT64: "int64_val",
    types_pb2.DT_UINT32: "uint32_val",
    types_pb2.DT_HALF: "half_val",
}
# DataType values, and the element type of their tensor_content (0 is DT_INVALID).
DTYPES = {
    types_pb2.DT_FLOAT: "<f4",
    types_pb2.DT_DOUBLE: "<f8",
    types_pb2.DT_INT32: "<i4",
    types_pb2.DT_INT64: "<i8",
    types_pb2.DT_UINT32: "<u4",
    types_pb2.DT_HALF: "<f2",
    types_pb2.DT_STRING: "<f4",
    0: "<f4",
}
# Values where the fast path has reasons to be wrong: zeros, the probe's sentinels (as in
# fastpath._SENTINELS: a constant equal to one of them once fooled the probe).
SENTINELS = [1.2345678e-7, -7.654321e-6, -9.87654321e-11, 4.2424242e-77]
SPECIAL = [0.0, -0.0, 1.0, -2.5, float("inf"), float("nan"), *SENTINELS]
ELEMENTS = {
    "<f2": st.floats(width=16),
    "<f4": st.sampled_from(SPECIAL) | st.floats(width=32),
    "<f8": st.sampled_from(SPECIAL) | st.floats(),
    "<i4": st.integers(-(2**31), 2**31 - 1),
    "<i8": st.integers(-(2**63), 2**63 - 1),
    "<u4": st.integers(0, 2**32 - 1),
}


def content(values: list, dtype: str) -> bytes:
    """``tensor_content``: the values' raw little-endian bytes."""
    return field(4, np.array(values, dtype=dtype).tobytes())


def repeated(name: str, values: list, *, packed: bool) -> bytes:
    """A repeated value field of a TensorProto, packed or with one tag per element."""
    number, dtype = REPEATED[name]
    if dtype in ("<f4", "<f8"):
        wire, elements = (
            (5 if dtype == "<f4" else 1),
            [np.array(v, dtype).tobytes() for v in values],
        )
    elif dtype == "<f2":
        wire, elements = 0, [varint(int(np.array(v, dtype).view("<u2"))) for v in values]
    else:
        wire, elements = 0, [varint(int(v)) for v in values]
    if packed:
        return field(number, b"".join(elements))
    return b"".join(varint(number << 3 | wire) + e for e in elements)


def tensor(dtype: int | None, shape: tuple[int, ...] | None, *parts: bytes) -> bytes:
    """A TensorProto: dtype, shape (None: no shape field), then the value fields as given."""
    out = b"" if dtype is None else b"\x08" + varint(dtype)
    if shape is not None:
        out += field(2, b"".join(field(2, b"\x08" + varint(d)) for d in shape))
    return out + b"".join(parts)


def metadata(plugin: str | None, display: str | None = None, description: str | None = None):
    """SummaryMetadata with a plugin name (None: no plugin_data), display name, description."""
    out = b"" if plugin is None else field(1, field(1, plugin.encode()))
    if display is not None:
        out += field(2, display.encode())
    if description is not None:
        out += field(3, description.encode())
    return out


def event(wall: float, step: int, *values: bytes, style: str = "tf") -> bytes:
    """An Event of one Summary holding ``values`` (each a Summary.Value's fields)."""
    summary = field(5, b"".join(field(1, v) for v in values))
    wall_field = b"\x09" + np.float64(wall).tobytes()
    step_field = b"\x10" + varint(step)
    more = varint(step)[:-1] + bytes([varint(step)[-1] | 0x80])  # to be continued
    if style == "padded_step":  # one byte longer than needed: fine up to 10 bytes
        step_field = b"\x10" + more + b"\x00"
    if style == "long_step":  # 10 bytes and the summary's key: an 11-byte varint, corrupt
        step_field = b"\x10" + more + b"\x80" * (10 - len(more))
    if style == "other_wall_key":  # the same bytes as another field: wall_time is 0
        wall_field = b"\x79" + wall_field[1:]
    if style == "other_step_key":  # the same bytes as another field: step is 0
        step_field = b"\x70" + step_field[1:]
    if style == "step_first":
        return step_field + wall_field + summary
    if style == "step_again":  # protobuf keeps the last: 0
        return wall_field + step_field + summary + b"\x10\x00"
    if style == "no_wall":
        return step_field + summary
    return wall_field + step_field + summary


# -- layouts: a template of fixed bytes and per-record holes -----------------------------
# A template is a list of bytes (the same in every record), strategies (drawn anew for every
# record: the values) and (field number, template) pairs (sub-messages).


def fill(draw, template: list) -> bytes:
    out = []
    for piece in template:
        if isinstance(piece, bytes):
            out.append(piece)
        elif isinstance(piece, tuple):
            out.append(field(piece[0], fill(draw, piece[1])))
        else:
            out.append(draw(piece))
    return b"".join(out)


def _piece(draw, values: st.SearchStrategy, encode) -> bytes | st.SearchStrategy:
    """Values that change in every record (a hole) or are the same in all (fixed bytes)."""
    strategy = values.map(encode)
    return strategy if draw(st.booleans()) else draw(strategy)


@st.composite
def tensor_parts(draw, dtype: int | None, *, own: bool) -> tuple[int, bytes | st.SearchStrategy]:
    """One value field of a tensor: (field number, template piece).

    ``own``: one value where the dtype says (tensor_content of that type or its repeated
    field); otherwise any field, element type and count.
    """
    count = 1 if own else draw(st.sampled_from([1, 1, 2, 0]))
    if draw(st.booleans()):
        element = DTYPES.get(dtype, "<f4")
        if not own:
            element = draw(st.sampled_from(sorted(ELEMENTS)))
        values = st.lists(ELEMENTS[element], min_size=count, max_size=count)
        return 4, _piece(draw, values, lambda v: content(v, element))
    name = OWN_FIELD.get(dtype, "float_val") if own else draw(st.sampled_from(sorted(REPEATED)))
    packed = draw(st.booleans())
    values = st.lists(ELEMENTS[REPEATED[name][1]], min_size=count, max_size=count)
    return REPEATED[name][0], _piece(draw, values, lambda v: repeated(name, v, packed=packed))


@st.composite
def tensor_templates(draw) -> list:
    """A TensorProto of any dtype and shape: its value, and up to two other value fields."""
    dtype = draw(st.sampled_from([types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE, *DTYPES, None]))
    shape = draw(st.sampled_from([(), None, (1,), (1, 1), (2,), (0,)]))
    parts = [draw(tensor_parts(dtype, own=True))]
    parts += [draw(tensor_parts(dtype, own=False)) for _ in range(draw(st.integers(0, 2)))]
    if draw(st.booleans()):
        parts.sort(key=lambda part: part[0])  # the order protobuf writes
    else:
        parts = draw(st.permutations(parts))
    return [tensor(dtype, shape)] + [piece for _, piece in parts]


@st.composite
def layouts(draw) -> tuple[list, list]:
    """A Summary.Value template with its metadata, and the same without (for later events)."""
    tag = field(1, draw(st.sampled_from(TAGS)).encode())
    simple = [b"\x15", _piece(draw, ELEMENTS["<f4"], lambda v: np.float32(v).tobytes())]
    # Both in one Value: the last one is its value; a tensor given twice is merged.
    kinds = ["tensor", "simple", "simple, tensor", "tensor, simple", "tensor, tensor"]
    value: list = []
    for kind in draw(st.sampled_from(kinds)).split(", "):
        value += simple if kind == "simple" else [(8, draw(tensor_templates()))]
    meta = metadata(
        draw(st.sampled_from(["scalars"] * 5 + [None, "", "text", "custom"])),
        draw(st.sampled_from([None, "", "Loss", "é"])),
        draw(st.sampled_from([None, "", "what it measures"])),
    )
    where = draw(st.sampled_from(["after", "before", "after", "none"]))
    meta_field = [] if where == "none" else [field(9, meta)]
    with_meta = [tag, *meta_field, *value] if where == "before" else [tag, *value, *meta_field]
    # tf.summary repeats the metadata in every event; others write it with the first only.
    return with_meta, (with_meta if draw(st.booleans()) else [tag, *value])


STYLES = ["tf"] * 8 + [
    "padded_step",
    "long_step",
    "other_wall_key",
    "other_step_key",
    "step_first",
    "step_again",
    "no_wall",
    "truncated",
]
record_kinds = st.sampled_from(
    ["layout"] * 12 + ["tf2", "tf2_meta", "legacy", "double", "text", "restart", "junk"]
)


@st.composite
def records(draw) -> list[bytes]:
    """Records of a few hand-made layouts (mostly) among those of real writers and junk."""
    templates = [draw(layouts()) for _ in range(draw(st.integers(1, 3)))]
    seen: set[int] = set()
    out = []
    for _ in range(draw(st.integers(0, 40))):
        kind = draw(record_kinds)
        tag = draw(st.sampled_from(TAGS))
        step = draw(st.one_of(st.integers(0, 300), st.integers(-(2**63), 2**63 - 1)))
        # (A group whose first wall_time is NaN is never read with numpy: NaN != NaN.)
        wall = draw(st.sampled_from([1000.0 + step % 97, 0.0]) | st.floats(allow_nan=True))
        value = draw(st.floats(width=32, allow_nan=True))
        if kind == "layout":
            which = draw(st.integers(0, len(templates) - 1))
            first, later = templates[which]
            val = fill(draw, later if which in seen else first)
            seen.add(which)
            style = draw(st.sampled_from(STYLES))
            data = event(wall, step, val, style=style)
            # A record cut short: a "wall_time, step" start, long step varints, little after.
            out.append(data[: draw(st.integers(0, len(data)))] if style == "truncated" else data)
        elif kind in ("tf2", "tf2_meta", "legacy"):
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
            ev = scalar_event(tag, step, value, wall_time=wall)
            tensor_proto = ev.summary.value[0].tensor
            tensor_proto.dtype = types_pb2.DT_DOUBLE
            tensor_proto.tensor_content = np.float64(value).tobytes()
            out.append(ev.SerializeToString())
        elif kind == "text":
            val = summary_pb2.Summary.Value(tag=tag + "_text")
            val.metadata.plugin_data.plugin_name = "text"
            val.tensor.dtype = types_pb2.DT_STRING
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


@settings(max_examples=300, deadline=None, report_multiple_bugs=False)
@given(records())
def test_block_decoding_equals_record_decoding(recs: list[bytes]) -> None:
    same(all_at_once(recs), one_by_one(recs))


# -- the probe, case by case -------------------------------------------------------------
DT_FLOAT, DT_DOUBLE, DT_HALF = types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE, types_pb2.DT_HALF
DT_INT32, DT_INT64, DT_UINT32 = types_pb2.DT_INT32, types_pb2.DT_INT64, types_pb2.DT_UINT32
SCALARS_META = field(9, metadata("scalars"))
F4_SENTINEL = np.float32(SENTINELS[0])


def _series(value_of, n: int = 6, **kwargs) -> list[bytes]:
    """``n`` events of tag ``t``, ``value_of(x)`` giving the Summary.Value fields for value x."""
    xs = [0.5 * k - 1.0 for k in range(n)]
    return [event(100.0 + k, k, field(1, b"t") + value_of(x), **kwargs) for k, x in enumerate(xs)]


NOT_THE_VALUE = {
    # tensor_content is the value; float_val, written after it, is not.
    "content then float_val": lambda x: (
        field(
            8, tensor(DT_FLOAT, (), content([3.0], "<f4"), repeated("float_val", [x], packed=True))
        )
        + SCALARS_META
    ),
    "content then unpacked float_val": lambda x: (
        field(
            8, tensor(DT_FLOAT, (), content([3.0], "<f4"), repeated("float_val", [x], packed=False))
        )
        + SCALARS_META
    ),
    # The same, with the constant being the probe's sentinel itself.
    "sentinel content then float_val": lambda x: (
        field(
            8,
            tensor(
                DT_FLOAT, (), content([F4_SENTINEL], "<f4"), repeated("float_val", [x], packed=True)
            ),
        )
        + SCALARS_META
    ),
    # A 4- or 8-byte window of an integer tensor.
    "int32 content": lambda x: (
        field(8, tensor(DT_INT32, (), content([int(x * 2)], "<i4"))) + SCALARS_META
    ),
    "uint32 content": lambda x: (
        field(8, tensor(DT_UINT32, (), content([int(x * 2) + 2], "<u4"))) + SCALARS_META
    ),
    "int64 content": lambda x: (
        field(8, tensor(DT_INT64, (), content([int(x * 2)], "<i8"))) + SCALARS_META
    ),
    # float_val of a tensor whose dtype reads another field: no value there, so 0.
    "double tensor, float_val": lambda x: (
        field(8, tensor(DT_DOUBLE, (), repeated("float_val", [x], packed=True))) + SCALARS_META
    ),
    "half tensor, float_val": lambda x: (
        field(8, tensor(DT_HALF, (), repeated("float_val", [x], packed=False))) + SCALARS_META
    ),
    # A tensor given twice is merged: the first one's tensor_content wins.
    "two tensors": lambda x: (
        field(8, tensor(DT_FLOAT, (), content([3.0], "<f4")))
        + field(8, repeated("float_val", [x], packed=True))
        + SCALARS_META
    ),
    # A legacy value whose metadata names another plugin is not a scalar.
    "simple_value of another plugin": lambda x: (
        b"\x15" + np.float32(x).tobytes() + field(9, metadata("custom"))
    ),
    # A tensor without metadata is not a scalar either.
    "tensor without metadata": lambda x: field(8, tensor(DT_FLOAT, (), content([x], "<f4"))),
    # Two values (a scalar summary must hold one): a decoding problem, nothing to probe.
    "two float32 values": lambda x: (
        field(8, tensor(DT_FLOAT, (2,), content([x, x], "<f4"))) + SCALARS_META
    ),
    "shape [2], one float_val": lambda x: (
        field(8, tensor(DT_FLOAT, (2,), repeated("float_val", [x], packed=True))) + SCALARS_META
    ),
    # Values of 2 and 0 bytes (a float16; no value, so 0): numpy reads only 4 and 8.
    "half content": lambda x: field(8, tensor(DT_HALF, (), content([x], "<f2"))) + SCALARS_META,
    "empty content": lambda x: field(8, tensor(DT_FLOAT, (), content([], "<f4"))) + SCALARS_META,
}


@pytest.mark.parametrize("name", sorted(NOT_THE_VALUE))
def test_the_fast_path_turns_down_windows_that_are_not_the_value(name: str) -> None:
    recs = _series(NOT_THE_VALUE[name])
    same(all_at_once(recs), one_by_one(recs))
    blob = b"".join(encode_record(r) for r in recs)
    assert decode_block(read_block(io.BytesIO(blob), 0), {}).fast_records == 0


THE_VALUE = {
    "tf.summary": lambda x: field(8, tensor(DT_FLOAT, (), content([x], "<f4"))) + SCALARS_META,
    "double content": lambda x: field(8, tensor(DT_DOUBLE, (), content([x], "<f8"))) + SCALARS_META,
    "shape [1, 1]": lambda x: (
        field(8, tensor(DT_FLOAT, (1, 1), content([x], "<f4"))) + SCALARS_META
    ),
    "packed float_val": lambda x: (
        field(8, tensor(DT_FLOAT, (), repeated("float_val", [x], packed=True))) + SCALARS_META
    ),
    "unpacked float_val": lambda x: (
        SCALARS_META + field(8, tensor(DT_FLOAT, None, repeated("float_val", [x], packed=False)))
    ),
    "packed double_val": lambda x: (
        field(8, tensor(DT_DOUBLE, (), repeated("double_val", [x], packed=True))) + SCALARS_META
    ),
    "unpacked double_val": lambda x: (
        field(8, tensor(DT_DOUBLE, (), repeated("double_val", [x], packed=False))) + SCALARS_META
    ),
    "simple_value": lambda x: b"\x15" + np.float32(x).tobytes(),
    "display name and description": lambda x: (
        field(8, tensor(DT_FLOAT, (), content([x], "<f4")))
        + field(9, metadata("scalars", "Loss", "what it measures"))
    ),
}


@pytest.mark.parametrize("style", ["tf", "padded_step"])
@pytest.mark.parametrize("name", sorted(THE_VALUE))
def test_layouts_writers_use_take_the_fast_path(name: str, style: str) -> None:
    recs = _series(THE_VALUE[name], style=style)
    same(all_at_once(recs), one_by_one(recs))
    blob = b"".join(encode_record(r) for r in recs)
    assert decode_block(read_block(io.BytesIO(blob), 0), {}).fast_records == len(recs) - 1


# Records that start like "wall_time, step" but are not that, or not whole: (style, cut).
ODD_STARTS = {
    "wall_time under another key": ("other_wall_key", None),  # an unknown field: wall_time 0
    "step under another key": ("other_step_key", None),  # an unknown field: step 0
    "11-byte step varint": ("long_step", None),  # ended by the summary's key: corrupt
    "cut after a 10-byte step": ("tf", 16),  # fewer bytes than the start says
}


@pytest.mark.parametrize("name", sorted(ODD_STARTS))
def test_every_record_of_a_group_starts_wall_time_then_step(name: str) -> None:
    style, cut = ODD_STARTS[name]
    value_of = THE_VALUE["tf.summary"]
    recs = _series(value_of)
    recs.insert(3, event(99.0, -3, field(1, b"t") + value_of(7.0), style=style)[:cut])
    same(all_at_once(recs), one_by_one(recs))


def test_metadata_on_the_first_event_only_takes_the_fast_path() -> None:
    recs = _series(lambda x: field(8, tensor(DT_FLOAT, (), content([x], "<f4"))))
    recs[0] = event(1.0, 0, field(1, b"t") + field(8, tensor(DT_FLOAT, (), b"")) + SCALARS_META)
    fast, slow = all_at_once(recs), one_by_one(recs)
    same(fast, slow)
    assert len(fast.scalars["t"][0]) == len(recs)
    blob = b"".join(encode_record(r) for r in recs)
    assert decode_block(read_block(io.BytesIO(blob), 0), {}).fast_records == len(recs) - 2


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
    assert len(fast.scalars["a"][0]) == 300


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


def _cycled(tags: list[str], steps: int) -> list[bytes]:
    """Tags written in the same order at steps 1, 2, ..., as a training loop writes them."""
    return [
        scalar_event(tag, step, step * 0.25 + i, wall_time=50.0 + step).SerializeToString()
        for step in range(1, steps + 1)
        for i, tag in enumerate(tags)
    ]


def test_tags_in_a_fixed_order_are_grouped_by_their_place_in_the_cycle() -> None:
    recs = _cycled(["loss", "acc/train", "acc/valid"], 40)
    decoded = decode_block(read_block(io.BytesIO(b"".join(map(encode_record, recs))), 0), {})
    assert decoded.fast_records == len(recs) - 3  # all but each tag's first record
    same(all_at_once(recs), one_by_one(recs))


@pytest.mark.parametrize("where", [1, 31, 118])
def test_one_record_out_of_the_cycle_is_not_taken_for_its_neighbour(where: int) -> None:
    # "lost" has the bytes of "loss" but for one: a cycle that is not checked whole would
    # file this point under "loss" (or "loss"'s under "lost").
    recs = _cycled(["loss", "acc/train", "acc/valid"], 40)
    at = where - where % 3
    step = at // 3 + 1
    recs[at] = scalar_event("lost", step, 7.5, wall_time=50.0 + step).SerializeToString()
    fast, slow = all_at_once(recs), one_by_one(recs)
    same(fast, slow)
    assert fast.scalars["lost"][2] == [7.5]
    assert len(fast.scalars["loss"][0]) == 39
