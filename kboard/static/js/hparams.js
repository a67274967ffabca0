// The HPARAMS tab: the runs table (every run, or every session when hyperparameters were
// written), parallel coordinates and a scatter of a metric against a hyperparameter.
//
// One fetch of /api/runs_table. The table sorts by any column, filters numeric columns by a
// range and the others by value, hides columns, and draws only the rows on screen (2,000
// rows stay fast). Brushing an axis of the parallel coordinates sets the same filters; the
// filtered runs become the run selector's filter. A click on a scatter point or a row selects
// the run; "Show in Scalars" opens SCALARS with the selected runs. Everything is in the URL.
// Names are text in the DOM and escaped for Plotly (its labels and hovers are HTML).

import { app, defineState, registerTab, spec } from './app.js';
import {
  NO_PLOTLY,
  PLOT_CONFIG,
  axisStyle,
  axisTitle,
  baseLayout,
  loadFullPlotly,
} from './charts.js';
import {
  codeBlock,
  debounce,
  el,
  escapePlotly,
  escapeRegex,
  escapeTemplate,
  fetchJSON,
  formatNumber,
  plural,
  runColor,
} from './util.js';

defineState('hsort', spec.string()); // "column" or "-column" (descending)
defineState('hfilter', spec.string()); // JSON {column: {min, max} | {values: [...]}}
defineState('hhide', spec.list()); // hidden columns
defineState('hshow', spec.list()); // shown columns that are hidden by default
defineState('haxes', spec.list()); // the parallel coordinates' axes (empty: the default ones)
defineState('hsel', spec.list()); // selected runs
defineState('hx', spec.string()); // scatter: the hyperparameter column
defineState('hy', spec.string()); // scatter: the metric column
defineState('hall', spec.bool(false)); // every run, not only the sessions
defineState('hmatrix', spec.bool(false)); // scatter: every pair of hyperparameters and metrics

const ROW_HEIGHT = 26;
const OVERSCAN = 12;
const STAT_LABELS = { count: 'points', first_step: 'first step', last_step: 'last step' };
const FEATURED_METRICS = 4; // metrics shown by default (table and axes); the rest on request
const EVAL_NAME = /(^|[^a-z])(val|valid|validation|eval|evaluation|test|dev)([^a-z]|$)/i;
const HP_HASH = /^[0-9a-f]{64}$/; // the group hp names a session without a trial id

let ctx = null;
let table = null; // the /api/runs_table answer
let columns = []; // [{id, label, title, numeric, get(row), format(v)}]
let rows = []; // the rows shown: filtered and sorted
let filterRegex = null; // the run filter this tab set (to clear it when brushing is undone)
let parts = null;

function number(v) {
  if (v === null || v === undefined) return null;
  const n = typeof v === 'number' ? v : Number(v);
  return Number.isNaN(n) && v !== 'NaN' ? null : n;
}

function readFilters() {
  try {
    const parsed = JSON.parse(app.state.hfilter || '{}');
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? parsed : {};
  } catch {
    return {};
  }
}

function writeFilters(filters) {
  const clean = Object.fromEntries(Object.entries(filters).filter(([, f]) => f));
  app.setState({ hfilter: Object.keys(clean).length ? JSON.stringify(clean) : '' });
}

/** The columns of the table for these rows (sessions, or every run). */
function buildColumns(data, sessionsOnly) {
  const cols = [{ id: 'run', label: 'Run', get: (r) => r.run }];
  for (const h of data.hparams) {
    const numeric = h.type === 'float';
    cols.push({
      id: `hp:${h.name}`,
      label: h.display_name || h.name,
      title: h.description ? `${h.name}\n\n${h.description}` : h.name,
      numeric,
      hparam: true,
      get: (r) => (r.hparams && h.name in r.hparams ? r.hparams[h.name] : null),
    });
  }
  let featured = featuredMetrics(data.metrics.map((m) => m.key));
  const rank = (name) => (featured.includes(name) ? featured.indexOf(name) : featured.length);
  const byFeatured = (a, b) => rank(a) - rank(b); // a stable sort keeps the rest in order
  for (const m of [...data.metrics].sort((a, b) => byFeatured(a.key, b.key))) {
    const name = m.display_name || m.key;
    const get = (field) => (r) => (r.metrics && r.metrics[m.key] ? r.metrics[m.key][field] : null);
    const title = `${m.key} (${m.goal === 'max' ? 'higher' : 'lower'} is better)`;
    const hidden = !featured.includes(m.key);
    cols.push({
      id: `m:${m.key}:last`,
      metricName: m.key,
      goal: m.goal,
      hiddenByDefault: hidden,
      label: `${name} last`,
      title,
      numeric: true,
      metric: true,
      axis: true,
      get: get('last'),
    });
    cols.push({
      id: `m:${m.key}:best`,
      metricName: m.key,
      goal: m.goal,
      hiddenByDefault: hidden,
      label: `${name} best`,
      title,
      numeric: true,
      metric: true,
      get: get('best'),
    });
    cols.push({
      id: `m:${m.key}:best_step`,
      metricName: m.key,
      goal: m.goal,
      hiddenByDefault: hidden,
      label: `${name} best step`,
      title,
      numeric: true,
      get: get('best_step'),
    });
  }
  if (!sessionsOnly) {
    const tags = [...new Set(data.rows.flatMap((r) => Object.keys(r.scalars)))].sort();
    // Tags that runs have together (a line needs them all): not train's beside validation's.
    featured = [];
    let together = data.rows;
    for (const tag of featuredMetrics(tags, tags.length)) {
      const having = together.filter((r) => r.scalars[tag]);
      if (!having.length) continue;
      featured.push(tag);
      together = having;
      if (featured.length === FEATURED_METRICS) break;
    }
    tags.sort(byFeatured);
    for (const tag of tags) {
      for (const stat of ['last', 'min', 'max', 'count', 'first_step', 'last_step']) {
        cols.push({
          id: `s:${tag}:${stat}`,
          metricName: tag,
          hiddenByDefault: !featured.includes(tag),
          label: `${tag} ${STAT_LABELS[stat] || stat}`,
          title: tag,
          numeric: true,
          metric: stat === 'last',
          axis: stat === 'last',
          get: (r) => (r.scalars[tag] ? r.scalars[tag][stat] : null),
        });
      }
    }
  }
  if (data.rows.some((r) => r.session)) {
    const groups = data.rows.filter((r) => r.session).map((r) => r.session.group);
    cols.push({ id: 'status', label: 'Status', get: (r) => (r.session ? r.session.status : null) });
    cols.push({
      id: 'group',
      label: 'Group',
      get: (r) => (r.session ? r.session.group : null),
      // hp's hash of the values says nothing a hyperparameter column does not.
      hiddenByDefault: groups.every((g) => HP_HASH.test(g)),
    });
  }
  cols.push(
    { id: 'start', label: 'Started', numeric: true, get: (r) => r.start_time, format: date },
    {
      id: 'duration',
      label: 'Duration (s)',
      numeric: true,
      get: (r) => r.duration,
      format: seconds,
    },
  );
  return cols;
}

