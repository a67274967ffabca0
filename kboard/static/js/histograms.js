// The HISTOGRAMS tab: one chart per run and tag, every step of the histogram in it.
//
// "offset": one ridge per step, stacked in depth by step as TensorBoard draws them, the newest
// in front (lowest) and the oldest at the back, each filled so it hides the ones behind it.
// "overlay": every step on one axis, coloured from light (oldest) to dark (newest).
// The data is /api/histograms: re-binned onto common edges, so every step shares the x bins.

import { app, defineState, spec } from './app.js';
import { createBoard, registerBoard } from './board.js';
import {
  axisStyle,
  axisTitle,
  baseLayout,
  HistogramCard,
  histogramHowTo,
  mix,
} from './charts.js';
import { formatNumber } from './util.js';

defineState('hmode', spec.choice('offset', ['offset', 'overlay']));
defineState('hclosed', spec.list()); // collapsed tag groups

function binText(edges, j) {
  return `${formatNumber(edges[j])} to ${formatNumber(edges[j + 1])}`;
}

const HOVER = 'step %{customdata[0]}<br>%{customdata[1]}<br>count %{customdata[2]}<extra></extra>';

/** About five round step values from first to last (none before the first step). */
function stepTicks(first, last) {
  if (!(last > first)) return [first];
  const raw = (last - first) / 5;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = Math.max(1, [1, 2, 5, 10].map((m) => m * power).find((d) => d >= raw) || raw);
  const ticks = [];
  for (let v = Math.ceil(first / step) * step; v <= last + 1e-9; v += step) ticks.push(v);
  return ticks;
}

/** The offset (ridge) figure: y is the step, each ridge rises above its step's baseline. */
function offsetFigure(clean, colour) {
  const { edges, rows } = clean;
  const n = rows.length;
  const centers = edges.slice(0, -1).map((e, j) => (e + edges[j + 1]) / 2);
  const first = rows[0].step;
  const last = rows[n - 1].step;
  const span = last - first;
  const height = n > 1 && span > 0 ? span * 0.3 : 1;
  let maxCount = 0;
  for (const row of rows) for (const c of row.counts) maxCount = Math.max(maxCount, c);
  const traces = [];
  const hx = [];
  const hy = [];
  const hdata = [];
  // Oldest first: Plotly paints in order, so each newer ridge hides what is behind it.
  rows.forEach((row, i) => {
    const age = n > 1 ? 1 - i / (n - 1) : 0; // 1 oldest, 0 newest
    const top = row.counts.map((c) => row.step - (height * c) / (maxCount || 1));
    const x = [edges[0], ...centers, edges[edges.length - 1]];
    const y = [row.step, ...top, row.step];
    traces.push({
      type: 'scatter',
      mode: 'lines',
      x,
      y,
      fill: 'toself',
      fillcolor: mix(colour, '#ffffff', 0.86 + 0.08 * age),
      line: { color: mix(colour, '#ffffff', 0.7 * age), width: 1.2 },
      hoverinfo: 'skip',
      meta: { kind: 'ridge', mode: 'offset', step: row.step },
    });
    row.counts.forEach((c, j) => {
      hx.push(centers[j]);
      hy.push(top[j]);
      hdata.push([String(row.step), binText(edges, j), formatNumber(c)]);
    });
  });
  traces.push({
    type: 'scatter',
    mode: 'markers',
    x: hx,
    y: hy,
    customdata: hdata,
    marker: { size: 6, color: colour, opacity: 0 },
    hovertemplate: HOVER,
    meta: { kind: 'hover', mode: 'offset' },
  });
  const pad = n > 1 && span > 0 ? span * 0.03 : 0.1;
  const tickvals = stepTicks(first, last);
  const layout = baseLayout({
    hovermode: 'closest',
    xaxis: axisStyle({ title: axisTitle('value') }),
    yaxis: axisStyle({
      title: axisTitle('step'),
      range: [last + pad, first - height - pad], // reversed: newest at the bottom
      autorange: false,
      tickmode: 'array',
      tickvals,
      ticktext: tickvals.map((v) => v.toLocaleString()),
      side: 'right',
    }),
    meta: { mode: 'offset' },
    uirevision: 'offset', // live updates keep the user's zoom; a mode switch resets it
  });
  return { traces, layout };
}

