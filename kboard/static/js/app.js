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
defineState('off', spec.list()); // deselected runs: new runs are selected by default
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
    const off = new Set(state.off);
    return runs.filter((r) => matcher.test(r.name) && !off.has(r.name)).map((r) => r.name);
  },
  startTime(run) {
    const found = runs.find((r) => r.name === run);
    return found ? found.start_time : null;
  },
};

const runItems = new Map(); // run name -> <li>

function renderRuns() {
  const list = document.getElementById('kb-run-list');
  const matcher = makeMatcher(state.runs);
  const off = new Set(state.off);
  const names = new Set(runs.map((r) => r.name));
  for (const [name, item] of runItems) {
    if (!names.has(name)) {
      item.remove();
      runItems.delete(name);
    }
  }
  let shown = 0;
  let previous = null;
  for (const run of runs) {
    let item = runItems.get(run.name);
    if (!item) {
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
    }
    item.querySelector('.kb-swatch').style.background = runColor(run.name);
    // Keep DOM order = sorted order without re-creating items (focus survives updates).
    const expected = previous ? previous.nextSibling : list.firstChild;
    if (expected !== item) list.insertBefore(item, expected);
    previous = item;
    const visible = matcher.test(run.name);
    item.hidden = !visible;
    if (visible) shown += 1;
    item.querySelector('input[type="checkbox"]').checked = !off.has(run.name);
    item.title = run.start_time
      ? `${run.name}\nstarted ${new Date(run.start_time * 1000).toLocaleString()}`
      : run.name;
    markRestarts(item, run);
  }
  updateRunExport();
  const count = document.getElementById('kb-run-count');
  count.textContent = runs.length
    ? state.runs
      ? `${shown} of ${runs.length}`
      : `${runs.length}`
    : '';
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

function toggleRun(name, on) {
  const off = new Set(state.off);
  if (on) off.delete(name);
  else off.add(name);
  setState({ off: [...off].sort() });
}

function selectAll(on) {
  const matcher = makeMatcher(state.runs);
  const off = new Set(state.off);
  for (const run of runs) {
    if (!matcher.test(run.name)) continue;
    if (on) off.delete(run.name);
    else off.add(run.name);
  }
  setState({ off: [...off].sort() });
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

function bindFilter(inputId, errorId, key) {
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
  input.addEventListener('input', apply);
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
  bindFilter('kb-run-filter', 'kb-run-filter-error', 'runs');
  bindFilter('kb-tag-filter', 'kb-tag-filter-error', 'tags');
  document.getElementById('kb-runs-all').addEventListener('click', () => selectAll(true));
  document.getElementById('kb-runs-none').addEventListener('click', () => selectAll(false));
  bindColorPicker();
  stateListeners.add((changed) => {
    if (changed.has('colors')) setChosenColors(state.colors);
    if (changed.has('runs') || changed.has('off') || changed.has('colors')) renderRuns();
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
