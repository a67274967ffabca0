"""The one normalisation point: every event-file format becomes one record model.

Legacy protos (``simple_value``, ``Summary.Image``, ``HistogramProto``) written by torch and
tensorboardX, and TF2 tensor summaries written by ``tf.summary`` and Keras, all come out of
:func:`decode_event` as :class:`Datum` values of a few kinds. Nothing else in kboard looks at
protobufs, so the rest of the code knows one shape per kind.
"""

from __future__ import annotations

import enum
import heapq
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from google.protobuf.message import DecodeError
from tensorboard.compat.proto import event_pb2, summary_pb2, types_pb2

__all__ = [
    "Kind",
    "TagInfo",
    "Datum",
    "Restart",
    "ImageSamples",
    "DecodeProblem",
    "decode_record",
    "decode_event",
    "tensor_to_array",
]


class Kind(str, enum.Enum):
    """What a series holds, which decides how it is stored and shown."""

    SCALARS = "scalars"
    IMAGES = "images"
    HISTOGRAMS = "histograms"
    TEXT = "text"
    MODEL = "model"
    OTHER = "other"


# TensorBoard plugin names that map onto one of our kinds.
PLUGIN_KINDS: dict[str, Kind] = {
    "scalars": Kind.SCALARS,
    "images": Kind.IMAGES,
    "histograms": Kind.HISTOGRAMS,
    "text": Kind.TEXT,
    "graph_keras_model": Kind.MODEL,
    "kboard_model_summary": Kind.MODEL,
}


@dataclass(frozen=True)
class TagInfo:
    """What is known about one tag of one run, from its first summary metadata."""

    kind: Kind
    plugin_name: str
    display_name: str = ""
    description: str = ""


@dataclass(frozen=True)
class ImageSamples:
    """The images of one step of an image tag: encoded bytes, several samples per step."""

    width: int
    height: int
    samples: tuple[bytes, ...]


@dataclass(frozen=True)
class Datum:
    """One normalised value of one tag at one step.

    ``value`` is a ``float`` for scalars, :class:`ImageSamples` for images, a float64
    ``[k, 3]`` array of (left, right, count) for histograms, a numpy array of ``str`` for
    text, a ``str`` (JSON) for models, and a short description string for other plugins.
    """

    tag: str
    info: TagInfo
    step: int
    wall_time: float
    value: Any


@dataclass(frozen=True)
class Restart:
    """A ``SessionLog.START``: the job restarted at ``step``; later data replaces newer."""

    step: int
    wall_time: float


@dataclass(frozen=True)
class DecodeProblem:
    """A record or value that could not be decoded; it is skipped and reported."""

    tag: str
    message: str


_STRING_DTYPES = {types_pb2.DT_STRING}
_NUMPY_DTYPES: dict[int, np.dtype] = {
    types_pb2.DT_FLOAT: np.dtype("<f4"),
    types_pb2.DT_DOUBLE: np.dtype("<f8"),
    types_pb2.DT_HALF: np.dtype("<f2"),
    types_pb2.DT_INT8: np.dtype("i1"),
    types_pb2.DT_INT16: np.dtype("<i2"),
    types_pb2.DT_INT32: np.dtype("<i4"),
    types_pb2.DT_INT64: np.dtype("<i8"),
    types_pb2.DT_UINT8: np.dtype("u1"),
    types_pb2.DT_UINT16: np.dtype("<u2"),
    types_pb2.DT_UINT32: np.dtype("<u4"),
    types_pb2.DT_UINT64: np.dtype("<u8"),
    types_pb2.DT_BOOL: np.dtype("?"),
}
_VAL_FIELDS: dict[int, str] = {
    types_pb2.DT_FLOAT: "float_val",
    types_pb2.DT_DOUBLE: "double_val",
    types_pb2.DT_HALF: "half_val",
    types_pb2.DT_INT8: "int_val",
    types_pb2.DT_INT16: "int_val",
    types_pb2.DT_INT32: "int_val",
    types_pb2.DT_UINT8: "int_val",
    types_pb2.DT_UINT16: "int_val",
    types_pb2.DT_INT64: "int64_val",
    types_pb2.DT_UINT32: "uint32_val",
    types_pb2.DT_UINT64: "uint64_val",
    types_pb2.DT_BOOL: "bool_val",
}


