"""Restarted, resumed and repeated runs: every value written stays reachable.

Each situation is written by a real writer. The default view must equal TensorBoard's Rust
data server (``--load_fast=true``) point for point; every value ever written must equal, in
order, what TensorBoard's Python ``EventAccumulator`` keeps when it purges nothing.
"""

from __future__ import annotations

import csv
import io
import json
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from tensorboard.compat.proto import event_pb2
from tensorboard.util import tensor_util

from bench.server import running
from kboard.ingest import LogdirReader
from kboard.provider import DataProvider
from kboard.tfevents.events import Kind

from .conftest import scalar_event, write_events

TRAININGS = 5  # trainings started again into one directory
STEPS = 20


@pytest.fixture(scope="module")
def restarted_logdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One run per situation of issue #13, each written by a real writer."""
    tf = pytest.importorskip("tensorflow")
    torch_tb = pytest.importorskip("torch.utils.tensorboard")
    from kboard import SummaryWriter

    logdir = tmp_path_factory.mktemp("restarts")
    # Trainings started again into the same directory, no restart marker (kboard's writer).
    for training in range(TRAININGS):
        with SummaryWriter(str(logdir / "retrained")) as writer:
            for step in range(STEPS):
                writer.add_scalar("loss", 100.0 * training + step, step)
    # The same script run twice into one run directory (tf.summary).
    for run_index in range(2):
        writer = tf.summary.create_file_writer(str(logdir / "twice"))
        with writer.as_default():
            for step in range(10):
                tf.summary.scalar("loss", 10.0 * run_index + step, step=step)
        writer.close()
    # Three values logged at each step (torch's own SummaryWriter).
    with torch_tb.SummaryWriter(str(logdir / "three_per_step")) as writer:
        for step in range(10):
            for k in range(3):
                writer.add_scalar("metric", step + k / 10, step)
    # Each step written twice: the value, then 0.0 (tf.summary).
    writer = tf.summary.create_file_writer(str(logdir / "value_then_zero"))
    with writer.as_default():
        for step in range(10):
            tf.summary.scalar("acc", step / 10, step=step)
            tf.summary.scalar("acc", 0.0, step=step)
    writer.close()
    # Training resumed from a checkpoint: model.fit again with initial_epoch (Keras callback).
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    rng = np.random.default_rng(0)
    x, y = rng.random((16, 3)), rng.random((16, 1))
    resumed = str(logdir / "resumed")
    for initial, epochs in ((0, 6), (4, 8)):
        callback = keras.callbacks.TensorBoard(resumed, write_graph=False)
        model.fit(x, y, epochs=epochs, initial_epoch=initial, verbose=0, callbacks=[callback])
    # A restart marker: SessionLog.START at step 5 after steps 0..9.
    start = event_pb2.Event(step=5, wall_time=2000.0)
    start.session_log.status = event_pb2.SessionLog.START
    write_events(
        logdir / "marked" / "events.out.tfevents.1",
        [scalar_event("loss", s, float(s)) for s in range(10)]
        + [start]
        + [scalar_event("loss", s, 100.0 + s, wall_time=3000.0 + s) for s in range(5, 8)],
    )
    return logdir


def read(logdir: Path) -> DataProvider:
    reader = LogdirReader(str(logdir))
    reader.reload()
    return DataProvider(reader.store, str(logdir))


def accumulated(run_dir: Path) -> dict[str, list[tuple[int, float, float]]]:
    """Every scalar event TensorBoard's Python loader keeps when it purges nothing."""
    from tensorboard.backend.event_processing import plugin_event_accumulator as pea

    acc = pea.EventAccumulator(
        str(run_dir), tensor_size_guidance={"scalars": 0}, purge_orphaned_data=False
    )
    acc.Reload()
    return {
        tag: [
            (e.step, e.wall_time, float(tensor_util.make_ndarray(e.tensor_proto)))
            for e in acc.Tensors(tag)
        ]
        for tag in acc.PluginTagToContent("scalars")
    }


def runs_and_tags(logdir: Path) -> list[tuple[str, str]]:
    data = read(logdir)
    return [(run, tag) for run, tag, _ in data.iter_scalars()]


