// The shell: tabs, run selector, tag filter, URL state, problems, live updates (live.js).
//
// A tab is a module that calls registerTab({id, init, show, hide, onData, onState}):
//   init(ctx)        once, before anything else; ctx = {panel, app}
//   show() / hide()  the tab became active / inactive
//   onData()         the logdir changed (new points, runs or problems), or the tab was shown
//                    after a change it did not see: refetch what is on screen
//   onState(keys)    these state keys changed (a Set): runs selection, filters, settings
// Only the active tab is called; the others catch up through onData() when shown.
// A tab that keeps settings in the URL declares them with defineState() at module load.

import {
  assignRunColors,
  coalesce,
  debounce,
  el,
  escapeRegex,
  fetchJSON,
  isHexColor,
  makeMatcher,
  onLoading,
  paletteColor,
  plural,
  runColor,
  setChosenColors,
} from './util.js';
import { startLive } from './live.js';
import { watchLoading } from './loading.js';

const TAB_IDS = ['scalars', 'images', 'histograms', 'distributions', 'text', 'model', 'hparams'];

const tabs = new Map(); // id -> tab module
const specs = new Map(); // state key -> {default, parse, format}
const state = {};
const stateListeners = new Set();
const missedState = new Map(); // tab id -> state keys that changed while it was hidden

/** Register a tab module (see the comment at the top of this file). */
export function registerTab(tab) {
  tabs.set(tab.id, tab);
}

/** Declare a URL-backed state key: spec = {default, parse(raw), format(value)}. */
export function defineState(key, spec) {
  specs.set(key, spec);
}

const BOOLS = { 1: true, true: true, 0: false, false: false };

// Spec builders. parse() gets the raw string (or the list of strings for lists) from the URL
// and returns undefined for "use the default".
export const spec = {
  string: (def = '') => ({ default: def, parse: (s) => s, format: (v) => v }),
  number: (def, min, max) => ({
    default: def,
    parse: (s) => {
      const v = Number(s);
      return s !== '' && Number.isFinite(v) ? Math.min(max, Math.max(min, v)) : undefined;
    },
    format: (v) => String(v),
  }),
  choice: (def, values) => ({
    default: def,
    parse: (s) => (values.includes(s) ? s : undefined),
    format: (v) => v,
  }),
  bool: (def) => ({
    default: def,
    parse: (s) => (Object.hasOwn(BOOLS, s) ? BOOLS[s] : undefined),
    format: (v) => (v ? '1' : '0'),
  }),
  list: () => ({ default: [], list: true, parse: (l) => l, format: (v) => v }),
};

/**
 * The colours the user chose for runs: [[run, '#rrggbb'], ...] sorted by run, in the URL as
 * one `colors=#rrggbb:run` a run. Anything but a '#rrggbb' colour is dropped.
 */
const colorsSpec = {
  default: [],
  list: true,
  parse: (items) => {
    const chosen = new Map();
    for (const item of items) {
      const color = item.slice(0, 7);
      if (item[7] === ':' && isHexColor(color)) chosen.set(item.slice(8), color.toLowerCase());
    }
    return sortedPairs(chosen);
  },
  format: (pairs) => pairs.map(([run, color]) => `${color}:${run}`),
};

