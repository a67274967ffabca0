"""The page in a real Chromium: charts, live updates, URL state, escaping, no network."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from bench.server import CHROMIUM, CHROMIUM_ARGS
from kboard import SummaryWriter

pytestmark = pytest.mark.browser

SCREENSHOT = "/tmp/kboard_scalars.png"
XSS_TAG = "<img src=x onerror=alert(1)>"
HTML_RUN = "<b>bold</b> %{y} & co"

# JavaScript helpers evaluated in the page.
CHART_DATA = """tag => {
  const card = [...document.querySelectorAll('.kb-card')].find(c => c.dataset.tag === tag);
  const plot = card && card.querySelector('.js-plotly-plot');
  if (!plot || !plot.data) return null;
  return plot.data.map(t => ({run: t.meta.run, kind: t.meta.kind, x: Array.from(t.x),
                              y: Array.from(t.y), color: t.line && t.line.color}));
}"""


def smooth(values: list[float], weight: float) -> list[float]:
    """TensorBoard's debiased EMA, the reference the page must match."""
    out, last, n = [], 0.0, 0
    for v in values:
        if not math.isfinite(v):
            out.append(v)
            continue
        last = last * weight + (1 - weight) * v
        n += 1
        out.append(last / (1 - weight**n))
    return out


# -- fixtures ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser() -> Iterator:
    if not os.path.exists(CHROMIUM):
        message = f"{CHROMIUM} is missing (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@contextmanager
def serve(logdir: Path, **options: Any) -> Iterator[str]:
    """Serve ``logdir`` on a free local port in a thread; yield the base URL.

    ``options`` go to ``create_app`` (``reload_interval`` is 0.5 s unless given).
    """
    from werkzeug.serving import make_server

    from kboard.server.app import create_app

    app = create_app(str(logdir), **{"reload_interval": 0.5, **options})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        live = app.extensions["kboard"].live
        if live is not None:
            live.stop()


class Watched:
    """A page plus everything that went wrong on it."""

    def __init__(self, page, base: str) -> None:
        self.page = page
        self.base = base
        self.errors: list[str] = []
        self.failed: list[str] = []
        self.foreign: list[str] = []
        self.dialogs: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("requestfailed", lambda r: self.failed.append(f"{r.url} {r.failure}"))
        page.on("request", self._request)
        page.on("dialog", self._dialog)

    def _request(self, request) -> None:
        url = urlsplit(request.url)
        if url.scheme not in ("data", "blob") and url.hostname != "127.0.0.1":
            self.foreign.append(request.url)

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def open(self, query: str = "") -> None:
        self.page.goto(self.base + query)

    def wait_for_charts(self, count: int) -> None:
        self.page.wait_for_function(
            """n => { const plots = document.querySelectorAll('.kb-card .js-plotly-plot');
                      return plots.length === n && [...plots].every(p => p.data); }""",
            arg=count,
            timeout=15_000,
        )

    def chart(self, tag: str) -> list[dict] | None:
        return self.page.evaluate(CHART_DATA, tag)

    def assert_clean(self) -> None:
        assert self.errors == [], self.errors
        assert self.failed == [], self.failed
        assert self.foreign == [], self.foreign
        assert self.dialogs == [], self.dialogs


@pytest.fixture()
def open_page(browser):
    """Open pages on a served logdir: ``watched = open_page(logdir, query)``."""
    stack = []

    def opener(logdir: Path, query: str | None = "", viewport=(1400, 900)) -> Watched:
        """Serve ``logdir`` and open it (with ``query``; not yet when it is None)."""
        server = serve(logdir)
        base = server.__enter__()
        context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
        stack.append((server, context))
        watched = Watched(context.new_page(), base)
        if query is not None:
            watched.open(query)
        return watched

    yield opener
    for server, context in reversed(stack):
        context.close()
        server.__exit__(None, None, None)


def write_runs(logdir: Path, runs: dict[str, float], steps: int = 40) -> None:
    """Write a few scalar tags for each run with kboard's own writer."""
    for run, scale in runs.items():
        with SummaryWriter(str(logdir / run)) as writer:
            for step in range(steps):
                writer.add_scalar("loss", scale * 2.0 / (step + 1) + 0.05 * (step % 3), step)
                writer.add_scalar("metrics/accuracy", 1 - scale / (step + 2), step)
                writer.add_scalar("metrics/f1", 0.5 + 0.01 * step * scale, step)


@pytest.fixture()
def two_runs(tmp_path: Path) -> Path:
    write_runs(tmp_path, {"train": 1.0, "eval": 1.5})
    return tmp_path


