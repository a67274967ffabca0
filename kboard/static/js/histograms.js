// The HISTOGRAMS tab: one chart per run and tag, every step of the histogram in it.
//
// "offset": one ridge per step, stacked in depth by step as TensorBoard draws them, the newest
// in front (lowest) and the oldest at the back, each filled so it hides the ones behind it.
// "overlay": every step on one axis, coloured from light (oldest) to dark (newest).
// The data is /api/histograms: re-binned onto common edges, so every step shares the x bins.
// This module also holds what DISTRIBUTIONS shares with it (fetching, cleaning, chart style).

import { app, defineState, registerTab, spec } from './app.js';
import { createBoard, frameCard, refreshHeader } from './board.js';
import {
  codeBlock,
  el,
  FONT,
  fetchJSON,
  formatNumber,
  PLOT_CONFIG,
  plural,
  runColor,
} from './util.js';

defineState('hmode', spec.choice('offset', ['offset', 'overlay']));
defineState('hclosed', spec.list()); // collapsed tag groups



/** The axis style of the SCALARS charts. */
export function axisStyle(extra = {}) {
  return {
    zeroline: false,
    automargin: true,
    gridcolor: '#eceef1',
    linecolor: '#c9ced6',
    tickfont: { size: 10 },
    exponentformat: 'e',
    ...extra,
  };
}

export function axisTitle(text) {
  return { text, font: { size: 10, color: '#6b717b' }, standoff: 6 };
}

/** The layout every histogram-like chart starts from. */
export function baseLayout(extra = {}) {
  return {
    margin: { l: 52, r: 12, t: 8, b: 30 },
    hoverlabel: {
      bgcolor: 'rgba(255,255,255,0.96)',
      bordercolor: '#c9ced6',
      font: { size: 11, color: '#1f2328' },
      align: 'left',
    },
    showlegend: false,
    font: { family: FONT, size: 11, color: '#3c4149' },
    paper_bgcolor: 'rgba(0,0,0,0)',
    plot_bgcolor: '#ffffff',
    ...extra,
  };
}

