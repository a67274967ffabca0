"""Builders of TensorBoard protobuf messages in the TF2 summary format, without TensorFlow.

Every value is a tensor plus ``SummaryMetadata`` naming its plugin, exactly the form
``tf.summary`` writes, so TensorBoard (and kboard) read it with no legacy conversion.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from tensorboard.compat.proto import (
    event_pb2,
    summary_pb2,
    tensor_pb2,
    tensor_shape_pb2,
    types_pb2,
)
from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2

from kboard.tfevents.plugins import HISTOGRAMS, HPARAMS, IMAGES, SCALARS, TEXT

FILE_VERSION = "brain.Event:2"
WRITER_NAME = "kboard"  # recorded in the first event, as TensorFlow records its own
DEFAULT_BUCKET_COUNT = 30


# The data class TensorBoard assigns to each plugin's values when it reads them.
_DATA_CLASS = {
    SCALARS: summary_pb2.DATA_CLASS_SCALAR,
    IMAGES: summary_pb2.DATA_CLASS_BLOB_SEQUENCE,
    HISTOGRAMS: summary_pb2.DATA_CLASS_TENSOR,
    TEXT: summary_pb2.DATA_CLASS_TENSOR,
}

Bins = int | str | Sequence[float] | np.ndarray


def as_array(value: Any) -> np.ndarray:
    """Return ``value`` as a numpy array: accepts arrays, torch/TF tensors and ``__array__``."""
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "detach"):  # torch: drop autograd, move to host
        value = value.detach()
        if hasattr(value, "cpu"):
            value = value.cpu()
    if hasattr(value, "numpy"):
        value = value.numpy()
    return np.asarray(value)


def summary_metadata(
    plugin_name: str, display_name: str = "", description: str = ""
) -> summary_pb2.SummaryMetadata:
    """Build the metadata that tells TensorBoard which plugin owns a tag."""
    return summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin_name),
        display_name=display_name,
        summary_description=description,
        data_class=_DATA_CLASS.get(plugin_name, summary_pb2.DATA_CLASS_UNKNOWN),
    )


def double_tensor(array: Any) -> tensor_pb2.TensorProto:
    """Build a DT_DOUBLE tensor whose ``tensor_content`` holds little-endian float64 bytes."""
    array = np.asarray(array, dtype="<f8")
    return tensor_pb2.TensorProto(
        dtype=types_pb2.DT_DOUBLE,
        tensor_shape=_shape(array.shape),
        tensor_content=array.tobytes(),
    )


def string_tensor(strings: Iterable[bytes], shape: Sequence[int]) -> tensor_pb2.TensorProto:
    """Build a DT_STRING tensor of ``shape`` from its elements in row-major order."""
    return tensor_pb2.TensorProto(
        dtype=types_pb2.DT_STRING, tensor_shape=_shape(shape), string_val=list(strings)
    )


def _shape(shape: Sequence[int]) -> tensor_shape_pb2.TensorShapeProto:
    return tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=int(n)) for n in shape]
    )


def _value(
    tag: str,
    tensor: tensor_pb2.TensorProto,
    plugin_name: str,
    display_name: str,
    description: str,
) -> summary_pb2.Summary.Value:
    if not isinstance(tag, str):
        raise TypeError(f"tag must be a str, got {type(tag).__name__}")
    if not tag:
        raise ValueError("tag must not be empty")
    return summary_pb2.Summary.Value(
        tag=tag,
        tensor=tensor,
        metadata=summary_metadata(plugin_name, display_name, description),
    )


def as_float(value: Any, what: str = "scalar value") -> float:
    """Return a real number given as a Python/numpy number, a size-1 array or a tensor."""
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{what} must be a real number, got {type(value).__name__}")
    array = as_array(value)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{what} must be a real number, got {type(value).__name__}")
    if array.size != 1:
        raise ValueError(f"{what} must hold exactly one number, got shape {array.shape}")
    return float(array.reshape(()))


def scalar(
    tag: str, value: Any, *, display_name: str = "", description: str = ""
) -> summary_pb2.Summary.Value:
    """Build a scalar value as ``tf.summary.scalar`` does: a float32 tensor of shape [].

    float32, not float64: TensorBoard's Rust data server (its default loader) shows only
    DT_FLOAT scalars, and every other writer (tf.summary, torch) writes float32 too.
    """
    tensor = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_FLOAT,
        tensor_shape=_shape(()),
        tensor_content=np.asarray(as_float(value), dtype="<f4").tobytes(),
    )
    return _value(tag, tensor, SCALARS, display_name, description)


def to_uint8_images(images: Any) -> np.ndarray:
    """Return ``[k, h, w, c]`` pixels as uint8; floats are taken as [0, 1] and clipped.

    NaN pixels become 0. Integer pixels other than uint8 must already lie in 0..255.
    """
    array = as_array(images)
    if array.ndim != 4:
        raise ValueError(f"images must have shape [k, h, w, c], got shape {array.shape}")
    if array.shape[3] not in (1, 3, 4):
        raise ValueError(
            f"images must have 1 (grey), 3 (RGB) or 4 (RGBA) channels, got {array.shape[3]}"
        )
    if array.shape[1] == 0 or array.shape[2] == 0:
        raise ValueError(f"images must be at least 1x1 pixels, got shape {array.shape}")
    kind = array.dtype.kind
    if array.dtype == np.uint8:
        return array
    if kind == "b":
        return array.astype(np.uint8) * np.uint8(255)
    if kind == "f":
        unit = np.clip(np.nan_to_num(array.astype(np.float64), nan=0.0), 0.0, 1.0)
        return np.rint(unit * 255.0).astype(np.uint8)
    if kind in "iu":
        if array.size and (array.min() < 0 or array.max() > 255):
            raise ValueError("integer pixels must lie in 0..255 (pass uint8, or floats in [0, 1])")
        return array.astype(np.uint8)
    raise TypeError(f"images must be uint8 or floating point, got dtype {array.dtype}")


def encode_png(pixels: np.ndarray) -> bytes:
    """Encode one ``[h, w, c]`` uint8 image (c in 1, 3, 4) as PNG."""
    if pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    buffer = io.BytesIO()
    from PIL import Image  # on first use: the reader and the server need not import it

    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format="PNG")
    return buffer.getvalue()


def image(
    tag: str,
    images: Any,
    *,
    max_outputs: int | None = None,
    display_name: str = "",
    description: str = "",
) -> summary_pb2.Summary.Value:
    """Build an image value from ``[k, h, w, c]`` pixels, as ``tf.summary.image`` does.

    The tensor is DT_STRING of shape [2 + k]: width, height, then one PNG per image.
    Only the first ``max_outputs`` images are kept when it is given.
    """
    pixels = to_uint8_images(images)
    if max_outputs is not None:
        if isinstance(max_outputs, bool) or not isinstance(max_outputs, (int, np.integer)):
            raise TypeError(f"max_outputs must be an int, got {type(max_outputs).__name__}")
        if max_outputs < 0:
            raise ValueError(f"max_outputs must be >= 0, got {max_outputs}")
        pixels = pixels[:max_outputs]
    height, width = pixels.shape[1], pixels.shape[2]
    strings = [str(width).encode(), str(height).encode()]
    strings.extend(encode_png(one) for one in pixels)
    tensor = string_tensor(strings, [len(strings)])
    return _value(tag, tensor, IMAGES, display_name, description)


def histogram_buckets(values: Any, bins: Bins = DEFAULT_BUCKET_COUNT) -> np.ndarray:
    """Return ``[k, 3]`` rows ``(left, right, count)`` over the finite values of ``values``.

    NaN and infinite values are dropped: they have no bucket. ``bins`` is an int bucket
    count (equal-width buckets over min..max, the last one closed, as ``tf.summary.histogram``
    does), a ``np.histogram_bin_edges`` rule such as ``"auto"``, or a sequence of edges
    (values outside the edges are not counted, as in ``np.histogram``). ``"tensorflow"``
    (torch's default) means TensorFlow 2's default of 30 buckets. No finite values gives
    shape [0, 3]; when all values are equal, an int count gives TF2's degenerate form:
    ``bins`` zero-width buckets at that value, the last one holding every count.
    """
    array = as_array(values)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"histogram values must be numbers, got dtype {array.dtype}")
    data = array.astype(np.float64).ravel()
    data = data[np.isfinite(data)]
    if isinstance(bins, str) and bins == "tensorflow":
        bins = DEFAULT_BUCKET_COUNT
    if isinstance(bins, bool):
        raise TypeError("bins must be an int, a str rule or a sequence of edges, not a bool")
    if isinstance(bins, (int, np.integer)):
        if bins < 1:
            raise ValueError(f"bins must be a positive bucket count, got {bins}")
        return _equal_width_buckets(data, int(bins))
    if not isinstance(bins, str):
        try:
            edges = np.asarray(bins, dtype=np.float64)
        except (TypeError, ValueError):
            edges = np.zeros(0)
        if edges.ndim != 1 or edges.size < 2:
            raise ValueError(
                "bins must be a bucket count, a np.histogram_bin_edges rule such as 'auto', "
                f"or a 1-D sequence of at least 2 edges; got {bins!r}"
            )
        if not np.all(np.isfinite(edges)):
            raise ValueError("bins edges must be finite")
        if np.any(np.diff(edges) < 0):
            raise ValueError("bins edges must increase monotonically")
        bins = edges
    if data.size == 0:
        return np.zeros((0, 3))
    counts, edges = np.histogram(data, bins=bins)
    return np.stack([edges[:-1], edges[1:], counts.astype(np.float64)], axis=1)


def _equal_width_buckets(data: np.ndarray, count: int) -> np.ndarray:
    if data.size == 0:
        return np.zeros((0, 3))
    low, high = float(data.min()), float(data.max())
    spread = high - low  # Python floats: overflows to inf quietly
    if spread == 0:
        counts = np.zeros(count)
        counts[-1] = data.size
        return np.stack([np.full(count, low), np.full(count, high), counts], axis=1)
    if np.isfinite(spread):
        width = spread / count
        index = np.floor((data - low) / width) if width > 0 else np.zeros(data.size)
        edges = low + np.arange(count + 1) * width
    else:  # the range overflows float64: work with halves, interpolate the edges
        fraction = (data / 2 - low / 2) / (high / 2 - low / 2)
        index = np.floor(fraction * count)
        steps = np.arange(count + 1) / count
        edges = low * (1 - steps) + high * steps
    index = np.minimum(index, count - 1).astype(np.int64)
    counts = np.bincount(index, minlength=count).astype(np.float64)
    edges[-1] = high
    return np.stack([edges[:-1], edges[1:], counts], axis=1)


def histogram(
    tag: str,
    values: Any,
    *,
    bins: Bins = DEFAULT_BUCKET_COUNT,
    display_name: str = "",
    description: str = "",
) -> summary_pb2.Summary.Value:
    """Build a histogram value: a float64 ``[k, 3]`` tensor (see ``histogram_buckets``)."""
    tensor = double_tensor(histogram_buckets(values, bins))
    return _value(tag, tensor, HISTOGRAMS, display_name, description)


def text(
    tag: str, text: Any, *, display_name: str = "", description: str = ""
) -> summary_pb2.Summary.Value:
    """Build a text value: a DT_STRING tensor, scalar for one string, else the array's shape."""
    if isinstance(text, (str, bytes)):
        tensor = string_tensor([_utf8(text)], [])
    else:
        array = as_array(text)
        if array.dtype.kind not in "USO":
            raise TypeError(f"text must be a str or an array of str, got dtype {array.dtype}")
        tensor = string_tensor((_utf8(s) for s in array.ravel()), array.shape)
    return _value(tag, tensor, TEXT, display_name, description)


# The hparams plugin's tags (its data is the metadata; the tensor is an empty placeholder).
HPARAMS_EXPERIMENT_TAG = "_hparams_/experiment"
HPARAMS_SESSION_START_TAG = "_hparams_/session_start_info"
HPARAMS_SESSION_END_TAG = "_hparams_/session_end_info"
SESSION_STATUSES = {
    "unknown": api_pb2.STATUS_UNKNOWN,
    "success": api_pb2.STATUS_SUCCESS,
    "failure": api_pb2.STATUS_FAILURE,
    "running": api_pb2.STATUS_RUNNING,
}


def hparams_value(tag: str, data: plugin_data_pb2.HParamsPluginData) -> summary_pb2.Summary.Value:
    """Build a value of the hparams plugin as ``hp`` writes it: its data in the metadata."""
    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(
            plugin_name=HPARAMS, content=data.SerializeToString()
        )
    )
    empty = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_shape=_shape((0,)))
    return summary_pb2.Summary.Value(tag=tag, metadata=metadata, tensor=empty)


