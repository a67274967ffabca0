"""`kboard serve` as a user runs it: a real process, real sockets, Ctrl-C or SIGTERM to stop."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from bench.server import free_port

from .conftest import scalar_event, write_events


@pytest.fixture()
def logdir(tmp_path: Path) -> Path:
    write_events(tmp_path / "run" / "events.out.tfevents.1", [scalar_event("loss", 0, 1.0)])
    return tmp_path


def test_serves_on_localhost_and_stops_on_ctrl_c(logdir: Path, kboard_server) -> None:
    server = kboard_server(
        "serve", "--logdir", logdir, "--port", str(free_port()), stop_signal=signal.SIGINT
    )
    url = server.url
    assert url.startswith("http://localhost:")
    with urllib.request.urlopen(url + "/api/runs", timeout=10) as response:
        assert [r["name"] for r in json.loads(response.read())["runs"]] == ["run"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    with urllib.request.urlopen(url + "/", timeout=10) as response:
        assert response.headers["Server"] == "kboard"  # waitress, not Flask's debug server
    assert server.stop() == 0 and "Traceback" not in server.output()
    assert "kboard: stopped" in server.output()


def test_stops_cleanly_on_sigterm(logdir: Path, kboard_server) -> None:
    server = kboard_server("serve", "--logdir", logdir, "--port", str(free_port()))
    assert server.stop() == 0  # not -SIGTERM: the server stopped as on Ctrl-C
    assert "kboard: stopped" in server.output() and "Traceback" not in server.output()


def test_a_taken_port_that_was_asked_for_is_an_error(logdir: Path) -> None:
    port = free_port()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        result = subprocess.run(
            [sys.executable, "-m", "kboard", "serve", "--logdir", str(logdir), "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is in use" in result.stderr
    assert "Traceback" not in result.stderr and "serving at" not in result.stdout


def test_without_a_port_a_taken_6006_moves_to_the_next_and_says_so(
    logdir: Path, kboard_server
) -> None:
    with socket.socket() as busy:
        try:  # hold 6006 (if something else already does, all the better)
            busy.bind(("127.0.0.1", 6006))
            busy.listen()
        except OSError:
            pass
        server = kboard_server("serve", "--logdir", logdir)
        assert not server.url.endswith(":6006")
        with urllib.request.urlopen(server.url + "/api/runs", timeout=10) as response:
            assert response.status == 200
        server.stop()
    assert "port 6006 is in use; using" in server.output()


def test_a_logdir_that_is_a_file_is_refused(logdir: Path) -> None:
    event_file = logdir / "run" / "events.out.tfevents.1"
    result = subprocess.run(
        [sys.executable, "-m", "kboard", "serve", "--logdir", str(event_file), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1 and "is a file, not a directory" in result.stderr
    assert f"--logdir {event_file.parent}" in result.stderr and "Traceback" not in result.stderr


def test_live_point_reaches_the_api_quickly(logdir: Path, kboard_server) -> None:
    url = kboard_server("serve", "--logdir", logdir, "--port", str(free_port())).url
    write_events(
        logdir / "run" / "events.out.tfevents.1", [scalar_event("loss", 1, 2.0)], append=True
    )
    written = time.monotonic()
    steps: list[int] = []
    while time.monotonic() - written < 2:
        with urllib.request.urlopen(url + "/api/scalars?tag=loss", timeout=10) as response:
            steps = json.loads(response.read())["series"][0]["steps"]
        if steps == [0, 1]:
            break
        time.sleep(0.05)
    assert steps == [0, 1]


def test_bad_logdir_spec_is_a_clear_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kboard", "serve", "--logdir_spec", "a:/x,/y,/z"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "name1:path1" in result.stderr
    assert "Traceback" not in result.stderr
