"""Hyperparameters read, written without TensorFlow, and the runs table (provider, API, CLI)."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from kboard import SummaryWriter, summary
from kboard.cli import cli
from kboard.hparams import hparam_group_key
from kboard.provider import NotFound, load_logdir
from kboard.tfevents import protos

from . import hparams_logs
from .conftest import write_events


def plugin_content(value: Any) -> Any:
    """A summary value's hparams plugin data, parsed."""
    from tensorboard.plugins.hparams import plugin_data_pb2

    return plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)


def test_kboard_writes_the_protobufs_hp_writes() -> None:
    """Byte for byte what ``hp`` writes (its builders need no TensorFlow)."""
    from tensorboard.plugins.hparams import summary_v2

    values = {"lr": 0.1, "units": 4, "optimizer": "adam", "use_bias": True}
    theirs = summary_v2.hparams_pb(values, trial_id="t", start_time_secs=5.0).value[0]
    ours = protos.session_start(values, group_name="t", start_time_secs=5.0)
    # A map's serialized order varies from process to process (hp's own bytes too): compare
    # the plugin data parsed, and everything else as it is.
    assert plugin_content(ours) == plugin_content(theirs)
    ours.metadata.plugin_data.content = theirs.metadata.plugin_data.content
    assert ours == theirs
    config = hparams_logs.hp_config(summary_v2)
    theirs = summary_v2.hparams_config_pb(*config, time_created_secs=7.0).value[0]
    writer_infos = []
    for hparam in config[0]:
        info = protos.api_pb2.HParamInfo(
            name=hparam.name, description=hparam.description, display_name=hparam.display_name
        )
        hparam.domain.update_hparam_info(info)
        writer_infos.append(info)
    ours = protos.experiment(writer_infos, [m.as_proto() for m in config[1]], 7.0)
    assert ours == theirs
    # The group name hp derives when no trial id is given is the same too.
    derived = summary_v2.hparams_pb(values, start_time_secs=5.0).value[0]
    ours = protos.session_start(
        values, group_name=summary.session_group_name(None, values), start_time_secs=5.0
    )
    assert plugin_content(derived) == plugin_content(ours)


def test_torch_and_kboard_add_hparams_read_alike(tmp_path: Path) -> None:
    from torch.utils.tensorboard import SummaryWriter as TorchWriter

    torch_dir = hparams_logs.write_torch_style(tmp_path / "torch", TorchWriter)
    ours_dir = hparams_logs.write_torch_style(tmp_path / "ours", SummaryWriter)
    torch_data, our_data = load_logdir(str(torch_dir)), load_logdir(str(ours_dir))
    assert torch_data.experiment() == our_data.experiment()
    assert [s.hparams for s in torch_data.sessions()] == [s.hparams for s in our_data.sessions()]
    assert [s.run for s in our_data.sessions()] == ["trial0", "trial1", "trial2"]
    assert our_data.hparams("trial1") == {"lr": 0.01, "bsize": 32.0, "optimizer": "sgd"}
    assert our_data.hparams(".") == {}
    assert our_data.hparams_by_run() == {s.run: s.hparams for s in our_data.sessions()}
    assert set(our_data.hparams_by_run(sub_runs=True)) == {"trial0", "trial1", "trial2"}
    key = hparam_group_key(our_data.hparams_by_run(), ["optimizer", "bsize"])
    assert [key(run) for run in ("trial0", "trial1", ".")] == [
        "optimizer=adam,bsize=16",
        "optimizer=sgd,bsize=32",
        None,
    ]
    with pytest.raises(NotFound):
        our_data.hparams("no such run")
    config = our_data.experiment()
    assert [h.name for h in config.hparams] == ["lr", "bsize", "optimizer"]
    assert config.hparams[2].discrete == ("adam", "sgd")
    assert [m.tag for m in config.metrics] == ["hparam/loss", "hparam/accuracy"]
    for data in (torch_data, our_data):
        rows = {row["run"]: row for row in data.runs_table()["rows"]}
        for index, (_, loss, accuracy) in enumerate(hparams_logs.TORCH_HPARAMS):
            metrics = rows[f"trial{index}"]["metrics"]
            assert metrics["hparam/loss"]["last"] == pytest.approx(loss)
            assert metrics["hparam/accuracy"]["best"] == pytest.approx(accuracy)
            assert rows[f"trial{index}"]["session"]["status"] == "success"