/** The metrics shown first: validation or evaluation ones, accuracy and loss first. */
function featuredMetrics(names, count = FEATURED_METRICS) {
  const score = (name) => (EVAL_NAME.test(name) ? 0 : 2) + (/acc|loss/i.test(name) ? 0 : 1);
  return [...names].sort((a, b) => score(a) - score(b)).slice(0, count);
}

/**
 * Note how many distinct values each column has in these rows (a hyperparameter missing from
 * some counts one more); hyperparameters that vary first.
 */
function countDistinct(cols, shown) {
  const sessions = shown.filter((r) => r.session);
  for (const col of cols) {
    const values = (col.hparam ? sessions : shown).map((r) => col.get(r));
    col.distinct = new Set(col.hparam ? values : values.filter((v) => v !== null)).size;
  }
  const hparams = cols.filter((c) => c.hparam);
  const ordered = [
    ...hparams.filter((c) => c.distinct > 1),
    ...hparams.filter((c) => c.distinct <= 1),
  ];
  const first = cols.indexOf(hparams[0]);
  if (first >= 0) cols.splice(first, ordered.length, ...ordered);
  return cols;
}

function date(v) {
  return typeof v === 'number' && v > 0 ? new Date(v * 1000).toLocaleString() : '';
}

/** A duration in seconds to a tenth (whole seconds from 100 s). */
function seconds(v) {
  if (typeof v !== 'number' || !Number.isFinite(v)) return formatNumber(v);
  return Math.abs(v) >= 100 ? String(Math.round(v)) : (Math.round(v * 10) / 10).toFixed(1);
}

/** A number to 4 significant digits, without trailing zeros (3e-4, 0.8767, 64). */
function shortNumber(v) {
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isFinite(n) || n === 0) return formatNumber(n);
  const rounded = Number(n.toPrecision(4));
  const small = Math.abs(rounded) < 1e-3 || Math.abs(rounded) >= 1e6;
  return small ? rounded.toExponential().replace('e+', 'e') : String(rounded);
}

function show(col, v) {
  if (v === null || v === undefined) return '';
  if (col.format) return col.format(v);
  if (col.numeric) return shortNumber(v);
  return String(v);
}

/** A value in full (a cell's title), when its cell shows it rounded. */
function fullValue(col, v) {
  if (!col.numeric || typeof v !== 'number' || col.format === date) return null;
  const full = String(v);
  return full === show(col, v) ? null : full;
}

function passes(col, filter, row) {
  const v = col.get(row);
  if (filter.values) return filter.values.some((x) => String(x) === String(v));
  const n = number(v);
  if (n === null) return false;
  if (typeof filter.min === 'number' && !(n >= filter.min)) return false;
  if (typeof filter.max === 'number' && !(n <= filter.max)) return false;
  return true;
}

function compare(a, b) {
  if (a === b) return 0;
  if (a === null || a === undefined) return 1; // missing values last
  if (b === null || b === undefined) return -1;
  if (typeof a === 'number' && typeof b === 'number') {
    if (Number.isNaN(a)) return 1;
    if (Number.isNaN(b)) return -1;
    return a - b;
  }
  return String(a).localeCompare(String(b), undefined, { numeric: true });
}

/** Filter and sort the rows from the state. */
function computeRows() {
  const sessionsOnly = !app.state.hall && table.rows.some((r) => r.session);
  let out = table.rows.filter((r) => !sessionsOnly || r.session);
  columns = countDistinct(buildColumns(table, sessionsOnly), out);
  const byId = new Map(columns.map((c) => [c.id, c]));
  const filters = Object.entries(readFilters()).filter(([id]) => byId.has(id));
  out = out.filter((r) => filters.every(([id, f]) => passes(byId.get(id), f, r)));
  const key = app.state.hsort;
  const descending = key.startsWith('-');
  const col = byId.get(descending ? key.slice(1) : key);
  if (col) {
    const value = col.numeric ? (r) => number(col.get(r)) : (r) => col.get(r);
    out = out
      .map((r) => [value(r), r])
      .sort((a, b) => {
        const missing = (a[0] === null) - (b[0] === null);
        if (missing) return missing; // missing values last in both orders
        return descending ? compare(b[0], a[0]) : compare(a[0], b[0]);
      })
      .map(([, r]) => r);
  }
  rows = out;
}

