"""The data provider: every question asked of the logs, answered in one place.

The HTTP API, the TensorBoard-compatible routes, export, ``kboard.read_*`` and the CLI ask
a :class:`DataProvider`; none of them touches the store. Below it sit the store (what was
read) and the reader (how it got there); above it, nothing knows how data is kept, and the
provider knows nothing of HTTP. Its questions, in TensorBoard's ``data/provider.py`` spirit:

- **runs and status**: :meth:`~DataProvider.runs` (by start time), :meth:`~DataProvider.problems`,
  :attr:`~DataProvider.generation` and :meth:`~DataProvider.wait_for_change` (live updates);
- **tags**: :meth:`~DataProvider.tags` for one :class:`~kboard.tfevents.events.Kind`,
  ``{run: {tag: TagInfo}}``;
- **scalars**: every point (:meth:`~DataProvider.scalars`, :meth:`~DataProvider.iter_scalars`),
  or a view of one tag across runs downsampled for a chart (:meth:`~DataProvider.scalar_view`),
  and what each run's series is at now (:meth:`~DataProvider.scalar_versions`, for refetching
  only the runs that changed);
- **samples** of the other kinds: raw (:meth:`~DataProvider.samples`,
  :meth:`~DataProvider.sample_counts`) or shaped for a tab (:meth:`~DataProvider.image_steps`,
  :meth:`~DataProvider.histogram_view`, :meth:`~DataProvider.text_view`,
  :meth:`~DataProvider.model_view`, :meth:`~DataProvider.graph_view`);
- **blobs**: :meth:`~DataProvider.image_blob`, bytes with a content type from an allowlist;
- **run groups** (seeds of one setting): runs keyed by a :data:`~kboard.groups.GroupKey`
  (:func:`~kboard.groups.regex_key`, or a hyperparameter's value; either one named by
  :meth:`~DataProvider.group_key`) (:meth:`~DataProvider.run_groups`), a tag's per-step
  statistics across a group
  (:meth:`~DataProvider.group_scalars`, :meth:`~DataProvider.iter_group_scalars`) or a view
  of them for a chart (:meth:`~DataProvider.group_view`);
- **hyperparameters**: :meth:`~DataProvider.experiment` (written or inferred),
  :meth:`~DataProvider.sessions`, :meth:`~DataProvider.hparams` of a run (or
  :meth:`~DataProvider.hparams_by_run`), and
  :meth:`~DataProvider.runs_table` (every run's scalars summed up, with its session's values).

Views come back JSON-ready (plain dicts and lists, non-finite floats as TensorBoard's strings).
An unknown run or tag raises :class:`NotFound`. :func:`load_logdir` reads a logdir once;
:func:`parse_logdir_spec` and :func:`default_cache_dir` say what a logdir spec names and where
decoded runs are cached.

A new source (another filesystem) plugs in below, as a reader that fills the store; a new
kind (hyperparameters, run groups, restarts) is a new question here, and the routes, export
and the CLI get it by asking.
"""

from __future__ import annotations

import bisect
import hashlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from kboard.cache import RunCache, default_cache_dir
from kboard.downsample import minmax_indices
from kboard.graph import graph_digest, keras_graph, op_graph
from kboard.groups import (
    STAT_NAMES,
    GroupKey,
    GroupStats,
    RunGroups,
    aggregate,
    check_grouping,
    group_by_key,
    hparam_names,
    regex_key,
)
from kboard.histograms import BASIS_POINTS, DISPLAY_BINS, clean_buckets, percentiles, rebin
from kboard.histograms import value_range as histogram_range
from kboard.hparams import (
    EXPERIMENT_TAG,
    SESSION_END_TAG,
    SESSION_START_TAG,
    Session,
    add_hparams_parents,
    enclosing_session,
    hparam_group_key,
    infer_experiment,
    make_session,
    metric_goal,
    metric_key,
    metric_run,
    metric_summary,
    series_summary,
    spec_view,
)
from kboard.ingest import LogdirReader, logdir_label, logdir_roots, parse_logdir_spec
from kboard.jsonsafe import cleanse, float_list
from kboard.model import model_view as model_tree
from kboard.progress import LoadProgress
from kboard.storage import IOStats, StorageError, parse_storage_options
from kboard.store import NotFound, Problem, Sample, ScalarColumns, ScalarHistory, Store
from kboard.text import text_to_html
from kboard.tfevents.events import (
    ExperimentConfig,
    HParamValue,
    Kind,
    SessionEnd,
    SessionStart,
    TagInfo,
)