def hparam_number(value: Any) -> Any:
    """A numpy or torch scalar as a Python number (other values unchanged)."""
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    array = as_array(value)
    if array.size != 1:
        raise ValueError(f"a hyperparameter must be one value, got shape {array.shape}")
    return array.reshape(()).item()


def set_hparam_value(target: Any, value: Any, name: str) -> None:
    """Set a ``google.protobuf.Value`` to a bool, number or string (bools stay bools)."""
    value = hparam_number(value)
    if isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, (int, float)):
        target.number_value = value
    elif isinstance(value, str):
        target.string_value = value
    else:
        raise TypeError(f"hparam {name!r}: {value!r} is not a bool, number or string")


def session_start(
    hparams: Mapping[str, Any],
    *,
    group_name: str = "",
    start_time_secs: float = 0.0,
) -> summary_pb2.Summary.Value:
    """Build a session's hyperparameter values (``hp.hparams``); None values are left out."""
    info = plugin_data_pb2.SessionStartInfo(group_name=group_name, start_time_secs=start_time_secs)
    for name in sorted(hparams):
        if hparams[name] is not None:
            set_hparam_value(info.hparams[name], hparams[name], name)
    data = plugin_data_pb2.HParamsPluginData(session_start_info=info)
    return hparams_value(HPARAMS_SESSION_START_TAG, data)


