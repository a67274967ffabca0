"""IMAGES, HISTOGRAMS, DISTRIBUTIONS, TEXT and MODEL in a real Chromium."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import expect

from kboard import SummaryWriter
from kboard.tfevents import protos
from tests import test_browser

pytestmark = pytest.mark.browser

# test_browser.py's fixtures: Chromium, and pages on a logdir served in a thread.
browser = test_browser.browser
open_page = test_browser.open_page

SAMPLE_LOGS = Path(__file__).parent.parent / "sample_logs"
TABS = ("images", "histograms", "distributions", "text", "model")
KIND = {tab: "histograms" if tab == "distributions" else tab for tab in TABS}
HOSTILE = (
    "# Notes\n\n<script>alert(1)</script>\n\n<img src=x onerror=alert(1)>\n\n"
    "[click me](javascript:alert(1)) and [docs](https://example.org)\n\n"
    "| a | b |\n|---|---|\n| 1 | 2 |\n"
)

# Every card the board shows has finished its first load (and drew something or said why).
CARDS_SETTLED = """tab => {
  const cards = [...document.querySelectorAll(`#panel-${tab} .kb-card`)];
  return cards.length > 0 && cards.slice(0, 4).every(
    c => !c.dataset.loading && ['ready', 'placeholder', 'error'].includes(c.dataset.state));
}"""
PLOT_META = """card => { const p = card.querySelector('.js-plotly-plot');
  return p && p.data ? {layout: p.layout.meta, traces: p.data.map(t => t.meta)} : null; }"""


def open_tab(watched, tab: str) -> None:
    watched.page.get_by_role("tab", name=tab.capitalize()).click()
    watched.page.wait_for_function(CARDS_SETTLED, arg=tab, timeout=15_000)


def card(page, tab: str, tag: str, run: str | None = None):
    """The card (the image set, for IMAGES) of one tag, and run when given."""
    selector = f'#panel-{tab} [data-tag="{tag}"]'
    if run is not None:
        selector += f'[data-run="{run}"]'
    return page.locator(selector).first


# -- the project's sample logs ----------------------------------------------------------
def test_every_tab_renders_the_sample_logs(open_page) -> None:
    watched = open_page(SAMPLE_LOGS)
    page = watched.page
    page.locator('.kb-live[data-state="live"]').wait_for()
    for tab in TABS:
        tags = page.evaluate("k => fetch(`api/tags/${k}`).then(r => r.json())", KIND[tab])["tags"]
        if not any(tags.values()):
            page.get_by_role("tab", name=tab.capitalize()).click()
            expect(page.locator(f"#panel-{tab} .kb-empty h2")).to_contain_text("yet")
            continue
        open_tab(watched, tab)
        page.wait_for_function(
            "t => new URLSearchParams(location.search).get('tab') === t", arg=tab
        )
        first = page.locator(f"#panel-{tab} .kb-card").first
        # The card wears its run's colour, the same as the run's swatch in the sidebar.
        run = first.evaluate("c => c.closest('[data-run]').dataset.run")
        swatch = page.locator(f'.kb-run[data-run="{run}"] .kb-swatch')
        assert first.evaluate("c => c.style.borderTopColor") == swatch.evaluate(
            "s => s.style.background"
        )
        if tab == "images":
            page.wait_for_function(
                "() => { const i = document.querySelector('#panel-images img');"
                " return i && i.complete && i.naturalWidth > 0; }"
            )
        elif tab in ("histograms", "distributions"):
            page.wait_for_function(
                f"() => document.querySelector('#panel-{tab} .js-plotly-plot')?.data"
            )
        elif tab == "text":
            assert page.locator("#panel-text .kb-text-entry").count() > 0
        else:
            assert page.locator("#panel-model .kb-model-table tbody tr").count() > 0
        page.screenshot(path=f"/tmp/kboard_{tab}.png")
    watched.assert_clean()


def test_tf_tensorboardx_and_keras_logs(open_page, mixed_logdir: Path, keras_logdir: Path) -> None:
    """Every card draws for tf.summary, tensorboardX and Keras callback logs."""
    all_loaded = """tab => [...document.querySelectorAll(`#panel-${tab} .kb-card`)].every(
        c => c.dataset.state === 'ready' && [...c.querySelectorAll('img')].every(
          i => i.complete && i.naturalWidth > 0))"""
    for logdir in (mixed_logdir, keras_logdir):
        watched = open_page(logdir)
        for tab in ("images", "histograms", "distributions", "text"):
            if tab == "text" and logdir == keras_logdir:
                continue
            open_tab(watched, tab)
            watched.page.wait_for_function(all_loaded, arg=tab, timeout=10_000)
        watched.assert_clean()
        if logdir == keras_logdir:  # Keras's weight images: a card per weight
            assert watched.page.locator("#panel-images .kb-image-card").count() >= 2


# -- IMAGES ------------------------------------------------------------------------------
@pytest.fixture()
def image_logdir(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    with SummaryWriter(str(tmp_path / "train")) as writer:
        for step in range(3):
            writer.add_image("pic", rng.random((6 + step, 9, 3)), step, dataformats="HWC")
            writer.add_images("batch", rng.random((2, 4, 4, 3)), step, dataformats="NHWC")
        writer.add_image("single", rng.random((5, 5, 3)), 0, dataformats="HWC")
        broken = protos.image("broken", rng.random((1, 4, 4, 3)))
        broken.tensor.string_val[2] = b"\x89PNG\r\n\x1a\n these bytes are not an image"
        writer.add_value(broken, 0)
    return tmp_path


def test_image_step_slider_settings_and_corrupt_images(open_page, image_logdir: Path) -> None:
    watched = open_page(image_logdir, "?tab=images")
    page = watched.page
    page.wait_for_function(CARDS_SETTLED, arg="images")
    pic = card(page, "images", "pic").locator(".kb-image-card")
    img = pic.locator("img")
    page.wait_for_function(
        "i => i.complete && i.naturalWidth > 0", arg=img.element_handle(), timeout=5_000
    )
    assert "step=2" in img.get_attribute("src")  # the newest step first
    assert pic.locator(".kb-image-step").text_content() == "step 2"
    slider = pic.get_by_role("slider")
    slider.focus()
    page.keyboard.press("Home")  # a real range input: the keyboard moves it
    page.wait_for_function(
        "i => i.src.includes('step=0') && i.complete && i.naturalWidth === 9 && "
        "i.naturalHeight === 6",
        arg=img.element_handle(),
    )
    assert pic.locator(".kb-image-step").text_content() == "step 0"
    assert pic.locator(".kb-image-time").text_content()
    # Several images in a step: a card per sample index; one step: the slider is disabled.
    batch = card(page, "images", "batch").locator(".kb-image-card")
    assert batch.count() == 2 and "sample 2 of 2" in batch.nth(1).text_content()
    assert card(page, "images", "single").get_by_role("slider").is_disabled()
    # A corrupt image shows a placeholder, not a broken image.
    broken = card(page, "images", "broken").locator(".kb-image-card")
    broken.locator(".kb-image-broken").wait_for()
    assert "could not be decoded" in broken.text_content()
    assert broken.get_attribute("data-state") == "error"
    # Brightness, contrast and actual size reach the images and the URL.
    page.get_by_label("Show images at actual size").check()
    page.locator("#kb-brightness").fill("1.5")
    page.wait_for_function("() => location.search.includes('bright=1.5')")
    assert "actual=1" in page.url
    assert img.evaluate("i => getComputedStyle(i).filter") == "brightness(1.5) contrast(1)"
    assert img.evaluate("i => i.getBoundingClientRect().width") == 9
    watched.assert_clean()


def test_images_follow_live_updates_and_the_run_selection(open_page, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    writer = SummaryWriter(str(tmp_path / "train"))
    for step in range(2):
        writer.add_image("kept", rng.random((4, 4, 3)), step, dataformats="HWC")
        writer.add_image("newest", rng.random((4, 4, 3)), step, dataformats="HWC")
    writer.flush()
    watched = open_page(tmp_path, "?tab=images")
    page = watched.page
    page.wait_for_function(CARDS_SETTLED, arg="images")
    kept = card(page, "images", "kept")
    kept.get_by_role("slider").focus()
    page.keyboard.press("ArrowLeft")  # a chosen step stays chosen; the newest step follows
    expect(kept.locator(".kb-image-step")).to_have_text("step 0")
    for step in (2, 3):
        writer.add_image("kept", rng.random((4, 4, 3)), step, dataformats="HWC")
        writer.add_image("newest", rng.random((4, 4, 3)), step, dataformats="HWC")
    writer.close()
    newest = card(page, "images", "newest")
    expect(newest.locator(".kb-image-step")).to_have_text("step 3", timeout=5_000)
    expect(kept.get_by_role("slider")).to_have_attribute("max", "3")
    assert kept.locator(".kb-image-step").text_content() == "step 0"
    # A new run appears by itself, in its colour; unticking it removes its cards.
    with SummaryWriter(str(tmp_path / "eval")) as other:
        other.add_image("kept", rng.random((4, 4, 3)), 0, dataformats="HWC")
    evaluation = card(page, "images", "kept", "eval").locator(".kb-image-card")
    evaluation.wait_for(timeout=5_000)
    colour = page.locator('.kb-run[data-run="eval"] .kb-swatch').evaluate("s => s.style.background")
    assert evaluation.evaluate("c => c.style.borderTopColor") == colour
    page.locator(".kb-run", has_text="eval").get_by_role("checkbox").uncheck()
    expect(page.locator('#panel-images [data-run="eval"]')).to_have_count(0)
    page.wait_for_function("() => location.search.includes('off=eval')")
    watched.assert_clean()


# -- HISTOGRAMS and DISTRIBUTIONS ---------------------------------------------------------
def write_buckets(writer: SummaryWriter, tag: str, buckets: list[list[float]], step: int) -> None:
    """Write raw [left, right, count] buckets, as a hand-made or broken writer might."""
    value = protos.summary_pb2.Summary.Value(tag=tag, tensor=protos.double_tensor(buckets))
    value.metadata.plugin_data.plugin_name = "histograms"
    writer.add_value(value, step)


@pytest.fixture()
def histogram_logdir(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    with SummaryWriter(str(tmp_path / "train")) as writer:
        for step in range(5):
            writer.add_histogram("weights", rng.normal(step * 0.5, 1.0, 1000), step)
        writer.add_histogram("degenerate/constant", np.full(50, 3.0), 0)
        writer.add_histogram("degenerate/constant", np.full(50, 3.0), 1)
        writer.add_histogram("degenerate/one", np.array([1.5]), 0)
        write_buckets(writer, "degenerate/nan", [[float("nan"), 1.0, 3.0], [1.0, 2.0, 1.0]], 0)
        write_buckets(writer, "degenerate/zero", [[0.0, 1.0, 0.0]], 0)
        write_buckets(writer, "degenerate/empty", np.zeros((0, 3)).tolist(), 0)
    return tmp_path


def test_histogram_modes_and_distribution_bands(open_page, histogram_logdir: Path) -> None:
    watched = open_page(histogram_logdir, "?tab=histograms")
    page = watched.page
    page.wait_for_function(CARDS_SETTLED, arg="histograms")
    weights = card(page, "histograms", "weights")
    page.wait_for_function(f"c => ({PLOT_META})(c)", arg=weights.element_handle())
    offset = weights.evaluate(PLOT_META)
    assert offset["layout"] == {"mode": "offset"}
    ridges = [t for t in offset["traces"] if t["kind"] == "ridge"]
    assert [t["step"] for t in ridges] == [0, 1, 2, 3, 4]  # oldest painted first, newest in front
    hover = weights.evaluate(
        "c => c.querySelector('.js-plotly-plot').data.find(t => t.meta.kind === 'hover')"
    )
    assert len(hover["customdata"]) == 5 * 30
    step, bins, count = hover["customdata"][-15]
    assert step == "4" and " to " in bins and float(count) >= 0
    # The mode is a sidebar setting kept in the URL.
    page.get_by_label("Overlay").check()
    page.wait_for_function(
        f"c => ({PLOT_META})(c).layout.mode === 'overlay'", arg=weights.element_handle()
    )
    overlay = weights.evaluate(PLOT_META)
    assert [t["step"] for t in overlay["traces"] if t["kind"] == "step"] == [0, 1, 2, 3, 4]
    page.wait_for_function("() => location.search.includes('hmode=overlay')")
    # Degenerate histograms draw a degenerate chart or say why not; they never fail.
    states = page.locator("#panel-histograms .kb-card").evaluate_all(
        "cs => Object.fromEntries(cs.map(c => [c.dataset.tag, c.dataset.state]))"
    )
    assert states == {
        "degenerate/constant": "ready",
        "degenerate/empty": "placeholder",
        "degenerate/nan": "ready",
        "degenerate/one": "ready",
        "degenerate/zero": "placeholder",
        "weights": "ready",
    }
    assert "Every value is 3" in card(page, "histograms", "degenerate/constant").text_content()
    page.screenshot(path="/tmp/kboard_histograms_overlay.png", full_page=True)

    open_tab(watched, "distributions")
    weights = card(page, "distributions", "weights")
    page.wait_for_function(f"c => ({PLOT_META})(c)", arg=weights.element_handle())
    traces = weights.evaluate(
        "c => c.querySelector('.js-plotly-plot').data.map(t => "
        "({index: t.meta.index, fill: t.fill || null, y: Array.from(t.y)}))"
    )
    assert sorted(t["index"] for t in traces) == list(range(9))
    assert [t["fill"] for t in traces].count("tonexty") == 4  # min–max, ±1.5σ, ±1σ, ±0.5σ
    by_index = {t["index"]: t["y"] for t in traces}
    for step in range(5):
        column = [by_index[i][step] for i in range(9)]
        assert column == sorted(column)
        assert abs(column[4] - step * 0.5) < 0.3  # the median follows the data
    page.wait_for_function(
        "() => [...document.querySelectorAll('#panel-distributions .kb-card')]"
        ".every(c => c.dataset.state === 'ready' || c.dataset.state === 'placeholder')"
    )
    watched.assert_clean()


# -- TEXT ---------------------------------------------------------------------------------
def test_text_is_inert_newest_first_and_long_texts_expand(open_page, tmp_path: Path) -> None:
    with SummaryWriter(str(tmp_path / "notes")) as writer:
        writer.add_text("hostile", HOSTILE, 0)
        writer.add_text("hostile", "second **entry**", 1)
        writer.add_text("long", "word " * 6000, 0)
    watched = open_page(tmp_path, "?tab=text")
    page = watched.page
    page.wait_for_function(CARDS_SETTLED, arg="text")
    hostile = card(page, "text", "hostile")
    assert hostile.locator(".kb-text-step").all_text_contents() == ["step 1", "step 0"]
    body = hostile.locator(".kb-text-entry").nth(1).locator(".kb-text-body")
    assert body.locator("h1").text_content() == "Notes"
    assert body.locator("table td").all_text_contents() == ["1", "2"]
    assert body.get_by_role("link", name="docs").get_attribute("href") == "https://example.org"
    bad = page.evaluate(
        """() => ({
          scripts: document.querySelectorAll('#panel-text script').length,
          handlers: [...document.querySelectorAll('#panel-text *')].flatMap(
            e => [...e.attributes].map(a => a.name)).filter(n => n.startsWith('on')),
          js: [...document.querySelectorAll('#panel-text [href], #panel-text [src]')].map(
            e => e.getAttribute('href') || e.getAttribute('src')).filter(
            u => !/^(https?:|mailto:)/i.test(u)),
          imgs: document.querySelectorAll('#panel-text img').length,
        })"""
    )
    assert bad == {"scripts": 0, "handlers": [], "js": [], "imgs": 0}
    page.get_by_text("click me").click()
    # The page's own defence, for HTML the server would never send.
    cleaned = page.evaluate(
        """async () => {
          const src = document.querySelector('script[src$="js/text.js"]').src;
          const { safeHTML } = await import(src);
          const box = document.createElement('div');
          box.append(safeHTML('<a href="java\\tscript:alert(1)">a</a><b onclick="alert(1)">b</b>' +
            '<svg onload="alert(1)"></svg><iframe src="javascript:alert(1)"></iframe>' +
            '<img src="x" onerror="alert(1)"><a href="data:text/html,x">d</a>' +
            '<a href="/relative">r</a><a href="mailto:a@b.c">m</a>'));
          return box.innerHTML;
        }"""
    )
    rel = 'rel="noopener noreferrer nofollow"'
    assert cleaned == (
        f'<a {rel}>a</a>b<span class="kb-text-image" title="x">[image: x]</span><a {rel}>d</a>'
        f'<a href="/relative" {rel}>r</a><a href="mailto:a@b.c" {rel}>m</a>'
    )
    # Parsing those three on* attributes made the CSP refuse them (and say so) before the
    # cleaner removed them: nothing else may have been reported.
    refused = [e for e in watched.errors if "inline event handler" in e]
    assert len(refused) == 3 and len(watched.errors) == 3
    watched.errors.clear()
    # A long text is cut; "Show all" fetches it in full.
    long = card(page, "text", "long")
    assert long.locator(".kb-text-body").text_content().count("word") < 6000
    with page.expect_response(lambda r: "full=1" in r.url):
        long.get_by_role("button", name="Show all").click()
    page.wait_for_function(
        "c => c.querySelector('.kb-text-body').textContent.split('word').length - 1 === 6000",
        arg=long.element_handle(),
    )
    assert long.get_by_role("button", name="Show all").count() == 0
    page.wait_for_timeout(200)
    watched.assert_clean()


# -- MODEL --------------------------------------------------------------------------------
def write_model(writer: SummaryWriter, tag: str, text: str) -> None:
    value = protos.summary_pb2.Summary.Value(
        tag=tag, tensor=protos.string_tensor([text.encode()], [])
    )
    value.metadata.plugin_data.plugin_name = "kboard_model_summary"
    writer.add_value(value, 0)


def test_model_table_tree_counts_and_errors(open_page, tmp_path: Path) -> None:
    dense = {"class": "Dense", "params": 10, "trainable": True, "layers": []}
    summary = {
        "format": "kboard.model_summary/1",
        "name": "outer<b>",
        "class": "Functional",
        "total_params": 1234567,
        "trainable_params": 1234000,
        "non_trainable_params": 567,
        "layers": [
            dense | {"name": "first", "output_shape": "(None, 8)", "config": {"units": 8}},
            {
                "name": "inner",
                "class": "Sequential",
                "params": 20,
                "output_shape": "(None, 2)",
                "layers": [dense | {"name": "a"}, dense | {"name": "b", "trainable": False}],
            },
        ],
        "text": 'Model: "outer"\nTotal params: 1,234,567',
    }
    with SummaryWriter(str(tmp_path / "train")) as writer:
        write_model(writer, "model_summary", json.dumps(summary))
        write_model(writer, "broken", "{not json")
    watched = open_page(tmp_path, "?tab=model")
    page = watched.page
    page.wait_for_function(CARDS_SETTLED, arg="model")
    model = card(page, "model", "model_summary")
    assert model.locator(".kb-model-title strong").text_content() == "outer<b>"
    assert model.locator(".kb-model-counts dd").all_text_contents() == [
        "1,234,567",
        "1,234,000",
        "567",
    ]
    headers = model.locator("thead th").all_text_contents()
    assert headers == ["Layer", "Class", "Key settings", "Output shape", "Parameters"]
    rows = model.locator("tbody tr")
    assert rows.count() == 4
    assert "units=8" in rows.nth(0).text_content()
    assert "frozen" in rows.nth(3).text_content()
    fold = model.get_by_role("button", name="inner: show or hide its 2 layers")
    assert fold.get_attribute("aria-expanded") == "true"
    fold.click()
    assert fold.get_attribute("aria-expanded") == "false"
    assert [rows.nth(i).is_visible() for i in range(4)] == [True, True, False, False]
    model.get_by_text("model.summary() text").click()
    assert "Total params: 1,234,567" in model.locator("pre").text_content()
    broken = card(page, "model", "broken")
    assert broken.get_attribute("data-state") == "error"
    assert "could not be read" in broken.text_content()
    watched.assert_clean()


def test_keras_callback_model_config(open_page, keras_logdir: Path) -> None:
    watched = open_page(keras_logdir, "?tab=model")
    page = watched.page
    page.wait_for_function(CARDS_SETTLED, arg="model")
    model = card(page, "model", "keras", "train")
    assert model.locator(".kb-model-title strong").text_content() == "outer"
    top = model.locator('tbody tr[data-depth="0"] .kb-layer-name').all_text_contents()
    assert top[-2:] == ["first", "inner"]
    nested = model.locator('tbody tr[data-depth="1"] .kb-layer-class')
    assert nested.all_text_contents()[-2:] == ["Dense", "Dense"]
    fold = model.get_by_role("button", name=re.compile(r"^inner: show or hide"))
    fold.click()
    assert not nested.first.is_visible()
    assert model.locator(".kb-model-counts").count() == 0  # Keras's config has no counts
    watched.assert_clean()


# -- empty states --------------------------------------------------------------------------
def test_empty_states_say_what_to_do(open_page, tmp_path: Path) -> None:
    with SummaryWriter(str(tmp_path / "train")) as writer:
        writer.add_scalar("loss", 1.0, 0)
        writer.add_text("note", "hello", 0)
    watched = open_page(tmp_path, "?tab=images")
    page = watched.page
    page.get_by_text("No image summaries yet").wait_for()
    assert "SummaryWriter.add_image" in page.locator("#panel-images .kb-empty").text_content()
    for tab, text in (
        ("histograms", "add_histogram"),
        ("distributions", "add_histogram"),
        ("model", "callback"),
    ):
        page.get_by_role("tab", name=tab.capitalize()).click()
        expect(page.locator(f"#panel-{tab} .kb-empty")).to_contain_text(text)
    open_tab(watched, "text")
    page.get_by_label("Filter tags (regex)").fill("nothing-like-this")
    page.get_by_text("No tags match the tag filter").wait_for()
    page.get_by_label("Filter tags (regex)").fill("")
    page.get_by_role("button", name="Select none").click()
    page.locator("#panel-text").get_by_text("No runs selected").wait_for()
    watched.assert_clean()
