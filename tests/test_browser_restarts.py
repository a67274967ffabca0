"""Restarted runs in a real Chromium: the run selector's badge, restart marks, earlier attempts."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from kboard import SummaryWriter
from tests import test_browser

pytestmark = pytest.mark.browser

# test_browser.py's fixtures: Chromium, pages on a logdir served in a thread.
browser = test_browser.browser
open_page = test_browser.open_page

STEPS = 20
ATTEMPTS = 3
# The traces of a chart, with what tells an earlier attempt from the lines of today.
TRACES = """tag => {
  const plot = document.querySelector(`.kb-card[data-tag="${tag}"] .js-plotly-plot`);
  return plot.data.map(t => ({run: t.meta.run, kind: t.meta.kind, attempt: t.meta.attempt ?? null,
    x: Array.from(t.x), y: Array.from(t.y), color: t.line.color, width: t.line.width,
    opacity: t.opacity ?? 1}));
}"""
SHAPES = """tag => {
  const plot = document.querySelector(`.kb-card[data-tag="${tag}"] .js-plotly-plot`);
  return (plot.layout.shapes || []).map(s => ({x0: s.x0, x1: s.x1, color: s.line.color}));
}"""
EARLIER_DRAWN = f"""n => ({TRACES})('loss').filter(t => t.kind === 'earlier').length === n"""


def attempt_values(attempt: int) -> list[float]:
    """What training ``attempt`` (0, 1, 2) logged at steps 0..19 (exact in float32)."""
    return [4.0 * attempt + 0.25 * step for step in range(STEPS)]


@pytest.fixture()
def restarted_logdir(tmp_path: Path) -> Path:
    """'restarted' trained three times into one directory; 'normal' trained once."""
    for attempt in range(ATTEMPTS):
        with SummaryWriter(str(tmp_path / "restarted")) as writer:
            for step, value in enumerate(attempt_values(attempt)):
                writer.add_scalar("loss", value, step)
    with SummaryWriter(str(tmp_path / "normal")) as writer:
        for step in range(STEPS):
            writer.add_scalar("loss", 1.0 + 0.5 * step, step)
    return tmp_path


def test_restarted_run_is_marked_and_its_earlier_attempts_drawn_on_request(
    open_page, restarted_logdir: Path
) -> None:
    watched = open_page(restarted_logdir, "?smooth=0")
    watched.wait_for_charts(1)
    page = watched.page
    # The run selector marks the restarted run, and only it.
    badge = page.locator('.kb-run[data-run="restarted"] .kb-run-restarts')
    assert badge.text_content() == "restarted 2×"
    replaced = (ATTEMPTS - 1) * STEPS
    assert badge.get_attribute("title") == (
        f"{replaced} earlier values replaced; show them with 'Earlier attempts'"
    )
    assert page.locator('.kb-run[data-run="normal"] .kb-run-restarts').count() == 0

    # Today's chart: the last attempt only, and a dotted mark where the run began again.
    before = page.evaluate(TRACES, "loss")
    assert {t["kind"] for t in before} == {"raw", "smoothed"}
    restarted = next(t for t in before if t["run"] == "restarted" and t["kind"] == "raw")
    assert restarted["y"] == attempt_values(ATTEMPTS - 1)
    colour = restarted["color"]
    red, green, blue = bytes.fromhex(colour[1:])
    shapes = page.evaluate(SHAPES, "loss")
    assert shapes == [{"x0": 0, "x1": 0, "color": f"rgba({red}, {green}, {blue}, 0.6)"}]

    # The switch lands in the URL and draws both earlier attempts, faded, as they were logged.
    switch = page.get_by_label("Earlier attempts")
    assert not switch.is_checked()
    switch.check()
    page.wait_for_function("() => new URLSearchParams(location.search).get('earlier') === '1'")
    page.wait_for_function(EARLIER_DRAWN, arg=ATTEMPTS - 1, timeout=10_000)
    earlier = [t for t in page.evaluate(TRACES, "loss") if t["kind"] == "earlier"]
    assert [(t["run"], t["attempt"]) for t in earlier] == [("restarted", 0), ("restarted", 1)]
    for trace in earlier:
        assert trace["y"] == attempt_values(trace["attempt"])
        assert trace["x"] == list(range(STEPS))
        assert trace["color"] == colour and trace["opacity"] < 0.5 and trace["width"] <= 1

    # Hovering says which attempt a value is from.
    plot = page.locator('.kb-card[data-tag="loss"] .nsewdrag')
    box = plot.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    page.wait_for_function(
        "() => document.querySelector('.kb-card[data-tag=\"loss\"] .hoverlayer')"
        ".textContent.includes('attempt 2 of 3')"
    )
    hover = page.locator('.kb-card[data-tag="loss"] .hoverlayer').text_content()
    assert "restarted · attempt 1 of 3" in hover and "restarted · attempt 2 of 3" in hover

    # The same URL opened again has the switch on.
    again = open_page(restarted_logdir, "?" + urlsplit(page.url).query)
    again.wait_for_charts(1)
    page2 = again.page
    page2.wait_for_function(EARLIER_DRAWN, arg=ATTEMPTS - 1, timeout=10_000)
    assert page2.get_by_label("Earlier attempts").is_checked()

    # Restart marks are steps: the relative time axis has none.
    page2.get_by_label("Relative").check()
    page2.wait_for_function(f"() => ({SHAPES})('loss').length === 0")
    page2.get_by_label("Step").check()
    page2.wait_for_function(f"() => ({SHAPES})('loss').length === 1")

    # Off again: the chart is today's chart, and the URL says nothing of the switch.
    page2.get_by_label("Earlier attempts").uncheck()
    page2.wait_for_function(EARLIER_DRAWN, arg=0)
    page2.wait_for_function("() => !new URLSearchParams(location.search).has('earlier')")
    assert page2.evaluate(TRACES, "loss") == before
    watched.assert_clean()
    again.assert_clean()
