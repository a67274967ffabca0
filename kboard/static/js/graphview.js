// Graph drawing for the MODEL tab: a Keras layer graph or a TensorFlow op graph as SVG.
//
// Layout is ELK's layered algorithm (vendor/elk-worker-*.min.js, run in a Web Worker so a big
// layout never blocks the page); edges are routed orthogonally around the nodes. Nested models
// and name scopes are boxes that expand and collapse (each change lays the graph out again);
// an op graph opens with every scope collapsed, so a graph of 10,000 ops opens as a few boxes.
// A graph opens at a readable size (its top when it is taller than that), pan with a drag, the
// arrow keys or the buttons, zoom with the wheel, +/- or the buttons, 0 (Fit) shows it all, Enter opens or closes the selected box (search selects one by name). Every name is
// SVG text (textContent), never parsed as markup.
//
// new GraphView({onSelect}) gives .root; view.show(graph) takes /api/graph's `graph`.

import { el } from './util.js';

const SVG = 'http://www.w3.org/2000/svg';
const ELK_WORKER = new URL('../vendor/elk-worker-0.12.1.min.js', import.meta.url);
const LAYOUT = {
  'elk.algorithm': 'layered',
  'elk.direction': 'DOWN',
  'elk.hierarchyHandling': 'SEPARATE_CHILDREN',
  'elk.edgeRouting': 'ORTHOGONAL',
  'elk.layered.nodePlacement.strategy': 'BRANDES_KOEPF',
  'elk.layered.considerModelOrder.strategy': 'NODES_AND_EDGES',
  'elk.layered.spacing.nodeNodeBetweenLayers': '28',
  'elk.spacing.nodeNode': '18',
  'elk.json.shapeCoords': 'ROOT',
  'elk.json.edgeCoords': 'ROOT',
};
const GROUP_PADDING = '[top=30,left=12,bottom=12,right=12]';
const MAX_SCOPE_LEAVES = 120; // more ops than this directly in a scope: boxed by op type
const PART = 100; // ops a part of a box of one op type (see inParts)
const MAX_BOXES = 3000; // more boxes than this at once are not laid out (see relayout)
const HUB_LINKS = 12; // a box joined to more boxes than this is a hub (see elkGraph)
const LINE = 15;
const READABLE_ZOOM = 0.75; // a graph opens no smaller than this (9 px text); Fit shows all
// Light fills for op types or devices: a graph's commonest ones get one each (see palette),
// any more by a hash of the name.
// prettier-ignore
const FILLS = [
  '#dbe8f6', '#fde2c8', '#f9d3d3', '#d5ecea', '#d9eed5', '#f3ebc6', '#eadcea', '#f7dbe6',
  '#e7ddd5', '#e4e2e0', '#e0d4f7', '#e9f3c9',
];

// -- ELK in a worker ----------------------------------------------------------------------
let worker = null;
let nextId = 0;
const pending = new Map();

/** Start the layout worker (loading ELK takes a moment): done as soon as a view exists. */
function warm() {
  if (!worker) post({ cmd: 'algorithms' }).catch(() => {});
}

function post(message) {
  if (!worker) {
    worker = new Worker(ELK_WORKER);
    worker.onmessage = (event) => {
      const { id, data, error } = event.data || {};
      const waiting = pending.get(id);
      if (!waiting) return;
      pending.delete(id);
      if (error) waiting.reject(new Error(error.message || String(error)));
      else waiting.resolve(data);
    };
    worker.onerror = (event) => {
      for (const waiting of pending.values())
        waiting.reject(new Error(event.message || 'layout failed'));
      pending.clear();
      worker = null;
    };
    post({ cmd: 'register', algorithms: ['layered'] });
  }
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    worker.postMessage({ ...message, id });
  });
}

function countBoxes(node) {
  let n = 0;
  for (const child of node.children || []) n += 1 + countBoxes(child);
  return n;
}

function elkLayout(graph) {
  return post({ cmd: 'layout', graph, layoutOptions: LAYOUT, options: {} }); // every box's
}

// -- text measurement ---------------------------------------------------------------------
let measurer = null;
function textWidth(text, bold = false) {
  if (!measurer) measurer = document.createElement('canvas').getContext('2d');
  measurer.font = `${bold ? '600 ' : ''}12px system-ui, -apple-system, "Segoe UI", sans-serif`;
  return measurer.measureText(text).width;
}

