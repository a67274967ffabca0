// Run groups for SCALARS: runs grouped by a regex's capture groups (e.g. `(.*)_seed\d+`) or by
// hyperparameters' values (`group_by=lr`: groups `lr=0.1`, ...), each group drawn as one line (mean or median) in one colour with a shaded band (± std or
// min–max). The server checks the pattern (Python's regular expressions, /api/groups) and
// computes the numbers (/api/scalars/groups: members smoothed, aligned by step, then
// aggregated), so the page draws exactly what `kboard export --group` writes. Group names
// come from run names: every one is escaped before it reaches Plotly.

import { app, defineState, spec } from './app.js';
import { withAlpha } from './charts.js';
import { debounce, el, escapeTemplate, plural, runColor } from './util.js';

defineState('group', spec.string()); // the grouping regex; empty: runs one by one
defineState('groupby', spec.string()); // or hyperparameter names, comma-separated (not both)
defineState('agg', spec.choice('mean', ['mean', 'median']));
defineState('band', spec.choice('std', ['std', 'minmax']));
defineState('members', spec.bool(false)); // draw each group's runs faintly

const BAND_LABELS = { std: '± std', minmax: 'min–max' };

// The grouping last checked (its query), whether the server took it, what to tell the user.
const grouping = { pattern: '', ok: false, message: '', ready: Promise.resolve() };

/** The grouping the state names: {group} (a regex) or {group_by} (hyperparameters), or null. */
function stateGrouping() {
  const s = app.state;
  if (s.groupby) return { group_by: s.groupby };
  return s.group ? { group: s.group } : null;
}

/** The grouping in force (its query string), or null when runs are drawn one by one. */
export function groupPattern() {
  return grouping.ok ? grouping.pattern : null;
}

/** Resolves once the current pattern has been checked. */
export function groupingReady() {
  return grouping.ready;
}

/** GET a JSON route; a failure's message is the server's own ("bad regular expression ..."). */
async function fetchWithMessage(url) {
  const response = await fetch(url, { headers: { Accept: 'application/json' } });
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new Error((body && body.error) || `${response.status} for ${url}`);
  return body;
}

/** Check the state's grouping with the server; then() once known (a bad one: runs one by one). */
export function checkGrouping() {
  const named = stateGrouping();
  const pattern = named ? String(new URLSearchParams(named)) : '';
  grouping.pattern = pattern;
  grouping.ok = false;
  grouping.message = '';
  if (!pattern) {
    grouping.ready = Promise.resolve();
    return grouping.ready;
  }
  grouping.ready = fetchWithMessage(`api/groups?${pattern}`).then(
    (data) => {
      if (grouping.pattern !== pattern) return;
      grouping.ok = true;
      if (!data.groups.length) {
        grouping.message = named.group
          ? 'No run name matches: runs are drawn one by one.'
          : 'No run has these hyperparameters: runs are drawn one by one.';
      }
    },
    (err) => {
      if (grouping.pattern !== pattern) return;
      grouping.message = `Cannot group runs: ${err.message}`;
    },
  );
  return grouping.ready;
}

/** The /api/scalars/groups query for a chart of these runs (null when not grouping). */
export function groupQuery(tag, runs) {
  const pattern = groupPattern();
  if (!pattern || !runs.length) return null;
  const params = new URLSearchParams(pattern);
  params.set('tag', tag);
  params.set('smoothing', String(app.state.smooth));
  for (const run of runs) params.append('run', run);
  return params;
}

/** Copy the grouping of a groupQuery() (group or group_by, and smoothing) into `to`. */
export function copyGrouping(from, to) {
  for (const key of ['group', 'group_by', 'smoothing']) {
    if (from.has(key)) to.set(key, from.get(key));
  }
}

/**
 * Each group wears its first member's colour: distinct from the other groups' and from the
 * runs drawn alone (while the palette lasts), the swatch in the run list, and the user's
 * choice when they picked one for that run.
 */
export function groupColors(groups) {
  return new Map(groups.map((g) => [g.group, runColor(g.members[0])]));
}

const label = (g) => (g.group === '' ? '(empty)' : g.group);

