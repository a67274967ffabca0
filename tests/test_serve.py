"""`kboard serve` as a user runs it: a real process, real sockets, Ctrl-C to stop."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from .conftest import scalar_event, write_events


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(logdir: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "kboard", "serve", "--logdir", str(logdir), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()
    match = re.search(r"serving at (http://\S+)/", line)
    if not match:
        proc.kill()
        pytest.fail(f"no URL printed: {line!r} {proc.stderr.read()}")
    return proc, match.group(1)


def stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    return err


@pytest.fixture()
def logdir(tmp_path: Path) -> Path:
    write_events(tmp_path / "run" / "events.out.tfevents.1", [scalar_event("loss", 0, 1.0)])
    return tmp_path


def test_serves_on_localhost_and_stops_on_ctrl_c(logdir: Path) -> None:
    proc, url = start(logdir, "--port", str(free_port()))
    assert url.startswith("http://localhost:")
    with urllib.request.urlopen(url + "/api/runs", timeout=10) as response:
        assert [r["name"] for r in json.loads(response.read())["runs"]] == ["run"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    with urllib.request.urlopen(url + "/", timeout=10) as response:
        assert response.headers["Server"] == "kboard"  # waitress, not Flask's debug server
    err = stop(proc)
    assert proc.returncode == 0 and "Traceback" not in err


def test_busy_port_moves_to_the_next_and_says_so(logdir: Path) -> None:
    port = free_port()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        proc, url = start(logdir, "--port", str(port))
        try:
            assert not url.endswith(f":{port}")
            with urllib.request.urlopen(url + "/api/runs", timeout=10) as response:
                assert response.status == 200
        finally:
            err = stop(proc)
    assert f"port {port} is in use" in err


def test_live_point_reaches_the_api_quickly(logdir: Path) -> None:
    proc, url = start(logdir, "--port", str(free_port()))
    try:
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
    finally:
        stop(proc)


def test_bad_logdir_spec_is_a_clear_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kboard", "serve", "--logdir", "a:/x,/y"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "name:path" in result.stderr
    assert "Traceback" not in result.stderr
