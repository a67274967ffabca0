"""Runs grouped by a hyperparameter: a real sweep's numbers against an independent computation,
and Python, the CLI and the routes giving the same bytes."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import kboard
from kboard import summary
from kboard.cli import cli
from kboard.hparams import hparam_group_key
from tests.test_groups import STATS, reference

# run -> (lr, seed, steps). Run names say nothing of the settings: no regex can group them.
# lr 0.1 is logged by TensorFlow (tf.summary and hp.hparams), lr 0.01 by kboard's TF-free
# tf.summary-style API; every seed has steps of its own; "baseline" has no hyperparameters.
SWEEP = {
    "trial-a": (0.1, 0, range(0, 21)),
    "trial-b": (0.01, 0, range(0, 40, 4)),
    "trial-c": (0.1, 1, range(0, 31, 3)),
    "trial-d": (0.01, 1, range(2, 30, 5)),
    "trial-e": (0.1, 2, range(5, 26, 2)),
    "trial-f": (0.01, 2, range(1, 33, 2)),
}
OPTIMIZER = {0.1: "adam", 0.01: "sgd"}


def sweep_values() -> dict[str, dict[int, float]]:
    """Each run's loss by step, as the float32 numbers the writers store."""
    rng = np.random.default_rng(16)
    return {
        run: {s: float(np.float32(1 / (1 + lr * s) + rng.normal(0, 0.05))) for s in steps}
        for run, (lr, _, steps) in SWEEP.items()
    }


LOSS = sweep_values()


def write_sweep(logdir: Path, with_tensorflow: bool = True) -> Path:
    """Write the sweep: hyperparameters ``lr``, ``seed`` and ``optimizer``, and a ``loss``.

    Without TensorFlow, kboard's ``summary`` writes every run (the browser test's case).
    """
    for run, (lr, seed, _) in SWEEP.items():
        values = {"lr": lr, "seed": seed, "optimizer": OPTIMIZER[lr]}
        if lr == 0.1 and with_tensorflow:
            import tensorflow as tf
            from tensorboard.plugins.hparams import api as hp

            writer = tf.summary.create_file_writer(str(logdir / run))
            with writer.as_default():
                hp.hparams(values, trial_id=run)
                for step, value in LOSS[run].items():
                    tf.summary.scalar("loss", value, step=step)
            writer.close()
            continue
        writer = summary.create_file_writer(str(logdir / run))
        with writer.as_default():
            summary.hparams(values, trial_id=run)
            for step, value in LOSS[run].items():
                summary.scalar("loss", value, step=step)
        writer.close()
    with kboard.SummaryWriter(str(logdir / "baseline")) as out:
        for step in range(10):
            out.add_scalar("loss", 1.0, step)
    return logdir


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("tensorflow")
    return write_sweep(tmp_path_factory.mktemp("hparam_sweep"))


def expected_rows(weight: float, name=lambda lr: f"lr={lr!r}") -> list[tuple]:
    """(group, tag, step, mean, median, std, min, max, count) by the independent reference."""
    rows = []
    for lr in sorted(OPTIMIZER, key=name):
        members = [LOSS[run] for run, (run_lr, _, _) in SWEEP.items() if run_lr == lr]
        for step, stats in reference(members, weight).items():
            rows.append((name(lr), "loss", step, *stats))
    return rows


