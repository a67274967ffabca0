"""The one store: every run's series, kept in memory, safe to read while a reload writes.

Scalars keep every point in numpy columns. Other kinds keep every value up to a per-tag
limit (far above TensorBoard's defaults), then a uniform reservoir sample that always keeps
the newest value. All series follow the preemption rule of TensorBoard's data server in
what they show: a value at a step the series already has replaces the values from that step
on. What is replaced is kept too, with the attempt it belongs to (see :class:`ScalarSeries`).
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
    Kind.GRAPH: 10,  # graphs can be megabytes each
    Kind.HPARAMS: 100,
    Kind.OTHER: 10_000,
}


@dataclass(frozen=True)
class ScalarColumns:
    """A read-only snapshot of one scalar series.

    Steps are int32 while every step fits, values float32 while every value is exactly a
    float32 (as ``tf.summary`` and torch write them); either widens to 64 bits, losslessly,
    when a point needs it. Read them as numbers, not by dtype.
    """

    steps: np.ndarray  # int32 or int64, strictly increasing
    wall_times: np.ndarray  # float64
    values: np.ndarray  # float32 or float64

    def __len__(self) -> int:
        return len(self.steps)


@dataclass(frozen=True)
class Sample:
    """One stored value of a non-scalar series."""

    step: int
    wall_time: float
    value: Any


@dataclass(frozen=True)
class ScalarHistory:
    """Every point ever written to one scalar series, in write order.

    ``attempts`` numbers the series' attempts (0, 1, ...: a new one begins where the step
    goes back, or at a ``SessionLog.START``); ``overwritten`` marks the points that the
    default view (the latest value at each step, from the last rewind on) no longer shows.
    """

    steps: np.ndarray  # int64
    wall_times: np.ndarray  # float64
    values: np.ndarray  # float64
    attempts: np.ndarray  # int32
    overwritten: np.ndarray  # bool

    def __len__(self) -> int:
        return len(self.steps)


class _Attempts:
    """Which attempt each position of a step-sorted view belongs to, and how they began.

    Attempts only grow along the view, so ``bounds`` holds one ``(start, attempt)`` pair per
    attempt present in the view; ``starts`` the first step of every attempt after the first.
    """

    def __init__(self) -> None:
        self.current = 0
        self.bounds: list[tuple[int, int]] = []
        self.starts: list[int] = []

    def begin(self, step: int) -> None:
        """A new attempt begins at ``step``."""
        self.current += 1
        self.starts.append(step)

    def cut(self, position: int) -> None:
        """Forget the positions from ``position`` on (they were removed from the view)."""
        while self.bounds and self.bounds[-1][0] >= position:
            self.bounds.pop()

    def extend(self, position: int, attempt: int) -> None:
        """Values of ``attempt`` are added at ``position``."""
        if not self.bounds or self.bounds[-1][1] != attempt:
            self.bounds.append((position, attempt))

    def of(self, lo: int, hi: int) -> np.ndarray:
        """The attempt of every position in ``[lo, hi)``."""
        out = np.empty(hi - lo, dtype=np.int32)
        ends = [start for start, _ in self.bounds[1:]] + [hi]
        for (start, attempt), end in zip(self.bounds, ends):
            a, b = max(start, lo), min(end, hi)
            if a < b:
                out[a - lo : b - lo] = attempt
        return out

    def state(self) -> tuple[int, list[tuple[int, int]], list[int]]:
        return self.current, list(self.bounds), list(self.starts)

    @classmethod
    def restore(cls, state: tuple[int, list[tuple[int, int]], list[int]]) -> _Attempts:
        attempts = cls()
        attempts.current, attempts.bounds, attempts.starts = state[0], state[1], state[2]
        return attempts


class ScalarSeries:
    """Every point of one scalar series, in growable numpy columns.

    The view (what every route shows) follows TensorBoard's data server: a value at a step
    the series already has replaces the values from that step on. Replaced values are not
    lost: they move to the overwritten columns, with the attempt they belong to, and
    :meth:`history` returns every point ever written. A series that never goes back costs
    nothing more than its view.
    """

    def __init__(self) -> None:
        self._steps = np.empty(0, dtype=np.int32)  # widened to int64 when a step needs it
        self._walls = np.empty(0, dtype=np.float64)
        self._values = np.empty(0, dtype=np.float32)  # widened when a value is not a float32
        self._size = 0
        self._attempts = _Attempts()
        self._old: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        return self._size

    @property
    def attempts(self) -> int:
        """How many attempts wrote to this series (1 when it never went back)."""
        return self._attempts.current + 1

    @property
    def restart_steps(self) -> tuple[int, ...]:
        """The step at which each attempt after the first began."""
        return tuple(self._attempts.starts)

    @property
    def overwritten(self) -> int:
        """How many points the view no longer shows."""
        return 0 if self._old is None else len(self._old[0])

    def snapshot(self) -> ScalarColumns:
        """Return views that later writes never change (they append or copy)."""
        n = self._size
        cols = (self._steps[:n], self._walls[:n], self._values[:n])
        for col in cols:
            col.flags.writeable = False
        return ScalarColumns(*cols)

    def history(self) -> ScalarHistory:
        """Every point ever written, in write order (a copy)."""
        n = self._size
        view = (self._steps[:n], self._walls[:n], self._values[:n], self._attempts.of(0, n))
        if self._old is None:
            return ScalarHistory(*(c.copy() for c in view), np.zeros(n, dtype=bool))
        old = self._old
        steps, walls, values, attempts = (np.concatenate([o, v]) for o, v in zip(old, view))
        overwritten = np.concatenate([np.ones(len(old[0]), bool), np.zeros(n, bool)])
        # Within an attempt steps never go back, and an overwritten point at a step was
        # written before the one shown there: a stable sort by (attempt, step) is write order.
        order = np.argsort(steps, kind="stable")
        order = order[np.argsort(attempts[order], kind="stable")]
        return ScalarHistory(
            steps[order], walls[order], values[order], attempts[order], overwritten[order]
        )

    def reserve(self, count: int) -> None:
        """Make room for ``count`` more points now, exactly (appends then copy nothing)."""
        need = self._size + count
        if need > len(self._steps):
            self._steps = _grow(self._steps, self._size, need)
            self._walls = _grow(self._walls, self._size, need)
            self._values = _grow(self._values, self._size, need)

    def extend(self, steps: np.ndarray, walls: np.ndarray, values: np.ndarray) -> None:
        """Append a batch in file order, applying the preemption rule."""
        if len(steps) == 0:
            return
        steps = np.asarray(steps, dtype=np.int64)
        walls = np.asarray(walls, dtype=np.float64)
        with np.errstate(invalid="ignore"):  # float32 in: a signalling NaN quietens
            values = np.asarray(values, dtype=np.float64)
        rising = np.diff(steps)
        if (not self._size or steps[0] > self._steps[self._size - 1]) and (rising > 0).all():
            self._append(steps, walls, values)  # the common case: nothing is replaced
            return
        # A new attempt begins at every point whose step is below the one written before it.
        back = np.empty(len(steps), dtype=bool)
        back[0] = bool(self._size) and steps[0] < self._steps[self._size - 1]
        back[1:] = rising < 0
        attempts = (self._attempts.current + np.cumsum(back)).astype(np.int32)
        self._attempts.starts.extend(steps[back].tolist())
        # TensorBoard's rule: a point stays shown only if every later one has a larger step.
        suffix_min = np.minimum.accumulate(steps[::-1])[::-1]
        shown = np.ones(len(steps), dtype=bool)
        shown[:-1] = steps[:-1] < suffix_min[1:]
        self.truncate_from(int(suffix_min[0]))
        if not shown.all():
            hidden = ~shown
            self._keep_old(steps[hidden], walls[hidden], values[hidden], attempts[hidden])
        self._attempts.current = int(attempts[-1])
        self._append(steps[shown], walls[shown], values[shown], attempts[shown])

    def restart(self, step: int) -> None:
        """Begin a new attempt at ``step``: the view drops its values from ``step`` on."""
        self._attempts.begin(step)
        self.truncate_from(step)

    def truncate_from(self, step: int) -> None:
        """Move every point at ``step`` or later out of the view, into the overwritten ones."""
        n = self._size
        if n == 0 or self._steps[n - 1] < step:
            return
        cut = int(np.searchsorted(self._steps[:n], step, side="left"))
        self._keep_old(
            self._steps[cut:n], self._walls[cut:n], self._values[cut:n], self._attempts.of(cut, n)
        )
        self._attempts.cut(cut)
        # Copy rather than shrink in place: snapshots handed out earlier must not change.
        self._steps = self._steps[:cut].copy()
        self._walls = self._walls[:cut].copy()
        self._values = self._values[:cut].copy()
        self._size = cut

    def _keep_old(
        self, steps: np.ndarray, walls: np.ndarray, values: np.ndarray, attempts: np.ndarray
    ) -> None:
        new = (steps, walls, values, attempts)
        if self._old is None:
            self._old = tuple(c.copy() for c in new)  # type: ignore[assignment]
        else:
            self._old = tuple(np.concatenate([o, c]) for o, c in zip(self._old, new))  # type: ignore[assignment]

    def _append(
        self,
        steps: np.ndarray,
        walls: np.ndarray,
        values: np.ndarray,
        attempts: np.ndarray | None = None,
    ) -> None:
        """Add points to the view: of the current attempt, or of ``attempts`` (ascending)."""
        n, k = self._size, len(steps)
        if attempts is None:
            self._attempts.extend(n, self._attempts.current)
        else:
            for start in [0, *(np.flatnonzero(np.diff(attempts)) + 1).tolist()]:
                if start < k:
                    self._attempts.extend(n + start, int(attempts[start]))
        if self._steps.dtype != np.int64 and not _fits_int32(steps):
            self._steps = _grow(self._steps, n, len(self._steps), np.int64)
        if self._values.dtype != np.float64 and not _exact_in_float32(values):
            self._values = _grow(self._values, n, len(self._values), np.float64)
        if n + k > len(self._steps):
            # Grow by a quarter: amortised appends, and at most a quarter of the room unused.
            capacity = max(n + k, len(self._steps) + len(self._steps) // 4, 64)
            self._steps = _grow(self._steps, n, capacity)
            self._walls = _grow(self._walls, n, capacity)
            self._values = _grow(self._values, n, capacity)
        self._steps[n : n + k] = steps
        self._walls[n : n + k] = walls
        self._values[n : n + k] = values
        self._size = n + k

    def state(self) -> dict[str, Any]:
        """A picklable copy (for the cache)."""
        return {"view": self.snapshot(), "attempts": self._attempts.state(), "old": self._old}

    @classmethod
    def restore(cls, state: dict[str, Any]) -> ScalarSeries:
        """Rebuild a series from :meth:`state`."""
        series = cls()
        view = state["view"]
        series._steps = np.array(view.steps)  # the dtypes it was saved with
        series._walls = np.array(view.wall_times, dtype=np.float64)
        series._values = np.array(view.values)
        series._size = len(series._steps)
        series._attempts = _Attempts.restore(state["attempts"])
        series._old = state["old"]
        return series


_INT32 = np.iinfo(np.int32)


def _fits_int32(steps: np.ndarray) -> bool:
    """Whether every step fits an int32 column."""
    return not len(steps) or (_INT32.min <= steps.min() and steps.max() <= _INT32.max)


def _exact_in_float32(values: np.ndarray) -> bool:
    """Whether a float32 column keeps every value exactly (NaN and infinities included)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.array_equal(values.astype(np.float32), values, equal_nan=True))