__all__ = [
    "Blob",
    "DataProvider",
    "GroupKey",
    "GroupStats",
    "NotFound",
    "Problem",
    "RunGroups",
    "RunInfo",
    "Sample",
    "Session",
    "ScalarColumns",
    "ScalarHistory",
    "StorageError",
    "TagInfo",
    "X_MODES",
    "check_grouping",
    "default_cache_dir",
    "hparam_names",
    "load_logdir",
    "logdir_label",
    "logdir_roots",
    "not_a_directory",
    "parse_logdir_spec",
    "parse_storage_options",
    "regex_key",
]

DEFAULT_POINTS = 2000
X_MODES = ("step", "relative", "wall_time")
DEFAULT_TEXT_CHARS = 100_000

IMAGE_TYPES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
)


@dataclass(frozen=True)
class RunInfo:
    """One run: its name, the wall time of its first event (None when unknown), how many
    attempts wrote to it (1 when it never went back) and how many values were replaced."""

    name: str
    start_time: float | None
    attempts: int = 1
    overwritten: int = 0


@dataclass(frozen=True)
class Blob:
    """Stored bytes and the content type to serve them with."""

    data: bytes
    content_type: str

    @property
    def etag(self) -> str:
        """A hash of the bytes: the same name always means the same bytes."""
        return hashlib.blake2b(self.data, digest_size=16).hexdigest()


def sniff_image_type(data: bytes) -> str:
    """Return the content type of image bytes from an allowlist, else octet-stream."""
    for magic, mime in IMAGE_TYPES:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


def _image_step(sample: Sample) -> dict[str, Any]:
    return {
        "step": sample.step,
        "wall_time": sample.wall_time,
        "width": sample.value.width,
        "height": sample.value.height,
        "samples": len(sample.value.samples),
    }


def find_step(samples: tuple[Sample, ...], step: int) -> Sample | None:
    """Return the sample at ``step`` (samples are sorted by step), or None."""
    index = bisect.bisect_left([s.step for s in samples], step)
    if index < len(samples) and samples[index].step == step:
        return samples[index]
    return None


