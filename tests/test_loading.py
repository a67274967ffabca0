"""Serving starts at once: the page and API answer while the logdir is read, runs appear as
they are read, and /api/status (and the page's header) say how far the read is."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from kboard.ingest import LogdirReader
from kboard.server.app import create_app

from .conftest import scalar_event, write_events
from .test_browser import CHROMIUM, CHROMIUM_ARGS, browser, serve  # noqa: F401 - the fixture

RUNS = ("a_first", "b_second", "c_third")


class PausedReader(LogdirReader):
    """A reader that stops before its second run until ``resume`` is set (a slow logdir)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.resume = threading.Event()
        self.paused = threading.Event()

    def _reload_run(self, state, paths, report) -> None:
        if state.name == RUNS[1] and not self.resume.is_set():
            self.paused.set()
            assert self.resume.wait(30)
        super()._reload_run(state, paths, report)


@pytest.fixture()
def logdir(tmp_path: Path) -> Path:
    for run in RUNS:
        write_events(
            tmp_path / run / "events.out.tfevents.1",
            [scalar_event("loss", step, 1.0 / (step + 1)) for step in range(50)],
        )
    return tmp_path


def _wait_for(check, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_answers_while_reading_and_runs_appear_as_read(logdir: Path) -> None:
    reader = PausedReader(str(logdir))
    app = create_app(str(logdir), reader=reader, live=False, read_first=False)
    client = app.test_client()
    try:
        assert reader.paused.wait(10)
        assert client.get("/").status_code == 200
        status = client.get("/api/status").get_json()
        assert status["loading"] and status["reading"]
        assert (status["runs_found"], status["runs_read"], status["runs"]) == (3, 1, 1)
        assert status["bytes_read"] > 0 and status["first_read_seconds"] is None
        runs = [r["name"] for r in client.get("/api/runs").get_json()["runs"]]
        assert runs == [RUNS[0]]
        assert len(client.get(f"/api/scalars?tag=loss&run={RUNS[0]}").get_json()["series"]) == 1
    finally:
        reader.resume.set()
    _wait_for(lambda: not client.get("/api/status").get_json()["loading"])
    status = client.get("/api/status").get_json()
    assert (status["runs_found"], status["runs_read"], status["runs"]) == (3, 3, 3)
    assert not status["reading"] and status["first_read_seconds"] >= 0
    assert [r["name"] for r in client.get("/api/runs").get_json()["runs"]] == list(RUNS)


def test_read_first_still_reads_before_answering(logdir: Path) -> None:
    client = create_app(str(logdir), live=False).test_client()
    status = client.get("/api/status").get_json()
    assert not status["loading"] and status["runs"] == 3


def test_a_first_read_that_fails_ends_loading(logdir: Path) -> None:
    class Broken(LogdirReader):
        def _discover(self):
            raise RuntimeError("a bug")

    client = create_app(str(logdir), reader=Broken(str(logdir)), live=False, read_first=False)
    _wait_for(lambda: not client.test_client().get("/api/status").get_json()["loading"])


def test_kboard_serve_answers_at_once(logdir: Path, kboard_server) -> None:
    server = kboard_server("serve", "--logdir", logdir, "--port", "0", "--no-watch", "--no-cache")

    def status() -> dict:
        with urllib.request.urlopen(server.url + "/api/status", timeout=10) as response:
            return json.loads(response.read())

    _wait_for(lambda: not status()["loading"])
    assert status()["runs"] == 3


@contextmanager
def _serve_paused(logdir: Path, reader: PausedReader) -> Iterator[str]:
    with serve(logdir, reader=reader, read_first=False) as base:
        try:
            yield base
        finally:
            reader.resume.set()


@pytest.mark.browser
def test_page_shows_progress_then_every_run(browser, logdir: Path) -> None:  # noqa: F811
    reader = PausedReader(str(logdir))
    with _serve_paused(logdir, reader) as base:
        assert reader.paused.wait(10)
        page = browser.new_page()
        page.goto(base)
        loading = page.locator("#kb-loading")
        loading.wait_for(state="visible", timeout=10_000)
        assert loading.text_content().startswith("reading logdir: 1 of 3 runs")
        page.locator(".kb-run").first.wait_for(timeout=10_000)
        assert page.locator(".kb-run").count() == 1  # the run read so far
        reader.resume.set()
        loading.wait_for(state="hidden", timeout=10_000)
        page.wait_for_function("() => document.querySelectorAll('.kb-run').length === 3")
        page.close()


def test_serving_imports_only_what_it_needs_at_start() -> None:
    import subprocess
    import sys

    code = (
        "import sys, kboard.cli, kboard.server.serve, kboard.server.app; "
        "print(sorted(m for m in ('PIL', 'markdown_it', 'pandas', 'tensorflow') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"  # images, text and pandas load on first use
