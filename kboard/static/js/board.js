// Boards: the layout of every tab. A board lists the tags of one summary kind for the
// selected runs, filtered by the tag filter, in collapsible groups by tag prefix, as one card
// per run and tag (IMAGES, HISTOGRAMS, DISTRIBUTIONS, TEXT, MODEL) or, with byTag, one card
// per tag over all the selected runs that have it (SCALARS). Cards fetch only when on (or
// near) the screen, and again after a live update.
//
// createBoard({kind, closedKey, emptyTitle, emptyLines, gridClass, makeCard, ...}) returns
// the hooks for registerTab (init, show, hide, onData, onState) and a few for the tab itself
// (redraw, refetch, reload, cards, runsWithTag, tagRunCount); registerBoard(id, board, ...)
// makes it a tab. kind picks /api/tags/<kind> (a list of kinds: their tags together, each info
// with its kind); closedKey is a list state key for the collapsed groups.
// makeCard(run, tag, info) returns {root, watch?, load(), redraw?(), destroy?(),
// setInfo?(info)}: root goes into the grid, watch (default root) is observed for visibility
// and marked while loading; load() fetches and draws, handling its own errors. With byTag,
// run is null and the card asks runsWithTag(tag) for its runs when it loads.
//
// Options for a board that says more than the others (all optional):
//   byTag                one card per tag (see above); a change of runs refetches every card
//   keepCards            a card whose tag leaves the page is kept (its zoom, its data) for
//                        when the tag comes back, instead of destroyed
//   toolbar              more nodes for the toolbar, before "Expand all"
//   keepTags(tagsByRun)  the {run: {tag: info}} to show, of those fetched (drops copies)
//   noRunsLines(logdir)  the empty state's lines when the logdir has no runs
//   tagsLabel            "None of the 5 <tagsLabel> matches" (default "tags here")
//   summary(counts)      the toolbar's text from {tags, allTags, groups, runs, selected}
//   onRender(selected)   called after cards are laid out for these selected runs
//   flowGroups           groups of one card share rows with their neighbours (a wide
//                        screen shows several charts a row even when every tag is a group)

import { app, registerTab } from './app.js';
import { coalesce, el, fetchJSON, makeMatcher, plural, runColor } from './util.js';

const BOARD_PARALLEL = 4; // the browser allows 6 connections per host; one is the stream

function defaultSummary({ tags, allTags, runs }) {
  return (
    `${plural(tags, 'tag')} · ${plural(runs, 'run')}` +
    (tags < allTags ? ` (of ${allTags} tags)` : '')
  );
}

function boardGroup(tag) {
  const i = tag.indexOf('/');
  return i > 0 ? tag.slice(0, i) : tag;
}

/** A card's title: the tag's display name, with the tag and its description as tooltip. */
export function cardTitle(tag, info) {
  const title = el('h3', { class: 'kb-card-title', text: (info && info.displayName) || tag });
  title.title = info && info.description ? `${tag}\n\n${info.description}` : tag;
  return title;
}

/** A card header: the tag (see cardTitle) and the run in its colour. */
export function cardHeader(run, tag, info, ...extra) {
  const title = cardTitle(tag, info);
  const swatch = el('span', { class: 'kb-swatch', 'aria-hidden': 'true' });
  swatch.style.background = runColor(run);
  const runLabel = el(
    'span',
    { class: 'kb-card-run', title: run },
    swatch,
    el('span', { text: run }),
  );
  return el(
    'header',
    { class: 'kb-card-head kb-card-head--run' },
    el('div', { class: 'kb-card-names' }, title, runLabel),
    ...extra,
  );
}

/**
 * Give a run-and-tag card its frame: ``card.head`` (tag, run in its colour, ``headExtras``)
 * and ``card.root`` (an article of ``className`` holding the head and ``parts``).
 */
export function frameCard(card, info, className, headExtras, ...parts) {
  card.headExtras = headExtras;
  card.head = cardHeader(card.run, card.tag, info, ...headExtras);
  const classes = `kb-card kb-run-card ${className}`.trim();
  card.root = el('article', { class: classes }, card.head, ...parts);
  paintRun(card);
  card.root.dataset.state = 'empty';
}

/** Put a framed card's run colour on its border and its header's swatch. */
function paintRun(card) {
  card.root.style.borderTopColor = runColor(card.run);
  card.head.querySelector('.kb-swatch').style.background = runColor(card.run);
}

