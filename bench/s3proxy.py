"""A loopback HTTP proxy in front of an S3-compatible server: counts requests, injects faults.

Point a client's endpoint at :attr:`FaultProxy.url`; every request is forwarded to the
upstream server unless a fault rule matches it first. Used by the object-store tests (faults)
and by ``bench/s3.py`` (to count the HTTP requests a reload really makes).
"""

from __future__ import annotations

import http.client
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_ERROR_XML = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
    "<Message>{message}</Message><RequestId>kboard-proxy</RequestId></Error>"
)


@dataclass
class Fault:
    """What to do to the requests that ``match`` (``method``, ``path with query``).

    ``action``: ``"error"`` (answer ``status`` with the S3 error ``code``), ``"reset"``
    (close the connection abruptly) or ``"delay"`` (wait ``seconds``, then forward).
    ``times``: how many requests it applies to (None: all).
    """

    match: Callable[[str, str], bool]
    action: str
    status: int = 500
    code: str = "InternalError"
    seconds: float = 0.0
    times: int | None = None


class FaultProxy:
    """A threaded HTTP proxy to ``upstream`` with a request log and fault rules."""

    def __init__(self, upstream: str) -> None:
        target = urlsplit(upstream)
        self.upstream = (target.hostname or "127.0.0.1", target.port or 80)
        self.requests: list[tuple[str, str]] = []
        self.faults: list[Fault] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()
            self.requests.clear()

    def count(self, method: str | None = None, contains: str = "") -> int:
        """Requests seen (of ``method``, whose path holds ``contains``)."""
        with self._lock:
            return sum(
                1 for m, p in self.requests if (method is None or m == method) and contains in p
            )

    def object_gets(self) -> int:
        """GETs of object bytes (not listings: those have a ``list-type`` query)."""
        with self._lock:
            return sum(1 for m, p in self.requests if m == "GET" and "list-type=" not in p)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _fault_for(self, method: str, path: str) -> Fault | None:
        with self._lock:
            self.requests.append((method, path))
            for fault in self.faults:
                if (fault.times is None or fault.times > 0) and fault.match(method, path):
                    if fault.times is not None:
                        fault.times -= 1
                    return fault
        return None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fault = proxy._fault_for(self.command, self.path)
                if fault is not None and fault.action == "reset":
                    # SO_LINGER 0: the peer sees a connection reset, not a clean close.
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                    self.close_connection = True
                    self.connection.close()
                    return
                if fault is not None and fault.action == "delay":
                    time.sleep(fault.seconds)
                if fault is not None and fault.action == "error":
                    data = _ERROR_XML.format(code=fault.code, message=fault.code).encode()
                    self.send_response(fault.status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                    return
                self._forward(body)

            def _forward(self, body: bytes) -> None:
                conn = http.client.HTTPConnection(*proxy.upstream, timeout=60)
                try:
                    conn.putrequest(
                        self.command, self.path, skip_host=True, skip_accept_encoding=True
                    )
                    for name, value in self.headers.items():
                        conn.putheader(name, value)
                    conn.endheaders(body or None)
                    response = conn.getresponse()
                    data = response.read()
                except OSError:  # the server went away (e.g. a delayed request after a test)
                    self.close_connection = True
                    return
                finally:
                    conn.close()
                self.send_response(response.status)
                length = str(len(data))
                for name, value in response.getheaders():
                    if name.lower() == "content-length" and self.command == "HEAD":
                        length = value  # the object's size, with no body
                    elif name.lower() not in ("transfer-encoding", "content-length", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", length)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle

        return Handler