function clip(text, max = 40) {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function hubText(links) {
  return `⇄ ${count(links)} links, not drawn`;
}

function fillFor(key) {
  let h = 0;
  for (let i = 0; i < key.length; i++) h = (h * 31 + key.charCodeAt(i)) | 0;
  return FILLS[Math.abs(h) % FILLS.length];
}

/** A fill for each of names (ids holds each op's index into it): the commonest first. */
function palette(names, ids) {
  const counts = new Array(names.length).fill(0);
  for (const id of ids) counts[id] += 1;
  const order = names.map((_, i) => i).sort((a, b) => counts[b] - counts[a] || a - b);
  return new Map(order.slice(0, FILLS.length).map((i, rank) => [names[i], FILLS[rank]]));
}

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) node.setAttribute(key, String(value));
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function svgText(x, y, text, cls) {
  const node = svg('text', { x, y, class: cls });
  node.textContent = text;
  return node;
}

const NUMBER = new Intl.NumberFormat(); // toLocaleString() per call is slow for 10,000 boxes

function count(n) {
  return typeof n === 'number' ? NUMBER.format(n) : '–';
}

// -- the two graph shapes as one tree of items ----------------------------------------------
// item: {id, name, label, sub, info, parent, children, group, color, details}
function fromLayers(graph) {
  const items = new Map();
  for (const node of graph.nodes) {
    const info = [node.output_shape, node.params != null ? `${count(node.params)} params` : null]
      .filter(Boolean)
      .join(' · ');
    items.set(node.id, {
      id: node.id,
      name: node.name,
      label: node.name,
      sub: node.calls > 1 ? `${node.class} ×${node.calls}` : node.class,
      info,
      parent: node.parent,
      children: [],
      group: false,
      kind: node.class === 'InputLayer' ? 'input' : node.output ? 'output' : '',
      color: null,
      details: [
        ['Class', node.class],
        ['Output shape', node.output_shape],
        ['Parameters', node.params != null ? count(node.params) : null],
        ['Uses', node.calls > 1 ? String(node.calls) : null],
        ['Trainable', node.trainable === false ? 'no (frozen)' : null],
      ],
      config: node.config || '',
      layer: node,
    });
  }
  for (const item of items.values()) {
    const parent = item.parent && items.get(item.parent);
    if (parent) {
      parent.children.push(item.id);
      parent.group = true;
    }
    item.path = parent ? `${parent.path}/${item.name}` : item.name; // parents come first
  }
  const edges = graph.edges.map((e) => ({
    source: e.source,
    target: e.target,
    label: e.shape || '',
    control: false,
  }));
  return { items, edges, ops: false };
}

/** Box a box's children in parts of PART while it holds more than MAX_SCOPE_LEAVES. */
function inParts(items, boxId, namePrefix) {
  let level = items.get(boxId).children;
  for (let depth = 0; level.length > MAX_SCOPE_LEAVES; depth++) {
    const next = [];
    for (let k = 0; k < level.length; k += PART) {
      const part = level.slice(k, k + PART);
      const id = `${boxId}#${depth}:${next.length}`;
      const label = `part ${next.length + 1}`;
      items.set(id, {
        id,
        name: `${namePrefix} ${label}${depth ? ` (level ${depth + 1})` : ''}]`,
        label,
        parent: boxId,
        children: part,
        group: true,
        details: [],
        config: '',
      });
      for (const child of part) items.get(child).parent = id;
      next.push(id);
    }
    level = next;
  }
  items.get(boxId).children = level;
}

