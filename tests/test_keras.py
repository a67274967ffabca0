"""KBoardCallback with real ``model.fit``, read back by kboard's reader and TensorBoard's."""

from __future__ import annotations

import gc
import io
import json
import os
import re
import signal
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("tensorflow")
import keras  # noqa: E402 - only with TensorFlow
from PIL import Image  # noqa: E402
from tensorboard.backend.event_processing import plugin_event_accumulator as pea  # noqa: E402
from tensorboard.util import tensor_util  # noqa: E402

from bench.server import free_port  # noqa: E402
from kboard.ingest import LogdirReader  # noqa: E402
from kboard.keras import KBoardCallback  # noqa: E402
from kboard.store import Store  # noqa: E402
from kboard.tfevents.events import Kind  # noqa: E402

EPOCHS = 5
BATCHES = 4  # per epoch: 40 training samples in batches of 10
HISTOGRAM_FREQ = 2


def tiny_data() -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(0)
    x = rng.random((52, 4)).astype("float32")
    y = (x.sum(axis=1) > 2).astype("float32")
    return x[:40], y[:40], x[40:], y[40:]


def tiny_model() -> keras.Model:
    """A model with a nested model and non-trainable weights (BatchNormalization)."""
    keras.utils.set_random_seed(0)
    inner = keras.Sequential(
        [
            keras.layers.Dense(3, activation="relu", name="hidden"),
            keras.layers.BatchNormalization(name="norm"),
        ],
        name="inner",
    )
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(5, activation="relu", name="first"),
            inner,
            keras.layers.Dropout(0.1, name="drop"),
            keras.layers.Dense(1, activation="sigmoid", name="out"),
        ],
        name="tiny",
    )
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model


def fit(model: keras.Model, callbacks: list[Any], epochs: int = EPOCHS) -> None:
    x, y, x_val, y_val = tiny_data()
    model.fit(
        x,
        y,
        batch_size=10,
        epochs=epochs,
        validation_data=(x_val, y_val),
        callbacks=callbacks,
        verbose=0,
    )


def read(logdir: Path) -> Store:
    reader = LogdirReader(str(logdir))
    reader.reload()
    assert reader.store.problems() == []
    return reader.store


def scalar_steps(store: Store, run: str, tag: str) -> list[int]:
    return store.scalars(run, tag).steps.tolist()


def accumulator(run_dir: Path) -> pea.EventAccumulator:
    acc = pea.EventAccumulator(str(run_dir), size_guidance={pea.TENSORS: 0})
    acc.Reload()
    return acc


def tb_steps(acc: pea.EventAccumulator, tag: str) -> list[int]:
    return [event.step for event in acc.Tensors(tag)]


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> dict[Any, tuple[Path, keras.Model]]:
    """One fit per ``update_freq`` mode, with histograms, weight images and steps per second."""
    out = {}
    for update_freq in ("epoch", "batch", 3):
        logdir = tmp_path_factory.mktemp(f"fit_{update_freq}")
        model = tiny_model()
        board = KBoardCallback(
            logdir,
            histogram_freq=HISTOGRAM_FREQ,
            write_images=True,
            write_steps_per_second=True,
            update_freq=update_freq,
        )
        fit(model, [board])
        out[update_freq] = (logdir, model)
    return out


