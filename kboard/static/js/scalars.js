// The SCALARS tab: one chart per tag, grouped by tag prefix, selected runs overlaid.
//
// Charts fetch only when they are on (or near) the screen. A zoom fetches that x range at
// full resolution; live updates replace the data with Plotly.react under a fixed uirevision,
// so zoom survives. Everything user-controlled that reaches Plotly goes through
// escapePlotly / escapeTemplate: Plotly renders a subset of HTML in names and templates.

import { app, defineState, registerTab, spec } from './app.js';
import {
  coalesce,
  el,
  escapePlotly,
  escapeRegex,
  escapeTemplate,
  FONT,
  fetchJSON,
  formatNumber,
  makeMatcher,
  PLOT_CONFIG,
  plural,
  runColor,
} from './util.js';

defineState('smooth', spec.number(0.6, 0, 0.999));
defineState('x', spec.choice('step', ['step', 'relative', 'wall_time']));
defineState('y', spec.choice('linear', ['linear', 'log']));
defineState('outliers', spec.bool(true));
defineState('closed', spec.list()); // collapsed tag groups

const ZOOMED_POINTS = 5000;
const MAX_PARALLEL = 4; // the browser allows 6 connections per host; one is the event stream
const NONFINITE_Y = { NaN: 0.97, Infinity: 0.97, '-Infinity': 0.03 };
const NONFINITE_SYMBOL = { NaN: 'x', Infinity: 'triangle-up', '-Infinity': 'triangle-down' };

/**
 * TensorBoard's smoothing: a debiased exponential moving average. Non-finite values pass
 * through unsmoothed and do not enter the average; a constant series is left as it is.
 */
export function smooth(values, weight) {
  const out = new Array(values.length);
  const first = values.find((v) => Number.isFinite(v));
  const constant = values.every((v) => v === first || !Number.isFinite(v));
  let last = 0;
  let numAccum = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (constant || !Number.isFinite(v)) {
      out[i] = v;
      continue;
    }
    last = last * weight + (1 - weight) * v;
    numAccum += 1;
    const debias = weight === 1 ? 1 : 1 - Math.pow(weight, numAccum);
    out[i] = last / debias;
  }
  return out;
}

/** The group of a tag: the text before its first '/', or the tag itself. */
export function tagGroup(tag) {
  const i = tag.indexOf('/');
  return i > 0 ? tag.slice(0, i) : tag;
}

/** y range from the 5th to the 95th percentile of finite values (log10 units on log axes). */
function robustRange(values, log) {
  const finite = [];
  for (const v of values) {
    if (!Number.isFinite(v)) continue;
    if (log) {
      if (v > 0) finite.push(Math.log10(v));
    } else finite.push(v);
  }
  if (finite.length < 10) return null; // too few points to call any of them an outlier
  finite.sort((a, b) => a - b);
  const q = (p) => {
    const pos = (finite.length - 1) * p;
    const lo = Math.floor(pos);
    const hi = Math.ceil(pos);
    return finite[lo] + (finite[hi] - finite[lo]) * (pos - lo);
  };
  const lo = q(0.05);
  const hi = q(0.95);
  if (!(hi > lo)) return null;
  const pad = (hi - lo) * 0.1;
  return [lo - pad, hi + pad];
}

function pad2(n, width = 2) {
  return String(n).padStart(width, '0');
}

/** Unix seconds -> Plotly date string in local time (and back), exact to the millisecond. */
function toDateString(seconds) {
  const d = new Date(seconds * 1000);
  return (
    `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ` +
    `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}.` +
    pad2(d.getMilliseconds(), 3)
  );
}

const DATE_RE = /^(-?\d+)-(\d\d)-(\d\d)(?:[ T](\d\d?)(?::(\d\d)(?::(\d\d)(\.\d+)?)?)?)?$/;

function fromDateString(s) {
  if (typeof s === 'number') return s / 1000; // Plotly also accepts epoch milliseconds
  const m = DATE_RE.exec(String(s).trim());
  if (!m) return NaN;
  const [, y, mo, d, h = '0', mi = '0', sec = '0', frac = '0'] = m;
  const date = new Date(+y, +mo - 1, +d, +h, +mi, +sec);
  return date.getTime() / 1000 + Number(frac);
}

