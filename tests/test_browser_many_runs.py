"""The run selector with 1,000 runs: the list, a filter, select none and select all work."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.generate import write_scalar_run
from tests import test_browser

pytestmark = pytest.mark.browser

browser = test_browser.browser
open_page = test_browser.open_page

RUNS = 1000
CHECKED = """() => [...document.querySelectorAll('.kb-run input')].filter(b => b.checked).length"""
CHART_RUNS = """() => { const p = document.querySelector('.kb-card .js-plotly-plot');
  return p && p.data ? new Set(p.data.map(t => t.legendgroup || t.name)).size : 0; }"""


@pytest.fixture(scope="module")
def thousand_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    logdir = tmp_path_factory.mktemp("thousand")
    for run in range(RUNS):
        write_scalar_run(logdir / f"run_{run:03d}", tags=1, steps=3, seed=run)
    return logdir


def test_run_selector_with_a_thousand_runs(open_page, thousand_runs: Path) -> None:
    watched = open_page(thousand_runs)
    page = watched.page
    count = page.locator("#kb-run-count")
    page.wait_for_function("n => document.querySelectorAll('.kb-run').length === n", arg=RUNS)
    assert count.text_content() == str(RUNS)
    page.wait_for_function(f"() => ({CHART_RUNS})() === {RUNS}", timeout=60_000)
    page.locator("#kb-run-filter").fill("run_00[0-4]$")
    page.wait_for_function(
        "() => document.querySelector('#kb-run-count').textContent === '5 of 1000'"
    )
    page.wait_for_function(f"() => ({CHART_RUNS})() === 5", timeout=60_000)
    page.get_by_role("button", name="Select none").click()  # the five shown, only
    page.wait_for_function(f"() => ({CHECKED})() === {RUNS - 5}")
    page.get_by_role("button", name="Select all").click()
    page.wait_for_function(f"() => ({CHECKED})() === {RUNS}")
    page.wait_for_function(f"() => ({CHART_RUNS})() === 5", timeout=60_000)
    page.locator("#kb-run-filter").fill("")
    page.wait_for_function(f"() => ({CHART_RUNS})() === {RUNS}", timeout=60_000)
    watched.assert_clean()
