"""The page itself and the JavaScript it needs, all served locally (no internet needed)."""

from __future__ import annotations

import os

from flask import Blueprint, Response, render_template, send_file, url_for

from kboard.server.context import serving

bp = Blueprint("views", __name__)

# Plotly.js's "strict" bundle (npm plotly.js-strict-dist-min, MIT, licence beside it): the
# same library built without eval, so that its WebGL charts (parcoords) work under the page's
# Content-Security-Policy, which allows no 'unsafe-eval'.
PLOTLY_VERSION = "strict-4.1.1"
PLOTLY_JS = os.path.join(
    os.path.dirname(os.path.dirname(__file__)),
    "static",
    "vendor",
    f"plotly-{PLOTLY_VERSION}.min.js",
)


def plotly_js_version() -> str:
    """Return the version of the Plotly.js the page uses (the vendored strict bundle)."""
    return PLOTLY_VERSION


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