def test_every_value_written_is_kept_in_write_order(restarted_logdir: Path) -> None:
    data = read(restarted_logdir)
    compared = 0
    for run in (r.name for r in data.runs()):
        expected = accumulated(restarted_logdir / run)
        assert set(expected) == set(data.tags(Kind.SCALARS)[run])
        for tag, events in expected.items():
            hist = data.scalar_history(run, tag)
            ours = list(zip(hist.steps.tolist(), hist.wall_times.tolist(), hist.values.tolist()))
            assert ours == events, (run, tag)
            compared += 1
    assert compared >= 7
    retrained = data.scalar_history("retrained", "loss")
    assert len(retrained) == TRAININGS * STEPS
    assert retrained.attempts.tolist() == np.repeat(np.arange(TRAININGS), STEPS).tolist()
    assert retrained.overwritten.sum() == (TRAININGS - 1) * STEPS


def test_attempts_and_overwritten_values_per_situation(restarted_logdir: Path) -> None:
    data = read(restarted_logdir)
    runs = {r.name: r for r in data.runs()}
    assert (runs["retrained"].attempts, runs["retrained"].overwritten) == (TRAININGS, 80)
    assert (runs["twice"].attempts, runs["twice"].overwritten) == (2, 10)
    # Several values at one step are one attempt: the last is shown.
    assert (runs["three_per_step"].attempts, runs["three_per_step"].overwritten) == (1, 20)
    assert data.scalars("three_per_step", "metric").values.tolist() == pytest.approx(
        [s + 0.2 for s in range(10)]
    )
    assert (runs["value_then_zero"].attempts, runs["value_then_zero"].overwritten) == (1, 10)
    # Resumed at epoch 4 of 6: the two replaced epochs of each epoch tag are kept.
    assert runs["resumed/train"].attempts == 2
    hist = data.scalar_history("resumed/train", "epoch_loss")
    assert hist.steps.tolist() == [0, 1, 2, 3, 4, 5, 4, 5, 6, 7]
    assert hist.overwritten.tolist() == [False] * 4 + [True, True] + [False] * 4
    assert data.scalars("resumed/train", "epoch_loss").steps.tolist() == list(range(8))
    # SessionLog.START begins a new attempt even without a step going back.
    marked = data.scalar_history("marked", "loss")
    assert marked.attempts.tolist() == [0] * 10 + [1] * 3
    assert data.scalars("marked", "loss").values.tolist() == [0, 1, 2, 3, 4, 105, 106, 107]


@pytest.fixture(scope="module")
def rust_tensorboard(restarted_logdir: Path, tmp_path_factory: pytest.TempPathFactory):
    """TensorBoard's Rust data server on the same logdir, once it has read every run."""
    cmd = [
        sys.executable,
        "-m",
        "tensorboard.main",
        "--logdir",
        str(restarted_logdir),
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--load_fast",
        "true",
        "--reload_interval",
        "1",
    ]
    log = tmp_path_factory.mktemp("tb_rust") / "tensorboard.log"
    with running(cmd, timeout=90, lifetime=600, log=log) as server:
        yield server.url


def fetch(url: str):
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def test_default_view_equals_tensorboards_rust_data_server(
    restarted_logdir: Path, rust_tensorboard: str, make_app
) -> None:
    client = make_app(restarted_logdir).test_client()
    # SessionLog.START is applied by kboard (as TensorBoard's Python loader does); the
    # Rust server ignores it, so that run is checked in the test above instead.
    series = [(r, t) for r, t in runs_and_tags(restarted_logdir) if r != "marked"]
    deadline = time.monotonic() + 60
    mismatched: list[tuple[str, str]] = []
    while time.monotonic() < deadline:
        mismatched = []
        for run, tag in series:
            query = f"/data/plugin/scalars/scalars?run={run}&tag={tag}"
            ours = client.get(query).get_json()
            try:
                theirs = fetch(rust_tensorboard + query)
            except OSError:
                theirs = None
            if theirs != ours:
                mismatched.append((run, tag))
        if not mismatched:
            break
        time.sleep(1)
    assert mismatched == [], "default view differs from tensorboard --load_fast=true"
    assert len(series) >= 6