@pytest.mark.parametrize("update_freq", ["epoch", "batch", 3])
def test_every_epoch_is_written_for_every_update_freq(logs: dict, update_freq: Any) -> None:
    logdir, model = logs[update_freq]
    store = read(logdir)
    assert store.runs() == ["train", "validation"]
    epochs = list(range(EPOCHS))
    for tag in ("epoch_loss", "epoch_accuracy", "epoch_learning_rate", "epoch_steps_per_second"):
        assert scalar_steps(store, "train", tag) == epochs, tag
    for tag in ("epoch_loss", "epoch_accuracy"):
        assert scalar_steps(store, "validation", tag) == epochs, tag
    iterations = [BATCHES * (epoch + 1) for epoch in epochs]
    assert scalar_steps(store, "validation", "evaluation_loss_vs_iterations") == iterations
    assert store.scalars("train", "epoch_learning_rate").values[0] == pytest.approx(0.001)

    every = {"epoch": None, "batch": 1, 3: 3}[update_freq]
    batch_tags = {t for t in store.tags(Kind.SCALARS)["train"] if t.startswith("batch_")}
    if every is None:
        assert batch_tags == set()
    else:
        assert batch_tags == {"batch_loss", "batch_accuracy", "batch_steps_per_second"}
        expected = [b for b in range(1, EPOCHS * BATCHES + 1) if b % every == 0]
        assert scalar_steps(store, "train", "batch_loss") == expected

    weights = [w.path for layer in model.layers for w in layer.weights]
    assert "tiny/inner/norm/moving_mean" in weights  # nested and non-trainable
    histograms = store.tags(Kind.HISTOGRAMS)["train"]
    assert set(histograms) == {f"{w}/histogram" for w in weights}
    for tag in histograms:
        steps = [s.step for s in store.samples("train", Kind.HISTOGRAMS, tag)]
        assert steps == list(range(0, EPOCHS, HISTOGRAM_FREQ))
    images = store.tags(Kind.IMAGES)["train"]
    assert "tiny/first/kernel/image" in images and "tiny/first/bias/image" in images
    kernel = store.samples("train", Kind.IMAGES, "tiny/first/kernel/image")[-1].value
    assert (kernel.width, kernel.height) == (5, 4)  # 4x5 kernel, wider than tall

    # TensorBoard's own reader sees the same steps.
    train, validation = accumulator(logdir / "train"), accumulator(logdir / "validation")
    assert tb_steps(train, "epoch_loss") == epochs
    assert tb_steps(validation, "epoch_loss") == epochs
    assert tb_steps(train, "tiny/first/kernel/histogram") == list(range(0, EPOCHS, HISTOGRAM_FREQ))
    loss = [float(tensor_util.make_ndarray(e.tensor_proto)) for e in train.Tensors("epoch_loss")]
    assert loss == store.scalars("train", "epoch_loss").values.tolist()
    assert train.SummaryMetadata("model_summary").plugin_data.plugin_name == "kboard_model_summary"
    assert train.SummaryMetadata("keras").plugin_data.plugin_name == "graph_keras_model"


def layer_counts(entries: list[dict], layers: list[Any]) -> None:
    """Check each summary entry against its layer, nested models included."""
    assert [e["name"] for e in entries] == [layer.name for layer in layers]
    for entry, layer in zip(entries, layers, strict=True):
        assert entry["class"] == type(layer).__name__
        assert entry["params"] == layer.count_params()
        assert entry["trainable"] is layer.trainable
        nested = getattr(layer, "layers", [])
        layer_counts(entry["layers"], nested)


def test_model_summary_matches_the_model(logs: dict) -> None:
    logdir, model = logs["epoch"]
    store = read(logdir)
    assert set(store.tags(Kind.MODEL)["train"]) == {"model_summary", "keras"}
    (sample,) = store.samples("train", Kind.MODEL, "model_summary")
    assert sample.step == 0
    summary = json.loads(sample.value)
    assert summary["format"] == "kboard.model_summary/1"
    assert (summary["name"], summary["class"]) == ("tiny", "Sequential")
    assert summary["total_params"] == model.count_params()
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert summary["trainable_params"] == trainable
    assert summary["non_trainable_params"] == model.count_params() - trainable > 0
    layer_counts(summary["layers"], model.layers)
    dense, inner = summary["layers"][0], summary["layers"][1]
    assert dense["output_shape"] == "(None, 5)"
    assert dense["config"] == {"units": 5, "activation": "relu", "use_bias": True}
    assert [e["class"] for e in inner["layers"]] == ["Dense", "BatchNormalization"]
    assert inner["layers"][1]["trainable"] is True and inner["layers"][1]["params"] == 12
    assert summary["layers"][2]["config"] == {"rate": 0.1}
    assert 'Model: "tiny"' in summary["text"] and "Total params: " in summary["text"]
    assert "[color" not in summary["text"]  # plain text, no rich markup
    (config,) = store.samples("train", Kind.MODEL, "keras")
    assert json.loads(config.value)["class_name"] == "Sequential"