def _grow(col: np.ndarray, used: int, capacity: int, dtype: type | None = None) -> np.ndarray:
    """``col`` with room for ``capacity`` points (in a wider ``dtype`` when given).

    Only the used part is copied: the room after it holds whatever the allocator left (a
    signalling NaN's bits included, which a conversion would warn about).
    """
    out = np.empty(capacity, dtype=dtype or col.dtype)
    out[:used] = col[:used]
    return out


class SampledSeries:
    """Values of a non-scalar series: all of them up to ``limit``, then a reservoir sample.

    The same rule as scalars decides what is shown; values replaced by a later attempt are
    kept apart, up to ``limit`` of them too, with the attempt they belong to.
    """

    def __init__(self, limit: int, seed: int = 0) -> None:
        self.limit = limit
        self._items: list[Sample] = []
        self._seen = 0
        self._rng = random.Random(seed)
        self._attempt = 0
        self._starts: list[tuple[int, int]] = []  # (first step, attempt) of later attempts
        self._old: list[tuple[int, Sample]] = []
        self._old_seen = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def seen(self) -> int:
        """How many values were ever added (more than are kept once sampling started)."""
        return self._seen

    @property
    def attempts(self) -> int:
        return self._attempt + 1

    @property
    def overwritten(self) -> int:
        """How many replaced values there were (up to ``limit`` of them are kept)."""
        return self._old_seen

    def snapshot(self) -> tuple[Sample, ...]:
        return tuple(self._items)

    def history(self) -> list[tuple[int, bool, Sample]]:
        """``(attempt, overwritten, sample)`` for every kept value, in write order."""
        shown = [(self._attempt_at(s.step), False, s) for s in self._items]
        old = [(attempt, True, s) for attempt, s in self._old]
        return sorted(old + shown, key=lambda item: (item[0], item[2].step))

    def _attempt_at(self, step: int) -> int:
        attempt = 0
        for start, number in self._starts:
            if step >= start:
                attempt = number
        return attempt

    def add(self, sample: Sample) -> None:
        """Add a value, applying the preemption rule, then the reservoir."""
        items = self._items
        if items and items[-1].step >= sample.step:
            if items[-1].step > sample.step:
                self.restart(sample.step)
            else:
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

    def restart(self, step: int) -> None:
        """Begin a new attempt at ``step``: values from ``step`` on are replaced."""
        self._attempt += 1
        self.truncate_from(step)
        self._starts.append((step, self._attempt))

    def truncate_from(self, step: int) -> None:
        """Move every value at ``step`` or later out of view."""
        kept = []
        for s in self._items:
            if s.step < step:
                kept.append(s)
            else:
                self._keep_old(self._attempt_at(s.step), s)
        self._items = kept

    def _keep_old(self, attempt: int, sample: Sample) -> None:
        self._old_seen += 1
        if len(self._old) < self.limit:
            self._old.append((attempt, sample))
            return
        slot = self._rng.randrange(self._old_seen)
        if slot < self.limit:
            del self._old[slot]
            self._old.append((attempt, sample))

    def state(self) -> dict[str, Any]:
        """A picklable copy (for the cache)."""
        return {
            "limit": self.limit,
            "seen": self._seen,
            "items": tuple(self._items),
            "attempt": self._attempt,
            "starts": list(self._starts),
            "old": list(self._old),
            "old_seen": self._old_seen,
        }

    @classmethod
    def restore(cls, state: dict[str, Any]) -> SampledSeries:
        """Rebuild a series from :meth:`state`."""
        series = cls(state["limit"])
        series._items = list(state["items"])
        series._seen = state["seen"]
        series._attempt = state["attempt"]
        series._starts = list(state["starts"])
        series._old = list(state["old"])
        series._old_seen = state["old_seen"]
        return series


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

    def to_state(self) -> dict[str, Any]:
        """A picklable copy of this run's data (call under the store's lock)."""
        return {
            "tags": {kind: dict(tags) for kind, tags in self.tags.items()},
            "scalars": {tag: series.state() for tag, series in self.scalars.items()},
            "samples": {
                kind: {tag: s.state() for tag, s in by_tag.items()}
                for kind, by_tag in self.samples.items()
            },
            "start_time": self.start_time,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RunData:
        """Rebuild a run's data from :meth:`to_state`'s output."""
        data = cls()
        data.tags = {Kind(kind): dict(tags) for kind, tags in state["tags"].items()}
        for tag, series_state in state["scalars"].items():
            data.scalars[tag] = ScalarSeries.restore(series_state)
        for kind, by_tag in state["samples"].items():
            target = data.samples.setdefault(Kind(kind), {})
            for tag, series_state in by_tag.items():
                target[tag] = SampledSeries.restore(series_state)
        data.start_time = state["start_time"]
        return data

    def restart(self, step: int) -> None:
        """Apply a ``SessionLog.START``: every series with values begins a new attempt."""
        for series in self.scalars.values():
            if len(series) or series.overwritten:
                series.restart(step)
        for by_tag in self.samples.values():
            for sampled in by_tag.values():
                if len(sampled) or sampled.overwritten:
                    sampled.restart(step)

    def restarts(self) -> tuple[int, int]:
        """``(attempts, overwritten)``: the most attempts of any series, and how many
        values the views no longer show, over every series of the run."""
        series: list[ScalarSeries | SampledSeries] = list(self.scalars.values())
        series += [s for by_tag in self.samples.values() for s in by_tag.values()]
        attempts = max((s.attempts for s in series), default=1)
        return attempts, sum(s.overwritten for s in series)


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

    def scalar_history(self, run: str, tag: str) -> ScalarHistory:
        """Every point ever written to one scalar series, overwritten ones too."""
        with self._lock:
            return _lookup(self._run(run).scalars, tag, run).history()

    def restart_steps(self, run: str, tag: str) -> tuple[int, ...]:
        """The steps at which a scalar series began again (went back, or restarted)."""
        with self._lock:
            return _lookup(self._run(run).scalars, tag, run).restart_steps

    def sample_history(self, run: str, kind: Kind, tag: str) -> list[tuple[int, bool, Sample]]:
        """``(attempt, overwritten, sample)`` for every kept value of a non-scalar series."""
        with self._lock:
            return self._series(run, kind, tag).history()

    def restarts(self, run: str) -> tuple[int, int]:
        """``(attempts, overwritten values)`` of a run (see :meth:`RunData.restarts`)."""
        with self._lock:
            return self._run(run).restarts()

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

    def reserve_scalars(self, data: RunData, tag: str, count: int) -> None:
        """Make room for ``count`` points about to be added to a series (a hint).

        A new series is made here, empty: :meth:`add_scalars` must follow in this write.
        """
        series = data.scalars.get(tag)
        if series is None:
            series = data.scalars[tag] = ScalarSeries()
        series.reserve(count)

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
