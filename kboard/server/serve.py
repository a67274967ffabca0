"""Run the app with waitress, a production WSGI server, on a free port."""

from __future__ import annotations

import errno
import logging
import os
import socket

import click

from kboard.ingest import parse_logdir_spec
from kboard.server.app import create_app

log = logging.getLogger("kboard")
PORT_TRIES = 10


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind ``host:port``, or the next free port when it is taken (said on stderr)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    last_error: OSError | None = None
    for candidate in range(port, port + PORT_TRIES) if port else [0]:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, candidate))
        except OSError as exc:
            sock.close()
            last_error = exc
            if exc.errno != errno.EADDRINUSE:
                break
            continue
        sock.listen(1024)  # accept connections from now on, even before waitress runs
        if candidate != port and port:
            click.echo(f"kboard: port {port} is in use; using {candidate}", err=True)
        return sock
    raise click.ClickException(
        f"cannot listen on {host}:{port}: {last_error.strerror if last_error else 'no port'}"
    )


def serve_forever(
    logdir: str,
    *,
    host: str,
    port: int,
    reload_interval: float,
    watch: bool,
    threads: int,
    cache_dir: str | None = None,
) -> None:
    """Bind, read the logdir, print the URL and serve until interrupted."""
    import waitress

    sock = bind_socket(host, port)
    missing = [p for p in logdir_paths(logdir) if not os.path.isdir(p)]
    for path in missing:
        click.echo(f"kboard: {path} does not exist yet; waiting for event files there", err=True)
    app = create_app(
        logdir, reload_interval=reload_interval, watch=watch, host=host, cache_dir=cache_dir
    )
    state = app.extensions["kboard"]
    bound_port = sock.getsockname()[1]
    shown_host = "localhost" if host in ("127.0.0.1", "::1") else host
    if ":" in shown_host:
        shown_host = f"[{shown_host}]"
    click.echo(f"kboard {logdir}: serving at http://{shown_host}:{bound_port}/ (Ctrl-C stops)")
    try:
        waitress.serve(
            app, sockets=[sock], threads=threads, ident="kboard", channel_timeout=60, _quiet=True
        )
    except KeyboardInterrupt:
        pass
    finally:
        if state.live is not None:
            state.live.stop()
        click.echo("kboard: stopped", err=True)


def logdir_paths(logdir: str) -> list[str]:
    """The directories a logdir spec names."""
    return list(parse_logdir_spec(logdir).values())
