"""kboard's own JSON API for the page: thin handlers over plain functions."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
from flask import Blueprint, Response, request, stream_with_context

from kboard.app import kboard
from kboard.downsample import minmax_indices
from kboard.events import Kind
from kboard.jsonutil import float_list, json_error, json_response
from kboard.store import Store

bp = Blueprint("api", __name__, url_prefix="/api")

DEFAULT_POINTS = 2000
MAX_POINTS = 100_000
X_MODES = ("step", "relative", "wall_time")
STREAM_KEEPALIVE_SECONDS = 15.0


# -- plain functions ------------------------------------------------------------------
def runs_impl(store: Store, logdir: str) -> dict[str, Any]:
    """List runs (by start time, then name) and the problems found."""
    generation = store.generation
    runs = store.runs()
    starts = {run: store.start_time(run) for run in runs}
    runs.sort(key=lambda r: (starts[r] is None, starts[r] or 0.0, r))
    problems = [
        {"run": p.run, "file": os.path.basename(p.path), "kind": p.kind, "message": p.message}
        for p in store.problems()
    ]
    return {
        "generation": generation,
        "logdir": logdir,
        "runs": [{"name": r, "start_time": starts[r]} for r in runs],
        "problems": problems,
    }


def tags_impl(store: Store, kind: Kind) -> dict[str, Any]:
    """Map every run to its tags of one kind, with display name and description."""
    return {
        "generation": store.generation,
        "tags": {
            run: {
                tag: {"displayName": info.display_name, "description": info.description}
                for tag, info in sorted(tags.items())
            }
            for run, tags in store.tags(kind).items()
        },
    }


def scalars_impl(
    store: Store,
    tag: str,
    runs: list[str],
    *,
    x_mode: str = "step",
    xmin: float | None = None,
    xmax: float | None = None,
    points: int = DEFAULT_POINTS,
) -> dict[str, Any]:
    """Return one tag's series for several runs, downsampled to ``points`` per view."""
    series = []
    for run in runs:
        try:
            cols = store.scalars(run, tag)
        except KeyError:
            continue
        if x_mode == "step":
            x = cols.steps
        elif x_mode == "wall_time":
            x = cols.wall_times
        else:
            start = store.start_time(run)
            x = cols.wall_times - (start if start is not None else 0.0)
        # Wall times need not be sorted (clock changes): downsample by index then.
        if x_mode != "step" and len(x) > 1 and np.any(np.diff(x) < 0):
            idx = minmax_indices(np.arange(len(x), dtype=float), cols.values, None, None, points)
        else:
            idx = minmax_indices(x, cols.values, xmin, xmax, points)
        series.append(
            {
                "run": run,
                "total": len(cols),
                "count": len(idx),
                "downsampled": len(idx) < len(cols),
                "steps": cols.steps[idx].tolist(),
                "wall_times": float_list(cols.wall_times[idx]),
                "values": float_list(cols.values[idx]),
            }
        )
    return {"tag": tag, "series": series}


# -- HTTP handlers --------------------------------------------------------------------
@bp.get("/runs")
def runs() -> Response:
    state = kboard()
    return json_response(runs_impl(state.store, state.logdir))


@bp.get("/tags/<kind>")
def tags(kind: str) -> Response:
    try:
        which = Kind(kind)
    except ValueError:
        return json_error(f"unknown kind {kind!r}", 404)
    return json_response(tags_impl(kboard().store, which))


@bp.get("/scalars")
def scalars() -> Response:
    tag = request.args.get("tag")
    if not tag:
        return json_error("missing parameter: tag", 400)
    runs_arg = request.args.getlist("run")
    x_mode = request.args.get("x", "step")
    if x_mode not in X_MODES:
        return json_error(f"x must be one of {', '.join(X_MODES)}", 400)
    try:
        points = int(request.args.get("points", DEFAULT_POINTS))
        xmin = _optional_float(request.args.get("xmin"))
        xmax = _optional_float(request.args.get("xmax"))
    except ValueError:
        return json_error("points, xmin and xmax must be numbers", 400)
    if not 2 <= points <= MAX_POINTS:
        return json_error(f"points must be between 2 and {MAX_POINTS}", 400)
    store = kboard().store
    if not runs_arg:
        runs_arg = [run for run, tags in store.tags(Kind.SCALARS).items() if tag in tags]
    result = scalars_impl(store, tag, runs_arg, x_mode=x_mode, xmin=xmin, xmax=xmax, points=points)
    if not result["series"]:
        return json_error(f"no scalar tag {tag!r} in the requested runs", 404)
    return json_response(result)


@bp.get("/stream")
def stream() -> Response:
    """Server-Sent Events: the store's generation, now and whenever it changes."""
    store = kboard().store

    def events() -> Iterator[str]:
        generation = store.generation
        yield "retry: 1000\n"
        yield _sse("generation", {"generation": generation})
        while True:
            latest = store.wait_for_change(generation, STREAM_KEEPALIVE_SECONDS)
            if latest == generation:
                yield ": keepalive\n\n"
                continue
            generation = latest
            yield _sse("generation", {"generation": generation})

    response = Response(stream_with_context(events()), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    return response


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


def _optional_float(text: str | None) -> float | None:
    if text is None or text == "":
        return None
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value