function fromOps(graph) {
  const items = new Map();
  const scopeOf = (name) => {
    const cut = name.lastIndexOf('/');
    return cut > 0 ? name.slice(0, cut) : null;
  };
  const ensureScope = (scope) => {
    const id = `s:${scope}`;
    if (items.has(id)) return id;
    const parentScope = scopeOf(scope);
    const parent = parentScope ? ensureScope(parentScope) : null;
    items.set(id, {
      id,
      name: scope,
      label: scope.slice(scope.lastIndexOf('/') + 1),
      parent,
      children: [],
      group: true,
      ops: 0,
      details: [],
      config: '',
    });
    if (parent) items.get(parent).children.push(id);
    return id;
  };
  const n = graph.names.length;
  for (let i = 0; i < n; i++) {
    const name = graph.names[i];
    const scope = scopeOf(name);
    const parent = scope ? ensureScope(scope) : null;
    const op = graph.ops[graph.op[i]];
    const device = graph.devices[graph.device[i]] || '';
    const item = {
      id: `o:${i}`,
      name,
      label: name.slice(name.lastIndexOf('/') + 1),
      sub: op,
      info: graph.shapes[i] || '',
      parent,
      children: [],
      group: false,
      op,
      device,
      details: [
        ['Op', op],
        ['Device', device || null],
        ['Output shapes', graph.shapes[i]],
      ],
      config: graph.attrs[i] || '',
    };
    items.set(item.id, item);
    if (parent) items.get(parent).children.push(item.id);
  }
  // A scope with very many ops directly in it: its ops are boxed by op type.
  const roots = [...items.values()].filter((i) => !i.parent).map((i) => i.id);
  const byScope = [{ id: null, children: roots }, ...[...items.values()].filter((i) => i.group)];
  for (const scope of byScope) {
    const leaves = scope.children.filter((id) => !items.get(id).group);
    if (leaves.length <= MAX_SCOPE_LEAVES) continue;
    const byOp = new Map();
    for (const id of leaves) {
      const op = items.get(id).op;
      if (!byOp.has(op)) byOp.set(op, []);
      byOp.get(op).push(id);
    }
    for (const [op, ids] of byOp) {
      if (ids.length < 2) continue;
      const id = `t:${scope.id || ''}:${op}`;
      const prefix = scope.id ? `${items.get(scope.id).name}/` : '';
      items.set(id, {
        id,
        name: `${prefix}[${op} ×${ids.length}]`,
        label: `${op} ×${ids.length}`,
        parent: scope.id,
        children: ids,
        group: true,
        details: [],
        config: '',
      });
      for (const child of ids) items.get(child).parent = id;
      inParts(items, id, `${prefix}[${op}`);
      const moved = new Set(ids);
      scope.children = scope.children.filter((c) => !moved.has(c));
      scope.children.push(id);
      if (scope.id) items.get(scope.id).children = scope.children;
    }
    if (!scope.id) roots.splice(0, roots.length, ...scope.children);
  }
  const edges = [];
  const flat = graph.edges;
  for (let k = 0; k + 2 < flat.length; k += 3) {
    edges.push({
      source: `o:${flat[k]}`,
      target: `o:${flat[k + 1]}`,
      label: graph.shapes[flat[k]] || '',
      control: flat[k + 2] === 1,
    });
  }
  // Count the ops under each scope, for its label.
  for (const item of items.values()) {
    if (item.group) continue;
    for (let p = item.parent; p; p = items.get(p).parent)
      items.get(p).ops = (items.get(p).ops || 0) + 1;
  }
  for (const item of items.values()) {
    if (!item.group) continue;
    item.sub = `${count(item.ops)} op${item.ops === 1 ? '' : 's'}`;
    item.details = [['Ops inside', count(item.ops)]];
  }
  return { items, edges, ops: true };
}

// -- the view ------------------------------------------------------------------------------
let nextView = 0;

export class GraphView {
  constructor({ onSelect } = {}) {
    this.onSelect = onSelect || (() => {});
    this.expanded = new Set();
    this.view = { x: 0, y: 0, k: 1 };
    this.layoutToken = 0;
    this.search = el('input', {
      type: 'search',
      class: 'kb-graph-search',
      placeholder: 'Find a node by name',
      'aria-label': 'Find a node by name',
    });
    this.found = el('span', { class: 'kb-muted kb-graph-found', 'aria-live': 'polite' });
    this.colorBy = el(
      'select',
      { class: 'kb-graph-color', 'aria-label': 'Colour ops by', hidden: true },
      el('option', { value: 'op', text: 'Colour by op type' }),
      el('option', { value: 'device', text: 'Colour by device' }),
    );
    const button = (text, label, fn) =>
      el('button', {
        type: 'button',
        class: 'kb-graph-button',
        title: label,
        'aria-label': label,
        text,
        onclick: fn,
      });
    this.toolbar = el(
      'div',
      { class: 'kb-graph-toolbar' },
      this.search,
      this.found,
      this.colorBy,
      el(
        'span',
        { class: 'kb-graph-buttons' },
        button('+', 'Zoom in', () => this.zoomBy(1.25)),
        button('−', 'Zoom out', () => this.zoomBy(0.8)),
        button('Fit', 'Fit the graph', () => this.fit()),
        button('Expand all', 'Expand every box', () => this.setAll(true)),
        button('Collapse all', 'Collapse every box', () => this.setAll(false)),
      ),
    );
    this.viewport = svg('g', { class: 'kb-graph-viewport' });
    // An id of its own: a marker in a hidden SVG draws nothing for the others that use it.
    this.arrow = `kb-arrow-${nextView++}`;
    this.svg = svg(
      'svg',
      { class: 'kb-graph-svg', role: 'group', 'aria-label': 'Model graph' },
      svg(
        'defs',
        {},
        svg(
          'marker',
          {
            id: this.arrow,
            viewBox: '0 0 8 8',
            refX: 8,
            refY: 4,
            markerUnits: 'userSpaceOnUse', // one size, however thick the edge
            markerWidth: 8,
            markerHeight: 8,
            orient: 'auto',
          },
          svg('path', { d: 'M0,0 L8,4 L0,8 z', class: 'kb-graph-arrow' }),
        ),
      ),
      this.viewport,
    );
    const keys =
      'Graph: arrow keys pan, + and − zoom, 0 fits, N and P select the next and previous box, ' +
      'Enter opens or closes the selected box';
    this.canvas = el('div', {
      class: 'kb-graph-canvas',
      tabindex: '0',
      title: keys,
      'aria-label': keys,
    });
    this.canvas.append(this.svg);
    this.status = el('p', { class: 'kb-card-note kb-graph-status' });
    this.legend = el('div', { class: 'kb-graph-legend' });
    this.details = el('div', { class: 'kb-graph-details', hidden: true });
    this.root = el(
      'div',
      { class: 'kb-graph' },
      this.toolbar,
      this.canvas,
      this.legend,
      this.status,
      this.details,
    );
    this.bindInput();
    warm();
  }