/** The overlay figure: every step on one count axis, coloured by step. */
function overlayFigure(clean, colour) {
  const { edges, rows } = clean;
  const n = rows.length;
  const centers = edges.slice(0, -1).map((e, j) => (e + edges[j + 1]) / 2);
  const oldest = mix(colour, '#ffffff', 0.78);
  const newest = mix(colour, '#000000', 0.25);
  const traces = rows.map((row, i) => {
    const t = n > 1 ? i / (n - 1) : 1;
    return {
      type: 'scatter',
      mode: centers.length > 1 ? 'lines' : 'lines+markers',
      x: centers,
      y: row.counts,
      customdata: row.counts.map((c, j) => [String(row.step), binText(edges, j), formatNumber(c)]),
      line: { color: blend(oldest, newest, t), width: 1.3 },
      hovertemplate: HOVER,
      meta: { kind: 'step', mode: 'overlay', step: row.step },
    };
  });
  const first = rows[0].step;
  const last = rows[n - 1].step;
  // A colour bar for the step: an invisible trace carries the scale.
  traces.push({
    type: 'scatter',
    mode: 'markers',
    x: [centers[0]],
    y: [0],
    hoverinfo: 'skip',
    marker: {
      size: 0.1,
      opacity: 0,
      color: [first],
      cmin: first,
      cmax: last > first ? last : first + 1,
      colorscale: [
        [0, oldest],
        [1, newest],
      ],
      showscale: last > first,
      colorbar: {
        title: { text: 'step', font: { size: 10, color: '#6b717b' } },
        thickness: 8,
        len: 0.9,
        tickfont: { size: 9 },
        tickmode: 'array',
        tickvals: stepTicks(first, last),
        ticktext: stepTicks(first, last).map((v) => v.toLocaleString()),
        outlinewidth: 0,
      },
    },
    meta: { kind: 'colorbar', mode: 'overlay' },
  });
  const layout = baseLayout({
    hovermode: 'closest',
    xaxis: axisStyle({ title: axisTitle('value') }),
    yaxis: axisStyle({ title: axisTitle('count'), rangemode: 'tozero' }),
    meta: { mode: 'overlay' },
    uirevision: 'overlay',
  });
  return { traces, layout };
}

/** Interpolate between two 'rgb(r, g, b)' colours. */
function blend(a, b, t) {
  const x = a.match(/\d+/g).map(Number);
  const y = b.match(/\d+/g).map(Number);
  const c = x.map((v, i) => Math.round(v + (y[i] - v) * t));
  return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
}

const board = createBoard({
  kind: 'histograms',
  closedKey: 'hclosed',
  emptyTitle: 'No histogram summaries yet',
  emptyLines: histogramHowTo(),
  makeCard: (run, tag, info) =>
    new HistogramCard(run, tag, info, (clean, colour) =>
      app.state.hmode === 'overlay' ? overlayFigure(clean, colour) : offsetFigure(clean, colour),
    ),
});

function bindSettings() {
  const radios = document.querySelectorAll('input[name="kb-hmode"]');
  const sync = () => {
    for (const radio of radios) radio.checked = radio.value === app.state.hmode;
  };
  for (const radio of radios) {
    radio.addEventListener('change', () => radio.checked && app.setState({ hmode: radio.value }));
  }
  sync();
  return sync;
}

registerBoard('histograms', board, {
  bindSettings,
  onState(keys) {
    if (keys.has('hmode')) board.redraw();
  },
});