def test_bools_stay_bools_and_bad_values_are_refused(tmp_path: Path) -> None:
    with SummaryWriter(str(tmp_path)) as writer:
        writer.add_hparams({"flag": True, "n": np.int64(3), "skip": None}, {"m": 1.0}, run_name="r")
        with pytest.raises(ValueError):
            writer.add_hparams({"bad": [1, 2]}, {})
        with pytest.raises(TypeError):
            writer.add_hparams({"lr": 0.1}, {}, hparam_domain_discrete={"lr": ["x"]})
    data = load_logdir(str(tmp_path))
    assert data.hparams("r") == {"flag": True, "n": 3.0}
    assert data.experiment().hparams[0].type == "bool"


def test_hparams_config_and_sessions_with_kboard_summary(tmp_path: Path) -> None:
    hparams_logs.write_config(tmp_path, "kboard")
    hparams_logs.write_kboard_plain(tmp_path)
    data = load_logdir(str(tmp_path))
    config = data.experiment()
    assert [h.name for h in config.hparams] == ["lr", "units", "optimizer", "use_bias", "dropout"]
    assert config.hparams[0].discrete == (0.001, 0.01, 0.1)
    assert config.hparams[1].interval == (2.0, 8.0)
    assert config.hparams[3].discrete == (False, True)
    assert config.metrics[1].display_name == "val <b>acc</b>"
    assert config.metrics[2].dataset_type == "training"
    sessions = data.sessions()
    assert [s.group for s in sessions] == ["a", "a", "b", "c", "d"]
    assert [s.status for s in sessions] == ["success", "success", "success", "failure", "unknown"]
    assert sessions[4].end_time is None
    assert sessions[0].start_time == hparams_logs.START


def test_inferred_experiment_without_config(tmp_path: Path) -> None:
    data = load_logdir(str(hparams_logs.write_kboard_plain(tmp_path)))
    config = data.experiment()
    assert [(h.name, h.type, h.differs) for h in config.hparams] == [
        ("dropout", "float", True),
        ("lr", "float", True),
        ("optimizer", "string", True),
        ("units", "float", True),
        ("use_bias", "bool", True),
    ]
    assert config.hparams[1].interval == (0.001, 0.1)
    assert [(m.tag, m.group) for m in config.metrics] == [("accuracy", "eval"), ("loss", "")]


def test_bad_hparams_data_is_reported_and_other_runs_stay(tmp_path: Path) -> None:
    from tensorboard.compat.proto import event_pb2, summary_pb2

    hparams_logs.write_kboard_plain(tmp_path)
    bad = summary_pb2.Summary.Value(tag="_hparams_/session_start_info")
    bad.metadata.plugin_data.plugin_name = "hparams"
    bad.metadata.plugin_data.content = b"\xff\xffnot a protobuf"
    event = event_pb2.Event(step=0, wall_time=1.0, summary=summary_pb2.Summary(value=[bad]))
    write_events(tmp_path / "broken" / "events.out.tfevents.1.x", [event])
    data = load_logdir(str(tmp_path))
    assert any(p.run == "broken" and "hparams" in p.message for p in data.problems())
    assert len(data.sessions()) == 5
    assert data.hparams("broken") == {}