# -- tests ------------------------------------------------------------------------------
def test_page_loads_cleanly_with_no_outside_requests(open_page, two_runs: Path) -> None:
    watched = open_page(two_runs)
    watched.wait_for_charts(3)
    page = watched.page
    assert page.locator("#kb-logdir").text_content() == str(two_runs)
    page.locator('.kb-live[data-state="live"]').wait_for()
    # Another tab shows its empty state, and the choice lands in the URL.
    page.get_by_role("tab", name="Images").click()
    page.locator("#panel-images").get_by_text("No image summaries yet").wait_for()
    page.wait_for_function("() => location.search === '?tab=images'")
    page.get_by_role("tab", name="Scalars").click()
    assert page.locator("#panel-scalars .js-plotly-plot").first.is_visible()
    page.screenshot(path=SCREENSHOT)
    watched.assert_clean()


def test_one_chart_per_tag_grouped_by_prefix(open_page, two_runs: Path) -> None:
    watched = open_page(two_runs)
    watched.wait_for_charts(3)
    page = watched.page
    groups = page.locator(".kb-group").evaluate_all(
        "gs => gs.map(g => [g.dataset.group, [...g.querySelectorAll('.kb-card')]"
        ".map(c => c.dataset.tag)])"
    )
    assert groups == [["loss", ["loss"]], ["metrics", ["metrics/accuracy", "metrics/f1"]]]
    traces = watched.chart("loss")
    smoothed = [t for t in traces if t["kind"] == "smoothed"]
    raw = [t for t in traces if t["kind"] == "raw"]
    assert sorted(t["run"] for t in smoothed) == ["eval", "train"]
    assert sorted(t["run"] for t in raw) == ["eval", "train"]
    assert all(t["x"] == list(range(40)) for t in traces)
    # Each run has one colour: in every chart, for both its lines, and in the sidebar.
    colours = {(t["run"], t["color"]) for tag in ("loss", "metrics/f1") for t in watched.chart(tag)}
    assert len(colours) == 2 and len({c for _, c in colours}) == 2
    for run, colour in colours:
        swatch = page.locator(".kb-run", has_text=run).locator(".kb-swatch")
        rgb = swatch.evaluate("s => getComputedStyle(s).backgroundColor")
        assert rgb == "rgb({}, {}, {})".format(*bytes.fromhex(colour[1:]))
    # "Download CSV" exports every point of what is shown.
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    lines = Path(download.value.path()).read_text(encoding="utf-8").splitlines()
    assert lines[0] == "run,tag,step,wall_time,value" and len(lines) == 1 + 2 * 3 * 40
    # Collapsing a section with the keyboard hides its charts.
    toggle = page.locator('.kb-group[data-group="metrics"] .kb-group-toggle')
    toggle.focus()
    page.keyboard.press("Enter")
    assert toggle.get_attribute("aria-expanded") == "false"
    assert not page.locator('.kb-card[data-tag="metrics/f1"]').is_visible()
    page.keyboard.press("Space")
    assert page.locator('.kb-card[data-tag="metrics/f1"]').is_visible()
    # The tag filter narrows the charts; a filter that matches nothing says so.
    page.get_by_label("Filter tags (regex)").fill("acc")
    page.wait_for_function("() => document.querySelectorAll('.kb-card').length === 1")
    page.get_by_label("Filter tags (regex)").fill("nothing-like-this")
    page.get_by_text("No tags match the tag filter").wait_for()
    watched.assert_clean()


def test_new_points_and_runs_appear_live(open_page, tmp_path: Path) -> None:
    watched = open_page(tmp_path)
    page = watched.page
    page.get_by_text(f"No event files under {tmp_path} yet").wait_for()
    writer = SummaryWriter(str(tmp_path / "live"))
    writer.add_scalar("loss", 1.0, 0)
    writer.flush()
    watched.wait_for_charts(1)
    writer.add_scalar("loss", 0.25, 1)
    writer.flush()
    page.wait_for_function(
        f"() => ({CHART_DATA})('loss').some(t => t.kind === 'raw' && t.x.includes(1))",
        timeout=4_000,
    )
    raw = next(t for t in watched.chart("loss") if t["kind"] == "raw")
    assert raw["y"] == [1.0, 0.25]
    writer.close()
    # A run that appears later is selected by default.
    with SummaryWriter(str(tmp_path / "later")) as late:
        late.add_scalar("loss", 3.0, 0)
    page.wait_for_function(
        f"() => ({CHART_DATA})('loss').some(t => t.run === 'later')", timeout=4_000
    )
    assert page.locator(".kb-run input").evaluate_all("bs => bs.map(b => b.checked)") == [
        True,
        True,
    ]
    watched.assert_clean()


