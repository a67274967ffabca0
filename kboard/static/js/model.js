// The MODEL tab: the newest model summary of each run and tag, as a graph and a table of
// layers, and TensorFlow op graphs.
//
// /api/model gives one shape for Keras's own `graph_keras_model` config (no parameter counts)
// and kboard's callback summary (counts and output shapes). Nested models are rows that fold
// and unfold their layers; the plain `model.summary()` text, when stored, is one click away.
// With the Graph switch (mview=graph in the URL, the default), /api/graph's layer graph is
// drawn above the table (graphview.js); a node clicked shows its config and marks its row.
// Op graphs (/api/tags/graph) are cards of their own, scopes collapsed.

import { app, defineState, spec } from './app.js';
import { createBoard, frameCard, refreshHeader, registerBoard } from './board.js';
import { GraphView } from './graphview.js';
import { codeBlock, el, fetchChangedJSON, fetchJSON } from './util.js';

defineState('mclosed', spec.list()); // collapsed tag groups
defineState('mview', spec.choice('graph', ['graph', 'table'])); // a model as a graph or a table

const COLUMNS = [
  { key: 'name', label: 'Layer' },
  { key: 'class', label: 'Class' },
  { key: 'settings', label: 'Key settings' },
  { key: 'input_shape', label: 'Input shape' },
  { key: 'output_shape', label: 'Output shape' },
  { key: 'params', label: 'Parameters', numeric: true },
];

const SOURCES = {
  kboard: 'summary from kboard’s Keras callback',
  keras_config: 'Keras model config (no parameter counts: log with kboard’s callback for them)',
};

/** The layers of a tree as rows: [{layer, depth, path, names, ancestors}], parents first. */
function flatten(layers, depth = 0, prefix = '', ancestors = [], out = [], names = '') {
  layers.forEach((layer, i) => {
    const path = `${prefix}/${i}:${layer.name}`;
    const namePath = names ? `${names}/${layer.name}` : layer.name;
    out.push({ layer, depth, path, names: namePath, ancestors });
    if (Array.isArray(layer.layers) && layer.layers.length) {
      flatten(layer.layers, depth + 1, path, [...ancestors, path], out, namePath);
    }
  });
  return out;
}

/** A card's message that what it holds cannot be shown, and why. */
function errorBox(title, why, extraClass = '') {
  return el(
    'div',
    { class: `kb-placeholder kb-model-error ${extraClass}`.trim() },
    el('strong', { text: title }),
    el('span', { text: ` ${why}` }),
  );
}

/**
 * Fetch /api/graph for a card: {step, graph} ({graph: {error}} when it failed), or null when
 * the card's graph is unchanged since the last fetch (a 304: a big graph is not sent again).
 */
async function fetchGraph(card, kind) {
  const url = `api/graph?${new URLSearchParams({ run: card.run, tag: card.tag, kind })}`;
  try {
    const { etag, data } = await fetchChangedJSON(url, card.graphEtag);
    if (data === null) return null;
    card.graphEtag = etag;
    return { step: data.step, graph: data.graph || { error: 'no graph' } };
  } catch (err) {
    card.graphEtag = null;
    return { graph: { error: err.message } };
  }
}

/** Draw a graph (or say why not) into a GraphView, unless it is the one already drawn. */
function showGraph(card, graph, host) {
  if (graph.error !== undefined) {
    card.graphKey = null;
    host.replaceChildren(errorBox('This graph cannot be drawn.', graph.error, 'kb-graph-error'));
    return;
  }
  const key = JSON.stringify(graph);
  if (!card.view) card.view = new GraphView({ onSelect: (item) => card.selectRow?.(item) });
  if (card.view.root.parentNode !== host) host.replaceChildren(card.view.root);
  if (key === card.graphKey) return;
  card.graphKey = key;
  card.view.show(graph);
}

function hasValue(layer, key) {
  const v = layer[key];
  if (key === 'settings') return v && Object.keys(v).length > 0;
  return v !== null && v !== undefined && v !== '';
}

function count(n) {
  return typeof n === 'number' ? n.toLocaleString() : '–';
}

class ModelCard {
  constructor(run, tag, info) {
    this.run = run;
    this.tag = tag;
    this.closed = new Set(); // paths of folded nested models (kept across live updates)
    this.step = el('span', { class: 'kb-card-sample' });
    this.body = el('div', { class: 'kb-model-body' });
    this.graphHost = el('div', { class: 'kb-graph-host', hidden: true });
    this.note = el('p', { class: 'kb-card-note' });
    frameCard(this, info, 'kb-model-card', [this.step], this.graphHost, this.body, this.note);
  }

  setInfo(info) {
    refreshHeader(this, info);
  }

