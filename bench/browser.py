"""Browser benchmark: how soon the SCALARS tab shows charts, and how quickly a zoom redraws.

Serves a generated logdir (default 50 runs x 20 tags x 10,000 steps) with ``kboard serve``,
opens the page in headless Chromium (Debian's, through Playwright) and reports the time from
navigation start to the first chart drawn with every run, to all visible charts drawn, and
from a zoom to the redrawn chart at full resolution for the new range: on a first visit (a
fresh browser context, nothing cached) and on visits again (scripts cached).

    python -m bench.browser [--runs 50 --tags 20 --steps 10000] [--logdir DIR]
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
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--tags", type=int, default=20)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--logdir")
    parser.add_argument("--repeat", type=int, default=3, help="page loads of each kind")
    args = parser.parse_args(argv)
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


if __name__ == "__main__":
    main()