def tensor_to_array(tensor: Any) -> np.ndarray:
    """Turn a ``TensorProto`` into a numpy array (strings as an object array of bytes)."""
    shape = [d.size for d in tensor.tensor_shape.dim]
    count = int(np.prod(shape)) if shape else 1
    dtype = tensor.dtype
    if dtype in _STRING_DTYPES:
        values = list(tensor.string_val)
        arr = np.empty(len(values), dtype=object)
        arr[:] = values
        if len(values) == count:
            return arr.reshape(shape)
        if len(values) == 1:  # TensorFlow's broadcast of a single repeated value
            return np.full(shape, values[0], dtype=object)
        raise ValueError(f"string tensor holds {len(values)} values for shape {shape}")
    np_dtype = _NUMPY_DTYPES.get(dtype)
    if np_dtype is None:
        # Rare dtypes (bfloat16, complex, ...): TensorBoard's own TF-free converter.
        from tensorboard.util import tensor_util

        return np.asarray(tensor_util.make_ndarray(tensor))
    if tensor.tensor_content:
        arr = np.frombuffer(tensor.tensor_content, dtype=np_dtype)
        if arr.size != count:
            raise ValueError(f"tensor holds {arr.size} values for shape {shape}")
        return arr.reshape(shape)
    field = _VAL_FIELDS[dtype]
    raw = getattr(tensor, field)
    if dtype == types_pb2.DT_HALF:
        vals = np.asarray(raw, dtype=np.uint16).view(np.float16)
    else:
        vals = np.asarray(raw, dtype=np_dtype)
    if vals.size == count:
        return vals.reshape(shape)
    if vals.size == 0:
        return np.zeros(shape, dtype=np_dtype)
    if count > 0 and vals.size < count:  # TensorFlow pads with the last value
        return np.concatenate([vals, np.full(count - vals.size, vals[-1])]).reshape(shape)
    raise ValueError(f"tensor holds {vals.size} values for shape {shape}")


def decode_record(
    data: bytes, tag_infos: MutableMapping[str, TagInfo]
) -> tuple[list[Datum | Restart], list[DecodeProblem]]:
    """Decode one event-file record; see :func:`decode_event`."""
    try:
        event = event_pb2.Event.FromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        return [], [DecodeProblem("", f"record is not an Event protobuf ({exc})")]
    return decode_event(event, tag_infos)


def decode_event(
    event: Any, tag_infos: MutableMapping[str, TagInfo]
) -> tuple[list[Datum | Restart], list[DecodeProblem]]:
    """Normalise one ``Event`` into data of the kinds kboard knows.

    ``tag_infos`` is the run's memory of tag metadata: summary metadata arrives only with the
    first value of a tag, so it is remembered there and used for later values.
    """
    out: list[Datum | Restart] = []
    problems: list[DecodeProblem] = []
    step = int(event.step)
    wall_time = float(event.wall_time)
    what = event.WhichOneof("what")
    if what == "summary":
        for value in event.summary.value:
            try:
                datum = _decode_value(value, step, wall_time, tag_infos)
            except (ValueError, TypeError, IndexError, UnicodeDecodeError) as exc:
                problems.append(DecodeProblem(value.tag, f"value of tag {value.tag!r}: {exc}"))
                continue
            if datum is not None:
                out.append(datum)
    elif what == "session_log":
        if event.session_log.status == event_pb2.SessionLog.START:
            out.append(Restart(step, wall_time))
    elif what in ("graph_def", "meta_graph_def", "tagged_run_metadata"):
        tag = event.tagged_run_metadata.tag if what == "tagged_run_metadata" else what
        info = _remember(tag_infos, f"\0{what}:{tag}", TagInfo(Kind.OTHER, "graphs"))
        out.append(Datum(tag, info, step, wall_time, what))
    return out, problems


def _remember(tag_infos: MutableMapping[str, TagInfo], key: str, info: TagInfo) -> TagInfo:
    known = tag_infos.get(key)
    if known is None:
        tag_infos[key] = info
        return info
    return known


def _decode_value(
    value: Any, step: int, wall_time: float, tag_infos: MutableMapping[str, TagInfo]
) -> Datum | None:
    tag = value.tag
    field = value.WhichOneof("value")
    meta = value.metadata if value.HasField("metadata") else None
    if field == "simple_value":
        info = _info_for(tag, "scalars", meta, tag_infos, legacy=True)
        return Datum(tag, info, step, wall_time, float(value.simple_value))
    if field == "histo":
        info = _info_for(tag, "histograms", meta, tag_infos, legacy=True)
        return Datum(tag, info, step, wall_time, _legacy_histogram(value.histo))
    if field == "image":
        info = _info_for(tag, "images", meta, tag_infos, legacy=True)
        img = value.image
        samples = ImageSamples(img.width, img.height, (img.encoded_image_string,))
        return Datum(tag, info, step, wall_time, samples)
    if field == "tensor":
        plugin = meta.plugin_data.plugin_name if meta is not None else ""
        info = _info_for(tag, plugin, meta, tag_infos)
        return Datum(tag, info, step, wall_time, _tensor_value(info, value.tensor))
    if field in ("audio", "obsolete_old_style_histogram"):
        plugin = "audio" if field == "audio" else field
        info = _info_for(tag, plugin, meta, tag_infos)
        return Datum(tag, info, step, wall_time, field)
    return None