  /** Draw /api/graph's graph (a layer graph or an op graph); keeps expansion when it can. */
  show(graph) {
    const model = graph.kind === 'ops' ? fromOps(graph) : fromLayers(graph);
    this.model = model;
    this.palettes =
      graph.kind === 'ops'
        ? {
            op: palette(graph.ops, graph.op),
            device: palette(
              graph.devices.map((d) => d || '(no device)'),
              graph.device,
            ),
          }
        : null;
    this.colorBy.hidden = !model.ops;
    for (const id of [...this.expanded]) if (!model.items.has(id)) this.expanded.delete(id);
    this.selected = null;
    this.details.hidden = true;
    this.note = graph.note || '';
    this.matches = [];
    this.found.textContent = '';
    this.fitNext = 'readable';
    return this.relayout();
  }

  // -- layout ------------------------------------------------------------------------------
  /** The visible item that stands for id: its highest collapsed ancestor, or itself. */
  visible(id) {
    const { items } = this.model;
    let shown = id;
    for (let p = items.get(id).parent; p; p = items.get(p).parent) {
      if (!this.expanded.has(p)) shown = p;
    }
    return shown;
  }

  elkGraph() {
    const { items } = this.model;
    for (const item of items.values()) item.hubLinks = 0;
    const nodes = new Map(); // id -> elk node
    const make = (item) => {
      if (item.group && this.expanded.has(item.id)) {
        const node = {
          id: item.id,
          layoutOptions: { 'elk.padding': GROUP_PADDING },
          children: item.children.map((c) => make(items.get(c))),
          edges: [],
        };
        nodes.set(item.id, node);
        return node;
      }
      const label = (item.group ? '+ ' : '') + clip(item.label);
      const lines = [item.sub || '', item.info || ''].filter(Boolean).map((s) => clip(s, 48));
      const width = Math.max(textWidth(label, true), ...lines.map((s) => textWidth(s))) + 22;
      const node = {
        id: item.id,
        width: Math.max(60, Math.ceil(width)),
        height: 12 + LINE * (1 + lines.length),
      };
      nodes.set(item.id, node);
      return node;
    };
    const top = [...items.values()].filter((i) => !i.parent);
    const root = { id: '\u0000root', children: top.map(make), edges: [] };
    // Each box is laid out on its own (fast at any size, as TensorBoard lays out each scope):
    // an edge is drawn in the lowest box holding both ends, between the boxes there that
    // hold them, so an edge into an open scope meets the scope's box.
    const chain = (id) => {
      const out = [id];
      for (let p = items.get(id).parent; p; p = items.get(p).parent) out.push(p);
      return out;
    };
    const chains = new Map();
    const chainOf = (id) => {
      if (!chains.has(id)) chains.set(id, chain(this.visible(id)));
      return chains.get(id);
    };
    const merged = new Map();
    for (const edge of this.model.edges) {
      if (!items.has(edge.source) || !items.has(edge.target)) continue;
      const up = chainOf(edge.source);
      const down = chainOf(edge.target);
      const inUp = new Set(up);
      const shared = down.findIndex((id) => inUp.has(id));
      const box = shared >= 0 ? down[shared] : null;
      const b = shared >= 0 ? down[shared - 1] : down[down.length - 1];
      const a = box === null ? up[up.length - 1] : up[up.indexOf(box) - 1];
      if (a === undefined || b === undefined || a === b) continue;
      const key = `${a}\u0000${b}`;
      let entry = merged.get(key);
      if (!entry) {
        entry = { a, b, box, labels: new Set(), count: 0, control: true };
        merged.set(key, entry);
      }
      entry.count += 1;
      entry.control = entry.control && edge.control;
      if (edge.label) entry.labels.add(edge.label);
    }
    // Hubs (a box joined to very many others, like TensorFlow's `gradients` or `init`) are
    // laid out beside the graph, their edges listed on the box rather than drawn across the
    // whole graph, as TensorBoard sets such nodes aside.
    const neighbours = new Map();
    for (const { a, b } of merged.values()) {
      if (!neighbours.has(a)) neighbours.set(a, new Set());
      if (!neighbours.has(b)) neighbours.set(b, new Set());
      neighbours.get(a).add(b);
      neighbours.get(b).add(a);
    }
    this.hubs = new Map();
    for (const [id, linked] of neighbours) {
      if (linked.size <= HUB_LINKS) continue;
      this.hubs.set(id, linked);
      items.get(id).hubLinks = linked.size;
      const node = nodes.get(id);
      if (node.children) continue; // an open box says so in its header
      node.height += LINE; // room for "⇄ N links" (see nodeBox)
      node.width = Math.max(node.width, Math.ceil(textWidth(hubText(linked.size)) + 22));
    }
    this.edgeInfo = new Map();
    let k = 0;
    for (const entry of merged.values()) {
      if (this.hubs.has(entry.a) || this.hubs.has(entry.b)) continue;
      const id = `e${k++}`;
      const container = entry.box === null ? root : nodes.get(entry.box);
      container.edges.push({ id, sources: [entry.a], targets: [entry.b] });
      this.edgeInfo.set(id, entry);
    }
    return root;
  }

