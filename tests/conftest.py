"""Fixtures that build real logdirs with real writers."""

from __future__ import annotations

import contextlib
import itertools
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from bench.server import Server, running_kboard
from kboard.tfevents.records import encode_record

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Servers started by tests (and their subprocesses) cache decoded runs here, not in ~/.cache.
os.environ["KBOARD_CACHE_DIR"] = tempfile.mkdtemp(prefix="kboard-test-cache-")

STEPS = 6
# Longer than any test runs a server: a hung test's server is stopped after this many seconds.
SERVER_LIFETIME = 300.0


def _tf():
    return pytest.importorskip("tensorflow")


@pytest.fixture(scope="session")
def tf_logdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two runs written by real ``tf.summary``: scalars, images, histograms, text, audio."""
    tf = _tf()
    logdir = tmp_path_factory.mktemp("tf_logs")
    rng = np.random.default_rng(0)
    for run, scale in (("train", 1.0), ("eval", 2.0)):
        writer = tf.summary.create_file_writer(str(logdir / run))
        with writer.as_default():
            for step in range(STEPS):
                tf.summary.scalar("loss", scale / (step + 1), step=step)
                tf.summary.scalar("metrics/accuracy", 1 - 0.1 * scale / (step + 1), step=step)
                tf.summary.histogram("weights", rng.normal(scale, 1, 500), step=step)
                tf.summary.image("samples", rng.random((2, 8, 6, 3)), step=step, max_outputs=2)
                tf.summary.text("notes", f"**step** {step} of {run} — ünïcode", step=step)
            tf.summary.audio("sound", rng.random((1, 100, 1)).astype("float32"), 8000, step=0)
        writer.close()
    return logdir


@pytest.fixture(scope="session")
def legacy_logdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run written by tensorboardX: legacy simple_value, Summary.Image and HistogramProto."""
    tbx = pytest.importorskip("tensorboardX")
    logdir = tmp_path_factory.mktemp("tbx_logs")
    rng = np.random.default_rng(1)
    with tbx.SummaryWriter(str(logdir / "torch_style")) as writer:
        for step in range(STEPS):
            writer.add_scalar("loss", 1.0 / (step + 1), step)
            writer.add_histogram("hist", rng.normal(0, 1, 300), step)
            writer.add_image("img", rng.random((3, 5, 7)), step)
            writer.add_text("note", f"legacy text {step}", step)
    return logdir


def write_events(path: Path, events: list, *, append: bool = False) -> None:
    """Write ``Event`` protos as framed records (the file_version event first when new)."""
    from tensorboard.compat.proto import event_pb2

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab" if append else "wb") as out:
        if not append:
            out.write(
                encode_record(event_pb2.Event(file_version="brain.Event:2").SerializeToString())
            )
        for event in events:
            out.write(encode_record(event.SerializeToString()))


def scalar_event(
    tag: str,
    step: int,
    value: float,
    *,
    wall_time: float | None = None,
    with_metadata: bool = True,
    legacy: bool = False,
):
    """Build one scalar ``Event`` the way tf.summary (or torch, with ``legacy``) writes it."""
    from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, types_pb2

    wall = float(step) + 1000.0 if wall_time is None else wall_time
    if legacy:
        val = summary_pb2.Summary.Value(tag=tag, simple_value=value)
    else:
        tensor = tensor_pb2.TensorProto(
            dtype=types_pb2.DT_FLOAT, tensor_content=np.float32(value).tobytes()
        )
        val = summary_pb2.Summary.Value(tag=tag, tensor=tensor)
        if with_metadata:
            val.metadata.plugin_data.plugin_name = "scalars"
    return event_pb2.Event(wall_time=wall, step=step, summary=summary_pb2.Summary(value=[val]))


@pytest.fixture(scope="session")
def mixed_logdir(
    tmp_path_factory: pytest.TempPathFactory,
    tf_logdir: Path,
    legacy_logdir: Path,
) -> Path:
    """tf.summary runs, a tensorboardX run and a kboard-writer run in one logdir."""
    import shutil

    from kboard import SummaryWriter

    logdir = tmp_path_factory.mktemp("mixed_logs")
    for source in (tf_logdir, legacy_logdir):
        for run in source.iterdir():
            shutil.copytree(run, logdir / run.name)
    with SummaryWriter(str(logdir / "kboard_writer")) as writer:
        for step in range(STEPS):
            writer.add_scalar("loss", 3.0 / (step + 1), step)
            writer.add_scalar(
                "odd", [float("nan"), float("inf"), -float("inf"), 1.5][step % 4], step
            )
            writer.add_histogram("w", np.linspace(-1, 1, 100) * (step + 1), step)
    return logdir


@pytest.fixture()
def kboard_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start ``python -m kboard ARGS`` processes, each once it prints its URL; all stop after.

    ``server = kboard_server("serve", "--logdir", logdir)`` gives ``server.url``, ``.port``,
    ``.proc``, ``.output()`` and ``.stop()`` (SIGTERM; ``stop_signal=signal.SIGINT`` for Ctrl-C).
    """
    numbers = itertools.count()
    with contextlib.ExitStack() as stack:

        def start(*args: str | Path, **kwargs) -> Server:
            kwargs.setdefault("lifetime", SERVER_LIFETIME)
            kwargs.setdefault("log", tmp_path / f"kboard-{next(numbers)}.log")
            return stack.enter_context(running_kboard(*args, **kwargs))

        yield start


@pytest.fixture()
def make_app():
    """Build apps without live reloading (tests reload explicitly); stop any that went live."""
    from kboard.server.app import create_app

    apps = []

    def build(logdir: Path | str, **kwargs):
        kwargs.setdefault("live", False)
        app = create_app(str(logdir), **kwargs)
        apps.append(app)
        return app

    yield build
    for app in apps:
        live = app.extensions["kboard"].live
        if live is not None:
            live.stop()


@pytest.fixture()
def client(make_app, mixed_logdir: Path):
    """A Flask test client over the mixed logdir."""
    return make_app(mixed_logdir).test_client()


@pytest.fixture(scope="session")
def keras_logdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Logs of a real ``model.fit`` with ``keras.callbacks.TensorBoard`` on a nested model."""
    _tf()
    import keras

    logdir = tmp_path_factory.mktemp("keras_logs")
    keras.utils.set_random_seed(0)
    inner = keras.Sequential(
        [keras.layers.Dense(4, activation="relu"), keras.layers.Dense(2)], name="inner"
    )
    inputs = keras.Input((3,))
    outputs = inner(keras.layers.Dense(8, name="first")(inputs))
    model = keras.Model(inputs, outputs, name="outer")
    model.compile("adam", "mse", metrics=["mae"])
    rng = np.random.default_rng(0)
    callback = keras.callbacks.TensorBoard(str(logdir), histogram_freq=1, write_images=True)
    model.fit(
        rng.random((32, 3)),
        rng.random((32, 2)),
        epochs=3,
        validation_split=0.25,
        verbose=0,
        callbacks=[callback],
    )
    return logdir


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """An S3-compatible server (moto's, real HTTP) on loopback; the AWS variables point at it."""
    moto_server = pytest.importorskip("moto.server")
    pytest.importorskip("s3fs")
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto logs every request
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    with pytest.MonkeyPatch.context() as env:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE"):
            env.delenv(name, raising=False)
        env.setenv("AWS_ENDPOINT_URL", endpoint)
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        yield endpoint
    server.stop()
