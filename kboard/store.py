"""The one store: every run's series, kept in memory, safe to read while a reload writes.

Scalars keep every point in numpy columns. Other kinds keep every value up to a per-tag
limit (far above TensorBoard's defaults), then a uniform reservoir sample that always keeps
the newest value. All series follow the preemption rule of TensorBoard's data server: a
value at a step the series already has replaces the values from that step on.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kboard.tfevents.events import Kind, TagInfo

# Per-tag limits for the kinds that are not scalars (scalars are never sampled).
DEFAULT_LIMITS: dict[Kind, int] = {
    Kind.IMAGES: 1_000,
    Kind.HISTOGRAMS: 10_000,
    Kind.TEXT: 10_000,
    Kind.MODEL: 100,
    Kind.OTHER: 10_000,
}


@dataclass(frozen=True)
class ScalarColumns:
    """A read-only snapshot of one scalar series."""

    steps: np.ndarray  # int64, strictly increasing
    wall_times: np.ndarray  # float64
    values: np.ndarray  # float64

    def __len__(self) -> int:
        return len(self.steps)


@dataclass(frozen=True)
class Sample:
    """One stored value of a non-scalar series."""

    step: int
    wall_time: float
    value: Any


class ScalarSeries:
    """Every point of one scalar series, in growable numpy columns."""

    def __init__(self) -> None:
        self._steps = np.empty(0, dtype=np.int64)
        self._walls = np.empty(0, dtype=np.float64)
        self._values = np.empty(0, dtype=np.float64)
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def snapshot(self) -> ScalarColumns:
        """Return views that later writes never change (they append or copy)."""
        n = self._size
        cols = (self._steps[:n], self._walls[:n], self._values[:n])
        for col in cols:
            col.flags.writeable = False
        return ScalarColumns(*cols)

    def extend(self, steps: np.ndarray, walls: np.ndarray, values: np.ndarray) -> None:
        """Append a batch in file order, applying the preemption rule."""
        if len(steps) == 0:
            return
        steps = np.asarray(steps, dtype=np.int64)
        # A point survives the batch only if every later point has a larger step.
        suffix_min = np.minimum.accumulate(steps[::-1])[::-1]
        keep = np.ones(len(steps), dtype=bool)
        keep[:-1] = steps[:-1] < suffix_min[1:]
        if not keep.all():
            steps, walls, values = steps[keep], np.asarray(walls)[keep], np.asarray(values)[keep]
        self.truncate_from(int(suffix_min[0]))
        self._append(steps, np.asarray(walls, np.float64), np.asarray(values, np.float64))

    def truncate_from(self, step: int) -> None:
        """Drop every point at ``step`` or later."""
        n = self._size
        if n == 0 or self._steps[n - 1] < step:
            return
        cut = int(np.searchsorted(self._steps[:n], step, side="left"))
        # Copy rather than shrink in place: snapshots handed out earlier must not change.
        self._steps = self._steps[:cut].copy()
        self._walls = self._walls[:cut].copy()
        self._values = self._values[:cut].copy()
        self._size = cut

    def _append(self, steps: np.ndarray, walls: np.ndarray, values: np.ndarray) -> None:
        n, k = self._size, len(steps)
        if n + k > len(self._steps):
            capacity = max(n + k, 2 * len(self._steps), 64)
            self._steps = _grow(self._steps, n, capacity)
            self._walls = _grow(self._walls, n, capacity)
            self._values = _grow(self._values, n, capacity)
        self._steps[n : n + k] = steps
        self._walls[n : n + k] = walls
        self._values[n : n + k] = values
        self._size = n + k


def _grow(col: np.ndarray, used: int, capacity: int) -> np.ndarray:
    out = np.empty(capacity, dtype=col.dtype)
    out[:used] = col[:used]
    return out


class SampledSeries:
    """Values of a non-scalar series: all of them up to ``limit``, then a reservoir sample."""

    def __init__(self, limit: int, seed: int = 0) -> None:
        self.limit = limit
        self._items: list[Sample] = []
        self._seen = 0
        self._rng = random.Random(seed)

    def __len__(self) -> int:
        return len(self._items)

    @classmethod
    def restore(cls, limit: int, seen: int, items: tuple[Sample, ...]) -> SampledSeries:
        """Rebuild a series saved with its kept items and count of values seen."""
        series = cls(limit)
        series._items = list(items)
        series._seen = seen
        return series

    @property
    def seen(self) -> int:
        """How many values were ever added (more than are kept once sampling started)."""
        return self._seen

    def snapshot(self) -> tuple[Sample, ...]:
        return tuple(self._items)

    def add(self, sample: Sample) -> None:
        """Add a value, applying the preemption rule, then the reservoir."""
        items = self._items
        if items and items[-1].step >= sample.step:
            self.truncate_from(sample.step)
            items = self._items
        self._seen += 1
        if len(items) < self.limit:
            items.append(sample)
            return
        slot = self._rng.randrange(self._seen)
        if slot < self.limit:
            del items[slot]
            items.append(sample)
        else:
            items[-1] = sample  # always keep the newest

    def truncate_from(self, step: int) -> None:
        """Drop every value at ``step`` or later."""
        self._items = [s for s in self._items if s.step < step]


@dataclass(frozen=True)
class Problem:
    """Something wrong in a run's files, reported to the user and never fatal."""

    run: str
    path: str
    offset: int
    kind: str
    message: str


