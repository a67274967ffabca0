"""Histogram maths for display: re-binning to a common range, and distribution percentiles."""

from __future__ import annotations

import numpy as np

# TensorBoard's DISTRIBUTIONS basis points: the normal distribution's -inf, -1.5, -1, -0.5, 0,
# 0.5, 1, 1.5 and +inf sigma, in 1/100ths of a percent.
BASIS_POINTS = (0, 668, 1587, 3085, 5000, 6915, 8413, 9332, 10000)
DISPLAY_BINS = 30


def clean_buckets(buckets: np.ndarray) -> np.ndarray:
    """Return the usable ``[k, 3]`` buckets: finite edges, left <= right, positive counts."""
    arr = np.asarray(buckets, dtype=np.float64).reshape(-1, 3)
    left, right, count = arr[:, 0], arr[:, 1], arr[:, 2]
    ok = np.isfinite(left) & np.isfinite(right) & np.isfinite(count) & (count > 0)
    ok &= left <= right
    arr = arr[ok]
    return arr[np.argsort(arr[:, 0], kind="stable")]


def value_range(histograms: list[np.ndarray]) -> tuple[float, float] | None:
    """Return the (min, max) over several cleaned histograms, or None when all are empty."""
    lows = [h[0, 0] for h in histograms if len(h)]
    highs = [h[:, 1].max() for h in histograms if len(h)]
    if not lows:
        return None
    return float(min(lows)), float(max(highs))


def cumulative_at(buckets: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Count of values below each ``x``, assuming values spread evenly within a bucket."""
    left, right, count = buckets[:, 0], buckets[:, 1], buckets[:, 2]
    width = right - left
    out = np.zeros(len(x), dtype=np.float64)
    # In chunks so a histogram with a million buckets needs bounded memory.
    for start in range(0, len(buckets), 4096):
        sl = slice(start, start + 4096)
        w = width[sl][:, None]
        frac = np.where(
            w > 0,
            np.clip((x[None, :] - left[sl][:, None]) / np.where(w > 0, w, 1.0), 0.0, 1.0),
            (x[None, :] >= left[sl][:, None]).astype(np.float64),
        )
        out += (count[sl][:, None] * frac).sum(axis=0)
    return out


def rebin(buckets: np.ndarray, low: float, high: float, bins: int = DISPLAY_BINS) -> np.ndarray:
    """Re-bin cleaned buckets onto ``bins`` equal bins over ``[low, high]``; return counts."""
    if len(buckets) == 0:
        return np.zeros(bins)
    if high <= low:  # every value equal: one spike in the middle bin
        counts = np.zeros(bins)
        counts[bins // 2] = buckets[:, 2].sum()
        return counts
    edges = np.linspace(low, high, bins + 1)
    cum = cumulative_at(buckets, edges)
    cum[-1] = buckets[:, 2].sum()  # values at exactly ``high`` belong to the last bin
    return np.diff(cum)


def percentiles(buckets: np.ndarray, basis_points: tuple[int, ...] = BASIS_POINTS) -> list[float]:
    """Values at the given basis points, by linear interpolation of cumulative counts.

    0 gives the minimum and 10000 the maximum; empty histograms give NaN.
    """
    if len(buckets) == 0:
        return [float("nan")] * len(basis_points)
    left, right, count = buckets[:, 0], buckets[:, 1], buckets[:, 2]
    cum = np.cumsum(count)
    total = cum[-1]
    out = []
    for bp in basis_points:
        target = total * bp / 10000.0
        i = int(np.searchsorted(cum, target, side="left"))
        i = min(i, len(cum) - 1)
        before = cum[i - 1] if i > 0 else 0.0
        frac = (target - before) / count[i] if count[i] > 0 else 0.0
        out.append(float(left[i] + min(max(frac, 0.0), 1.0) * (right[i] - left[i])))
    return out