  async relayout(anchor = null) {
    const token = ++this.layoutToken;
    const started = performance.now();
    this.root.dataset.state = 'layout';
    this.status.textContent = 'Laying out…';
    let result;
    const graph = this.elkGraph();
    const boxes = countBoxes(graph);
    if (boxes > MAX_BOXES && this.before) {
      // Too many boxes to lay out and read: undo the opening that asked for them.
      this.expanded = this.before;
      this.before = null;
      await this.relayout();
      this.status.textContent =
        `Opening that would show ${count(boxes)} boxes, more than ${count(MAX_BOXES)} ` +
        'at once: open the boxes inside one by one.';
      return;
    }
    this.before = null;
    try {
      result = await elkLayout(graph);
    } catch (err) {
      if (token !== this.layoutToken) return;
      this.root.dataset.state = 'error';
      this.status.textContent = `This graph could not be laid out: ${err.message}`;
      return;
    }
    if (token !== this.layoutToken) return;
    const before = anchor && this.screenOf(anchor);
    this.draw(result);
    const ms = performance.now() - started;
    this.root.dataset.layoutMs = String(Math.round(ms));
    if (this.fitNext) {
      this.fit({ readable: this.fitNext === 'readable' });
      this.fitNext = false;
    } else if (before) {
      const after = this.screenOf(anchor);
      if (after) this.pan(before.x - after.x, before.y - after.y);
    }
    const visible = this.viewport.querySelectorAll('.kb-gnode').length;
    this.status.textContent =
      `${count(visible)} ${visible === 1 ? 'box' : 'boxes'} shown of ` +
      `${count(this.model.items.size)} ` +
      `${this.model.ops ? 'ops and scopes' : 'layers'}` +
      (this.note ? ` · ${this.note}` : '');
    this.root.dataset.state = 'ready';
  }

  draw(layout) {
    const { items } = this.model;
    this.positions = new Map();
    const groups = svg('g', { class: 'kb-graph-groups' });
    const edges = svg('g', { class: 'kb-graph-edges' });
    const nodes = svg('g', { class: 'kb-graph-nodes' });
    const colorKey = this.colorBy.value;
    const used = new Map();
    const walk = (node) => {
      for (const child of node.children || []) {
        const item = items.get(child.id);
        this.positions.set(child.id, child);
        if (child.children) {
          groups.append(this.groupBox(item, child));
          walk(child);
        } else {
          const fill = this.fill(item, colorKey);
          if (fill && !item.group) used.set(fill.key, fill.color);
          nodes.append(this.nodeBox(item, child, fill && fill.color));
        }
      }
      for (const edge of node.edges || []) edges.append(this.edgePath(edge));
    };
    walk(layout);
    this.size = { w: layout.width || 0, h: layout.height || 0 };
    this.viewport.replaceChildren(groups, edges, nodes);
    this.drawLegend(used);
    if (this.selected) this.mark(this.selected, 'kb-gnode--selected');
  }