/**
 * A group's traces: its band (two traces, the upper filled down to the lower with Plotly's
 * fill 'tonexty') and its line, the centre (mean or median) with the member count in the
 * legend and the hover. Returns {traces, values} (values: every y drawn, for the y range).
 */
export function groupTraces(g, color, x) {
  const state = app.state;
  const num = (list) => list.map(Number);
  const centre = num(g[state.agg]);
  let lower;
  let upper;
  if (state.band === 'std') {
    const std = num(g.std);
    lower = centre.map((c, i) => c - std[i]);
    upper = centre.map((c, i) => c + std[i]);
  } else {
    lower = num(g.min);
    upper = num(g.max);
  }
  const runs = plural(g.members.length, 'run');
  const meta = (kind) => ({ run: g.group, group: g.group, kind, members: g.members.length });
  const edge = (y, kind, extra) => ({
    type: 'scatter',
    mode: 'lines',
    x,
    y,
    line: { color, width: 0 },
    hoverinfo: 'skip',
    showlegend: false,
    legendgroup: g.group,
    meta: meta(kind),
    ...extra,
  });
  const line = {
    type: 'scatter',
    mode: centre.length <= 1 ? 'markers' : 'lines',
    name: `${escapeTemplate(label(g))} · ${runs}`, // legend text is a template too
    x,
    y: centre,
    customdata: g.count.map((n, i) => [n, lower[i], upper[i]]),
    line: { color, width: 2 },
    marker: { color, size: 6 },
    hovertemplate:
      `${escapeTemplate(label(g))} · ${state.agg} of %{customdata[0]} of ${runs}: ` +
      `<b>%{y:.5g}</b> <span style="color:#8a8f98">${BAND_LABELS[state.band]} ` +
      '%{customdata[1]:.4g} – %{customdata[2]:.4g}</span><extra></extra>',
    legendgroup: g.group,
    showlegend: true,
    meta: meta('group'),
  };
  return {
    traces: [
      edge(lower, 'band-lower'),
      edge(upper, 'band-upper', { fill: 'tonexty', fillcolor: withAlpha(color, 0.18) }),
      line,
    ],
    values: [...lower, ...upper, ...centre],
  };
}

/** The legend of a grouped chart, inside its top right corner: a group and its run count. */
export const GROUP_LEGEND = {
  x: 0.99,
  y: 0.99,
  xanchor: 'right',
  yanchor: 'top',
  bgcolor: 'rgba(255,255,255,0.75)',
  font: { size: 10 },
  itemclick: 'toggle',
  itemdoubleclick: 'toggleothers',
};