def _info_for(
    tag: str,
    default_plugin: str,
    meta: summary_pb2.SummaryMetadata | None,
    tag_infos: MutableMapping[str, TagInfo],
    *,
    legacy: bool = False,
) -> TagInfo:
    """Return the remembered metadata of ``tag``, recording it on first sight.

    Legacy values get their tag as display name when they have none, as TensorBoard's
    ``data_compat`` migration gives them.
    """
    known = tag_infos.get(tag)
    if known is not None:
        return known
    plugin = default_plugin
    display_name = description = ""
    if meta is not None:
        plugin = meta.plugin_data.plugin_name or default_plugin
        display_name = meta.display_name
        description = meta.summary_description
    if legacy and not display_name:
        display_name = tag
    info = TagInfo(PLUGIN_KINDS.get(plugin, Kind.OTHER), plugin, display_name, description)
    tag_infos[tag] = info
    return info


def _legacy_histogram(histo: Any) -> np.ndarray:
    """Convert a ``HistogramProto`` exactly as TensorBoard's ``data_compat`` does."""
    counts = list(histo.bucket)
    n = len(counts)
    start = next((i for i in range(n) if counts[i] > 0), n)
    end = next((i for i in range(n - 1, -1, -1) if counts[i] > 0), -1)
    lefts = list(histo.bucket_limit[start:end])
    rights = list(histo.bucket_limit[start:end])
    counts = counts[start : end + 1]
    if start <= end:
        lefts = [histo.min] + lefts
        rights = rights + [histo.max]
    buckets = np.array([lefts, rights, counts], dtype=np.float32).transpose()
    return buckets.reshape(-1, 3).astype(np.float64)


def _tensor_value(info: TagInfo, tensor: Any) -> Any:
    kind = info.kind
    if kind is Kind.SCALARS:
        arr = tensor_to_array(tensor)
        if arr.size != 1 or arr.dtype == object:
            raise ValueError(f"scalar summary holds {arr.size} values of type {arr.dtype}")
        return float(arr.reshape(-1)[0])
    if kind is Kind.HISTOGRAMS:
        arr = tensor_to_array(tensor)
        if arr.dtype == object:
            raise ValueError("histogram tensor is not numeric")
        if arr.size == 0:
            return np.zeros((0, 3), dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] != 3:
            raise ValueError(f"histogram tensor has shape {arr.shape}, expected [k, 3]")
        return arr.astype(np.float64)
    if kind is Kind.IMAGES:
        arr = tensor_to_array(tensor)
        flat = arr.reshape(-1)
        if arr.dtype != object or flat.size < 2:
            raise ValueError(f"image tensor has shape {arr.shape}, expected [2 + k] strings")
        return ImageSamples(int(flat[0]), int(flat[1]), tuple(bytes(b) for b in flat[2:]))
    if kind is Kind.TEXT:
        arr = tensor_to_array(tensor)
        if arr.dtype != object:
            arr = arr.astype(str).astype(object)
        else:
            arr = np.vectorize(_to_text, otypes=[object])(arr) if arr.size else arr
        return arr
    if kind is Kind.MODEL:
        arr = tensor_to_array(tensor).reshape(-1)
        if arr.dtype != object or arr.size != 1:
            raise ValueError("model summary is not a single string")
        return _to_text(arr[0])
    shape = "x".join(str(d.size) for d in tensor.tensor_shape.dim) or "scalar"
    return f"{types_pb2.DataType.Name(tensor.dtype)} {shape}"


def _to_text(raw: Any) -> str:
    return raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)


# -- many records at once ---------------------------------------------------------------
@dataclass
class ScalarBatch:
    """The scalar points of one tag in a block, in record order."""

    info: TagInfo
    order: np.ndarray  # record index of each point (for ordering against restarts)
    steps: np.ndarray
    wall_times: np.ndarray
    values: np.ndarray