// ---------------------------------------------------------------------------------------
// The page

function build(panel) {
  const summary = el('span', { class: 'kb-hp-summary', role: 'status' });
  const allRuns = el('input', { type: 'checkbox', id: 'kb-hp-all' });
  allRuns.addEventListener('change', () => app.setState({ hall: allRuns.checked }));
  const clear = el('button', { type: 'button', text: 'Clear filters' });
  clear.addEventListener('click', () => app.setState({ hfilter: '' }));
  const toScalars = el('button', {
    type: 'button',
    class: 'kb-hp-to-scalars',
    text: 'Show in Scalars',
  });
  toScalars.addEventListener('click', showInScalars);
  const groupSeeds = el('button', { type: 'button', class: 'kb-hp-group-scalars', hidden: true });
  groupSeeds.addEventListener('click', groupSeedsInScalars);
  const columnList = el('div', { class: 'kb-hp-columns-list' });
  const columnsBox = el(
    'details',
    { class: 'kb-hp-columns' },
    el('summary', { text: 'Columns' }),
    columnList,
  );
  const axesList = el('div', { class: 'kb-hp-axes-list' });
  const axesBox = el(
    'details',
    { class: 'kb-hp-axes-choice' },
    el('summary', { text: 'Axes' }),
    axesList,
  );
  const allLabel = el('label', { class: 'kb-check kb-hp-all-label' }, allRuns, ' All runs');
  const toolbar = el(
    'div',
    { class: 'kb-toolbar kb-hp-toolbar' },
    summary,
    allLabel,
    clear,
    columnsBox,
    axesBox,
    toScalars,
    groupSeeds,
  );
  const head = el('thead');
  const body = el('tbody');
  const grid = el('table', { class: 'kb-table kb-hp-table' }, head, body);
  const scroller = el('div', { class: 'kb-hp-scroll', tabindex: '0' }, grid);
  scroller.addEventListener('scroll', () => drawBody());
  const parcoords = el('div', { class: 'kb-hp-parcoords' });
  const xSelect = el('select', { 'aria-label': 'Scatter hyperparameter', class: 'kb-hp-x' });
  const ySelect = el('select', { 'aria-label': 'Scatter metric', class: 'kb-hp-y' });
  const matrix = el('input', { type: 'checkbox', class: 'kb-hp-matrix' });
  matrix.addEventListener('change', () => app.setState({ hmatrix: matrix.checked }));
  xSelect.addEventListener('change', () => app.setState({ hx: xSelect.value }));
  ySelect.addEventListener('change', () => app.setState({ hy: ySelect.value }));
  const scatter = el('div', { class: 'kb-hp-scatter' });
  const symbols = el('span', { class: 'kb-hp-symbols' });
  const charts = el(
    'div',
    { class: 'kb-hp-charts' },
    el(
      'section',
      { class: 'kb-hp-chart' },
      el('h3', { class: 'kb-hp-chart-title', text: 'Parallel coordinates' }),
      parcoords,
    ),
    el(
      'section',
      { class: 'kb-hp-chart' },
      el('h3', { class: 'kb-hp-chart-title', text: 'Scatter' }),
      el(
        'div',
        { class: 'kb-hp-axes' },
        el('label', {}, 'x ', xSelect),
        el('label', {}, 'y ', ySelect),
        el('label', { class: 'kb-check' }, matrix, ' Matrix'),
        symbols,
      ),
      scatter,
    ),
  );
  const empty = el('div', { class: 'kb-empty', hidden: true });
  const content = el('div', { class: 'kb-hp-content' }, toolbar, charts, scroller);
  panel.replaceChildren(empty, content);
  parts = {
    summary,
    allRuns,
    toScalars,
    groupSeeds,
    columnList,
    axesList,
    head,
    body,
    scroller,
    parcoords,
    scatter,
    symbols,
    xSelect,
    ySelect,
    matrix,
    charts,
    empty,
    content,
  };
}

const ALL_PARTS = ['rows', 'toolbar', 'columns', 'head', 'body', 'parcoords', 'scatter'];
// What a change of each state key redraws: the charts only when their data changed.
const REDRAWS = {
  hsort: ['rows', 'head', 'body'],
  hfilter: ['rows', 'toolbar', 'head', 'body', 'parcoords', 'scatter'],
  hhide: ['columns', 'head', 'body'],
  hshow: ['columns', 'head', 'body'],
  haxes: ['columns', 'parcoords'],
  hsel: ['toolbar', 'body', 'scatter'],
  hx: ['scatter'],
  hy: ['scatter'],
  hmatrix: ['scatter'],
  hall: ALL_PARTS,
  colors: ['body', 'parcoords', 'scatter'],
};

function render(which = ALL_PARTS) {
  if (!table) return;
  const hasRuns = table.rows.length > 0;
  parts.empty.hidden = hasRuns;
  parts.content.hidden = !hasRuns;
  if (!hasRuns) {
    parts.empty.replaceChildren(
      el('h2', { text: 'No runs yet' }),
      el('p', {
        text: 'Write hyperparameters with torch’s or kboard’s add_hparams, or TensorBoard’s hp API:',
      }),
      codeBlock('writer.add_hparams({"lr": 0.1, "batch": 32}, {"hparam/accuracy": 0.9})'),
    );
    return;
  }
  const need = new Set(which);
  if (need.has('rows')) computeRows();
  if (need.has('toolbar')) drawToolbar();
  if (need.has('columns')) drawColumnList();
  if (need.has('head')) drawHead();
  if (need.has('body')) drawBody(true);
  if (need.has('parcoords')) drawParcoords();
  if (need.has('scatter')) drawScatter();
}