const RELATIVE_UNITS = [
  { seconds: 1, label: 's' },
  { seconds: 60, label: 'min' },
  { seconds: 3600, label: 'h' },
  { seconds: 86400, label: 'days' },
];

function pickUnit(spanSeconds) {
  if (spanSeconds < 120) return RELATIVE_UNITS[0];
  if (spanSeconds < 7200) return RELATIVE_UNITS[1];
  if (spanSeconds < 3 * 86400) return RELATIVE_UNITS[2];
  return RELATIVE_UNITS[3];
}

// ---------------------------------------------------------------------------------------

let ctx = null;
let tagsByRun = {}; // {run: {tag: {displayName, description}}}
let tagsLoaded = false;
let active = false;
let observer = null;
const cards = new Map(); // tag -> Card
const cardOf = new WeakMap(); // card root element -> Card
const groups = new Map(); // group name -> {root, grid, button, count}
const dom = {};

class Card {
  constructor(tag) {
    this.tag = tag;
    this.inView = false;
    this.stale = true; // data must be (re)fetched before it is drawn again
    this.queued = false;
    this.loading = false;
    this.seq = 0; // fetch sequence: responses to older fetches are dropped
    this.series = null;
    this.zoom = null; // [xmin, xmax] in the API's x units, while the user is zoomed in
    this.fetchedZoom = null;
    this.plotted = false;
    this.yRevision = 0; // bumped to make our y range win over the user's
    this.relUnit = RELATIVE_UNITS[0];
    this.xRevision = 0;

    this.title = el('h3', { class: 'kb-card-title', text: tag });
    this.expand = el('button', {
      type: 'button',
      class: 'kb-icon-button',
      'aria-pressed': 'false',
      'aria-label': `Enlarge chart ${tag}`,
      title: 'Enlarge',
      text: '⤢',
    });
    this.expand.addEventListener('click', () => this.toggleWide());
    // Every point of this chart's runs, not just what is drawn.
    this.csv = el('a', {
      class: 'kb-card-link',
      text: 'CSV',
      title: 'Download every point of this chart (its selected runs) as CSV',
      download: '',
    });
    this.json = el('a', {
      class: 'kb-card-link',
      text: 'JSON',
      title: 'Download every point of this chart (its selected runs) as JSON',
      download: '',
    });
    this.plot = el('div', { class: 'kb-plot' });
    this.note = el('p', { class: 'kb-card-note' });
    this.root = el(
      'article',
      { class: 'kb-card' },
      el('header', { class: 'kb-card-head' }, this.title, this.csv, this.json, this.expand),
      this.plot,
      this.note,
    );
    this.root.dataset.tag = tag;
    this.root.dataset.state = 'empty';
    cardOf.set(this.root, this);
  }

  setInfo(info) {
    const name = (info && info.displayName) || this.tag;
    this.title.textContent = name;
    const tip = info && info.description ? `${this.tag}\n\n${info.description}` : this.tag;
    this.title.title = tip;
  }

  setExportRuns(runs) {
    const params = new URLSearchParams({ kind: 'scalars' });
    params.set('runs', `^(?:${runs.map(escapeRegex).join('|')})$`);
    params.set('tags', `^${escapeRegex(this.tag)}$`);
    for (const [link, format] of [[this.csv, 'csv'], [this.json, 'json']]) {
      params.set('format', format);
      link.href = `api/export?${params}`;
      link.hidden = runs.length === 0;
    }
  }

  toggleWide() {
    const wide = this.root.classList.toggle('kb-card--wide');
    this.expand.setAttribute('aria-pressed', String(wide));
    this.expand.title = wide ? 'Shrink' : 'Enlarge';
    if (this.plotted) window.Plotly.Plots.resize(this.plot);
  }
}

// ---------------------------------------------------------------------------------------
// Fetching

const queue = [];
let running = 0;

function schedule(card) {
  if (card.queued || card.loading) {
    card.stale = true;
    return;
  }
  card.queued = true;
  queue.push(card);
  pump();
}

function pump() {
  while (running < MAX_PARALLEL && queue.length) {
    const card = queue.shift();
    card.queued = false;
    if (!card.inView || !card.root.isConnected || !active) continue;
    running += 1;
    load(card).finally(() => {
      running -= 1;
      if (card.stale && card.inView && active) schedule(card);
      pump();
    });
  }
}

