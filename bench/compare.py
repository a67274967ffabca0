"""Compare every scalar point two servers serve, value for value (not only counts).

Both kboard and TensorBoard answer ``/data/plugin/scalars/scalars?run=R&tag=T`` with
``[[wall_time, step, value], ...]``. TensorBoard keeps a ``tf.summary`` value as the float32
of its tensor proto and widens it to a double for JSON; kboard keeps the same double. So wall
times, steps and values must be equal exactly, bit for bit (NaN equal to NaN), and nothing
is compared with a tolerance.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

import numpy as np

_NON_FINITE = {"NaN": np.nan, "Infinity": np.inf, "-Infinity": -np.inf}


@dataclass(frozen=True)
class Series:
    """One served series as columns."""

    wall_times: np.ndarray  # float64
    steps: np.ndarray  # int64
    values: np.ndarray  # float64

    @classmethod
    def from_json(cls, points: list[list]) -> Series:
        """Columns of a ``[[wall_time, step, value], ...]`` answer."""
        walls = np.array([_number(p[0]) for p in points], dtype=np.float64)
        steps = np.array([p[1] for p in points], dtype=np.int64)
        values = np.array([_number(p[2]) for p in points], dtype=np.float64)
        return cls(walls, steps, values)


def _number(value: float | str) -> float:
    return _NON_FINITE[value] if isinstance(value, str) else float(value)


@dataclass
class Comparison:
    """What differs between two servers' answers; ``equal`` when nothing does."""

    series: int = 0  # series compared
    points: int = 0  # points compared
    differences: list[str] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        return not self.differences and self.series > 0

    def summary(self) -> str:
        if self.equal:
            return f"equal: {self.points:,} points in {self.series} series, bit for bit"
        shown = "; ".join(self.differences[:3])
        more = len(self.differences) - 3
        return f"DIFFERENT ({len(self.differences)} series): {shown}" + (
            f"; and {more} more" if more > 0 else ""
        )


def same_bits(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise exact equality of two float64 arrays, NaN equal to NaN."""
    return (a == b) | (np.isnan(a) & np.isnan(b))


def compare(
    ours: dict[tuple[str, str], Series],
    theirs: dict[tuple[str, str], Series],
    *,
    sampled: bool = False,
) -> Comparison:
    """Compare ``theirs`` with ``ours`` series by series, every point exactly.

    With ``sampled``, ``theirs`` may hold a subset of each series' steps (TensorBoard's
    sampling loader); each point it has must still equal ours at that step.
    """
    out = Comparison()
    for key in sorted(ours.keys() - theirs.keys()):
        out.differences.append(f"{key}: missing from theirs")
    for key in sorted(theirs.keys() - ours.keys()):
        out.differences.append(f"{key}: missing from ours")
    for key in sorted(ours.keys() & theirs.keys()):
        a, b = ours[key], theirs[key]
        out.series += 1
        if sampled:
            where = np.searchsorted(a.steps, b.steps)
            found = (where < len(a.steps)) & (
                a.steps[np.minimum(where, len(a.steps) - 1)] == b.steps
            )
            if not found.all():
                out.differences.append(f"{key}: steps {b.steps[~found][:3].tolist()} not ours")
                continue
            a = Series(a.wall_times[where], a.steps[where], a.values[where])
        out.points += len(b.steps)
        if len(a.steps) != len(b.steps):
            out.differences.append(f"{key}: {len(a.steps)} points against {len(b.steps)}")
            continue
        for name, x, y in (
            ("step", a.steps, b.steps),
            ("wall_time", a.wall_times, b.wall_times),
            ("value", a.values, b.values),
        ):
            equal = x == y if name == "step" else same_bits(x, y)
            if not equal.all():
                i = int(np.flatnonzero(~equal)[0])
                out.differences.append(
                    f"{key}: {(~equal).sum()} {name}s differ, first at step {a.steps[i]}: "
                    f"{x[i]!r} against {y[i]!r}"
                )
                break
    return out


def fetch_all(
    base_url: str, timeout: float = 120, only: set[tuple[str, str]] | None = None
) -> dict[tuple[str, str], Series]:
    """Every scalar series a server serves through TensorBoard's scalars routes (or ``only``
    those ``(run, tag)`` pairs)."""

    def get(path: str) -> object:
        with urllib.request.urlopen(base_url + path, timeout=timeout) as response:
            return json.loads(response.read())

    tags = get("/data/plugin/scalars/tags")
    out = {}
    for run, by_tag in sorted(tags.items()):  # type: ignore[union-attr]
        for tag in sorted(by_tag):
            if only is not None and (run, tag) not in only:
                continue
            query = urllib.parse.urlencode({"run": run, "tag": tag})
            out[(run, tag)] = Series.from_json(get(f"/data/plugin/scalars/scalars?{query}"))
    return out