function hexToRgb(hex) {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

/** Mix two '#rrggbb' colours: t = 0 gives a, t = 1 gives b. Returns 'rgb(...)'. */
function mix(a, b, t) {
  const x = hexToRgb(a);
  const y = hexToRgb(b);
  const c = x.map((v, i) => Math.round(v + (y[i] - v) * t));
  return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
}

/** '#rrggbb' with an alpha, as 'rgba(...)'. */
export function withAlpha(hex, alpha) {
  const [r, g, b] = hexToRgb(hex);
  return `rgba(${r}, ${g}, ${b}, ${alpha})`;
}

// Both tabs read the same response: keep it for the generation it was fetched in.
const cache = new Map(); // `${run}\0${tag}` -> {generation, promise}

/** GET /api/histograms for one run and tag (shared by HISTOGRAMS and DISTRIBUTIONS). */
function fetchHistograms(run, tag) {
  const key = `${run}\0${tag}`;
  const hit = cache.get(key);
  if (hit && hit.generation === app.generation) return hit.promise;
  const params = new URLSearchParams({ run, tag });
  const promise = fetchJSON(`api/histograms?${params}`);
  cache.set(key, { generation: app.generation, promise });
  promise.catch(() => cache.delete(key));
  return promise;
}

const toNumber = (v) => (v === null || v === undefined ? NaN : Number(v));

/**
 * Clean a /api/histograms response for drawing. Returns {edges, rows, empty, total} where
 * rows = [{step, wall_time, counts}] for the steps with values; edges is [] when there is no
 * bin to draw (every step empty, or edges that are not finite). One bin (every value equal)
 * keeps its counts summed into that bin.
 */
function cleanHistograms(data) {
  let edges = (data.edges || []).map(toNumber);
  if (edges.length < 2 || !edges.every(Number.isFinite)) edges = [];
  const nBins = Math.max(edges.length - 1, 0);
  const steps = data.steps || [];
  const rows = [];
  let empty = 0;
  for (let i = 0; i < steps.length; i++) {
    const raw = ((data.counts || [])[i] || []).map(toNumber);
    let counts = raw.map((c) => (Number.isFinite(c) && c > 0 ? c : 0));
    if (nBins === 1 && counts.length !== 1) counts = [counts.reduce((s, c) => s + c, 0)];
    counts = counts.slice(0, nBins);
    while (counts.length < nBins) counts.push(0);
    const isEmpty = (data.empty && data.empty[i]) || !counts.some((c) => c > 0);
    if (isEmpty) {
      empty += 1;
      continue;
    }
    rows.push({ step: steps[i], wall_time: (data.wall_times || [])[i], counts });
  }
  return { edges: rows.length ? edges : [], rows, empty, total: steps.length };
}

/** A card's note for steps that have nothing to draw. */
function emptyStepsNote(clean) {
  return clean.empty ? `${plural(clean.empty, 'step')} without finite values not drawn.` : '';
}

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

/**
 * A Plotly card for one run and tag, shared with DISTRIBUTIONS: fetches /api/histograms and
 * draws figure(clean, colour) -> {traces, layout}, or a placeholder when nothing can be drawn.
 */
export class HistogramCard {
  constructor(run, tag, info, figure) {
    this.run = run;
    this.tag = tag;
    this.figure = figure;
    this.data = null;
    this.plotted = false;
    this.destroyed = false;
    this.plot = el('div', { class: 'kb-plot kb-plot--hist' });
    this.placeholder = el('div', { class: 'kb-placeholder', hidden: true });
    this.note = el('p', { class: 'kb-card-note' });
    frameCard(this, info, '', [], this.plot, this.placeholder, this.note);
  }

  setInfo(info) {
    refreshHeader(this, info);
  }

  async load() {
    try {
      this.data = await fetchHistograms(this.run, this.tag);
      this.error = null;
    } catch (err) {
      this.error = err;
    }
    await this.redraw();
  }

  async redraw() {
    if (this.destroyed) return;
    if (this.error) {
      this.root.dataset.state = 'error';
      this.note.textContent = `Could not load this histogram: ${this.error.message}`;
      return;
    }
    if (!this.data) return;
    if (!window.Plotly) {
      this.note.textContent = 'Plotly did not load; charts cannot be drawn.';
      return;
    }
    const clean = cleanHistograms(this.data);
    if (!clean.rows.length || !clean.edges.length) {
      this.showPlaceholder(
        clean.total
          ? `Nothing to draw: ${plural(clean.total, 'step')}, none with finite values.`
          : 'No steps yet.',
      );
      return;
    }
    const { traces, layout } = this.figure(clean, runColor(this.run), this.data);
    this.placeholder.hidden = true;
    this.plot.hidden = false;
    this.root.dataset.state = 'ready';
    const oneValue =
      clean.edges.length === 2 ? `Every value is ${formatNumber(this.data.min)}.` : '';
    this.note.textContent = [emptyStepsNote(clean), oneValue].filter(Boolean).join(' ');
    await window.Plotly.react(this.plot, traces, layout, PLOT_CONFIG);
    this.plotted = true;
  }

  showPlaceholder(text) {
    if (this.plotted) {
      window.Plotly.purge(this.plot);
      this.plotted = false;
    }
    this.plot.hidden = true;
    this.placeholder.hidden = false;
    this.placeholder.textContent = text;
    this.root.dataset.state = 'placeholder';
    this.note.textContent = '';
  }

  destroy() {
    this.destroyed = true;
    if (this.plotted && window.Plotly) window.Plotly.purge(this.plot);
  }
}

/** The empty state's advice for histograms (shared with DISTRIBUTIONS). */
export function histogramHowTo() {
  return [
    'Log some with tf.summary.histogram, SummaryWriter.add_histogram, or Keras’s ' +
      'TensorBoard(histogram_freq=1) callback; they appear here as soon as they are flushed.',
    codeBlock('writer.add_histogram("weights", values, global_step=step)'),
  ];
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

let syncSettings = () => {};

registerTab({
  id: 'histograms',
  init(context) {
    board.init(context);
    syncSettings = bindSettings();
  },
  show: board.show,
  hide: board.hide,
  onData: board.onData,
  onState(keys) {
    syncSettings();
    board.onState(keys);
    if (keys.has('hmode')) board.redraw();
  },
});
