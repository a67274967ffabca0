"""Twelve tabs of one browser on one `kboard serve`: one shared stream, every tab live."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests import test_browser

from .conftest import scalar_event, write_events

pytestmark = pytest.mark.browser
browser = test_browser.browser

TABS = 12
EVENTS = "events.out.tfevents.1"
HAS_STEP = """step => {
  const plot = document.querySelector('.kb-card .js-plotly-plot');
  return Boolean(plot && plot.data && plot.data.some(t => Array.from(t.x).includes(step)));
}"""


def wait_everywhere(pages: list, step: int, seconds: float) -> float:
    """Wait until every page draws ``step``; the seconds that took (fails past ``seconds``)."""
    started = time.monotonic()
    for page in pages:
        left = seconds - (time.monotonic() - started)
        page.wait_for_function(HAS_STEP, arg=step, timeout=max(left, 0.001) * 1000)
    return time.monotonic() - started


def role(page) -> str:
    return page.locator("#kb-live").get_attribute("data-role") or ""


def test_twelve_tabs_share_one_stream_and_survive_the_leader(
    browser, tmp_path: Path, kboard_server
) -> None:
    events = tmp_path / "run" / EVENTS
    write_events(events, [scalar_event("loss", step, 1.0 / (step + 1)) for step in range(5)])
    server = kboard_server(
        "serve", "--logdir", tmp_path, "--port", "0", "--reload-interval", "0.5"
    )  # fmt: skip
    context = browser.new_context()
    streams: list[str] = []
    errors: list[str] = []
    context.on("request", lambda r: r.url.endswith("/api/stream") and streams.append(r.url))
    try:
        pages = []
        for _ in range(TABS):
            page = context.new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server.url + "/")
            pages.append(page)
        for page in pages:
            page.wait_for_function(HAS_STEP, arg=4, timeout=20_000)
            page.locator('.kb-live[data-state="live"]').wait_for(timeout=10_000)
        roles = [role(page) for page in pages]
        assert sorted(roles) == ["follower"] * (TABS - 1) + ["leader"], roles
        assert len(streams) == 1, f"{len(streams)} streams for {TABS} tabs"

        write_events(events, [scalar_event("loss", 5, 0.1)], append=True)
        assert wait_everywhere(pages, 5, 2.0) < 2.0

        # The leader goes; a point written before anyone took over still reaches every tab.
        leader = pages[roles.index("leader")]
        leader.close()
        pages.remove(leader)
        write_events(events, [scalar_event("loss", 6, 0.05)], append=True)
        assert wait_everywhere(pages, 6, 2.0) < 2.0
        for page in pages:
            page.locator('.kb-live[data-state="live"]').wait_for(timeout=5_000)
        assert sorted(role(page) for page in pages) == ["follower"] * (TABS - 2) + ["leader"]
        assert len(streams) == 2  # the new leader's

        write_events(events, [scalar_event("loss", 7, 0.02)], append=True)
        assert wait_everywhere(pages, 7, 2.0) < 2.0
        assert errors == []
    finally:
        context.close()
