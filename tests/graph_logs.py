"""A logdir of real graphs: Keras models logged by Keras's and kboard's callbacks, TF1 op graphs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import write_events

KERAS_MODELS = ("resnet", "two_io", "nested", "shared")
SCOPES = ("encoder", "decoder", "loss")
HOSTILE_OP = "head/<img src=x onerror=alert(1)>"  # an op name that is markup


def build_models() -> dict:
    """The four models of the tests: a skip connection, two ins and outs, a nested Sequential,
    a shared layer."""
    import keras
    from keras import layers

    def resnet():
        x = keras.Input((6, 6, 2), name="image")
        h = layers.Conv2D(3, 3, padding="same", name="stem")(x)
        y = layers.Conv2D(3, 3, padding="same", activation="relu", name="conv_a")(h)
        y = layers.Conv2D(3, 3, padding="same", name="conv_b")(y)
        z = layers.Add(name="skip_add")([h, y])
        z = layers.GlobalAveragePooling2D(name="pool")(z)
        return keras.Model(x, layers.Dense(2, name="logits")(z), name="resnet_block")

    def two_io():
        a, b = keras.Input((4,), name="in_a"), keras.Input((3,), name="in_b")
        h = layers.Concatenate(name="concat")([a, b])
        h = layers.Dense(5, activation="relu", name="trunk")(h)
        outputs = [layers.Dense(1, name="out_reg")(h), layers.Dense(3, name="out_cls")(h)]
        return keras.Model([a, b], outputs, name="two_io")

    def nested():
        inner = keras.Sequential(
            [
                layers.InputLayer(shape=(6,), name="inner_input"),
                layers.Dense(4, name="inner_dense"),
                layers.Dense(3, name="inner_out"),
            ],
            name="inner_seq",
        )
        x = keras.Input((6,), name="x")
        return keras.Model(x, layers.Dense(1, name="head")(inner(x)), name="outer")

    def shared():
        a, b = keras.Input((5,), name="left"), keras.Input((5,), name="right")
        tower = layers.Dense(4, name="tower")
        diff = layers.Subtract(name="diff")([tower(a), tower(b)])
        return keras.Model([a, b], layers.Dense(1, name="score")(diff), name="siamese")

    return {"resnet": resnet(), "two_io": two_io(), "nested": nested(), "shared": shared()}


def _fit_once(model, log_dir: Path) -> None:
    """One tiny training step with both callbacks, so each writes what it writes in real use."""
    import keras

    from kboard.keras import KBoardCallback

    rng = np.random.default_rng(0)
    xs = [rng.random((2, *t.shape[1:]), dtype=np.float32) for t in model.inputs]
    ys = [rng.random((2, *t.shape[1:]), dtype=np.float32) for t in model.outputs]
    model.compile("sgd", "mse")
    callbacks = [
        keras.callbacks.TensorBoard(str(log_dir / "keras"), write_graph=True),
        KBoardCallback(str(log_dir / "kboard"), histogram_freq=0),
    ]
    one = lambda arrays: arrays[0] if len(arrays) == 1 else arrays  # noqa: E731
    model.fit(one(xs), one(ys), epochs=1, batch_size=2, verbose=0, callbacks=callbacks)


def write_tf1_graph(log_dir: Path) -> int:
    """A TF1-style graph with name scopes, written by ``tf.compat.v1.summary.FileWriter``."""
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 4], name="x")
        h = x
        for scope in SCOPES[:2]:
            with tf.name_scope(scope):
                w = tf.Variable(tf.ones([4, 4]), name="w")
                h = tf.nn.relu(tf.matmul(h, w), name="act")
        with tf.name_scope(SCOPES[2]):
            tf.reduce_mean(tf.square(h), name="mse")
        writer = tf.compat.v1.summary.FileWriter(str(log_dir), graph)
        with tf.compat.v1.Session() as session:  # a traced step: tagged run metadata
            session.run(tf.compat.v1.global_variables_initializer())
            options = tf.compat.v1.RunOptions(
                trace_level=tf.compat.v1.RunOptions.FULL_TRACE, output_partition_graphs=True
            )
            metadata = tf.compat.v1.RunMetadata()
            session.run(h, {x: np.ones((2, 4))}, options=options, run_metadata=metadata)
            writer.add_run_metadata(metadata, "step_1")
        writer.flush()
        writer.close()
    return len(graph.as_graph_def().node)


def write_trace(log_dir: Path) -> None:
    """A TF2 op graph: ``tf.summary.trace_export`` of a ``tf.function``."""
    import tensorflow as tf

    @tf.function
    def step(x):
        with tf.name_scope("layer"):
            return tf.nn.relu(tf.matmul(x, tf.ones([3, 2])))

    writer = tf.summary.create_file_writer(str(log_dir))
    tf.summary.trace_on(graph=True, profiler=False)
    step(tf.ones([1, 3]))
    with writer.as_default():
        tf.summary.trace_export("step_trace", step=0)
    writer.close()


def hand_graph() -> bytes:
    """A hand-built ``GraphDef``: two scopes, a control edge, an op whose input is missing."""
    from tensorboard.compat.proto import graph_pb2

    graph = graph_pb2.GraphDef()
    for name, op, inputs in (
        ("input", "Placeholder", []),
        ("block/dense/MatMul", "MatMul", ["input", "block/dense/kernel"]),
        ("block/dense/kernel", "Const", []),
        ("block/relu", "Relu", ["block/dense/MatMul:0"]),
        (HOSTILE_OP, "Identity", ["block/relu", "^input"]),
        ("orphan", "Identity", ["not_there"]),
    ):
        node = graph.node.add(name=name, op=op, device="/device:CPU:0")
        node.input.extend(inputs)
    graph.node[0].attr["dtype"].type = 1
    return graph.SerializeToString()


def hub_graph(layers: int = 15) -> bytes:
    """A chain of scopes and one ``init`` op that depends on every one of them (a hub)."""
    from tensorboard.compat.proto import graph_pb2

    graph = graph_pb2.GraphDef()
    for i in range(layers):
        graph.node.add(name=f"layer_{i}/op", op="Relu", input=[f"layer_{i - 1}/op"] if i else [])
    graph.node.add(name="init", op="NoOp", input=[f"^layer_{i}/op" for i in range(layers)])
    return graph.SerializeToString()


def flat_graph(ops: int = 3_500) -> bytes:
    """A chain of ops of one type with no scopes: boxed in parts of 100 by the page."""
    from tensorboard.compat.proto import graph_pb2

    graph = graph_pb2.GraphDef()
    for i in range(ops):
        graph.node.add(name=f"op_{i}", op="Relu", input=[f"op_{i - 1}"] if i else [])
    return graph.SerializeToString()


def graph_event(data: bytes, step: int = 0):
    from tensorboard.compat.proto import event_pb2

    return event_pb2.Event(step=step, wall_time=1.0 + step, graph_def=data)


def meta_graph_event(data: bytes, step: int = 0):
    """An event whose ``meta_graph_def`` holds the ``GraphDef`` ``data``."""
    from tensorboard.compat.proto import event_pb2, meta_graph_pb2

    meta = meta_graph_pb2.MetaGraphDef()
    meta.graph_def.ParseFromString(data)
    return event_pb2.Event(step=step, wall_time=1.0 + step, meta_graph_def=meta.SerializeToString())


_BUILT: list[Path] = []  # the logdir, built once however many test modules import the fixture


@pytest.fixture(scope="session")
def graph_logdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Runs ``<model>/keras/train`` and ``<model>/kboard/train`` for each model, ``tf1``,
    ``trace``, ``hand`` (a hand-built GraphDef), ``hub`` (one op joined to 15 scopes),
    ``flat`` (3,500 ops, no scopes), ``bad`` (bytes that are no GraphDef) and ``meta_first``
    (a meta graph, then the same GraphDef)."""
    pytest.importorskip("tensorflow")
    if _BUILT:
        return _BUILT[0]
    import keras

    logdir = tmp_path_factory.mktemp("graph_logs")
    write_trace(logdir / "trace")  # first: a trace records every function that runs
    keras.utils.set_random_seed(0)
    for name, model in build_models().items():
        _fit_once(model, logdir / name)
    write_tf1_graph(logdir / "tf1")
    write_events(logdir / "hand" / "events.out.tfevents.1.hand", [graph_event(hand_graph())])
    write_events(logdir / "hub" / "events.out.tfevents.1.hub", [graph_event(hub_graph())])
    write_events(logdir / "flat" / "events.out.tfevents.1.flat", [graph_event(flat_graph())])
    write_events(
        logdir / "bad" / "events.out.tfevents.1.bad", [graph_event(b"\xff\xff not a graph")]
    )
    write_events(
        logdir / "meta_first" / "events.out.tfevents.1.meta",
        [meta_graph_event(hand_graph()), graph_event(hand_graph())],
    )
    return logdir