def test_same_runs_tags_and_steps_as_keras_tensorboard(tmp_path: Path, logs: dict) -> None:
    """With update_freq="batch" Keras's own callback loses nothing: compare with it."""
    keras_dir = tmp_path / "keras"
    board = keras.callbacks.TensorBoard(
        keras_dir,
        histogram_freq=HISTOGRAM_FREQ,
        write_images=True,
        write_steps_per_second=True,
        update_freq="batch",
    )
    fit(tiny_model(), [board])

    def layout(store: Store) -> dict[tuple[str, str], tuple[str, list[int]]]:
        out = {}
        for kind in (Kind.SCALARS, Kind.HISTOGRAMS, Kind.IMAGES, Kind.MODEL):
            for run, tags in store.tags(kind).items():
                for tag, info in tags.items():
                    if kind is Kind.SCALARS:
                        steps = scalar_steps(store, run, tag)
                    else:
                        steps = [s.step for s in store.samples(run, kind, tag)]
                    out[run, tag] = (info.plugin_name, steps)
        return out

    ours = layout(read(logs["batch"][0]))
    assert ours.pop(("train", "model_summary")) == ("kboard_model_summary", [0])
    assert ours == layout(read(keras_dir))


@pytest.mark.parametrize(
    ("error", "position", "completed"),
    [(RuntimeError, "before", 3), (KeyboardInterrupt, "after", 4)],
)
def test_interrupted_fit_keeps_every_completed_epoch(
    tmp_path: Path, error: type[BaseException], position: str, completed: int
) -> None:
    """A callback raises at the end of epoch 3; Keras then never calls on_train_end."""

    def stop(epoch: int, logs: dict) -> None:
        if epoch == 3:
            raise error("stop")

    board = KBoardCallback(tmp_path, histogram_freq=1, update_freq=3)
    raiser = keras.callbacks.LambdaCallback(on_epoch_end=stop)
    callbacks = [raiser, board] if position == "before" else [board, raiser]
    with pytest.raises(error) as raised:
        fit(tiny_model(), callbacks, epochs=10)
    assert len(open_event_files(tmp_path)) == 2  # train and validation: never closed by Keras
    store = read(tmp_path)  # what is on disk was flushed at each epoch end
    for run in ("train", "validation"):
        assert scalar_steps(store, run, "epoch_loss") == list(range(completed))
    histogram = store.samples("train", Kind.HISTOGRAMS, "tiny/first/kernel/histogram")
    assert [s.step for s in histogram] == list(range(completed))
    assert [s.step for s in store.samples("train", Kind.MODEL, "model_summary")] == [0]
    del raised, board, callbacks  # the last references to the callback
    gc.collect()
    assert open_event_files(tmp_path) == []  # closed by the safety net


def open_event_files(logdir: Path) -> list[str]:
    """Return the event files under ``logdir`` that this process holds open (Linux)."""
    fds = Path("/proc/self/fd")
    if not fds.is_dir():
        pytest.skip("needs /proc/self/fd")
    targets = []
    for fd in fds.iterdir():
        try:
            targets.append(os.readlink(fd))
        except OSError:
            continue
    return [t for t in targets if t.startswith(str(logdir)) and "tfevents" in t]