@dataclass
class DecodedBlock:
    """A block of records, decoded: scalars as columns, everything else as data in order."""

    scalars: dict[str, ScalarBatch]
    items: list[tuple[int, Datum | Restart]]  # (record index, item), in record order
    problems: list[tuple[int, DecodeProblem]]


_WALL_STEP_PREFIX = 10  # 0x09 + 8-byte wall_time + 0x10 (step varint tag)
_SENTINELS = (np.float32(1.2345678e-7), np.float64(-9.87654321e-11))


def decode_block(block: Any, tag_infos: MutableMapping[str, TagInfo]) -> DecodedBlock:
    """Decode every record of a :class:`~kboard.records.RecordBlock`.

    The common record layouts (a scalar event whose bytes differ from others of its tag only
    in wall time, step and value) are decoded with numpy, many at a time; each layout is first
    checked against the protobuf parser on one record of it, and every other record goes
    through :func:`decode_record`, so results equal decoding record by record.
    """
    n = len(block)
    arr = np.frombuffer(block.buf, dtype=np.uint8)
    starts, lengths = block.starts, block.lengths
    groups: list[np.ndarray] = []
    if n:
        fast, steps, walls, rest, rest_len = _split_common_prefix(arr, starts, lengths)
        if fast.any():
            groups = _group_by_key(arr, rest, rest_len, fast)
    first_of_group = {int(idx[0]): g for g, idx in enumerate(groups)}
    in_group = np.zeros(n, dtype=bool)
    for idx in groups:
        in_group[idx] = True
    parts: _ScalarParts = {}
    out_items: list[tuple[int, Datum | Restart]] = []
    problems: list[tuple[int, DecodeProblem]] = []

    def decode_one(i: int) -> list[Datum | Restart]:
        items, probs = decode_record(block.record(i), tag_infos)
        problems.extend((i, p) for p in probs)
        return items

    # Records decoded one by one (ungrouped ones, each group's first, and group members that
    # turn out not to fit) are taken strictly in record order, so tag metadata is remembered
    # before the records that rely on it. A group whose first record passes the template
    # check is decoded with numpy.
    queue = np.flatnonzero(~in_group).tolist() + list(first_of_group)
    heapq.heapify(queue)
    fast_parts: list[tuple[str, TagInfo, np.ndarray, np.ndarray]] = []
    while queue:
        i = heapq.heappop(queue)
        items = decode_one(i)
        g = first_of_group.pop(i, None)
        template = None
        if g is not None:
            template = _check_template(block.record(i), items, tag_infos)
            if template is not None and (items[0].step, items[0].wall_time) != (
                int(steps[i]),
                float(walls[i]),
            ):
                template = None  # the numpy reading of step or wall time disagrees
        if template is None:
            if g is not None:
                for j in groups[g][1:].tolist():
                    heapq.heappush(queue, j)
            _collect(i, items, parts, out_items)
            continue
        tag, info, width = template
        idx = groups[g]
        ends = starts[idx] + lengths[idx]
        if width < 8:  # the grouping key left out 8 bytes: the rest must match the first's
            fixed = arr[ends[:, None] - 8 + np.arange(8 - width)]
            match = (fixed == fixed[0]).all(axis=1)
            for j in idx[~match].tolist():
                heapq.heappush(queue, j)
            idx, ends = idx[match], ends[match]
        raw = arr[ends[:, None] - width + np.arange(width)].copy()
        values = raw.view("<f4" if width == 4 else "<f8").reshape(-1).astype(np.float64)
        fast_parts.append((tag, info, idx, values))
    for tag, info, idx, values in fast_parts:
        parts.setdefault(tag, []).append((info, idx, steps[idx], walls[idx], values))
    out_items.sort(key=lambda pair: pair[0])
    problems.sort(key=lambda pair: pair[0])
    scalars = {}
    for tag, tag_parts in parts.items():
        order = np.concatenate([p[1] for p in tag_parts])
        sort = np.argsort(order, kind="stable")
        scalars[tag] = ScalarBatch(
            tag_parts[0][0],
            order[sort],
            np.concatenate([p[2] for p in tag_parts])[sort],
            np.concatenate([p[3] for p in tag_parts])[sort],
            np.concatenate([p[4] for p in tag_parts])[sort],
        )
    return DecodedBlock(scalars, out_items, problems)


