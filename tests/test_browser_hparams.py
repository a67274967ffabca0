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

    # Brush the lr axis (log: 0.001 to 0.1) of the parallel coordinates with the mouse, from
    # 70% of its height up (lr from 0.025).
    plot = "#panel-hparams .kb-hp-parcoords"
    page.wait_for_function(f"() => document.querySelector('{plot}')._fullLayout")
    # Axis labels are HTML to Plotly: escaped, they read as the names.
    labels = page.eval_on_selector_all(f"{plot} text", "ts => ts.map(t => t.textContent)")
    assert "<i>h</i>" in labels and "<b>bold</b>" in labels
    assert page.locator("#panel-hparams i, #panel-hparams b").count() == 0
    index = page.eval_on_selector(
        plot, "d => d.data[0].dimensions.findIndex(x => x.meta === 'log:hp:lr')"
    )
    box = page.locator(f"{plot} .axis-brush").nth(index).bounding_box()
    x = box["x"] + box["width"] / 2
    page.mouse.move(x, box["y"] + box["height"] * 0.3)
    page.mouse.down()
    page.mouse.move(x, box["y"] + box["height"] * 0.15, steps=5)
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
    # The rows drawn follow the scroll on a later frame: wait for the smallest value (each
    # run's is distinct, 0 the least) to be the last row drawn.
    column = page.eval_on_selector_all(
        "#panel-hparams thead tr:first-child th",
        "ths => ths.findIndex(th => th.dataset.column === 's:loss:max')",
    )
    page.wait_for_function(
        "([sel, i]) => { const rows = document.querySelectorAll(sel);"
        " return rows.length > 0 && rows[rows.length - 1].children[i].textContent === '0'; }",
        arg=[ROWS, column],
        timeout=10_000,
    )
    assert column_values(page, "s:loss:max")[-1] == "0"
    watched.assert_clean()


@pytest.fixture(scope="module")
def sweep_logdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """sample_logs' shape: 3 learning rates x 2 seeds, Keras-like train/ and validation/ runs."""
    logdir = tmp_path_factory.mktemp("hp_sweep")
    for lr in (0.0003, 0.003, 0.01):
        for seed in (0, 1):
            session = logdir / f"lr={lr},seed={seed}"
            writer = summary.create_file_writer(str(session))
            with writer.as_default():
                values = {"lr": lr, "seed": seed, "dropout": 0.2, "batch_size": 64}
                summary.hparams(values, start_time_secs=hparams_logs.START)
                summary.session_end("success", end_time_secs=hparams_logs.START + 12.3456, step=0)
            writer.close()
            scalars = {
                "train": ["batch_accuracy", "batch_loss", "epoch_accuracy", "epoch_loss"],
                "validation": [
                    "epoch_accuracy",
                    "epoch_loss",
                    "evaluation_accuracy_vs_iterations",
                    "evaluation_loss_vs_iterations",
                ],
            }
            for sub, tags in scalars.items():
                writer = summary.create_file_writer(str(session / sub))
                with writer.as_default():
                    for step in range(2):
                        for tag in tags:
                            value = 0.5 + seed / 10 + lr if "acc" in tag else 1 / (step + 2)
                            summary.scalar(tag, value + step / 3, step=step)
                writer.close()
    return logdir


def column_ids(page) -> list[str]:
    return page.eval_on_selector_all(
        "#panel-hparams thead tr:first-child th", "ths => ths.map(th => th.dataset.column)"
    )


