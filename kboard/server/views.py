"""The page itself and the JavaScript it needs, all served locally (no internet needed).

The page loads a partial Plotly.js (``plotly-basic``: the scatter traces every chart draws,
1.2 MB against 4.8 MB, vendored under ``static/vendor`` with its licence); the full bundle of
the installed ``plotly`` package stays served for a tab that needs other trace types
(``charts.js``'s ``loadFullPlotly``).
"""

from __future__ import annotations

import os

import plotly
from flask import Blueprint, Response, render_template, send_file, url_for

from kboard.server.context import serving

bp = Blueprint("views", __name__)

PLOTLY_JS = os.path.join(os.path.dirname(plotly.__file__), "package_data", "plotly.min.js")
PLOTLY_BASIC_VERSION = "4.1.1"
PLOTLY_BASIC_JS = os.path.join(
    os.path.dirname(os.path.dirname(__file__)),
    "static",
    "vendor",
    f"plotly-basic-{PLOTLY_BASIC_VERSION}.min.js",
)


def plotly_js_version() -> str:
    """Return the version of the Plotly.js bundled with the installed ``plotly`` package."""
    from plotly.offline import get_plotlyjs_version

    return get_plotlyjs_version()


@bp.get("/")
def index() -> str:
    return render_template(
        "index.html",
        plotly_url=url_for("views.plotly_basic", version=PLOTLY_BASIC_VERSION),
        plotly_full_url=url_for("views.plotly", version=plotly_js_version()),
        logdir=serving().logdir,
    )


@bp.get("/vendor/plotly-<version>.min.js")
def plotly(version: str) -> Response:
    if version != plotly_js_version():
        return Response("unknown Plotly version", status=404, mimetype="text/plain")
    return _script(PLOTLY_JS)


@bp.get("/vendor/plotly-basic-<version>.min.js")
def plotly_basic(version: str) -> Response:
    if version != PLOTLY_BASIC_VERSION:
        return Response("unknown Plotly version", status=404, mimetype="text/plain")
    return _script(PLOTLY_BASIC_JS)


def _script(path: str) -> Response:
    """A versioned script: browsers keep it for a day without asking again."""
    response = send_file(path, mimetype="text/javascript", max_age=86400)
    response.headers["Cache-Control"] = "public, max-age=86400, immutable"
    return response
