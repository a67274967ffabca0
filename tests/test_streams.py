"""Live streams hold no worker thread: many open streams, data still fast, all released."""

from __future__ import annotations

import re
import selectors
import socket
import time
import urllib.request
from pathlib import Path

import pytest

from kboard.server.streams import RETRY_AFTER_SECONDS

from .conftest import scalar_event, write_events

STREAMS = 100
GENERATION = re.compile(rb"event: generation\r?\ndata: \{\"generation\": (\d+)\}")


@pytest.fixture()
def logdir(tmp_path: Path) -> Path:
    write_events(tmp_path / "run" / "events.out.tfevents.1", [scalar_event("loss", 0, 1.0)])
    return tmp_path


def open_streams(port: int, count: int) -> list[socket.socket]:
    socks = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(f"GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        socks.append(sock)
    return socks


def read_all(socks: list[socket.socket], done, timeout: float) -> dict[socket.socket, bytes]:
    """Read every socket until ``done(bytes)`` holds for each (or the time is up)."""
    received = {sock: b"" for sock in socks}
    waiting = set(socks)
    with selectors.DefaultSelector() as selector:
        for sock in socks:
            selector.register(sock, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while waiting and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=0.2):
                chunk = key.fileobj.recv(65536)
                received[key.fileobj] += chunk
                if not chunk or done(received[key.fileobj]):
                    waiting.discard(key.fileobj)
                    selector.unregister(key.fileobj)
    return received


def generations(data: bytes) -> list[int]:
    return [int(g) for g in GENERATION.findall(data)]


def timed_get(url: str) -> float:
    started = time.monotonic()
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        response.read()
    return time.monotonic() - started


def server_threads(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"Threads:\s+(\d+)", status).group(1))


def test_a_hundred_streams_leave_four_workers_free(logdir: Path, kboard_server) -> None:
    server = kboard_server(
        "serve", "--logdir", logdir, "--port", "0", "--threads", "4",
        "--reload-interval", "0.5", "--max-streams", str(STREAMS),
    )  # fmt: skip
    port = server.port
    socks = open_streams(port, STREAMS)
    try:
        first = read_all(socks, lambda b: bool(generations(b)), timeout=20)
        assert all(b.startswith(b"HTTP/1.1 200") for b in first.values())
        assert all(generations(b) for b in first.values()), "a stream got no first event"
        threads = server_threads(server.proc.pid)
        assert threads < 20, f"{threads} threads for {STREAMS} streams"

        # Data requests do not wait behind the open streams.
        for path in ["/api/runs", "/api/tags/scalars", "/api/scalars?tag=loss", "/data/runs"] * 5:
            assert timed_get(server.url + path) < 1.0, path

        # One stream more than the bound: 503 with Retry-After, at once.
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(server.url + "/api/stream", timeout=10)
        assert refused.value.code == 503
        assert refused.value.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
        refused.value.close()

        # A point written reaches every stream.
        before = {s: generations(b)[-1] for s, b in first.items()}
        write_events(
            logdir / "run" / "events.out.tfevents.1", [scalar_event("loss", 1, 2.0)], append=True
        )
        changed = read_all(
            socks, lambda b: bool(generations(b)) and generations(b)[-1] > 0, timeout=10
        )
        late = [s for s in socks if not generations(changed[s])]
        assert late == [], f"{len(late)} of {STREAMS} streams got no change notification"
        assert all(generations(changed[s])[-1] > before[s] for s in socks)
    finally:
        for sock in socks:
            sock.close()

    # Every stream is released once its client has gone: the full bound opens again.
    deadline = time.monotonic() + 10
    while True:
        again = open_streams(port, STREAMS)
        answers = read_all(again, lambda b: b"\r\n\r\n" in b, timeout=10)
        refused_count = sum(b.startswith(b"HTTP/1.1 503") for b in answers.values())
        for sock in again:
            sock.close()
        if refused_count == 0:
            break
        assert time.monotonic() < deadline, f"{refused_count} streams still held"
        time.sleep(0.5)
    assert all(b.startswith(b"HTTP/1.1 200") for b in answers.values())
    server.stop()
    assert "Traceback" not in server.output()


def test_a_stream_beyond_the_bound_is_refused_by_any_server(make_app, logdir: Path) -> None:
    app = make_app(logdir, max_streams=1)
    client = app.test_client()
    held = client.get("/api/stream", buffered=False)
    assert held.status_code == 200 and held.mimetype == "text/event-stream"
    assert next(held.response) == b"retry: 1000\n"
    assert next(held.response).startswith(b"event: generation\n")
    refused = client.get("/api/stream")
    assert refused.status_code == 503 and refused.is_json
    assert refused.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
    held.close()  # the client went: its place is free
    again = client.get("/api/stream", buffered=False)
    assert again.status_code == 200
    again.close()