_ScalarParts = dict[str, list[tuple[TagInfo, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]]


def _collect(
    index: int,
    items: list[Datum | Restart],
    scalar_parts: _ScalarParts,
    out_items: list[tuple[int, Datum | Restart]],
) -> None:
    for item in items:
        if isinstance(item, Datum) and item.info.kind is Kind.SCALARS:
            scalar_parts.setdefault(item.tag, []).append(
                (
                    item.info,
                    np.array([index], dtype=np.int64),
                    np.array([item.step], dtype=np.int64),
                    np.array([item.wall_time], dtype=np.float64),
                    np.array([item.value], dtype=np.float64),
                )
            )
        else:
            out_items.append((index, item))


def _split_common_prefix(
    arr: np.ndarray, starts: np.ndarray, lengths: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Find records laid out as ``wall_time, step, ...`` and read those two fields."""
    size = len(arr)
    ok = lengths >= _WALL_STEP_PREFIX + 1 + 8
    safe = np.where(ok, starts, 0)
    ok &= arr[safe] == 0x09
    ok &= arr[np.minimum(safe + 9, size - 1)] == 0x10
    head = arr[np.minimum(safe[:, None] + np.arange(1, 9), size - 1)]
    walls = head.view("<f8").reshape(-1)
    # The step varint, one byte position at a time over the records still unfinished.
    at = np.minimum(safe + _WALL_STEP_PREFIX, size - 1)
    byte = arr[at]
    steps = (byte & 0x7F).astype(np.uint64)
    varint_len = np.ones(len(starts), dtype=np.int64)
    todo = np.flatnonzero(byte & 0x80)
    for k in range(1, 10):
        if not len(todo):
            break
        byte = arr[np.minimum(at[todo] + k, size - 1)]
        steps[todo] |= (byte & 0x7F).astype(np.uint64) << np.uint64(7 * k)
        varint_len[todo] += 1
        todo = todo[(byte & 0x80) != 0]
    ok[todo] = False  # longer than 10 bytes: not a varint
    steps = steps.view(np.int64)
    rest = safe + _WALL_STEP_PREFIX + varint_len
    rest_len = starts + lengths - rest
    ok &= rest_len >= 9  # at least one key byte beyond the 8 value bytes
    return ok, steps, walls, rest, rest_len


def _group_by_key(
    arr: np.ndarray, rest: np.ndarray, rest_len: np.ndarray, fast: np.ndarray
) -> list[np.ndarray]:
    """Group records whose bytes after the step are equal but for the last 8 bytes."""
    groups: list[np.ndarray] = []
    candidates = np.flatnonzero(fast)
    key_len = rest_len[candidates] - 8
    for length in np.unique(key_len).tolist():
        members = candidates[key_len == length]
        keys = arr[rest[members][:, None] + np.arange(length)]
        # Hash each key row, then confirm equality byte for byte against the group's first.
        h = np.zeros(len(members), dtype=np.uint64)
        for j in range(length):
            h = h * np.uint64(1099511628211) ^ keys[:, j].astype(np.uint64)
        _, first, inverse = np.unique(h, return_index=True, return_inverse=True)
        inverse = inverse.reshape(-1)
        same = (keys == keys[first[inverse]]).all(axis=1)
        for g in range(len(first)):
            idx = members[(inverse == g) & same]
            if len(idx):
                groups.append(idx)
        # Hash collisions (never seen in practice) fall back to one record at a time.
        for i in members[~same].tolist():
            groups.append(np.array([i], dtype=np.int64))
    return [g for g in groups if len(g)]


def _check_template(
    data: bytes, items: list[Datum | Restart], tag_infos: MutableMapping[str, TagInfo]
) -> tuple[str, TagInfo, int] | None:
    """Return ``(tag, info, value width)`` when ``data`` is a scalar whose value is its tail.

    Checked with the protobuf parser: the last 4 (float) or 8 (double) bytes are replaced by
    a sentinel and the record decoded again; only when exactly the value changes is the
    layout used for the other records of its group.
    """
    if len(items) != 1 or not isinstance(items[0], Datum):
        return None
    item = items[0]
    if item.info.kind is not Kind.SCALARS:
        return None
    for width, sentinel in zip((4, 8), _SENTINELS):
        probe = data[:-width] + sentinel.tobytes()
        try:
            probed, probs = decode_record(probe, dict(tag_infos))
        except Exception:  # noqa: BLE001 - any failure just means "not this layout"
            continue
        if probs or len(probed) != 1 or not isinstance(probed[0], Datum):
            continue
        got = probed[0]
        if (got.tag, got.info, got.step, got.wall_time) == (
            item.tag,
            item.info,
            item.step,
            item.wall_time,
        ) and got.value == float(sentinel):
            return item.tag, item.info, width
    return None
