"""bench.compare finds every point that differs, and only those."""

from __future__ import annotations

import numpy as np

from bench.compare import Series, compare

KEY = ("run_000", "loss")


def _series(values: list[float], steps: list[int] | None = None) -> Series:
    steps = list(range(len(values))) if steps is None else steps
    walls = [1000.0 + s / 4 for s in steps]
    return Series.from_json([[w, s, v] for w, s, v in zip(walls, steps, values)])


def test_equal_series_are_equal_nan_included() -> None:
    a = _series([0.5, float("nan"), 2.0])
    b = Series.from_json([[1000.0, 0, 0.5], [1000.25, 1, "NaN"], [1000.5, 2, 2.0]])
    result = compare({KEY: a}, {KEY: b})
    assert result.equal, result.summary()
    assert (result.series, result.points) == (1, 3)


def test_one_ulp_is_a_difference() -> None:
    value = float(np.float32(0.1))
    a, b = _series([value, 1.0]), _series([float(np.nextafter(value, 1.0)), 1.0])
    result = compare({KEY: a}, {KEY: b})
    assert not result.equal
    assert "1 values differ, first at step 0" in result.differences[0]


def test_float32_rounding_of_a_float64_value_is_a_difference() -> None:
    # A server that narrowed a float64 source to float32 serves a different number.
    a, b = _series([0.1]), _series([float(np.float32(0.1))])
    assert not compare({KEY: a}, {KEY: b}).equal


def test_counts_steps_wall_times_and_missing_series() -> None:
    a = _series([1.0, 2.0, 3.0])
    assert "3 points against 2" in compare({KEY: a}, {KEY: _series([1.0, 2.0])}).differences[0]
    shifted = _series([1.0, 2.0, 3.0], steps=[0, 1, 5])
    assert "steps differ" in compare({KEY: a}, {KEY: shifted}).differences[0]
    late = Series(a.wall_times + 1e-6, a.steps, a.values)
    assert "wall_times differ" in compare({KEY: a}, {KEY: late}).differences[0]
    other = ("run_001", "loss")
    result = compare({KEY: a}, {other: a})
    assert sorted(result.differences) == [
        f"{KEY}: missing from theirs",
        f"{other}: missing from ours",
    ]
    assert not compare({}, {}).equal  # nothing compared is not "equal"


def test_sampled_points_must_equal_ours_at_their_steps() -> None:
    a = _series([float(v) for v in range(10)])
    sample = Series(a.wall_times[::3], a.steps[::3], a.values[::3])
    assert compare({KEY: a}, {KEY: sample}, sampled=True).equal
    wrong = Series(sample.wall_times, sample.steps, sample.values + 1)
    assert not compare({KEY: a}, {KEY: wrong}, sampled=True).equal
    unknown = Series(np.array([1.0]), np.array([42]), np.array([1.0]))
    assert "not ours" in compare({KEY: a}, {KEY: unknown}, sampled=True).differences[0]
