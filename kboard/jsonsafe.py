"""JSON-safe values: non-finite floats become the strings TensorBoard writes for them."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


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