function drawToolbar() {
  const hasSessions = table.rows.some((r) => r.session);
  parts.allRuns.checked = app.state.hall || !hasSessions;
  parts.allRuns.disabled = !hasSessions;
  const total =
    hasSessions && !app.state.hall ? table.rows.filter((r) => r.session).length : table.rows.length;
  const what = hasSessions && !app.state.hall ? 'session' : 'run';
  parts.summary.textContent =
    rows.length < total ? `${rows.length} of ${plural(total, what)}` : plural(total, what);
  const selected = new Set(app.state.hsel);
  parts.toScalars.disabled = selected.size === 0;
  parts.toScalars.textContent = selected.size
    ? `Show ${plural(selected.size, 'run')} in Scalars`
    : 'Show in Scalars';
  const names = settingNames();
  parts.groupSeeds.hidden = names.length === 0;
  parts.groupSeeds.textContent = `Group seeds in Scalars by ${names.join(', ')}`;
  parts.groupSeeds.title =
    'Draw each setting as one line with a band in Scalars: runs grouped by every ' +
    'hyperparameter whose values differ among the rows shown, but the seed';
}

const SEED_LIKE = /seed|trial|run_?id|^id$/i;

/** The hyperparameters that tell settings apart: those that differ among the rows shown. */
function settingNames() {
  return columns
    .filter((c) => c.hparam && !SEED_LIKE.test(c.id.slice(3)))
    .filter((c) => new Set(rows.map((r) => JSON.stringify(c.get(r)))).size > 1)
    .map((c) => c.id.slice(3));
}

function groupSeedsInScalars() {
  const names = settingNames();
  if (names.length) app.setState({ group: '', groupby: names.join(','), tab: 'scalars' });
}

function isShown(col) {
  if (col.id === 'run') return true;
  if (col.hiddenByDefault) return app.state.hshow.includes(col.id);
  return !app.state.hhide.includes(col.id);
}

function visibleColumns() {
  return columns.filter(isShown);
}

/** Check boxes, one per column, that call ``toggle(column, checked)``. */
function checkList(list, cols, isOn, toggle) {
  list.replaceChildren(
    ...cols.map((c) => {
      const box = el('input', { type: 'checkbox', checked: isOn(c), dataset: { column: c.id } });
      box.addEventListener('change', () => toggle(c, box.checked));
      return el('label', { class: 'kb-check', title: c.title || c.label }, box, ` ${c.label}`);
    }),
  );
}

/** ``list`` with ``id`` in it or not, sorted (a state list). */
function withOrWithout(list, id, present) {
  const next = new Set(list);
  if (present) next.add(id);
  else next.delete(id);
  return [...next].sort();
}

function drawColumnList() {
  checkList(
    parts.columnList,
    columns.filter((c) => c.id !== 'run'),
    isShown,
    (c, checked) =>
      app.setState(
        c.hiddenByDefault
          ? { hshow: withOrWithout(app.state.hshow, c.id, checked) }
          : { hhide: withOrWithout(app.state.hhide, c.id, !checked) },
      ),
  );
  const axes = chartColumns();
  checkList(
    parts.axesList,
    columns.filter((c) => c.hparam || c.axis),
    (c) => axes.includes(c),
    (c, checked) =>
      app.setState({
        haxes: withOrWithout(
          axes.map((a) => a.id),
          c.id,
          checked,
        ),
      }),
  );
}

function drawHead() {
  const filters = readFilters();
  const sort = app.state.hsort;
  const titles = el('tr');
  const inputs = el('tr', { class: 'kb-hp-filters' });
  for (const col of visibleColumns()) {
    const order = sort === col.id ? 'ascending' : sort === `-${col.id}` ? 'descending' : 'none';
    const button = el('button', {
      type: 'button',
      class: 'kb-hp-sort',
      text: col.label,
      title: col.title || col.label,
    });
    button.addEventListener('click', () =>
      app.setState({ hsort: order === 'ascending' ? `-${col.id}` : col.id }),
    );
    titles.append(el('th', { 'aria-sort': order, dataset: { column: col.id } }, button));
    inputs.append(el('th', { dataset: { column: col.id } }, filterInput(col, filters[col.id])));
  }
  parts.head.replaceChildren(titles, inputs);
}

function filterInput(col, current) {
  if (col.numeric) {
    const make = (bound, label) => {
      const input = el('input', {
        type: 'number',
        step: 'any',
        class: `kb-hp-${bound}`,
        placeholder: bound,
        'aria-label': `${col.label} ${label}`,
        value: current && typeof current[bound] === 'number' ? String(current[bound]) : '',
      });
      input.addEventListener('change', () => {
        const filters = readFilters();
        const next = { ...(filters[col.id] && !filters[col.id].values ? filters[col.id] : {}) };
        if (input.value === '') delete next[bound];
        else next[bound] = Number(input.value);
        filters[col.id] = Object.keys(next).length ? next : null;
        writeFilters(filters);
      });
      return input;
    };
    return el('span', { class: 'kb-hp-range' }, make('min', 'at least'), make('max', 'at most'));
  }
  const values = [...new Set(table.rows.map((r) => col.get(r)).filter((v) => v !== null))]
    .map(String)
    .sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
  const select = el('select', { 'aria-label': `${col.label} is`, class: 'kb-hp-value' });
  select.append(el('option', { value: '', text: 'all' }));
  for (const v of values) select.append(el('option', { value: v, text: v }));
  const chosen = current && current.values ? current.values.map(String) : [];
  if (chosen.length > 1) {
    // A brush of the parallel coordinates can keep several values.
    select.append(el('option', { value: '\u0000several', text: `${chosen.length} values` }));
    select.value = '\u0000several';
  } else {
    select.value = chosen.length ? chosen[0] : '';
  }
  select.addEventListener('change', () => {
    const filters = readFilters();
    filters[col.id] = select.value === '' ? null : { values: [select.value] };
    writeFilters(filters);
  });
  return select;
}