@dataclass
class RunData:
    """Everything known about one run."""

    tags: dict[Kind, dict[str, TagInfo]] = field(default_factory=dict)
    scalars: dict[str, ScalarSeries] = field(default_factory=dict)
    samples: dict[Kind, dict[str, SampledSeries]] = field(default_factory=dict)
    start_time: float | None = None

    def series_count(self) -> int:
        return len(self.scalars) + sum(len(s) for s in self.samples.values())

    def to_state(self) -> dict[str, Any]:
        """A picklable copy of this run's data (call under the store's lock)."""
        return {
            "tags": {kind: dict(tags) for kind, tags in self.tags.items()},
            "scalars": {tag: series.snapshot() for tag, series in self.scalars.items()},
            "samples": {
                kind: {tag: (s.limit, s.seen, s.snapshot()) for tag, s in by_tag.items()}
                for kind, by_tag in self.samples.items()
            },
            "start_time": self.start_time,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RunData:
        """Rebuild a run's data from :meth:`to_state`'s output."""
        data = cls()
        data.tags = {Kind(kind): dict(tags) for kind, tags in state["tags"].items()}
        for tag, cols in state["scalars"].items():
            series = ScalarSeries()
            series.extend(cols.steps, cols.wall_times, cols.values)
            data.scalars[tag] = series
        for kind, by_tag in state["samples"].items():
            target = data.samples.setdefault(Kind(kind), {})
            for tag, (limit, seen, items) in by_tag.items():
                target[tag] = SampledSeries.restore(limit, seen, items)
        data.start_time = state["start_time"]
        return data

    def restart(self, step: int) -> None:
        """Apply a ``SessionLog.START``: drop every series' values from ``step`` on."""
        for series in self.scalars.values():
            series.truncate_from(step)
        for by_tag in self.samples.values():
            for sampled in by_tag.values():
                sampled.truncate_from(step)


class Store:
    """All runs, behind one lock; readers get snapshots that later writes never alter."""

    def __init__(self, limits: dict[Kind, int] | None = None) -> None:
        self.limits = {**DEFAULT_LIMITS, **(limits or {})}
        self._lock = threading.RLock()
        self._runs: dict[str, RunData] = {}
        self._problems: dict[tuple[str, str, int, str], Problem] = {}
        self._generation = 0
        self._changed = threading.Condition(self._lock)

    # -- writing (used by the reader) -------------------------------------------------
    def write(self) -> WriteTxn:
        """Open a write transaction: ``with store.write() as txn: ...``."""
        return WriteTxn(self)

    # -- reading ---------------------------------------------------------------------
    @property
    def generation(self) -> int:
        """A counter that grows whenever the store changes."""
        return self._generation

    def wait_for_change(self, generation: int, timeout: float) -> int:
        """Block until the generation passes ``generation`` or ``timeout`` elapses."""
        with self._changed:
            self._changed.wait_for(lambda: self._generation != generation, timeout)
            return self._generation

    def runs(self) -> list[str]:
        with self._lock:
            return sorted(self._runs)

    def tags(self, kind: Kind) -> dict[str, dict[str, TagInfo]]:
        """Return ``{run: {tag: TagInfo}}`` for one kind."""
        with self._lock:
            return {
                run: dict(data.tags[kind])
                for run, data in sorted(self._runs.items())
                if data.tags.get(kind)
            }

    def scalars(self, run: str, tag: str) -> ScalarColumns:
        """Return every point of one scalar series; :class:`NotFound` when unknown."""
        with self._lock:
            return _lookup(self._run(run).scalars, tag, run).snapshot()

    def samples(self, run: str, kind: Kind, tag: str) -> tuple[Sample, ...]:
        """Return the kept values of one non-scalar series; :class:`NotFound` when unknown."""
        with self._lock:
            return self._series(run, kind, tag).snapshot()

    def iter_scalars(self) -> Iterator[tuple[str, str, ScalarColumns]]:
        """Yield ``(run, tag, columns)`` for every scalar series, sorted."""
        with self._lock:
            items = [
                (run, tag, data.scalars[tag].snapshot())
                for run, data in sorted(self._runs.items())
                for tag in sorted(data.scalars)
            ]
        yield from items

    def sample_counts(self, run: str, kind: Kind, tag: str) -> tuple[int, int]:
        """Return ``(kept, seen)`` for a non-scalar series."""
        with self._lock:
            series = self._series(run, kind, tag)
            return len(series), series.seen

    def start_time(self, run: str) -> float | None:
        with self._lock:
            return self._run(run).start_time

    def problems(self) -> list[Problem]:
        with self._lock:
            return list(self._problems.values())

    def run_snapshot(self, run: str) -> tuple[dict[str, Any], list[Problem]]:
        """A consistent, picklable copy of one run and its problems (for the cache)."""
        with self._lock:
            problems = [p for p in self._problems.values() if p.run == run]
            return self._run(run).to_state(), problems

    def _run(self, run: str) -> RunData:
        data = self._runs.get(run)
        if data is None:
            raise NotFound(f"no run {run!r}")
        return data

    def _series(self, run: str, kind: Kind, tag: str) -> SampledSeries:
        return _lookup(self._run(run).samples.get(kind, {}), tag, run)


class NotFound(KeyError):
    """An unknown run or tag was asked for."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "not found"


def _lookup(mapping: dict[str, Any], tag: str, run: str) -> Any:
    found = mapping.get(tag)
    if found is None:
        raise NotFound(f"no tag {tag!r} in run {run!r}")
    return found


class WriteTxn:
    """Applies a reload's changes under the store's lock, then bumps the generation."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.changed = False

    def __enter__(self) -> WriteTxn:
        self.store._lock.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        store = self.store
        try:
            if self.changed:
                store._generation += 1
                store._changed.notify_all()
        finally:
            store._lock.release()

    def run(self, name: str) -> RunData:
        """Return the run's data, creating the run when new."""
        data = self.store._runs.get(name)
        if data is None:
            data = self.store._runs[name] = RunData()
            self.changed = True
        return data

    def replace_run(self, name: str, data: RunData) -> None:
        self.store._runs[name] = data
        self.changed = True

    def remove_run(self, name: str) -> None:
        if self.store._runs.pop(name, None) is not None:
            self.changed = True
        for key in [k for k in self.store._problems if k[0] == name]:
            del self.store._problems[key]

    def add_scalars(
        self,
        data: RunData,
        tag: str,
        info: TagInfo,
        steps: np.ndarray,
        walls: np.ndarray,
        values: np.ndarray,
    ) -> None:
        """Append a batch of one series' points in file order."""
        if len(steps) == 0:
            return
        data.tags.setdefault(Kind.SCALARS, {}).setdefault(tag, info)
        series = data.scalars.get(tag)
        if series is None:
            series = data.scalars[tag] = ScalarSeries()
        series.extend(steps, walls, values)
        self.changed = True

    def add_sample(self, data: RunData, tag: str, info: TagInfo, sample: Sample) -> None:
        kind = info.kind
        data.tags.setdefault(kind, {}).setdefault(tag, info)
        by_tag = data.samples.setdefault(kind, {})
        series = by_tag.get(tag)
        if series is None:
            series = by_tag[tag] = SampledSeries(self.store.limits[kind])
        series.add(sample)
        self.changed = True

    def restart(self, data: RunData, step: int) -> None:
        data.restart(step)
        self.changed = True

    def report(self, problem: Problem) -> bool:
        """Record a problem; return False when it was already known."""
        key = (problem.run, problem.path, problem.offset, problem.kind)
        if key in self.store._problems:
            return False
        self.store._problems[key] = problem
        self.changed = True
        return True

    def forget_problems(self, run: str, path: str | None = None, kind: str | None = None) -> None:
        """Drop the problems of a run (of one of its files, of one kind) that no longer hold."""
        for key in [
            k
            for k in self.store._problems
            if k[0] == run and path in (None, k[1]) and kind in (None, k[3])
        ]:
            del self.store._problems[key]
            self.changed = True
