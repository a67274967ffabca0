"""The JSON texts built without ``json.dumps`` are exactly the ones ``json.dumps`` gives."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kboard.jsonsafe import finite_or_string, float_texts, point_rows_json

SPECIAL = [0.0, -0.0, 1e-310, 5e-324, 1.7976931348623157e308, 0.1, 1 / 3, 1e16, 123456789.0]


def _dumps(walls: np.ndarray, steps: np.ndarray, values: np.ndarray) -> str:
    rows = [
        [finite_or_string(w), s, finite_or_string(v)]
        for w, s, v in zip(walls.tolist(), steps.tolist(), values.astype(np.float64).tolist())
    ]
    return json.dumps(rows, separators=(",", ":"))


@pytest.mark.parametrize("value_dtype", [np.float32, np.float64])
@pytest.mark.parametrize("with_non_finite", [False, True])
def test_point_rows_are_what_json_dumps_writes(value_dtype: type, with_non_finite: bool) -> None:
    rng = np.random.default_rng(7)
    values = np.concatenate([rng.normal(size=500) * 10.0 ** rng.integers(-30, 30, 500), SPECIAL])
    if with_non_finite:
        values[[3, 50, 400]] = [np.nan, np.inf, -np.inf]
    with np.errstate(over="ignore"):  # the largest specials are infinite in float32
        values = values.astype(value_dtype)
    walls = 1.7e9 + np.cumsum(rng.random(len(values)))
    steps = np.concatenate([np.arange(len(values) - 2), [2**31, 2**62]]).astype(np.int64)
    text = point_rows_json(walls, steps, values)
    assert text == _dumps(walls, steps, values)
    parsed = json.loads(text)
    assert [row[1] for row in parsed] == steps.tolist()
    finite = np.isfinite(values)
    got = np.array([row[2] for row, ok in zip(parsed, finite) if ok], dtype=np.float64)
    assert np.array_equal(got, values[finite].astype(np.float64))  # every bit kept


def test_empty_series_is_an_empty_list() -> None:
    empty = np.empty(0)
    assert point_rows_json(empty, empty.astype(np.int64), empty) == "[]"
    assert float_texts(empty) == []
