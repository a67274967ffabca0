"""Layer graphs of real Keras models and op graphs of real TensorFlow graphs (kboard/graph.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kboard.graph import MAX_GRAPH_BYTES, MAX_OPS, keras_graph, op_graph
from kboard.provider import load_logdir
from kboard.tfevents.events import Kind
from tests.conftest import write_events
from tests.graph_logs import (  # noqa: F401 (graph_logdir: a fixture)
    HOSTILE_OP,
    graph_event,
    graph_logdir,
    hand_graph,
    meta_graph_event,
)

# What each model's config says, written out by hand: (source, target) per use of a tensor.
EXPECTED_EDGES = {
    "resnet": [
        ("image", "stem"), ("stem", "conv_a"), ("conv_a", "conv_b"), ("stem", "skip_add"),
        ("conv_b", "skip_add"), ("skip_add", "pool"), ("pool", "logits"),
    ],
    "two_io": [
        ("in_a", "concat"), ("in_b", "concat"), ("concat", "trunk"), ("trunk", "out_reg"),
        ("trunk", "out_cls"),
    ],
    "nested": [
        ("inner_input", "inner_dense"), ("inner_dense", "inner_out"), ("x", "inner_seq"),
        ("inner_seq", "head"),
    ],
    "shared": [
        ("left", "tower"), ("right", "tower"), ("tower", "diff"), ("tower", "diff"),
        ("diff", "score"),
    ],
}  # fmt: skip
OUTPUTS = {"resnet": {"logits"}, "two_io": {"out_reg", "out_cls"}, "nested": {"head"}}


@pytest.fixture(scope="module")
def data(graph_logdir: Path):  # noqa: F811
    return load_logdir(str(graph_logdir))


def named_edges(graph: dict) -> list[tuple[str, str]]:
    names = {n["id"]: n["name"] for n in graph["nodes"]}
    return sorted((names[e["source"]], names[e["target"]]) for e in graph["edges"])


@pytest.mark.parametrize("model", sorted(EXPECTED_EDGES))
@pytest.mark.parametrize("writer,tag", [("keras", "keras"), ("kboard", "model_summary")])
def test_layer_graph_matches_the_config(data, model: str, writer: str, tag: str) -> None:
    graph = data.graph_view(f"{model}/{writer}/train", tag, Kind.MODEL)["graph"]
    assert graph["kind"] == "layers" and "error" not in graph
    assert named_edges(graph) == sorted(EXPECTED_EDGES[model])
    # Every layer of the config is one node, shared ones too; nested ones under their model.
    config = json.loads(data.samples(f"{model}/kboard/train", Kind.MODEL, "keras")[-1].value)
    top = [layer["config"]["name"] for layer in config["config"]["layers"]]
    assert [n["name"] for n in graph["nodes"] if n["parent"] is None] == top
    outputs = {n["name"] for n in graph["nodes"] if n.get("output")}
    assert outputs == OUTPUTS.get(model, {"score"})


def test_nested_and_shared_layers(data) -> None:
    nested = data.graph_view("nested/kboard/train", "model_summary", Kind.MODEL)["graph"]
    by_name = {n["name"]: n for n in nested["nodes"]}
    inner = by_name["inner_seq"]
    assert inner["class"] == "Sequential" and inner["parent"] is None
    assert by_name["inner_dense"]["parent"] == inner["id"]
    # kboard's summary adds parameter counts and output shapes to Keras's config.
    assert (by_name["inner_dense"]["params"], by_name["inner_dense"]["output_shape"]) == (
        28,
        "(None, 4)",
    )
    assert inner["params"] == 28 + 15 and by_name["head"]["params"] == 4
    assert '"units": 4' in by_name["inner_dense"]["config"]
    shared = data.graph_view("shared/keras/train", "keras", Kind.MODEL)["graph"]
    tower = next(n for n in shared["nodes"] if n["name"] == "tower")
    assert tower["calls"] == 2 and tower["output_shape"] == "(None, 4)"
    assert sorted(e["call"] for e in shared["edges"] if e["source"] == tower["id"]) == [0, 1]
    assert all(e["shape"] == "(None, 4)" for e in shared["edges"] if e["source"] == tower["id"])


def test_keras2_config_format() -> None:
    """tf.keras 2's inbound_nodes: lists of [layer, node index, tensor index, kwargs]."""
    config = {
        "class_name": "Functional",
        "config": {
            "name": "model",
            "layers": [
                {"class_name": "InputLayer", "name": "in", "inbound_nodes": [],
                 "config": {"name": "in", "batch_input_shape": [None, 3]}},
                {"class_name": "Dense", "name": "shared", "config": {"name": "shared", "units": 2},
                 "inbound_nodes": [[["in", 0, 0, {}]], [["in", 0, 0, {}]]]},
                {"class_name": "Add", "name": "add", "config": {"name": "add"},
                 "inbound_nodes": [[["shared", 0, 0, {}], ["shared", 1, 0, {}]]]},
            ],
            "input_layers": [["in", 0, 0]],
            "output_layers": [["add", 0, 0]],
        },
    }  # fmt: skip
    graph = keras_graph(json.dumps(config))
    assert named_edges(graph) == [
        ("in", "shared"),
        ("in", "shared"),
        ("shared", "add"),
        ("shared", "add"),
    ]
    assert [n["calls"] for n in graph["nodes"]] == [0, 2, 1]
    assert graph["nodes"][0]["output_shape"] == "(None, 3)" and graph["nodes"][2]["output"]


