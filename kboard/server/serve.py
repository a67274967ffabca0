"""Run the app with waitress, a production WSGI server, on a free port."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from types import FrameType
from typing import Any
from urllib.parse import quote

import click

from kboard.provider import StorageError, logdir_label, logdir_roots, not_a_directory
from kboard.server.app import create_app
from kboard.server.auth import choose_token, is_loopback, normalize_prefix
from kboard.server.memory import tune_malloc
from kboard.server.streams import DEFAULT_MAX_STREAMS, serve_streams_from_event_loop

log = logging.getLogger("kboard")
DEFAULT_PORT = 6006
PORT_TRIES = 10
# Connections for data requests (keep-alive pages and scripts) on top of the open streams.
CONNECTIONS_BEYOND_STREAMS = 1000


def bind_socket(host: str, port: int | None) -> socket.socket:
    """Bind ``host:port``; with no port, 6006 or the next free one (said on stderr).

    A port the user chose is never swapped for another: taken, it is an error (someone may
    have a tunnel or a bookmark to exactly that port).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    last_error: OSError | None = None
    explicit = port is not None
    port = DEFAULT_PORT if port is None else port
    candidates = [port] if explicit else range(port, port + PORT_TRIES)
    for candidate in candidates:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, candidate))
        except OSError as exc:
            sock.close()
            last_error = exc
            if exc.errno != errno.EADDRINUSE:
                break
            if explicit:
                raise click.ClickException(
                    f"port {port} on {host} is in use (another kboard or TensorBoard?); "
                    "choose another with --port, or leave --port out to take the next free one"
                ) from None
            continue
        sock.listen(1024)  # accept connections from now on, even before waitress runs
        if candidate != port and port:
            click.echo(f"kboard: port {port} is in use; using {candidate}", err=True)
        return sock
    raise click.ClickException(
        f"cannot listen on {host}:{port}: {last_error.strerror if last_error else 'no port'}"
    )


def serve_forever(
    logdir: str | Mapping[str, str],
    *,
    host: str,
    port: int | None,
    reload_interval: float | None,
    watch: bool,
    threads: int,
    cache_dir: str | None = None,
    token: str | None = None,
    no_auth: bool = False,
    allowed_hosts: Sequence[str] = (),
    path_prefix: str = "",
    max_streams: int = DEFAULT_MAX_STREAMS,
    storage_options: Mapping[str, Any] | None = None,
) -> None:
    """Bind, print the URL and serve until interrupted, reading the logdir meanwhile.

    Bound beyond loopback, a token is required (a random one, printed in the URL, unless
    ``token`` gives it or ``no_auth`` turns it off).
    """
    import waitress

    tune_malloc()
    try:
        token, generated = choose_token(host, token, no_auth)
        path_prefix = normalize_prefix(path_prefix)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    roots = logdir_roots(logdir)
    paths = [path for path in roots.values() if "://" not in path]  # local ones
    for path in paths:
        if os.path.exists(path) and not os.path.isdir(path):
            raise click.ClickException(not_a_directory(path))
    sock = bind_socket(host, port)
    for path in paths:
        if not os.path.exists(path):
            click.echo(
                f"kboard: {path} does not exist yet; waiting for event files there", err=True
            )
    try:
        app = create_app(
            logdir,
            storage_options=storage_options,
            reload_interval=reload_interval,
            watch=watch,
            host=host,
            cache_dir=cache_dir,
            token=token,
            allowed_hosts=allowed_hosts,
            path_prefix=path_prefix,
            max_streams=max_streams,
            read_first=False,
        )
    except (ImportError, StorageError) as exc:  # no fsspec backend, a bad storage option
        sock.close()
        raise click.ClickException(str(exc)) from None
    state = app.extensions["kboard"]
    bound_port = sock.getsockname()[1]
    shown_host = "localhost" if host in ("127.0.0.1", "::1") else host
    if ":" in shown_host:
        shown_host = f"[{shown_host}]"
    label = logdir_label(roots)
    url = f"http://{shown_host}:{bound_port}{path_prefix}/"
    connections = max_streams + CONNECTIONS_BEYOND_STREAMS
    _allow_open_files(connections + 64)
    server = waitress.create_server(
        app,
        sockets=[sock],
        threads=threads,
        ident="kboard",
        channel_timeout=60,
        connection_limit=connections,
        asyncore_use_poll=True,  # select() cannot watch descriptors above 1023
    )
    # Streams are carried by waitress's I/O loop, so they hold no worker thread.
    streams = serve_streams_from_event_loop(server, state.streams)
    previous = _stop_on_sigterm()
    try:
        _say_where(label, url, host, bound_port, token, generated, no_auth)
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        streams.stop()
        if state.live is not None:
            state.live.stop()
        click.echo("kboard: stopped", err=True)


def _say_where(
    label: str, url: str, host: str, port: int, token: str | None, generated: bool, no_auth: bool
) -> None:
    """Print the URL (with a generated token: this once only) and any warning."""
    if no_auth and not is_loopback(host):
        click.echo(
            f"kboard: WARNING: --no-auth: anyone who can reach {host}:{port} "
            "can read every log served",
            err=True,
        )
    if token is None:
        click.echo(f"kboard {label}: serving at {url} (Ctrl-C stops)")
    elif generated:
        click.echo(f"kboard {label}: serving at {url}?token={quote(token, safe='')} (Ctrl-C stops)")
    else:  # the user's own token is never printed
        click.echo(
            f"kboard {label}: serving at {url} (Ctrl-C stops); open it with ?token= and the "
            "token you gave, or send it as 'Authorization: Bearer TOKEN'"
        )


def _allow_open_files(count: int) -> None:
    """Raise the soft limit of open files towards ``count`` (within the hard limit)."""
    try:
        import resource
    except ImportError:  # not on Windows
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = count if hard == resource.RLIM_INFINITY else min(count, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _stop_on_sigterm() -> Callable[[int, FrameType | None], object] | int | None:
    """Make SIGTERM stop the server as Ctrl-C does; return the handler it replaced.

    Service managers and test harnesses stop servers with SIGTERM (a background job cannot
    even get SIGINT). Only the main thread may set handlers; elsewhere this returns None.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
