"""kboard's own JSON API for the page: thin handlers over plain functions."""

from __future__ import annotations

import bisect
import json
import math
import os
import re
from collections.abc import Iterator
from typing import Any

import numpy as np
from flask import Blueprint, Response, request, stream_with_context

from kboard.app import kboard
from kboard.downsample import minmax_indices
from kboard.events import Kind
from kboard.export import FORMATS, Selection, csv_chunks, json_chunks
from kboard.histograms import (
    BASIS_POINTS,
    DISPLAY_BINS,
    clean_buckets,
    percentiles,
    rebin,
    value_range,
)
from kboard.jsonutil import float_list, json_error, json_response
from kboard.model import model_view
from kboard.store import NotFound, Sample, Store
from kboard.text import text_to_html

bp = Blueprint("api", __name__, url_prefix="/api")

DEFAULT_POINTS = 2000
MAX_POINTS = 100_000
X_MODES = ("step", "relative", "wall_time")
STREAM_KEEPALIVE_SECONDS = 15.0
# Text is rendered per request; these bound the work (markdown takes up to ~15 µs a character).
PREVIEW_TEXT_CHARS = 20_000
FULL_TEXT_CHARS = 200_000


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
        except NotFound:
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
            in_range = len(x)
        else:
            idx = minmax_indices(x, cols.values, xmin, xmax, points)
            in_range = _count_in_range(x, xmin, xmax)
        series.append(
            {
                "run": run,
                "total": len(cols),
                "count": len(idx),
                "downsampled": len(idx) < in_range,
                "steps": cols.steps[idx].tolist(),
                "wall_times": float_list(cols.wall_times[idx]),
                "values": float_list(cols.values[idx]),
            }
        )
    return {"tag": tag, "series": series}


IMAGE_TYPES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
)


def sniff_image_type(data: bytes) -> str:
    """Return the content type of image bytes from an allowlist, else octet-stream."""
    for magic, mime in IMAGE_TYPES:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


def find_step(samples: tuple[Sample, ...], step: int) -> Sample | None:
    """Return the sample at ``step`` (samples are sorted by step), or None."""
    index = bisect.bisect_left([s.step for s in samples], step)
    if index < len(samples) and samples[index].step == step:
        return samples[index]
    return None


def image_bytes_impl(store: Store, run: str, tag: str, step: int, sample: int) -> bytes:
    """Return the stored bytes of one image; :class:`NotFound` when there is none."""
    item = find_step(store.samples(run, Kind.IMAGES, tag), step)
    if item is None or not 0 <= sample < len(item.value.samples):
        raise NotFound(f"no image at step {step}, sample {sample}")
    return item.value.samples[sample]


def images_impl(store: Store, run: str, tag: str) -> dict[str, Any]:
    """List the kept steps of an image tag with their sizes and sample counts."""
    samples = store.samples(run, Kind.IMAGES, tag)
    kept, seen = store.sample_counts(run, Kind.IMAGES, tag)
    return {
        "run": run,
        "tag": tag,
        "kept": kept,
        "seen": seen,
        "steps": [
            {
                "step": s.step,
                "wall_time": s.wall_time,
                "width": s.value.width,
                "height": s.value.height,
                "samples": len(s.value.samples),
            }
            for s in samples
        ],
    }


def histograms_impl(store: Store, run: str, tag: str, bins: int = DISPLAY_BINS) -> dict[str, Any]:
    """Histograms re-binned to one common range, and distribution percentiles per step."""
    samples = store.samples(run, Kind.HISTOGRAMS, tag)
    cleaned = [clean_buckets(s.value) for s in samples]
    bounds = value_range(cleaned)
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


def text_impl(
    store: Store, run: str, tag: str, *, step: int | None = None, max_chars: int = 100_000
) -> dict[str, Any]:
    """Text entries as sanitised HTML, newest last; one step in full when ``step`` is given."""
    samples = store.samples(run, Kind.TEXT, tag)
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


def model_impl(store: Store, run: str, tag: str) -> dict[str, Any]:
    """The newest model summary of a run and tag, as a layer tree."""
    samples = store.samples(run, Kind.MODEL, tag)
    if not samples:
        raise NotFound(f"no model summary under tag {tag!r}")
    latest = samples[-1]
    try:
        view = model_view(latest.value)
    except ValueError as exc:
        view = {"error": str(exc)}
    return {"run": run, "tag": tag, "step": latest.step, "model": view}


