"""kboard's own JSON API for the page: thin handlers over the data provider."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator, Mapping
from typing import Any

from flask import Blueprint, Response, request, stream_with_context

from kboard.export import FORMATS, Selection, csv_chunks, json_chunks
from kboard.histograms import DISPLAY_BINS
from kboard.provider import (
    DEFAULT_POINTS,
    X_MODES,
    DataProvider,
    GroupKey,
    NotFound,
    hparam_names,
)
from kboard.server.context import provider, serving
from kboard.server.responses import blob_response, json_error, json_response, revalidated_json
from kboard.server.streams import stream_response
from kboard.tfevents.events import Kind

bp = Blueprint("api", __name__, url_prefix="/api")

MAX_POINTS = 100_000
# Text is rendered per request; these bound the work (markdown takes up to ~15 µs a character).
PREVIEW_TEXT_CHARS = 20_000
FULL_TEXT_CHARS = 200_000


def runs_listing(data: DataProvider) -> dict[str, Any]:
    """The runs (by start time, then name) and the problems found, for ``/api/runs``."""
    generation = data.generation
    return {
        "generation": generation,
        "logdir": data.logdir,
        "runs": [
            {
                "name": r.name,
                "start_time": r.start_time,
                "attempts": r.attempts,
                "overwritten": r.overwritten,
            }
            for r in data.runs()
        ],
        "problems": [
            {"run": p.run, "file": os.path.basename(p.path), "kind": p.kind, "message": p.message}
            for p in data.problems()
        ],
    }


def tags_listing(data: DataProvider, kind: Kind) -> dict[str, Any]:
    """Every run's tags of one kind, with display name, description and plugin."""
    return {
        "generation": data.generation,
        "tags": {
            run: {
                tag: {
                    "displayName": info.display_name,
                    "description": info.description,
                    "plugin": info.plugin_name,
                }
                for tag, info in sorted(tags.items())
            }
            for run, tags in data.tags(kind).items()
        },
    }


# -- HTTP handlers --------------------------------------------------------------------
@bp.get("/runs")
def runs() -> Response:
    return json_response(runs_listing(provider()))


@bp.get("/status")
def status() -> Response:
    return json_response(provider().status())


@bp.get("/runs_table")
def runs_table() -> Response:
    return json_response(provider().runs_table())


@bp.get("/tags/<kind>")
def tags(kind: str) -> Response:
    try:
        which = Kind(kind)
    except ValueError:
        return json_error(f"unknown kind {kind!r}", 404)
    return json_response(tags_listing(provider(), which))


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
    view = provider().scalar_view(
        tag,
        runs_arg or None,
        x_mode=x_mode,
        xmin=xmin,
        xmax=xmax,
        points=points,
        overwritten=_flag("overwritten"),
    )
    return json_response(view)


@bp.get("/scalars/versions")
def scalar_versions() -> Response:
    """Each run's version of one tag's series, for refetching only the runs that changed."""
    tag = request.args.get("tag")
    if not tag:
        raise _BadRequest("missing parameter: tag")
    return json_response({"tag": tag, "versions": provider().scalar_versions(tag)})


@bp.get("/stream")
def stream() -> Response:
    """Server-Sent Events: the data's generation, now and whenever it changes."""
    return stream_response(serving().streams, request.environ)


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


def export_filename(roots: Mapping[str, str], sel: Selection, fmt: str) -> str:
    """A download name like ``kboard-logs-scalars.csv`` (safe characters only)."""
    if set(roots) == {""}:
        base = os.path.basename(os.path.normpath(roots[""]))
    else:
        base = "+".join(name or os.path.basename(os.path.normpath(p)) for name, p in roots.items())
    base = re.sub(r"[^A-Za-z0-9._+-]+", "_", base or "logs")[:60]
    return f"kboard-{base}-{'groups' if sel.grouped else sel.kind}.{fmt}"


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
            overwritten=_flag("overwritten"),
            group=request.args.get("group") or None,
            smoothing=_smoothing(),
            group_by=hparam_names(request.args.getlist("group_by")),
        )
        chunks = (json_chunks if fmt == "json" else csv_chunks)(provider(), sel, layout)
        first = next(chunks)  # validates the layout before the response starts
    except ValueError as exc:
        raise _BadRequest(str(exc)) from None

    def body() -> Iterator[bytes]:
        yield first.encode()
        for chunk in chunks:
            yield chunk.encode()

    mimetype = "application/json" if fmt == "json" else "text/csv"
    response = Response(stream_with_context(body()), mimetype=mimetype)
    name = export_filename(serving().reader.roots, sel, fmt)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@bp.get("/groups")
