"""The page itself and the JavaScript it needs, all served locally (no internet needed)."""

from __future__ import annotations

import os

import plotly
from flask import Blueprint, Response, render_template, send_file, url_for

from kboard.server.context import serving

bp = Blueprint("views", __name__)

PLOTLY_JS = os.path.join(os.path.dirname(plotly.__file__), "package_data", "plotly.min.js")


def plotly_js_version() -> str:
    """Return the version of the Plotly.js bundled with the installed ``plotly`` package."""
    from plotly.offline import get_plotlyjs_version

    return get_plotlyjs_version()


@bp.get("/")
def index() -> str:
    return render_template(
        "index.html",
        plotly_url=url_for("views.plotly", version=plotly_js_version()),
        logdir=serving().logdir,
    )


@bp.get("/vendor/plotly-<version>.min.js")
def plotly(version: str) -> Response:
    if version != plotly_js_version():
        return Response("unknown Plotly version", status=404, mimetype="text/plain")
    response = send_file(PLOTLY_JS, mimetype="text/javascript", max_age=86400)
    response.headers["Cache-Control"] = "public, max-age=86400, immutable"
    return response
