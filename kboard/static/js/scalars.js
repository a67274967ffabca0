// The SCALARS tab: one chart per tag, grouped by tag prefix, selected runs overlaid.
//
// A board of one card per tag (board.js, byTag): charts fetch only when they are on (or
// near) the screen. A zoom fetches that x range at full resolution; live updates replace the
// data with Plotly.react under a fixed uirevision, so zoom survives. A restarted run's
// series has a dotted mark at each step it began again; with the "Earlier attempts" switch
// its replaced attempts come too (overwritten=1), drawn faded under the lines. With a group
// regex or hyperparameters (groups.js), each group of runs is one line with a band, computed by the server and
// drawn against step; runs no group takes are drawn as usual. Everything
// user-controlled that reaches Plotly goes through escapePlotly / escapeTemplate: Plotly
// renders a subset of HTML in names and templates.

import { app, defineState, spec } from './app.js';
import { cardTitle, createBoard, registerBoard } from './board.js';
import {
  axisStyle,
  axisTitle,
  baseLayout,
  NO_PLOTLY,
  plotlyReady,
  PLOT_CONFIG,
  withAlpha,
} from './charts.js';
import {
  bindGroupSettings,
  checkGrouping,
  copyGrouping,
  GROUP_LEGEND,
  groupColors,
  groupingReady,
  groupPattern,
  groupQuery,
  reloadGroupHparams,
  groupTraces,
} from './groups.js';
import {
  codeBlock,
  debounce,
  el,
  escapePlotly,
  escapeRegex,
  escapeTemplate,
  fetchJSON,
  formatNumber,
  makeMatcher,
  plural,
  runColor,
} from './util.js';

defineState('smooth', spec.number(0.6, 0, 0.999));
defineState('x', spec.choice('step', ['step', 'relative', 'wall_time']));
defineState('y', spec.choice('linear', ['linear', 'log']));
defineState('outliers', spec.bool(true));
defineState('earlier', spec.bool(false)); // draw the attempts restarted runs replaced
defineState('closed', spec.list()); // collapsed tag groups
defineState('allruns', spec.bool(false)); // draw every selected run, past DRAWN_RUNS

const ZOOMED_POINTS = 5000;
// Many runs: a chart draws the first DRAWN_RUNS selected runs (by name) unless asked for all,
// within CHART_POINTS points (ZOOMED_CHART_POINTS once zoomed); past RAW_RUNS runs only the
// smoothed lines (half the traces); past MERGED_RUNS runs, the runs of one colour share one
// trace (each run's line apart, between gaps), so a thousand runs draw as ~20 traces.
const DRAWN_RUNS = 50;
const RAW_RUNS = 20; // past it, no faint unsmoothed line under each smoothed one
const MERGED_RUNS = 100;
const CHART_POINTS = 60_000;
const ZOOMED_CHART_POINTS = 200_000;
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

/** The chart of one tag: every selected run that has it. */
class ScalarCard {
  constructor(tag, info) {
    this.tag = tag;
    this.seq = 0; // fetch sequence: responses to older fetches are dropped
    this.fetchKey = null; // the query (less its runs) the series came from
    this.series = null;
    this.groups = null; // /api/scalars/groups while runs are grouped
    this.xMode = app.state.x; // step while grouped: groups are aligned by step
    this.zoom = null; // [xmin, xmax] in the API's x units, while the user is zoomed in
    this.fetchedZoom = null;
    this.plotted = false;
    this.yRevision = 0; // bumped to make our y range win over the user's
    this.relUnit = RELATIVE_UNITS[0];
    this.xRevision = 0;

    this.title = cardTitle(tag, info);
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
    for (const link of [this.csv, this.json]) {
      link.addEventListener('click', (event) => {
        event.preventDefault();
        downloadAs(link.href, link.download).catch((err) => {
          this.note.textContent = `Could not download: ${err.message}`;
        });
      });
    }
    this.plot = el('div', { class: 'kb-plot' });
    this.note = el('p', { class: 'kb-card-note' });
    this.drawAll = el('button', { type: 'button', class: 'kb-link-button', hidden: true });
    this.drawAll.addEventListener('click', () => app.setState({ allruns: !app.state.allruns }));
    this.root = el(
      'article',
      { class: 'kb-card' },
      el('header', { class: 'kb-card-head' }, this.title, this.csv, this.json, this.expand),
      this.plot,
      el('div', { class: 'kb-card-notes' }, this.note, this.drawAll),
    );
    this.root.dataset.state = 'empty';
    this.capped = 0; // selected runs with this tag that are not drawn (DRAWN_RUNS)
  }