function runsWithTag(tag) {
  return app.selectedRuns().filter((run) => tagsByRun[run] && tagsByRun[run][tag]);
}

async function load(card) {
  card.stale = false;
  card.loading = true;
  const seq = ++card.seq;
  const runs = runsWithTag(card.tag);
  card.setExportRuns(runs);
  const zoom = card.zoom;
  // Only a chart with nothing drawn yet says so; live refreshes show the header's spinner.
  if (!card.plotted) card.root.dataset.loading = 'true';
  try {
    let series = [];
    if (runs.length) {
      const width = card.plot.clientWidth || 500;
      const params = new URLSearchParams({ tag: card.tag });
      for (const run of runs) params.append('run', run);
      // Two points (a bucket's min and max) per pixel for one run, fewer per run when many
      // overlap (keeps a 50-run chart light); more once zoomed, where the server sends
      // every point of a range that fits.
      const perRun = (width * 2) / Math.sqrt(Math.max(1, runs.length));
      const budget = Math.max(300, Math.min(4000, Math.round(perRun)));
      params.set('points', String(zoom ? Math.max(budget, ZOOMED_POINTS) : budget));
      params.set('x', app.state.x);
      if (zoom) {
        // A margin either side, so a small pan still has data under it.
        const margin = (zoom[1] - zoom[0]) * 0.1;
        params.set('xmin', String(zoom[0] - margin));
        params.set('xmax', String(zoom[1] + margin));
      }
      const data = await fetchJSON(`api/scalars?${params}`);
      series = data.series;
    }
    if (seq !== card.seq) return;
    card.series = series;
    card.fetchedZoom = zoom;
    card.error = null;
  } catch (err) {
    if (seq !== card.seq) return;
    card.error = err;
  } finally {
    card.loading = false;
    delete card.root.dataset.loading;
  }
  await draw(card);
}

// ---------------------------------------------------------------------------------------
// Drawing

function xValues(series, mode, card) {
  if (mode === 'step') return series.steps;
  if (mode === 'wall_time') return series.wall_times.map(toDateString);
  const start = app.startTime(series.run) ?? 0; // as the server computes xmin/xmax
  const unit = card.relUnit.seconds;
  return series.wall_times.map((w) => (w - start) / unit);
}

function axisTitle(mode, card) {
  if (mode === 'step') return 'step';
  if (mode === 'wall_time') return 'wall time';
  return `relative time (${card.relUnit.label})`;
}

