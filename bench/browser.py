"""Browser benchmark: how soon the SCALARS tab shows charts, and how quickly a zoom redraws.

Serves a generated logdir (default 50 runs x 20 tags x 10,000 steps) with ``kboard serve``,
opens the page in headless Chromium (Debian's, through Playwright) and reports the time from
navigation start to the first chart drawn with every run, to all visible charts drawn, and
from a zoom to the redrawn chart at full resolution for the new range: on a first visit (a
fresh browser context, nothing cached) and on visits again (scripts cached).

With ``--graphs``, the MODEL tab instead: the layout of a TensorFlow op graph of about 10,000
ops (collapsed by scope) and of a 300-layer Keras model (every layer shown), each built with
TensorFlow/Keras and logged, from the data's arrival to the drawn SVG.

    python -m bench.browser [--runs 50 --tags 20 --steps 10000] [--logdir DIR]
    python -m bench.browser --graphs [--ops 10000 --layers 300] [--loads 3]

With ``--many-runs`` (1,000 runs x 10 tags x 1,000 steps unless given) it times instead the
first chart drawn, a run filter typed, select none and select all in the run selector, and
reports the run list's rows in the DOM and the URL's length with no run selected.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.generate import generate
from bench.server import CHROMIUM, CHROMIUM_ARGS, served

FIRST_CHART = """runs => {
  const plot = document.querySelector('.kb-card .js-plotly-plot');
  if (!plot || !plot.data) return false;
  const names = new Set(plot.data.map(t => t.legendgroup || t.name));
  return names.size >= runs ? performance.now() : false;
}"""
VISIBLE_CHARTS = """() => {
  const cards = [...document.querySelectorAll('.kb-card')].filter(c => {
    const r = c.getBoundingClientRect();
    return r.bottom > 0 && r.top < innerHeight;
  });
  return cards.length > 0 && cards.every(c => {
    const p = c.querySelector('.js-plotly-plot');
    return p && p.data && !c.dataset.loading;
  }) ? performance.now() : false;
}"""
ZOOM = """async () => {
  const plot = document.querySelector('.kb-card .js-plotly-plot');
  const before = plot.data[0].x.length;
  const started = performance.now();
  await Plotly.relayout(plot, {'xaxis.range': [4000, 4200]});
  const deadline = started + 30000;
  while (performance.now() < deadline) {
    const xs = plot.data[0].x;
    if (xs.length && xs[0] >= 3900 && xs[0] <= 4000 && xs.length < before * 2) break;
    await new Promise(r => setTimeout(r, 5));
  }
  return performance.now() - started;
}"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int)
    parser.add_argument("--tags", type=int)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--logdir")
    parser.add_argument("--graphs", action="store_true", help="time the MODEL tab's graphs")
    parser.add_argument("--ops", type=int, default=10_000)
    parser.add_argument("--layers", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3, help="page loads of each kind")
    parser.add_argument("--many-runs", action="store_true", help="time the run selector")
    parser.add_argument("--loads", type=int, default=3, help="page loads per graph (--graphs)")
    args = parser.parse_args(argv)
    if args.graphs:
        graph_bench(args.ops, args.layers, args.loads)
        return
    sizes = (1000, 10, 1000) if args.many_runs else (50, 20, 10_000)
    for name, default in zip(("runs", "tags", "steps"), sizes, strict=True):
        if getattr(args, name) is None:
            setattr(args, name, default)
    from playwright.sync_api import sync_playwright

    logdir = args.logdir or tempfile.mkdtemp(prefix="kboard-browser-bench-")
    if not any(Path(logdir).rglob("*tfevents*")):
        generate(logdir, args.runs, args.tags, args.steps)
    server_args = ("--no-watch", "--reload-interval", "3600", "--port", "0")
    with served(logdir, *server_args, timeout=600) as server:  # it reads the logdir first
        base = f"http://127.0.0.1:{server.port}/"
        started = time.perf_counter()
        while True:  # wait until the server has loaded the logdir
            try:
                with urllib.request.urlopen(base + "api/runs", timeout=60) as r:
                    if len(json.loads(r.read())["runs"]) == args.runs:
                        break
            except OSError:
                pass
            if time.perf_counter() - started > 600:
                raise RuntimeError("server did not load the logdir")
            time.sleep(0.1)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            if args.many_runs:
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                runs = [many_runs_measure(page, base, args.runs) for _ in range(args.repeat)]
                report_many_runs(runs)
                browser.close()
                return
            fresh, cached = [], []
            for attempt in range(args.repeat):  # a first visit: nothing in the browser's cache
                context = browser.new_context(viewport={"width": 1400, "height": 900})
                fresh.append(page_load(context.new_page(), base, args.runs))
                context.close()
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            page = context.new_page()
            page_load(page, base, args.runs)  # fills the cache
            for attempt in range(args.repeat):  # a visit again: Plotly is in the cache
                cached.append(page_load(page, base, args.runs))
            browser.close()
    print(
        f"{args.runs} runs x {args.tags} tags x {args.steps} steps, Chromium headless, "
        f"median of {args.repeat} page loads (range):"
    )
    for label, results in (("first visit", fresh), ("visit again (cached scripts)", cached)):
        first, visible, zoom = zip(*results)
        print(f"  {label}:")
        print(f"    first chart drawn with every run: {_median(first)} after navigation start")
        print(f"    every chart in view drawn:        {_median(visible)}")
        print(f"    zoom to a 200-step range redrawn at full resolution: {_median(zoom)}")