/** Build the sidebar's group controls after `after`; returns sync(), run on state changes. */
export function bindGroupSettings(after) {
  const input = el('input', {
    type: 'search',
    id: 'kb-group',
    autocomplete: 'off',
    spellcheck: 'false',
    placeholder: 'e.g. (.*)_seed\\d+',
    'aria-label': 'Group runs by a name pattern',
  });
  // Name pattern or hyperparameters: the choice shows only when runs have hyperparameters.
  const mode = el(
    'select',
    { id: 'kb-group-mode', 'aria-label': 'Group runs by', hidden: true },
    el('option', { value: 'pattern', text: 'by name pattern' }),
    el('option', { value: 'hparams', text: 'by hyperparameters' }),
  );
  const hparams = el('select', {
    id: 'kb-group-hparams',
    multiple: true,
    hidden: true,
    'aria-label': 'Group runs by these hyperparameters',
    title: 'Runs with the same values of the chosen hyperparameters form a group (Ctrl+click: several)',
  });
  const error = el('p', { class: 'kb-field-error', id: 'kb-group-error', hidden: true });
  const agg = el(
    'select',
    { id: 'kb-group-agg', 'aria-label': 'Group line' },
    el('option', { value: 'mean', text: 'Mean' }),
    el('option', { value: 'median', text: 'Median' }),
  );
  const band = el(
    'select',
    { id: 'kb-group-band', 'aria-label': 'Group band' },
    el('option', { value: 'std', text: '± std' }),
    el('option', { value: 'minmax', text: 'min–max' }),
  );
  const members = el('input', { type: 'checkbox', id: 'kb-group-members' });
  const options = el(
    'div',
    { class: 'kb-field kb-group-options' },
    agg,
    ' ',
    band,
    ' ',
    el('label', { class: 'kb-check' }, members, ' Show members faintly'),
  );
  after.after(
    el(
      'div',
      {
        class: 'kb-field kb-group-field',
        title:
          'Group runs by the capture groups of a regular expression searched in run names ' +
          '(Python syntax), or by hyperparameters: each group is drawn as one line with a ' +
          'band, its members smoothed and aligned by step. Runs no group takes are drawn one ' +
          'by one.',
      },
      el('span', { class: 'kb-label', text: 'Group runs ' }, mode),
      input,
      hparams,
    ),
    error,
    options,
  );
  let byHparams = Boolean(app.state.groupby); // the mode shown (the state names at most one)
  let names = []; // the experiment's hyperparameters
  const chosen = () => [...hparams.selectedOptions].map((o) => o.value).join(',');
  const apply = debounce(() => app.setState({ group: input.value }), 300);
  input.addEventListener('input', apply);
  function sync() {
    const s = app.state;
    if (s.groupby) byHparams = true;
    else if (s.group) byHparams = false;
    const wanted = new Set(s.groupby.split(',').filter(Boolean));
    const listed = names.length > 0 || wanted.size > 0;
    byHparams = byHparams && listed;
    mode.hidden = !listed;
    mode.value = byHparams ? 'hparams' : 'pattern';
    input.hidden = byHparams;
    hparams.hidden = !byHparams;
    for (const name of wanted) {
      if (![...hparams.options].some((o) => o.value === name)) {
        hparams.append(el('option', { value: name, text: name })); // from the URL, unlisted
      }
    }
    for (const option of hparams.options) option.selected = wanted.has(option.value);
    if (document.activeElement !== input && input.value !== s.group) input.value = s.group;
    agg.value = s.agg;
    band.value = s.band;
    members.checked = s.members;
    options.hidden = !s.group && !s.groupby;
    const current = stateGrouping();
    const key = current ? String(new URLSearchParams(current)) : '';
    const bad = key === grouping.pattern && !grouping.ok && Boolean(grouping.message);
    error.hidden = !grouping.message || key !== grouping.pattern;
    error.textContent = grouping.message;
    input.setAttribute('aria-invalid', String(bad));
    hparams.setAttribute('aria-invalid', String(bad));
  }
  mode.addEventListener('change', () => {
    byHparams = mode.value === 'hparams';
    if (byHparams) app.setState({ group: '', groupby: chosen() });
    else app.setState({ groupby: '', group: input.value });
    sync();
  });
  hparams.addEventListener('change', () => app.setState({ group: '', groupby: chosen() }));
  agg.addEventListener('change', () => app.setState({ agg: agg.value }));
  band.addEventListener('change', () => app.setState({ band: band.value }));
  members.addEventListener('change', () => app.setState({ members: members.checked }));
  let drawnList = ''; // the list drawn, to redraw only when it changed
  loadNames = () =>
    fetchWithMessage('api/hparams').then(
      (data) => {
        const wanted = new Set(app.state.groupby.split(',').filter(Boolean));
        const next = JSON.stringify([data.hparams, [...wanted]]);
        if (next === drawnList) return;
        drawnList = next;
        names = data.hparams.map((h) => h.name);
        const extra = [...wanted].filter((name) => !names.includes(name));
        hparams.replaceChildren(
          ...data.hparams.map((h) =>
            el('option', { value: h.name, text: h.display_name || h.name, title: h.name }),
          ),
          ...extra.map((name) => el('option', { value: name, text: name })), // from the URL
        );
        hparams.size = Math.min(Math.max(names.length, 2), 6);
        sync();
      },
      () => {}, // no list: grouping by a name pattern still works
    );
  loadNames();
  return sync;
}

let loadNames = () => {};

/** Reload the hyperparameters offered for grouping (runs that log them may have appeared). */
export function reloadGroupHparams() {
  loadNames();
}