function buildFigure(card) {
  const state = app.state;
  const traces = [];
  const forRange = [];
  let nonFiniteCount = 0;
  let downsampled = 0;
  let shown = 0;
  let total = 0;
  if (state.x === 'relative' && !card.zoom) {
    let span = 0;
    for (const s of card.series) {
      const start = app.startTime(s.run) ?? 0;
      if (s.wall_times.length) span = Math.max(span, s.wall_times[s.wall_times.length - 1] - start);
    }
    card.relUnit = pickUnit(span);
  }
  for (const s of card.series) {
    const color = runColor(s.run);
    const name = escapePlotly(s.run);
    const x = xValues(s, state.x, card);
    const raw = s.values.map(Number);
    const smoothed = smooth(raw, state.smooth);
    const rawY = raw.map((v) => (Number.isFinite(v) ? v : null));
    const smoothY = smoothed.map((v) => (Number.isFinite(v) ? v : null));
    const single = rawY.filter((v) => v !== null).length <= 1;
    total += s.total;
    shown += s.count;
    if (s.downsampled) downsampled += 1;
    for (let i = 0; i < raw.length; i++) {
      if (Number.isFinite(raw[i])) forRange.push(raw[i], smoothed[i]);
    }
    traces.push({
      type: 'scatter',
      mode: single ? 'markers' : 'lines',
      name,
      x,
      y: rawY,
      line: { color, width: 1 },
      marker: { color, size: 5 },
      opacity: 0.25,
      hoverinfo: 'skip',
      showlegend: false,
      meta: { run: s.run, kind: 'raw' },
    });
    traces.push({
      type: 'scatter',
      mode: single ? 'markers' : 'lines',
      name,
      x,
      y: smoothY,
      customdata: raw.map(formatNumber),
      line: { color, width: 1.75 },
      marker: { color, size: 6 },
      hovertemplate:
        `${escapeTemplate(s.run)}: <b>%{y:.5g}</b>` +
        (state.smooth > 0 ? ' <span style="color:#8a8f98">(raw %{customdata})</span>' : '') +
        '<extra></extra>',
      showlegend: false,
      meta: { run: s.run, kind: 'smoothed' },
    });
    const nx = [];
    const ny = [];
    const text = [];
    const symbols = [];
    for (let i = 0; i < raw.length; i++) {
      if (Number.isFinite(raw[i])) continue;
      const label = formatNumber(raw[i]);
      nx.push(x[i]);
      ny.push(NONFINITE_Y[label]);
      text.push(label);
      symbols.push(NONFINITE_SYMBOL[label]);
    }
    if (nx.length) {
      nonFiniteCount += nx.length;
      traces.push({
        type: 'scatter',
        mode: 'markers',
        name,
        x: nx,
        y: ny,
        yaxis: 'y2',
        text,
        marker: { color, size: 9, symbol: symbols, line: { color, width: 1.5 } },
        cliponaxis: false,
        hovertemplate: `${escapeTemplate(s.run)}: <b>%{text}</b><extra></extra>`,
        showlegend: false,
        meta: { run: s.run, kind: 'nonfinite' },
      });
    }
  }

  const log = state.y === 'log';
  const yaxis = {
    type: state.y,
    autorange: true,
    zeroline: false,
    automargin: true,
    gridcolor: '#eceef1',
    linecolor: '#c9ced6',
    tickfont: { size: 10 },
    exponentformat: 'e',
    uirevision: `${state.y}|${card.yRevision}`,
  };
  if (state.outliers && !card.zoom) {
    const range = robustRange(forRange, log);
    if (range) {
      yaxis.autorange = false;
      yaxis.range = range;
    }
  }
  const layout = {
    uirevision: `${card.tag}|${state.x}|${card.relUnit.label}|${card.xRevision}`,
    margin: { l: 52, r: 12, t: 8, b: 30 },
    hovermode: 'x unified',
    hoverlabel: { bgcolor: 'rgba(255,255,255,0.95)', bordercolor: '#c9ced6', font: { size: 11 } },
    showlegend: false,
    dragmode: 'zoom',
    font: { family: FONT, size: 11, color: '#3c4149' },
    paper_bgcolor: 'rgba(0,0,0,0)',
    plot_bgcolor: '#ffffff',
    xaxis: {
      type: state.x === 'wall_time' ? 'date' : 'linear',
      title: { text: axisTitle(state.x, card), font: { size: 10, color: '#6b717b' }, standoff: 6 },
      hoverformat: state.x === 'step' ? ',d' : state.x === 'relative' ? ',.4~f' : undefined,
      zeroline: false,
      automargin: true,
      gridcolor: '#eceef1',
      linecolor: '#c9ced6',
      tickfont: { size: 10 },
      showspikes: true,
      spikemode: 'across',
      spikethickness: 1,
      spikecolor: '#9aa0a8',
      spikedash: 'dot',
    },
    yaxis,
    yaxis2: {
      overlaying: 'y',
      range: [0, 1],
      fixedrange: true,
      visible: false,
      tickmode: 'auto',
    },
  };
  const notes = [];
  if (downsampled) {
    notes.push(
      card.zoom
        ? `${shown.toLocaleString()} points drawn in this range (downsampled, spikes kept); ` +
            'zoom in further for all.'
        : `${shown.toLocaleString()} of ${total.toLocaleString()} points drawn (downsampled, ` +
            'spikes kept); zoom in for all.',
    );
  }
  if (nonFiniteCount) {
    notes.push(`${plural(nonFiniteCount, 'NaN/Infinity value')} marked at the chart's edge.`);
  }
  return { traces, layout, note: notes.join(' ') };
}