def _median(values: tuple[float, ...]) -> str:
    ordered = sorted(values)
    return f"{ordered[len(ordered) // 2]:.0f} ms ({ordered[0]:.0f}-{ordered[-1]:.0f})"


def page_load(page, base: str, runs: int) -> tuple[float, float, float]:
    """Open the page; ms to the first full chart, to every chart in view, and a zoom's."""
    page.goto(base)
    first = page.wait_for_function(FIRST_CHART, arg=runs, timeout=60_000)
    visible = page.wait_for_function(VISIBLE_CHARTS, timeout=60_000)
    zoom_ms = page.evaluate(ZOOM)
    return first.json_value(), visible.json_value(), zoom_ms


# -- the MODEL tab's graphs ---------------------------------------------------------------------
GRAPH_READY = """([run, tag]) => {
  const card = document.querySelector(`#panel-model [data-run="${run}"][data-tag="${tag}"]`);
  const g = card && card.querySelector('.kb-graph');
  if (!g || g.dataset.state !== 'ready') return false;
  return {ms: Number(g.dataset.layoutMs), boxes: g.querySelectorAll('.kb-gnode').length,
          edges: g.querySelectorAll('.kb-gedge').length, at: performance.now()};
}"""
# Lay out again: open the biggest closed box (an op graph's largest scope), else Expand all.
RELAYOUT = """async ([run, tag]) => {
  const card = document.querySelector(`#panel-model [data-run="${run}"][data-tag="${tag}"]`);
  const g = card.querySelector('.kb-graph');
  const started = performance.now();
  g.dataset.state = 'layout';
  card.querySelector('.kb-graph-buttons button:nth-child(3)').click();  // Fit: no layout
  const boxes = [...card.querySelectorAll('.kb-gnode--group')];
  const size = b => Number((b.querySelectorAll('text')[1]?.textContent || '0').replace(/\D/g, ''));
  boxes.sort((x, y) => size(y) - size(x));
  if (boxes.length) boxes[0].dispatchEvent(new MouseEvent('click', {bubbles: true}));  // open it
  else card.querySelector('.kb-graph-buttons button:nth-child(4)').click();  // Expand all
  while (g.dataset.state !== 'ready') await new Promise(r => setTimeout(r, 5));
  return {ms: Number(g.dataset.layoutMs), wall: performance.now() - started};
}"""


def write_op_graph(log_dir: Path, ops: int) -> int:
    """A TF1 training graph of about ``ops`` ops: dense blocks by scope, loss and gradients."""
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 16], name="x")
        h, blocks = x, 0
        while True:
            with tf.compat.v1.variable_scope(f"block_{blocks}"):
                w = tf.compat.v1.get_variable("kernel", [16, 16])
                b = tf.compat.v1.get_variable("bias", [16])
                mean, var = tf.nn.moments(tf.matmul(h, w) + b, axes=[0])
                h = tf.nn.relu(tf.nn.batch_normalization(h, mean, var, None, None, 1e-3))
            blocks += 1
            if len(graph.as_graph_def().node) * 2.6 >= ops:  # gradients add ~1.6x the ops
                break
        loss = tf.reduce_mean(tf.square(h), name="loss")
        tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(loss)
        writer = tf.compat.v1.summary.FileWriter(str(log_dir), graph)
        writer.close()
    return len(graph.as_graph_def().node)


def write_deep_model(log_dir: Path, layers: int) -> None:
    """A ``layers``-layer Keras model (residual pairs of Dense layers) with kboard's summary."""
    import keras

    from kboard import SummaryWriter
    from kboard.keras import model_summary, model_summary_value

    x = inputs = keras.Input((8,), name="input")
    count = 1
    while count + 3 <= layers:
        y = keras.layers.Dense(8, activation="relu", name=f"dense_{count}")(x)
        y = keras.layers.Dense(8, name=f"dense_{count + 1}")(y)
        x = keras.layers.Add(name=f"add_{count + 2}")([x, y])
        count += 3
    while count < layers:
        x = keras.layers.Dense(8, name=f"dense_{count}")(x)
        count += 1
    model = keras.Model(inputs, x, name="deep")
    with SummaryWriter(str(log_dir)) as writer:
        writer.add_value(model_summary_value(model_summary(model)), 0)