  async load() {
    let data;
    const asGraph = app.state.mview === 'graph';
    const graph = asGraph ? fetchGraph(this, 'model') : null;
    try {
      data = await fetchJSON(`api/model?${new URLSearchParams({ run: this.run, tag: this.tag })}`);
    } catch (err) {
      this.root.dataset.state = 'error';
      this.note.textContent = `Could not load this model summary: ${err.message}`;
      return;
    }
    this.note.textContent = '';
    this.step.textContent =
      typeof data.step === 'number' ? `step ${data.step.toLocaleString()}` : '';
    this.draw(data.model || {});
    this.modelError = (data.model || {}).error !== undefined;
    this.graphHost.hidden = !asGraph || this.modelError;
    const fetched = graph && (await graph);
    if (fetched && !this.graphHost.hidden) showGraph(this, fetched.graph, this.graphHost);
  }

  /** The Graph/Table switch changed: show the graph (fetching it the first time) or not. */
  applyView() {
    if (app.state.mview === 'graph' && this.graphKey === undefined) return this.load();
    this.graphHost.hidden = app.state.mview !== 'graph' || this.modelError;
    return undefined;
  }

  /** Mark the table row of a layer clicked in the graph. */
  selectRow(item) {
    for (const row of this.rows || []) {
      const hit = row.names === item.path;
      row.tr.classList.toggle('kb-row--selected', hit);
      if (hit) {
        for (const ancestor of row.ancestors) this.closed.delete(ancestor);
        this.updateFolding();
        row.tr.scrollIntoView({ block: 'nearest' });
      }
    }
  }

  draw(model) {
    if (model.error !== undefined) {
      this.root.dataset.state = 'error';
      this.body.replaceChildren(errorBox('This model summary could not be read.', model.error));
      return;
    }
    const layers = Array.isArray(model.layers) ? model.layers : [];
    const parts = [
      el(
        'p',
        { class: 'kb-model-title' },
        el('strong', { text: model.name || '(unnamed model)' }),
        model.class ? el('span', { class: 'kb-muted', text: ` ${model.class}` }) : null,
        el('span', { class: 'kb-model-source', text: SOURCES[model.source] || model.source || '' }),
      ),
    ];
    if (model.source === 'kboard') {
      parts.push(
        el(
          'dl',
          { class: 'kb-model-counts' },
          el(
            'div',
            {},
            el('dt', { text: 'Total params' }),
            el('dd', { text: count(model.total_params) }),
          ),
          el(
            'div',
            {},
            el('dt', { text: 'Trainable' }),
            el('dd', { text: count(model.trainable_params) }),
          ),
          el(
            'div',
            {},
            el('dt', { text: 'Non-trainable' }),
            el('dd', { text: count(model.non_trainable_params) }),
          ),
        ),
      );
    }
    parts.push(
      layers.length ? this.table(layers) : el('p', { class: 'kb-muted', text: 'No layers.' }),
    );
    if (model.text) {
      parts.push(
        el(
          'details',
          { class: 'kb-model-text' },
          el('summary', { text: 'model.summary() text' }),
          el('pre', { text: model.text }),
        ),
      );
    }
    // Keep the text open across live updates when it was open.
    const wasOpen = this.body.querySelector('details.kb-model-text[open]');
    this.body.replaceChildren(...parts);
    if (wasOpen) {
      const details = this.body.querySelector('details.kb-model-text');
      if (details) details.open = true;
    }
    this.root.dataset.state = 'ready';
  }

  table(layers) {
    const rows = flatten(layers);
    const columns = COLUMNS.filter(
      (c) => c.key === 'name' || c.key === 'class' || rows.some((r) => hasValue(r.layer, c.key)),
    );
    const head = el(
      'tr',
      {},
      columns.map((c) =>
        el('th', { scope: 'col', class: c.numeric ? 'kb-num' : null, text: c.label }),
      ),
    );
    const trs = rows.map((row) => {
      const tr = el(
        'tr',
        {},
        columns.map((c) => this.cell(row, c)),
      );
      tr.dataset.depth = String(row.depth);
      if (row.layer.trainable === false) tr.classList.add('kb-frozen');
      row.tr = tr;
      return tr;
    });
    this.rows = rows;
    this.updateFolding();
    return el(
      'div',
      { class: 'kb-table-scroll' },
      el(
        'table',
        { class: 'kb-table kb-model-table' },
        el('thead', {}, head),
        el('tbody', {}, trs),
      ),
    );
  }