/** Draw the rows on screen (and a few more), with spacers for the others. */
function drawBody(force = false) {
  const { scroller, body } = parts;
  const first = Math.max(0, Math.floor(scroller.scrollTop / ROW_HEIGHT) - OVERSCAN);
  const count = Math.ceil((scroller.clientHeight || 600) / ROW_HEIGHT) + 2 * OVERSCAN;
  const last = Math.min(rows.length, first + count);
  if (!force && body.dataset.first === String(first) && body.dataset.last === String(last)) return;
  body.dataset.first = String(first);
  body.dataset.last = String(last);
  const cols = visibleColumns();
  const selected = new Set(app.state.hsel);
  const spacer = (n) => {
    const tr = el('tr', { class: 'kb-hp-spacer', 'aria-hidden': 'true' });
    tr.style.height = `${n * ROW_HEIGHT}px`;
    return tr;
  };
  const out = [spacer(first)];
  for (let i = first; i < last; i++) {
    const row = rows[i];
    const tr = el('tr', {
      class: 'kb-hp-row',
      dataset: { run: row.run },
      'aria-selected': String(selected.has(row.run)),
    });
    tr.style.height = `${ROW_HEIGHT}px`;
    for (const col of cols) {
      if (col.id === 'run') {
        const swatch = el('span', { class: 'kb-swatch', 'aria-hidden': 'true' });
        swatch.style.background = runColor(row.run);
        tr.append(
          el('th', { scope: 'row', class: 'kb-hp-run', title: row.run }, swatch, ` ${row.run}`),
        );
      } else {
        const v = col.get(row);
        const cell = el('td', { class: col.numeric ? 'kb-num' : '', text: show(col, v) });
        const full = fullValue(col, v);
        if (full !== null) cell.title = full;
        tr.append(cell);
      }
    }
    tr.addEventListener('click', () => toggleSelected(row.run));
    out.push(tr);
  }
  out.push(spacer(rows.length - last));
  body.replaceChildren(...out);
}

function toggleSelected(run) {
  const next = new Set(app.state.hsel);
  if (next.has(run)) next.delete(run);
  else next.add(run);
  app.setState({ hsel: [...next].sort() });
}

function showInScalars() {
  const selected = app.state.hsel;
  if (!selected.length) return;
  const on = new Set(selected);
  filterRegex = null;
  app.setState({
    runs: `^(?:${selected.map(escapeRegex).join('|')})$`,
    off: app.state.off.filter((r) => !on.has(r)),
    tab: 'scalars',
  });
}

// ---------------------------------------------------------------------------------------
// Charts

/**
 * The axes of the parallel coordinates: the chosen ones, else the hyperparameters that vary
 * and the last values of the metrics shown by default.
 */
function chartColumns() {
  const candidates = columns.filter((c) => c.hparam || c.axis);
  const chosen = candidates.filter((c) => app.state.haxes.includes(c.id));
  if (chosen.length) return chosen;
  // Every run (sessions and their train/validation runs): a line needs a value on every axis.
  const everyRun = app.state.hall || !table.rows.some((r) => r.session);
  const picked = candidates.filter((c) =>
    everyRun
      ? c.id.startsWith('s:') && !c.hiddenByDefault
      : (c.hparam && c.distinct > 1) || (c.axis && !c.hiddenByDefault),
  );
  return picked.length >= 2 ? picked : candidates;
}

const LABEL_LINE = 14; // characters per line of an axis label

/** A column's name on an axis: a metric's without " last". */
function axisName(col) {
  return col.metricName !== undefined ? col.label.replace(/ last$/, '') : col.label;
}

/** Axis labels for Plotly: the metrics' common "group/" prefix dropped, long names wrapped. */
function axisLabels(cols) {
  const names = cols.map(axisName);
  const metrics = names.filter((_, i) => cols[i].metricName !== undefined);
  let prefix = '';
  if (metrics.length > 1) {
    prefix = metrics.reduce((a, b) => {
      let i = 0;
      while (i < a.length && a[i] === b[i]) i++;
      return a.slice(0, i);
    });
    prefix = prefix.slice(0, prefix.lastIndexOf('/') + 1);
  }
  return names.map((name, i) =>
    wrapLabel(cols[i].metricName !== undefined ? name.slice(prefix.length) : name),
  );
}

/** Lines of at most LABEL_LINE characters, broken after / _ - . or a space; escaped. */
function wrapLabel(text) {
  const pieces = text.match(/[^/_\-. ]*[/_\-. ]?/g).filter(Boolean);
  const lines = [''];
  for (const piece of pieces) {
    const line = lines.length - 1;
    if (lines[line] && lines[line].length + piece.length > LABEL_LINE) lines.push(piece);
    else lines[line] += piece;
  }
  return lines.map(escapePlotly).join('<br>');
}

