"""Runs grouped by a hyperparameter in SCALARS, in a real Chromium: one line and band per
group with its member count, the numbers of ``kboard.read_scalars(group_by=...)``, the state
in the URL, HPARAMS' "group seeds" action, and the choice coming with a live sweep."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

import kboard
from kboard import summary
from tests import test_browser
from tests.test_browser_groups import GROUPED, TRACES, assert_groups_drawn, by_kind
from tests.test_hparam_groups import SWEEP, write_sweep

pytestmark = pytest.mark.browser

browser = test_browser.browser
open_page = test_browser.open_page


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sweep(tmp_path_factory.mktemp("browser_sweep"), with_tensorflow=False)


def members_of(group: str) -> int:
    """How many runs of the sweep a group key like ``lr=0.1`` or ``lr=0.1,optimizer=adam`` takes."""
    lr = float(group.split(",")[0].removeprefix("lr="))
    return sum(1 for run_lr, _, _ in SWEEP.values() if run_lr == lr)


def test_group_by_a_hyperparameter_in_scalars(open_page, sweep: Path) -> None:
    pytest.importorskip("pandas")
    frame = kboard.read_scalars(str(sweep), group_by=["lr"], smoothing=0.6)  # page default
    watched = open_page(sweep)
    watched.wait_for_charts(1)
    page = watched.page
    mode = page.locator("#kb-group-mode")
    mode.wait_for(state="visible", timeout=20_000)  # the sweep has hyperparameters
    assert page.locator("#kb-group-hparams").is_hidden()
    mode.select_option("hparams")
    names = page.locator("#kb-group-hparams option").all_text_contents()
    assert names == ["lr", "optimizer", "seed"]
    assert page.locator("#kb-group").is_hidden()
    page.locator("#kb-group-hparams").select_option(["lr"])
    page.wait_for_function(GROUPED, arg="loss", timeout=20_000)
    traces = page.evaluate(TRACES, "loss")
    assert_groups_drawn(traces, frame, "mean", "std", members_of)
    assert set(by_kind(traces, "smoothed")) == {"baseline"}  # no lr: drawn alone
    legend = page.locator(".kb-card .legend text.legendtext").all_text_contents()
    assert {"lr=0.1 · 3 runs", "lr=0.01 · 3 runs"} <= set(legend), legend
    page.wait_for_function("() => location.search.includes('groupby=lr')")
    query = parse_qs(urlsplit(page.url).query)
    assert query["groupby"] == ["lr"] and "group" not in query
    href = page.locator('.kb-card[data-tag="loss"] a.kb-card-link').first.get_attribute("href")
    assert parse_qs(urlsplit(href).query)["group_by"] == ["lr"]

    # The link reproduces the view; a name pattern again leaves the hyperparameters.
    again = open_page(sweep, "?" + urlsplit(page.url).query)
    again.page.wait_for_function(GROUPED, arg="loss", timeout=20_000)
    assert again.page.locator("#kb-group-mode").input_value() == "hparams"
    assert again.page.locator("#kb-group-hparams").evaluate(
        "s => [...s.selectedOptions].map(o => o.value)"
    ) == ["lr"]
    assert_groups_drawn(again.page.evaluate(TRACES, "loss"), frame, "mean", "std", members_of)
    again.page.locator("#kb-group-mode").select_option("pattern")
    again.page.wait_for_function("() => !location.search.includes('groupby=')")
    again.page.wait_for_function(f"tag => !({GROUPED})(tag)", arg="loss", timeout=20_000)
    watched.assert_clean()

    # HPARAMS groups the seeds: by every hyperparameter that differs, but the seed.
    by_setting = kboard.read_scalars(str(sweep), group_by="lr,optimizer", smoothing=0.6)
    again.page.locator("#tab-hparams").click()
    button = again.page.locator(".kb-hp-group-scalars")
    button.wait_for(state="visible", timeout=20_000)
    assert button.text_content() == "Group seeds in Scalars by lr, optimizer"
    button.click()
    again.page.wait_for_function(GROUPED, arg="loss", timeout=20_000)
    again.page.wait_for_function("() => location.search.includes('groupby=lr%2Coptimizer')")
    query = parse_qs(urlsplit(again.page.url).query)
    assert query["groupby"] == ["lr,optimizer"] and query.get("tab", ["scalars"]) == ["scalars"]
    traces = again.page.evaluate(TRACES, "loss")
    assert_groups_drawn(traces, by_setting, "mean", "std", members_of)
    assert "lr=0.1,optimizer=adam" in by_kind(traces, "group")
    again.assert_clean()


def test_the_hyperparameter_choice_comes_with_hyperparameters(open_page, tmp_path: Path) -> None:
    test_browser.write_runs(tmp_path, {"a": 1.0, "b": 2.0}, steps=5)
    watched = open_page(tmp_path, None)
    page = watched.page
    with page.expect_response(lambda r: "api/hparams" in r.url) as answer:
        watched.open("")
    assert answer.value.json() == {"hparams": []}
    watched.wait_for_charts(3)
    assert page.locator("#kb-group-mode").is_hidden()
    assert page.locator("#kb-group").is_visible()
    # A sweep that starts while the page is open: the choice comes with its first session.
    writer = summary.create_file_writer(str(tmp_path / "trial-0"))
    with writer.as_default():
        summary.hparams({"lr": 0.1}, trial_id="trial-0")
        summary.scalar("loss", 1.0, step=0)
    writer.close()
    page.locator("#kb-group-mode").wait_for(state="visible", timeout=15_000)
    page.locator("#kb-group-mode").select_option("hparams")
    assert page.locator("#kb-group-hparams option").all_text_contents() == ["lr"]
    watched.assert_clean()