  fill(item, key) {
    if (!this.model.ops || item.group) return null;
    const value = key === 'device' ? item.device || '(no device)' : item.op;
    const color = this.palettes && this.palettes[key === 'device' ? 'device' : 'op'].get(value);
    return { key: value, color: color || fillFor(value) };
  }

  drawLegend(used) {
    if (!this.model.ops) {
      this.legend.replaceChildren();
      return;
    }
    const entries = [...used].sort((a, b) => (a[0] < b[0] ? -1 : 1)).slice(0, 24);
    this.legend.replaceChildren(
      ...entries.map(([key, color]) => {
        const swatch = el('span', { class: 'kb-swatch', 'aria-hidden': 'true' });
        swatch.style.background = color;
        return el('span', { class: 'kb-graph-key' }, swatch, el('span', { text: key }));
      }),
    );
  }

  groupBox(item, node) {
    const g = svg('g', {
      class: 'kb-ggroup',
      'data-id': item.id,
      'data-name': item.name,
      role: 'button',
      tabindex: '-1',
      'aria-expanded': 'true',
      'aria-label': `${item.name}: collapse`,
    });
    g.append(
      svg('rect', { x: node.x, y: node.y, width: node.width, height: node.height, rx: 6 }),
      svgText(node.x + 10, node.y + 18, `− ${clip(item.label, 60)}`, 'kb-ggroup-label'),
      svgText(
        node.x + 10 + textWidth(`− ${clip(item.label, 60)}`, true) + 8,
        node.y + 18,
        [item.sub, item.hubLinks ? hubText(item.hubLinks) : ''].filter(Boolean).join(' · '),
        'kb-ggroup-sub',
      ),
    );
    const title = svg('title');
    title.textContent = item.name;
    g.prepend(title);
    return g;
  }

  nodeBox(item, node, fill) {
    const classes = ['kb-gnode'];
    const hub = item.hubLinks ? hubText(item.hubLinks) : '';
    if (hub) classes.push('kb-gnode--hub');
    if (item.group) classes.push('kb-gnode--group');
    if (item.kind) classes.push(`kb-gnode--${item.kind}`);
    const g = svg('g', {
      class: classes.join(' '),
      'data-id': item.id,
      'data-name': item.name,
      transform: `translate(${node.x},${node.y})`,
    });
    if (item.group) {
      g.setAttribute('role', 'button');
      g.setAttribute('aria-expanded', 'false');
      g.setAttribute('aria-label', `${item.name}: expand`);
    }
    const title = svg('title');
    title.textContent = [item.name, item.sub, item.info].filter(Boolean).join('\n');
    const rect = svg('rect', { width: node.width, height: node.height, rx: item.group ? 8 : 4 });
    if (fill) rect.style.fill = fill;
    g.append(title);
    if (item.group) {
      // A second outline behind: a box that holds more.
      const attrs = { class: 'kb-gnode-stack', x: 3, y: 3, rx: 8 };
      g.append(svg('rect', { ...attrs, width: node.width, height: node.height }));
    }
    g.append(rect);
    const sub = [item.sub, item.info, hub]
      .filter(Boolean)
      .map((s) => [clip(s, 48), 'kb-gnode-sub']);
    const lines = [[(item.group ? '+ ' : '') + clip(item.label), 'kb-gnode-name'], ...sub];
    lines.forEach(([text, cls], i) => g.append(svgText(11, 3 + LINE * (i + 1), text, cls)));
    return g;
  }

  edgePath(edge) {
    const info = this.edgeInfo.get(edge.id);
    const section = (edge.sections || [])[0];
    if (!section || !info) return null;
    const points = [section.startPoint, ...(section.bendPoints || []), section.endPoint];
    const d = points.map((p, i) => `${i ? 'L' : 'M'}${p.x},${p.y}`).join(' ');
    const classes = ['kb-gedge'];
    if (info.control) classes.push('kb-gedge--control');
    if (info.count > 1) classes.push('kb-gedge--many');
    const path = svg('path', {
      d,
      class: classes.join(' '),
      'marker-end': `url(#${this.arrow})`,
      'data-source': info.a,
      'data-target': info.b,
    });
    const labels = [...info.labels];
    const title = svg('title');
    title.textContent =
      (info.count > 1 ? `${info.count} tensors` : 'tensor') +
      (info.control ? ' (control dependency)' : '') +
      (labels.length ? `: ${labels.slice(0, 6).join(', ')}` : '');
    path.append(title);
    // A wide invisible stroke makes the thin edge easy to hover.
    const g = svg('g', { class: 'kb-gedge-hit' }, path);
    return g;
  }

