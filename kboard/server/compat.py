"""TensorBoard-compatible routes, with TensorBoard 2.x's JSON shapes, over the same data provider.

Scripts written against TensorBoard's HTTP API keep working. Differences: every point is
served (no sampling), unknown runs or tags are a JSON 404, and image bytes are looked up by
(run, tag, sample, step), never by a path from the request.
"""

from __future__ import annotations

import csv
import io
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, request
from werkzeug.exceptions import BadRequest

from kboard.jsonsafe import cleanse, point_rows_json
from kboard.provider import DataProvider, NotFound
from kboard.server.context import provider, serving
from kboard.server.responses import blob_response, json_error, json_response
from kboard.text import markdown_to_safe_html
from kboard.tfevents.events import Kind

bp = Blueprint("compat", __name__, url_prefix="/data")


def tb_tags(data: DataProvider, kind: Kind) -> dict[str, dict[str, dict[str, Any]]]:
    """``{run: {tag: {displayName, description}}}`` as TensorBoard's plugins answer."""
    return {
        run: {
            tag: {
                "displayName": info.display_name,
                "description": markdown_to_safe_html(info.description),
            }
            for tag, info in sorted(tags.items())
        }
        for run, tags in data.tags(kind).items()
    }


def _lookup(kind: Kind) -> tuple[str, str, DataProvider]:
    """The run and tag asked for, checked to exist (400 or 404 otherwise)."""
    run, tag = request.args.get("run"), request.args.get("tag")
    if run is None or tag is None:
        raise BadRequest("missing parameter: run and tag are required")
    data = provider()
    try:
        if kind is Kind.SCALARS:
            data.scalars(run, tag)
        else:
            data.samples(run, kind, tag)
    except NotFound:
        raise NotFound(f"no {kind.value} tag {tag!r} in run {run!r}") from None
    return run, tag, data


@bp.errorhandler(NotFound)
def _not_found(exc: NotFound) -> Response:
    return json_error(str(exc), 404)


@bp.get("/runs")
def runs() -> Response:
    return json_response([r.name for r in provider().runs()])


@bp.get("/environment")
def environment() -> Response:
    return json_response({"data_location": serving().logdir, "window_title": ""})


@bp.get("/plugin/scalars/tags")
def scalar_tags() -> Response:
    return json_response(tb_tags(provider(), Kind.SCALARS))


@bp.get("/plugin/scalars/scalars")
def scalars() -> Response:
    run, tag, data = _lookup(Kind.SCALARS)
    cols = data.scalars(run, tag)
    if request.args.get("format") == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["Wall time", "Step", "Value"])
        writer.writerows(zip(cols.wall_times.tolist(), cols.steps.tolist(), cols.values.tolist()))
        return Response(out.getvalue(), mimetype="text/csv")
    body = point_rows_json(cols.wall_times, cols.steps, cols.values)
    return Response(body, mimetype="application/json")


@bp.get("/plugin/histograms/tags")
def histogram_tags() -> Response:
    return json_response(tb_tags(provider(), Kind.HISTOGRAMS))


@bp.get("/plugin/histograms/histograms")
def histograms() -> Response:
    run, tag, data = _lookup(Kind.HISTOGRAMS)
    samples = data.samples(run, Kind.HISTOGRAMS, tag)
    return json_response(cleanse([[s.wall_time, s.step, s.value.tolist()] for s in samples]))


@bp.get("/plugin/images/tags")
def image_tags() -> Response:
    data = provider()
    result = tb_tags(data, Kind.IMAGES)
    for run, tags in result.items():
        for tag, entry in tags.items():
            samples = data.samples(run, Kind.IMAGES, tag)
            entry["samples"] = max((len(s.value.samples) for s in samples), default=0)
    return json_response(result)


@bp.get("/plugin/images/images")
def images() -> Response:
    run, tag, data = _lookup(Kind.IMAGES)
    try:
        sample = int(request.args.get("sample", 0))
    except ValueError:
        return json_error("sample must be an integer", 400)
    return json_response(
        [
            {
                "wall_time": s.wall_time,
                "step": s.step,
                "query": urlencode({"run": run, "tag": tag, "sample": sample, "step": s.step}),
            }
            for s in data.samples(run, Kind.IMAGES, tag)
            if sample < len(s.value.samples)
        ]
    )


@bp.get("/plugin/images/individualImage")
def individual_image() -> Response:
    run, tag, data = _lookup(Kind.IMAGES)
    try:
        sample = int(request.args.get("sample", 0))
        step = int(request.args["step"])
    except (KeyError, ValueError):
        return json_error("step and sample must be integers", 400)
    return blob_response(data.image_blob(run, tag, step, sample))