  setInfo(info) {
    const title = cardTitle(this.tag, info);
    this.title.replaceWith(title);
    this.title = title;
  }

  setExportRuns(runs) {
    const params = new URLSearchParams({ kind: 'scalars' });
    params.set('runs', `^(?:${runs.map(escapeRegex).join('|')})$`);
    params.set('tags', `^${escapeRegex(this.tag)}$`);
    const grouped = groupQuery(this.tag, runs); // the groups' statistics, as drawn
    if (grouped) copyGrouping(grouped, params);
    const runPart = runs.length === 1 ? safeName(runs[0]) : `${runs.length}runs`;
    for (const [link, format] of [[this.csv, 'csv'], [this.json, 'json']]) {
      params.set('format', format);
      link.href = `api/export?${params}`;
      link.download = `kboard-${safeName(this.tag)}-${runPart}.${format}`;
      link.hidden = runs.length === 0;
    }
  }

  toggleWide() {
    const wide = this.root.classList.toggle('kb-card--wide');
    this.expand.setAttribute('aria-pressed', String(wide));
    this.expand.title = wide ? 'Shrink' : 'Enlarge';
    if (this.plotted) window.Plotly.Plots.resize(this.plot);
  }

  /** Fetch the series of the selected runs with this tag (the zoomed range, if zoomed). */
  async load() {
    const seq = ++this.seq;
    await groupingReady();
    if (seq !== this.seq) return;
    const withTag = board.runsWithTag(this.tag);
    this.setExportRuns(withTag);
    const zoom = this.zoom;
    const groupParams = groupQuery(this.tag, withTag);
    const xMode = groupParams ? 'step' : app.state.x;
    const capped = !groupParams && !app.state.allruns && withTag.length > DRAWN_RUNS;
    const runs = capped ? withTag.slice(0, DRAWN_RUNS) : withTag;
    let fetchKey = null;
    try {
      let series = [];
      let groups = null;
      if (runs.length) {
        const width = this.plot.clientWidth || 500;
        const params = new URLSearchParams({ tag: this.tag });
        // Two points (a bucket's min and max) per pixel for one run, fewer per run when many
        // overlap (keeps a 50-run chart light), within CHART_POINTS for the chart; more once
        // zoomed, where the server sends every point of a range that fits.
        const n = Math.max(1, runs.length);
        const perRun = (width * 2) / Math.sqrt(n);
        const floor = n > RAW_RUNS ? 100 : 300;
        let budget = Math.max(floor, Math.min(4000, Math.round(perRun)));
        budget = Math.min(budget, Math.max(40, Math.floor(CHART_POINTS / n)));
        const zoomed = Math.min(ZOOMED_POINTS, Math.floor(ZOOMED_CHART_POINTS / n));
        params.set('points', String(zoom ? Math.max(budget, zoomed) : budget));
        params.set('x', xMode);
        if (app.state.earlier) params.set('overwritten', '1');
        if (zoom) {
          // A margin either side, so a small pan still has data under it.
          const margin = (zoom[1] - zoom[0]) * 0.1;
          params.set('xmin', String(zoom[0] - margin));
          params.set('xmax', String(zoom[1] + margin));
        }
        if (groupParams) {
          for (const key of ['points', 'xmin', 'xmax']) {
            if (params.has(key)) groupParams.set(key, params.get(key));
          }
        }
        // Asked the same way as last time (a live update, more runs): only the runs whose
        // series changed since, by their versions, come again.
        fetchKey = groupParams ? null : params.toString();
        let need = runs;
        const have = new Map();
        if (fetchKey && fetchKey === this.fetchKey && this.series) {
          const query = new URLSearchParams({ tag: this.tag });
          const { versions } = await fetchJSON(`api/scalars/versions?${query}`);
          for (const s of this.series) if (s.version === versions[s.run]) have.set(s.run, s);
          need = runs.filter((run) => !have.has(run));
        }
        // Every run with the tag goes without naming them (a thousand names make a long URL).
        if (need.length < board.tagRunCount(this.tag)) {
          for (const run of need) params.append('run', run);
        }
        const [data, groupData] = await Promise.all([
          need.length ? fetchJSON(`api/scalars?${params}`) : { series: [] },
          groupParams && fetchJSON(`api/scalars/groups?${groupParams}`),
        ]);
        const fresh = new Map(data.series.map((s) => [s.run, s]));
        series = runs.map((run) => fresh.get(run) || have.get(run)).filter(Boolean);
        groups = groupData ? groupData.groups : null;
      }
      if (seq !== this.seq) return;
      this.series = series;
      this.groups = groups;
      this.xMode = xMode;
      this.fetchedZoom = zoom;
      this.fetchKey = fetchKey;
      this.capped = withTag.length - runs.length;
      this.selectedWithTag = withTag.length;
      this.error = null;
    } catch (err) {
      if (seq !== this.seq) return;
      this.error = err;
    }
    await draw(this);
  }