  // -- interaction -----------------------------------------------------------------------
  toggle(id) {
    this.before = new Set(this.expanded);
    if (this.expanded.has(id)) this.expanded.delete(id);
    else this.expanded.add(id);
    return this.relayout(id);
  }

  setAll(open) {
    if (!this.model) return undefined;
    this.before = new Set(this.expanded);
    this.expanded = open
      ? new Set([...this.model.items.values()].filter((i) => i.group).map((i) => i.id))
      : new Set();
    this.fitNext = true;
    return this.relayout();
  }

  select(id) {
    const item = this.model.items.get(id);
    if (!item) return;
    this.selected = id;
    for (const node of this.viewport.querySelectorAll('.kb-gnode--selected')) {
      node.classList.remove('kb-gnode--selected');
    }
    this.mark(id, 'kb-gnode--selected');
    for (const node of this.viewport.querySelectorAll('.kb-gnode--linked')) {
      node.classList.remove('kb-gnode--linked');
    }
    const linked = (this.hubs && this.hubs.get(id)) || new Set();
    for (const other of linked) this.mark(other, 'kb-gnode--linked');
    const names = [...linked].map((other) => this.model.items.get(other).name).sort();
    const rows = [
      ...item.details,
      ['Links (not drawn)', names.length ? clip(names.join(', '), 600) : null],
    ].filter(([, v]) => v !== null && v !== undefined && v !== '');
    this.details.replaceChildren(
      el('h4', { class: 'kb-graph-details-name', text: item.name }),
      el(
        'dl',
        {},
        rows.map(([k, v]) => el('div', {}, el('dt', { text: k }), el('dd', { text: v }))),
      ),
      ...(item.config ? [el('pre', { class: 'kb-graph-config', text: item.config })] : []),
    );
    this.details.hidden = false;
    this.onSelect(item);
  }

  /** Select the next (1) or previous (-1) box drawn, top to bottom, and bring it into view. */
  selectStep(step) {
    if (!this.model || !this.positions) return;
    const at = (id) => this.positions.get(id);
    const ids = [...this.viewport.querySelectorAll('.kb-gnode')]
      .map((node) => node.dataset.id)
      .filter((id) => at(id))
      .sort((a, b) => at(a).y - at(b).y || at(a).x - at(b).x);
    if (!ids.length) return;
    const now = ids.indexOf(this.selected);
    const next = now < 0 ? (step > 0 ? 0 : ids.length - 1) : (now + step + ids.length) % ids.length;
    this.centerOn(ids[next]);
    this.select(ids[next]);
  }

  mark(id, cls) {
    const node = this.viewport.querySelector(`[data-id="${CSS.escape(id)}"]`);
    if (node) node.classList.add(cls);
  }

  /** Find nodes whose name contains the query; each Enter shows the next one. */
  async findNext() {
    const query = this.search.value.trim().toLowerCase();
    if (!query || !this.model) {
      this.found.textContent = '';
      return;
    }
    if (query !== this.lastQuery) {
      this.lastQuery = query;
      this.matches = [...this.model.items.values()]
        .filter((i) => i.name.toLowerCase().includes(query))
        .map((i) => i.id);
      this.matchIndex = -1;
    }
    if (!this.matches.length) {
      this.found.textContent = 'no match';
      return;
    }
    this.matchIndex = (this.matchIndex + 1) % this.matches.length;
    const id = this.matches[this.matchIndex];
    this.found.textContent = `${this.matchIndex + 1} of ${this.matches.length}`;
    let opened = false;
    for (let p = this.model.items.get(id).parent; p; p = this.model.items.get(p).parent) {
      if (!this.expanded.has(p)) {
        this.expanded.add(p);
        opened = true;
      }
    }
    if (opened) await this.relayout();
    for (const node of this.viewport.querySelectorAll('.kb-gnode--found')) {
      node.classList.remove('kb-gnode--found');
    }
    this.mark(id, 'kb-gnode--found');
    this.centerOn(id);
    this.select(id);
  }

