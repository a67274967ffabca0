"""Many runs in a real Chromium: the run selector (a short DOM, filter, select all / none /
only these, keys, a short URL) and SCALARS drawing a few runs by default, all on request."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from kboard import SummaryWriter
from kboard.server.app import create_app
from tests import test_browser

RUNS = [f"run_{i:03d}" for i in range(300)]
TAGS = ["loss", "metrics/accuracy"]
STEPS = 20
MATCHING = [r for r in RUNS if "run_01" in r]  # run_010 ... run_019

# test_browser.py's Chromium fixture.
browser = test_browser.browser

ROWS = "() => [...document.querySelectorAll('#kb-run-list .kb-run')].map(li => li.dataset.run)"
TICKED = """() => [...document.querySelectorAll('#kb-run-list .kb-run')]
  .filter(li => li.querySelector('input').checked).map(li => li.dataset.run)"""
CHART_RUNS = """tag => {
  const card = [...document.querySelectorAll('.kb-card')].find(c => c.dataset.tag === tag);
  const plot = card && card.querySelector('.js-plotly-plot');
  if (!plot || !plot.data || card.dataset.loading) return null;
  return plot.data.flatMap(t => (t.meta.runs || [t.meta.run]).map(r => [r, t.meta.kind]));
}"""


@pytest.fixture(scope="module")
def many_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    logdir = tmp_path_factory.mktemp("many-runs")
    for i, run in enumerate(RUNS):
        with SummaryWriter(str(logdir / run)) as writer:
            for step in range(STEPS):
                writer.add_scalar("loss", 1.0 / (step + 1) + i * 1e-3, step)
                writer.add_scalar("metrics/accuracy", step / STEPS - i * 1e-4, step)
    return logdir


@pytest.fixture(scope="module")
def base(many_runs: Path) -> Iterator[str]:
    with test_browser.serve(many_runs) as url:
        yield url


@pytest.fixture()
def page(browser, base: str):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    yield page
    context.close()
    assert errors == []


def query(page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query)


def wait_for_url(page, test: str) -> None:
    page.wait_for_function(f"() => {{ const q = new URLSearchParams(location.search); {test} }}")


def chart_runs(page, tag: str, count: int) -> list[list[str]]:
    handle = page.wait_for_function(
        f"tag => {{ const r = ({CHART_RUNS})(tag); return r && new Set(r.map(t => t[0])).size"
        f" === {count} ? r : null; }}",
        arg=tag,
        timeout=20_000,
    )
    return handle.json_value()


def test_selector_keeps_a_short_dom_and_a_short_url(page, base: str) -> None:
    page.goto(base)
    page.locator("#kb-run-count", has_text="300").wait_for()
    rows = page.evaluate(ROWS)
    assert rows[0] == "run_000" and len(rows) < 80  # only what is in view, not 300 rows
    swatch = page.locator('.kb-run[data-run="run_012"] .kb-swatch')
    colour = swatch.evaluate("s => s.style.background")
    # The list follows the typed filter at once; its count says how many pass.
    page.locator("#kb-run-filter").fill("run_01")
    page.locator("#kb-run-count", has_text="10 of 300").wait_for()
    assert page.evaluate(ROWS) == MATCHING
    wait_for_url(page, "return q.get('runs') === 'run_01';")
    assert swatch.evaluate("s => s.style.background") == colour  # filtering keeps colours
    # Select none, then "Only these": exactly the filtered runs, stored as one regex.
    page.locator("#kb-runs-none").click()
    page.wait_for_function(f"() => ({TICKED})().length === 0")
    page.locator("#panel-scalars").get_by_text("No runs selected").wait_for()
    page.locator("#kb-runs-only").click()
    wait_for_url(page, "return q.get('sel') === 'run_01' && !q.has('off') && !q.has('on');")
    page.locator("#kb-run-filter").fill("")
    page.locator("#kb-run-count", has_text="300").wait_for()
    page.wait_for_function("() => !location.search.includes('runs=')")
    assert page.evaluate(TICKED) == MATCHING
    assert {run for run, _ in chart_runs(page, "loss", 10)} == set(MATCHING)
    # Select none over every run: no run name in the URL; one run ticked: just its name.
    page.locator("#kb-runs-none").click()
    wait_for_url(page, "return q.get('sel') === '(?!)' && !q.has('off') && !q.has('on');")
    page.locator('.kb-run[data-run="run_005"] input').check()
    wait_for_url(page, "return q.getAll('on').join() === 'run_005';")
    assert len(page.url) < 200
    # The URL brings the same selection back.
    page.goto(page.url)
    page.locator("#kb-run-count", has_text="300").wait_for()
    assert page.evaluate(TICKED) == ["run_005"]
    assert chart_runs(page, "loss", 1)[0][0] == "run_005"
    # Select all: the default again, nothing in the URL.
    page.locator("#kb-runs-all").click()
    page.wait_for_function("() => !/sel=|off=|on=/.test(location.search)")
    assert len(page.evaluate(TICKED)) == len(page.evaluate(ROWS))


def test_selector_by_keyboard_and_scrolling(page, base: str) -> None:
    page.goto(base + "?off=run_001")  # the older form of the URL still reads
    page.locator("#kb-run-count", has_text="300").wait_for()
    assert "run_001" not in page.evaluate(TICKED)
    page.locator('.kb-run[data-run="run_000"] input').focus()
    page.keyboard.press("End")
    focused = "() => document.activeElement.closest('.kb-run')?.dataset.run"
    assert page.evaluate(focused) == "run_299"
    page.keyboard.press("Space")
    wait_for_url(page, "return q.getAll('off').sort().join() === 'run_001,run_299';")
    page.keyboard.press("ArrowUp")
    assert page.evaluate(focused) == "run_298"
    page.keyboard.press("Home")
    assert page.evaluate(focused) == "run_000"
    # Scrolling brings the rows in view into the DOM, and only those.
    page.locator("#kb-run-list").evaluate("l => { l.scrollTop = l.scrollHeight / 2; }")
    page.wait_for_function(f"() => ({ROWS})().includes('run_150')")
    assert len(page.evaluate(ROWS)) < 80
    # A button acts on the filter as typed, before the filter applies by itself.
    page.locator("#kb-run-filter").fill("run_02")
    page.locator("#kb-runs-only").click()
    wait_for_url(page, "return q.get('sel') === 'run_02' && q.get('runs') === 'run_02';")


def test_charts_draw_fifty_runs_until_asked_for_all(page, base: str) -> None:
    page.goto(base)
    drawn = chart_runs(page, "loss", 50)
    assert sorted({run for run, _ in drawn}) == RUNS[:50]
    card = page.locator('.kb-card[data-tag="loss"]')
    note = card.locator(".kb-card-note").inner_text()
    assert "first 50 runs (by name) of 300 selected" in note
    assert "Unsmoothed lines are left out past 20 runs" in note
    assert len(drawn) == 50  # one line a run
    card.get_by_role("button", name="Draw all 300").click()
    drawn = chart_runs(page, "loss", 300)
    assert sorted(run for run, _ in drawn) == RUNS  # each run once, smoothed
    assert {kind for _, kind in drawn} == {"smoothed"}
    # The runs of one colour share a trace: a few traces, not 300.
    assert card.locator(".js-plotly-plot").evaluate("p => p.data.length") <= 20
    assert query(page)["allruns"] == ["1"]
    assert "300 runs drawn; hover shows the nearest." in card.locator(".kb-card-note").inner_text()
    card.get_by_role("button", name="Draw the first 50 only").click()
    chart_runs(page, "loss", 50)


def test_one_request_for_all_runs_serves_what_one_run_a_request_does(many_runs: Path) -> None:
    client = create_app(str(many_runs), reload_interval=0).test_client()
    for tag in TAGS:
        batched = client.get("/api/scalars", query_string={"tag": tag}).get_json()["series"]
        assert [s["run"] for s in batched] == RUNS
        named = client.get("/api/scalars", query_string={"tag": tag, "run": RUNS[:7]})
        assert named.get_json()["series"] == batched[:7]
        for series in batched[::37]:
            one = client.get("/api/scalars", query_string={"tag": tag, "run": series["run"]})
            assert one.get_json()["series"] == [series]
            compat = client.get(
                "/data/plugin/scalars/scalars", query_string={"run": series["run"], "tag": tag}
            ).get_json()
            assert [[p[1], p[2]] for p in compat] == [
                list(pair) for pair in zip(series["steps"], series["values"], strict=True)
            ]


def test_versions_change_with_the_series_only(tmp_path: Path) -> None:
    for run in ("a", "b"):
        with SummaryWriter(str(tmp_path / run)) as writer:
            writer.add_scalar("loss", 1.0, 0)
    app = create_app(str(tmp_path), reload_interval=0)
    client = app.test_client()
    before = client.get("/api/scalars/versions?tag=loss").get_json()["versions"]
    series = client.get("/api/scalars?tag=loss").get_json()["series"]
    assert {s["run"]: s["version"] for s in series} == before
    with SummaryWriter(str(tmp_path / "b")) as writer:
        writer.add_scalar("loss", 0.5, 1)
    app.extensions["kboard"].reader.reload()
    after = client.get("/api/scalars/versions?tag=loss").get_json()["versions"]
    assert after["a"] == before["a"] and after["b"] != before["b"]
    assert client.get("/api/scalars/versions?tag=nope").status_code == 404
    assert client.get("/api/scalars/versions").status_code == 400


def test_a_live_update_refetches_only_the_run_that_changed(page, base: str, many_runs) -> None:
    page.goto(base)
    chart_runs(page, "loss", 50)
    asked: list[str] = []
    page.on("request", lambda r: "/api/scalars?" in r.url and asked.append(r.url))
    with SummaryWriter(str(many_runs / "run_003")) as writer:
        writer.add_scalar("loss", 5.0, STEPS)
    page.wait_for_function(
        """() => {
          const card = document.querySelector('.kb-card[data-tag="loss"] .js-plotly-plot');
          return card.data.some(t => t.meta.run === 'run_003' && t.x.includes(20));
        }""",
        timeout=20_000,
    )
    loss = [parse_qs(urlsplit(url).query) for url in asked if "tag=loss" in url]
    assert loss and all(q["run"] == ["run_003"] for q in loss)


def test_the_many_runs_benchmark_runs(browser, tmp_path: Path) -> None:
    """``python -m bench.browser --many-runs`` at a tiny size, so it keeps working."""
    result = subprocess.run(
        [sys.executable, "-m", "bench.browser", "--many-runs", "--runs", "12", "--tags", "2"]
        + ["--steps", "5", "--logdir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for figure in ("first_chart_ms", "filter_ms", "all_chart_ms", "none_url_chars"):
        assert f"  {figure}: " in result.stdout, result.stdout