def groups() -> Response:
    """Every run by group of ``group=REGEX`` or ``group_by=HPARAMS``, and the runs left alone."""
    grouping = provider().run_groups(_group_key())
    return json_response(
        {
            "groups": [{"group": g, "members": list(m)} for g, m in grouping.groups.items()],
            "alone": list(grouping.alone),
        }
    )


@bp.get("/scalars/groups")
def scalar_groups() -> Response:
    """One tag's per-step statistics for each group of the given runs, for a chart."""
    tag = request.args.get("tag")
    if not tag:
        raise _BadRequest("missing parameter: tag")
    try:
        points = int(request.args.get("points", DEFAULT_POINTS))
        xmin = _optional_float(request.args.get("xmin"))
        xmax = _optional_float(request.args.get("xmax"))
    except ValueError:
        raise _BadRequest("points, xmin and xmax must be numbers") from None
    if not 2 <= points <= MAX_POINTS:
        raise _BadRequest(f"points must be between 2 and {MAX_POINTS}")
    view = provider().group_view(
        tag,
        _group_key(),
        request.args.getlist("run") or None,
        smoothing=_smoothing(),
        xmin=xmin,
        xmax=xmax,
        points=points,
    )
    return json_response(view)


def _group_key() -> GroupKey:
    """The grouping a request names: ``group=REGEX`` or ``group_by=lr,batch`` (400 if bad)."""
    names = hparam_names(request.args.getlist("group_by"))
    try:
        return provider().group_key(request.args.get("group") or None, names)
    except ValueError as exc:
        raise _BadRequest(str(exc)) from None


@bp.get("/hparams")
def hparam_list() -> Response:
    """The experiment's hyperparameters (name, display name, type): what runs can be grouped by."""
    specs = provider().experiment().hparams
    views = [{"name": h.name, "display_name": h.display_name, "type": h.type} for h in specs]
    return json_response({"hparams": views})


def _smoothing() -> float:
    try:
        value = float(request.args.get("smoothing") or 0.0)
    except ValueError:
        value = math.nan
    if not 0.0 <= value < 1.0:
        raise _BadRequest("smoothing must be a number, at least 0 and below 1")
    return value


@bp.get("/images")
def images() -> Response:
    run, tag = _run_tag()
    return json_response(provider().image_steps(run, tag, overwritten=_flag("overwritten")))


@bp.get("/image")
def image() -> Response:
    run, tag = _run_tag()
    step, sample = _int_arg("step"), _int_arg("sample", 0)
    if step is None:
        raise _BadRequest("missing parameter: step")
    attempt = _int_arg("attempt")
    return blob_response(provider().image_blob(run, tag, step, sample or 0, attempt=attempt))


@bp.get("/histograms")
def histograms() -> Response:
    run, tag = _run_tag()
    bins = _int_arg("bins", DISPLAY_BINS) or DISPLAY_BINS
    if not 1 <= bins <= 500:
        raise _BadRequest("bins must be between 1 and 500")
    return json_response(provider().histogram_view(run, tag, bins))


@bp.get("/text")
def text() -> Response:
    run, tag = _run_tag()
    step = _int_arg("step")
    full = request.args.get("full") == "1"
    max_chars = FULL_TEXT_CHARS if full else PREVIEW_TEXT_CHARS
    view = provider().text_view(
        run, tag, step=step, max_chars=max_chars, overwritten=_flag("overwritten")
    )
    return json_response(view)


@bp.get("/model")
def model() -> Response:
    run, tag = _run_tag()
    return json_response(provider().model_view(run, tag))


@bp.get("/graph")
def graph() -> Response:
    run, tag = _run_tag()
    kind = request.args.get("kind", "model")
    if kind not in (Kind.MODEL.value, Kind.GRAPH.value):
        raise _BadRequest("kind must be model or graph")
    # A page asks again after every live update: an unchanged graph costs a 304, no bytes.
    version = provider().graph_version(run, tag, Kind(kind))
    return revalidated_json(version, lambda: provider().graph_view(run, tag, Kind(kind)))


def _flag(name: str) -> bool:
    """A yes/no query parameter: ``1``/``true`` is yes, absent, ``0`` or ``false`` no."""
    text = request.args.get(name, "0").lower()
    if text not in ("0", "1", "true", "false"):
        raise _BadRequest(f"{name} must be 1 or 0")
    return text in ("1", "true")


def _optional_float(text: str | None) -> float | None:
    if text is None or text == "":
        return None
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value
