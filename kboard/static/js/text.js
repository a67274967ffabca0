// The TEXT tab: a card per run and tag, its entries newest first with their step and time.
//
// The server renders markdown and sanitises it (nh3, TensorBoard's allowlist). This is the
// one place where the page inserts HTML: parsed in an inert <template>, cleaned again here
// (allowlisted tags and attributes only, no on* attributes, links only to http:, https:,
// mailto: or relative addresses), then adopted into the page. Images in texts become links:
// the page's CSP would block them anyway.

import { defineState, spec } from './app.js';
import { createBoard, frameCard, refreshHeader, registerBoard } from './board.js';
import { codeBlock, el, fetchJSON } from './util.js';

defineState('tclosed', spec.list()); // collapsed tag groups

const PAGE = 10; // entries shown at first, and added by "show older"

// The server's allowlist (kboard/text.py, from TensorBoard), by upper-case tag name.
const ALLOWED_TAGS = new Set(
  `UL OL LI P PRE CODE BLOCKQUOTE H1 H2 H3 H4 H5 H6 HR BR STRONG EM A IMG
   TABLE THEAD TBODY TD TR TH`.split(/\s+/),
);
const ALLOWED_ATTRIBUTES = { A: new Set(['href', 'title']), IMG: new Set(['src', 'title', 'alt']) };
// Dropped with what they hold; any other element not allowed is replaced by its content.
const DROP_WITH_CONTENT = new Set(
  'SCRIPT STYLE TEMPLATE IFRAME OBJECT EMBED SVG MATH NOSCRIPT'.split(' '),
);
const SAFE_SCHEMES = new Set(['http', 'https', 'mailto']);

