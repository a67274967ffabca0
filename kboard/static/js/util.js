// Small helpers shared by the shell and the tabs: DOM building, escaping for Plotly,
// regex filters, run colours, JSON fetching with a global loading counter.

/** Create an element: el('div', {class: 'x', text: 'y'}, child, ...). Never parses HTML. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'text') node.textContent = value;
    else if (key === 'class') node.className = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') {
      node.addEventListener(key.slice(2), value);
    } else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Escape a user string for Plotly text (names, titles): Plotly renders a subset of HTML. */
export function escapePlotly(s) {
  return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Escape a user string for a Plotly hovertemplate: HTML, and `%{` so it is not a variable. */
export function escapeTemplate(s) {
  return escapePlotly(s).replace(/%\{/g, '&#37;{');
}

/** Escape text for a regex (the same in JavaScript and Python's re). */
export function escapeRegex(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Compile a user filter: a case-insensitive regex, or a plain substring when the regex is
 * invalid. Returns {test(s), error}; an empty pattern matches everything.
 */
export function makeMatcher(pattern) {
  if (!pattern) return { test: () => true, error: null };
  try {
    const re = new RegExp(pattern, 'i');
    return { test: (s) => re.test(s), error: null };
  } catch (err) {
    const needle = pattern.toLowerCase();
    return { test: (s) => s.toLowerCase().includes(needle), error: err.message };
  }
}

// Distinct and readable on white: Tableau 10 with the light ones darkened, then more.
const PALETTE = [
  '#4e79a7', '#f28e2b', '#e15759', '#499894', '#59a14f', '#b6992d', '#b07aa1', '#d37295',
  '#9c755f', '#79706e', '#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#8c564b', '#e377c2',
  '#17becf', '#8f8f1f', '#393b79', '#ad494a',
];

const HEX_COLOR = /^#[0-9a-f]{6}$/i;

/** Whether s is a colour as '#rrggbb' (the only form a colour from the URL may take). */
export function isHexColor(s) {
  return typeof s === 'string' && HEX_COLOR.test(s);
}

// Run colours: the palette in sorted run order, as TensorBoard does. An assignment is kept
// for the page's lifetime, so a run keeps its colour when others appear; a colour the user
// chose wins over it.
const assigned = new Map(); // run -> palette index
let chosen = new Map(); // run -> '#rrggbb'

/** Give each run that has no colour yet the least used palette colour, earliest first. */
export function assignRunColors(names) {
  const present = new Set(names);
  const uses = PALETTE.map(() => 0);
  for (const [run, i] of assigned) if (present.has(run)) uses[i] += 1;
  for (const name of names) {
    if (assigned.has(name)) continue;
    let best = 0;
    for (let i = 1; i < PALETTE.length; i++) if (uses[i] < uses[best]) best = i;
    assigned.set(name, best);
    uses[best] += 1;
  }
}

/** The colours the user chose: [[run, '#rrggbb'], ...]; invalid colours are ignored. */
export function setChosenColors(pairs) {
  chosen = new Map(pairs.filter(([, color]) => isHexColor(color)));
}

/** The palette colour of a run (what it wears unless the user chose another). */
export function paletteColor(run) {
  if (!assigned.has(run)) assignRunColors([run]);
  return PALETTE[assigned.get(run)];
}

/** The colour of a run, the same in every chart and in the run selector. */
export function runColor(run) {
  return chosen.get(run) || paletteColor(run);
}

const loadingListeners = new Set();
let inFlight = 0;

/** Call fn(count) whenever the number of requests in flight changes. */
export function onLoading(fn) {
  loadingListeners.add(fn);
}

function setInFlight(delta) {
  inFlight += delta;
  for (const fn of loadingListeners) fn(inFlight);
}

/** GET a JSON document; throws an Error with the status on failure. */
export async function fetchJSON(url, { signal } = {}) {
  setInFlight(1);
  try {
    const response = await fetch(url, { signal, headers: { Accept: 'application/json' } });
    if (!response.ok) throw new Error(`${response.status} ${response.statusText} for ${url}`);
    return await response.json();
  } finally {
    setInFlight(-1);
  }
}

/**
 * Fetch JSON the caller already holds as version `etag` (null: none) only if it changed:
 * {etag, data}, data null when unchanged (the server's 304 carries no body).
 */
export async function fetchChangedJSON(url, etag) {
  setInFlight(1);
  try {
    const headers = { Accept: 'application/json' };
    if (etag) headers['If-None-Match'] = etag;
    const response = await fetch(url, { headers, cache: 'no-store' });
    if (response.status === 304) {
      await response.arrayBuffer(); // (empty) read to its end, so the request ends cleanly
      return { etag, data: null };
    }
    if (!response.ok) throw new Error(`${response.status} ${response.statusText} for ${url}`);
    return { etag: response.headers.get('ETag'), data: await response.json() };
  } finally {
    setInFlight(-1);
  }
}

/** "1 run", "2 runs". */
export function plural(n, word) {
  return `${n.toLocaleString()} ${word}${n === 1 ? '' : 's'}`;
}

/** Return fn debounced by ms; the last call's arguments win. */
export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/** Format a number for people: 4 significant digits, non-finite values by name. */
export function formatNumber(v) {
  if (typeof v !== 'number') v = Number(v);
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return 'Infinity';
  if (v === -Infinity) return '-Infinity';
  if (v !== 0 && (Math.abs(v) >= 1e5 || Math.abs(v) < 1e-3)) return v.toExponential(3);
  return String(Number(v.toPrecision(5)));
}

/**
 * Wrap an async fn so calls never overlap: a call made while one runs schedules exactly one
 * more run after it. Bursts of live updates become at most two fetches.
 */
export function coalesce(fn) {
  let running = null;
  let again = false;
  const run = async () => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      try {
        do {
          again = false;
          try {
            await fn();
          } catch (err) {
            console.warn('kboard:', err);
          }
        } while (again);
      } finally {
        running = null;
      }
    })();
    return running;
  };
  return run;
}

/** A block of example code for an empty state. */
export function codeBlock(text) {
  return el('pre', { class: 'kb-code' }, el('code', { text }));
}