/** Whether positive numbers span a decade or more (a learning rate): a log axis then. */
function spansDecades(values) {
  const finite = values.filter((v) => typeof v === 'number' && Number.isFinite(v));
  if (!finite.length || finite.some((v) => v <= 0)) return false;
  return Math.max(...finite) / Math.min(...finite) >= 10;
}

/** Ticks at each distinct value when there are few (through ``map``: log10 for a log axis). */
function fewTicks(dim, values, map) {
  const distinct = [...new Set(values.filter(Number.isFinite))].sort((a, b) => a - b);
  if (distinct.length > 8) return;
  dim.tickvals = distinct.map(map);
  dim.ticktext = distinct.map(shortNumber);
}

function categories(col) {
  return [
    ...new Set(
      table.rows
        .map((r) => col.get(r))
        .filter((v) => v !== null)
        .map(String),
    ),
  ].sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
}

let drawingParcoords = false;

function drawParcoords() {
  const div = parts.parcoords;
  if (!window.Plotly) {
    div.textContent = NO_PLOTLY;
    return;
  }
  const cols = chartColumns();
  const sessionsOnly = !app.state.hall && table.rows.some((r) => r.session);
  const all = table.rows.filter((r) => !sessionsOnly || r.session);
  if (cols.length < 2 || !all.length) {
    Plotly.purge(div);
    div.replaceChildren(
      el('p', {
        class: 'kb-card-note',
        text: 'Parallel coordinates need two hyperparameters or metrics.',
      }),
    );
    return;
  }
  const filters = readFilters();
  const labels = axisLabels(cols);
  const dimensions = cols.map((col, index) => {
    const dim = { label: labels[index], meta: col.id };
    if (col.numeric) {
      const values = all.map((r) => {
        const n = number(col.get(r));
        return n === null || !Number.isFinite(n) ? NaN : n;
      });
      // A hyperparameter over decades (a learning rate) on a log axis: log10 of the values.
      const log = col.hparam && spansDecades(values);
      const map = log ? Math.log10 : (v) => v;
      dim.meta = log ? `log:${col.id}` : col.id;
      dim.values = values.map(map);
      dim.tickformat = '.3~g';
      if (col.hparam) fewTicks(dim, values, map);
      if (log && !dim.tickvals) {
        const [lo, hi] = [Math.min(...dim.values), Math.max(...dim.values)];
        const powers = [];
        for (let p = Math.ceil(lo); p <= Math.floor(hi); p++) powers.push(p);
        dim.tickvals = powers;
        dim.ticktext = powers.map((p) => shortNumber(10 ** p));
      }
      const f = filters[col.id];
      if (f && !f.values && (typeof f.min === 'number' || typeof f.max === 'number')) {
        const finite = values.filter(Number.isFinite);
        dim.constraintrange = [
          map(typeof f.min === 'number' ? f.min : Math.min(...finite)),
          map(typeof f.max === 'number' ? f.max : Math.max(...finite)),
        ];
      }
    } else {
      const cats = categories(col);
      dim.values = all.map((r) => {
        const v = col.get(r);
        return v === null ? NaN : cats.indexOf(String(v));
      });
      dim.tickvals = cats.map((_, i) => i);
      dim.ticktext = cats; // tick texts are plain SVG text (labels are HTML)
      dim.range = [-0.5, Math.max(cats.length - 0.5, 0.5)];
      const f = filters[col.id];
      if (f && f.values) {
        dim.constraintrange = f.values
          .map((v) => cats.indexOf(String(v)))
          .filter((i) => i >= 0)
          .map((i) => [i - 0.4, i + 0.4]);
        if (dim.constraintrange.length === 1) dim.constraintrange = dim.constraintrange[0];
      }
    }
    return dim;
  });
  const n = all.length;
  const trace = {
    type: 'parcoords',
    dimensions,
    meta: { runs: all.map((r) => r.run) },
    line: lineColors(all),
    labelfont: { size: 11 },
    tickfont: { size: 10 },
    rangefont: { size: 1, color: 'rgba(0,0,0,0)' }, // under the wrapped labels; ticks say it
  };
  // Plotly writes a label's first line at a fixed height above its axis, the others below.
  const layout = baseLayout({
    margin: { l: 60, r: trace.line.showscale ? 90 : 50, t: 44, b: 20 },
    height: 320,
  });
  if (!div._fullLayout) div.replaceChildren(); // a note said why there was no chart
  // Wide enough for every axis label: the whole row when there are many axes.
  div.closest('.kb-hp-chart').classList.toggle('kb-hp-wide', cols.length > 6);
  drawingParcoords = true;
  Plotly.react(div, [trace], layout, PLOT_CONFIG)
    .then(() => titleAxes(div, cols))
    .finally(() => {
      drawingParcoords = false;
    });
  if (!div.dataset.bound) {
    div.dataset.bound = '1';
    div.on('plotly_restyle', () => {
      if (!drawingParcoords) onBrush(div);
    });
  }
}

/**
 * The lines in run colours (as in the table) for a few runs; for many, coloured by the
 * scatter's metric (run colours repeat and blur), with its scale.
 */
function lineColors(all) {
  const n = all.length;
  const yCol = defaultY();
  if (n > 24 && yCol) {
    return {
      color: all.map((r) => {
        const v = number(yCol.get(r));
        return v === null || !Number.isFinite(v) ? NaN : v;
      }),
      colorscale: 'Viridis',
      reversescale: yCol.goal === 'min',
      showscale: true,
      colorbar: { title: { text: wrapLabel(axisName(yCol)), side: 'right' }, thickness: 10 },
    };
  }
  const colors = all.map((r) => runColor(r.run));
  return {
    color: all.map((_, i) => i),
    colorscale: colors
      .map((c, i) => [n > 1 ? i / (n - 1) : 0, c])
      .concat(n === 1 ? [[1, colors[0]]] : []),
    cmin: 0,
    cmax: Math.max(n - 1, 1),
  };
}

