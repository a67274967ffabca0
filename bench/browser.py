"""Browser benchmark: how soon the SCALARS tab shows charts, and how quickly a zoom redraws.

Serves a generated logdir (default 50 runs x 20 tags x 10,000 steps) with ``kboard serve``,
opens the page in headless Chromium (Debian's, through Playwright) and reports the time from
navigation start to the first chart drawn with every run, to all visible charts drawn, and
from a zoom to the redrawn chart at full resolution for the new range.

    python -m bench.browser [--runs 50 --tags 20 --steps 10000] [--logdir DIR]

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
    parser.add_argument("--many-runs", action="store_true", help="time the run selector")
    args = parser.parse_args(argv)
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
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            if args.many_runs:
                report_many_runs([many_runs_measure(page, base, args.runs) for _ in range(3)])
                browser.close()
                return
            results = []
            for attempt in range(3):  # the first load also warms Chromium's caches
                page.goto(base)
                first = page.wait_for_function(FIRST_CHART, arg=args.runs, timeout=60_000)
                visible = page.wait_for_function(VISIBLE_CHARTS, timeout=60_000)
                zoom_ms = page.evaluate(ZOOM)
                results.append((first.json_value(), visible.json_value(), zoom_ms))
            browser.close()
    first, visible, zoom = (sorted(col)[1] for col in zip(*results))
    print(
        f"{args.runs} runs x {args.tags} tags x {args.steps} steps, Chromium headless, "
        "median of 3 page loads:"
    )
    print(f"  first chart drawn with every run: {first:.0f} ms after navigation start")
    print(f"  every chart in view drawn:        {visible:.0f} ms")
    print(f"  zoom to a 200-step range redrawn at full resolution: {zoom:.0f} ms")


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
