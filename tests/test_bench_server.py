"""bench.server: whatever happens to a test, the servers it started do not outlive it."""

from __future__ import annotations

import json
import signal
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from bench.server import running, served

from .conftest import scalar_event, write_events

# A stand-in server: writes its pid and its child's pid to argv[1], prints a URL unless told
# not to, then sleeps; with "stubborn" it ignores SIGTERM.
FAKE = """
import os, signal, subprocess, sys, time
if "stubborn" in sys.argv:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
with open(sys.argv[1], "w") as f:
    f.write(f"{os.getpid()} {child.pid}")
if "silent" not in sys.argv:
    print("serving at http://127.0.0.1:9/", flush=True)
time.sleep(120)
"""


def fake(pids: Path, *flags: str) -> list[str]:
    return [sys.executable, "-c", FAKE, str(pids), *flags]


def started_pids(pids: Path) -> list[int]:
    deadline = time.monotonic() + 30
    while not pids.exists() or not pids.read_text():
        assert time.monotonic() < deadline, "the fake server did not start"
        time.sleep(0.01)
    return [int(pid) for pid in pids.read_text().split()]


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, killed but not yet reaped, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def gone(*pids: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while any(alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_a_server_that_prints_no_url_is_killed_after_the_timeout(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    started = time.monotonic()
    with (
        pytest.raises(RuntimeError, match="did not start"),
        running(fake(pids, "silent", "stubborn"), timeout=1, stop_timeout=1),
    ):
        pass
    assert time.monotonic() - started < 30
    assert gone(*started_pids(pids))  # SIGTERM ignored, so SIGKILL, to its child as well


def test_a_block_that_raises_stops_the_server(tmp_path: Path) -> None:
    write_events(tmp_path / "run" / "events.out.tfevents.1", [scalar_event("loss", 0, 1.0)])
    with pytest.raises(ZeroDivisionError), served(tmp_path, "--port", "0") as server:
        with urllib.request.urlopen(server.url + "/api/runs", timeout=10) as response:
            assert [r["name"] for r in json.loads(response.read())["runs"]] == ["run"]
        pid = server.proc.pid
        1 / 0  # noqa: B018 - a test failing inside the block
    assert server.proc.returncode == 0  # stopped with SIGTERM, cleanly
    assert "kboard: stopped" in server.output()
    assert gone(pid)


def test_a_hung_block_does_not_keep_its_server(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    with (
        pytest.raises(TimeoutError, match="longer than 1 s"),
        running(fake(pids), lifetime=1, stop_timeout=1) as server,
    ):
        assert server.port == 9
        leader, child = started_pids(pids)
        assert gone(leader, child, within=20)  # while the block still runs
    assert server.proc.returncode == -signal.SIGTERM


def test_ctrl_c_reaches_a_server_started_in_the_background(tmp_path: Path) -> None:
    """A background job ignores SIGINT and its children inherit that; a Ctrl-C test still works."""
    write_events(tmp_path / "run" / "events.out.tfevents.1", [scalar_event("loss", 0, 1.0)])
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as under `pytest &` or setsid
    try:
        with served(tmp_path, "--port", "0", stop_signal=signal.SIGINT, stop_timeout=10) as server:
            assert server.stop() == 0  # not -SIGKILL after ignoring SIGINT
    finally:
        signal.signal(signal.SIGINT, previous)
    assert "kboard: stopped" in server.output() and "Traceback" not in server.output()
