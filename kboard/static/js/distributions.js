// The DISTRIBUTIONS tab: a histogram's percentiles over steps, as TensorBoard draws them.
//
// /api/histograms gives nine values per step at the normal distribution's -inf, -1.5, -1,
// -0.5, 0, 0.5, 1, 1.5 and +inf sigma (0, 6.68, 15.87, 30.85, 50, 69.15, 84.13, 93.32 and 100
// percent). They become nested bands, min–max lightest, then ±1.5σ, ±1σ, ±0.5σ, and the
// median as a line. Steps without values ("NaN" percentiles) leave a gap.

import { defineState, spec } from './app.js';
import { createBoard, registerBoard } from './board.js';
import {
  axisStyle,
  axisTitle,
  baseLayout,
  HistogramCard,
  histogramHowTo,
  withAlpha,
} from './charts.js';
import { formatNumber } from './util.js';

defineState('dclosed', spec.list()); // collapsed tag groups

const LABELS = ['min', '6.68%', '15.87%', '30.85%', 'median', '69.15%', '84.13%', '93.32%', 'max'];
const BAND_ALPHA = [0.13, 0.16, 0.2, 0.26]; // min–max, ±1.5σ, ±1σ, ±0.5σ (they stack)

/** The value for Plotly: a number, or null (a gap) for "NaN" and other non-finite values. */
function value(v) {
  const n = v === null || v === undefined ? NaN : Number(v);
  return Number.isFinite(n) ? n : null;
}

function distributionFigure(clean, colour, data) {
  const steps = data.steps || [];
  const rows = (data.percentiles || []).map((p) => (p || []).map(value));
  const column = (k) => steps.map((_, i) => (rows[i] && rows[i].length > k ? rows[i][k] : null));
  const single = steps.length === 1;
  const traces = [];
  for (let band = 0; band < 4; band++) {
    const low = band;
    const high = 8 - band;
    traces.push({
      type: 'scatter',
      mode: single ? 'markers' : 'lines',
      x: steps,
      y: column(low),
      line: { width: 0, color: colour },
      marker: { size: 4, color: withAlpha(colour, 0.4) },
      hoverinfo: 'skip',
      meta: { kind: 'percentile', index: low, label: LABELS[low] },
    });
    traces.push({
      type: 'scatter',
      mode: single ? 'markers' : 'lines',
      x: steps,
      y: column(high),
      fill: 'tonexty',
      fillcolor: withAlpha(colour, BAND_ALPHA[band]),
      line: { width: 0, color: colour },
      marker: { size: 4, color: withAlpha(colour, 0.4) },
      hoverinfo: 'skip',
      meta: { kind: 'percentile', index: high, label: LABELS[high] },
    });
  }
  const median = column(4);
  traces.push({
    type: 'scatter',
    mode: single ? 'lines+markers' : 'lines',
    x: steps,
    y: median,
    line: { width: 2, color: colour },
    marker: { size: 6, color: colour },
    // One hover for the whole step: every percentile, the highest first.
    customdata: steps.map((_, i) =>
      LABELS.map((_, k) => {
        const v = rows[i] ? value(rows[i][k]) : null;
        return v === null ? '–' : formatNumber(v);
      }).reverse(),
    ),
    hovertemplate:
      'step %{x}<br>' +
      [...LABELS]
        .reverse()
        .map((label, k) => `${label}: %{customdata[${k}]}`)
        .join('<br>') +
      '<extra></extra>',
    meta: { kind: 'percentile', index: 4, label: 'median' },
  });
  const layout = baseLayout({
    hovermode: 'x',
    xaxis: axisStyle({ title: axisTitle('step'), hoverformat: ',d', tickformat: ',d' }),
    yaxis: axisStyle({ title: axisTitle('value') }),
    meta: { mode: 'distribution' },
    uirevision: 'distribution', // live updates keep the user's zoom
  });
  return { traces, layout };
}

const board = createBoard({
  kind: 'histograms',
  closedKey: 'dclosed',
  emptyTitle: 'No histogram summaries yet, so no distributions',
  emptyLines: histogramHowTo(),
  makeCard: (run, tag, info) => new HistogramCard(run, tag, info, distributionFigure),
});

registerBoard('distributions', board);
