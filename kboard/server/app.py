"""The Flask application factory and the security rules every response follows."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from kboard.cache import RunCache
from kboard.ingest import LogdirReader, logdir_label
from kboard.provider import DataProvider
from kboard.server import api, compat, hparams, views
from kboard.server.auth import PathPrefix, TokenAuth, normalize_prefix
from kboard.server.context import Serving, serving
from kboard.server.live import LiveReloader
from kboard.server.memory import release_free_memory
from kboard.server.responses import json_error
from kboard.server.streams import DEFAULT_MAX_STREAMS, StreamHub

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
    reload_interval: float | None = None,
    watch: bool = True,
    live: bool = True,
    host: str = "127.0.0.1",
    reader: LogdirReader | None = None,
    cache_dir: str | None = None,
    token: str | None = None,
    allowed_hosts: Iterable[str] = (),
    path_prefix: str = "",
    max_streams: int = DEFAULT_MAX_STREAMS,
    storage_options: Mapping[str, Any] | None = None,
    read_first: bool = True,
) -> Flask:
    """Create the app for ``logdir``: read it once, then follow it when ``live``.

    ``logdir`` is one path, or ``{name: path}`` for several named logdirs.

    With ``cache_dir``, decoded runs are kept there so the next start is quick. With
    ``token``, every request must carry it (see :class:`TokenAuth`). ``allowed_hosts`` are
    more names the server may be reached by (the Host check). ``path_prefix`` (``/kboard``)
    serves everything under that path, for a reverse proxy. A logdir may be an fsspec URL
    (read with ``storage_options``); ``reload_interval`` defaults to 5 s, 30 s when a logdir
    is in an object store. ``read_first=False`` answers at once and reads the logdir in a
    thread (``kboard serve`` does).
    """
    path_prefix = normalize_prefix(path_prefix)
    app = Flask("kboard")  # the package's static/ and templates/ folders
    app.config.update(JSON_SORT_KEYS=False, MAX_CONTENT_LENGTH=1024 * 1024)
    cache = RunCache(cache_dir) if cache_dir else None
    reader = reader or LogdirReader(logdir, cache=cache, storage_options=storage_options)
    if read_first:
        reader.reload()
    else:  # serve at once: runs appear as they are read (GET /api/status says how far)
        threading.Thread(
            target=_first_read, args=(reader,), name="kboard-read", daemon=True
        ).start()
    if cache is not None:
        # A little later, so the first page loads do not wait for it.
        timer = threading.Timer(CACHE_FIRST_SAVE_SECONDS, reader.save_cache)
        timer.daemon = True
        timer.start()
    reloader = None
    if live:
        reloader = LiveReloader(reader, interval=reload_interval, watch=watch)
        reloader.start()
    label = logdir_label(reader.roots)
    data = DataProvider(reader.store, label, reader.io_stats, reader.progress)
    app.extensions["kboard"] = Serving(
        data,
        reader,
        reloader,
        label,
        host_allowlist(host, allowed_hosts),
        TokenAuth(token, path_prefix + "/") if token is not None else None,
        StreamHub(data, max_streams),
    )
    app.register_blueprint(views.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(compat.bp)
    app.register_blueprint(hparams.bp)
    app.before_request(_check_host)
    app.before_request(_check_token)
    app.after_request(_security_headers)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
    if path_prefix:
        app.wsgi_app = PathPrefix(app.wsgi_app, path_prefix)  # type: ignore[method-assign]
    return app


def _first_read(reader: LogdirReader) -> None:
    """Read the logdir for the first time, behind a server that already answers."""
    try:
        reader.reload()
    except Exception:  # the reader reports file problems itself; this is a bug
        log.exception("first read of the logdir failed")
    finally:
        reader.progress.end()
        release_free_memory()  # what reading needed for a while is not kept


def host_allowlist(host: str, names: Iterable[str] = ()) -> frozenset[str] | None:
    """The Host names to answer: loopback, the bound address and ``names``; None for any.

    Bound to every interface with no names given, any Host is answered.
    """
    extra = {name.strip().strip("[]").lower() for name in names if name.strip()}
    if host in ANY_ADDRESS and not extra:
        return None
    own = set() if host in ANY_ADDRESS else {host.strip("[]").lower()}
    return LOCAL_HOSTS | own | extra


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


def _check_token() -> Response | None:
    """Refuse requests without the token, when one is required."""
    auth = serving().auth
    return None if auth is None else auth.check(request)


def _security_headers(response: Response) -> Response:
    auth = serving().auth
    if auth is not None:
        auth.remember(request, response)
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
