"""The page's frame in a real Chromium: run colours, relative time, downloads, the chart grid."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from playwright.sync_api import expect

from kboard import SummaryWriter
from tests import test_browser
from tests.test_browser import CHART_DATA, write_runs

pytestmark = pytest.mark.browser

# test_browser.py's fixtures: Chromium, pages on a logdir served in a thread, two runs.
browser = test_browser.browser
open_page = test_browser.open_page
two_runs = test_browser.two_runs

# Ten runs as a learning-rate sweep names them (a hash of the name gave three pairs of them
# one colour, as it gave lr=0.0003/validation and lr=0.003/validation in sample_logs/).
LRS = ("0.0001", "0.0003", "0.001", "0.003", "0.01")
TEN_RUNS = [f"lr={lr}/{split}" for lr in LRS for split in ("train", "validation")]
# Sorts among them; in a folder that exists (watchdog 7 warns, in its thread, when a folder
# and its subfolder appear at once, and warnings fail the tests).
NEW_RUN = "lr=0.001/test"
PICKED = "lr=0.003/validation"
PALETTE_FIRST = "#4e79a7"  # the palette's first colour: the first run's, in sorted order
SWATCHES = """() => Object.fromEntries([...document.querySelectorAll('.kb-run')].map(
  r => [r.dataset.run, r.querySelector('.kb-swatch').style.background]))"""
CARD_BOXES = """() => Object.fromEntries([...document.querySelectorAll('#panel-scalars .kb-card')]
  .map(c => { const r = c.getBoundingClientRect();
              return [c.dataset.tag, {x: r.x, y: r.y, width: r.width}]; }))"""
# All seven cards are laid out, and the first n of them have drawn their charts.
CARDS_DRAWN = """n => { const cards = document.querySelectorAll('#panel-scalars .kb-card');
  return cards.length === 7 && [...cards].slice(0, n).every(
    c => { const p = c.querySelector('.js-plotly-plot'); return p && p.data; }); }"""
TICKS = """tag => [...document.querySelector(`.kb-card[data-tag="${tag}"]`)
  .querySelectorAll('.xtick text')].map(t => t.textContent)"""


def rgb(hex_colour: str) -> str:
    """'#rrggbb' as the browser writes a style colour back."""
    return "rgb({}, {}, {})".format(*bytes.fromhex(hex_colour[1:]))


def line_colours(watched, tag: str) -> dict[str, str]:
    """Each run's colour in a chart, checked to be one colour for all its lines."""
    colours: dict[str, set[str]] = {}
    for trace in watched.chart(tag):
        colours.setdefault(trace["run"], set()).add(trace["color"])
    assert all(len(c) == 1 for c in colours.values()), colours
    return {run: c.pop() for run, c in colours.items()}


def hover_header(page, tag: str) -> str:
    """Hover the middle of a chart; return the x-unified hover's first line (its header)."""
    plot = page.locator(f'.kb-card[data-tag="{tag}"] .nsewdrag')
    box = plot.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    header = page.locator(f'.kb-card[data-tag="{tag}"] .hoverlayer .legend text').first
    header.wait_for(timeout=5_000)
    return header.text_content()


@pytest.fixture()
def ten_runs(tmp_path: Path) -> Path:
    write_runs(tmp_path, dict.fromkeys(TEN_RUNS, 1.0), steps=5)
    return tmp_path


# -- run colours -------------------------------------------------------------------------
def test_run_colours_are_distinct_and_stable_while_runs_appear(open_page, ten_runs: Path) -> None:
    watched = open_page(ten_runs)
    watched.wait_for_charts(3)
    page = watched.page
    swatches = page.evaluate(SWATCHES)
    assert list(swatches) == TEN_RUNS
    assert len(set(swatches.values())) == 10  # no two of the first ten runs look alike
    lines = line_colours(watched, "loss")
    assert {run: rgb(c) for run, c in lines.items()} == swatches  # sidebar = chart
    assert lines[TEN_RUNS[0]] == PALETTE_FIRST  # assigned in sorted order
    # A run that sorts among them appears live: every run keeps its colour, the new one has
    # a colour of its own.
    write_runs(ten_runs, {NEW_RUN: 2.0}, steps=5)
    page.wait_for_function(
        f"() => ({CHART_DATA})('loss').some(t => t.run === '{NEW_RUN}')", timeout=6_000
    )
    after = line_colours(watched, "loss")
    assert {run: after[run] for run in TEN_RUNS} == lines
    assert after[NEW_RUN] not in lines.values()
    swatches = page.evaluate(SWATCHES)
    assert list(swatches) == sorted([*TEN_RUNS, NEW_RUN])
    assert swatches[NEW_RUN] == rgb(after[NEW_RUN])
    watched.assert_clean()