  bindInput() {
    this.search.addEventListener('keydown', (event) => {
      if (event.key === 'Enter') {
        event.preventDefault();
        this.findNext();
      }
    });
    this.search.addEventListener('input', () => {
      this.lastQuery = null;
      this.found.textContent = '';
    });
    this.colorBy.addEventListener('change', () => this.relayout());
    this.svg.addEventListener('click', (event) => {
      if (this.dragged) return;
      const target = event.target.closest('[data-id]');
      if (!target) return;
      const id = target.dataset.id;
      const item = this.model.items.get(id);
      if (
        item.group &&
        (target.classList.contains('kb-ggroup') ? event.target.closest('text') : true)
      ) {
        this.toggle(id);
      }
      this.select(id);
    });
    this.canvas.addEventListener(
      'wheel',
      (event) => {
        event.preventDefault();
        const box = this.canvas.getBoundingClientRect();
        this.zoomBy(
          Math.exp(-event.deltaY * 0.0015),
          event.clientX - box.left,
          event.clientY - box.top,
        );
      },
      { passive: false },
    );
    let drag = null;
    this.canvas.addEventListener('pointerdown', (event) => {
      if (event.button !== 0) return;
      drag = { x: event.clientX, y: event.clientY, moved: 0 };
      this.dragged = false;
    });
    this.canvas.addEventListener('pointermove', (event) => {
      if (!drag) return;
      const dx = event.clientX - drag.x;
      const dy = event.clientY - drag.y;
      drag.moved += Math.abs(dx) + Math.abs(dy);
      if (drag.moved > 4) {
        if (!this.dragged) this.canvas.setPointerCapture(event.pointerId);
        this.dragged = true;
        this.pan(dx, dy);
      }
      drag.x = event.clientX;
      drag.y = event.clientY;
    });
    const end = () => {
      drag = null;
      setTimeout(() => {
        this.dragged = false;
      }, 0);
    };
    this.canvas.addEventListener('pointerup', end);
    this.canvas.addEventListener('pointercancel', end);
    this.canvas.addEventListener('keydown', (event) => {
      const step = 60;
      const keys = {
        '+': () => this.zoomBy(1.25),
        '=': () => this.zoomBy(1.25),
        '-': () => this.zoomBy(0.8),
        0: () => this.fit(),
        ArrowLeft: () => this.pan(step, 0),
        ArrowRight: () => this.pan(-step, 0),
        ArrowUp: () => this.pan(0, step),
        ArrowDown: () => this.pan(0, -step),
        n: () => this.selectStep(1),
        N: () => this.selectStep(-1),
        p: () => this.selectStep(-1),
        Enter: () => {
          const item = this.selected && this.model.items.get(this.selected);
          if (item && item.group) this.toggle(item.id); // open or close the selected box
        },
      };
      const fn = keys[event.key];
      if (fn) {
        event.preventDefault();
        fn();
      }
    });
  }

  // -- pan and zoom ----------------------------------------------------------------------
  apply() {
    const { x, y, k } = this.view;
    this.viewport.setAttribute('transform', `translate(${x},${y}) scale(${k})`);
    this.root.dataset.zoom = k.toFixed(3);
  }

  pan(dx, dy) {
    this.view.x += dx;
    this.view.y += dy;
    this.apply();
  }

  zoomBy(factor, cx, cy) {
    const box = this.canvas.getBoundingClientRect();
    const px = cx === undefined ? box.width / 2 : cx;
    const py = cy === undefined ? box.height / 2 : cy;
    const k = Math.min(4, Math.max(0.05, this.view.k * factor));
    const real = k / this.view.k;
    this.view.x = px - (px - this.view.x) * real;
    this.view.y = py - (py - this.view.y) * real;
    this.view.k = k;
    this.apply();
  }

  /** Show the whole graph; with readable, no smaller than READABLE_ZOOM (its top, then). */
  fit({ readable = false } = {}) {
    const box = this.canvas.getBoundingClientRect();
    const { w, h } = this.size || { w: 0, h: 0 };
    if (!w || !h || !box.width) {
      this.view = { x: 0, y: 0, k: 1 };
    } else {
      let k = Math.min(1.2, Math.max(0.05, Math.min(box.width / w, box.height / h) * 0.95));
      if (readable) k = Math.max(k, READABLE_ZOOM);
      this.view = { x: (box.width - w * k) / 2, y: Math.max(4, (box.height - h * k) / 2), k };
    }
    this.apply();
  }

  screenOf(id) {
    const p = this.positions && this.positions.get(id);
    if (!p) return null;
    return { x: this.view.x + p.x * this.view.k, y: this.view.y + p.y * this.view.k };
  }

  centerOn(id) {
    const p = this.positions && this.positions.get(id);
    if (!p) return;
    const box = this.canvas.getBoundingClientRect();
    this.view.k = Math.max(this.view.k, 0.6);
    this.view.x = box.width / 2 - (p.x + (p.width || 0) / 2) * this.view.k;
    this.view.y = box.height / 2 - (p.y + (p.height || 0) / 2) * this.view.k;
    this.apply();
  }
}
