"""Runs grouped in SCALARS, in a real Chromium: one line and band per group, the numbers of
``kboard.read_scalars(group=...)``, state in the URL, and a clear message for a bad regex."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest

import kboard
from tests import test_browser

pytestmark = pytest.mark.browser

browser = test_browser.browser
open_page = test_browser.open_page

GROUP = r"(.*)_seed\d+"
HOSTILE = "<i>x</i>%{y}"  # a group key that is HTML and a Plotly template
SEEDS = {  # run -> its steps: seeds log at steps of their own
    "lr0.1_seed0": range(0, 40),
    "lr0.1_seed1": range(0, 40, 3),
    "lr0.1_seed2": range(4, 33, 2),
    "lr0.01_seed0": range(0, 40, 2),
    "lr0.01_seed1": range(1, 36, 5),
    f"{HOSTILE}_seed0": range(0, 10),
    "baseline": range(0, 40),
}
# Each chart trace as the test reads it from the Plotly graph div.
TRACES = """tag => {
  const card = [...document.querySelectorAll('.kb-card')].find(c => c.dataset.tag === tag);
  const plot = card && card.querySelector('.js-plotly-plot');
  if (!plot || !plot.data) return null;
  return plot.data.map(t => ({kind: t.meta.kind, run: t.meta.run, name: t.name || null,
    fill: t.fill || null, color: t.line && t.line.color, members: t.meta.members || null,
    x: Array.from(t.x), y: Array.from(t.y, v => v === null ? null : Number(v)),
    count: t.customdata && t.meta.kind === 'group' ? t.customdata.map(c => c[0]) : null,
    hover: t.hovertemplate || null}));
}"""
LINE_IS = f"""([tag, group, want]) => {{ const t = ({TRACES})(tag);
  const line = t && t.find(x => x.kind === 'group' && x.run === group);
  return !!line && line.y.length === want.length &&
    line.y.every((v, i) => Math.abs(v - want[i]) <= 1e-9 * Math.max(1, Math.abs(want[i]))); }}"""
MEMBERS_DRAWN = f"""([tag, n]) => {{ const t = ({TRACES})(tag);
  return !!t && t.filter(x => x.kind === 'member').length === n; }}"""
MEMBERS_OF = f"""([tag, group, n]) => {{ const t = ({TRACES})(tag);
  return !!t && t.some(x => x.kind === 'group' && x.run === group && x.members === n); }}"""
GROUPED = """tag => { const card = [...document.querySelectorAll('.kb-card')]
  .find(c => c.dataset.tag === tag); const p = card && card.querySelector('.js-plotly-plot');
  return !!(p && p.data && p.data.some(t => t.meta.kind === 'group')); }"""


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    logdir = tmp_path_factory.mktemp("browser_seeds")
    rng = np.random.default_rng(7)
    for run, steps in SEEDS.items():
        lr = 0.1 if "0.1_" in run else 0.01
        with kboard.SummaryWriter(str(logdir / run)) as writer:
            for step in steps:
                writer.add_scalar("loss", 1 / (1 + lr * step) + rng.normal(0, 0.05), step)
    return logdir


def by_kind(traces: list[dict], kind: str) -> dict[str, dict]:
    return {t["run"]: t for t in traces if t["kind"] == kind}


def seeds_of(group: str) -> int:
    """How many of SEEDS the group ``group`` takes."""
    return len([r for r in SEEDS if r.startswith(f"{group}_seed")])


def assert_groups_drawn(
    traces: list[dict], frame, agg: str, band: str, members_of=seeds_of
) -> None:
    """One line and one band per group, with the numbers of read_scalars(group=...)."""
    lines, lower, upper = (by_kind(traces, k) for k in ("group", "band-lower", "band-upper"))
    assert sorted(lines) == sorted(lower) == sorted(upper) == sorted(set(frame["group"]))
    for group, line in lines.items():
        rows = frame[frame["group"] == group]
        members = members_of(group)
        assert line["members"] == members
        runs = f"{members} run" + ("s" if members > 1 else "")
        assert line["name"].endswith(f" · {runs}")
        assert f"{agg} of %{{customdata[0]}} of {runs}" in line["hover"]  # count at the step
        assert line["x"] == rows["step"].tolist() == lower[group]["x"] == upper[group]["x"]
        assert line["count"] == rows["count"].tolist()
        np.testing.assert_allclose(line["y"], rows[agg], rtol=1e-12)
        want_low, want_high = (
            (rows[agg] - rows["std"], rows[agg] + rows["std"])
            if band == "std"
            else (rows["min"], rows["max"])
        )
        np.testing.assert_allclose(lower[group]["y"], want_low, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(upper[group]["y"], want_high, rtol=1e-12, atol=1e-15)
        assert upper[group]["fill"] == "tonexty" and lower[group]["fill"] is None
        assert line["color"] == lower[group]["color"] == upper[group]["color"]
    assert len({line["color"] for line in lines.values()}) == len(lines)


def test_groups_drawn_as_line_and_band_with_python_numbers(open_page, seeds: Path) -> None:
    pytest.importorskip("pandas")
    frame = kboard.read_scalars(str(seeds), group=GROUP, smoothing=0.6)  # the page's default
    watched = open_page(seeds)
    watched.wait_for_charts(1)
    page = watched.page
    page.locator("#kb-group").fill(GROUP)
    page.wait_for_function(GROUPED, arg="loss", timeout=10_000)
    traces = page.evaluate(TRACES, "loss")
    assert_groups_drawn(traces, frame, "mean", "std")
    # Runs no group takes are drawn as before; members only when asked.
    assert set(by_kind(traces, "smoothed")) == {"baseline"}
    assert not by_kind(traces, "member")
    # Escaped: the hostile group's name shows as text in the legend, no element made of it.
    hostile = by_kind(traces, "group")[HOSTILE]
    assert hostile["name"].startswith("&lt;i&gt;x&lt;/i&gt;&#37;{y}")
    assert page.locator(".kb-card .legend i").count() == 0
    legend = page.locator(".kb-card .legend text.legendtext").all_text_contents()
    assert f"{HOSTILE} · 1 run" in legend, legend

    # Median, min–max band, members faintly, no smoothing: all in the URL.
    page.locator("#kb-group-agg").select_option("median")
    page.locator("#kb-group-band").select_option("minmax")
    page.locator("#kb-group-members").check()
    page.locator("#kb-smoothing-number").fill("0")
    page.locator("#kb-smoothing-number").dispatch_event("change")
    page.wait_for_function("() => location.search.includes('members=1')")
    raw = kboard.read_scalars(str(seeds), group=GROUP)
    want = raw[raw["group"] == "lr0.1"]["median"].tolist()
    page.wait_for_function(LINE_IS, arg=["loss", "lr0.1", want], timeout=10_000)
    page.wait_for_function(MEMBERS_DRAWN, arg=["loss", 6])
    traces = page.evaluate(TRACES, "loss")
    assert_groups_drawn(traces, raw, "median", "minmax")
    query = parse_qs(urlsplit(page.url).query)
    assert query["group"] == [GROUP]
    assert (query["agg"], query["band"], query["members"]) == (["median"], ["minmax"], ["1"])
    members = by_kind(traces, "member")
    assert members["lr0.1_seed1"]["color"] == by_kind(traces, "group")["lr0.1"]["color"]

    # The link reproduces the view.
    again = open_page(seeds, "?" + urlsplit(page.url).query)
    again.page.wait_for_function(GROUPED, arg="loss", timeout=10_000)
    assert again.page.locator("#kb-group").input_value() == GROUP
    assert again.page.locator("#kb-group-agg").input_value() == "median"
    assert again.page.locator("#kb-group-band").input_value() == "minmax"
    assert again.page.locator("#kb-group-members").is_checked()
    assert_groups_drawn(again.page.evaluate(TRACES, "loss"), raw, "median", "minmax")
    watched.assert_clean()
    again.assert_clean()


def test_a_bad_group_regex_is_reported_and_runs_are_drawn_alone(
    open_page, seeds: Path, tmp_path: Path
) -> None:
    logdir = tmp_path / "logs"
    shutil.copytree(seeds, logdir)  # a seed is added below
    watched = open_page(logdir, "?group=(unclosed&x=wall_time")
    page = watched.page
    error = page.locator("#kb-group-error")
    error.wait_for(state="visible", timeout=10_000)
    assert "Cannot group runs: bad regular expression" in error.text_content()
    assert page.locator("#kb-group").get_attribute("aria-invalid") == "true"
    watched.wait_for_charts(1)
    traces = page.evaluate(TRACES, "loss")
    assert {t["kind"] for t in traces} == {"raw", "smoothed"}
    assert len(by_kind(traces, "smoothed")) == len(SEEDS)
    assert isinstance(by_kind(traces, "smoothed")["baseline"]["x"][0], str)  # wall-time dates
    # Fixed, the message goes and the groups come, drawn against step (they align by step).
    page.locator("#kb-group").fill(GROUP)
    page.wait_for_function(GROUPED, arg="loss", timeout=10_000)
    assert error.is_hidden()
    traces = page.evaluate(TRACES, "loss")
    assert by_kind(traces, "group")["lr0.1"]["x"][:3] == [0, 1, 2]
    assert by_kind(traces, "smoothed")["baseline"]["x"][:3] == [0, 1, 2]
    card = page.locator('.kb-card[data-tag="loss"]')
    assert "Grouped runs are drawn against step." in card.locator(".kb-card-note").text_content()
    # The card's download is the groups' statistics, as drawn.
    href = card.locator("a.kb-card-link").first.get_attribute("href")
    assert parse_qs(urlsplit(href).query)["group"] == [GROUP]
    # A seed that appears live joins its group.
    with kboard.SummaryWriter(str(logdir / "lr0.01_seed2")) as writer:
        for step in range(0, 40, 4):
            writer.add_scalar("loss", 0.5, step)
    page.wait_for_function(MEMBERS_OF, arg=["loss", "lr0.01", 3], timeout=10_000)
    # The browser logs the refused request itself; nothing else may go wrong.
    watched.errors = [e for e in watched.errors if "status of 400" not in e]
    watched.assert_clean()