def test_a_sweep_reads_at_a_glance(open_page, sweep_logdir: Path) -> None:
    """Defaults on a seed sweep: varying axes, short labels, lr on a log x, no hash column."""
    watched = open_page(sweep_logdir, "?tab=hparams")
    page = watched.page
    plot = "#panel-hparams .kb-hp-parcoords"
    scatter = "#panel-hparams .kb-hp-scatter"
    page.wait_for_function(
        f"() => document.querySelector('{plot}')._fullLayout"
        f" && document.querySelector('{scatter}')._fullLayout"
    )
    # The axes: the hyperparameters that vary (lr on a log scale), then the validation metrics.
    validation = [
        "epoch_accuracy",
        "epoch_loss",
        "evaluation_accuracy_vs_iterations",
        "evaluation_loss_vs_iterations",
    ]
    metas = page.eval_on_selector(plot, "d => d.data[0].dimensions.map(x => x.meta)")
    assert metas == ["log:hp:lr", "hp:seed"] + [f"m:validation/{m}:last" for m in validation]
    labels = page.eval_on_selector(plot, "d => d.data[0].dimensions.map(x => x.label)")
    assert labels[2] == "epoch_accuracy" and all("validation" not in x for x in labels)
    assert max(len(line) for x in labels for line in x.split("<br>")) <= 14
    titles = page.eval_on_selector_all(
        f"{plot} title.kb-hp-axis-title", "ts => ts.map(t => t.textContent)"
    )
    assert titles[2].startswith("validation/epoch_accuracy")
    # Another axis on request, kept in the URL.
    page.locator(".kb-hp-axes-choice summary").click()
    page.locator('.kb-hp-axes-list input[data-column="hp:batch_size"]').check()
    page.wait_for_function("() => location.search.includes('haxes=')")
    page.wait_for_function(
        f"() => document.querySelector('{plot}').data[0].dimensions.length === 7"
    )
    assert "hp:batch_size" in query(page)["haxes"][0]
    page.locator(".kb-hp-axes-choice summary").click()

    # The scatter: lr (the most values) on a log x, the validation accuracy on y, seeds apart.
    layout = page.eval_on_selector(
        scatter,
        """d => ({x: d._fullLayout.xaxis.title.text, type: d._fullLayout.xaxis.type,
                  y: d._fullLayout.yaxis.title.text,
                  symbols: [...new Set(d.data[0].marker.symbol)].length})""",
    )
    assert layout == {
        "x": "lr",
        "type": "log",
        "y": "validation/epoch_accuracy last",
        "symbols": 2,
    }
    expect(page.locator(".kb-hp-symbols")).to_have_text("seed: ● 0  ◆ 1")

    # The table: run, varying then constant hyperparameters, metrics, status and times; hp's
    # hash of a group hidden until asked for.
    ids = column_ids(page)
    assert ids[:5] == ["run", "hp:lr", "hp:seed", "hp:batch_size", "hp:dropout"]
    assert ids[5] == "m:validation/epoch_accuracy:last"
    assert ids[-3:] == ["status", "start", "duration"]
    assert "group" not in ids and not any(i.startswith("m:train/") for i in ids)
    assert column_values(page, "hp:lr")[:1] == ["3e-4"]
    cell = page.locator(f"{ROWS} td").nth(ids.index("duration") - 1)
    expect(cell).to_have_text("12.3")
    assert cell.get_attribute("title").startswith("12.345")
    page.locator(".kb-hp-columns summary").click()
    page.locator('.kb-hp-columns-list input[data-column="group"]').check()
    page.wait_for_function("() => location.search.includes('hshow=group')")
    expect(page.locator('#panel-hparams th[data-column="group"]')).to_have_count(2)
    watched.assert_clean()


def test_many_sessions_colour_lines_by_metric_and_every_run_keeps_lines(
    open_page, tmp_path: Path
) -> None:
    """Beyond 24 sessions run colours blur: lines take the accuracy's colour scale instead."""
    for index in range(30):
        writer = summary.create_file_writer(str(tmp_path / f"t{index:02d}"))
        with writer.as_default():
            summary.hparams({"lr": 0.001 * (index + 1), "units": 8})
            summary.scalar("val/accuracy", index / 30, step=0)
            summary.scalar("val/loss", 1 - index / 30, step=0)
        writer.close()
    writer = summary.create_file_writer(str(tmp_path / "t00" / "train"))
    with writer.as_default():
        summary.scalar("batch_accuracy", 0.5, step=0)  # in no run beside val/accuracy
    writer.close()
    watched = open_page(tmp_path, "?tab=hparams")
    page = watched.page
    plot = "#panel-hparams .kb-hp-parcoords"
    page.wait_for_function(f"() => document.querySelector('{plot}')._fullLayout")
    line = page.eval_on_selector(
        plot,
        """d => ({scale: d.data[0].line.showscale, title: d.data[0].line.colorbar.title.text,
                  colors: d.data[0].line.color.slice(0, 2)})""",
    )
    assert line["scale"] is True and line["title"] == "val/accuracy"
    assert line["colors"] == pytest.approx([0, 1 / 30], abs=1e-6)
    # Every run: the axes are scalar tags that runs have together (hyperparameters and train's
    # tags would leave no line whole).
    page.locator("#kb-hp-all").check()
    page.wait_for_function(
        f"""() => document.querySelector('{plot}').data[0].dimensions.map(x => x.meta).join()
                  === 's:val/accuracy:last,s:val/loss:last'"""
    )
    watched.assert_clean()