async function draw(card) {
  if (!window.Plotly) {
    card.note.textContent = 'Plotly did not load; charts cannot be drawn.';
    return;
  }
  if (card.error) {
    card.root.dataset.state = 'error';
    card.note.textContent = `Could not load this chart: ${card.error.message}`;
    if (!card.plotted) return;
  }
  if (!card.series) return;
  if (!card.series.length) {
    card.root.dataset.state = 'empty';
    card.note.textContent = 'None of the selected runs has this tag.';
  }
  const { traces, layout, note } = buildFigure(card);
  if (card.series.length && !card.error) {
    card.root.dataset.state = 'ready';
    card.note.textContent = note;
  }
  await window.Plotly.react(card.plot, traces, layout, PLOT_CONFIG);
  if (!card.plotted) {
    card.plotted = true;
    card.plot.on('plotly_relayout', (event) => onRelayout(card, event));
  }
}

let redrawPending = false;

/** Redraw every drawn chart from the data it has (settings changed), once per frame. */
function redrawAll() {
  if (redrawPending) return;
  redrawPending = true;
  requestAnimationFrame(() => {
    redrawPending = false;
    for (const card of cards.values()) {
      if (card.plotted && card.series) draw(card);
    }
  });
}

/** Turn a Plotly x-axis value into the API's x units. */
function toApiX(value, card) {
  if (app.state.x === 'wall_time') return fromDateString(value);
  if (app.state.x === 'relative') return Number(value) * card.relUnit.seconds;
  return Number(value);
}

function onRelayout(card, event) {
  let range;
  if ('xaxis.range[0]' in event) range = [event['xaxis.range[0]'], event['xaxis.range[1]']];
  else if (Array.isArray(event['xaxis.range'])) range = event['xaxis.range'];
  else if (event['xaxis.autorange']) range = null;
  else return;
  if (range) {
    const zoom = [toApiX(range[0], card), toApiX(range[1], card)];
    if (!zoom.every(Number.isFinite)) return;
    card.zoom = zoom;
    // Data already on screen covers a zoom into a range fetched at full resolution.
    const complete = card.series && card.series.every((s) => !s.downsampled);
    const inside =
      !card.fetchedZoom ||
      (card.zoom[0] >= card.fetchedZoom[0] && card.zoom[1] <= card.fetchedZoom[1]);
    if (complete && inside) return;
  } else {
    if (!card.zoom) return;
    card.zoom = null;
    card.yRevision += 1; // the outlier-robust y range applies again
  }
  schedule(card);
}

// ---------------------------------------------------------------------------------------
// Layout of the tab: groups of cards, empty states

function emptyState(title, ...lines) {
  dom.empty.replaceChildren(
    el('h2', { text: title }),
    ...lines.map((line) => (line instanceof Node ? line : el('p', { text: line }))),
  );
  dom.empty.hidden = false;
  dom.groups.hidden = true;
  dom.toolbar.hidden = true;
}

function codeLine(text) {
  return el('pre', { class: 'kb-code' }, el('code', { text }));
}

function currentTags() {
  const selected = app.selectedRuns();
  const all = new Map(); // tag -> info (first run that has it)
  for (const run of selected) {
    for (const [tag, info] of Object.entries(tagsByRun[run] || {})) {
      if (!all.has(tag)) all.set(tag, info);
    }
  }
  return { selected, all };
}