/** Redraw a framed card's header after the tag's display name or description changed. */
export function refreshHeader(card, info) {
  const head = cardHeader(card.run, card.tag, info, ...card.headExtras);
  card.head.replaceWith(head);
  card.head = head;
}

/** The tags of several kinds, each info with its kind; on a clash the first kind's tag wins. */
async function mergedTags(kinds) {
  const lists = await Promise.all(kinds.map((k) => fetchJSON(`api/tags/${k}`)));
  const merged = {};
  lists.forEach((data, i) => {
    for (const [run, tags] of Object.entries(data.tags || {})) {
      const mine = merged[run] || (merged[run] = {});
      for (const [tag, info] of Object.entries(tags)) {
        if (!Object.hasOwn(mine, tag)) mine[tag] = { ...info, kind: kinds[i] };
      }
    }
  });
  return merged;
}

/** A board of cards for a tab (see above). */
export function createBoard(options) {
  const { kind, closedKey, emptyTitle, emptyLines, makeCard, byTag } = options;
  const summary = options.summary || defaultSummary;
  const dom = {};
  const entries = new Map(); // run \0 tag (tag, byTag) -> {card, run, tag, inView, stale, ...}
  const byWatch = new WeakMap(); // observed element -> entry
  const groups = new Map(); // group name -> {root, grid, button, count}
  const queue = [];
  let running = 0;
  let active = false;
  let observer = null;
  let tagsByRun = {};
  let tagsLoaded = false;

  function schedule(entry) {
    entry.stale = true;
    if (entry.queued || entry.loading || !entry.inView || !active) return;
    entry.queued = true;
    queue.push(entry);
    pump();
  }

  function pump() {
    while (running < BOARD_PARALLEL && queue.length) {
      const entry = queue.shift();
      entry.queued = false;
      if (!entry.inView || !active || entries.get(entry.key) !== entry) continue;
      running += 1;
      entry.stale = false;
      entry.loading = true;
      const watch = entry.card.watch || entry.card.root;
      if (!entry.loaded) watch.dataset.loading = 'true';
      Promise.resolve()
        .then(() => entry.card.load())
        .catch((err) => console.warn('kboard:', err))
        .finally(() => {
          running -= 1;
          entry.loading = false;
          entry.loaded = true;
          delete (entry.card.watch || entry.card.root).dataset.loading;
          if (entry.stale) schedule(entry);
          pump();
        });
    }
  }

  function showEmpty(title, ...lines) {
    dom.empty.replaceChildren(
      el('h2', { text: title }),
      ...lines.map((line) => (line instanceof Node ? line : el('p', { text: line }))),
    );
    dom.empty.hidden = false;
    dom.groups.hidden = true;
    dom.toolbar.hidden = true;
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
    const grid = el('div', { class: `kb-grid ${options.gridClass || ''}`.trim() });
    const root = el(
      'section',
      { class: 'kb-group' },
      el('h2', { class: 'kb-group-head' }, button),
      grid,
    );
    root.dataset.group = name;
    button.title = name;
    button.addEventListener('click', () => {
      const closed = new Set(app.state[closedKey]);
      if (closed.has(name)) closed.delete(name);
      else closed.add(name);
      app.setState({ [closedKey]: [...closed].sort() });
    });
    const group = { root, grid, button, count };
    groups.set(name, group);
    return group;
  }

  function removeEntry(key) {
    const entry = entries.get(key);
    observer.unobserve(entry.card.watch || entry.card.root);
    entry.card.root.remove();
    entry.inView = false;
    if (options.keepCards) return;
    entries.delete(key);
    if (entry.card.destroy) entry.card.destroy();
  }

  /** How many runs, selected or not, have this tag. */
  function tagRunCount(tag) {
    let count = 0;
    for (const tags of Object.values(tagsByRun)) if (tags[tag]) count += 1;
    return count;
  }

  /** The selected runs that have this tag. */
  function runsWithTag(tag) {
    return app.selectedRuns().filter((run) => tagsByRun[run] && tagsByRun[run][tag]);
  }

  function render() {
    if (!dom.empty) return;
    if (!app.runsLoaded || !tagsLoaded) {
      showEmpty('Loading…');
      return;
    }
    if (!app.runs.length) {
      const lines = options.noRunsLines
        ? options.noRunsLines(app.logdir)
        : [`No event files under ${app.logdir} yet.`, ...emptyLines];
      showEmpty('No runs yet', ...lines);
      return;
    }
    const selected = app.selectedRuns();
    if (!selected.length) {
      const filter = app.state.runs;
      if (filter && !app.runs.some((r) => makeMatcher(filter).test(r.name))) {
        showEmpty(
          'No runs match the run filter',
          `Nothing matches “${filter}”. Clear or change the filter in the sidebar.`,
        );
      } else {
        showEmpty(
          'No runs selected',
          'Tick one or more runs in the sidebar (or press “Select all”).',
        );
      }
      return;
    }
    const pairs = []; // [group, tag, run (null with byTag), info]
    const matcher = makeMatcher(app.state.tags);
    const allTags = new Set();
    for (const run of selected) {
      for (const [tag, info] of Object.entries(tagsByRun[run] || {})) {
        const seen = allTags.has(tag); // byTag: a card takes the first run's info
        allTags.add(tag);
        if (matcher.test(tag) && !(byTag && seen)) {
          pairs.push([boardGroup(tag), tag, byTag ? null : run, info]);
        }
      }
    }
    if (!allTags.size) {
      showEmpty(emptyTitle, ...emptyLines);
      return;
    }
    if (!pairs.length) {
      showEmpty(
        'No tags match the tag filter',
        `None of the ${allTags.size} ${options.tagsLabel || 'tags here'} matches ` +
          `“${app.state.tags}”.`,
      );
      return;
    }
    dom.empty.hidden = true;
    dom.groups.hidden = false;
    dom.toolbar.hidden = false;
    const cmp = (a, b) => (a < b ? -1 : a > b ? 1 : 0);
    pairs.sort((a, b) => cmp(a[0], b[0]) || cmp(a[1], b[1]) || cmp(a[2], b[2]));
    const keyOf = (run, tag) => (byTag ? tag : `${run}\0${tag}`);
    const wanted = new Set(pairs.map(([, tag, run]) => keyOf(run, tag)));
    for (const key of [...entries.keys()]) if (!wanted.has(key)) removeEntry(key);
    const byGroup = new Map();
    for (const pair of pairs) {
      if (!byGroup.has(pair[0])) byGroup.set(pair[0], []);
      byGroup.get(pair[0]).push(pair);
    }
    for (const [name, group] of groups) {
      if (!byGroup.has(name)) {
        group.root.remove();
        groups.delete(name);
      }
    }
    const closed = new Set(app.state[closedKey]);
    let previousGroup = null;
    const shownTags = new Set();
    for (const [name, groupPairs] of byGroup) {
      const group = groups.get(name) || makeGroup(name);
      const expected = previousGroup ? previousGroup.nextSibling : dom.groups.firstChild;
      if (expected !== group.root) dom.groups.insertBefore(group.root, expected);
      previousGroup = group.root;
      const isOpen = !closed.has(name);
      group.button.setAttribute('aria-expanded', String(isOpen));
      group.grid.hidden = !isOpen;
      group.count.textContent = String(groupPairs.length);
      let previous = null;
      for (const [, tag, run, info] of groupPairs) {
        shownTags.add(tag);
        const key = keyOf(run, tag);
        const infoKey = JSON.stringify(info);
        let entry = entries.get(key);
        if (!entry) {
          const card = makeCard(run, tag, info);
          entry = { key, card, run, tag, infoKey, inView: false, stale: true, queued: false };
          entries.set(key, entry);
          byWatch.set(card.watch || card.root, entry);
          if (!byTag) card.root.dataset.run = run;
          card.root.dataset.tag = tag;
        } else if (entry.infoKey !== infoKey && entry.card.setInfo) {
          entry.infoKey = infoKey; // a new display name or description
          entry.card.setInfo(info);
        }
        const expectedCard = previous ? previous.nextSibling : group.grid.firstChild;
        if (expectedCard !== entry.card.root)
          group.grid.insertBefore(entry.card.root, expectedCard);
        previous = entry.card.root;
        observer.observe(entry.card.watch || entry.card.root);
      }
    }
    dom.summary.textContent = summary({
      tags: shownTags.size,
      allTags: allTags.size,
      groups: byGroup.size,
      runs: new Set(pairs.map((p) => p[2])).size,
      selected: selected.length,
    });
    if (options.onRender) options.onRender(selected);
  }

  function markAllStale() {
    for (const entry of entries.values()) schedule(entry);
  }

  let prefetched = null; // the tags asked for at start, alongside the runs

  const refresh = coalesce(async () => {
    if (Array.isArray(kind)) {
      tagsByRun = await mergedTags(kind);
    } else {
      const ask = () => fetchJSON(`api/tags/${kind}`);
      const data = await (prefetched ? prefetched.catch(ask) : ask());
      tagsByRun = data.tags || {};
    }
    if (options.keepTags) tagsByRun = options.keepTags(tagsByRun);
    prefetched = null;
    tagsLoaded = true;
    render();
    markAllStale();
  });

  return {
    /** Redraw every loaded card from the data it has. */
    redraw() {
      for (const entry of entries.values()) {
        if (entry.loaded && entry.card.redraw) entry.card.redraw();
      }
    },
    /** Fetch every card again (now if on screen, else once it is). */
    refetch: markAllStale,
    /** Fetch this card again. */
    reload(card) {
      schedule(byWatch.get(card.watch || card.root));
    },
    /** Every card the board holds. */
    cards() {
      return [...entries.values()].map((entry) => entry.card);
    },
    runsWithTag,
    tagRunCount,
    /** Ask for the tags now, while the runs load (the first refresh takes the answer). */
    prefetch() {
      if (Array.isArray(kind)) return; // merged tags are asked for kind by kind
      prefetched = fetchJSON(`api/tags/${kind}`);
      prefetched.catch(() => {});
    },
    init(context) {
      dom.summary = el('span', { class: 'kb-muted' });
      const expandAll = el('button', { type: 'button', text: 'Expand all' });
      const collapseAll = el('button', { type: 'button', text: 'Collapse all' });
      expandAll.addEventListener('click', () => app.setState({ [closedKey]: [] }));
      collapseAll.addEventListener('click', () =>
        app.setState({ [closedKey]: [...groups.keys()].sort() }),
      );
      dom.toolbar = el(
        'div',
        { class: 'kb-toolbar' },
        dom.summary,
        el(
          'span',
          { class: 'kb-toolbar-buttons' },
          ...(options.toolbar || []),
          expandAll,
          collapseAll,
        ),
      );
      dom.toolbar.hidden = true;
      dom.empty = el('div', { class: 'kb-empty' });
      const flow = options.flowGroups ? ' kb-groups--flow' : '';
      dom.groups = el('div', { class: `kb-groups${flow}` });
      context.panel.replaceChildren(dom.toolbar, dom.empty, dom.groups);
      observer = new IntersectionObserver(
        (items) => {
          for (const item of items) {
            const entry = byWatch.get(item.target);
            if (!entry) continue;
            entry.inView = item.isIntersecting;
            if (entry.inView && entry.stale) schedule(entry);
          }
        },
        { rootMargin: '400px 0px' },
      );
      render();
    },
    show() {
      active = true;
      for (const entry of entries.values()) if (entry.stale) schedule(entry);
    },
    hide() {
      active = false;
    },
    onData() {
      return refresh();
    },
    onState(keys) {
      const runs = ['runs', 'sel', 'off', 'on'].some((key) => keys.has(key));
      if (runs || keys.has('tags') || keys.has(closedKey)) render();
      if (runs && byTag) markAllStale(); // a card shows every selected run with its tag
      if (keys.has('colors')) {
        for (const entry of entries.values()) {
          if (entry.card.head && entry.card.run) paintRun(entry.card);
          if (entry.loaded && entry.card.redraw) entry.card.redraw();
        }
      }
    },
  };
}

/**
 * Register a board as the tab ``id``. init(context) runs before the board's; bindSettings()
 * binds the tab's sidebar inputs once and returns a sync() called on every state change;
 * onState(keys) runs after the board's, onData() after the board's on new data.
 */
export function registerBoard(id, board, { init, bindSettings, onState, onData } = {}) {
  let syncSettings = () => {};
  registerTab({
    id,
    init(context) {
      if (init) init(context);
      if (app.state.tab === id) board.prefetch();
      board.init(context);
      if (bindSettings) syncSettings = bindSettings();
    },
    show: board.show,
    hide: board.hide,
    onData() {
      board.onData();
      if (onData) onData();
    },
    onState(keys) {
      syncSettings();
      board.onState(keys);
      if (onState) onState(keys);
    },
  });
}