def assert_rows_match(rows: list[tuple], expected: list[tuple]) -> None:
    assert [(r[0], r[1], int(r[2])) for r in rows] == [e[:3] for e in expected]
    assert [int(r[8]) for r in rows] == [e[8] for e in expected]
    got = np.array([[float(x) for x in r[3:8]] for r in rows])
    np.testing.assert_allclose(got, [e[3:8] for e in expected], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("weight", [0.0, 0.6])
def test_read_scalars_group_by_matches_numpy(sweep: Path, weight: float) -> None:
    pytest.importorskip("pandas")
    frame = kboard.read_scalars(str(sweep), group_by=["lr"], smoothing=weight)
    assert list(frame.columns) == ["group", "tag", "step", *STATS, "count"]
    assert set(frame["group"]) == {"lr=0.1", "lr=0.01"}  # baseline has no lr: left out
    assert_rows_match(list(frame.itertuples(index=False)), expected_rows(weight))
    assert frame["count"].max() == 3


def test_group_by_two_hyperparameters_names_both(sweep: Path) -> None:
    pytest.importorskip("pandas")
    frame = kboard.read_scalars(str(sweep), group_by="optimizer, lr")
    expected = expected_rows(0.0, lambda lr: f"optimizer={OPTIMIZER[lr]},lr={lr!r}")
    assert_rows_match(list(frame.itertuples(index=False)), expected)
    by_seed = kboard.read_scalars(str(sweep), group_by=["seed"])
    assert sorted(set(by_seed["group"])) == ["seed=0", "seed=1", "seed=2"]
    assert by_seed["count"].max() == 2  # one run of each learning rate


def test_cli_and_routes_give_the_same_groups(sweep: Path, make_app) -> None:
    runner = CliRunner()
    args = ["export", "--logdir", str(sweep), "--group-by", "lr", "--smoothing", "0.6"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    text = result.stdout_bytes.decode()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["group", "tag", "step", *STATS, "count"]
    assert_rows_match([tuple(r) for r in rows[1:]], expected_rows(0.6))

    client = make_app(sweep).test_client()
    response = client.get("/api/export?group_by=lr&smoothing=0.6")
    assert response.status_code == 200
    assert "-groups.csv" in response.headers["Content-Disposition"]
    assert response.get_data() == result.stdout_bytes
    json_cli = runner.invoke(cli, [*args, "--json"])
    json_api = client.get("/api/export?group_by=lr&smoothing=0.6&format=json")
    assert json_api.get_data() == json_cli.stdout_bytes
    assert len(json.loads(json_api.get_data())) == len(rows) - 1

    listing = client.get("/api/groups?group_by=lr").get_json()
    assert [g["group"] for g in listing["groups"]] == ["lr=0.01", "lr=0.1"]
    assert sorted(listing["groups"][1]["members"]) == ["trial-a", "trial-c", "trial-e"]
    assert listing["alone"] == ["baseline"]
    view = client.get("/api/scalars/groups?tag=loss&group_by=lr&smoothing=0.6").get_json()
    assert view["alone"] == ["baseline"]
    drawn = [
        (g["group"], "loss", step, *(g[name][i] for name in STATS), g["count"][i])
        for g in view["groups"]
        for i, step in enumerate(g["steps"])
    ]
    assert_rows_match(drawn, expected_rows(0.6))
    names = client.get("/api/hparams").get_json()["hparams"]
    assert [h["name"] for h in names] == ["lr", "optimizer", "seed"]


@pytest.mark.parametrize(
    "query",
    [
        "/api/groups?group=x&group_by=lr",
        "/api/groups?group_by=nope",
        "/api/scalars/groups?tag=loss&group_by=nope",
        "/api/scalars/groups?tag=loss&group=(.*)&group_by=lr",
        "/api/export?group_by=nope",
        "/api/export?group=x&group_by=lr",
        "/api/export?group_by=lr&layout=wide",
    ],
)
def test_bad_group_by_requests_are_400(sweep: Path, make_app, query: str) -> None:
    response = make_app(sweep).test_client().get(query)
    assert response.status_code == 400
    assert response.get_json()["error"]


def test_group_by_usage_errors(sweep: Path) -> None:
    runner = CliRunner()
    base = ["export", "--logdir", str(sweep)]
    both = runner.invoke(cli, [*base, "--group", "x", "--group-by", "lr"])
    assert both.exit_code == 2 and "not both" in both.output
    unknown = runner.invoke(cli, [*base, "--group-by", "nope"])
    assert unknown.exit_code == 2 and "'nope'" in unknown.output and "lr" in unknown.output
    wide = runner.invoke(cli, [*base, "--group-by", "lr", "--format", "wide"])
    assert wide.exit_code == 2 and "--format long" in wide.output
    with pytest.raises(ValueError, match="not both"):
        kboard.read_scalars(str(sweep), group="x", group_by=["lr"])


def test_a_sessions_sub_runs_group_apart() -> None:
    """Keras writes a session's scalars into ``train`` and ``validation``: never one group."""
    sessions = {"s0": {"lr": 0.1}, "s1": {"lr": 0.1}, "lone": {"lr": 0.5}}
    values = {
        **sessions,
        "s0/train": {"lr": 0.1},
        "s0/validation": {"lr": 0.1},
        "s1/train": {"lr": 0.1},
    }
    key = hparam_group_key(values, ["lr"], sessions=sessions)
    keys = [key(run) for run in ("s0", "s0/train", "s1/train", "s0/validation", "lone", "x")]
    assert keys == ["lr=0.1", "lr=0.1/train", "lr=0.1/train", "lr=0.1/validation", "lr=0.5", None]


@pytest.mark.parametrize("writer_name", ["kboard", "torch"])
def test_add_hparams_runs_group_with_their_curves(tmp_path: Path, writer_name: str) -> None:
    """``add_hparams`` puts the session in ``run/<time>``: the run's curves take its values."""
    pytest.importorskip("pandas")
    if writer_name == "torch":
        writer_class = pytest.importorskip("torch.utils.tensorboard").SummaryWriter
    else:
        writer_class = kboard.SummaryWriter
    curves: dict[str, dict[int, float]] = {}
    for run, (lr, seed, steps) in SWEEP.items():
        curves[run] = {s: float(np.float32(lr * s + seed)) for s in steps}
        writer = writer_class(str(tmp_path / run))
        for step, value in curves[run].items():
            writer.add_scalar("loss", value, step)
        writer.add_hparams({"lr": lr, "seed": seed}, {"loss": 10 * lr + seed})
        writer.close()
    frame = kboard.read_scalars(str(tmp_path), group_by=["lr"])
    assert sorted(set(frame["group"])) == ["lr=0.01", "lr=0.01/hparams", "lr=0.1", "lr=0.1/hparams"]
    for lr in OPTIMIZER:
        members = [curves[run] for run, (run_lr, _, _) in SWEEP.items() if run_lr == lr]
        want = [
            (f"lr={lr!r}", "loss", step, *stats) for step, stats in reference(members, 0).items()
        ]
        rows = frame[frame["group"] == f"lr={lr!r}"]
        assert_rows_match(list(rows.itertuples(index=False)), want)
        final = frame[frame["group"] == f"lr={lr!r}/hparams"]  # the final metrics, apart
        assert final["count"].tolist() == [3]
        np.testing.assert_allclose(final["mean"], 10 * lr + 1, rtol=1e-6)


def test_a_keras_hp_sweep_groups_train_and_validation_apart(tmp_path: Path) -> None:
    """``hp.KerasCallback`` beside Keras's TensorBoard callback: curves in ``train`` and
    ``validation`` below each session, grouped by learning rate, one split per group."""
    pytest.importorskip("tensorflow")
    pytest.importorskip("pandas")
    from tests import hparams_logs

    logdir = hparams_logs.write_hp_keras(tmp_path)
    frame = kboard.read_scalars(str(logdir), tags="^epoch_loss$", group_by=["lr"])
    by_lr: dict[float, list[str]] = {}
    for index, (_, values) in enumerate(hparams_logs.SESSIONS):
        by_lr.setdefault(values["lr"], []).append(f"session{index}")
    groups = {
        f"lr={lr!r}/{split}": (runs, split)
        for lr, runs in by_lr.items()
        for split in ("train", "validation")
    }
    assert sorted(set(frame["group"])) == sorted(groups)
    points = kboard.read_scalars(str(logdir), tags="^epoch_loss$")
    for group, (runs, split) in groups.items():
        mine = points[points["run"].isin([f"{run}/{split}" for run in runs])]
        by_step = mine.pivot(index="step", columns="run", values="value")  # the same epochs
        rows = frame[frame["group"] == group]
        assert rows["step"].tolist() == by_step.index.tolist()
        assert rows["count"].tolist() == [len(runs)] * len(by_step)
        np.testing.assert_allclose(rows["mean"], by_step.mean(axis=1), rtol=1e-12)
        np.testing.assert_allclose(rows["std"], by_step.std(axis=1, ddof=0), atol=1e-12)
