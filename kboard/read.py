"""Read logs into pandas DataFrames, with the same reader and numbers as the server."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from kboard.export import GROUP_HEADER, Selection, selected_groups, selected_scalars
from kboard.provider import DataProvider, hparam_names, load_logdir
from kboard.tfevents.events import Kind

if TYPE_CHECKING:
    import pandas as pd


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise ImportError(
            'kboard.read_* return pandas DataFrames: pip install "kboard[pandas]"'
        ) from None
    return pandas


def read_scalars(
    logdir: str,
    runs: str | None = None,
    tags: str | None = None,
    *,
    pivot: bool = False,
    overwritten: bool = False,
    group: str | None = None,
    smoothing: float = 0.0,
    group_by: str | Sequence[str] | None = None,
    storage_options: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Every scalar point as a long DataFrame (``run, tag, step, wall_time, value``).

    ``runs`` and ``tags`` are regular expressions searched in the names. ``pivot=True`` gives
    the wide layout: one row per step, a column per ``run/tag``. ``overwritten=True`` gives
    every value ever written, replaced ones too, with two more columns: ``attempt`` (0, 1, ...
    in write order) and ``overwritten`` (True where the default view no longer shows it).
    ``group=REGEX`` groups runs by the regex's capture groups (runs it does not match are left
    out) and gives per group, tag and step ``group, tag, step, mean, median, std, min, max,
    count`` as ``kboard export --group`` does, each member smoothed by ``smoothing`` first.
    ``group_by=["lr"]`` (or ``"lr,batch"``) groups runs by those hyperparameters' values
    instead (groups named ``lr=0.1``; runs without them are left out), as ``--group-by``.
    ``logdir`` may be an fsspec URL (``s3://bucket/logs``), read with ``storage_options``.
    """
    pd = _pandas()
    names = hparam_names(group_by)
    if group is not None or group_by is not None:
        if pivot or overwritten:
            raise ValueError("group needs the long layout, without overwritten values")
        sel = Selection(runs, tags, group=group, smoothing=smoothing, group_by=names)
        if not sel.grouped:
            raise ValueError("group_by names no hyperparameter")
        data = load_logdir(logdir, storage_options=storage_options)
        return _group_frame(pd, data, sel)
    if overwritten and pivot:
        raise ValueError("overwritten values need the long layout (pivot=False)")
    data = load_logdir(logdir, storage_options=storage_options)
    series = selected_scalars(data, Selection(runs, tags))
    if pivot:
        columns = {
            f"{run}/{tag}": pd.Series(
                cols.values.astype(np.float64),  # as in the long layout (stored maybe float32)
                index=pd.Index(cols.steps.astype(np.int64), name="step"),
            )
            for run, tag, cols in series
        }
        return pd.DataFrame(columns) if columns else pd.DataFrame(index=pd.Index([], name="step"))
    if overwritten:
        series = [(run, tag, data.scalar_history(run, tag)) for run, tag, _ in series]
    lengths = [len(cols) for _, _, cols in series]
    frame = {
        "run": np.repeat([run for run, _, _ in series], lengths).astype(object),
        "tag": np.repeat([tag for _, tag, _ in series], lengths).astype(object),
        "step": _concat([cols.steps for _, _, cols in series], np.int64),
        "wall_time": _concat([cols.wall_times for _, _, cols in series], np.float64),
        "value": _concat([cols.values for _, _, cols in series], np.float64),
    }
    if overwritten:
        frame["attempt"] = _concat([h.attempts for _, _, h in series], np.int64)
        frame["overwritten"] = _concat([h.overwritten for _, _, h in series], np.bool_)
    return pd.DataFrame(frame)


def _group_frame(pd: Any, data: DataProvider, sel: Selection) -> pd.DataFrame:
    """The per-group statistics of ``sel`` as a long DataFrame (GROUP_HEADER's columns)."""
    parts = list(selected_groups(data, sel))
    lengths = [len(stats) for _, _, _, stats in parts]
    frame = {
        "group": np.repeat([g for g, _, _, _ in parts], lengths).astype(object),
        "tag": np.repeat([t for _, t, _, _ in parts], lengths).astype(object),
        "step": _concat([s.steps for *_, s in parts], np.int64),
    }
    for name in GROUP_HEADER[3:-1]:
        frame[name] = _concat([getattr(s, name) for *_, s in parts], np.float64)
    frame["count"] = _concat([s.count for *_, s in parts], np.int64)
    return pd.DataFrame(frame)


def read_histograms(
    logdir: str,
    runs: str | None = None,
    tags: str | None = None,
    *,
    storage_options: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Every kept histogram bucket: ``run, tag, step, wall_time, left, right, count``."""
    pd = _pandas()
    data = load_logdir(logdir, storage_options=storage_options)
    sel = Selection(runs, tags, kind="histograms")
    rows: list[tuple[Any, ...]] = []
    for run, by_tag in data.tags(Kind.HISTOGRAMS).items():
        for tag in sorted(by_tag):
            if not sel.matches(run, tag):
                continue
            for s in data.samples(run, Kind.HISTOGRAMS, tag):
                rows.extend((run, tag, s.step, s.wall_time, *b) for b in s.value.tolist())
    return pd.DataFrame(rows, columns=["run", "tag", "step", "wall_time", "left", "right", "count"])


def read_images(
    logdir: str,
    runs: str | None = None,
    tags: str | None = None,
    *,
    storage_options: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Every kept image: ``run, tag, step, wall_time, sample, width, height, data`` (bytes)."""
    pd = _pandas()
    data = load_logdir(logdir, storage_options=storage_options)
    sel = Selection(runs, tags)
    rows: list[tuple[Any, ...]] = []
    for run, by_tag in data.tags(Kind.IMAGES).items():
        for tag in sorted(by_tag):
            if not sel.matches(run, tag):
                continue
            for s in data.samples(run, Kind.IMAGES, tag):
                rows.extend(
                    (run, tag, s.step, s.wall_time, i, s.value.width, s.value.height, data)
                    for i, data in enumerate(s.value.samples)
                )
    return pd.DataFrame(
        rows, columns=["run", "tag", "step", "wall_time", "sample", "width", "height", "data"]
    )


def _concat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.empty(0, dtype)