def test_html_in_names_is_shown_as_text(open_page, tmp_path: Path) -> None:
    with SummaryWriter(str(tmp_path / HTML_RUN)) as writer:
        for step in range(5):
            writer.add_scalar(XSS_TAG, float(step), step)
    # A corrupt file makes a problem; its run's name and the message are shown as text too.
    broken = tmp_path / "<i>broken</i>"
    broken.mkdir(parents=True)
    (broken / "events.out.tfevents.1.x").write_bytes(b"\x07" * 64)
    watched = open_page(tmp_path)
    watched.wait_for_charts(1)
    page = watched.page
    assert page.locator(".kb-card-title").text_content() == XSS_TAG
    assert page.locator(".kb-group-name").text_content() == XSS_TAG
    assert page.locator(".kb-run-name").all_text_contents() == [HTML_RUN, "<i>broken</i>"]
    summary = page.locator("#kb-problems summary")
    assert summary.is_visible() and summary.text_content().startswith("1 problem ")
    summary.click()
    problem = page.locator("#kb-problems li")
    assert problem.is_visible() and "<i>broken</i>" in problem.text_content()
    assert "corrupt record" in problem.text_content()
    assert page.locator("img, b, i").count() == 0
    # Hover: Plotly must show the run name literally (no markup, no %{y} substitution).
    plot = page.locator(".kb-card .js-plotly-plot")
    box = plot.locator(".nsewdrag").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    hover = page.locator(".hoverlayer")
    page.wait_for_function("() => document.querySelector('.hoverlayer').textContent.includes('co')")
    assert HTML_RUN in hover.text_content()
    page.wait_for_timeout(300)
    assert watched.dialogs == []
    watched.assert_clean()


def test_url_state_round_trips(open_page, two_runs: Path) -> None:
    watched = open_page(two_runs)
    watched.wait_for_charts(3)
    page = watched.page
    page.get_by_label("Smoothing value").fill("0.9")
    page.get_by_label("Smoothing value").press("Enter")
    page.locator(".kb-run", has_text="eval").get_by_role("checkbox").uncheck()
    page.get_by_label("Relative").check()
    page.get_by_label("Log").check()
    page.get_by_label("Ignore outliers in chart scaling").uncheck()
    page.locator('.kb-group[data-group="loss"] .kb-group-toggle').click()
    page.get_by_label("Filter runs (regex)").fill("ai|ev")
    page.wait_for_function("() => location.search.includes('runs=')")
    url = page.url

    again = open_page(two_runs, "?" + urlsplit(url).query)
    again.wait_for_charts(2)  # the "loss" section stays collapsed, so it draws nothing
    p2 = again.page
    assert p2.get_by_label("Smoothing value").input_value() == "0.9"
    assert p2.get_by_label("Filter runs (regex)").input_value() == "ai|ev"
    assert p2.get_by_label("Relative").is_checked() and p2.get_by_label("Log").is_checked()
    assert not p2.get_by_label("Ignore outliers in chart scaling").is_checked()
    assert not p2.locator(".kb-run", has_text="eval").get_by_role("checkbox").is_checked()
    assert p2.locator(".kb-run", has_text="train").get_by_role("checkbox").is_checked()
    toggle = p2.locator('.kb-group[data-group="loss"] .kb-group-toggle')
    assert toggle.get_attribute("aria-expanded") == "false"
    traces = again.chart("metrics/f1")
    assert {t["run"] for t in traces} == {"train"}
    layout = p2.evaluate(
        '() => { const p = document.querySelector(\'.kb-card[data-tag="metrics/f1"] '
        ".js-plotly-plot'); return [p.layout.xaxis.title.text, p.layout.yaxis.type]; }"
    )
    assert layout == ["relative time (s)", "log"]
    assert urlsplit(p2.url).query == urlsplit(url).query
    href = p2.get_by_role("link", name="Download CSV").get_attribute("href")
    assert parse_qs(urlsplit(href).query)["runs"] == ["^(?:train)$"]
    watched.assert_clean()
    again.assert_clean()


def test_smoothing_is_tensorboards_debiased_ema(open_page, tmp_path: Path) -> None:
    values = [5.0, 1.0, float("nan"), 3.0, 8.0, float("inf"), 2.0, 4.0, 0.5, 6.0, 1.0, 7.0]
    with SummaryWriter(str(tmp_path / "run")) as writer:
        for step, value in enumerate(values):
            writer.add_scalar("noisy", value, step)
    watched = open_page(tmp_path, "?smooth=0")
    watched.wait_for_charts(1)
    page = watched.page

    def smoothed() -> list:
        return next(t for t in watched.chart("noisy") if t["kind"] == "smoothed")["y"]

    finite = [v if math.isfinite(v) else None for v in values]
    assert smoothed() == finite
    page.get_by_label("Smoothing value").fill("0.8")
    page.get_by_label("Smoothing value").press("Enter")
    page.wait_for_function(f"() => ({CHART_DATA})('noisy')[1].y[1] !== 1")
    expected = [v if math.isfinite(v) else None for v in smooth(values, 0.8)]
    assert smoothed() == pytest.approx(expected)
    # Non-finite values are drawn as markers with their name, not dropped.
    marks = next(t for t in watched.chart("noisy") if t["kind"] == "nonfinite")
    assert marks["x"] == [2, 5]
    watched.assert_clean()