function render() {
  if (!ctx) return;
  if (!app.runsLoaded || !tagsLoaded) {
    emptyState('Loading…');
    return;
  }
  if (!app.runs.length) {
    emptyState(
      'No runs yet',
      `No event files under ${app.logdir} yet — point a writer at it, for example:`,
      codeLine(
        `from kboard import SummaryWriter\n` +
          `writer = SummaryWriter(${JSON.stringify(`${app.logdir}/run1`)})\n` +
          `writer.add_scalar("loss", 0.5, global_step=1)\nwriter.flush()`,
      ),
      'This page updates by itself when they appear.',
    );
    return;
  }
  const { selected, all } = currentTags();
  if (!selected.length) {
    const runFilter = app.state.runs;
    const excluded = runFilter && !app.runs.some((r) => app.runMatcher().test(r.name));
    if (excluded) {
      emptyState(
        'No runs match the run filter',
        `Nothing matches “${runFilter}”. Clear or change the filter in the sidebar.`,
      );
    } else {
      emptyState(
        'No runs selected',
        'Tick one or more runs in the sidebar (or press “Select all”).',
      );
    }
    return;
  }
  if (!all.size) {
    emptyState(
      'No scalar data in the selected runs',
      'Log scalars with writer.add_scalar("loss", value, step) or tf.summary.scalar(...); ' +
        'they appear here as soon as they are flushed.',
    );
    return;
  }
  const matcher = makeMatcher(app.state.tags);
  const tags = [...all.keys()].filter((t) => matcher.test(t)).sort();
  if (!tags.length) {
    emptyState(
      'No tags match the tag filter',
      `None of the ${all.size} scalar tags matches “${app.state.tags}”.`,
    );
    return;
  }
  dom.empty.hidden = true;
  dom.groups.hidden = false;
  dom.toolbar.hidden = false;

  const byGroup = new Map();
  for (const tag of tags) {
    const name = tagGroup(tag);
    if (!byGroup.has(name)) byGroup.set(name, []);
    byGroup.get(name).push(tag);
  }
  const closed = new Set(app.state.closed);
  const wanted = new Set(tags);
  for (const [tag, card] of cards) {
    if (!wanted.has(tag)) {
      observer.unobserve(card.root);
      card.root.remove();
      card.inView = false;
    }
  }
  for (const [name, group] of groups) {
    if (!byGroup.has(name)) {
      group.root.remove();
      groups.delete(name);
    }
  }
  let previousGroup = null;
  for (const name of [...byGroup.keys()].sort()) {
    const group = groups.get(name) || makeGroup(name);
    const expected = previousGroup ? previousGroup.nextSibling : dom.groups.firstChild;
    if (expected !== group.root) dom.groups.insertBefore(group.root, expected);
    previousGroup = group.root;
    const isOpen = !closed.has(name);
    group.button.setAttribute('aria-expanded', String(isOpen));
    group.grid.hidden = !isOpen;
    const groupTags = byGroup.get(name);
    group.count.textContent = String(groupTags.length);
    let previousCard = null;
    for (const tag of groupTags) {
      let card = cards.get(tag);
      if (!card) {
        card = new Card(tag);
        cards.set(tag, card);
      }
      card.setInfo(all.get(tag));
      const expectedCard = previousCard ? previousCard.nextSibling : group.grid.firstChild;
      if (expectedCard !== card.root) group.grid.insertBefore(card.root, expectedCard);
      previousCard = card.root;
      observer.observe(card.root);
    }
  }
  dom.download.href = exportURL(selected);
  const nGroups = byGroup.size;
  dom.summary.textContent =
    `${plural(tags.length, 'tag')} in ${plural(nGroups, 'group')}` +
    (tags.length < all.size ? ` (of ${all.size})` : '') +
    ` · ${plural(selected.length, 'run')}`;
}

/** The CSV of every point of what is shown: selected runs, tags passing the filter. */
function exportURL(selected) {
  const params = new URLSearchParams({ format: 'csv', kind: 'scalars' });
  params.set('runs', `^(?:${selected.map(escapeRegex).join('|')})$`);
  const filter = app.state.tags;
  if (filter) {
    // The page's filter is a case-insensitive JavaScript regex, or plain text when invalid.
    const pattern = makeMatcher(filter).error ? escapeRegex(filter) : filter;
    params.set('tags', `(?i)${pattern}`);
  }
  return `api/export?${params}`;
}

function makeGroup(name) {
  const count = el('span', { class: 'kb-group-count' });
  const button = el(
    'button',
    { type: 'button', class: 'kb-group-toggle', 'aria-expanded': 'true' },
    el('span', { class: 'kb-chevron', 'aria-hidden': 'true' }),
    el('span', { class: 'kb-group-name', text: name }),
    count,
  );
  const grid = el('div', { class: 'kb-grid' });
  const head = el('h2', { class: 'kb-group-head' }, button);
  const root = el('section', { class: 'kb-group' }, head, grid);
  root.dataset.group = name;
  button.addEventListener('click', () => {
    const closed = new Set(app.state.closed);
    if (closed.has(name)) closed.delete(name);
    else closed.add(name);
    app.setState({ closed: [...closed].sort() });
  });
  const group = { root, grid, button, count };
  groups.set(name, group);
  return group;
}

function markAllStale() {
  for (const card of cards.values()) {
    card.stale = true;
    if (card.inView && active) schedule(card);
  }
}

// ---------------------------------------------------------------------------------------
// Sidebar settings (static inputs in index.html)