/** Give each axis label its column's full name as a tooltip (Plotly draws no title). */
function titleAxes(div, cols) {
  div.querySelectorAll('.axis-title').forEach((text, i) => {
    if (!cols[i]) return;
    const title = document.createElementNS('http://www.w3.org/2000/svg', 'title');
    title.setAttribute('class', 'kb-hp-axis-title');
    title.textContent = cols[i].title || cols[i].label;
    text.parentNode.querySelector(':scope > title')?.remove();
    text.parentNode.append(title);
    text.style.pointerEvents = 'all';
  });
}

/** Turn the axes' brushed ranges into the table's filters, and the run selector's. */
function onBrush(div) {
  const trace = div.data && div.data[0];
  if (!trace) return;
  const byId = new Map(columns.map((c) => [c.id, c]));
  const filters = readFilters();
  for (const dim of trace.dimensions) {
    const log = dim.meta.startsWith('log:');
    const col = byId.get(log ? dim.meta.slice(4) : dim.meta);
    if (!col) continue;
    let ranges = dim.constraintrange;
    if (!ranges || !ranges.length) {
      delete filters[col.id];
      continue;
    }
    if (!Array.isArray(ranges[0])) ranges = [ranges];
    if (log) ranges = ranges.map(([lo, hi]) => [10 ** lo, 10 ** hi]);
    if (col.numeric) {
      filters[col.id] = {
        min: Math.min(...ranges.map((r) => r[0])),
        max: Math.max(...ranges.map((r) => r[1])),
      };
    } else {
      const cats = categories(col);
      const values = cats.filter((_, i) => ranges.some(([lo, hi]) => i >= lo && i <= hi));
      filters[col.id] = { values };
    }
  }
  writeFilters(filters);
}

/** Make the run selector show the filtered runs (and undo that when no filter is left). */
function syncRunFilter() {
  const active = Object.keys(readFilters()).length > 0;
  if (active) {
    const names = rows.map((r) => r.run);
    filterRegex = names.length ? `^(?:${names.map(escapeRegex).join('|')})$` : '^$';
    if (app.state.runs !== filterRegex) app.setState({ runs: filterRegex });
  } else if (filterRegex !== null && app.state.runs === filterRegex) {
    filterRegex = null;
    app.setState({ runs: '' });
  }
}

function fillSelect(select, cols, chosen, fallback) {
  select.replaceChildren(...cols.map((c) => el('option', { value: c.id, text: c.label })));
  const found = cols.find((c) => c.id === chosen) || fallback || cols[0];
  if (found) select.value = found.id;
  return found;
}

/** The scatter's default x: the hyperparameter with the most distinct values. */
function defaultX(choices) {
  return choices.reduce((best, c) => (!best || c.distinct > best.distinct ? c : best), null);
}

/** The scatter's default y: a metric shown by default, an accuracy first. */
function defaultY() {
  const shown = columns.filter((c) => c.metric && c.axis && !c.hiddenByDefault);
  const metrics = columns.filter((c) => c.metric);
  return shown.find((c) => /acc/i.test(c.metricName)) || shown[0] || metrics[0] || null;
}

const SYMBOLS = [
  ['circle', '●'],
  ['diamond', '◆'],
  ['square', '■'],
  ['triangle-up', '▲'],
  ['cross', '✚'],
  ['x', '✖'],
];

/** Another varying hyperparameter with few values (a seed) to tell points apart by symbol. */
function symbolColumn(xCol) {
  const few = columns.filter(
    (c) => c.hparam && c !== xCol && c.distinct > 1 && c.distinct <= SYMBOLS.length,
  );
  return few.find((c) => /seed/i.test(c.label)) || few.sort((a, b) => a.distinct - b.distinct)[0];
}

/** Every pair of hyperparameters and metrics (Plotly splom), points in run colours. */
function drawMatrix(div) {
  const cols = chartColumns();
  const selected = new Set(app.state.hsel);
  const labels = axisLabels(cols);
  const trace = {
    type: 'splom',
    dimensions: cols.map((col, index) => ({
      label: labels[index],
      values: rows.map((r) => {
        const v = col.get(r);
        if (v === null) return col.numeric ? NaN : null;
        return col.numeric ? number(v) : escapePlotly(v); // category ticks are HTML
      }),
    })),
    customdata: rows.map((r) => r.run),
    text: rows.map((r) => escapePlotly(r.run)),
    hovertemplate:
      '%{text}<br>%{xaxis.title.text}: %{x}<br>%{yaxis.title.text}: %{y}<extra></extra>',
    showupperhalf: false,
    diagonal: { visible: false },
    marker: {
      size: rows.map((r) => (selected.has(r.run) ? 9 : 6)),
      color: rows.map((r) => runColor(r.run)),
      line: { width: rows.map((r) => (selected.has(r.run) ? 1.5 : 0)), color: '#1f2328' },
    },
    meta: { runs: rows.map((r) => r.run) },
  };
  const size = Math.min(900, Math.max(300, cols.length * 110));
  const layout = baseLayout({
    height: size,
    margin: { l: 60, r: 12, t: 8, b: 50 },
    dragmode: 'select',
  });
  for (let i = 1; i <= cols.length; i++) {
    layout[`xaxis${i}`] = axisStyle({ tickfont: { size: 9 } });
    layout[`yaxis${i}`] = axisStyle({ tickfont: { size: 9 } });
  }
  Plotly.react(div, [trace], layout, PLOT_CONFIG);
}