class DataProvider:
    """Answers questions about the runs of one logdir (or several named ones)."""

    def __init__(
        self,
        store: Store,
        logdir: str = "",
        io_stats: Callable[[], list[IOStats]] | None = None,
        progress: LoadProgress | None = None,
    ) -> None:
        self._store = store
        self.logdir = logdir
        self._io_stats = io_stats
        self._progress = progress

    def storage_stats(self) -> list[dict[str, Any]]:
        """Requests made and bytes read per logdir in an object store (empty when all local)."""
        return [s.as_dict() for s in self._io_stats()] if self._io_stats is not None else []

    # -- runs and status ------------------------------------------------------------
    @property
    def generation(self) -> int:
        """A counter that grows whenever the data changes."""
        return self._store.generation

    def wait_for_change(self, generation: int, timeout: float) -> int:
        """Block until the generation passes ``generation`` or ``timeout`` elapses."""
        return self._store.wait_for_change(generation, timeout)

    def status(self) -> dict[str, Any]:
        """How far reading the logdir is (see :class:`LoadProgress`), the generation, and what
        the object stores cost (:meth:`storage_stats`)."""
        done = LoadProgress()
        done.end()  # a provider without a reader (over a filled store) has nothing to load
        progress = (self._progress or done).as_dict()
        return {
            **progress,
            "runs": len(self._store.runs()),
            "generation": self.generation,
            "logdir": self.logdir,
            "storage": self.storage_stats(),
        }

    def runs(self) -> list[RunInfo]:
        """Every run, by start time (runs without one last), then name."""
        runs = [
            RunInfo(name, self._store.start_time(name), *self._store.restarts(name))
            for name in self._store.runs()
        ]
        runs.sort(key=lambda r: (r.start_time is None, r.start_time or 0.0, r.name))
        return runs

    def problems(self) -> list[Problem]:
        """What is wrong in the files read, as reported (never fatal)."""
        return self._store.problems()

    # -- tags and scalars -----------------------------------------------------------
    def tags(self, kind: Kind) -> dict[str, dict[str, TagInfo]]:
        """Return ``{run: {tag: TagInfo}}`` for one kind, runs sorted."""
        return self._store.tags(kind)

    def scalars(self, run: str, tag: str) -> ScalarColumns:
        """Every point of one scalar series."""
        return self._store.scalars(run, tag)

    def scalar_history(self, run: str, tag: str) -> ScalarHistory:
        """Every value ever written to a scalar series, with attempts and what was replaced."""
        return self._store.scalar_history(run, tag)

    def sample_history(self, run: str, kind: Kind, tag: str) -> list[tuple[int, bool, Sample]]:
        """``(attempt, overwritten, sample)`` for the kept values of a non-scalar series."""
        return self._store.sample_history(run, kind, tag)

    def iter_scalars(self) -> Iterator[tuple[str, str, ScalarColumns]]:
        """Yield ``(run, tag, columns)`` for every scalar series, sorted."""
        return self._store.iter_scalars()

    def scalar_view(
        self,
        tag: str,
        runs: list[str] | None = None,
        *,
        x_mode: str = "step",
        xmin: float | None = None,
        xmax: float | None = None,
        points: int = DEFAULT_POINTS,
        overwritten: bool = False,
    ) -> dict[str, Any]:
        """One tag's series for several runs (all that have it when ``runs`` is None).

        Each series is downsampled to about ``points`` points within ``[xmin, xmax]`` of the
        chosen x axis (min and max per bucket, non-finite values kept), and lists the steps
        where it began again (``restarts``). With ``overwritten``, each attempt that had
        values replaced comes too, whole, under ``earlier``. :class:`NotFound` when no run
        has the tag.
        """
        if x_mode not in X_MODES:
            raise ValueError(f"x must be one of {', '.join(X_MODES)}")
        by_run = self._store.tags(Kind.SCALARS)
        if not any(tag in tags for tags in by_run.values()):
            raise NotFound(f"no scalar tag {tag!r}")
        if runs is None:
            runs = [run for run, tags in by_run.items() if tag in tags]
        series = []
        for run in runs:
            try:
                cols = self._store.scalars(run, tag)
            except NotFound:
                continue
            view = self._downsampled(run, cols, x_mode, xmin, xmax, points)
            view["restarts"] = list(self._store.restart_steps(run, tag))
            view["version"] = _series_version(cols, view["restarts"])
            if overwritten:
                view["earlier"] = self._earlier(run, tag, x_mode, xmin, xmax, points)
            series.append(view)
        return {"tag": tag, "series": series}

    def scalar_versions(self, tag: str) -> dict[str, str]:
        """``{run: version}`` of one tag's series: a version changes whenever the series does."""
        versions = {}
        for run, tags in self._store.tags(Kind.SCALARS).items():
            if tag not in tags:
                continue
            try:
                cols = self._store.scalars(run, tag)
            except NotFound:
                continue
            versions[run] = _series_version(cols, self._store.restart_steps(run, tag))
        if not versions:
            raise NotFound(f"no scalar tag {tag!r}")
        return versions

    def _earlier(
        self,
        run: str,
        tag: str,
        x_mode: str,
        xmin: float | None,
        xmax: float | None,
        points: int,
    ) -> list[dict[str, Any]]:
        """Every attempt of a series that had values replaced, each whole and downsampled."""
        hist = self._store.scalar_history(run, tag)
        out = []
        for attempt in np.unique(hist.attempts[hist.overwritten]).tolist():
            mine = hist.attempts == attempt
            cols = ScalarColumns(hist.steps[mine], hist.wall_times[mine], hist.values[mine])
            view = self._downsampled(run, cols, x_mode, xmin, xmax, points)
            del view["run"]
            out.append({"attempt": attempt, **view})
        return out

    def _downsampled(
        self,
        run: str,
        cols: ScalarColumns,
        x_mode: str,
        xmin: float | None,
        xmax: float | None,
        points: int,
    ) -> dict[str, Any]:
        if x_mode == "step":
            x = cols.steps
        elif x_mode == "wall_time":
            x = cols.wall_times
        else:
            start = self._store.start_time(run)
            x = cols.wall_times - (start if start is not None else 0.0)
        # Wall times need not be sorted (clock changes): downsample by index then.
        if x_mode != "step" and len(x) > 1 and np.any(np.diff(x) < 0):
            idx = minmax_indices(np.arange(len(x), dtype=float), cols.values, None, None, points)
            in_range = len(x)
        else:
            idx = minmax_indices(x, cols.values, xmin, xmax, points)
            in_range = _count_in_range(x, xmin, xmax)
        return {
            "run": run,
            "total": len(cols),
            "count": len(idx),
            "downsampled": len(idx) < in_range,
            "steps": cols.steps[idx].tolist(),
            "wall_times": float_list(cols.wall_times[idx]),
            "values": float_list(cols.values[idx]),
        }

    # -- samples of the other kinds ---------------------------------------------------
    def samples(self, run: str, kind: Kind, tag: str) -> tuple[Sample, ...]:
        """The kept values of one non-scalar series, by step."""
        return self._store.samples(run, kind, tag)

    def sample_counts(self, run: str, kind: Kind, tag: str) -> tuple[int, int]:
        """``(kept, seen)`` for a non-scalar series."""
        return self._store.sample_counts(run, kind, tag)

    def image_steps(self, run: str, tag: str, *, overwritten: bool = False) -> dict[str, Any]:
        """The kept steps of an image tag with their sizes and sample counts.

        With ``overwritten``, the replaced steps too, under ``earlier``, with their attempt.
        """
        samples = self._store.samples(run, Kind.IMAGES, tag)
        kept, seen = self._store.sample_counts(run, Kind.IMAGES, tag)
        view: dict[str, Any] = {
            "run": run,
            "tag": tag,
            "kept": kept,
            "seen": seen,
            "steps": [_image_step(s) for s in samples],
        }
        if overwritten:
            view["earlier"] = [
                {"attempt": attempt, **_image_step(s)}
                for attempt, replaced, s in self._store.sample_history(run, Kind.IMAGES, tag)
                if replaced
            ]
        return view

    def image_blob(
        self, run: str, tag: str, step: int, sample: int = 0, *, attempt: int | None = None
    ) -> Blob:
        """The bytes of one image, never decoded here, with a sniffed content type.

        ``attempt`` picks a replaced image of an earlier attempt (see :meth:`image_steps`).
        """
        if attempt is None:
            item = find_step(self._store.samples(run, Kind.IMAGES, tag), step)
        else:
            history = self._store.sample_history(run, Kind.IMAGES, tag)
            found = [s for a, _, s in history if a == attempt and s.step == step]
            item = found[-1] if found else None
        if item is None or not 0 <= sample < len(item.value.samples):
            raise NotFound(f"no image at step {step}, sample {sample}")
        data = item.value.samples[sample]
        return Blob(data, sniff_image_type(data))

    def histogram_view(self, run: str, tag: str, bins: int = DISPLAY_BINS) -> dict[str, Any]:
        """Histograms re-binned to one common range, and distribution percentiles per step."""
        samples = self._store.samples(run, Kind.HISTOGRAMS, tag)
        cleaned = [clean_buckets(s.value) for s in samples]
        bounds = histogram_range(cleaned)
        low, high = bounds if bounds else (0.0, 0.0)
        if high > low:
            edges = np.linspace(low, high, bins + 1).tolist()
        else:
            edges = [low - 0.5, high + 0.5] if bounds else []
        counts = [float_list(rebin(h, low, high, bins)) if bounds else [] for h in cleaned]
        return {
            "run": run,
            "tag": tag,
            "min": low if bounds else None,
            "max": high if bounds else None,
            "edges": edges,
            "steps": [s.step for s in samples],
            "wall_times": [s.wall_time for s in samples],
            "counts": counts,
            "totals": [float(h[:, 2].sum()) for h in cleaned],
            "empty": [len(h) == 0 for h in cleaned],
            "basis_points": list(BASIS_POINTS),
            "percentiles": [float_list(np.array(percentiles(h))) for h in cleaned],
        }

    def text_view(
        self,
        run: str,
        tag: str,
        *,
        step: int | None = None,
        max_chars: int = DEFAULT_TEXT_CHARS,
        overwritten: bool = False,
    ) -> dict[str, Any]:
        """Text entries as sanitised HTML, newest last; one step in full when ``step`` is given.

        With ``overwritten``, every kept entry in write order, replaced ones too, each with
        its ``attempt`` and whether it is ``overwritten``.
        """
        if overwritten and step is None:
            entries = []
            for attempt, replaced, s in self._store.sample_history(run, Kind.TEXT, tag):
                html, truncated = text_to_html(s.value, max_chars)
                entries.append(
                    {
                        "step": s.step,
                        "wall_time": s.wall_time,
                        "html": html,
                        "truncated": truncated,
                        "attempt": attempt,
                        "overwritten": replaced,
                    }
                )
            return {"run": run, "tag": tag, "entries": entries}
        samples = self._store.samples(run, Kind.TEXT, tag)
        if step is not None:
            item = find_step(samples, step)
            if item is None:
                raise NotFound(f"no text at step {step}")
            samples = (item,)
        entries = []
        for s in samples:
            html, truncated = text_to_html(s.value, max_chars)
            entries.append(
                {"step": s.step, "wall_time": s.wall_time, "html": html, "truncated": truncated}
            )
        return {"run": run, "tag": tag, "entries": entries}

    def model_view(self, run: str, tag: str) -> dict[str, Any]:
        """The newest model summary of a run and tag, as a layer tree."""
        samples = self._store.samples(run, Kind.MODEL, tag)
        if not samples:
            raise NotFound(f"no model summary under tag {tag!r}")
        latest = samples[-1]
        try:
            view = model_tree(latest.value)
        except ValueError as exc:
            view = {"error": str(exc)}
        return {"run": run, "tag": tag, "step": latest.step, "model": view}

    # -- hyperparameters ---------------------------------------------------------------
    def _hparams_values(self, tag: str, kind: type) -> dict[str, Any]:
        """``{run: newest value}`` of one hparams tag, for the runs whose value is a ``kind``."""
        found = {}
        for run, tags in self._store.tags(Kind.HPARAMS).items():
            if tag not in tags:
                continue
            samples = self._store.samples(run, Kind.HPARAMS, tag)
            if samples and isinstance(samples[-1].value, kind):
                found[run] = samples[-1].value
        return found

    def sessions(self) -> list[Session]:
        """Every run that wrote hyperparameter values (``hp.hparams``, ``add_hparams``), by run.

        A run that wrote its start or end twice (a restart) has its newest one; TensorBoard
        keeps the first.
        """
        ends = self._hparams_values(SESSION_END_TAG, SessionEnd)
        starts = self._hparams_values(SESSION_START_TAG, SessionStart)
        return [make_session(run, start, ends.get(run)) for run, start in sorted(starts.items())]

    def hparams(self, run: str) -> dict[str, HParamValue]:
        """The hyperparameter values of one run (empty when it wrote none); NotFound if no run."""
        self._store.start_time(run)  # NotFound for an unknown run
        try:
            samples = self._store.samples(run, Kind.HPARAMS, SESSION_START_TAG)
        except NotFound:
            return {}
        start = samples[-1].value if samples else None
        return dict(start.hparams) if isinstance(start, SessionStart) else {}

    def hparams_by_run(self, *, sub_runs: bool = False) -> dict[str, dict[str, HParamValue]]:
        """``{run: {name: value}}`` for every run that wrote hyperparameter values.

        With ``sub_runs``, a run inside a session's directory (Keras's ``session/train``,
        ``session/validation``) has the values of the innermost session it is in, as
        TensorBoard's metrics do: what grouping runs by a hyperparameter wants.
        """
        starts = self._hparams_values(SESSION_START_TAG, SessionStart)
        values = {run: dict(start.hparams) for run, start in sorted(starts.items())}
        if not sub_runs:
            return values
        out = {}
        for name in self._store.runs():
            session = enclosing_session(set(values), name)
            if session is not None:
                out[name] = dict(values[session])
        return out

    def experiment(self, sessions: list[Session] | None = None) -> ExperimentConfig:
        """The experiment config as written (the top-most run's), else inferred as TensorBoard does.

        Empty (no hyperparameters, no metrics) when no run wrote any hparams data.
        """
        written = self._hparams_values(EXPERIMENT_TAG, ExperimentConfig)
        if written:
            return written[min(written, key=lambda run: (run != ".", run.count("/"), run))]
        scalar_tags = self._store.tags(Kind.SCALARS)
        return infer_experiment(self.sessions() if sessions is None else sessions, scalar_tags)

    def runs_table(self) -> dict[str, Any]:
        """Every run's scalar tags summed up, and its session's hyperparameters and metrics.

        ``rows`` has one entry per run: ``start_time``, ``duration`` (to its newest point; for
        a session that ended, from its start to its end),
        ``scalars`` (per tag: ``count``, ``first_step``, ``last_step``, ``last``, ``min``,
        ``max``) and, for a session, ``session`` (``group``, ``status``, ``end_time``),
        ``hparams`` and ``metrics`` (per metric key: ``last``, ``step``, ``best``,
        ``best_step``, best by the metric's ``goal``). ``hparams`` and ``metrics`` at the top
        describe the columns.
        """
        sessions = self.sessions()
        config = self.experiment(sessions)
        by_run = {s.run: s for s in sessions}
        metrics = [(m, metric_key(m), metric_goal(m.tag)) for m in config.metrics]
        rows = []
        scalar_tags = self._store.tags(Kind.SCALARS)
        for info in self.runs():
            scalars = {}
            last_wall = None
            for tag in sorted(scalar_tags.get(info.name, {})):
                cols = self._store.scalars(info.name, tag)
                summary = series_summary(cols.steps, cols.wall_times, cols.values)
                wall = summary.pop("last_wall_time", None)
                if wall is not None:
                    last_wall = wall if last_wall is None else max(last_wall, wall)
                scalars[tag] = summary
            row: dict[str, Any] = {
                "run": info.name,
                "start_time": info.start_time,
                "duration": (
                    last_wall - info.start_time
                    if last_wall is not None and info.start_time is not None
                    else None
                ),
                "scalars": scalars,
            }
            session = by_run.get(info.name)
            if session is not None:
                if session.end_time is not None and session.start_time > 0:
                    row["duration"] = session.end_time - session.start_time
                row["session"] = {
                    "group": session.group,
                    "status": session.status,
                    "start_time": session.start_time,
                    "end_time": session.end_time,
                }
                row["hparams"] = session.hparams
                row["metrics"] = {}
                for metric, key, goal in metrics:
                    try:
                        cols = self._store.scalars(metric_run(session.run, metric), metric.tag)
                    except NotFound:
                        continue
                    row["metrics"][key] = metric_summary(cols.steps, cols.values, goal)
            rows.append(row)
        return cleanse(
            {
                "hparams": [spec_view(spec) for spec in config.hparams],
                "metrics": [
                    {
                        "key": key,
                        "tag": m.tag,
                        "group": m.group,
                        "display_name": m.display_name,
                        "description": m.description,
                        "goal": goal,
                    }
                    for m, key, goal in metrics
                ],
                "rows": rows,
            }
        )

    def graph_view(self, run: str, tag: str, kind: Kind) -> dict[str, Any]:
        """The newest graph of a run and tag: a model's layer graph or an op graph.

        ``kind`` is :attr:`Kind.MODEL` (a Keras config or kboard summary) or :attr:`Kind.GRAPH`
        (a ``GraphDef``); a graph that cannot be drawn comes back as ``{"error": message}``.
        """
        latest = self._latest_graph(run, tag, kind)
        try:
            view = keras_graph(latest.value) if kind is Kind.MODEL else op_graph(latest.value)
        except ValueError as exc:
            view = {"error": str(exc)}
        return {"run": run, "tag": tag, "step": latest.step, "graph": view}

    def graph_version(self, run: str, tag: str, kind: Kind) -> str:
        """A token that changes whenever :meth:`graph_view` of the run and tag would (an ETag)."""
        latest = self._latest_graph(run, tag, kind)
        return f"{kind.value}-{latest.step}-{latest.wall_time!r}-{graph_digest(latest.value)}"

    def _latest_graph(self, run: str, tag: str, kind: Kind) -> Sample:
        if kind not in (Kind.MODEL, Kind.GRAPH):
            raise ValueError("kind must be model or graph")
        samples = self._store.samples(run, kind, tag)
        if not samples:
            raise NotFound(f"no graph under tag {tag!r}")
        return samples[-1]

    # -- run groups -------------------------------------------------------------------
    def group_key(self, group: str | None = None, group_by: Sequence[str] = ()) -> GroupKey:
        """The key of the grouping named by a regex (``group``) or hyperparameter names.

        ``group_by`` groups by the values of those hyperparameters (``lr=0.1``; a Keras
        session's ``train``/``validation`` runs apart, ``lr=0.1/train``); runs without them
        stay alone. A run laid out as torch's ``add_hparams`` writes it (its session in a
        sub-directory) takes its session's values; that session is keyed ``lr=0.1/hparams``.
        ``ValueError`` when both or neither is given, the regex is bad, or no run has one of
        the hyperparameters.
        """
        check_grouping(group, group_by)
        if group:
            return regex_key(group)
        values = self.hparams_by_run(sub_runs=True)
        known = {name for run_values in values.values() for name in run_values}
        for name in group_by:
            if name not in known:
                have = ", ".join(sorted(known)) or "none"
                raise ValueError(f"no run has the hyperparameter {name!r} (runs have: {have})")
        sessions = self.hparams_by_run()
        parents = add_hparams_parents(self._store.runs(), sessions)
        return hparam_group_key(values, group_by, sessions=sessions, parents=parents)

    def run_groups(self, key_of_run: GroupKey, runs: Sequence[str] | None = None) -> RunGroups:
        """``runs`` (every run, by start time, when None) grouped by ``key_of_run``."""
        names = [r.name for r in self.runs()] if runs is None else runs
        return group_by_key(names, key_of_run)

    def group_scalars(
        self, tag: str, members: Sequence[str], *, smoothing: float = 0.0
    ) -> GroupStats:
        """One tag's per-step statistics across ``members`` (see :func:`kboard.groups.aggregate`).

        Members without the tag take no part.
        """
        series = []
        for run in members:
            try:
                cols = self._store.scalars(run, tag)
            except NotFound:
                continue
            series.append((cols.steps, cols.values))
        return aggregate(series, smoothing)

    def iter_group_scalars(
        self,
        key_of_run: GroupKey,
        runs: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        *,
        smoothing: float = 0.0,
    ) -> Iterator[tuple[str, str, tuple[str, ...], GroupStats]]:
        """Yield ``(group, tag, members with the tag, stats)``, groups and tags sorted.

        ``runs`` limits the runs grouped, ``tags`` the scalar tags (every one when None).
        """
        by_run = self._store.tags(Kind.SCALARS)
        wanted = None if tags is None else set(tags)
        for group, members in self.run_groups(key_of_run, runs).groups.items():
            group_tags = sorted({t for run in members for t in by_run.get(run, {})})
            for tag in group_tags:
                if wanted is not None and tag not in wanted:
                    continue
                having = tuple(run for run in members if tag in by_run.get(run, {}))
                yield group, tag, having, self.group_scalars(tag, having, smoothing=smoothing)

    def group_view(
        self,
        tag: str,
        key_of_run: GroupKey,
        runs: Sequence[str] | None = None,
        *,
        smoothing: float = 0.0,
        xmin: float | None = None,
        xmax: float | None = None,
        points: int = DEFAULT_POINTS,
    ) -> dict[str, Any]:
        """One tag's statistics per group of ``runs`` (all that have it when None), for a chart.

        Each group's steps are downsampled to about ``points`` within ``[xmin, xmax]`` (by its
        mean's min and max per bucket); ``count`` is how many members had a value at each
        step. Runs with the tag that no group takes are listed ``alone``. :class:`NotFound`
        when no run has the tag.
        """
        by_run = self._store.tags(Kind.SCALARS)
        if not any(tag in tags for tags in by_run.values()):
            raise NotFound(f"no scalar tag {tag!r}")
        having = [
            run
            for run in ([r.name for r in self.runs()] if runs is None else runs)
            if tag in by_run.get(run, {})
        ]
        grouping = group_by_key(having, key_of_run)
        groups = []
        for group, members in grouping.groups.items():
            stats = self.group_scalars(tag, members, smoothing=smoothing)
            x = stats.steps.astype(np.float64)
            idx = minmax_indices(x, stats.mean, xmin, xmax, points)
            view: dict[str, Any] = {
                "group": group,
                "members": list(members),
                "total": len(stats),
                "downsampled": len(idx) < _count_in_range(x, xmin, xmax),
                "steps": stats.steps[idx].tolist(),
                "count": stats.count[idx].tolist(),
            }
            for name in STAT_NAMES:
                view[name] = float_list(getattr(stats, name)[idx])
            groups.append(view)
        return {"tag": tag, "smoothing": smoothing, "groups": groups, "alone": list(grouping.alone)}


