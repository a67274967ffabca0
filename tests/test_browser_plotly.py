"""The page draws with Plotly's partial bundle; the full one loads only when a tab asks."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import test_browser

pytestmark = pytest.mark.browser

browser = test_browser.browser
open_page = test_browser.open_page
two_runs = test_browser.two_runs

SCRIPTS = "() => performance.getEntriesByType('resource').map(e => e.name)"
HAS_TRACE = "t => Object.keys(Plotly.PlotSchema.get().traces).includes(t)"
# What a tab needing other trace types does (HPARAMS' parallel coordinates, say).
LOAD_FULL = """async () => {
  const charts = await import('./static/js/charts.js');
  const Plotly = await charts.loadFullPlotly();
  const again = await charts.loadFullPlotly();  // loaded once
  const div = document.createElement('div');
  document.body.append(div);
  await Plotly.newPlot(div, [{type: 'parcoords', dimensions: [{values: [1, 2]}]}]);
  return [Plotly === again, div._fullData[0].type === 'parcoords' && div._fullData[0].visible];
}"""


def test_charts_draw_with_the_partial_bundle_and_the_full_one_loads_on_demand(
    open_page, two_runs: Path
) -> None:
    watched = open_page(two_runs)
    watched.wait_for_charts(3)
    page = watched.page
    loaded = [url for url in page.evaluate(SCRIPTS) if "/vendor/" in url]
    assert len(loaded) == 1 and "/vendor/plotly-basic-" in loaded[0], loaded
    assert page.evaluate(HAS_TRACE, "scatter") and not page.evaluate(HAS_TRACE, "parcoords")
    assert page.evaluate(LOAD_FULL) == [True, True]
    full = [url for url in page.evaluate(SCRIPTS) if "/vendor/" in url]
    assert len(full) == 2 and "basic" not in full[1]
    # The charts drawn before still answer to the full bundle.
    page.evaluate("() => Plotly.relayout(document.querySelector('.js-plotly-plot'), {})")
    watched.assert_clean()
