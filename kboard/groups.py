"""Runs grouped (the seeds of one setting) and one tag's statistics across a group's members.

A group key function maps a run name to its group (``None``: the run stays alone).
:func:`regex_key` keys runs by the capture groups of a regular expression; any other function
(a hyperparameter's value: :func:`kboard.hparams.hparam_group_key`) plugs in the same way.
:func:`aggregate` smooths each member as the SCALARS chart does (TensorBoard's debiased
EMA), aligns the members by step (linear interpolation onto the union of their steps, each
member only within its own first and last step: no extrapolation), then gives per step the
mean, median, standard deviation (population, ``ddof=0``), min, max and how many members had
a value. Non-finite values take no part.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

GroupKey = Callable[[str], "str | None"]
KEY_SEPARATOR = ","
# Cells (members x steps) aggregated at once: bounds memory for large groups.
BLOCK_CELLS = 1 << 21
STAT_NAMES = ("mean", "median", "std", "min", "max")


def regex_key(pattern: str) -> GroupKey:
    """Key runs by ``pattern`` searched in the name: its capture groups joined by ``,`` (the
    whole match when it has none); ``None`` when it does not match. ``ValueError`` when bad."""
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"bad regular expression {pattern!r}: {exc}") from None

    def key_of_run(run: str) -> str | None:
        match = compiled.search(run)
        if match is None:
            return None
        if not compiled.groups:
            return match.group(0)
        return KEY_SEPARATOR.join(part or "" for part in match.groups())

    return key_of_run


def hparam_names(names: str | Iterable[str] | None) -> tuple[str, ...]:
    """Hyperparameter names to group by, from ``"lr,batch"`` or a list of such (blanks dropped)."""
    if names is None:
        return ()
    parts = [names] if isinstance(names, str) else list(names)
    return tuple(n.strip() for part in parts for n in part.split(KEY_SEPARATOR) if n.strip())


def check_grouping(pattern: str | None, hparams: Sequence[str]) -> None:
    """``ValueError`` unless exactly one grouping is named: a regex or hyperparameter names."""
    if pattern and hparams:
        raise ValueError("group runs by a regex (group) or by hyperparameters (group_by), not both")
    if not pattern and not hparams:
        raise ValueError("missing parameter: group (a regex) or group_by (hyperparameter names)")
    if pattern:
        regex_key(pattern)  # ValueError when bad


@dataclass(frozen=True)
class RunGroups:
    """Runs by group key (keys sorted, members in the order given) and the runs left alone."""

    groups: dict[str, tuple[str, ...]]
    alone: tuple[str, ...]


def group_by_key(runs: Iterable[str], key_of_run: GroupKey) -> RunGroups:
    """Group ``runs`` by ``key_of_run``; a run it keys ``None`` stays alone."""
    groups: dict[str, list[str]] = {}
    alone: list[str] = []
    for run in runs:
        key = key_of_run(run)
        if key is None:
            alone.append(run)
        else:
            groups.setdefault(key, []).append(run)
    return RunGroups({k: tuple(groups[k]) for k in sorted(groups)}, tuple(alone))


def smooth(values: np.ndarray, weight: float) -> np.ndarray:
    """TensorBoard's debiased EMA, as the SCALARS chart draws it (``scalars.js``'s ``smooth``).

    Non-finite values pass through and take no part; a constant series is left as it is.
    Computed with numpy in blocks (a cumulative sum each), carried from block to block.
    """
    values = np.asarray(values, dtype=np.float64)
    if not 0.0 <= weight < 1.0:
        raise ValueError("smoothing must be at least 0 and below 1")
    out = values.copy()
    finite = np.isfinite(values)
    x = values[finite]
    if weight == 0.0 or not len(x) or np.all(x == x[0]):
        return out
    n = len(x)
    # Within a block, w**-i must stay far from overflow: w**-(block-1) <= 1e150.
    block = int(min(4096, max(1, math.floor(150 * math.log(10) / -math.log(weight)) + 1)))
    powers = weight ** np.arange(block, dtype=np.float64)  # w**j
    rows = -(-n // block)
    padded = np.zeros(rows * block)
    padded[:n] = x
    chunks = padded.reshape(rows, block)
    # Each block from zero: w**j * (1-w) * sum_{i<=j} w**-i * x[i] ...
    local = powers * ((1.0 - weight) * np.cumsum(chunks / powers, axis=1))
    # ... plus what came before it, w**(j+1) * carry, carried block to block.
    carries = np.empty(rows)
    carry, step = 0.0, weight**block
    for row, end in enumerate(local[:, -1].tolist()):
        carries[row] = carry
        carry = step * carry + end
    last = (local + np.outer(carries, powers * weight)).ravel()[:n]
    # 1 - w**k, which is 1.0 in float64 from some k on (pow near underflow is slow).
    exact = min(n, int(math.ceil(-40 / math.log10(weight))) + 1)
    last[:exact] /= 1.0 - weight ** np.arange(1, exact + 1, dtype=np.float64)
    out[finite] = last
    return out


@dataclass(frozen=True)
class GroupStats:
    """One tag's statistics across a group's members, per step of the union of their steps."""

    steps: np.ndarray  # int64, strictly increasing
    mean: np.ndarray
    median: np.ndarray
    std: np.ndarray
    min: np.ndarray
    max: np.ndarray
    count: np.ndarray  # int64: members with a value at the step (within their step range)

    def __len__(self) -> int:
        return len(self.steps)


def _empty_stats() -> GroupStats:
    floats = [np.empty(0) for _ in STAT_NAMES]
    return GroupStats(np.empty(0, np.int64), *floats, np.empty(0, np.int64))


def aggregate(
    members: Sequence[tuple[np.ndarray, np.ndarray]], smoothing: float = 0.0
) -> GroupStats:
    """Statistics per step of members given as ``(steps, values)`` (steps increasing).

    Each member is smoothed first, then interpolated onto the union of every member's steps
    within its own range. A member without a finite value takes no part.
    """
    series = []
    for steps, values in members:
        smoothed = smooth(values, smoothing) if smoothing else np.asarray(values, np.float64)
        keep = np.isfinite(smoothed)
        if keep.any():
            series.append((np.asarray(steps)[keep].astype(np.float64), smoothed[keep]))
    if not series:
        return _empty_stats()
    grid = np.unique(np.concatenate([s for s, _ in series]))
    stats = {name: np.empty(len(grid)) for name in STAT_NAMES}
    count = np.empty(len(grid), np.int64)
    width = max(1, BLOCK_CELLS // len(series))
    for start in range(0, len(grid), width):
        x = grid[start : start + width]
        cells = np.full((len(series), len(x)), np.nan)
        for row, (steps, values) in zip(cells, series):
            lo = int(np.searchsorted(x, steps[0], side="left"))
            hi = int(np.searchsorted(x, steps[-1], side="right"))
            if hi > lo:
                row[lo:hi] = np.interp(x[lo:hi], steps, values)
        present = ~np.isnan(cells)
        n = present.sum(axis=0)  # >= 1: every grid step is some member's own step
        ordered = np.sort(cells, axis=0)  # NaN (no value) sorts last
        cols = np.arange(len(x))
        mean = np.where(present, cells, 0.0).sum(axis=0) / n
        spread = np.where(present, cells - mean, 0.0)
        part = slice(start, start + len(x))
        stats["mean"][part] = mean
        stats["median"][part] = (ordered[(n - 1) // 2, cols] + ordered[n // 2, cols]) / 2
        stats["std"][part] = np.sqrt((spread * spread).sum(axis=0) / n)
        stats["min"][part] = ordered[0]
        stats["max"][part] = ordered[n - 1, cols]
        count[part] = n
    return GroupStats(grid.astype(np.int64), **stats, count=count)