def test_image_samples_and_conv_weight_images(tmp_path: Path) -> None:
    from kboard.demo import CLASS_NAMES, build_model, make_digits

    x, y = make_digits(72, seed=1)
    keras.utils.set_random_seed(0)
    model = build_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    board = KBoardCallback(
        tmp_path,
        histogram_freq=1,
        write_images=True,
        image_samples=(x[64:], y[64:]),
        class_names=CLASS_NAMES,
    )
    model.fit(x[:64], y[:64], epochs=2, batch_size=32, callbacks=[board], verbose=0)
    store = read(tmp_path)
    samples = store.samples("validation", Kind.IMAGES, "samples/predictions")
    assert [s.step for s in samples] == [0, 1] and len(samples[-1].value.samples) == 8
    picture = Image.open(io.BytesIO(samples[-1].value.samples[0]))
    assert picture.mode == "RGB" and picture.size == (samples[-1].value.width, 64 + 26)
    (table, _) = store.samples("validation", Kind.TEXT, "samples/predictions_table")
    assert str(table.value.item()).startswith("| # | label | prediction |")
    conv = store.samples("train", Kind.IMAGES, "digits_cnn/features/conv1/kernel/image")
    assert len(conv[-1].value.samples) == 3  # the first 3 of 8 kernels, as Keras writes
    assert (conv[-1].value.width, conv[-1].value.height) == (3, 3)
    assert "digits_cnn/features/conv2/kernel/image" not in store.tags(Kind.IMAGES)["train"]


def test_bad_arguments_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="update_freq"):
        KBoardCallback(tmp_path, update_freq=0)
    with pytest.raises(ValueError, match="update_freq"):
        KBoardCallback(tmp_path, update_freq="sometimes")
    with pytest.raises(ValueError, match="histogram_freq"):
        KBoardCallback(tmp_path, histogram_freq=-1)
    with pytest.warns(UserWarning, match="profile_batch"):
        KBoardCallback(tmp_path, profile_batch=(2, 4))
    with pytest.raises(ValueError, match="image_samples"):
        KBoardCallback(tmp_path, image_samples=(np.zeros((2, 4)), [0, 1]))


# -- kboard demo -----------------------------------------------------------------------
def get_json(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 404:  # no such tag yet
            return None
        raise


def test_demo_trains_while_serving_and_stops_on_ctrl_c(kboard_server) -> None:
    server = kboard_server(
        "demo",
        "--port",
        str(free_port()),
        "--epochs",
        "2",
        stop_signal=signal.SIGINT,
        stop_timeout=30,  # the demo stops its training process first
    )
    url = server.url
    counts: list[int] = []
    deadline = time.monotonic() + 90
    epochs: list[list[int]] = []
    while time.monotonic() < deadline:
        batches = get_json(url + "/api/scalars?tag=batch_loss")
        count = sum(len(s["steps"]) for s in batches["series"]) if batches else 0
        if count and (not counts or counts[-1] != count):
            counts.append(count)
        series = get_json(url + "/api/scalars?tag=epoch_loss")
        epochs = [s["steps"] for s in series["series"]] if series else []
        if epochs == [[0, 1], [0, 1]]:
            break
        time.sleep(0.1)
    assert epochs == [[0, 1], [0, 1]]
    assert len(counts) >= 2, counts  # the dashboard saw the run grow
    runs = get_json(url + "/api/runs")
    assert [r["name"] for r in runs["runs"]] == ["digits/train", "digits/validation"]
    assert runs["problems"] == []
    returncode = server.stop()
    err = server.output()
    assert returncode == 0, err
    assert "Traceback" not in err and "epoch 2/2" in err
    logdir = re.search(r"into (\S+)", err).group(1)
    assert not Path(logdir).exists()


def test_demo_without_tensorflow_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from kboard.cli import cli

    monkeypatch.setitem(sys.modules, "tensorflow", None)  # find_spec: not installed
    result = CliRunner().invoke(cli, ["demo", "--port", "0"])
    assert result.exit_code == 1
    assert 'pip install "kboard[tf]"' in result.output
