"""The one normalisation point: every event-file format becomes one record model.

Legacy protos (``simple_value``, ``Summary.Image``, ``HistogramProto``) written by torch and
tensorboardX, and TF2 tensor summaries written by ``tf.summary`` and Keras, all come out of
:func:`decode_event` as :class:`Datum` values of a few kinds. Nothing else in kboard looks at
protobufs, so the rest of the code knows one shape per kind; the one exception is a graph,
normalised here to the bytes of one ``GraphDef`` and parsed by ``kboard/graph.py`` only when
the page asks for it (a graph can be megabytes that nobody looks at).
"""

from __future__ import annotations

import enum
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from google.protobuf.message import DecodeError
from tensorboard.compat.proto import (
    config_pb2,
    event_pb2,
    graph_pb2,
    meta_graph_pb2,
    summary_pb2,
    types_pb2,
)
from tensorboard.plugins.hparams import plugin_data_pb2

from kboard.tfevents import plugins

__all__ = [
    "Kind",
    "TagInfo",
    "Datum",
    "Restart",
    "ImageSamples",
    "DecodeProblem",
    "HParamSpec",
    "MetricSpec",
    "ExperimentConfig",
    "SessionStart",
    "SessionEnd",
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
    GRAPH = "graph"
    HPARAMS = "hparams"
    OTHER = "other"


# TensorBoard plugin names that map onto one of our kinds.
PLUGIN_KINDS: dict[str, Kind] = {
    plugins.SCALARS: Kind.SCALARS,
    plugins.IMAGES: Kind.IMAGES,
    plugins.HISTOGRAMS: Kind.HISTOGRAMS,
    plugins.TEXT: Kind.TEXT,
    plugins.GRAPH_KERAS_MODEL: Kind.MODEL,
    plugins.MODEL_SUMMARY: Kind.MODEL,
    plugins.GRAPH_RUN_METADATA: Kind.GRAPH,
    plugins.GRAPH_RUN_METADATA_GRAPH: Kind.GRAPH,
    plugins.HPARAMS: Kind.HPARAMS,
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
    text, a ``str`` (JSON) for models, the ``bytes`` of a serialized ``GraphDef`` for graphs
    (kept as bytes: a graph can be large and is parsed only when asked for), an
    :class:`ExperimentConfig`, :class:`SessionStart` or :class:`SessionEnd` for
    hyperparameters (the tags ``_hparams_/...``), and a short
    description string for other plugins.
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


HParamValue = float | str | bool

# TensorBoard's hparams enums, as the names kboard uses (index = the enum's number).
HPARAM_TYPES = ("", "string", "bool", "float")
SESSION_STATUSES = ("unknown", "success", "failure", "running")
DATASET_TYPES = ("", "training", "validation")


@dataclass(frozen=True)
class HParamSpec:
    """One hyperparameter of an experiment: its type (``HPARAM_TYPES``) and domain.

    ``interval`` is ``(min, max)`` for an interval domain, ``discrete`` the allowed values of
    a discrete one; at most one of them is set.
    """

    name: str
    display_name: str = ""
    description: str = ""
    type: str = ""
    interval: tuple[float, float] | None = None
    discrete: tuple[HParamValue, ...] | None = None
    differs: bool = False


@dataclass(frozen=True)
class MetricSpec:
    """One metric: the scalar ``tag`` in the session's run, or its sub-run ``group``."""

    tag: str
    group: str = ""
    display_name: str = ""
    description: str = ""
    dataset_type: str = ""


@dataclass(frozen=True)
class ExperimentConfig:
    """An experiment's hyperparameters and metrics (``hp.hparams_config``)."""

    hparams: tuple[HParamSpec, ...] = ()
    metrics: tuple[MetricSpec, ...] = ()
    name: str = ""
    description: str = ""
    user: str = ""
    time_created: float = 0.0


@dataclass(frozen=True)
class SessionStart:
    """One session's hyperparameter values (``hp.hparams``), in the order written."""

    hparams: tuple[tuple[str, HParamValue], ...]
    group_name: str = ""
    start_time: float = 0.0
    model_uri: str = ""
    monitor_url: str = ""


@dataclass(frozen=True)
class SessionEnd:
    """How a session ended: a status of ``SESSION_STATUSES`` and when."""

    status: str
    end_time: float = 0.0


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
    elif what == "meta_graph_def" and _GRAPH_DEF_KEY in tag_infos:
        pass  # the run has a GraphDef: TensorBoard keeps it, not the meta graph's copy of it
    elif what in ("graph_def", "meta_graph_def", "tagged_run_metadata"):
        tag = event.tagged_run_metadata.tag if what == "tagged_run_metadata" else what
        try:
            graph = _event_graph(event, what)
        except (DecodeError, RuntimeError, ValueError) as exc:
            problems.append(DecodeProblem(tag, f"{what} {tag!r} is not readable ({exc})"))
        else:
            plugin = (
                plugins.GRAPH_TAGGED_RUN_METADATA if what == "tagged_run_metadata" else "graphs"
            )
            info = _remember(tag_infos, f"\0{what}:{tag}", TagInfo(Kind.GRAPH, plugin))
            out.append(Datum(tag, info, step, wall_time, graph))
    return out, problems


# Where a run's memory notes that it has a GraphDef event (see :func:`decode_event`).
_GRAPH_DEF_KEY = "\0graph_def:graph_def"


def _event_graph(event: Any, what: str) -> bytes:
    """The serialized ``GraphDef`` an event's graph field holds (parsed later, when asked)."""
    if what == "graph_def":
        return bytes(event.graph_def)
    if what == "meta_graph_def":
        meta = meta_graph_pb2.MetaGraphDef.FromString(event.meta_graph_def)
        return meta.graph_def.SerializeToString()
    return _run_metadata_graph(event.tagged_run_metadata.run_metadata)


def _run_metadata_graph(data: bytes) -> bytes:
    """The graphs of a ``RunMetadata`` as one ``GraphDef``, as TensorBoard's graph plugin merges
    them: the functions' pre-optimization graphs (else the partition graphs), each under a
    ``graph_<i>`` scope when there are several."""
    meta = config_pb2.RunMetadata.FromString(data)
    graphs = [f.pre_optimization_graph for f in meta.function_graphs] or list(meta.partition_graphs)
    if len(graphs) == 1:
        return graphs[0].SerializeToString()
    merged = graph_pb2.GraphDef()
    for index, graph in enumerate(graphs, start=1):
        for node in graph.node:
            added = merged.node.add()
            added.CopyFrom(node)
            added.name = f"graph_{index}/{node.name}"
            added.input[:] = [_prefixed_input(f"graph_{index}", i) for i in node.input]
    return merged.SerializeToString()


def _prefixed_input(prefix: str, name: str) -> str:
    return f"^{prefix}/{name[1:]}" if name.startswith("^") else f"{prefix}/{name}"


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
    if meta is not None and meta.plugin_data.plugin_name == plugins.HPARAMS:
        # Its data is the metadata itself (torch writes no value at all): read every copy.
        info = _info_for(tag, plugins.HPARAMS, meta, tag_infos)
        return Datum(tag, info, step, wall_time, _hparams_data(meta.plugin_data.content))
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
        if info.kind is Kind.HPARAMS:
            return None  # a copy whose writer dropped the metadata: it carries nothing
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


def _hparams_data(content: bytes) -> ExperimentConfig | SessionStart | SessionEnd:
    """Decode an ``HParamsPluginData`` (the hparams plugin's metadata content)."""
    try:
        data = plugin_data_pb2.HParamsPluginData.FromString(content)
    except DecodeError as exc:
        raise ValueError(f"hparams plugin data is not a protobuf ({exc})") from None
    if data.version != 0:
        raise ValueError(f"hparams plugin data version {data.version} is not supported")
    which = data.WhichOneof("data")
    if which == "experiment":
        exp = data.experiment
        return ExperimentConfig(
            tuple(_hparam_spec(info) for info in exp.hparam_infos),
            tuple(
                MetricSpec(
                    m.name.tag,
                    m.name.group,
                    m.display_name,
                    m.description,
                    _enum_name(DATASET_TYPES, m.dataset_type),
                )
                for m in exp.metric_infos
            ),
            exp.name,
            exp.description,
            exp.user,
            exp.time_created_secs,
        )
    if which == "session_start_info":
        start = data.session_start_info
        values = ((name, _hparam_value(v)) for name, v in start.hparams.items())
        return SessionStart(
            tuple((name, v) for name, v in values if v is not None),
            start.group_name,
            start.start_time_secs,
            start.model_uri,
            start.monitor_url,
        )
    if which == "session_end_info":
        end = data.session_end_info
        return SessionEnd(_enum_name(SESSION_STATUSES, end.status), end.end_time_secs)
    raise ValueError("hparams plugin data holds no experiment nor session")


def _hparam_spec(info: Any) -> HParamSpec:
    domain = info.WhichOneof("domain")
    interval = discrete = None
    if domain == "domain_interval":
        interval = (info.domain_interval.min_value, info.domain_interval.max_value)
    elif domain == "domain_discrete":
        values = (_hparam_value(v) for v in info.domain_discrete.values)
        discrete = tuple(v for v in values if v is not None)
    return HParamSpec(
        info.name,
        info.display_name,
        info.description,
        _enum_name(HPARAM_TYPES, info.type),
        interval,
        discrete,
        info.differs,
    )


def _hparam_value(value: Any) -> HParamValue | None:
    """A ``google.protobuf.Value`` as a number, string or bool; None for other kinds."""
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        return float(value.number_value)
    if kind == "string_value":
        return str(value.string_value)
    if kind == "bool_value":
        return bool(value.bool_value)
    return None


def _enum_name(names: tuple[str, ...], number: int) -> str:
    return names[number] if 0 <= number < len(names) else names[0]


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
    if kind is Kind.GRAPH:
        arr = tensor_to_array(tensor).reshape(-1)
        if arr.dtype != object or arr.size != 1:
            raise ValueError("run metadata is not a single string")
        return _run_metadata_graph(bytes(arr[0]))
    shape = "x".join(str(d.size) for d in tensor.tensor_shape.dim) or "scalar"
    return f"{types_pb2.DataType.Name(tensor.dtype)} {shape}"


def _to_text(raw: Any) -> str:
    return raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)