function bindSettings() {
  const slider = document.getElementById('kb-smoothing');
  const number = document.getElementById('kb-smoothing-number');
  const output = document.getElementById('kb-smoothing-value');
  const outliers = document.getElementById('kb-outliers');
  const sync = () => {
    const s = app.state;
    slider.value = String(s.smooth);
    if (document.activeElement !== number) number.value = String(s.smooth);
    output.textContent = s.smooth.toFixed(3).replace(/0+$/, '').replace(/\.$/, '');
    for (const radio of document.querySelectorAll('input[name="kb-x"]')) {
      radio.checked = radio.value === s.x;
    }
    for (const radio of document.querySelectorAll('input[name="kb-y"]')) {
      radio.checked = radio.value === s.y;
    }
    outliers.checked = s.outliers;
  };
  sync();
  const setSmoothing = (raw) => {
    const v = Number(raw);
    if (raw === '' || !Number.isFinite(v)) return;
    app.setState({ smooth: Math.min(0.999, Math.max(0, Math.round(v * 1000) / 1000)) });
  };
  slider.addEventListener('input', () => setSmoothing(slider.value));
  number.addEventListener('change', () => setSmoothing(number.value));
  for (const radio of document.querySelectorAll('input[name="kb-x"]')) {
    radio.addEventListener('change', () => radio.checked && app.setState({ x: radio.value }));
  }
  for (const radio of document.querySelectorAll('input[name="kb-y"]')) {
    radio.addEventListener('change', () => radio.checked && app.setState({ y: radio.value }));
  }
  outliers.addEventListener('change', () => app.setState({ outliers: outliers.checked }));
  return sync;
}

// ---------------------------------------------------------------------------------------

let syncSettings = () => {};

const refreshTags = coalesce(async () => {
  const data = await fetchJSON('api/tags/scalars');
  tagsByRun = data.tags || {};
  tagsLoaded = true;
  render();
  markAllStale();
});

registerTab({
  id: 'scalars',

  init(context) {
    ctx = context;
    dom.summary = el('span', { class: 'kb-muted' });
    const expandAll = el('button', { type: 'button', text: 'Expand all' });
    const collapseAll = el('button', { type: 'button', text: 'Collapse all' });
    expandAll.addEventListener('click', () => app.setState({ closed: [] }));
    collapseAll.addEventListener('click', () => {
      app.setState({ closed: [...groups.keys()].sort() });
    });
    dom.download = el('a', {
      class: 'kb-button',
      download: '',
      text: 'Download CSV',
      title: 'Every point (not downsampled) of the selected runs and the filtered tags',
    });
    dom.toolbar = el(
      'div',
      { class: 'kb-toolbar' },
      dom.summary,
      el('span', { class: 'kb-toolbar-buttons' }, dom.download, expandAll, collapseAll),
    );
    dom.toolbar.hidden = true;
    dom.empty = el('div', { class: 'kb-empty' });
    dom.groups = el('div', { class: 'kb-groups' });
    ctx.panel.replaceChildren(dom.toolbar, dom.empty, dom.groups);
    observer = new IntersectionObserver(
      (entries) => {
        for (const entry of entries) {
          const card = cardOf.get(entry.target);
          if (!card) continue;
          card.inView = entry.isIntersecting;
          if (card.inView && card.stale && active) schedule(card);
        }
      },
      { rootMargin: '400px 0px' },
    );
    syncSettings = bindSettings();
    render();
  },

  show() {
    active = true;
    for (const card of cards.values()) {
      if (card.inView && card.stale) schedule(card);
    }
  },

  hide() {
    active = false;
  },

  onData() {
    return refreshTags();
  },

  onState(keys) {
    syncSettings();
    if (keys.has('runs') || keys.has('off')) {
      render();
      markAllStale();
    } else if (keys.has('tags') || keys.has('closed')) {
      render();
    }
    if (keys.has('x')) {
      for (const card of cards.values()) {
        card.zoom = null;
        card.xRevision += 1;
      }
      markAllStale();
    } else if (keys.has('smooth') || keys.has('y') || keys.has('outliers')) {
      if (keys.has('y') || keys.has('outliers')) {
        for (const card of cards.values()) card.yRevision += 1;
      }
      redrawAll();
    }
  },
});
