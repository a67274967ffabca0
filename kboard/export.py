"""Export of stored series, every point, as CSV or JSON, streamed in chunks.

Layouts: ``long`` (one row per point: ``run,tag,step,wall_time,value``) and ``wide`` (one row
per step, a column per ``run/tag``). Histograms export one row per bucket. Grouped runs
(``Selection.group``, a regex, or ``Selection.group_by``, hyperparameter names) export one
row per group, tag and step of the union of the members' steps:
``group,tag,step,mean,median,std,min,max,count`` (see :mod:`kboard.groups`). Numbers are
written in their shortest exact form; non-finite values as ``nan``, ``inf`` and ``-inf``
(JSON strings in JSON). Text cells that a spreadsheet would run as a formula (starting with
``=``, ``+``, ``-``, ``@``, tab or carriage return) are prefixed with ``'``; numbers are
never altered. The same functions serve the CLI, the HTTP API and the page, so the bytes are
the same.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TextIO

import numpy as np

from kboard.provider import (
    DataProvider,
    GroupStats,
    Sample,
    ScalarColumns,
    ScalarHistory,
    check_grouping,
)
from kboard.tfevents.events import Kind

SCALAR_HEADER = ("run", "tag", "step", "wall_time", "value")
HISTOGRAM_HEADER = ("run", "tag", "step", "wall_time", "left", "right", "count")
GROUP_HEADER = ("group", "tag", "step", "mean", "median", "std", "min", "max", "count")
# With overwritten values: the attempt (0, 1, ... in write order) and whether the default
# view (the latest value at each step, from the last rewind on) no longer shows the value.
HISTORY_COLUMNS = ("attempt", "overwritten")
FORMATS = ("csv", "json")
LAYOUTS = ("long", "wide")
KINDS = ("scalars", "histograms")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_CSV_SPECIAL = re.compile(r'[",\r\n]')
CHUNK_ROWS = 20_000


def format_number(value: float) -> str:
    """Format a float: shortest exact form, ``nan``/``inf``/``-inf`` when not finite."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(float(value))


def safe_text(text: str) -> str:
    """Neutralise a text cell that a spreadsheet would evaluate as a formula."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_cell(text: str) -> str:
    """Quote a text cell per RFC 4180 when it needs it, after formula neutralising."""
    text = safe_text(text)
    if _CSV_SPECIAL.search(text):
        return '"' + text.replace('"', '""') + '"'
    return text


@dataclass(frozen=True)
class Selection:
    """Which series to export: regular expressions searched in run and tag names."""

    runs: str | None = None
    tags: str | None = None
    kind: str = "scalars"
    overwritten: bool = False  # every value ever written, with attempt and overwritten columns
    group: str | None = None  # group runs by this regex's capture groups: per-group statistics
    smoothing: float = 0.0  # when grouped: each member smoothed so before aggregation
    group_by: tuple[str, ...] = ()  # or group runs by these hyperparameters' values

    @property
    def grouped(self) -> bool:
        """Whether runs are grouped (by ``group`` or ``group_by``): per-group statistics."""
        return self.group is not None or bool(self.group_by)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        if self.grouped:
            check_grouping(self.group, self.group_by)  # ValueError when bad or both
            if self.kind != "scalars" or self.overwritten:
                raise ValueError("grouped runs export scalars only, without overwritten values")
        if not 0.0 <= self.smoothing < 1.0:
            raise ValueError("smoothing must be at least 0 and below 1")
        for pattern in (self.runs, self.tags):
            if pattern:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ValueError(f"bad regular expression {pattern!r}: {exc}") from None

    def matches(self, run: str, tag: str) -> bool:
        return bool(
            (not self.runs or re.search(self.runs, run))
            and (not self.tags or re.search(self.tags, tag))
        )


def selected_scalars(data: DataProvider, sel: Selection) -> list[tuple[str, str, ScalarColumns]]:
    return [(r, t, c) for r, t, c in data.iter_scalars() if sel.matches(r, t)]


def selected_groups(
    data: DataProvider, sel: Selection
) -> Iterator[tuple[str, str, tuple[str, ...], GroupStats]]:
    """``(group, tag, members, stats)`` of ``sel``'s grouping over the runs and tags it picks."""
    key_of_run = data.group_key(sel.group, sel.group_by)  # ValueError when bad
    names = [r.name for r in data.runs() if not sel.runs or re.search(sel.runs, r.name)]
    by_run = data.tags(Kind.SCALARS)
    tags = {t for run in names for t in by_run.get(run, {})}
    return data.iter_group_scalars(
        key_of_run,
        names,
        [t for t in tags if not sel.tags or re.search(sel.tags, t)],
        smoothing=sel.smoothing,
    )


