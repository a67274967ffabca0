"""The HPARAMS tab in a real Chromium: sort, filter, brush, select, show in SCALARS."""

from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from playwright.sync_api import expect

from kboard import SummaryWriter, summary
from tests import hparams_logs, test_browser

pytestmark = pytest.mark.browser

browser = test_browser.browser
open_page = test_browser.open_page

HOSTILE = "<img src=x onerror=alert(1)>"
ROWS = "#panel-hparams tr.kb-hp-row"


@pytest.fixture(scope="module")
def sessions_logdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five sessions by kboard.summary, and one whose name and value are HTML."""
    logdir = tmp_path_factory.mktemp("hp_page")
    hparams_logs.write_kboard_plain(logdir)
    writer = summary.create_file_writer(str(logdir / HOSTILE))
    with writer.as_default():
        values = {"lr": 0.05, "units": 3, "optimizer": "<b>bold</b>", "<i>h</i>": 1.0}
        summary.hparams(values, trial_id="e")
        summary.scalar("loss", 0.7, step=0)
    writer.close()
    return logdir


def rows_shown(page) -> list[str]:
    return page.eval_on_selector_all(ROWS, "rows => rows.map(r => r.dataset.run)")


def column_values(page, column: str) -> list[str]:
    index = page.eval_on_selector_all(
        "#panel-hparams thead tr:first-child th",
        "(ths, c) => ths.findIndex(th => th.dataset.column === c)",
        column,
    )
    return page.eval_on_selector_all(
        ROWS, "(rows, i) => rows.map(r => r.children[i].textContent)", index
    )


def query(page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query)


def test_sort_filter_brush_select_and_show_in_scalars(open_page, sessions_logdir: Path) -> None:
    watched = open_page(sessions_logdir, "?tab=hparams")
    page = watched.page
    page.wait_for_function(f"() => document.querySelectorAll('{ROWS}').length === 6")
    assert sorted(rows_shown(page)) == sorted([f"run{i}" for i in range(5)] + [HOSTILE])
    # Names and values are text, never HTML.
    assert page.locator(f'{ROWS}[data-run="{HOSTILE}"] th').inner_text().strip() == HOSTILE
    assert page.locator("#panel-hparams img").count() == 0
    assert "<b>bold</b>" in column_values(page, "hp:optimizer")

    # Hide a column, and show it again.
    page.locator(".kb-hp-columns summary").click()
    page.locator('.kb-hp-columns-list input[data-column="status"]').uncheck()
    expect(page.locator('#panel-hparams th[data-column="status"]')).to_have_count(0)
    page.wait_for_function("() => location.search.includes('hhide=status')")
    page.locator('.kb-hp-columns-list input[data-column="status"]').check()
    expect(page.locator('#panel-hparams th[data-column="status"]')).to_have_count(2)
    page.locator(".kb-hp-columns summary").click()

    # Sort by a hyperparameter, then the other way.
    page.locator('th[data-column="hp:lr"] .kb-hp-sort').click()
    page.wait_for_function("() => location.search.includes('hsort=hp')")
    lrs = [float(v) for v in column_values(page, "hp:lr")]
    assert lrs == sorted(lrs)
    page.locator('th[data-column="hp:lr"] .kb-hp-sort').click()
    page.wait_for_function("() => location.search.includes('hsort=-hp')")
    lrs = [float(v) for v in column_values(page, "hp:lr")]
    assert lrs == sorted(lrs, reverse=True)

    # Filter a categorical column by value: the table and the run selector follow.
    page.locator('tr.kb-hp-filters th[data-column="hp:optimizer"] select').select_option("sgd")
    page.wait_for_function(f"() => document.querySelectorAll('{ROWS}').length === 2")
    assert sorted(rows_shown(page)) == ["run2", "run4"]
    expect(page.locator("#kb-run-filter")).to_have_value("^(?:run2|run4)$")
    # A numeric range filter.
    page.get_by_role("button", name="Clear filters").click()
    page.wait_for_function(f"() => document.querySelectorAll('{ROWS}').length === 6")
    expect(page.locator("#kb-run-filter")).to_have_value("")
    page.get_by_label("loss last at most").fill("0.2")
    page.get_by_label("loss last at most").press("Enter")
    page.wait_for_function(f"() => document.querySelectorAll('{ROWS}').length === 2")
    assert sorted(rows_shown(page)) == ["run3", "run4"]
    page.get_by_role("button", name="Clear filters").click()

    # Brush the lr axis of the parallel coordinates with the mouse, from 40% of its height up.
    plot = "#panel-hparams .kb-hp-parcoords"
    page.wait_for_function(f"() => document.querySelector('{plot}')._fullLayout")
    # Axis labels are HTML to Plotly: escaped, they read as the names.
    labels = page.eval_on_selector_all(f"{plot} text", "ts => ts.map(t => t.textContent)")
    assert "<i>h</i>" in labels and "<b>bold</b>" in labels
    assert page.locator("#panel-hparams i, #panel-hparams b").count() == 0
    index = page.eval_on_selector(
        plot, "d => d.data[0].dimensions.findIndex(x => x.meta === 'hp:lr')"
    )
    box = page.locator(f"{plot} .axis-brush").nth(index).bounding_box()
    x = box["x"] + box["width"] / 2
    page.mouse.move(x, box["y"] + box["height"] * 0.6)
    page.mouse.down()
    page.mouse.move(x, box["y"] + box["height"] * 0.3, steps=5)
    page.mouse.move(x, box["y"] - 10, steps=5)
    page.mouse.up()
    page.wait_for_function(f"() => document.querySelectorAll('{ROWS}').length === 3")
    assert sorted(rows_shown(page)) == sorted(["run2", "run3", HOSTILE])
    page.wait_for_function("() => location.search.includes('hfilter=')")
    brushed = json.loads(query(page)["hfilter"][0])["hp:lr"]
    assert 0.01 < brushed["min"] < 0.05 and brushed["max"] >= 0.1
    expect(page.locator(".kb-run:not([hidden])")).to_have_count(3)

    # Select one run by its scatter point (a real click), another by its row.
    scatter = "#panel-hparams .kb-hp-scatter"
    page.select_option("#panel-hparams .kb-hp-x", "hp:lr")
    page.select_option("#panel-hparams .kb-hp-y", "m:loss:last")
    page.wait_for_function(
        f"""() => {{ const d = document.querySelector('{scatter}');
                    return d.data && d._fullLayout && d._fullLayout.xaxis.title.text === 'lr'
                      && d._fullLayout.yaxis.title.text === 'loss last'; }}"""
    )
    point = page.eval_on_selector(
        scatter,
        """d => { const t = d.data[0], i = t.customdata.indexOf('run2');
                  const xa = d._fullLayout.xaxis, ya = d._fullLayout.yaxis;
                  const box = d.getBoundingClientRect();
                  return [box.left + xa._offset + xa.l2p(t.x[i]),
                          box.top + ya._offset + ya.l2p(t.y[i])]; }""",
    )
    page.mouse.move(point[0] + 1, point[1] + 1)
    page.mouse.click(point[0], point[1])
    page.wait_for_function("() => location.search.includes('hsel=run2')")
    page.locator(f'{ROWS}[data-run="run3"]').click()
    expect(page.locator(f'{ROWS}[aria-selected="true"]')).to_have_count(2)
    colors = page.eval_on_selector(scatter, "d => d.data[0].marker.color")
    assert all(c.startswith("#") for c in colors)

    # The matrix of every pair: a category tick (HTML to Plotly) reads as the value, and a
    # click on a point selects its run too.
    page.locator("#panel-hparams .kb-hp-matrix").check()
    page.wait_for_function(f"() => document.querySelector('{scatter}').data[0].type === 'splom'")
    ticks = f"{scatter} g[class*='tick'] text"
    page.wait_for_function(
        "s => [...document.querySelectorAll(s)].some(t => t.textContent === '<b>bold</b>')",
        arg=ticks,
    )
    ticks = page.eval_on_selector_all(ticks, "ts => ts.map(t => t.textContent)")
    assert "<b>bold</b>" in ticks
    assert page.locator("#panel-hparams b").count() == 0
    page.locator("#panel-hparams .kb-hp-matrix").uncheck()
    page.wait_for_function(f"() => document.querySelector('{scatter}').data[0].type === 'scatter'")

    # Show them in SCALARS.
    page.get_by_role("button", name="Show 2 runs in Scalars").click()
    expect(page.locator("#tab-scalars")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#kb-run-filter")).to_have_value("^(?:run2|run3)$")
    watched.wait_for_charts(1)
    chart = watched.chart("loss")
    assert sorted({t["run"] for t in chart}) == ["run2", "run3"]

    watched.assert_clean()

    # The state comes back from the URL (leaving the page aborts its live stream: not an error).
    state = {
        "tab": "hparams",
        "hsort": "-hp:lr",
        "hfilter": json.dumps({"hp:optimizer": {"values": ["adam"]}}),
        "hsel": "run0",
    }
    watched.open("?" + urlencode(state))
    page.wait_for_function(f"() => document.querySelectorAll('{ROWS}').length === 3")
    assert rows_shown(page) == ["run3", "run0", "run1"]
    expect(page.locator(f'{ROWS}[aria-selected="true"]')).to_have_count(1)
    expect(page.locator('tr.kb-hp-filters th[data-column="hp:optimizer"] select')).to_have_value(
        "adam"
    )
    watched.failed = [f for f in watched.failed if "/api/stream net::ERR_ABORTED" not in f]
    watched.assert_clean()


def test_runs_table_without_hparams_and_2000_rows(open_page, tmp_path: Path) -> None:
    """Every run is a row even with no hyperparameter; 2,000 rows sort and scroll quickly."""
    runs = 2000
    for index in range(runs):
        with SummaryWriter(str(tmp_path / f"r{index:04d}"), flush_secs=60) as writer:
            writer.add_scalar("loss", (index * 7919) % runs, 0)
            writer.add_scalar("loss", (index * 7919) % runs / 2, 1)
    watched = open_page(tmp_path, "?tab=hparams")
    page = watched.page
    page.wait_for_function(f"() => document.querySelectorAll('{ROWS}').length > 0", timeout=60_000)
    expect(page.locator(".kb-hp-summary")).to_have_text("2,000 runs")
    drawn = page.locator(ROWS).count()
    assert drawn < 200, "only the rows on screen are drawn"
    started = time.perf_counter()
    page.locator('th[data-column="s:loss:max"] .kb-hp-sort').click()
    page.locator('th[data-column="s:loss:max"][aria-sort="ascending"]').wait_for()
    page.locator('th[data-column="s:loss:max"] .kb-hp-sort').click()
    page.locator('th[data-column="s:loss:max"][aria-sort="descending"]').wait_for()
    elapsed = time.perf_counter() - started
    assert column_values(page, "s:loss:max")[:2] == ["1999", "1998"]
    assert elapsed < 5, f"two sorts of 2,000 rows took {elapsed:.1f} s"
    # Scrolling to the end draws the last rows.
    page.eval_on_selector("#panel-hparams .kb-hp-scroll", "s => s.scrollTop = s.scrollHeight")
    page.wait_for_function(
        f"() => [...document.querySelectorAll('{ROWS}')].some(r => r.children[0] && "
        "r.querySelector('td') && r.parentNode.lastChild.previousSibling === r)"
    )
    last = column_values(page, "s:loss:max")[-1]
    assert last == "0"
    watched.assert_clean()
