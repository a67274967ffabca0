"""The Flask application factory and the security rules every response follows."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from kboard.cache import RunCache
from kboard.ingest import LogdirReader, logdir_label
from kboard.provider import DataProvider
from kboard.server import api, compat, views
from kboard.server.context import Serving, serving
from kboard.server.live import LiveReloader
from kboard.server.responses import json_error

log = logging.getLogger("kboard")

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
CACHE_FIRST_SAVE_SECONDS = 3.0
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
ANY_ADDRESS = frozenset({"0.0.0.0", "::", ""})


def create_app(
    logdir: str | Mapping[str, str],
    *,
    reload_interval: float = 5.0,
    watch: bool = True,
    live: bool = True,
    host: str = "127.0.0.1",
    reader: LogdirReader | None = None,
    cache_dir: str | None = None,
) -> Flask:
    """Create the app for ``logdir``: read it once, then follow it when ``live``.

    ``logdir`` is one path, or ``{name: path}`` for several named logdirs.

    With ``cache_dir``, decoded runs are kept there so the next start is quick.
    """
    app = Flask("kboard")  # the package's static/ and templates/ folders
    app.config.update(JSON_SORT_KEYS=False, MAX_CONTENT_LENGTH=1024 * 1024)
    cache = RunCache(cache_dir) if cache_dir else None
    reader = reader or LogdirReader(logdir, cache=cache)
    reader.reload()
    if cache is not None:
        # A little later, so the first page loads do not wait for it.
        timer = threading.Timer(CACHE_FIRST_SAVE_SECONDS, reader.save_cache)
        timer.daemon = True
        timer.start()
    reloader = None
    if live:
        reloader = LiveReloader(reader, interval=reload_interval, watch=watch)
        reloader.start()
    allowed = None if host in ANY_ADDRESS else LOCAL_HOSTS | {host.strip("[]").lower()}
    label = logdir_label(reader.roots)
    app.extensions["kboard"] = Serving(
        DataProvider(reader.store, label), reader, reloader, label, allowed
    )
    app.register_blueprint(views.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(compat.bp)
    app.before_request(_check_host)
    app.after_request(_security_headers)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
    return app


def _host_name(host_header: str) -> str:
    host = host_header.strip().lower()
    if host.startswith("["):  # [::1]:6006
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _check_host() -> Response | None:
    """Refuse requests whose Host is not ours (DNS rebinding)."""
    allowed = serving().allowed_hosts
    if allowed is None:
        return None
    if _host_name(request.host) not in allowed:
        return json_error("unknown Host header (kboard answers only its own address)", 403)
    return None


def _security_headers(response: Response) -> Response:
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def _http_error(exc: HTTPException) -> Response:
    return json_error(exc.description or exc.name, exc.code or 500)


def _unexpected_error(exc: Exception) -> Response:
    log.exception("error serving %s", request.path)
    return json_error("internal error (see the server log)", 500)
