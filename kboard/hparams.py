"""Hyperparameter experiments from normalised hparams data, as TensorBoard's plugin sees them.

The provider hands these functions what it read (each session's start and end, every run's
scalar tags); they answer with the experiment (written, or inferred as TensorBoard infers
it), sessions, and the per-series summaries of the runs table. No store, no HTTP here.
"""

from __future__ import annotations

import math
import os
import posixpath
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from kboard.tfevents.events import (
    ExperimentConfig,
    HParamSpec,
    HParamValue,
    MetricSpec,
    SessionEnd,
    SessionStart,
)

EXPERIMENT_TAG = "_hparams_/experiment"
SESSION_START_TAG = "_hparams_/session_start_info"
SESSION_END_TAG = "_hparams_/session_end_info"

# Metrics whose name holds one of these are better when larger; every other one when smaller.
_LARGER_IS_BETTER = (
    "acc", "auc", "precision", "recall", "f1", "iou", "score", "reward", "return", "bleu",
    "rouge", "psnr", "ssim", "map", "r2", "dice", "top",
)  # fmt: skip


@dataclass(frozen=True)
class Session:
    """One run that wrote hyperparameter values: a session of TensorBoard's hparams plugin.

    ``group`` is the session group (the ``trial_id``; the run name when none was written).
    ``status`` is one of ``unknown``, ``success``, ``failure``, ``running``; ``end_time``
    is None when no end was written.
    """

    run: str
    hparams: dict[str, HParamValue]
    group: str
    start_time: float
    end_time: float | None
    status: str
    model_uri: str = ""
    monitor_url: str = ""


def make_session(run: str, start: SessionStart, end: SessionEnd | None) -> Session:
    """A session from its start (and end) info."""
    return Session(
        run,
        dict(start.hparams),
        start.group_name or run,
        start.start_time,
        end.end_time if end is not None else None,
        end.status if end is not None else "unknown",
        start.model_uri,
        start.monitor_url,
    )


def metric_run(session_run: str, metric: MetricSpec) -> str:
    """The run that holds a session's metric, joined as TensorBoard joins them."""
    run = os.path.join(session_run, metric.group)
    return run[:-1] if run.endswith("/") else run


def metric_key(metric: MetricSpec) -> str:
    """A metric's column name: ``group/tag``, or the tag alone."""
    return f"{metric.group}/{metric.tag}" if metric.group else metric.tag


def metric_goal(tag: str) -> str:
    """``max`` when a metric of this name is better larger (accuracy, AUC...), else ``min``."""
    name = tag.lower().rsplit("/", 1)[-1]
    return "max" if any(word in name for word in _LARGER_IS_BETTER) else "min"


def infer_experiment(
    sessions: Iterable[Session], scalar_tags: Mapping[str, Iterable[str]]
) -> ExperimentConfig:
    """The experiment TensorBoard infers when none was written.

    Each hyperparameter's type is its values' common type (string when they differ); its
    domain the distinct strings or bools, or the numbers' interval. The metrics are the
    scalar tags of the session runs and of their sub-runs (the group), sorted.
    """
    sessions = list(sessions)
    values: dict[str, list[HParamValue]] = {}
    for session in sessions:
        for name, value in session.hparams.items():
            values.setdefault(name, []).append(value)
    specs = [_infer_hparam(name, found) for name, found in values.items()]
    if not specs:
        return ExperimentConfig()
    session_runs = {s.run for s in sessions}
    names = set()
    for run, tags in scalar_tags.items():
        session = enclosing_session(session_runs, run)
        if session is None:
            continue
        group = posixpath.relpath(run, session)
        if group == "." and not run.endswith("."):
            group = ""
        names.update((tag, group) for tag in tags)
    metrics = tuple(MetricSpec(tag, group) for tag, group in sorted(names))
    return ExperimentConfig(tuple(sorted(specs, key=lambda s: s.name)), metrics)


def _value_type(value: HParamValue) -> str:
    if isinstance(value, bool):
        return "bool"
    return "string" if isinstance(value, str) else "float"


def _infer_hparam(name: str, values: list[HParamValue]) -> HParamSpec:
    types = {_value_type(v) for v in values}
    kind = types.pop() if len(types) == 1 else "string"
    if kind == "string":
        strings = sorted({_as_string(v) for v in values if not _non_finite(v)})
        return HParamSpec(name, type="string", discrete=tuple(strings), differs=len(strings) > 1)
    if kind == "bool":
        bools = sorted(set(values))
        return HParamSpec(name, type="bool", discrete=tuple(bools), differs=len(bools) > 1)
    numbers = sorted(float(v) for v in values)
    interval = (numbers[0], numbers[-1])
    return HParamSpec(name, type="float", interval=interval, differs=len(set(numbers)) > 1)