def test_a_chosen_run_colour_is_kept_in_the_url(open_page, ten_runs: Path) -> None:
    watched = open_page(ten_runs)
    watched.wait_for_charts(3)
    page = watched.page
    palette = line_colours(watched, "loss")
    picked = page.locator(f'.kb-run[data-run="{PICKED}"]')
    # The swatch opens the colour input; it does not tick or untick the run.
    picked.locator(".kb-swatch").click()
    assert picked.get_by_role("checkbox").is_checked()
    page.locator("#kb-run-color").fill("#123456")
    page.wait_for_function("() => location.search.includes('colors=')")
    assert parse_qs(urlsplit(page.url).query)["colors"] == [f"#123456:{PICKED}"]
    page.wait_for_function(
        f"() => ({CHART_DATA})('loss').some(t => t.run === '{PICKED}' && t.color === '#123456')"
    )
    assert line_colours(watched, "metrics/f1")[PICKED] == "#123456"
    assert picked.locator(".kb-swatch").evaluate("s => s.style.background") == rgb("#123456")

    # Reloaded from the URL, with colours that are not '#rrggbb' added by hand: ignored.
    hostile = {
        TEN_RUNS[0]: "red:",
        TEN_RUNS[1]: "#zzzzzz:",
        TEN_RUNS[2]: 'url(x);"><b>:',
        TEN_RUNS[3]: '#abcdef" x:',
        TEN_RUNS[4]: "#abc:",
    }
    query = urlsplit(page.url).query + "".join(
        "&" + urlencode({"colors": prefix + run}) for run, prefix in hostile.items()
    )
    again = open_page(ten_runs, f"?{query}&colors=javascript:alert(1)")
    again.wait_for_charts(3)
    assert line_colours(again, "loss") == {**palette, PICKED: "#123456"}
    swatches = again.page.evaluate(SWATCHES)
    assert swatches == {run: rgb(c) for run, c in {**palette, PICKED: "#123456"}.items()}
    # The page writes back only what it accepted.
    again.page.wait_for_function("() => !location.search.includes('zzz')")
    assert parse_qs(urlsplit(again.page.url).query)["colors"] == [f"#123456:{PICKED}"]
    # Picking the run's palette colour again forgets the choice.
    again.page.locator(f'.kb-run[data-run="{PICKED}"] .kb-swatch').click()
    again.page.locator("#kb-run-color").fill(palette[PICKED])
    again.page.wait_for_function("() => !location.search.includes('colors=')")
    assert line_colours(again, "loss")[PICKED] == palette[PICKED]
    assert again.page.locator("b").count() == 0
    watched.assert_clean()
    again.assert_clean()


# -- relative time, downloads, hover -----------------------------------------------------
@pytest.fixture()
def timed_logdir(tmp_path: Path) -> Path:
    """One run whose tags span 30 seconds, 20 minutes and 5 hours of wall time."""
    base = 1_700_000_000.0
    with SummaryWriter(str(tmp_path / "timed")) as writer:
        for i in range(31):
            writer.add_scalar("fast", float(i), i, walltime=base + i)
            writer.add_scalar("medium", float(i), i, walltime=base + 40.0 * i)
            writer.add_scalar("slow", float(i), i, walltime=base + 600.0 * i)
    return tmp_path


def test_relative_time_reads_in_seconds_minutes_and_hours(open_page, timed_logdir: Path) -> None:
    watched = open_page(timed_logdir, "?x=relative")
    watched.wait_for_charts(3)
    page = watched.page
    for tag, unit in (("fast", "s"), ("medium", "min"), ("slow", "h")):
        ticks = page.evaluate(TICKS, tag)
        assert ticks and all(re.fullmatch(rf"[\d.,]+ {unit}", t) for t in ticks), (tag, ticks)
        title = page.evaluate(
            "t => document.querySelector(`.kb-card[data-tag='${t}'] .js-plotly-plot`)"
            ".layout.xaxis.title.text",
            tag,
        )
        assert title == f"relative time ({unit})"
    # The slow tag's last point is at 5 h; the hover says its time in hours.
    assert re.fullmatch(r"[\d.,]+ h", hover_header(page, "slow"))
    slow = next(t for t in watched.chart("slow") if t["kind"] == "raw")
    assert slow["x"][-1] == pytest.approx(5.0)
    watched.assert_clean()


