"""Downsampling for display: fewer points, same shape, spikes kept. Stored data is never touched."""

from __future__ import annotations

import numpy as np


def minmax_indices(
    x: np.ndarray, y: np.ndarray, xmin: float | None, xmax: float | None, points: int
) -> np.ndarray:
    """Return indices of the points to draw for ``xmin <= x <= xmax``.

    At most about ``points`` indices: the first and last in range, each bucket's minimum and
    maximum, and every non-finite value (so NaN and infinities are never hidden). ``x`` must
    be sorted ascending. One point on each side outside the range is kept, so lines reach
    the edges of a zoomed view.
    """
    lo = 0 if xmin is None else max(int(np.searchsorted(x, xmin, side="left")) - 1, 0)
    hi = len(x) if xmax is None else min(int(np.searchsorted(x, xmax, side="right")) + 1, len(x))
    count = hi - lo
    if count <= max(points, 4):
        return np.arange(lo, hi)
    buckets = max(points // 2, 1)
    window = y[lo:hi]
    finite = np.isfinite(window)
    # Non-finite values take no part in min/max; they are added back below.
    low_fill = np.where(finite, window, np.inf)
    high_fill = np.where(finite, window, -np.inf)
    edges = np.linspace(0, count, buckets + 1).astype(np.int64)
    starts = edges[:-1]
    mins = np.minimum.reduceat(low_fill, starts)
    maxs = np.maximum.reduceat(high_fill, starts)
    # Position of each bucket's min and max: first index in the bucket equal to it.
    picks = [np.array([0, count - 1]), np.flatnonzero(~finite)]
    bucket_of = np.repeat(np.arange(buckets), np.diff(edges))
    for target, filled in ((mins, low_fill), (maxs, high_fill)):
        hits = np.flatnonzero(filled == target[bucket_of])
        first = np.unique(bucket_of[hits], return_index=True)[1]
        picks.append(hits[first])
    return lo + np.unique(np.concatenate(picks))
