// Plotly charts as every tab draws them: the config, the font, axes and layout, run colours
// with alpha or mixed, and the card of one run and tag that HISTOGRAMS and DISTRIBUTIONS
// both draw from /api/histograms.

import { app } from './app.js';
import { frameCard, refreshHeader } from './board.js';
import { codeBlock, el, fetchJSON, formatNumber, plural, runColor } from './util.js';

const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';

/** The Plotly options every chart uses. */
export const PLOT_CONFIG = {
  responsive: true,
  displaylogo: false,
  scrollZoom: false,
  showTips: false,
  modeBarButtonsToRemove: ['select2d', 'lasso2d', 'autoScale2d'],
  toImageButtonOptions: { format: 'png', scale: 2 },
};

/** What a chart's note says when Plotly is missing. */
export const NO_PLOTLY = 'Plotly did not load; charts cannot be drawn.';

/** Wait for a script element to load; true when it did. */
function scriptLoaded(script) {
  return new Promise((resolve) => {
    script.addEventListener('load', () => resolve(true), { once: true });
    script.addEventListener('error', () => resolve(false), { once: true });
  });
}

let plotlyLoad = null;

/**
 * Plotly, once the page's async bundle has run (null when it failed to load). Charts await
 * it, so the data they need is asked for while Plotly still loads.
 */
export function plotlyReady() {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!plotlyLoad) {
    const script = document.getElementById('kb-plotly');
    plotlyLoad = script
      ? scriptLoaded(script).then(() => window.Plotly || null)
      : Promise.resolve(null);
  }
  return plotlyLoad;
}

let fullPlotly = null;

/**
 * The full Plotly bundle, for a tab whose traces the partial one lacks (parcoords, say):
 * loaded once, on first use; it replaces window.Plotly and draws what the partial one did.
 */
export function loadFullPlotly() {
  if (!fullPlotly) {
    const src = document.getElementById('kb-plotly')?.dataset.full;
    fullPlotly = plotlyReady().then(() => {
      if (!src) return window.Plotly || null;
      const script = document.createElement('script');
      script.src = src;
      document.head.append(script);
      return scriptLoaded(script).then(() => window.Plotly || null);
    });
  }
  return fullPlotly;
}

/** The style of every chart axis. */
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

/** The layout every chart starts from. */
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
export function mix(a, b, t) {
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

// ---------------------------------------------------------------------------------------
// Histograms: HISTOGRAMS and DISTRIBUTIONS draw the same response in two ways.

// Both tabs read the same response: keep it for the generation it was fetched in.
const cache = new Map(); // `${run}\0${tag}` -> {generation, promise}

/** GET /api/histograms for one run and tag. */
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

/**
 * A Plotly card for one run and tag: fetches /api/histograms and draws
 * figure(clean, colour, data) -> {traces, layout}, or a placeholder when nothing can be drawn.
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
    if (!(await plotlyReady())) {
      this.note.textContent = NO_PLOTLY;
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

/** The empty state's advice for histograms. */
export function histogramHowTo() {
  return [
    'Log some with tf.summary.histogram, SummaryWriter.add_histogram, or Keras’s ' +
      'TensorBoard(histogram_freq=1) callback; they appear here as soon as they are flushed.',
    codeBlock('writer.add_histogram("weights", values, global_step=step)'),
  ];
}