def test_runs_table_matches_numpy(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    values = rng.normal(size=20)
    values[[3, 11]] = [np.nan, np.inf]
    with SummaryWriter(str(tmp_path / "plain")) as writer:
        for step, value in enumerate(values):
            writer.add_scalar("x", value, step * 10 + 5, walltime=100.0 + step)
    table = load_logdir(str(tmp_path)).runs_table()
    assert table["hparams"] == [] and table["metrics"] == []
    (row,) = table["rows"]
    stored = values.astype(np.float32).astype(np.float64)
    finite = stored[np.isfinite(stored)]
    stats = row["scalars"]["x"]
    assert stats["count"] == 20 and stats["first_step"] == 5 and stats["last_step"] == 195
    assert stats["last"] == stored[-1]
    assert stats["min"] == finite.min() and stats["max"] == finite.max()
    assert row["duration"] == pytest.approx(119.0 - row["start_time"])
    assert "session" not in row


def test_best_follows_the_metric_goal(tmp_path: Path) -> None:
    writer = summary.create_file_writer(str(tmp_path / "s"))
    with writer.as_default():
        summary.hparams({"lr": 0.1})
        for step, (loss, acc) in enumerate([(3.0, 0.2), (1.0, 0.9), (2.0, 0.5)]):
            summary.scalar("loss", loss, step=step)
            summary.scalar("val_accuracy", acc, step=step)
    writer.close()
    table = load_logdir(str(tmp_path)).runs_table()
    goals = {m["key"]: m["goal"] for m in table["metrics"]}
    assert goals == {"loss": "min", "val_accuracy": "max"}
    metrics = table["rows"][0]["metrics"]
    assert metrics["loss"] == {"last": 2.0, "step": 2, "best": 1.0, "best_step": 1}
    assert metrics["val_accuracy"]["best"] == pytest.approx(0.9)
    assert metrics["val_accuracy"]["best_step"] == 1


def test_runs_api_and_cli(tmp_path: Path, make_app) -> None:
    logdir = hparams_logs.write_kboard_plain(tmp_path / "logs")
    answer = make_app(logdir).test_client().get("/api/runs_table").get_json()
    assert answer == json.loads(json.dumps(load_logdir(str(logdir)).runs_table()))
    runner = CliRunner()
    result = runner.invoke(cli, ["runs", "--logdir", str(logdir), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == answer
    result = runner.invoke(cli, ["runs", "--logdir", str(logdir), "--format", "csv"])
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert [r["run"] for r in rows] == [r["run"] for r in answer["rows"]]
    assert rows[0]["hp/optimizer"] == "adam" and rows[0]["hp/use_bias"] == "true"
    assert float(rows[0]["loss/last"]) == pytest.approx(1 / 3)
    assert rows[0]["eval/accuracy/best_step"] == "2"
    assert rows[1]["hp/lr"] == "" and rows[1]["accuracy/count"] == "1"
    result = runner.invoke(cli, ["runs", "--logdir", str(logdir)])
    assert result.exit_code == 0
    assert "run3  duration" in result.output and "failure  group c" in result.output
    assert "loss: 3 points, steps 0..2" in result.output


def test_keras_callback_records_a_session(tmp_path: Path) -> None:
    pytest.importorskip("tensorflow")
    import keras

    from kboard.keras import KBoardCallback

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    callback = KBoardCallback(
        str(tmp_path / "s"), write_graph=False, hparams={"lr": 0.1, "opt": "sgd"}, trial_id="t"
    )
    model.fit(np.zeros((4, 2)), np.zeros(4), epochs=2, verbose=0, callbacks=[callback])
    data = load_logdir(str(tmp_path))
    (session,) = data.sessions()
    assert (session.run, session.group, session.status) == ("s", "t", "success")
    assert session.hparams == {"lr": 0.1, "opt": "sgd"}
    assert session.end_time >= session.start_time > 0
    row = next(r for r in data.runs_table()["rows"] if r["run"] == "s")
    assert row["duration"] == session.end_time - session.start_time
    # Keras's train/ and validation/ runs belong to the session (for grouping by a value).
    by_run = data.hparams_by_run(sub_runs=True)
    assert by_run["s/train"] == by_run["s"] == {"lr": 0.1, "opt": "sgd"}
    assert "s/train" not in data.hparams_by_run()
    metric_keys = {m.tag: m.group for m in data.experiment().metrics}
    assert metric_keys["epoch_loss"] == "train"
    with pytest.raises(TypeError):
        KBoardCallback(str(tmp_path), hparams={"bad": object()})
    assert not math.isnan(data.runs_table()["rows"][0]["start_time"])


def test_hyperparameters_survive_the_warm_start_cache(tmp_path: Path) -> None:
    from kboard.cache import RunCache
    from kboard.ingest import LogdirReader
    from kboard.provider import DataProvider

    logdir = str(hparams_logs.write_kboard_plain(tmp_path / "logs"))
    first = LogdirReader(logdir, cache=RunCache(str(tmp_path / "cache")))
    first.reload()
    assert first.save_cache(min_new_bytes=0) > 0
    second = LogdirReader(logdir, cache=RunCache(str(tmp_path / "cache")))
    assert second.reload().runs_from_cache
    before, after = DataProvider(first.store), DataProvider(second.store)
    assert after.runs_table() == before.runs_table()
    assert after.sessions() == before.sessions()
    assert after.experiment() == before.experiment()