def load_logdir(
    logdir: str | Mapping[str, str],
    *,
    cache: RunCache | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> DataProvider:
    """Read a logdir (one path or URL, or ``{name: path}``) once and answer questions about it.

    ``FileNotFoundError`` when a local logdir does not exist, ``NotADirectoryError`` when it
    is a file; a URL is read with fsspec and ``storage_options`` (its faults are problems).
    """
    reader = LogdirReader(logdir, cache=cache, storage_options=storage_options)
    missing = reader.missing_roots()
    if missing:
        raise FileNotFoundError(f"logdir not found: {', '.join(missing)}")
    files = reader.file_roots()
    if files:
        raise NotADirectoryError(not_a_directory(files[0]))
    reader.reload()
    return DataProvider(reader.store, logdir_label(reader.roots), reader.io_stats)


def not_a_directory(path: str) -> str:
    """Say that a logdir is a file, and which directory was probably meant."""
    parent = os.path.dirname(os.path.abspath(path))
    return (
        f"logdir {path} is a file, not a directory: a logdir is the directory that holds "
        f"runs (directories of event files); did you mean --logdir {parent}?"
    )


def _series_version(cols: ScalarColumns, restarts: Sequence[int]) -> str:
    """A short token that changes when a series does: it only grows, is cut, or is rewritten
    at its last step (a later wall time)."""
    if not len(cols):
        return "0"
    return f"{len(cols)}:{float(cols.wall_times[-1])!r}:{float(cols.values[-1])!r}:{len(restarts)}"


def _count_in_range(x: np.ndarray, xmin: float | None, xmax: float | None) -> int:
    lo = 0 if xmin is None else int(np.searchsorted(x, xmin, side="left"))
    hi = len(x) if xmax is None else int(np.searchsorted(x, xmax, side="right"))
    return max(hi - lo, 0)
