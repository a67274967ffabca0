"""Hostile run and tag names, markdown and files in a real Chromium: all inert, nothing fires."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from tensorboard.compat.proto import event_pb2, summary_pb2

from kboard.tfevents.protos import string_tensor
from tests import test_browser

from .conftest import scalar_event, write_events
from .test_faults import EVENTS, HOSTILE_RUNS

pytestmark = pytest.mark.browser

# test_browser.py's fixtures: Chromium, and pages on a logdir served in a thread.
browser = test_browser.browser
open_page = test_browser.open_page

TAGS = [
    "<img src=x onerror=alert(1)>",
    "javascript:alert(document.cookie)",
    "\u202egnp.exe",
    "nul\0byte",
    "t" * 10_000,
    "../../../etc/passwd",
    "%{y}<br>&amp;",
]
MARKDOWN = (
    "<script>alert(1)</script>\n\n<img src=x onerror=alert(1)>\n\n"
    "[js](javascript:alert(1)) [data](data:text/html,<script>alert(1)</script>) "
    "![i](data:image/svg+xml,<svg onload=alert(1)>)"
)
CORRUPT_RUN = "<svg onload=alert(1)>"
# Anything that would run, load or navigate: none may be in the page.
ACTIVE = """() => {
  const bad = [];
  for (const node of document.querySelectorAll('*')) {
    if (node.tagName === 'SCRIPT' && !node.src) bad.push('inline script');
    if (node.tagName === 'IFRAME' || node.tagName === 'OBJECT') bad.push(node.tagName);
    for (const attr of node.attributes) {
      if (attr.name.startsWith('on')) bad.push(`${node.tagName} ${attr.name}`);
      if (['href', 'src', 'xlink:href', 'action'].includes(attr.name)
          && /^\\s*(javascript|data:text|vbscript)/i.test(attr.value)) {
        bad.push(`${node.tagName} ${attr.name}=${attr.value.slice(0, 40)}`);
      }
    }
  }
  return bad;
}"""
TRACES = """() => [...document.querySelectorAll('.kb-card .js-plotly-plot')].flatMap(
  p => (p.data || []).map(t => ({run: t.meta && t.meta.run, name: t.name})))"""


def _text_event(tag: str, text: str) -> event_pb2.Event:
    value = summary_pb2.Summary.Value(tag=tag, tensor=string_tensor([text.encode()], []))
    value.metadata.plugin_data.plugin_name = "text"
    return event_pb2.Event(step=0, wall_time=1.0, summary=summary_pb2.Summary(value=[value]))


@pytest.fixture()
def hostile_logdir(tmp_path: Path) -> Path:
    for i, run in enumerate(HOSTILE_RUNS):
        events = [scalar_event(tag, s, i + 0.5 * s) for s in range(5) for tag in TAGS]
        events.append(_text_event("notes/<script>alert(1)</script>", MARKDOWN))
        write_events(tmp_path / run / EVENTS, events)
    corrupt = tmp_path / CORRUPT_RUN
    corrupt.mkdir()
    (corrupt / EVENTS).write_bytes(b"<script>alert(1)</script> not events" * 3)
    return tmp_path


def draw_every_chart(page) -> None:
    """Scroll each card into view (charts are drawn when seen) until all are drawn."""
    page.wait_for_function(f"() => document.querySelectorAll('.kb-card').length === {len(TAGS)}")
    for i in range(len(TAGS)):
        page.locator(".kb-card").nth(i).scroll_into_view_if_needed()
        page.wait_for_function(
            "i => { const p = document.querySelectorAll('.kb-card')[i].querySelector("
            "'.js-plotly-plot'); return p && p.data; }",
            arg=i,
            timeout=15_000,
        )
    page.evaluate("() => window.scrollTo(0, 0)")


def test_hostile_names_are_inert_text_everywhere(open_page, hostile_logdir: Path) -> None:
    watched = open_page(hostile_logdir)
    page = watched.page
    draw_every_chart(page)
    # Sidebar: every run name exactly, as text.
    names = page.locator(".kb-run-name").all_text_contents()
    assert sorted(names) == sorted([*HOSTILE_RUNS, CORRUPT_RUN])
    # Card titles: every tag exactly, as text (the browser keeps NUL out of the DOM).
    titles = page.locator(".kb-card-title").all_text_contents()
    assert sorted(titles) == sorted(t.replace("\0", "\ufffd") for t in TAGS) or sorted(
        titles
    ) == sorted(TAGS)
    # Plotly: each trace is named after its run, escaped so Plotly shows it literally.
    traces = page.evaluate(TRACES)
    assert {t["run"] for t in traces} == set(HOSTILE_RUNS)
    assert all("<" not in t["name"] for t in traces if t["name"])
    # Hover over a chart: the names appear as text, no markup and no %{y} substitution.
    plot = page.locator(".kb-card .js-plotly-plot").first
    box = plot.locator(".nsewdrag").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    page.wait_for_function("() => document.querySelector('.hoverlayer').textContent.length > 0")
    hover = plot.locator(".hoverlayer").text_content()
    assert "<b>bold</b> %{y} & co" in hover and "javascript:alert(1)" in hover
    # The problem with the corrupt file is shown, its run name as text.
    summary = page.locator("#kb-problems summary")
    assert summary.is_visible() and summary.text_content().startswith("1 problem ")
    summary.click()
    problem = page.locator("#kb-problems li")
    assert problem.is_visible() and CORRUPT_RUN in problem.text_content()
    # URL state: deselect hostile runs, reload from the URL, the same state comes back.
    for run in HOSTILE_RUNS[:2]:
        page.locator(".kb-run", has=page.get_by_text(run, exact=True)).get_by_role(
            "checkbox"
        ).uncheck()
    page.wait_for_function("() => new URLSearchParams(location.search).getAll('off').length === 2")
    query = urlsplit(page.url).query
    assert sorted(parse_qs(query)["off"]) == sorted(HOSTILE_RUNS[:2])
    hrefs = page.locator("a[href]").evaluate_all("as => as.map(a => a.getAttribute('href'))")
    assert not [h for h in hrefs if h.strip().lower().startswith(("javascript", "data"))]
    again = open_page(hostile_logdir, "?" + query)
    draw_every_chart(again.page)
    checked = again.page.locator(".kb-run input").evaluate_all(
        "bs => bs.map(b => [b.value, b.checked])"
    )
    assert {v for v, on in checked if not on} == set(HOSTILE_RUNS[:2])
    for tab in ("images", "histograms", "distributions", "text", "model"):
        for w in (watched, again):
            w.page.get_by_role("tab", name=tab.capitalize()).click()
            w.page.wait_for_timeout(400)  # cards load and render
    again.page.wait_for_timeout(500)
    for w in (watched, again):
        assert w.page.evaluate(ACTIVE) == []
        w.assert_clean()  # no dialog fired, no console error, no request left the host