  cell(row, column) {
    const { layer } = row;
    if (column.key === 'name') {
      const nested = Array.isArray(layer.layers) && layer.layers.length > 0;
      const name = el('span', { class: 'kb-layer-name', text: layer.name || '(unnamed)' });
      const td = el('th', { scope: 'row', class: 'kb-layer' });
      td.style.paddingLeft = `${8 + row.depth * 18}px`;
      if (nested) {
        const button = el(
          'button',
          { type: 'button', class: 'kb-fold', 'aria-expanded': 'true' },
          el('span', { class: 'kb-chevron', 'aria-hidden': 'true' }),
          name,
          el('span', { class: 'kb-muted', text: ` (${layer.layers.length})` }),
        );
        button.setAttribute(
          'aria-label',
          `${layer.name}: show or hide its ${layer.layers.length} layers`,
        );
        button.addEventListener('click', () => {
          if (this.closed.has(row.path)) this.closed.delete(row.path);
          else this.closed.add(row.path);
          this.updateFolding();
        });
        row.button = button;
        td.append(button);
      } else {
        td.append(el('span', { class: 'kb-fold-spacer', 'aria-hidden': 'true' }), name);
      }
      if (layer.trainable === false) td.append(el('span', { class: 'kb-badge', text: 'frozen' }));
      return td;
    }
    if (column.key === 'settings') {
      const settings = layer.settings || {};
      return el(
        'td',
        { class: 'kb-settings' },
        Object.entries(settings).map(([k, v]) =>
          el(
            'code',
            { class: 'kb-setting' },
            el('span', { class: 'kb-muted', text: `${k}=` }),
            String(v),
          ),
        ),
      );
    }
    if (column.key === 'class') {
      return el('td', { class: 'kb-layer-class', text: layer.class || '' });
    }
    if (column.key === 'params') {
      return el('td', {
        class: 'kb-num',
        text: typeof layer.params === 'number' ? count(layer.params) : '',
      });
    }
    const value = layer[column.key];
    const text = value === null || value === undefined ? '' : String(value);
    return el('td', { class: column.key.endsWith('shape') ? 'kb-shape' : null, text });
  }

  updateFolding() {
    for (const row of this.rows || []) {
      row.tr.hidden = row.ancestors.some((p) => this.closed.has(p));
      if (row.button) row.button.setAttribute('aria-expanded', String(!this.closed.has(row.path)));
    }
  }
}

/** A TensorFlow op graph (a GraphDef): its scopes collapsed, then opened at will. */
class OpGraphCard {
  constructor(run, tag, info) {
    this.run = run;
    this.tag = tag;
    this.step = el('span', { class: 'kb-card-sample' });
    this.body = el('div', { class: 'kb-graph-host' });
    this.note = el('p', { class: 'kb-card-note' });
    frameCard(this, info, 'kb-model-card kb-opgraph-card', [this.step], this.body, this.note);
  }

  setInfo(info) {
    refreshHeader(this, info);
  }

  async load() {
    const fetched = await fetchGraph(this, 'graph');
    if (fetched === null) return; // unchanged since it was drawn
    this.step.textContent =
      typeof fetched.step === 'number' ? `step ${fetched.step.toLocaleString()}` : '';
    showGraph(this, fetched.graph, this.body);
    this.root.dataset.state = fetched.graph.error !== undefined ? 'error' : 'ready';
  }
}

/**
 * Drop the copies of a run's model or graph, so each shows once: the Keras config
 * (`graph_keras_model`) of a run that has kboard's model summary (which holds that config with
 * shapes and parameter counts; kboard's callback writes both, the config for TensorBoard), and
 * a meta graph read before the run's GraphDef (TensorBoard keeps the GraphDef).
 */
function withoutCopies(tagsByRun) {
  const kept = {};
  for (const [run, tags] of Object.entries(tagsByRun)) {
    const infos = Object.entries(tags);
    const summarised = infos.some(([, info]) => info.plugin === 'kboard_model_summary');
    const graphDef = tags.graph_def && tags.graph_def.plugin === 'graphs';
    kept[run] = Object.fromEntries(
      infos.filter(
        ([tag, info]) =>
          !(summarised && info.plugin === 'graph_keras_model') &&
          !(graphDef && tag === 'meta_graph_def' && info.plugin === 'graphs'),
      ),
    );
  }
  return kept;
}

const viewSwitch = el(
  'span',
  { class: 'kb-segmented', role: 'group', 'aria-label': 'Show models as' },
  ['graph', 'table'].map((value) =>
    el('button', {
      type: 'button',
      class: 'kb-segment',
      'data-mview': value,
      text: value === 'graph' ? 'Graph' : 'Table',
      onclick: () => app.setState({ mview: value }),
    }),
  ),
);

const board = createBoard({
  kind: ['model', 'graph'],
  toolbar: [viewSwitch],
  closedKey: 'mclosed',
  gridClass: 'kb-grid--wide',
  emptyTitle: 'No model summaries or graphs yet',
  emptyLines: [
    'Train with Keras’s TensorBoard callback (it writes the model’s config) or kboard’s ' +
      'callback, which adds parameter counts and output shapes:',
    codeBlock(
      'from kboard.keras import KBoardCallback\n' +
        'model.fit(x, y, callbacks=[KBoardCallback("logs/run1")])',
    ),
    'TensorFlow op graphs show here too: tf.summary.trace_on(graph=True) then ' +
      'tf.summary.trace_export(...), or a tf.compat.v1 FileWriter given the graph.',
  ],
  keepTags: withoutCopies,
  makeCard: (run, tag, info) =>
    info && info.kind === 'graph' ? new OpGraphCard(run, tag, info) : new ModelCard(run, tag, info),
});

registerBoard('model', board, {
  bindSettings: () => {
    const sync = () => {
      for (const button of viewSwitch.querySelectorAll('button')) {
        button.setAttribute('aria-pressed', String(button.dataset.mview === app.state.mview));
      }
    };
    sync();
    return sync;
  },
  onState(keys) {
    if (!keys.has('mview')) return;
    for (const card of board.cards()) if (card.applyView) card.applyView();
  },
});