function drawScatter() {
  const div = parts.scatter;
  parts.matrix.checked = app.state.hmatrix;
  parts.xSelect.disabled = parts.ySelect.disabled = app.state.hmatrix;
  // The whole row for the matrix, or below parallel coordinates that took theirs.
  const wideAxes = parts.parcoords.closest('.kb-hp-chart').classList.contains('kb-hp-wide');
  div.closest('.kb-hp-chart').classList.toggle('kb-hp-wide', app.state.hmatrix || wideAxes);
  const hparams = columns.filter((c) => c.hparam);
  const xChoices = hparams.length ? hparams : columns.filter((c) => c.numeric);
  const xCol = fillSelect(parts.xSelect, xChoices, app.state.hx, defaultX(hparams));
  const yCol = fillSelect(
    parts.ySelect,
    columns.filter((c) => c.metric),
    app.state.hy,
    defaultY(),
  );
  parts.symbols.replaceChildren();
  if (!window.Plotly) {
    div.textContent = NO_PLOTLY;
    return;
  }
  if (!xCol || !yCol) {
    Plotly.purge(div);
    div.replaceChildren(
      el('p', { class: 'kb-card-note', text: 'The scatter needs a hyperparameter and a metric.' }),
    );
    return;
  }
  if (!div._fullLayout) div.replaceChildren();
  if (app.state.hmatrix) {
    drawMatrix(div);
    bindClick(div);
    return;
  }
  const points = rows.filter((r) => xCol.get(r) !== null && number(yCol.get(r)) !== null);
  const selected = new Set(app.state.hsel);
  const symbolCol = symbolColumn(xCol);
  const symbolValues = symbolCol ? categories(symbolCol) : [];
  const symbolOf = (r) => SYMBOLS[symbolValues.indexOf(String(symbolCol.get(r)))] || SYMBOLS[0];
  if (symbolCol) {
    parts.symbols.textContent = `${symbolCol.label}: ${symbolValues
      .map((v, i) => `${SYMBOLS[i][1]} ${v}`)
      .join('  ')}`;
  }
  const trace = {
    type: 'scatter',
    mode: 'markers',
    x: points.map((r) => (xCol.numeric ? number(xCol.get(r)) : escapePlotly(xCol.get(r)))),
    y: points.map((r) => number(yCol.get(r))),
    customdata: points.map((r) => r.run),
    text: points.map((r) => {
      const run = escapePlotly(r.run);
      if (!symbolCol) return run;
      return `${run}<br>${escapePlotly(symbolCol.label)}: ${escapePlotly(symbolCol.get(r))}`;
    }),
    hovertemplate: `%{text}<br>${escapeTemplate(xCol.label)}: %{x}<br>${escapeTemplate(yCol.label)}: %{y}<extra></extra>`,
    marker: {
      size: points.map((r) => (selected.has(r.run) ? 13 : 9)),
      color: points.map((r) => runColor(r.run)),
      symbol: points.map((r) => (symbolCol ? symbolOf(r)[0] : 'circle')),
      line: { width: points.map((r) => (selected.has(r.run) ? 2 : 0)), color: '#1f2328' },
    },
    meta: { runs: points.map((r) => r.run) },
  };
  const xaxis = axisStyle({
    title: axisTitle(escapePlotly(xCol.label)),
    type: xCol.numeric ? (spansDecades(trace.x) ? 'log' : 'linear') : 'category',
  });
  if (xCol.numeric && xCol.hparam) {
    const ticks = {};
    fewTicks(ticks, trace.x, (v) => v);
    if (ticks.tickvals) Object.assign(xaxis, { tickmode: 'array', ...ticks });
  }
  const layout = baseLayout({
    height: 300,
    xaxis,
    yaxis: axisStyle({ title: axisTitle(escapePlotly(yCol.label)) }),
    margin: { l: 60, r: 12, t: 8, b: 44 },
  });
  Plotly.react(div, [trace], layout, PLOT_CONFIG);
  bindClick(div);
}

/** A click on a point (of the scatter or the matrix) selects its run. */
function bindClick(div) {
  if (div.dataset.bound) return;
  div.dataset.bound = '1';
  div.on('plotly_click', (event) => {
    const point = event.points && event.points[0];
    if (!point) return;
    const run = point.customdata ?? (point.data.customdata || [])[point.pointNumber];
    if (typeof run === 'string') toggleSelected(run);
  });
}

// ---------------------------------------------------------------------------------------

const load = async () => {
  try {
    // parcoords and splom are not in the partial bundle the page loads first
    [table] = await Promise.all([fetchJSON('api/runs_table'), loadFullPlotly()]);
  } catch (err) {
    parts.content.hidden = true;
    parts.empty.hidden = false;
    parts.empty.replaceChildren(
      el('h2', { text: 'Could not load the runs table' }),
      el('p', { text: err.message }),
    );
    return;
  }
  render();
};

const pending = new Set();
const redrawLater = debounce(() => {
  const which = [...pending];
  pending.clear();
  render(which);
}, 30);

registerTab({
  id: 'hparams',
  init(context) {
    ctx = context;
    build(ctx.panel);
  },
  show() {
    if (table) render();
  },
  hide() {},
  onData() {
    load();
  },
  onState(keys) {
    if (!table) return;
    for (const key of keys) for (const part of REDRAWS[key] || []) pending.add(part);
    if (keys.has('hfilter') || keys.has('hall')) {
      computeRows();
      syncRunFilter();
    }
    if (pending.size) redrawLater();
  },
});