def count_points(data: DataProvider, sel: Selection) -> int:
    """How many rows a long export of ``sel`` has (for progress bars; points read, grouped)."""
    if sel.grouped:
        key_of_run = data.group_key(sel.group, sel.group_by)
        return sum(len(c) for r, _, c in selected_scalars(data, sel) if key_of_run(r) is not None)
    if sel.kind == "scalars":
        return sum(len(c) for _, _, c, _ in _scalar_series(data, sel))
    return sum(len(sample.value) for _, _, sample, _ in _histogram_items(data, sel))


def _scalar_series(
    data: DataProvider, sel: Selection
) -> Iterator[tuple[str, str, ScalarColumns | ScalarHistory, list[np.ndarray]]]:
    """``(run, tag, columns, extra columns)``: the view, or with ``sel.overwritten`` every
    value ever written with its attempt and overwritten flag."""
    for run, tag, cols in selected_scalars(data, sel):
        if not sel.overwritten:
            yield run, tag, cols, []
            continue
        hist = data.scalar_history(run, tag)
        yield run, tag, hist, [hist.attempts, hist.overwritten]


def _histogram_items(
    data: DataProvider, sel: Selection
) -> Iterator[tuple[str, str, Sample, list[str]]]:
    """``(run, tag, sample, extra cells)`` of every histogram to export (see _scalar_series)."""
    for run, tag in _histogram_series(data, sel):
        if not sel.overwritten:
            for sample in data.samples(run, Kind.HISTOGRAMS, tag):
                yield run, tag, sample, []
            continue
        for attempt, replaced, sample in data.sample_history(run, Kind.HISTOGRAMS, tag):
            yield run, tag, sample, [str(attempt), _flag_cell(replaced)]


def _flag_cell(value: bool) -> str:
    return "true" if value else "false"


def _histogram_series(data: DataProvider, sel: Selection) -> list[tuple[str, str]]:
    return [
        (run, tag)
        for run, tags in data.tags(Kind.HISTOGRAMS).items()
        for tag in sorted(tags)
        if sel.matches(run, tag)
    ]


def _numbers(values: np.ndarray) -> list[str]:
    if np.isfinite(values).all():
        return [repr(v) for v in values.tolist()]
    return [format_number(v) for v in values.tolist()]


# -- rows -----------------------------------------------------------------------------
# A table is a header (column names) then chunks of rows. Cells are text already formatted:
# numbers as format_number writes them, "" for a missing value; the ``run`` and ``tag``
# columns hold raw names, which each serialiser escapes its own way.
Rows = Iterator[list[list[str]]]
TEXT_COLUMNS = ("run", "tag", "group")