def test_keras2_sequential_is_a_chain() -> None:
    config = {"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "Dense", "config": {"name": "a", "units": 3}},
        {"class_name": "Dense", "config": {"name": "b", "units": 1}},
    ]}}  # fmt: skip
    assert named_edges(keras_graph(json.dumps(config))) == [("a", "b")]


def test_tf1_graph_def_and_meta_graph(data) -> None:
    import tensorflow as tf

    tags = data.tags(Kind.GRAPH)["tf1"]
    assert set(tags) == {"graph_def", "step_1"}  # the meta graph's copy is not a second card
    # The traced step's run metadata: its partition graph, what the session ran.
    traced = data.graph_view("tf1", "step_1", Kind.GRAPH)["graph"]
    assert tags["step_1"].plugin_name == "graph_tagged_run_metadata"
    assert any(name.startswith("decoder/") for name in traced["names"])
    graph = data.graph_view("tf1", "graph_def", Kind.GRAPH)["graph"]
    proto = tf.compat.v1.GraphDef.FromString(data.samples("tf1", Kind.GRAPH, "graph_def")[0].value)
    assert graph["names"] == [n.name for n in proto.node] and graph["count"] == len(proto.node)
    assert [graph["ops"][i] for i in graph["op"]] == [n.op for n in proto.node]
    edges = list(zip(graph["edges"][0::3], graph["edges"][1::3], graph["edges"][2::3]))
    expected = [
        (graph["names"].index(i.lstrip("^").split(":")[0]), k, int(i.startswith("^")))
        for k, n in enumerate(proto.node)
        for i in n.input
    ]
    assert edges == expected
    assert {n.split("/")[0] for n in graph["names"] if "/" in n} == {"encoder", "decoder", "loss"}
    assert graph["shapes"][graph["names"].index("x")] is None or "4" in graph["shapes"][0]