def test_zoom_fetches_full_resolution_and_survives_live_updates(open_page, tmp_path: Path) -> None:
    writer = SummaryWriter(str(tmp_path / "long"))
    for step in range(6000):
        writer.add_scalar("wave", math.sin(step / 100), step)
    writer.flush()
    watched = open_page(tmp_path)
    watched.wait_for_charts(1)
    page = watched.page
    raw = next(t for t in watched.chart("wave") if t["kind"] == "raw")
    assert len(raw["x"]) < 6000 and raw["x"][0] == 0 and raw["x"][-1] == 5999
    assert "points drawn" in page.locator(".kb-card-note").text_content()
    fetches: list[str] = []
    page.on("request", lambda r: "api/scalars?" in r.url and fetches.append(r.url))
    page.evaluate(
        """() => Plotly.relayout(document.querySelector('.js-plotly-plot'),
                                 {'xaxis.range': [1000, 1100]})"""
    )
    page.wait_for_function(
        f"""() => {{ const raw = ({CHART_DATA})('wave')[0].x;
                     return raw.length < 1000 && raw.includes(1000) && raw.includes(1050); }}"""
    )
    raw = next(t for t in watched.chart("wave") if t["kind"] == "raw")
    assert all(s in raw["x"] for s in range(1000, 1101))  # every point of the range
    assert "xmin=" in fetches[-1] and "xmax=" in fetches[-1]
    # A live update refetches the zoomed range and leaves the zoom alone.
    count = len(fetches)
    writer.add_scalar("wave", 2.0, 6000)
    writer.close()
    for _ in range(100):
        if len(fetches) > count:
            break
        page.wait_for_timeout(50)
    assert len(fetches) > count and "xmin=" in fetches[-1]
    page.wait_for_timeout(300)  # let the response be drawn
    xrange = page.evaluate("() => document.querySelector('.js-plotly-plot').layout.xaxis.range")
    assert xrange == [1000, 1100]
    watched.assert_clean()


def test_live_updates_come_back_after_the_stream_fails(open_page, tmp_path: Path) -> None:
    write_runs(tmp_path, {"train": 1.0}, steps=3)
    answers: list[int] = []

    def stream(route) -> None:
        if not answers:  # the first connection fails the way a crashed proxy would
            answers.append(503)
            route.fulfill(status=503, content_type="text/plain", body="unavailable")
        else:
            answers.append(200)
            route.continue_()

    watched = open_page(tmp_path, None)
    page = watched.page
    page.route("**/api/stream", stream)
    watched.open()
    watched.wait_for_charts(3)
    page.locator('.kb-live[data-state="live"]').wait_for(timeout=8_000)
    assert answers[:2] == [503, 200]
    with SummaryWriter(str(tmp_path / "train")) as writer:
        writer.add_scalar("loss", 9.0, 3)
    page.wait_for_function(
        f"() => ({CHART_DATA})('loss').some(t => t.kind === 'raw' && t.x.includes(3))",
        timeout=4_000,
    )
    # The browser may report the refused stream itself as aborted; nothing else may fail.
    assert watched.dialogs == [] and all("/api/stream" in f for f in watched.failed)


def test_export_links_download_every_point_of_what_is_selected(open_page, two_runs: Path) -> None:
    watched = open_page(two_runs)
    watched.wait_for_charts(3)
    page = watched.page
    page.locator('#kb-run-list input[value="eval"]').uncheck()
    page.wait_for_function(
        "() => !document.getElementById('kb-run-export-csv').href.includes('eval')"
    )
    run_csv = page.request.get(page.locator("#kb-run-export-csv").evaluate("a => a.href"))
    rows = list(csv.DictReader(io.StringIO(run_csv.text())))
    assert {r["run"] for r in rows} == {"train"} and len(rows) == 3 * 40
    assert "attachment" in run_csv.headers["content-disposition"]
    card = page.locator('.kb-card[data-tag="metrics/f1"]')
    chart_json = page.request.get(card.get_by_role("link", name="JSON").evaluate("a => a.href"))
    points = json.loads(chart_json.text())
    assert {(p["run"], p["tag"]) for p in points} == {("train", "metrics/f1")}
    assert [p["step"] for p in points] == list(range(40))
    watched.assert_clean()