def test_the_api_marks_restarts_and_serves_earlier_attempts(
    restarted_logdir: Path, make_app
) -> None:
    client = make_app(restarted_logdir).test_client()
    runs = {r["name"]: r for r in client.get("/api/runs").get_json()["runs"]}
    assert (runs["retrained"]["attempts"], runs["retrained"]["overwritten"]) == (TRAININGS, 80)
    assert (runs["marked"]["attempts"], runs["marked"]["overwritten"]) == (2, 5)
    plain = client.get("/api/scalars?tag=loss&run=retrained").get_json()["series"][0]
    assert plain["restarts"] == [0] * (TRAININGS - 1) and "earlier" not in plain
    assert plain["values"] == [100.0 * (TRAININGS - 1) + s for s in range(STEPS)]
    full = client.get("/api/scalars?tag=loss&run=retrained&overwritten=1").get_json()
    earlier = full["series"][0]["earlier"]
    assert [e["attempt"] for e in earlier] == list(range(TRAININGS - 1))
    for e in earlier:
        assert e["values"] == [100.0 * e["attempt"] + s for s in range(STEPS)]
    assert full["series"][0]["values"] == plain["values"]  # the view itself is unchanged
    assert client.get("/api/scalars?tag=loss&overwritten=maybe").status_code == 400


def test_export_and_read_scalars_give_every_value(
    restarted_logdir: Path, make_app, tmp_path: Path
) -> None:
    client = make_app(restarted_logdir).test_client()
    plain = client.get("/api/export?runs=^retrained$").get_data(as_text=True)
    assert plain.splitlines()[0] == "run,tag,step,wall_time,value"
    assert len(plain.splitlines()) == 1 + STEPS
    full = client.get("/api/export?runs=^retrained$&overwritten=1").get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(full)))
    assert list(rows[0]) == ["run", "tag", "step", "wall_time", "value", "attempt", "overwritten"]
    assert len(rows) == TRAININGS * STEPS
    assert [r["overwritten"] for r in rows].count("true") == (TRAININGS - 1) * STEPS
    assert {r["attempt"] for r in rows} == {str(a) for a in range(TRAININGS)}
    as_json = client.get("/api/export?runs=^retrained$&overwritten=1&format=json").get_json()
    assert as_json[0]["attempt"] == 0 and as_json[0]["overwritten"] is True
    wide = client.get("/api/export?overwritten=1&layout=wide")
    assert wide.status_code == 400 and "long layout" in wide.get_json()["error"]

    import kboard

    frame = kboard.read_scalars(str(restarted_logdir), runs="^twice$", overwritten=True)
    assert list(frame.columns) == [
        "run",
        "tag",
        "step",
        "wall_time",
        "value",
        "attempt",
        "overwritten",
    ]
    assert frame["value"].tolist() == [float(v) for v in range(10)] + [10.0 + v for v in range(10)]
    assert frame["overwritten"].tolist() == [True] * 10 + [False] * 10
    assert len(kboard.read_scalars(str(restarted_logdir), runs="^twice$")) == 10
    with pytest.raises(ValueError, match="long layout"):
        kboard.read_scalars(str(restarted_logdir), pivot=True, overwritten=True)


