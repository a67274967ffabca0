"""Model summaries for the MODEL tab: Keras model configs and kboard's own summaries, one shape.

The result is a tree ``{"name", "class", "layers": [...], ...}`` where each layer has
``name``, ``class``, ``settings`` (a few key hyper-parameters), ``input_shape``,
``output_shape``, ``params`` (``None`` when unknown) and nested ``layers``.
"""

from __future__ import annotations

import json
from typing import Any

from kboard.tfevents.plugins import MODEL_SUMMARY_FORMAT

KEY_SETTINGS = (
    "units", "activation", "filters", "kernel_size", "strides", "padding", "pool_size", "rate",
    "input_dim", "output_dim", "num_heads", "key_dim", "axis", "epsilon", "momentum",
    "return_sequences", "use_bias", "target_shape", "data_format",
)  # fmt: skip


def model_view(text: str) -> dict[str, Any]:
    """Parse a stored model summary (Keras config JSON or kboard summary JSON) into a tree."""
    doc = load_summary(text)
    if doc.get("format") == MODEL_SUMMARY_FORMAT:
        return _from_kboard_summary(doc)
    return _from_keras_config(doc)


def load_summary(text: str) -> dict[str, Any]:
    """Parse a stored model summary's JSON object; ``ValueError`` says why it is not one."""
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"model summary is not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise ValueError("model summary is not a JSON object")
    return doc


def _from_kboard_summary(doc: dict[str, Any]) -> dict[str, Any]:
    def layer(entry: dict[str, Any]) -> dict[str, Any]:
        return {
            "name": str(entry.get("name", "")),
            "class": str(entry.get("class", "")),
            "settings": _settings(entry.get("config")),
            "input_shape": None,
            "output_shape": _shape_text(entry.get("output_shape")),
            "params": _int_or_none(entry.get("params")),
            "trainable": bool(entry.get("trainable", True)),
            "layers": [layer(e) for e in dicts(entry.get("layers"))],
        }

    return {
        "source": "kboard",
        "name": str(doc.get("name", "")),
        "class": str(doc.get("class", "")),
        "total_params": _int_or_none(doc.get("total_params")),
        "trainable_params": _int_or_none(doc.get("trainable_params")),
        "non_trainable_params": _int_or_none(doc.get("non_trainable_params")),
        "layers": [layer(e) for e in dicts(doc.get("layers"))],
        "text": str(doc.get("text", "")),
    }


def _from_keras_config(doc: dict[str, Any]) -> dict[str, Any]:
    root = _keras_layer(doc, depth=0)
    return {
        "source": "keras_config",
        "name": root["name"],
        "class": root["class"],
        "total_params": None,
        "trainable_params": None,
        "non_trainable_params": None,
        "layers": root["layers"],
        "text": "",
    }


def _keras_layer(entry: dict[str, Any], depth: int) -> dict[str, Any]:
    config = entry.get("config") if isinstance(entry.get("config"), dict) else {}
    build = entry.get("build_config") if isinstance(entry.get("build_config"), dict) else {}
    input_shape = build.get("input_shape") or config.get("batch_shape")
    input_shape = input_shape or config.get("batch_input_shape")
    children = config.get("layers") if depth < 32 else None
    return {
        "name": str(config.get("name") or entry.get("name") or ""),
        "class": str(entry.get("class_name", "")),
        "settings": _settings(config),
        "input_shape": _shape_text(input_shape),
        "output_shape": None,
        "params": None,
        "trainable": bool(config.get("trainable", True)),
        "layers": [_keras_layer(e, depth + 1) for e in dicts(children)],
    }


def _settings(config: Any) -> dict[str, str]:
    if not isinstance(config, dict):
        return {}
    out = {}
    for key in KEY_SETTINGS:
        if key in config and config[key] is not None:
            value = config[key]
            out[key] = value if isinstance(value, str) else json.dumps(value)
    return out


def _shape_text(shape: Any) -> str | None:
    if shape is None:
        return None
    if isinstance(shape, str):
        return shape
    if isinstance(shape, list | tuple):
        return (
            "("
            + ", ".join("None" if d is None else str(d) for d in shape)
            + (",)" if len(shape) == 1 else ")")
        )
    return str(shape)


def dicts(items: Any) -> list[dict[str, Any]]:
    """The dicts of a JSON list (nothing when it is not a list)."""
    return [e for e in items if isinstance(e, dict)] if isinstance(items, list) else []


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