def table(
    data: DataProvider,
    sel: Selection,
    layout: str = "long",
    progress: Callable[[int], None] | None = None,
) -> tuple[list[str], Rows]:
    """Return the header and the row chunks of an export."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}")
    extra = list(HISTORY_COLUMNS) if sel.overwritten else []
    if sel.overwritten and layout != "long":
        raise ValueError("overwritten values need the long layout (a row per value)")
    if sel.grouped:
        if layout != "long":
            raise ValueError("grouped runs need the long layout (a row per group, tag and step)")
        # The grouping is checked here (a hyperparameter no run has), before any row.
        return list(GROUP_HEADER), _group_rows(data, selected_groups(data, sel), progress)
    if sel.kind == "histograms":
        return [*HISTOGRAM_HEADER, *extra], _histogram_rows(data, sel, progress)
    if layout == "wide":
        series = selected_scalars(data, sel)
        header = ["step"] + [f"{run}/{tag}" for run, tag, _ in series]
        return header, _wide_rows(series, progress)
    return [*SCALAR_HEADER, *extra], _long_rows(data, sel, progress)


def _long_rows(data: DataProvider, sel: Selection, progress: Callable[[int], None] | None) -> Rows:
    for run, tag, cols, extra in _scalar_series(data, sel):
        for start in range(0, len(cols), CHUNK_ROWS):
            sl = slice(start, start + CHUNK_ROWS)
            steps = [str(s) for s in cols.steps[sl].tolist()]
            walls, values = _numbers(cols.wall_times[sl]), _numbers(cols.values[sl])
            if extra:  # attempt, overwritten
                attempts = [str(a) for a in extra[0][sl].tolist()]
                flags = [_flag_cell(o) for o in extra[1][sl].tolist()]
                yield [
                    [run, tag, s, w, v, a, o]
                    for s, w, v, a, o in zip(steps, walls, values, attempts, flags)
                ]
            else:
                yield [[run, tag, s, w, v] for s, w, v in zip(steps, walls, values)]
            if progress:
                progress(len(steps))


def _group_rows(
    data: DataProvider,
    groups: Iterator[tuple[str, str, tuple[str, ...], GroupStats]],
    progress: Callable[[int], None] | None,
) -> Rows:
    for group, tag, members, stats in groups:
        for start in range(0, len(stats), CHUNK_ROWS):
            sl = slice(start, start + CHUNK_ROWS)
            steps = [str(s) for s in stats.steps[sl].tolist()]
            numbers = [_numbers(getattr(stats, name)[sl]) for name in GROUP_HEADER[3:-1]]
            counts = [str(c) for c in stats.count[sl].tolist()]
            yield [[group, tag, s, *cells, c] for s, *cells, c in zip(steps, *numbers, counts)]
        if progress:
            progress(sum(len(data.scalars(run, tag)) for run in members))


def _wide_rows(
    series: list[tuple[str, str, ScalarColumns]], progress: Callable[[int], None] | None
) -> Rows:
    if not series:
        return
    steps = np.unique(np.concatenate([c.steps for _, _, c in series]))
    for start in range(0, len(steps), CHUNK_ROWS):
        chunk = steps[start : start + CHUNK_ROWS]
        columns = [[str(s) for s in chunk.tolist()]]
        for _, _, cols in series:
            if not len(cols):
                columns.append([""] * len(chunk))
                continue
            idx = np.minimum(np.searchsorted(cols.steps, chunk), len(cols) - 1)
            present = (cols.steps[idx] == chunk).tolist()
            text = _numbers(cols.values[idx])
            columns.append([t if p else "" for t, p in zip(text, present)])
            if progress:
                progress(sum(present))
        yield [list(row) for row in zip(*columns)]


def _histogram_rows(
    data: DataProvider, sel: Selection, progress: Callable[[int], None] | None
) -> Rows:
    for run, tag, sample, tail in _histogram_items(data, sel):
        head = [run, tag, str(sample.step), format_number(sample.wall_time)]
        buckets = sample.value.reshape(-1, 3)
        cells = [_numbers(buckets[:, i]) for i in range(3)]
        yield [[*head, a, b, c, *tail] for a, b, c in zip(*cells)]
        if progress:
            progress(len(buckets))


# -- serialisers ------------------------------------------------------------------------
def csv_chunks(
    data: DataProvider,
    sel: Selection,
    layout: str = "long",
    progress: Callable[[int], None] | None = None,
) -> Iterator[str]:
    """Yield an export as RFC 4180 CSV text (CRLF line ends), in chunks."""
    return _csv_text(*table(data, sel, layout, progress))


def _csv_text(header: list[str], chunks: Rows) -> Iterator[str]:
    yield ",".join(csv_cell(h) for h in header) + "\r\n"
    text_at = [i for i, name in enumerate(header) if name in TEXT_COLUMNS]
    cell = functools.lru_cache(maxsize=1024)(csv_cell)
    for rows in chunks:
        for row in rows:
            for i in text_at:
                row[i] = cell(row[i])
        yield "".join(",".join(row) + "\r\n" for row in rows)


def _json_value(text: str) -> str:
    if text == "":
        return "null"
    return f'"{text}"' if text in ("nan", "inf", "-inf") else text


def json_chunks(
    data: DataProvider,
    sel: Selection,
    layout: str = "long",
    progress: Callable[[int], None] | None = None,
) -> Iterator[str]:
    """Yield an export as a JSON array of row objects (non-finite values as strings)."""
    return _json_text(*table(data, sel, layout, progress))


def _json_text(header: list[str], chunks: Rows) -> Iterator[str]:
    keys = [json.dumps(h, ensure_ascii=False) + ":" for h in header]
    text_at = {i for i, name in enumerate(header) if name in TEXT_COLUMNS}
    name = functools.lru_cache(maxsize=1024)(lambda t: json.dumps(t, ensure_ascii=False))
    first = True
    yield "["
    for rows in chunks:
        parts = []
        for row in rows:
            fields = ",".join(
                k + (name(v) if i in text_at else _json_value(v))
                for i, (k, v) in enumerate(zip(keys, row))
            )
            parts.append(("\n{" if first else ",\n{") + fields + "}")
            first = False
        yield "".join(parts)
    yield "\n]\n"


def write_export(
    data: DataProvider,
    out: TextIO,
    sel: Selection,
    *,
    fmt: str = "csv",
    layout: str = "long",
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write a whole export to a text stream; return the number of rows written."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    header, chunks = table(data, sel, layout, progress)
    rows = 0

    def counted() -> Rows:
        nonlocal rows
        for chunk in chunks:
            rows += len(chunk)
            yield chunk

    for text in (_json_text if fmt == "json" else _csv_text)(header, counted()):
        out.write(text)
    return rows


RUN_STAT_COLUMNS = ("count", "first_step", "last_step", "last", "min", "max")
METRIC_COLUMNS = ("last", "best", "best_step")


def runs_table_rows(table: dict) -> tuple[list[str], list[list[object]]]:
    """The provider's runs table flattened: one row per run, one column per value.

    Columns: ``run``, ``start_time``, ``duration``, ``group``, ``status``, ``hp/<name>`` per
    hyperparameter, ``<metric>/last|best|best_step`` per metric, then
    ``<tag>/count|first_step|last_step|last|min|max`` per scalar tag.
    """
    tags = sorted({tag for row in table["rows"] for tag in row["scalars"]})
    header = ["run", "start_time", "duration", "group", "status"]
    header += [f"hp/{h['name']}" for h in table["hparams"]]
    header += [f"{m['key']}/{c}" for m in table["metrics"] for c in METRIC_COLUMNS]
    header += [f"{tag}/{c}" for tag in tags for c in RUN_STAT_COLUMNS]
    rows = []
    for row in table["rows"]:
        session = row.get("session", {})
        out = [row["run"], row["start_time"], row["duration"]]
        out += [session.get("group"), session.get("status")]
        out += [row.get("hparams", {}).get(h["name"]) for h in table["hparams"]]
        for m in table["metrics"]:
            values = row.get("metrics", {}).get(m["key"], {})
            out += [values.get(c) for c in METRIC_COLUMNS]
        for tag in tags:
            stats = row["scalars"].get(tag, {})
            out += [stats.get(c) for c in RUN_STAT_COLUMNS]
        rows.append(out)
    return header, rows


def runs_table_csv(table: dict) -> str:
    """The runs table as CSV (empty cells where a run has no such value)."""
    header, rows = runs_table_rows(table)
    lines = [",".join(csv_cell(h) for h in header)]
    for row in rows:
        lines.append(",".join(_table_cell(v) for v in row))
    return "\n".join(lines) + "\n"


def _table_cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format_number(value)
    if isinstance(value, str) and value in ("NaN", "Infinity", "-Infinity"):
        return {"NaN": "nan", "Infinity": "inf", "-Infinity": "-inf"}[value]
    return csv_cell(str(value))
