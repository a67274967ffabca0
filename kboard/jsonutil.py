"""JSON responses that are always valid JSON: non-finite floats become TensorBoard's strings."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
from flask import Response

NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def finite_or_string(value: float) -> float | str:
    """Return ``value``, or the string TensorBoard writes for it when it is not finite."""
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def float_list(values: np.ndarray) -> list[float | str]:
    """Convert a float array to a JSON-safe list."""
    out: list[Any] = values.tolist()
    if not np.isfinite(values).all():
        out = [finite_or_string(v) for v in out]
    return out


def cleanse(obj: Any) -> Any:
    """Replace non-finite floats anywhere in a JSON-like structure."""
    if isinstance(obj, float):
        return finite_or_string(obj)
    if isinstance(obj, dict):
        return {k: cleanse(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [cleanse(v) for v in obj]
    return obj


def json_response(obj: Any, status: int = 200) -> Response:
    """Serialise ``obj`` (already cleansed where it holds floats) as strict JSON."""
    body = json.dumps(obj, allow_nan=False, separators=(",", ":"), ensure_ascii=False)
    return Response(body, status=status, mimetype="application/json")


def json_error(message: str, status: int) -> Response:
    return json_response({"error": message}, status)