def _tensorboard_graph(run_dir: Path):
    """The one graph TensorBoard's event accumulator keeps for a run."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    return EventAccumulator(str(run_dir)).Reload().Graph()


def _proto(data: bytes):
    from tensorboard.compat.proto import graph_pb2

    return graph_pb2.GraphDef.FromString(data)


def test_one_graph_per_run_as_tensorboard_keeps(data, graph_logdir: Path, tmp_path: Path) -> None:  # noqa: F811
    # tf.compat.v1's FileWriter writes the graph twice: a GraphDef, then a MetaGraphDef holding it.
    stored = data.samples("tf1", Kind.GRAPH, "graph_def")
    assert [_proto(s.value) for s in stored] == [_tensorboard_graph(graph_logdir / "tf1")]
    # A meta graph alone is the run's graph; one after a GraphDef, even a different one, is not.
    meta_event = meta_graph_event(hand_graph())
    write_events(tmp_path / "meta" / "events.out.tfevents.1.x", [meta_event])
    other = one_op_graph("other")
    write_events(tmp_path / "both" / "events.out.tfevents.1.x", [graph_event(other), meta_event])
    logs = load_logdir(str(tmp_path))
    tags = logs.tags(Kind.GRAPH)
    assert {run: set(t) for run, t in tags.items()} == {
        "meta": {"meta_graph_def"},
        "both": {"graph_def"},
    }
    assert logs.samples("meta", Kind.GRAPH, "meta_graph_def")[0].value == hand_graph()
    assert _tensorboard_graph(tmp_path / "meta") == _proto(hand_graph())
    assert logs.samples("both", Kind.GRAPH, "graph_def")[0].value == other
    assert _tensorboard_graph(tmp_path / "both") == _proto(other)
    assert {(r.attempts, r.overwritten) for r in logs.runs()} == {(1, 0)}
    assert logs.problems() == []


def one_op_graph(name: str) -> bytes:
    """A one-op ``GraphDef``."""
    from tensorboard.compat.proto import graph_pb2

    graph = graph_pb2.GraphDef()
    graph.node.add(name=name, op="NoOp")
    return graph.SerializeToString()


def test_trace_export_graph(data) -> None:
    graph = data.graph_view("trace", "step_trace", Kind.GRAPH)["graph"]
    # Several traced functions are merged as TensorBoard merges them, each as graph_<i>/.
    (matmul,) = [n for n in graph["names"] if n.endswith("layer/MatMul")]
    assert matmul == "layer/MatMul" or matmul.startswith("graph_")
    assert "MatMul" in graph["ops"] and "(1, 3)" in graph["shapes"]


def test_hand_built_graph_def() -> None:
    graph = op_graph(hand_graph())
    names = graph["names"]
    edges = set(zip(graph["edges"][0::3], graph["edges"][1::3], graph["edges"][2::3]))
    assert (names.index("input"), names.index(HOSTILE_OP), 1) in edges  # control edge
    assert (names.index("block/dense/MatMul"), names.index("block/relu"), 0) in edges  # ":0" input
    assert "1 inputs name ops that are not in the graph" in graph["note"]
    assert graph["devices"] == ["/device:CPU:0"] and graph["attrs"][0] == "dtype: float"


def test_bad_and_enormous_graphs_say_why(data, tmp_path: Path) -> None:
    assert (
        "not a readable GraphDef"
        in data.graph_view("bad", "graph_def", Kind.GRAPH)["graph"]["error"]
    )
    from tensorboard.compat.proto import graph_pb2

    big = graph_pb2.GraphDef()
    for i in range(MAX_OPS + 1):
        big.node.add(name=f"n{i}", op="NoOp")
    write_events(
        tmp_path / "big" / "events.out.tfevents.1.x", [graph_event(big.SerializeToString())]
    )
    write_events(tmp_path / "ok" / "events.out.tfevents.1.x", [graph_event(hand_graph())])
    logs = load_logdir(str(tmp_path))
    assert "50,001 ops" in logs.graph_view("big", "graph_def", Kind.GRAPH)["graph"]["error"]
    assert logs.graph_view("ok", "graph_def", Kind.GRAPH)["graph"]["count"] == 6
    assert logs.problems() == []
    with pytest.raises(ValueError, match="kboard draws graphs up to 64 MiB"):
        op_graph(b"\n" * (MAX_GRAPH_BYTES + 1))


def test_graph_route(make_app, graph_logdir: Path) -> None:  # noqa: F811
    client = make_app(graph_logdir).test_client()
    body = client.get("/api/graph?run=tf1&tag=graph_def&kind=graph").get_json()
    assert body["graph"]["kind"] == "ops" and body["step"] == 0
    body = client.get("/api/graph?run=shared/kboard/train&tag=model_summary").get_json()
    assert body["graph"]["kind"] == "layers"
    assert client.get("/api/graph?run=tf1&tag=graph_def&kind=text").status_code == 400
    assert client.get("/api/graph?run=tf1&tag=nope&kind=graph").status_code == 404
    tags = client.get("/api/tags/graph").get_json()["tags"]
    assert set(tags) == {"tf1", "trace", "hand", "hub", "flat", "bad", "meta_first"}
    # A meta graph read before the run's GraphDef stays (the page shows the GraphDef only).
    assert set(tags["meta_first"]) == {"meta_graph_def", "graph_def"}
    assert tags["tf1"]["step_1"]["plugin"] == "graph_tagged_run_metadata"


def test_an_unchanged_graph_is_not_sent_again(make_app, tmp_path: Path) -> None:
    path = tmp_path / "run" / "events.out.tfevents.1.x"
    write_events(path, [graph_event(hand_graph())])
    app = make_app(tmp_path)
    client = app.test_client()
    url = "/api/graph?run=run&tag=graph_def&kind=graph"
    first = client.get(url)
    etag = first.headers["ETag"]
    assert first.status_code == 200 and first.get_json()["graph"]["count"] == 6
    assert first.headers["Cache-Control"] == "private, no-cache"
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b"" and again.headers["ETag"] == etag
    missing = client.get(url.replace("graph_def", "nope"), headers={"If-None-Match": etag})
    assert missing.status_code == 404
    # A new graph (a later step, then the same step rewritten) is sent in full.
    write_events(path, [graph_event(one_op_graph("next"), step=5)], append=True)
    app.extensions["kboard"].reader.reload()
    changed = client.get(url, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.get_json()["step"] == 5
    assert changed.headers["ETag"] != etag
    write_events(path, [graph_event(hand_graph(), step=5)], append=True)
    app.extensions["kboard"].reader.reload()
    rewritten = client.get(url, headers={"If-None-Match": changed.headers["ETag"]})
    assert rewritten.status_code == 200 and rewritten.get_json()["graph"]["count"] == 6