def test_cli_export_and_inspect_report_restarts(restarted_logdir: Path, tmp_path: Path) -> None:
    import subprocess

    def kboard_cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "kboard", *args], capture_output=True, text=True, timeout=120
        )

    out = tmp_path / "all.csv"
    result = kboard_cli(
        "export", "--logdir", str(restarted_logdir), "--runs", "^retrained$", "--overwritten",
        "-o", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert len(out.read_text(encoding="utf-8").splitlines()) == 1 + TRAININGS * STEPS
    wide = kboard_cli(
        "export", "--logdir", str(restarted_logdir), "--overwritten", "--format", "wide"
    )
    assert wide.returncode == 2 and "--format long" in wide.stderr
    inspect = kboard_cli("inspect", "--logdir", str(restarted_logdir))
    lines = inspect.stdout.splitlines()
    at = lines.index("run retrained")
    assert lines[at + 1].strip().startswith(f"restarted {TRAININGS - 1} times: 80 earlier values")


def test_restarts_survive_the_warm_start_cache(restarted_logdir: Path, tmp_path: Path) -> None:
    from kboard.cache import RunCache

    first = LogdirReader(str(restarted_logdir), cache=RunCache(str(tmp_path)))
    first.reload()
    first.save_cache(min_new_bytes=0)
    second = LogdirReader(str(restarted_logdir), cache=RunCache(str(tmp_path)))
    assert "retrained" in second.reload().runs_from_cache
    a = first.store.scalar_history("retrained", "loss")
    b = second.store.scalar_history("retrained", "loss")
    for field in ("steps", "wall_times", "values", "attempts", "overwritten"):
        assert getattr(a, field).tolist() == getattr(b, field).tolist(), field
    assert second.store.restarts("retrained") == (TRAININGS, 80)


def reference(
    batches: list[list[int]],
) -> tuple[list[tuple[int, int]], list[tuple[int, int, bool]]]:
    """The rules of issue #13, one point at a time: (view, history) as (step, index) pairs."""
    view: list[tuple[int, int, int]] = []  # (step, index written, attempt)
    old: list[tuple[int, int, int]] = []
    attempt, index = 0, 0
    for batch in batches:
        for step in batch:
            if view and step < view[-1][0]:
                attempt += 1
            while view and view[-1][0] >= step:
                old.append(view.pop())
            view.append((step, index, attempt))
            index += 1
    everything = sorted(
        [(a, i, s, True) for s, i, a in old] + [(a, i, s, False) for s, i, a in view]
    )  # write order is index order
    return [(s, i) for s, i, _ in view], [(s, a, o) for a, i, s, o in everything]


@pytest.mark.parametrize("seed", range(20))
def test_store_follows_the_rules_point_by_point(seed: int) -> None:
    from kboard.store import ScalarSeries

    rng = np.random.default_rng(seed)
    steps = rng.integers(0, 30, size=int(rng.integers(1, 120))).tolist()
    cuts = sorted(rng.choice(len(steps) + 1, size=min(4, len(steps)), replace=False).tolist())
    batches = [steps[a:b] for a, b in zip([0, *cuts], [*cuts, len(steps)]) if b > a]
    series = ScalarSeries()
    offset = 0
    for batch in batches:
        indices = np.arange(offset, offset + len(batch), dtype=float)
        series.extend(np.array(batch), indices, indices)  # the value is the write index
        offset += len(batch)
    want_view, want_history = reference(batches)
    view = series.snapshot()
    assert list(zip(view.steps.tolist(), view.values.astype(int).tolist())) == want_view
    hist = series.history()
    got = list(zip(hist.steps.tolist(), hist.attempts.tolist(), hist.overwritten.tolist()))
    assert got == want_history
    assert hist.values.tolist() == sorted(hist.values.tolist())  # write order


def test_replaced_images_and_text_stay_reachable(tmp_path: Path, make_app) -> None:
    from kboard import SummaryWriter

    for training in range(2):
        with SummaryWriter(str(tmp_path / "run")) as writer:
            for step in range(3):
                shade = (training * 3 + step) / 6
                writer.add_image("img", np.full((3, 2, 2), shade), step)
                writer.add_text("notes", f"training {training}, step {step}", step)
    client = make_app(tmp_path).test_client()
    plain = client.get("/api/images?run=run&tag=img").get_json()
    assert [s["step"] for s in plain["steps"]] == [0, 1, 2] and "earlier" not in plain
    full = client.get("/api/images?run=run&tag=img&overwritten=1").get_json()
    assert [(e["attempt"], e["step"]) for e in full["earlier"]] == [(0, 0), (0, 1), (0, 2)]
    now = client.get("/api/image?run=run&tag=img&step=1").data
    before = client.get("/api/image?run=run&tag=img&step=1&attempt=0")
    assert before.status_code == 200 and before.data != now
    assert client.get("/api/image?run=run&tag=img&step=1&attempt=7").status_code == 404
    texts = client.get("/api/text?run=run&tag=notes&overwritten=1").get_json()["entries"]
    assert [(t["attempt"], t["overwritten"]) for t in texts] == [(0, True)] * 3 + [(1, False)] * 3
    assert "training 0, step 2" in texts[2]["html"]
    shown = client.get("/api/text?run=run&tag=notes").get_json()["entries"]
    assert ["training 1" in t["html"] for t in shown] == [True] * 3