  /** Draw again from the data it has (settings changed). */
  redraw() {
    if (this.plotted && this.series) return draw(this);
  }
}

/** A name as file-name characters only (letters, digits, '.', '_', '-'). */
function safeName(name) {
  return name.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[._-]+/, '').slice(0, 60) || 'x';
}

/**
 * Download url as name. The server names every export after the logdir, and its
 * Content-Disposition wins over a link's download attribute; a blob's name is ours.
 */
async function downloadAs(url, name) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
  const href = URL.createObjectURL(await response.blob());
  const link = el('a', { href, download: name, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(href), 60_000);
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

function xTitle(mode, card) {
  if (mode === 'step') return 'step';
  if (mode === 'wall_time') return 'wall time';
  return `relative time (${card.relUnit.label})`;
}

/** The x-unified hover's header: "step 1,200", "3.5 min"; the date as Plotly writes it. */
function hoverTitle(mode, card) {
  if (mode === 'step') return 'step %{x:,d}';
  if (mode === 'relative') return `%{x:,.4~r} ${card.relUnit.label}`;
  return '';
}

/** Thin dotted marks, in the run's colour, at the steps where a series began again. */
function restartMarks(s, color) {
  return [...new Set(s.restarts || [])].map((step) => ({
    type: 'line',
    xref: 'x',
    yref: 'paper',
    x0: step,
    x1: step,
    y0: 0,
    y1: 1,
    layer: 'below',
    line: { color: withAlpha(color, 0.6), width: 1, dash: 'dot' },
  }));
}

/**
 * One replaced attempt of a series (``earlier`` of /api/scalars) as a faded line of the run's
 * colour, smoothed as the series is; its hover says which attempt (counted from 1).
 */
function earlierTrace(s, attempt, color, card) {
  const state = { ...app.state, x: card.xMode };
  const raw = attempt.values.map(Number);
  const y = smooth(raw, state.smooth).map((v) => (Number.isFinite(v) ? v : null));
  const attempts = (s.restarts || []).length + 1;
  const label = `${escapeTemplate(s.run)} · attempt ${attempt.attempt + 1} of ${attempts}`;
  return {
    type: 'scatter',
    mode: y.filter((v) => v !== null).length <= 1 ? 'markers' : 'lines',
    name: escapePlotly(s.run),
    x: xValues({ ...attempt, run: s.run }, state.x, card),
    y,
    customdata: raw.map(formatNumber),
    line: { color, width: 1 },
    marker: { color, size: 4 },
    opacity: 0.35,
    hovertemplate:
      `${label}: %{y:.5g}` +
      (state.smooth > 0 ? ' <span style="color:#8a8f98">(raw %{customdata})</span>' : '') +
      '<extra></extra>',
    showlegend: false,
    meta: { run: s.run, kind: 'earlier', attempt: attempt.attempt },
  };
}

function buildFigure(card) {
  const state = { ...app.state, x: card.xMode };
  const traces = [];
  const earlier = []; // replaced attempts, drawn under every run's lines
  const shapes = [];
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
  const grouped = groupFigure(card, state);
  forRange.push(...grouped.values);
  const merged = card.series.length > MERGED_RUNS ? new Map() : null; // colour -> trace
  const faintRaw = card.series.length <= RAW_RUNS; // with no smoothing, the line is raw
  for (const g of card.groups || []) {
    total += g.total;
    shown += g.steps.length;
    if (g.downsampled) downsampled += 1;
  }
  for (const s of card.series) {
    if (grouped.memberOf.has(s.run)) continue; // drawn in its group
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
    if (state.x === 'step') shapes.push(...restartMarks(s, color));
    for (const attempt of (state.earlier && s.earlier) || []) {
      const trace = earlierTrace(s, attempt, color, card);
      earlier.push(trace);
      for (const v of trace.y) if (v !== null) forRange.push(v);
      total += attempt.total;
      shown += attempt.count;
      if (attempt.downsampled) downsampled += 1;
    }
    if (merged) {
      mergeRun(merged, s, color, x, smoothY, raw, state);
    } else if (faintRaw) {
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
    }
    if (!merged) {
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
    }
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
  const yaxis = axisStyle({
    type: state.y,
    autorange: true,
    uirevision: `${state.y}|${card.yRevision}`,
  });
  if (state.outliers && !card.zoom) {
    const range = robustRange(forRange, log);
    if (range) {
      yaxis.autorange = false;
      yaxis.range = range;
    }
  }
  const layout = baseLayout({
    uirevision: `${card.tag}|${state.x}|${card.relUnit.label}|${card.xRevision}`,
    shapes,
    hovermode: merged ? 'closest' : 'x unified',
    hoverlabel: { bgcolor: 'rgba(255,255,255,0.95)', bordercolor: '#c9ced6', font: { size: 11 } },
    dragmode: 'zoom',
    xaxis: axisStyle({
      exponentformat: undefined, // Plotly's own: steps read 20k, not 2e+4
      type: state.x === 'wall_time' ? 'date' : 'linear',
      title: axisTitle(xTitle(state.x, card)),
      hoverformat: state.x === 'step' ? ',d' : state.x === 'relative' ? ',.4~r' : undefined,
      // Relative time in the unit its range reads best in: "12 s", "3.5 min", "2.1 h".
      ticksuffix: state.x === 'relative' ? ` ${card.relUnit.label}` : undefined,
      unifiedhovertitle: { text: hoverTitle(state.x, card) },
      showspikes: true,
      spikemode: 'across',
      spikethickness: 1,
      spikecolor: '#9aa0a8',
      spikedash: 'dot',
    }),
    yaxis,
    showlegend: grouped.traces.length > 0,
    legend: GROUP_LEGEND,
    yaxis2: {
      overlaying: 'y',
      range: [0, 1],
      fixedrange: true,
      visible: false,
      tickmode: 'auto',
    },
  });
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
  if (card.groups && state.x !== app.state.x) notes.push('Grouped runs are drawn against step.');
  if (!faintRaw && state.smooth > 0) {
    notes.push(`Unsmoothed lines are left out past ${RAW_RUNS} runs.`);
  }
  if (card.capped) {
    notes.push(
      `The first ${plural(card.series.length, 'run')} (by name) of ` +
        `${card.selectedWithTag.toLocaleString()} selected are drawn.`,
    );
  } else if (merged) {
    notes.push(`${plural(card.series.length, 'run')} drawn; hover shows the nearest.`);
  }
  const all = [...earlier, ...grouped.traces, ...(merged ? merged.values() : []), ...traces];
  return { traces: all, layout, note: notes.join(' ') };
}

/**
 * The groups of a chart (card.groups, from /api/scalars/groups): members faintly when asked
 * (smoothed as any run), then each group's band and line. Returns {traces, values, memberOf}.
 */
function groupFigure(card, state) {
  const memberOf = new Map();
  const faint = [];
  const traces = [];
  const values = [];
  const groups = card.groups || [];
  const colors = groupColors(groups);
  for (const g of groups) for (const run of g.members) memberOf.set(run, g);
  for (const s of state.members ? card.series : []) {
    const g = memberOf.get(s.run);
    if (!g) continue;
    const y = smooth(s.values.map(Number), state.smooth);
    faint.push({
      type: 'scatter',
      mode: y.length <= 1 ? 'markers' : 'lines',
      x: s.steps,
      y: y.map((v) => (Number.isFinite(v) ? v : null)),
      line: { color: colors.get(g.group), width: 1 },
      marker: { color: colors.get(g.group), size: 4 },
      opacity: 0.3,
      hoverinfo: 'skip',
      showlegend: false,
      legendgroup: g.group,
      meta: { run: s.run, group: g.group, kind: 'member' },
    });
  }
  for (const g of groups) {
    const drawn = groupTraces(g, colors.get(g.group), g.steps);
    traces.push(...drawn.traces);
    values.push(...drawn.values);
  }
  return { traces: [...faint, ...traces], values, memberOf };
}

async function draw(card) {
  if (!(await plotlyReady())) {
    card.note.textContent = NO_PLOTLY;
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
  const uncapped = app.state.allruns && card.series.length > DRAWN_RUNS;
  card.drawAll.hidden = !card.capped && !uncapped;
  card.drawAll.textContent = card.capped
    ? `Draw all ${card.selectedWithTag.toLocaleString()}`
    : `Draw the first ${DRAWN_RUNS} only`;
  await window.Plotly.react(card.plot, traces, layout, PLOT_CONFIG);
  if (!card.plotted) {
    card.plotted = true;
    card.plot.on('plotly_relayout', (event) => onRelayout(card, event));
  }
}

/**
 * Add a run's smoothed line to the trace of its colour (made on first use): a gap (null)
 * between runs, the run's name and raw value with each point for the hover.
 */
function mergeRun(merged, s, color, x, y, raw, state) {
  let trace = merged.get(color);
  if (!trace) {
    trace = {
      type: 'scatter',
      mode: 'lines',
      x: [],
      y: [],
      customdata: [],
      line: { color, width: 1 },
      hovertemplate:
        '%{customdata[0]}: <b>%{y:.5g}</b>' +
        (state.smooth > 0 ? ' <span style="color:#8a8f98">(raw %{customdata[1]})</span>' : '') +
        '<extra></extra>',
      showlegend: false,
      meta: { runs: [], kind: 'smoothed' },
    };
    merged.set(color, trace);
  }
  if (trace.x.length) {
    trace.x.push(null);
    trace.y.push(null);
    trace.customdata.push(['', '']);
  }
  const name = escapePlotly(s.run); // data, not template: only HTML needs escaping
  for (let i = 0; i < x.length; i++) {
    trace.x.push(x[i]);
    trace.y.push(y[i]);
    trace.customdata.push([name, formatNumber(raw[i])]);
  }
  trace.meta.runs.push(s.run);
}

let redrawPending = false;

/** Redraw every drawn chart from the data it has (settings changed), once per frame. */
function redrawAll() {
  if (redrawPending) return;
  redrawPending = true;
  requestAnimationFrame(() => {
    redrawPending = false;
    board.redraw();
  });
}

/** Turn a Plotly x-axis value into the API's x units. */
function toApiX(value, card) {
  if (card.xMode === 'wall_time') return fromDateString(value);
  if (card.xMode === 'relative') return Number(value) * card.relUnit.seconds;
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
    const complete =
      card.series &&
      card.series.every((s) => !s.downsampled && !(s.earlier || []).some((e) => e.downsampled));
    const inside =
      !card.fetchedZoom ||
      (card.zoom[0] >= card.fetchedZoom[0] && card.zoom[1] <= card.fetchedZoom[1]);
    if (complete && inside) return;
  } else {
    if (!card.zoom) return;
    card.zoom = null;
    card.yRevision += 1; // the outlier-robust y range applies again
  }
  board.reload(card);
}

// ---------------------------------------------------------------------------------------
// The board: one card per tag, empty states, the toolbar's download

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

const download = el('a', {
  class: 'kb-button',
  download: '',
  text: 'Download CSV',
  title: 'Every point (not downsampled) of the selected runs and the filtered tags',
});

const board = createBoard({
  kind: 'scalars',
  closedKey: 'closed',
  byTag: true,
  keepCards: true,
  toolbar: [download],
  emptyTitle: 'No scalar data in the selected runs',
  emptyLines: [
    'Log scalars with writer.add_scalar("loss", value, step) or tf.summary.scalar(...); ' +
      'they appear here as soon as they are flushed.',
  ],
  noRunsLines: (logdir) => [
    `No event files under ${logdir} yet — point a writer at it, for example:`,
    codeBlock(
      `from kboard import SummaryWriter\n` +
        `writer = SummaryWriter(${JSON.stringify(`${logdir}/run1`)})\n` +
        `writer.add_scalar("loss", 0.5, global_step=1)\nwriter.flush()`,
    ),
    'This page updates by itself when they appear.',
  ],
  tagsLabel: 'scalar tags',
  summary: ({ tags, allTags, groups, selected }) =>
    `${plural(tags, 'tag')} in ${plural(groups, 'group')}` +
    (tags < allTags ? ` (of ${allTags})` : '') +
    ` · ${plural(selected, 'run')}`,
  onRender: (selected) => {
    download.href = exportURL(selected);
  },
  makeCard: (run, tag, info) => new ScalarCard(tag, info),
  flowGroups: true,
});

// ---------------------------------------------------------------------------------------
// Sidebar settings (static inputs in index.html)

function bindSettings() {
  const slider = document.getElementById('kb-smoothing');
  const number = document.getElementById('kb-smoothing-number');
  const output = document.getElementById('kb-smoothing-value');
  const outliers = document.getElementById('kb-outliers');
  const earlier = el('input', { type: 'checkbox', id: 'kb-earlier' });
  const earlierLabel = el(
    'label',
    {
      class: 'kb-check',
      title:
        'Also draw what restarted runs wrote before: each replaced attempt as a faded line ' +
        'of its run’s colour',
    },
    earlier,
    ' Earlier attempts',
  );
  outliers.closest('label').after(earlierLabel);
  syncGroups = bindGroupSettings(earlierLabel);
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
    earlier.checked = s.earlier;
    syncGroups();
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
  earlier.addEventListener('change', () => app.setState({ earlier: earlier.checked }));
  return sync;
}

let syncGroups = () => {};

/** Refetch every chart, its zoom and x axis reset (the x units changed, or may have). */
function refetchFromScratch() {
  for (const card of board.cards()) {
    card.zoom = null;
    card.xRevision += 1;
  }
  board.refetch();
}

// Smoothing applies before aggregation: the server smooths the members again.
const refetchGroups = debounce(() => board.refetch(), 250);

// ---------------------------------------------------------------------------------------

/** Check the group pattern (cards wait for it before they fetch), then show what it gave. */
function regroup() {
  checkGrouping().then(() => syncGroups());
}

registerBoard('scalars', board, {
  init: regroup, // the pattern from the URL
  bindSettings,
  onData: reloadGroupHparams, // a sweep that started after the page did
  // After the board's own: it lays out the cards, and refetches them all when runs change.
  onState(keys) {
    const regrouped = keys.has('group') || keys.has('groupby');
    if (regrouped) regroup();
    if (regrouped || keys.has('x') || keys.has('allruns')) {
      refetchFromScratch();
    } else if (keys.has('earlier') && app.state.earlier) {
      for (const card of board.cards()) card.yRevision += 1;
      board.refetch(); // the replaced attempts come with overwritten=1
    } else if (['smooth', 'y', 'outliers', 'earlier'].some((key) => keys.has(key))) {
      if (keys.has('y') || keys.has('outliers') || keys.has('earlier')) {
        for (const card of board.cards()) card.yRevision += 1;
      }
      redrawAll();
    }
    if (keys.has('smooth') && groupPattern()) refetchGroups();
    if (['agg', 'band', 'members'].some((key) => keys.has(key))) redrawAll();
  },
});
