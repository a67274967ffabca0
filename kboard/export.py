"""Export of stored series to CSV, every point, in the long format.

Numbers are written so that they read back exactly (shortest round-trip form); non-finite
values are written as ``nan``, ``inf`` and ``-inf``. Text cells that a spreadsheet would run
as a formula are prefixed with ``'``.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterator
from typing import TextIO

from kboard.store import Store

SCALAR_HEADER = ("run", "tag", "step", "wall_time", "value")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def format_number(value: float) -> str:
    """Format a float for CSV: shortest exact form, ``nan``/``inf``/``-inf`` when not finite."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(float(value))


def safe_text(text: str) -> str:
    """Neutralise a text cell that a spreadsheet would evaluate as a formula."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def scalar_rows(
    store: Store, runs: str | None = None, tags: str | None = None
) -> Iterator[tuple[str, str, str, str, str]]:
    """Yield CSV rows ``(run, tag, step, wall_time, value)`` for the selected series.

    ``runs`` and ``tags`` are regular expressions searched in the names (``None``: all).
    """
    run_re = re.compile(runs) if runs else None
    tag_re = re.compile(tags) if tags else None
    for run, tag, cols in store.iter_scalars():
        if run_re and not run_re.search(run):
            continue
        if tag_re and not tag_re.search(tag):
            continue
        run_cell, tag_cell = safe_text(run), safe_text(tag)
        for step, wall, value in zip(
            cols.steps.tolist(), cols.wall_times.tolist(), cols.values.tolist()
        ):
            yield run_cell, tag_cell, str(step), format_number(wall), format_number(value)


def write_scalars_csv(
    store: Store, out: TextIO, runs: str | None = None, tags: str | None = None
) -> int:
    """Write the selected scalar points as CSV with a header; return the number of rows."""
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(SCALAR_HEADER)
    count = 0
    for row in scalar_rows(store, runs, tags):
        writer.writerow(row)
        count += 1
    return count