def _count_in_range(x: np.ndarray, xmin: float | None, xmax: float | None) -> int:
    lo = 0 if xmin is None else int(np.searchsorted(x, xmin, side="left"))
    hi = len(x) if xmax is None else int(np.searchsorted(x, xmax, side="right"))
    return max(hi - lo, 0)


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
    if not result["series"] and not any(tag in tags for tags in store.tags(Kind.SCALARS).values()):
        return json_error(f"no scalar tag {tag!r}", 404)
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


def _run_tag() -> tuple[str, str]:
    run, tag = request.args.get("run"), request.args.get("tag")
    if run is None or tag is None:
        raise _BadRequest("missing parameter: run and tag are required")
    return run, tag


def _int_arg(name: str, default: int | None = None) -> int | None:
    text = request.args.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise _BadRequest(f"{name} must be an integer") from None


class _BadRequest(Exception):
    pass


@bp.errorhandler(_BadRequest)
def _bad_request(exc: _BadRequest) -> Response:
    return json_error(str(exc), 400)


@bp.errorhandler(NotFound)
def _not_found(exc: NotFound) -> Response:
    return json_error(str(exc), 404)


def export_filename(logdir: str, sel: Selection, fmt: str) -> str:
    """A download name like ``kboard-logs-scalars.csv`` (safe characters only)."""
    base = os.path.basename(os.path.normpath(logdir.split(",")[0].split(":")[-1])) or "logs"
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", base)[:60]
    return f"kboard-{base}-{sel.kind}.{fmt}"


@bp.get("/export")
def export() -> Response:
    """Stream an export: the same bytes as ``kboard export`` for the same selection."""
    fmt = request.args.get("format", "csv")
    layout = request.args.get("layout", "long")
    if fmt not in FORMATS:
        raise _BadRequest(f"format must be one of {', '.join(FORMATS)}")
    try:
        sel = Selection(
            request.args.get("runs") or None,
            request.args.get("tags") or None,
            request.args.get("kind", "scalars"),
        )
        chunks = (json_chunks if fmt == "json" else csv_chunks)(kboard().store, sel, layout)
        first = next(chunks)  # validates the layout before the response starts
    except ValueError as exc:
        raise _BadRequest(str(exc)) from None

    def body() -> Iterator[bytes]:
        yield first.encode()
        for chunk in chunks:
            yield chunk.encode()

    mimetype = "application/json" if fmt == "json" else "text/csv"
    response = Response(stream_with_context(body()), mimetype=mimetype)
    name = export_filename(kboard().logdir, sel, fmt)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@bp.get("/images")
def images() -> Response:
    run, tag = _run_tag()
    return json_response(images_impl(kboard().store, run, tag))


@bp.get("/image")
def image() -> Response:
    run, tag = _run_tag()
    step, sample = _int_arg("step"), _int_arg("sample", 0)
    if step is None:
        raise _BadRequest("missing parameter: step")
    data = image_bytes_impl(kboard().store, run, tag, step, sample or 0)
    response = Response(data, mimetype=sniff_image_type(data))
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


@bp.get("/histograms")
def histograms() -> Response:
    run, tag = _run_tag()
    bins = _int_arg("bins", DISPLAY_BINS) or DISPLAY_BINS
    if not 1 <= bins <= 500:
        raise _BadRequest("bins must be between 1 and 500")
    return json_response(histograms_impl(kboard().store, run, tag, bins))


@bp.get("/text")
def text() -> Response:
    run, tag = _run_tag()
    step = _int_arg("step")
    full = request.args.get("full") == "1"
    max_chars = FULL_TEXT_CHARS if full else PREVIEW_TEXT_CHARS
    return json_response(text_impl(kboard().store, run, tag, step=step, max_chars=max_chars))


@bp.get("/model")
def model() -> Response:
    run, tag = _run_tag()
    return json_response(model_impl(kboard().store, run, tag))


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


def _optional_float(text: str | None) -> float | None:
    if text is None or text == "":
        return None
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value