def graph_bench(ops: int, layers: int, loads: int = 3) -> None:
    """Time the layout of a big op graph (collapsed) and a deep model (all layers shown)."""
    from playwright.sync_api import sync_playwright

    logdir = Path(tempfile.mkdtemp(prefix="kboard-graph-bench-"))
    op_count = write_op_graph(logdir / "ops", ops)
    write_deep_model(logdir / "deep", layers)
    cases = [("ops", "graph_def", f"op graph of {op_count:,} ops, collapsed"),
             ("deep", "model_summary", f"Keras model of {layers} layers, all shown")]  # fmt: skip
    with served(logdir, "--no-watch", "--port", "0", timeout=600) as server:
        base = f"http://127.0.0.1:{server.port}/"
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            rows = []
            for run, tag, label in cases:
                timings = []
                for _ in range(loads):  # the first load also starts the layout worker
                    page.goto(f"{base}?tab=model&runs=%5E{run}%24")
                    ready = page.wait_for_function(GRAPH_READY, arg=[run, tag], timeout=120_000)
                    first = ready.json_value()
                    again = page.evaluate(RELAYOUT, [run, tag])
                    timings.append((first["ms"], first["at"], again["ms"], first["boxes"]))
                first_ms, at, again_ms, boxes = (sorted(c)[len(c) // 2] for c in zip(*timings))
                rows.append((label, first_ms, at, again_ms, boxes))
            browser.close()
    print(f"MODEL tab graphs, Chromium headless, median of {loads} page loads:")
    for label, first_ms, at, again_ms, boxes in rows:
        print(
            f"  {label}: {boxes:,} boxes laid out and drawn in {first_ms:,.0f} ms "
            f"({at:,.0f} ms after navigation start); laid out again in {again_ms:,.0f} ms "
            "(the biggest box opened, or Expand all)"
        )


# -- Many runs (1,000 runs x 10 tags x 1,000 steps): the run selector and the first chart ------

FIRST_DRAWN = """() => {
  const plot = document.querySelector('.kb-card[data-state="ready"] .js-plotly-plot');
  return plot && plot.data && plot.data.length ? performance.now() : false;
}"""
# Type a filter, then select none and select all, timing each until the page shows it.
SELECTOR = """async ([filter, expected]) => {
  const frame = () => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
  const until = async (test) => {
    const deadline = performance.now() + 60000;
    while (!test()) {
      if (performance.now() > deadline) throw new Error('timed out: ' + test);
      await frame();
    }
    return performance.now();
  };
  const count = () => document.getElementById('kb-run-count').textContent.replace(/,/g, '');
  const input = document.getElementById('kb-run-filter');
  const out = {rows: document.querySelectorAll('#kb-run-list li').length};
  let t = performance.now();
  input.value = filter;
  input.dispatchEvent(new Event('input', {bubbles: true}));
  out.filter_ms = (await until(() => count().startsWith(`${expected} of`))) - t;
  input.value = '';
  input.dispatchEvent(new Event('input', {bubbles: true}));
  await until(() => !count().includes(' of ') && location.search.indexOf('runs=') < 0);
  const checked = () => document.querySelectorAll('#kb-run-list input:checked').length;
  t = performance.now();
  document.getElementById('kb-runs-none').click();
  out.none_list_ms = (await until(() => checked() === 0)) - t;
  await until(() => !document.querySelector('.kb-card[data-state="ready"]') ||
    document.querySelector('#panel-scalars .kb-empty:not([hidden])'));
  await new Promise((r) => setTimeout(r, 300)); // the URL is written 120 ms after a change
  out.none_url_chars = location.href.length;
  const before = new Set([...document.querySelectorAll('.js-plotly-plot')].map((p) => p.data));
  const drawn = () => [...document.querySelectorAll('.kb-card[data-state="ready"]')]
    .map((c) => c.querySelector('.js-plotly-plot'))
    .find((p) => p && p.offsetParent && p.data && p.data.length && !before.has(p.data));
  t = performance.now();
  document.getElementById('kb-runs-all').click();
  const rows = document.querySelectorAll('#kb-run-list input').length;
  out.all_list_ms = (await until(() => checked() === rows)) - t;
  out.all_chart_ms = (await until(drawn)) - t;
  const plot = drawn();
  out.traces = plot.data.length;
  t = performance.now();
  await Plotly.relayout(plot, {'xaxis.range': [100, 300]});
  out.zoom_relayout_ms = performance.now() - t;
  out.dom_nodes = document.getElementsByTagName('*').length;
  return out;
}"""


def report_many_runs(results: list[dict[str, float]]) -> None:
    """Print the median of each figure over the page loads."""
    print("many runs, Chromium headless, median of 3 page loads:")
    for key in results[0]:
        values = [r[key] for r in results]
        each = ", ".join(f"{v:.0f}" for v in values)
        print(f"  {key}: {sorted(values)[len(values) // 2]:.0f} (each: {each})")


def many_runs_measure(page, base: str, runs: int) -> dict[str, float]:
    """Load the page once and time the first chart, a run filter, select none and select all."""
    page.goto(base)
    first = page.wait_for_function(FIRST_DRAWN, timeout=120_000).json_value()
    filter_text = "run_01"
    expected = sum(1 for i in range(runs) if filter_text in f"run_{i:03d}")
    result = page.evaluate(SELECTOR, [filter_text, expected])
    return {"first_chart_ms": first, **result}


if __name__ == "__main__":
    main()
