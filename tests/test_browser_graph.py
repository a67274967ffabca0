"""MODEL graphs in a real Chromium: Keras layer graphs and TensorFlow op graphs, drawn by ELK."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests import test_browser
from tests.graph_logs import HOSTILE_OP, KERAS_MODELS, graph_logdir  # noqa: F401 (fixture)
from tests.test_graph import EXPECTED_EDGES

pytestmark = pytest.mark.browser

browser = test_browser.browser
open_page = test_browser.open_page

# What a drawn graph shows: its boxes (by name), the pairs its edges join, and its state.
DRAWN = """card => {
  const g = card.querySelector('.kb-graph');
  const name = id => card.querySelector(`[data-id="${CSS.escape(id)}"]`)?.dataset.name;
  return {
    state: g && g.dataset.state,
    nodes: [...card.querySelectorAll('.kb-gnode')].map(n => n.dataset.name).sort(),
    groups: [...card.querySelectorAll('.kb-ggroup')].map(n => n.dataset.name).sort(),
    edges: [...card.querySelectorAll('.kb-gedge')]
      .map(e => [name(e.dataset.source), name(e.dataset.target)]).sort(),
    texts: [...card.querySelectorAll('.kb-gnode text')].map(t => t.textContent),
  };
}"""
# Every edge segment stays clear of every box it does not start or end at.
EDGES_CROSSING_BOXES = """card => {
  const boxes = new Map();
  for (const n of card.querySelectorAll('.kb-gnode')) {
    const [x, y] = n.getAttribute('transform').match(/[-\\d.]+/g).map(Number);
    const r = n.querySelector('rect');
    boxes.set(n.dataset.id, {x, y, w: +r.getAttribute('width'), h: +r.getAttribute('height')});
  }
  const bad = [];
  for (const e of card.querySelectorAll('.kb-gedge')) {
    const pts = e.getAttribute('d').match(/[-\\d.]+,[-\\d.]+/g).map(p => p.split(',').map(Number));
    for (let i = 1; i < pts.length; i++) {
      const [[x1, y1], [x2, y2]] = [pts[i - 1], pts[i]];
      for (const [id, b] of boxes) {
        if (id === e.dataset.source || id === e.dataset.target) continue;
        const inside = Math.max(x1, x2) > b.x + 1 && Math.min(x1, x2) < b.x + b.w - 1 &&
                       Math.max(y1, y2) > b.y + 1 && Math.min(y1, y2) < b.y + b.h - 1;
        if (inside) bad.push([e.dataset.source, e.dataset.target, id]);
      }
    }
  }
  return bad;
}"""


def graph_card(page, run: str, tag: str):
    card = page.locator(f'#panel-model [data-run="{run}"][data-tag="{tag}"]').first
    card.scroll_into_view_if_needed()
    page.wait_for_function(
        "c => { const g = c.querySelector('.kb-graph'); return (g && g.dataset.state === 'ready')"
        " || c.querySelector('.kb-graph-error'); }",
        arg=card.element_handle(),
        timeout=20_000,
    )
    return card


def expand(page, card, name: str) -> None:
    """Click a collapsed box and wait until it is drawn open."""
    card.locator(f'.kb-gnode[data-name="{name}"]').click()
    page.wait_for_function(
        "([c, name]) => [...c.querySelectorAll('.kb-ggroup')].some(g => g.dataset.name === name)"
        " && c.querySelector('.kb-graph').dataset.state === 'ready'",
        arg=[card.element_handle(), name],
    )


def top_layers(graph_logdir: Path, model: str) -> list[str]:  # noqa: F811
    from kboard.provider import load_logdir
    from kboard.tfevents.events import Kind

    data = load_logdir(str(graph_logdir / model / "keras"))
    config = json.loads(data.samples("train", Kind.MODEL, "keras")[-1].value)
    return sorted(layer["config"]["name"] for layer in config["config"]["layers"])


def test_every_layer_and_edge_of_each_model_is_drawn(open_page, graph_logdir: Path) -> None:  # noqa: F811
    watched = open_page(graph_logdir, "?tab=model&runs=%5E(resnet%7Ctwo_io%7Cnested%7Cshared)/")
    page = watched.page
    for model in KERAS_MODELS:
        layers = top_layers(graph_logdir, model)
        # Nested models open collapsed: their inner edges are hidden inside their box.
        inner = {"inner_input", "inner_dense", "inner_out"}
        edges = sorted({e for e in EXPECTED_EDGES[model] if not set(e) & inner})
        for run, tag in (("keras/train", "keras"), ("kboard/train", "model_summary")):
            card = graph_card(page, f"{model}/{run}", tag)
            drawn = card.evaluate(DRAWN)
            assert drawn["nodes"] == layers, (model, run)
            assert [tuple(e) for e in drawn["edges"]] == list(edges), (model, run)
            assert card.evaluate(EDGES_CROSSING_BOXES) == [], (model, run)
    # kboard's summary adds shapes and parameter counts to the boxes; a shared layer says so.
    shared = graph_card(page, "shared/kboard/train", "model_summary")
    drawn = shared.evaluate(DRAWN)
    assert "Dense ×2" in drawn["texts"] and "(None, 4) · 24 params" in drawn["texts"]
    # An edge's tensor shape shows on hover (its title); two uses of one tensor are one line.
    titles = shared.locator(".kb-gedge title").all_text_contents()
    assert "2 tensors: (None, 4)" in titles and "tensor: (None, 5)" in titles
    watched.assert_clean()


def test_nested_model_expands_and_selects_its_row(open_page, graph_logdir: Path) -> None:  # noqa: F811
    watched = open_page(graph_logdir, "?tab=model&runs=%5Enested/kboard")
    page = watched.page
    card = graph_card(page, "nested/kboard/train", "model_summary")
    expand(page, card, "inner_seq")
    drawn = card.evaluate(DRAWN)
    assert drawn["groups"] == ["inner_seq"]
    assert drawn["nodes"] == ["head", "inner_dense", "inner_input", "inner_out", "x"]
    assert [tuple(e) for e in drawn["edges"]] == sorted(EXPECTED_EDGES["nested"])
    assert card.evaluate(EDGES_CROSSING_BOXES) == []
    # A click on a layer shows its config and marks its row in the table.
    card.locator('.kb-gnode[data-name="inner_dense"]').click()
    assert '"units": 4' in card.locator(".kb-graph-config").text_content()
    details = card.locator(".kb-graph-details").evaluate(
        "d => [...d.childNodes].map(c => c.nodeName).join(' ')"
    )
    assert details == "H4 DL PRE"  # name, facts, config: nothing else
    assert "Parameters28" in card.locator(".kb-graph-details dl").text_content()
    row = card.locator("tbody tr.kb-row--selected")
    assert row.count() == 1 and row.locator(".kb-layer-name").text_content() == "inner_dense"
    # Collapsing hides the inner layers again.
    card.locator('.kb-ggroup[data-name="inner_seq"] .kb-ggroup-label').click()
    page.wait_for_function(
        "c => !c.querySelector('.kb-ggroup') && c.querySelectorAll('.kb-gnode').length === 3",
        arg=card.element_handle(),
    )
    # The Graph/Table switch is kept in the URL.
    page.get_by_role("button", name="Table", exact=True).click()
    page.wait_for_function("() => new URLSearchParams(location.search).get('mview') === 'table'")
    assert card.locator(".kb-graph-host").is_hidden()
    page.reload()
    card = page.locator('#panel-model [data-run="nested/kboard/train"][data-tag="model_summary"]')
    card.locator("tbody tr").first.wait_for()
    assert card.locator(".kb-graph-host").is_hidden()
    page.get_by_role("button", name="Graph", exact=True).click()
    graph_card(page, "nested/kboard/train", "model_summary")
    assert watched.errors == []  # (the reload cut the live stream: not a failure)


def test_op_graphs_open_collapsed_by_scope(open_page, graph_logdir: Path) -> None:  # noqa: F811
    watched = open_page(
        graph_logdir, "?tab=model&runs=%5E(tf1%7Chand%7Chub%7Cflat%7Cbad%7Ctrace)%24"
    )
    page = watched.page
    card = graph_card(page, "tf1", "graph_def")
    drawn = card.evaluate(DRAWN)
    assert {"encoder", "decoder", "loss", "x"} <= set(drawn["nodes"])
    assert len(drawn["nodes"]) < 10  # 20 ops, collapsed into their scopes
    assert ["decoder", "loss"] in drawn["edges"] and ["encoder", "decoder"] in drawn["edges"]
    # Expanding a scope shows its ops inside its box.
    expand(page, card, "encoder")
    drawn = card.evaluate(DRAWN)
    assert "encoder/MatMul" in drawn["nodes"] and "encoder" not in drawn["nodes"]
    # Each op type shown has a colour of its own (up to 12 types a graph).
    fills = card.locator(".kb-graph-key .kb-swatch").evaluate_all(
        "swatches => swatches.map(s => s.style.background)"
    )
    assert len(fills) >= 4 and len(set(fills)) == len(fills), fills
    assert card.evaluate(EDGES_CROSSING_BOXES) == []
    # Search opens the scopes around a match; colour by device gives a legend.
    card.locator(".kb-graph-search").fill("decoder/act")
    card.locator(".kb-graph-search").press("Enter")
    card.locator('.kb-gnode--found[data-name="decoder/act"]').wait_for()
    assert card.locator(".kb-graph-found").text_content() == "1 of 1"
    # Pan and zoom: keys, buttons and the wheel.
    zoom = float(card.locator(".kb-graph").get_attribute("data-zoom"))
    card.locator(".kb-graph-canvas").focus()
    page.keyboard.press("+")
    assert float(card.locator(".kb-graph").get_attribute("data-zoom")) > zoom
    card.get_by_role("button", name="Zoom out").click()
    card.locator(".kb-graph-canvas").hover()
    page.mouse.wheel(0, 300)
    assert float(card.locator(".kb-graph").get_attribute("data-zoom")) < zoom * 1.25 * 0.8
    # A name with markup is text; a control edge is dashed; the bad graph says why.
    hand = graph_card(page, "hand", "graph_def")
    hand.locator('.kb-gnode[data-name="head"]').click()
    page.wait_for_function(
        "([c, name]) => [...c.querySelectorAll('.kb-gnode')].some(n => n.dataset.name === name)",
        arg=[hand.element_handle(), HOSTILE_OP],
    )
    assert HOSTILE_OP.split("/")[1] in hand.evaluate(DRAWN)["texts"]
    assert page.locator("#panel-model img").count() == 0 and watched.dialogs == []
    assert hand.locator(".kb-gedge--control").count() == 1
    assert "not in the graph" in hand.locator(".kb-graph-status").text_content()
    assert hand.locator(".kb-graph-key").all_text_contents() == ["Identity", "Placeholder"]
    hand.locator(".kb-graph-color").select_option("device")
    expect(hand.locator(".kb-graph-key")).to_have_text(["/device:CPU:0"])
    # A hub (joined to more than 12 boxes) is set aside, its links listed, not drawn.
    hub = graph_card(page, "hub", "graph_def")
    # A tall graph opens readable (its text at 9 px or more, its top in view); Fit shows all.
    assert float(hub.locator(".kb-graph").get_attribute("data-zoom")) >= 0.75
    expect(hub.locator(".kb-graph-status")).to_contain_text("16 boxes shown")
    assert (
        hub.locator('.kb-gnode[data-name="layer_0"]').bounding_box()["y"]
        > (hub.locator(".kb-graph-canvas").bounding_box()["y"])
    )
    hub.get_by_role("button", name="Fit the graph").click()
    assert float(hub.locator(".kb-graph").get_attribute("data-zoom")) < 0.75
    hub.locator(".kb-gnode--hub").click()
    assert "⇄ 15 links, not drawn" in hub.evaluate(DRAWN)["texts"]
    assert hub.locator(".kb-gedge").count() == 14 and hub.locator(".kb-gnode--linked").count() == 15
    assert "layer_14" in hub.locator(".kb-graph-details").text_content()
    # 3,500 ops with no scope: one box of their op type, in parts of 100; opening them all
    # at once would be too many boxes, and is refused with a message.
    flat = graph_card(page, "flat", "graph_def")
    assert flat.evaluate(DRAWN)["nodes"] == ["[Relu ×3500]"]
    expect(flat.locator(".kb-graph-status")).to_have_text("1 box shown of 3,536 ops and scopes")
    flat.locator(".kb-gnode").click()
    page.wait_for_function(
        "c => c.querySelectorAll('.kb-gnode').length === 35", arg=flat.element_handle()
    )
    flat.get_by_role("button", name="Expand every box").click()
    expect(flat.locator(".kb-graph-status")).to_contain_text("more than 3,000 at once")
    assert flat.locator(".kb-gnode").count() == 35
    bad = graph_card(page, "bad", "graph_def")
    assert "not a readable GraphDef" in bad.locator(".kb-graph-error").text_content()
    trace = graph_card(page, "trace", "step_trace")
    assert trace.evaluate(DRAWN)["nodes"]  # the traced function graphs, by scope
    watched.assert_clean()


def test_live_updates_do_not_fetch_an_unchanged_graph_again(open_page, tmp_path: Path) -> None:
    from tests.conftest import scalar_event, write_events
    from tests.graph_logs import graph_event, hand_graph
    from tests.test_graph import one_op_graph

    events = tmp_path / "ops" / "events.out.tfevents.1.x"
    write_events(events, [graph_event(hand_graph())])
    watched = open_page(tmp_path, None)
    page = watched.page
    statuses: list[int] = []  # of each /api/graph response
    page.on("response", lambda r: "/api/graph?" in r.url and statuses.append(r.status))
    watched.open("?tab=model")
    card = graph_card(page, "ops", "graph_def")
    expand(page, card, "block")  # an opened box stays open across live updates
    assert statuses == [200]
    # The run gets a new scalar: the card reloads, and the graph costs a 304, no bytes.
    write_events(events, [scalar_event("loss", 1, 0.5)], append=True)
    page.wait_for_function(
        "() => performance.getEntriesByType('resource')"
        ".filter(e => e.name.includes('/api/graph?')).length >= 2",
        timeout=10_000,
    )
    page.wait_for_timeout(300)
    assert statuses == [200, 304]
    assert card.locator('.kb-ggroup[data-name="block"]').count() == 1
    # A new graph at a later step is fetched and drawn.
    write_events(events, [graph_event(one_op_graph("next_op"), step=2)], append=True)
    card.locator('.kb-gnode[data-name="next_op"]').wait_for(timeout=10_000)
    expect(card.locator(".kb-card-sample")).to_have_text("step 2")
    assert statuses[-1] == 200
    watched.assert_clean()


def test_a_graph_is_usable_from_the_keyboard(open_page, graph_logdir: Path) -> None:  # noqa: F811
    watched = open_page(graph_logdir, "?tab=model&runs=%5Etf1%24")
    page = watched.page
    card = graph_card(page, "tf1", "graph_def")
    canvas = card.locator(".kb-graph-canvas")
    assert "N and P select" in canvas.get_attribute("aria-label")
    canvas.focus()
    details = card.locator(".kb-graph-details-name")
    page.keyboard.press("n")  # the top box: the placeholder that feeds the encoder
    expect(details).to_have_text("x")
    page.keyboard.press("n")
    expect(details).to_have_text("encoder")
    page.keyboard.press("Enter")  # opens the selected box
    card.locator('.kb-ggroup[data-name="encoder"]').wait_for()
    page.keyboard.press("p")  # from no box drawn selected: the last one, at the bottom
    expect(details).to_have_text("loss")
    watched.assert_clean()


def test_a_run_shows_each_model_and_graph_once(
    open_page,
    graph_logdir: Path,  # noqa: F811
) -> None:
    watched = open_page(graph_logdir, "?tab=model&runs=%5Etwo_io%2F")
    page = watched.page
    graph_card(page, "two_io/kboard/train", "model_summary")
    graph_card(page, "two_io/keras/train", "keras")  # Keras's own callback: its config
    shown = page.locator("#panel-model .kb-model-card").evaluate_all(
        "cards => cards.map(c => [c.dataset.run, c.dataset.tag])"
    )
    assert sorted(shown) == [
        ["two_io/kboard/train", "model_summary"],
        ["two_io/keras/train", "keras"],
    ]
    # A meta graph read before the run's GraphDef is not a second card either.
    watched.open("?tab=model&runs=%5Emeta_first%24")
    graph_card(page, "meta_first", "graph_def")
    assert page.locator("#panel-model .kb-model-card").count() == 1
    assert watched.errors == [] and watched.foreign == []  # (leaving the page cut its stream)