def _non_finite(value: HParamValue) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


def _as_string(value: HParamValue) -> str:
    """A value as TensorBoard prints it in a string domain (JSON for numbers and bools)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(int(value)) if value.is_integer() and abs(value) < 1e16 else repr(value)
    return value


def enclosing_session(runs: set[str], run: str) -> str | None:
    """The longest of ``runs`` that is ``run`` or a directory above it (None when none is)."""
    path = run
    while path not in runs:
        if not path:
            return None
        path = posixpath.dirname(path)
    return path


def series_summary(steps: np.ndarray, wall_times: np.ndarray, values: np.ndarray) -> dict:
    """One scalar series in the runs table: its last, min and max values, points and steps."""
    if len(steps) == 0:
        return {"count": 0}
    finite = values[np.isfinite(values)]
    return {
        "count": len(steps),
        "first_step": int(steps[0]),
        "last_step": int(steps[-1]),
        "last": float(values[-1]),
        "min": float(finite.min()) if len(finite) else math.nan,
        "max": float(finite.max()) if len(finite) else math.nan,
        "last_wall_time": float(wall_times.max()),
    }


def metric_summary(steps: np.ndarray, values: np.ndarray, goal: str) -> dict[str, Any]:
    """A session's metric: its last value and step, and its best (by ``goal``) and step."""
    if len(steps) == 0:
        return {}
    out: dict[str, Any] = {"last": float(values[-1]), "step": int(steps[-1])}
    finite = np.flatnonzero(np.isfinite(values))
    if len(finite):
        pick = np.argmax if goal == "max" else np.argmin
        best = finite[pick(values[finite])]
        out.update(best=float(values[best]), best_step=int(steps[best]))
    else:
        out.update(best=math.nan, best_step=None)
    return out


def spec_view(spec: HParamSpec) -> dict[str, Any]:
    """A hyperparameter's description for the page (JSON-ready)."""
    view: dict[str, Any] = {
        "name": spec.name,
        "display_name": spec.display_name,
        "description": spec.description,
        "type": spec.type,
    }
    if spec.interval is not None:
        view["interval"] = list(spec.interval)
    if spec.discrete is not None:
        view["discrete"] = list(spec.discrete)
    return view


ADD_HPARAMS_SUFFIX = "/hparams"


def add_hparams_parents(runs: Iterable[str], sessions: Collection[str]) -> dict[str, str]:
    """``{run: session}`` for the layout of torch's ``add_hparams``: a run that wrote no
    hyperparameters and whose one session is in a directory just below it (the curves in the
    run, the session and its final metrics in ``run/<time>``)."""
    names, session_runs = set(runs), set(sessions)
    children: dict[str, list[str]] = {}
    for session in session_runs:
        parent = posixpath.dirname(session) or "."
        if parent != session and parent in names and parent not in session_runs:
            children.setdefault(parent, []).append(session)
    return {parent: found[0] for parent, found in children.items() if len(found) == 1}


def hparam_group_key(
    values_by_run: Mapping[str, Mapping[str, HParamValue]],
    names: Iterable[str],
    separator: str = ",",
    sessions: Collection[str] = (),
    parents: Mapping[str, str] | None = None,
) -> Callable[[str], str | None]:
    """A run's group key from its values of ``names`` (``lr=0.1,opt=adam``); None without them.

    ``values_by_run`` is :meth:`DataProvider.hparams_by_run` (``sub_runs=True`` to group
    Keras's ``train``/``validation`` runs with their session). A run below one of
    ``sessions`` has its path below it added (``lr=0.1/train``): the seeds' ``train`` runs
    form one group, their ``validation`` runs another. ``parents`` (from
    :func:`add_hparams_parents`) gives a run its ``add_hparams`` session's values, and keys
    that session apart (``lr=0.1/hparams``: the final metrics, not the curves).
    """
    names = list(names)
    session_runs = set(sessions)
    parents = dict(parents or {})
    children = set(parents.values())

    def key_of_run(run: str) -> str | None:
        values = values_by_run.get(parents.get(run, run))
        if values is None or any(name not in values for name in names):
            return None
        key = separator.join(f"{name}={_as_string(values[name])}" for name in names)
        session = enclosing_session(session_runs, run) if session_runs else None
        if session is not None and session != run:
            key += "/" + posixpath.relpath(run, session)
        if run in children:
            key += ADD_HPARAMS_SUFFIX
        return key

    return key_of_run
