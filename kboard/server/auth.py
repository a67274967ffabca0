"""Serving to a team: the token every request must carry, and serving under a path prefix."""

from __future__ import annotations

import hmac
import ipaddress
import json
import secrets
from collections.abc import Callable, Iterable
from typing import Any

from flask import Request, Response

from kboard.server.responses import json_error

TOKEN_PARAM = "token"
COOKIE_PREFIX = "kboard-token-"
LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost"})

# What a browser shows when it opens the page without the token: a form, no script.
LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>kboard: token required</title></head>
<body style="font-family: sans-serif; max-width: 36em; margin: 4em auto">
<h1>kboard needs its token</h1>
<p>Open the address <code>kboard serve</code> printed (it ends in <code>?token=…</code>),
or enter the token here.</p>
<form method="get"><input name="token" type="password" autocomplete="off" size="40"
aria-label="Token"> <button type="submit">Open</button></form>
</body></html>
"""


def is_loopback(host: str) -> bool:
    """Whether ``host`` is an address or name only this machine can reach."""
    name = host.strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def choose_token(host: str, token: str | None, no_auth: bool) -> tuple[str | None, bool]:
    """The token to require (None: none) and whether it was generated here.

    A token given is always required; without one, a host other than loopback gets a random
    token unless ``no_auth``.
    """
    if token is not None:
        check_token(token)
        return token, False
    if no_auth or is_loopback(host):
        return None, False
    return secrets.token_urlsafe(32), True


def check_token(token: str) -> None:
    """Refuse a token that would not survive a URL or a header (ValueError)."""
    if not token or any(c.isspace() or not c.isprintable() for c in token):
        raise ValueError("the token must be non-empty, without spaces or control characters")


def normalize_prefix(prefix: str | None) -> str:
    """``kboard/``, ``/kboard`` and ``/kboard/`` all become ``/kboard``; ``/`` or None is ``''``."""
    if not prefix:
        return ""
    parts = [p for p in prefix.split("/") if p]
    if any(p in (".", "..") or not p.isprintable() or "?" in p or "#" in p for p in parts):
        raise ValueError(f"not a usable path prefix: {prefix!r}")
    return "/" + "/".join(parts) if parts else ""


class TokenAuth:
    """Requires ``token`` by query (``?token=``), cookie or ``Authorization: Bearer``.

    A token that arrives in the query is kept in an HttpOnly, SameSite=Strict cookie, so the
    page's own requests (and the address bar, which the page rewrites) need not carry it.
    """

    def __init__(self, token: str, cookie_path: str = "/") -> None:
        check_token(token)
        self._token = token.encode()
        self.cookie_path = cookie_path

    def _matches(self, candidate: str | None) -> bool:
        if not candidate:
            return False
        return hmac.compare_digest(candidate.encode(), self._token)

    def cookie_name(self, request: Request) -> str:
        """One cookie per server port: cookies ignore ports, two kboards must not clash."""
        port = "".join(c for c in str(request.environ.get("SERVER_PORT", "")) if c.isdigit())
        return COOKIE_PREFIX + (port or "0")

    def check(self, request: Request) -> Response | None:
        """None when the request carries the token; a 401 answer otherwise."""
        header = request.headers.get("Authorization", "")
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() == "bearer" and self._matches(credentials.strip()):
            return None
        if self._matches(request.cookies.get(self.cookie_name(request))):
            return None
        if self._matches(request.args.get(TOKEN_PARAM)):
            request.environ["kboard.set_token_cookie"] = True
            return None
        if request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html":
            response = Response(LOGIN_PAGE, status=401, mimetype="text/html")
        else:
            response = json_error("this kboard needs its token (see `kboard serve --help`)", 401)
        response.headers["WWW-Authenticate"] = 'Bearer realm="kboard"'
        return response

    def remember(self, request: Request, response: Response) -> Response:
        """Set the cookie when the token came in the query."""
        if request.environ.get("kboard.set_token_cookie"):
            response.set_cookie(
                self.cookie_name(request),
                self._token.decode(),
                path=self.cookie_path,
                httponly=True,
                samesite="Strict",
                secure=request.is_secure,
            )
        return response


class PathPrefix:
    """WSGI middleware: serve the app under ``prefix`` (``/kboard``) and nothing outside it.

    The prefix moves from ``PATH_INFO`` to ``SCRIPT_NAME``, so every URL Flask builds
    (``url_for``) carries it; the page itself fetches relative URLs.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]], prefix: str) -> None:
        self.app = app
        self.prefix = prefix

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == self.prefix:
            query = environ.get("QUERY_STRING", "")
            location = self.prefix + "/" + (f"?{query}" if query else "")
            start_response("308 Permanent Redirect", [("Location", location), *_HEADERS])
            return [b""]
        if not path.startswith(self.prefix + "/"):
            message = {"error": f"not found: kboard is served under {self.prefix}/"}
            body = json.dumps(message).encode()
            headers = [("Content-Type", "application/json"), *_HEADERS]
            start_response("404 Not Found", [*headers, ("Content-Length", str(len(body)))])
            return [body]
        environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + self.prefix
        environ["PATH_INFO"] = path[len(self.prefix) :]
        return self.app(environ, start_response)


_HEADERS = [
    ("X-Content-Type-Options", "nosniff"),
    ("Cache-Control", "no-store"),
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
]