function sortedPairs(map) {
  return [...map].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

defineState('tab', spec.choice('scalars', TAB_IDS));
defineState('runs', spec.string()); // run filter regex
// The ticked runs, compactly (a thousand names make no URL): the runs `sel` matches ('' every
// run, NONE none, else a regex as the filter reads it), less `off`, plus `on`.
defineState('sel', spec.string());
defineState('off', spec.list()); // runs `sel` ticks that are unticked
defineState('on', spec.list()); // runs `sel` leaves that are ticked
defineState('tags', spec.string()); // tag filter regex
defineState('colors', colorsSpec); // run colours the user chose

function readURL() {
  const params = new URLSearchParams(location.search);
  for (const [key, s] of specs) {
    let value;
    if (s.list) value = params.has(key) ? s.parse(params.getAll(key)) : undefined;
    else if (params.has(key)) value = s.parse(params.get(key));
    state[key] = value === undefined ? structuredClone(s.default) : value;
  }
}

function writeURL() {
  const params = new URLSearchParams();
  for (const [key, s] of specs) {
    const value = state[key];
    if (s.list) {
      for (const item of s.format(value)) params.append(key, item);
    } else if (value !== s.default) {
      params.set(key, s.format(value));
    }
  }
  const query = params.toString();
  history.replaceState(history.state, '', query ? `?${query}` : location.pathname);
}

// Written shortly after the last change: a dragged slider must not flood the history API
// (Chrome throttles replaceState beyond a few hundred calls in ten seconds).
const scheduleURL = debounce(writeURL, 120);

/** Change state keys, update the URL, tell the shell and the active tab. */
export function setState(patch) {
  const changed = new Set();
  for (const [key, value] of Object.entries(patch)) {
    if (!specs.has(key)) throw new Error(`unknown state key ${key}`);
    if (JSON.stringify(state[key]) === JSON.stringify(value)) continue;
    state[key] = value;
    changed.add(key);
  }
  if (!changed.size) return;
  scheduleURL();
  for (const fn of stateListeners) fn(changed);
  if (changed.has('tab')) changed.delete('tab');
  if (!changed.size) return;
  for (const [id, tab] of tabs) {
    if (id === state.tab) {
      if (tab.onState) tab.onState(changed);
    } else {
      const missed = missedState.get(id) || new Set();
      for (const key of changed) missed.add(key);
      missedState.set(id, missed);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Runs

let runs = []; // [{name, start_time}], sorted by name
let runsLoaded = false;
let generation = null;
let logdir = '';

export const app = {
  state,
  setState,
  runColor,
  /** All runs, sorted: [{name, start_time, attempts, overwritten}] (see /api/runs). */
  get runs() {
    return runs;
  },
  get runsLoaded() {
    return runsLoaded;
  },
  get generation() {
    return generation;
  },
  get logdir() {
    return logdir;
  },
  runMatcher: () => makeMatcher(state.runs),
  tagMatcher: () => makeMatcher(state.tags),
  /** Runs that pass the run filter and are ticked, sorted by name. */
  selectedRuns() {
    const matcher = makeMatcher(state.runs);
    const ticked = tickedTest();
    return runs.filter((r) => matcher.test(r.name) && ticked(r.name)).map((r) => r.name);
  },
  startTime(run) {
    const found = runs.find((r) => r.name === run);
    return found ? found.start_time : null;
  },
};

// The run list shows only the rows in view once it is long (VIRTUAL_FROM runs pass the
// filter): rows of ROW_HEIGHT px between two spacers, so a thousand runs cost
// a screenful of DOM. Arrow keys, Home and End move between runs, Space ticks.
const VIRTUAL_FROM = 200;
const ROW_HEIGHT = 24;
const OVERSCAN = 10;
const runItems = new Map(); // run name -> <li>, for the rows in the DOM
let listed = []; // the runs that pass the (typed) filter, in list order
let listedFilter = null;
const spacers = [0, 1].map(() => el('li', { class: 'kb-run-spacer', 'aria-hidden': 'true' }));

/** A function telling whether a run is ticked (see the `sel` state key). */
function tickedTest() {
  const base = makeMatcher(state.sel === NONE ? '' : state.sel);
  const none = state.sel === NONE;
  const off = new Set(state.off);
  const on = new Set(state.on);
  return (name) => on.has(name) || (!none && base.test(name) && !off.has(name));
}

function runItem(run) {
  let item = runItems.get(run.name);
  if (item) return item;
  const box = el('input', { type: 'checkbox', value: run.name });
  box.addEventListener('change', () => toggleRun(run.name, box.checked));
  // A button, not in the label: a click on it picks a colour, not the run.
  const swatch = el('button', {
    type: 'button',
    class: 'kb-swatch',
    title: 'Change this run’s colour',
    'aria-label': `Colour of ${run.name}`,
  });
  swatch.addEventListener('click', () => pickColor(run.name, swatch));
  const name = el('span', { class: 'kb-run-name', text: run.name });
  item = el('li', { class: 'kb-run' }, el('label', {}, box, name), swatch);
  item.dataset.run = run.name;
  runItems.set(run.name, item);
  return item;
}

/** Render the run list for a filter (the typed one, before it reaches the state). */
function renderRuns(filter = state.runs) {
  const matcher = makeMatcher(filter);
  listed = runs.filter((r) => matcher.test(r.name));
  listedFilter = filter;
  renderRunWindow();
  updateRunExport();
  const count = document.getElementById('kb-run-count');
  count.textContent = runs.length
    ? filter
      ? `${listed.length.toLocaleString()} of ${runs.length.toLocaleString()}`
      : runs.length.toLocaleString()
    : '';
}

/** Put the listed runs in view (all of them when the list is short) into the DOM. */
function renderRunWindow() {
  const list = document.getElementById('kb-run-list');
  const virtual = listed.length > VIRTUAL_FROM;
  list.classList.toggle('kb-run-list--virtual', virtual);
  let first = 0;
  let last = listed.length;
  if (virtual) {
    const height = list.clientHeight || 400;
    first = Math.max(0, Math.floor(list.scrollTop / ROW_HEIGHT) - OVERSCAN);
    last = Math.min(listed.length, first + Math.ceil(height / ROW_HEIGHT) + 2 * OVERSCAN);
  }
  const [above, below] = spacers;
  if (list.firstChild !== above) list.prepend(above);
  above.style.height = `${first * ROW_HEIGHT}px`;
  below.style.height = `${(listed.length - last) * ROW_HEIGHT}px`;
  const shown = listed.slice(first, last);
  const keep = new Set(shown.map((r) => r.name));
  for (const [name, item] of runItems) {
    if (!keep.has(name)) {
      item.remove();
      runItems.delete(name);
    }
  }
  const ticked = tickedTest();
  let previous = null;
  for (const [i, run] of shown.entries()) {
    const item = runItem(run);
    // Screen readers still hear "run 512 of 1,000" from the few rows in the DOM.
    item.setAttribute('aria-posinset', String(first + i + 1));
    item.setAttribute('aria-setsize', String(listed.length));
    item.querySelector('.kb-swatch').style.background = runColor(run.name);
    // Keep DOM order = list order without re-creating items (focus survives updates).
    const expected = (previous || above).nextSibling;
    if (expected !== item) list.insertBefore(item, expected);
    previous = item;
    item.querySelector('input[type="checkbox"]').checked = ticked(run.name);
    item.title = run.start_time
      ? `${run.name}\nstarted ${new Date(run.start_time * 1000).toLocaleString()}`
      : run.name;
    markRestarts(item, run);
  }
  if (list.lastChild !== below) list.append(below);
}

/** Move the focus from one run's checkbox to another's (keys), scrolling it into view. */
function focusRun(index) {
  const list = document.getElementById('kb-run-list');
  const i = Math.max(0, Math.min(listed.length - 1, index));
  if (!listed.length) return;
  if (list.classList.contains('kb-run-list--virtual')) {
    const top = i * ROW_HEIGHT;
    if (top < list.scrollTop) list.scrollTop = top;
    else if (top + ROW_HEIGHT > list.scrollTop + list.clientHeight) {
      list.scrollTop = top + ROW_HEIGHT - list.clientHeight;
    }
    renderRunWindow();
  }
  const item = runItems.get(listed[i].name);
  if (item) item.querySelector('input').focus();
}

function bindRunList() {
  const list = document.getElementById('kb-run-list');
  let pending = false;
  list.addEventListener('scroll', () => {
    if (pending || listedFilter === null) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      renderRunWindow();
    });
  });
  list.addEventListener('keydown', (event) => {
    const item = event.target.closest('.kb-run');
    if (!item) return;
    const at = listed.findIndex((r) => r.name === item.dataset.run);
    const page = Math.max(1, Math.floor(list.clientHeight / ROW_HEIGHT) - 1);
    const moves = { ArrowDown: 1, ArrowUp: -1, PageDown: page, PageUp: -page };
    let next = null;
    if (event.key in moves) next = at + moves[event.key];
    else if (event.key === 'Home') next = 0;
    else if (event.key === 'End') next = listed.length - 1;
    if (next === null) return;
    event.preventDefault();
    focusRun(next);
  });
}

/**
 * Mark a run that has replaced values (it was restarted, resumed, or wrote a step twice) with
 * a badge under its name; the SCALARS switch "Earlier attempts" draws what was replaced.
 */
function markRestarts(item, run) {
  let badge = item.querySelector('.kb-run-restarts');
  if (!run.overwritten) {
    if (badge) badge.remove();
    return;
  }
  if (!badge) {
    badge = el('span', { class: 'kb-run-restarts' });
    item.append(badge);
  }
  const restarts = (run.attempts || 1) - 1;
  badge.textContent = restarts
    ? `restarted ${restarts.toLocaleString()}×`
    : `${run.overwritten.toLocaleString()} replaced`;
  badge.title =
    `${plural(run.overwritten, 'earlier value')} replaced; ` + "show them with 'Earlier attempts'";
}

/** Point the run selector's export links at every point of the selected runs. */
function updateRunExport() {
  const selected = app.selectedRuns();
  const box = document.getElementById('kb-run-export');
  box.hidden = selected.length === 0;
  for (const format of ['csv', 'json']) {
    const params = new URLSearchParams({ format, kind: 'scalars' });
    params.set('runs', `^(?:${selected.map(escapeRegex).join('|')})$`);
    document.getElementById(`kb-run-export-${format}`).href = `api/export?${params}`;
  }
}

// One colour input for every run: its swatch opens it, placed at the swatch so the browser's
// colour chooser opens there.
let colorRun = null;

function pickColor(name, swatch) {
  const picker = document.getElementById('kb-run-color');
  colorRun = name;
  picker.value = runColor(name);
  const rect = swatch.getBoundingClientRect();
  picker.style.left = `${rect.left}px`;
  picker.style.top = `${rect.bottom}px`;
  try {
    picker.showPicker();
  } catch {
    picker.click();
  }
}

/** Give a run a colour ('#rrggbb'); its palette colour means no choice. */
function setRunColor(name, color) {
  if (name === null || !isHexColor(color)) return;
  const chosen = new Map(state.colors);
  const lower = color.toLowerCase();
  if (lower === paletteColor(name)) chosen.delete(name);
  else chosen.set(name, lower);
  setState({ colors: sortedPairs(chosen) });
}

function bindColorPicker() {
  const picker = document.getElementById('kb-run-color');
  const apply = () => setRunColor(colorRun, picker.value);
  picker.addEventListener('input', debounce(apply, 100)); // while the chooser is open
  picker.addEventListener('change', apply);
}

const NONE = '(?!)'; // `sel` for "no run": a regex that matches nothing

/**
 * Tick exactly the runs in `wanted` (a Set), stored in the shortest form: a base (every run,
 * none, the current one, or the run filter) and the runs that differ from it.
 */
function setTicked(wanted) {
  const names = runs.map((r) => r.name);
  const bases = new Set(['', state.sel, NONE]);
  if (state.runs) bases.add(state.runs);
  let best = null;
  for (const sel of bases) {
    const matcher = makeMatcher(sel === NONE ? '' : sel);
    const off = [];
    const on = [];
    for (const name of names) {
      const base = sel !== NONE && matcher.test(name);
      if (base && !wanted.has(name)) off.push(name);
      else if (!base && wanted.has(name)) on.push(name);
    }
    const cost = [sel, ...off, ...on].reduce((sum, s) => sum + s.length + 5, 0);
    if (!best || cost < best.cost) best = { cost, sel, off, on };
  }
  setState({ sel: best.sel, off: best.off, on: best.on });
}

function tickedSet() {
  const ticked = tickedTest();
  return new Set(runs.filter((r) => ticked(r.name)).map((r) => r.name));
}

function toggleRun(name, on) {
  const wanted = tickedSet();
  if (on) wanted.add(name);
  else wanted.delete(name);
  setTicked(wanted);
}

/** Tick (or untick) every run that passes the filter; the others keep their ticks. */
function selectAll(on) {
  const matcher = makeMatcher(state.runs);
  const wanted = tickedSet();
  for (const run of runs) {
    if (!matcher.test(run.name)) continue;
    if (on) wanted.add(run.name);
    else wanted.delete(run.name);
  }
  setTicked(wanted);
}

/** Tick the runs that pass the filter and untick every other. */
function selectOnlyMatching() {
  const matcher = makeMatcher(state.runs);
  setTicked(new Set(runs.filter((r) => matcher.test(r.name)).map((r) => r.name)));
}

function renderProblems(problems) {
  const box = document.getElementById('kb-problems');
  const list = document.getElementById('kb-problems-list');
  box.hidden = problems.length === 0;
  const n = problems.length;
  document.getElementById('kb-problems-summary').textContent =
    `${n} problem${n === 1 ? '' : 's'} reading the logdir (the rest of the data is fine)`;
  list.replaceChildren(
    ...problems.map((p) =>
      el(
        'li',
        {},
        el('span', { class: 'kb-problem-kind', text: p.kind }),
        ' ',
        el('span', { class: 'kb-problem-where', text: `${p.run} — ${p.file}` }),
        ': ',
        el('span', { text: p.message }),
      ),
    ),
  );
}

async function loadRuns() {
  const data = await fetchJSON('api/runs');
  runs = [...data.runs].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  assignRunColors(runs.map((r) => r.name));
  runsLoaded = true;
  logdir = data.logdir;
  generation = data.generation;
  renderRuns();
  renderProblems(data.problems || []);
}

// ---------------------------------------------------------------------------------------
// Tabs

const seenGeneration = new Map(); // tab id -> generation it last refreshed for

function notifyData() {
  const tab = tabs.get(state.tab);
  if (!tab) return;
  seenGeneration.set(tab.id, generation);
  if (tab.onData) tab.onData();
}

function activateTab(id) {
  for (const button of document.querySelectorAll('.kb-tab')) {
    const active = button.dataset.tab === id;
    button.setAttribute('aria-selected', String(active));
    button.tabIndex = active ? 0 : -1;
  }
  for (const panel of document.querySelectorAll('.kb-panel')) {
    panel.hidden = panel.dataset.tab !== id;
  }
  for (const node of document.querySelectorAll('[data-tab-only]')) {
    node.hidden = node.dataset.tabOnly !== id;
  }
  for (const [tabId, tab] of tabs) {
    if (tabId !== id && tab.hide) tab.hide();
  }
  const tab = tabs.get(id);
  if (tab) {
    if (tab.show) tab.show();
    const missed = missedState.get(id);
    missedState.delete(id);
    if (missed && missed.size && tab.onState) tab.onState(missed);
    if (runsLoaded && seenGeneration.get(id) !== generation) notifyData();
  }
}

function comingSoon(panel, id) {
  const name = document.getElementById(`tab-${id}`).textContent;
  panel.replaceChildren(
    el(
      'div',
      { class: 'kb-empty' },
      el('h2', { text: `${name} are coming soon` }),
      el('p', {
        text:
          'kboard already reads these summaries from your event files; this dashboard is ' +
          'not built yet. Use the Scalars tab, or `kboard export` for the data.',
      }),
    ),
  );
}

function bindTabs() {
  const buttons = [...document.querySelectorAll('.kb-tab')];
  for (const button of buttons) {
    button.addEventListener('click', () => setState({ tab: button.dataset.tab }));
    button.addEventListener('keydown', (event) => {
      const i = buttons.indexOf(button);
      let next = null;
      if (event.key === 'ArrowRight') next = buttons[(i + 1) % buttons.length];
      else if (event.key === 'ArrowLeft') next = buttons[(i - 1 + buttons.length) % buttons.length];
      else if (event.key === 'Home') next = buttons[0];
      else if (event.key === 'End') next = buttons[buttons.length - 1];
      if (next) {
        event.preventDefault();
        next.focus();
        setState({ tab: next.dataset.tab });
      }
    });
  }
}

// ---------------------------------------------------------------------------------------
// Filters

function bindFilter(inputId, errorId, key, onType = () => {}) {
  const input = document.getElementById(inputId);
  const error = document.getElementById(errorId);
  input.value = state[key];
  const showError = () => {
    const message = makeMatcher(state[key]).error;
    error.hidden = !message;
    error.textContent = message ? 'Not a valid regex; matching it as plain text.' : '';
    input.setAttribute('aria-invalid', String(Boolean(message)));
  };
  showError();
  const apply = debounce(() => setState({ [key]: input.value }), 200);
  input.addEventListener('input', () => {
    onType(input.value);
    apply();
  });
  stateListeners.add((changed) => {
    if (!changed.has(key)) return;
    if (input.value !== state[key]) input.value = state[key];
    showError();
  });
}

// ---------------------------------------------------------------------------------------
// Live updates: one stream per browser shared by its tabs, polling when the server is full
// (live.js).

const refreshAll = coalesce(async () => {
  await loadRuns();
  notifyData();
});

function onGeneration(next, force) {
  if (force || next !== generation) refreshAll();
}

function setLive(kind, text, title, role) {
  const live = document.getElementById('kb-live');
  live.dataset.state = kind;
  live.dataset.role = role;
  live.textContent = text;
  live.title = title;
}

// ---------------------------------------------------------------------------------------

function bindLoading() {
  const spinner = document.getElementById('kb-spinner');
  let timer = null;
  onLoading((count) => {
    // Show the spinner only for requests that take a moment, to avoid flicker.
    clearTimeout(timer);
    if (count > 0) timer = setTimeout(() => (spinner.hidden = false), 150);
    else spinner.hidden = true;
    document.body.toggleAttribute('data-loading', count > 0);
  });
}

async function start() {
  readURL();
  setChosenColors(state.colors);
  bindLoading();
  bindTabs();
  // The list follows the typed filter at once; the charts once typing pauses.
  bindFilter('kb-run-filter', 'kb-run-filter-error', 'runs', (typed) => renderRuns(typed));
  bindFilter('kb-tag-filter', 'kb-tag-filter-error', 'tags');
  // The buttons act on the runs the list shows: the filter as typed, even before it applies.
  const buttons = {
    'kb-runs-all': () => selectAll(true),
    'kb-runs-none': () => selectAll(false),
    'kb-runs-only': selectOnlyMatching,
  };
  for (const [id, select] of Object.entries(buttons)) {
    document.getElementById(id).addEventListener('click', () => {
      setState({ runs: document.getElementById('kb-run-filter').value });
      select();
    });
  }
  bindRunList();
  bindColorPicker();
  stateListeners.add((changed) => {
    if (changed.has('colors')) setChosenColors(state.colors);
    if (['runs', 'sel', 'off', 'on', 'colors'].some((key) => changed.has(key))) renderRuns();
    if (changed.has('tab')) activateTab(state.tab);
  });

  for (const id of TAB_IDS) {
    const panel = document.getElementById(`panel-${id}`);
    const tab = tabs.get(id);
    if (tab) tab.init({ panel, app });
    else comingSoon(panel, id);
  }
  activateTab(state.tab);
  writeURL(); // normalise what was typed in the address bar
  watchLoading();
  try {
    await loadRuns();
    notifyData();
  } catch (err) {
    console.warn('kboard: could not load runs', err);
  }
  startLive({ onGeneration, onStatus: setLive });
}

// Module scripts run before DOMContentLoaded, so every tab module has registered by then.
document.addEventListener('DOMContentLoaded', start);