/** Whether a URL is relative or uses http:, https: or mailto: (as a browser would parse it). */
export function isSafeURL(value) {
  // Browsers ignore ASCII whitespace and control characters inside a scheme ("java\tscript:").
  const compact = String(value).replace(/[\u0000-\u0020\u007f]/g, '');
  const match = /^([^/?#]*?):/.exec(compact);
  if (!match) return true; // relative
  return SAFE_SCHEMES.has(match[1].toLowerCase());
}

function isWebURL(value) {
  return /^https?:/i.test(String(value).trim());
}

/** Clean a parsed fragment in place (defence in depth behind the server's sanitiser). */
export function cleanFragment(fragment) {
  for (const node of [...fragment.querySelectorAll('*')]) {
    if (!fragment.contains(node)) continue; // inside an element already dropped
    const tag = node.tagName.toUpperCase();
    if (DROP_WITH_CONTENT.has(tag)) {
      node.remove();
      continue;
    }
    if (!ALLOWED_TAGS.has(tag)) {
      node.replaceWith(...node.childNodes); // keep the text, lose the element
      continue;
    }
    const allowed = ALLOWED_ATTRIBUTES[tag] || new Set();
    for (const { name, value } of [...node.attributes]) {
      const lower = name.toLowerCase();
      const bad =
        lower.startsWith('on') ||
        !allowed.has(lower) ||
        ((lower === 'href' || lower === 'src') && !isSafeURL(value));
      if (bad) node.removeAttribute(name);
    }
    if (tag === 'A') {
      node.setAttribute('rel', 'noopener noreferrer nofollow');
      if (isWebURL(node.getAttribute('href') || '')) node.setAttribute('target', '_blank');
    } else if (tag === 'IMG') {
      node.replaceWith(imageLink(node));
    }
  }
  return fragment;
}

/** An image in a text, as a link to it (or its description when it has no web address). */
function imageLink(img) {
  const src = img.getAttribute('src') || '';
  const label = `[image: ${img.getAttribute('alt') || img.getAttribute('title') || src || '?'}]`;
  if (src && isWebURL(src)) {
    return el('a', {
      class: 'kb-text-image',
      href: src,
      rel: 'noopener noreferrer nofollow',
      target: '_blank',
      text: label,
    });
  }
  return el('span', { class: 'kb-text-image', title: src, text: label });
}

/** Turn sanitised HTML from the server into nodes of this page. */
export function safeHTML(html) {
  const template = document.createElement('template');
  // Inert: nothing in a template's content runs or loads (an on* attribute, which the server
  // never sends, is also refused by the page's CSP, which logs that to the console).
  template.innerHTML = html;
  return document.adoptNode(cleanFragment(template.content));
}

function wallTimeText(seconds) {
  return typeof seconds === 'number' ? new Date(seconds * 1000).toLocaleString() : '';
}

class TextCard {
  constructor(run, tag, info) {
    this.run = run;
    this.tag = tag;
    this.limit = PAGE;
    this.entries = []; // newest first
    this.full = new Map(); // step -> full html, once "show all" was pressed
    this.nodes = new Map(); // step -> {html, node}
    this.list = el('ol', { class: 'kb-text-entries', reversed: true });
    this.more = el('button', { type: 'button', class: 'kb-text-more', hidden: true });
    this.more.addEventListener('click', () => {
      this.limit += PAGE;
      this.draw();
    });
    this.note = el('p', { class: 'kb-card-note' });
    frameCard(this, info, 'kb-text-card', [], this.list, this.more, this.note);
  }

  setInfo(info) {
    refreshHeader(this, info);
  }

  async load() {
    try {
      const data = await fetchJSON(
        `api/text?${new URLSearchParams({ run: this.run, tag: this.tag })}`,
      );
      this.entries = [...(data.entries || [])].reverse();
      this.note.textContent = '';
    } catch (err) {
      this.root.dataset.state = 'error';
      this.note.textContent = `Could not load this text: ${err.message}`;
      return;
    }
    this.draw();
  }

  draw() {
    const shown = this.entries.slice(0, this.limit);
    const keep = new Set(shown.map((e) => e.step));
    for (const step of [...this.nodes.keys()]) {
      if (!keep.has(step)) {
        this.nodes.get(step).node.remove();
        this.nodes.delete(step);
      }
    }
    let previous = null;
    for (const entry of shown) {
      const html = this.full.get(entry.step) ?? entry.html;
      const truncated = entry.truncated && !this.full.has(entry.step);
      let item = this.nodes.get(entry.step);
      if (
        !item ||
        item.html !== html ||
        item.truncated !== truncated ||
        item.time !== entry.wall_time
      ) {
        const node = this.entryNode(entry, html, truncated);
        if (item) item.node.replaceWith(node);
        item = { html, truncated, time: entry.wall_time, node };
        this.nodes.set(entry.step, item);
      }
      const expected = previous ? previous.nextSibling : this.list.firstChild;
      if (expected !== item.node) this.list.insertBefore(item.node, expected);
      previous = item.node;
    }
    const hidden = this.entries.length - shown.length;
    this.more.hidden = hidden <= 0;
    this.more.textContent =
      `Show ${Math.min(hidden, PAGE)} older (${hidden.toLocaleString()} ` +
      `${hidden === 1 ? 'entry' : 'entries'} not shown)`;
    this.root.dataset.state = this.entries.length ? 'ready' : 'empty';
    if (!this.entries.length) this.note.textContent = 'No entries yet.';
  }

  entryNode(entry, html, truncated) {
    const time = el('time', { class: 'kb-text-time', text: wallTimeText(entry.wall_time) });
    if (typeof entry.wall_time === 'number') {
      time.dateTime = new Date(entry.wall_time * 1000).toISOString();
    }
    const head = el(
      'div',
      { class: 'kb-text-head' },
      el('span', { class: 'kb-text-step', text: `step ${entry.step.toLocaleString()}` }),
      time,
    );
    const body = el('div', { class: 'kb-text-body' }, safeHTML(html));
    const node = el('li', { class: 'kb-text-entry' }, head, body);
    node.dataset.step = String(entry.step);
    if (truncated) {
      const button = el('button', { type: 'button', class: 'kb-text-all', text: 'Show all' });
      button.addEventListener('click', () => this.showAll(entry.step, button));
      node.append(el('p', { class: 'kb-text-cut' }, 'This text is long and was cut. ', button));
    }
    return node;
  }

  async showAll(step, button) {
    button.disabled = true;
    button.textContent = 'Loading…';
    const params = new URLSearchParams({
      run: this.run,
      tag: this.tag,
      step: String(step),
      full: '1',
    });
    try {
      const data = await fetchJSON(`api/text?${params}`);
      const entry = (data.entries || [])[0];
      if (entry) this.full.set(step, entry.html);
      this.draw();
    } catch (err) {
      button.disabled = false;
      button.textContent = 'Show all';
      this.note.textContent = `Could not load the full text: ${err.message}`;
    }
  }
}

const board = createBoard({
  kind: 'text',
  closedKey: 'tclosed',
  gridClass: 'kb-grid--text',
  emptyTitle: 'No text summaries yet',
  emptyLines: [
    'Log markdown with tf.summary.text or SummaryWriter.add_text; it appears here as soon ' +
      'as it is flushed.',
    codeBlock('writer.add_text("notes", "**lr** = 0.01", global_step=step)'),
  ],
  makeCard: (run, tag, info) => new TextCard(run, tag, info),
});

registerBoard('text', board);