def test_hover_header_names_the_step(open_page, two_runs: Path) -> None:
    watched = open_page(two_runs)
    watched.wait_for_charts(3)
    assert re.fullmatch(r"step \d+", hover_header(watched.page, "loss"))
    watched.assert_clean()


def test_chart_downloads_are_named_after_tag_and_runs(open_page, two_runs: Path) -> None:
    watched = open_page(two_runs)
    watched.wait_for_charts(3)
    page = watched.page
    card = page.locator('.kb-card[data-tag="metrics/f1"]')
    with page.expect_download() as download:
        card.get_by_role("link", name="CSV").click()
    assert download.value.suggested_filename == "kboard-metrics_f1-2runs.csv"
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert {(r["run"], r["tag"]) for r in rows} == {("train", "metrics/f1"), ("eval", "metrics/f1")}
    assert len(rows) == 2 * 40
    # One run: the file is named after it.
    page.locator('#kb-run-list input[value="eval"]').uncheck()
    json_link = card.get_by_role("link", name="JSON")
    expect(json_link).to_have_attribute("download", "kboard-metrics_f1-train.json")
    with page.expect_download() as download:
        json_link.click()
    assert download.value.suggested_filename == "kboard-metrics_f1-train.json"
    points = json.loads(Path(download.value.path()).read_text())
    assert {p["run"] for p in points} == {"train"} and len(points) == 40
    # The toolbar's export of everything keeps the server's name.
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    name = download.value.suggested_filename
    assert name.endswith("-scalars.csv") and "metrics_f1" not in name
    watched.assert_clean()


# -- layout --------------------------------------------------------------------------------
@pytest.fixture()
def grid_logdir(tmp_path: Path) -> Path:
    """Three tags that are each a group of their own, then a group of four."""
    tags = ["acc", "loss", "lr", "metrics/a", "metrics/b", "metrics/c", "metrics/d"]
    with SummaryWriter(str(tmp_path / "run")) as writer:
        for step in range(5):
            for i, tag in enumerate(tags):
                writer.add_scalar(tag, float(i * step), step)
    return tmp_path


def test_charts_flow_into_a_grid_across_groups(open_page, grid_logdir: Path) -> None:
    watched = open_page(grid_logdir)
    page = watched.page
    page.wait_for_function(CARDS_DRAWN, arg=3)
    boxes = page.evaluate(CARD_BOXES)
    first = [boxes[t] for t in ("acc", "loss", "lr")]
    assert len({round(b["y"]) for b in first}) == 1  # one row...
    assert len({round(b["x"]) for b in first}) == 3  # ...of three charts
    assert first[0]["x"] < first[1]["x"] < first[2]["x"]
    # A group of several charts takes rows of its own, on the same columns.
    metrics = [boxes[f"metrics/{n}"] for n in "abcd"]
    assert len({round(b["y"]) for b in metrics[:3]}) == 1 and metrics[0]["y"] > first[0]["y"]
    assert [round(b["x"]) for b in metrics[:3]] == [round(b["x"]) for b in first]
    assert metrics[3]["y"] > metrics[0]["y"] and round(metrics[3]["x"]) == round(first[0]["x"])
    # An enlarged chart takes the whole row.
    page.get_by_role("button", name="Enlarge chart loss").click()
    page.wait_for_function("() => document.querySelector('.kb-card--wide')")
    boxes = page.evaluate(CARD_BOXES)
    row = first[2]["x"] + first[2]["width"] - first[0]["x"]
    assert boxes["loss"]["x"] == first[0]["x"] and boxes["loss"]["width"] == pytest.approx(row)
    assert boxes["loss"]["y"] > boxes["acc"]["y"] and boxes["lr"]["y"] > boxes["loss"]["y"]
    watched.assert_clean()


def test_a_narrow_window_shows_one_chart_a_row(open_page, grid_logdir: Path) -> None:
    watched = open_page(grid_logdir, viewport=(600, 900))
    page = watched.page
    page.wait_for_function(CARDS_DRAWN, arg=1)
    boxes = page.evaluate(CARD_BOXES)
    assert len({round(b["x"]) for b in boxes.values()}) == 1
    ys = [boxes[t]["y"] for t in ("acc", "loss", "lr", "metrics/a", "metrics/b")]
    assert ys == sorted(ys) and len(set(ys)) == len(ys)
    watched.assert_clean()