def session_end(status: str, end_time_secs: float) -> summary_pb2.Summary.Value:
    """Build how a session ended: ``success``, ``failure``, ``running`` or ``unknown``."""
    if status not in SESSION_STATUSES:
        raise ValueError(f"status must be one of {', '.join(SESSION_STATUSES)}, got {status!r}")
    info = plugin_data_pb2.SessionEndInfo(
        status=SESSION_STATUSES[status], end_time_secs=end_time_secs
    )
    data = plugin_data_pb2.HParamsPluginData(session_end_info=info)
    return hparams_value(HPARAMS_SESSION_END_TAG, data)


def experiment(
    hparam_infos: Iterable[api_pb2.HParamInfo],
    metric_infos: Iterable[api_pb2.MetricInfo],
    time_created_secs: float = 0.0,
) -> summary_pb2.Summary.Value:
    """Build an experiment config (``hp.hparams_config``) from its infos."""
    config = api_pb2.Experiment(
        hparam_infos=list(hparam_infos),
        metric_infos=list(metric_infos),
        time_created_secs=time_created_secs,
    )
    data = plugin_data_pb2.HParamsPluginData(experiment=config)
    return hparams_value(HPARAMS_EXPERIMENT_TAG, data)


def torch_hparams(
    hparam_dict: Mapping[str, Any],
    metric_dict: Mapping[str, Any],
    hparam_domain_discrete: Mapping[str, Sequence[Any]] | None,
    now: float,
) -> tuple[summary_pb2.Summary.Value, ...]:
    """The experiment, session start and session end of torch's ``add_hparams``.

    As torch: every value's type becomes its hyperparameter's type, ``hparam_domain_discrete``
    its domain, and the metrics are the keys of ``metric_dict``. Unlike torch, a bool stays a
    bool (torch writes ``True`` as the number 1).
    """
    if not isinstance(hparam_dict, dict) or not isinstance(metric_dict, dict):
        raise TypeError("hparam_dict and metric_dict should be dictionary.")
    domains = hparam_domain_discrete or {}
    if not isinstance(domains, dict):
        raise TypeError("hparam_domain_discrete should be a dictionary")
    infos = []
    for name, raw in hparam_dict.items():
        value = hparam_number(raw)
        if value is None:
            continue
        if isinstance(value, bool):
            data_type = api_pb2.DATA_TYPE_BOOL
        elif isinstance(value, (int, float)):
            data_type = api_pb2.DATA_TYPE_FLOAT64
        elif isinstance(value, str):
            data_type = api_pb2.DATA_TYPE_STRING
        else:
            raise ValueError("value should be one of int, float, str, bool, or torch.Tensor")
        info = api_pb2.HParamInfo(name=name, type=data_type)
        if name in domains:
            allowed = domains[name]
            if not isinstance(allowed, list) or not all(
                isinstance(d, type(value)) for d in allowed
            ):
                raise TypeError(
                    f"hparam_domain_discrete[{name}] should be a list of same type as "
                    f"hparam_dict[{name}]."
                )
            for d in allowed:
                set_hparam_value(info.domain_discrete.values.add(), d, name)
        infos.append(info)
    for name in domains:
        if name not in hparam_dict:
            raise TypeError(f"hparam_domain_discrete[{name}] names no hyperparameter")
    start = session_start(hparam_dict, start_time_secs=now)
    metrics = [api_pb2.MetricInfo(name=api_pb2.MetricName(tag=tag)) for tag in metric_dict]
    return experiment(infos, metrics), start, session_end("success", now)


def _utf8(text: Any) -> bytes:
    if isinstance(text, bytes):
        return text
    if isinstance(text, str):
        return text.encode("utf-8")
    raise TypeError(f"text must be a str, got {type(text).__name__}")


def event(
    values: Iterable[summary_pb2.Summary.Value], step: int, wall_time: float
) -> event_pb2.Event:
    """Build an event carrying summary ``values`` at ``step`` and ``wall_time``."""
    return event_pb2.Event(
        wall_time=wall_time, step=step, summary=summary_pb2.Summary(value=list(values))
    )


def file_version_event(wall_time: float) -> event_pb2.Event:
    """Build the first event of every event file."""
    return event_pb2.Event(
        wall_time=wall_time,
        step=0,
        file_version=FILE_VERSION,
        source_metadata=event_pb2.SourceMetadata(writer=WRITER_NAME),
    )


def session_start_event(step: int, wall_time: float) -> event_pb2.Event:
    """Build a ``SessionLog.START`` event: a restart, after which older steps >= ``step`` go."""
    return event_pb2.Event(
        wall_time=wall_time,
        step=step,
        session_log=event_pb2.SessionLog(status=event_pb2.SessionLog.START),
    )
