"""The page itself and the JavaScript it needs, all served locally (no internet needed).

Plotly.js is vendored under ``static/vendor`` (npm's prebuilt bundles, MIT, licences beside
them). The page loads the partial ``basic`` bundle (the scatter traces every chart draws, 1.2 MB
against 5 MB); a tab that needs other trace types (HPARAMS: parcoords, splom) loads the full
``strict`` bundle on first use (``charts.js``'s ``loadFullPlotly``). Both are built without
``eval``, so WebGL charts work under the page's Content-Security-Policy (no 'unsafe-eval').
"""

from __future__ import annotations

import os

from flask import Blueprint, Response, render_template, send_file, url_for

from kboard.server.context import serving

bp = Blueprint("views", __name__)

PLOTLY_VERSION = "4.1.1"
VENDOR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "static", "vendor")
# The bundle the page loads first, and the full one loaded when a tab needs it.
PLOTLY_BASIC = f"basic-{PLOTLY_VERSION}"
PLOTLY_FULL = f"strict-{PLOTLY_VERSION}"
PLOTLY_BUNDLES = {
    name: os.path.join(VENDOR, f"plotly-{name}.min.js") for name in (PLOTLY_BASIC, PLOTLY_FULL)
}


def plotly_js_version() -> str:
    """Return the name of the full Plotly.js bundle the page may load (``strict-<version>``)."""
    return PLOTLY_FULL


@bp.get("/")
def index() -> str:
    return render_template(
        "index.html",
        plotly_url=url_for("views.plotly", version=PLOTLY_BASIC),
        plotly_full_url=url_for("views.plotly", version=PLOTLY_FULL),
        logdir=serving().logdir,
    )


@bp.get("/vendor/plotly-<version>.min.js")
def plotly(version: str) -> Response:
    """A vendored Plotly.js bundle by name; browsers keep it for a day without asking again."""
    path = PLOTLY_BUNDLES.get(version)
    if path is None:
        return Response("unknown Plotly version", status=404, mimetype="text/plain")
    response = send_file(path, mimetype="text/javascript", max_age=86400)
    response.headers["Cache-Control"] = "public, max-age=86400, immutable"
    return response
