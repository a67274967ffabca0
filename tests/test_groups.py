"""Runs grouped by seed: the numbers against an independent computation, on real writers' logs."""

from __future__ import annotations

import bisect
import csv
import io
import json
import math
import re
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
from click.testing import CliRunner

import kboard
from kboard.cli import cli
from kboard.groups import aggregate, group_by_key, regex_key, smooth
from tests.test_browser import smooth as browser_smooth

GROUP = r"(.*)_seed\d+"
Q_GROUP = quote(GROUP)  # "+" in a query is a space
STATS = ("mean", "median", "std", "min", "max")

# run -> tag -> {step: value}: three seeds of lr0.1 by kboard's writer, two of lr0.01 by
# tf.summary, each seed with steps of its own; one run the regex leaves alone.
STEP_SETS = {
    "lr0.1_seed0": range(0, 21),
    "lr0.1_seed1": range(0, 31, 3),
    "lr0.1_seed2": range(5, 26, 2),
    "lr0.01_seed0": range(0, 40, 4),
    "lr0.01_seed1": range(2, 30, 5),
    "baseline": range(0, 10),
}


def written_values() -> dict[str, dict[str, dict[int, float]]]:
    """What each run logs, as the float32 numbers the writers store."""
    rng = np.random.default_rng(16)
    logs: dict[str, dict[str, dict[int, float]]] = {}
    for run, steps in STEP_SETS.items():
        lr = 0.1 if run.startswith("lr0.1_") else 0.01
        loss = {s: float(np.float32(1 / (1 + lr * s) + rng.normal(0, 0.05))) for s in steps}
        tags = {"loss": loss}
        if run != "lr0.01_seed1":  # one member without the tag
            tags["acc"] = {s: float(np.float32(1 - loss[s] + rng.normal(0, 0.02))) for s in steps}
        logs[run] = tags
    logs["lr0.1_seed2"]["loss"][9] = math.nan  # takes no part
    return logs


LOGS = written_values()


@pytest.fixture(scope="module")
def seeds_logdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tf = pytest.importorskip("tensorflow")
    logdir = tmp_path_factory.mktemp("seeds")
    for run, tags in LOGS.items():
        if run.startswith("lr0.01_"):
            writer = tf.summary.create_file_writer(str(logdir / run))
            with writer.as_default():
                for tag, points in tags.items():
                    for step, value in points.items():
                        tf.summary.scalar(tag, value, step=step)
            writer.close()
            continue
        with kboard.SummaryWriter(str(logdir / run)) as out:
            for tag, points in tags.items():
                for step, value in points.items():
                    out.add_scalar(tag, value, step)
    return logdir


# -- the independent reference ------------------------------------------------------------
def ema(values: list[float], weight: float) -> list[float]:
    """TensorBoard's debiased EMA point by point; a constant series is kept as it is."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite or all(v == finite[0] for v in finite):
        return list(values)
    return browser_smooth(values, weight)


def reference(members: list[dict[int, float]], weight: float) -> dict[int, tuple]:
    """step -> (mean, median, std, min, max, count), by plain loops and numpy reductions."""
    series = []
    for points in members:
        steps = sorted(points)
        smoothed = ema([points[s] for s in steps], weight)
        kept = [(s, v) for s, v in zip(steps, smoothed) if math.isfinite(v)]
        if kept:
            series.append(kept)
    out = {}
    for step in sorted({s for kept in series for s, _ in kept}):
        values = []
        for kept in series:
            steps = [s for s, _ in kept]
            if not steps[0] <= step <= steps[-1]:
                continue
            i = bisect.bisect_left(steps, step)
            if steps[i] == step:
                values.append(kept[i][1])
            else:
                (s0, v0), (s1, v1) = kept[i - 1], kept[i]
                values.append(v0 + (v1 - v0) * (step - s0) / (s1 - s0))
        a = np.array(values)
        out[step] = (a.mean(), float(np.median(a)), a.std(), a.min(), a.max(), len(a))
    return out


def expected_rows(weight: float) -> list[tuple]:
    """(group, tag, step, mean, median, std, min, max, count), groups and tags sorted."""
    groups = {
        "lr0.01": ["lr0.01_seed0", "lr0.01_seed1"],
        "lr0.1": ["lr0.1_seed0", "lr0.1_seed1", "lr0.1_seed2"],
    }
    rows = []
    for group, members in groups.items():
        for tag in sorted({t for run in members for t in LOGS[run]}):
            having = [LOGS[run][tag] for run in members if tag in LOGS[run]]
            for step, stats in reference(having, weight).items():
                rows.append((group, tag, step, *stats))
    return rows


def assert_rows_match(rows: list[tuple], weight: float) -> None:
    expected = expected_rows(weight)
    assert [(r[0], r[1], int(r[2])) for r in rows] == [e[:3] for e in expected]
    assert [int(r[8]) for r in rows] == [e[8] for e in expected]
    got = np.array([[float(x) for x in r[3:8]] for r in rows])
    want = np.array([e[3:8] for e in expected])
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


# -- the functions ------------------------------------------------------------------------
@pytest.mark.parametrize("weight", [0.0, 1e-6, 0.3, 0.6, 0.95, 0.999])
def test_smoothing_is_tensorboards_ema(weight: float) -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(5, 3, 20_000)
    values[[3, 700, 701]] = [math.nan, math.inf, -math.inf]
    got = smooth(values, weight)
    np.testing.assert_allclose(got, ema(values.tolist(), weight), rtol=1e-9, equal_nan=True)
    assert got[701] == -math.inf
    constant = np.array([2.5, math.nan, 2.5, 2.5])
    np.testing.assert_array_equal(smooth(constant, weight), constant)
    with pytest.raises(ValueError):
        smooth(values, 1.0)


def test_runs_grouped_by_a_regex_or_any_key() -> None:
    runs = ["lr0.1_seed1", "lr0.1_seed2", "lr0.01_seed1", "baseline", "lr0.1_bs8_seed3"]
    grouped = group_by_key(runs, regex_key(GROUP))
    assert grouped.groups == {
        "lr0.01": ("lr0.01_seed1",),
        "lr0.1": ("lr0.1_seed1", "lr0.1_seed2"),
        "lr0.1_bs8": ("lr0.1_bs8_seed3",),
    }
    assert grouped.alone == ("baseline",)
    # Several capture groups are joined by a comma; none: the whole match is the key.
    assert regex_key(r"lr([\d.]+)_(?:bs(\d+)_)?seed")("lr0.1_bs8_seed3") == "0.1,8"
    assert regex_key(r"lr([\d.]+)_(?:bs(\d+)_)?seed")("lr0.1_seed3") == "0.1,"
    assert regex_key(r"^lr[\d.]+")("lr0.1_seed3") == "lr0.1"
    # Any function plugs in (a hyperparameter's value, say).
    by_length = group_by_key(runs, lambda run: None if run == "baseline" else str(len(run)))
    assert by_length.groups["11"] == ("lr0.1_seed1", "lr0.1_seed2")
    with pytest.raises(ValueError, match="bad regular expression"):
        regex_key("(unclosed")


def test_members_align_by_step_without_extrapolation() -> None:
    a = (np.array([0, 10]), np.array([0.0, 10.0]))
    b = (np.array([5, 20]), np.array([1.0, 4.0]))
    stats = aggregate([a, b])
    assert stats.steps.tolist() == [0, 5, 10, 20]
    assert stats.count.tolist() == [1, 2, 2, 1]  # a ends at 10, b starts at 5
    np.testing.assert_allclose(stats.mean, [0.0, 3.0, (10 + 2) / 2, 4.0])
    np.testing.assert_allclose(stats.std, [0.0, 2.0, 4.0, 0.0])
    assert len(aggregate([(np.array([1]), np.array([math.nan]))])) == 0


def test_large_groups_are_aggregated_in_blocks() -> None:
    """Blocks of members x steps (bounded memory) give the numbers one block gives."""
    import kboard.groups as groups

    rng = np.random.default_rng(1)
    members = [(np.arange(i, 3000 + 7 * i, 1 + i % 4), None) for i in range(40)]
    members = [(s, rng.normal(size=len(s))) for s, _ in members]
    whole = aggregate(members, 0.6)
    small = groups.BLOCK_CELLS
    try:
        groups.BLOCK_CELLS = 40 * 37  # 37 steps a block
        blocked = aggregate(members, 0.6)
    finally:
        groups.BLOCK_CELLS = small
    for name in ("steps", "count", *STATS):
        np.testing.assert_array_equal(getattr(blocked, name), getattr(whole, name))


# -- Python, CLI and HTTP on real logs ------------------------------------------------------
@pytest.mark.parametrize("weight", [0.0, 0.6])
def test_read_scalars_group_matches_numpy(seeds_logdir: Path, weight: float) -> None:
    pytest.importorskip("pandas")
    frame = kboard.read_scalars(str(seeds_logdir), group=GROUP, smoothing=weight)
    assert list(frame.columns) == ["group", "tag", "step", *STATS, "count"]
    assert "baseline" not in set(frame["group"])
    assert_rows_match(list(frame.itertuples(index=False)), weight)


def test_cli_and_http_export_the_same_groups(seeds_logdir: Path, make_app) -> None:
    runner = CliRunner()
    args = ["export", "--logdir", str(seeds_logdir), "--group", GROUP, "--smoothing", "0.6"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    text = result.stdout_bytes.decode()
    client = make_app(seeds_logdir).test_client()
    query = f"group={Q_GROUP}&smoothing=0.6"
    response = client.get(f"/api/export?{query}")
    assert response.status_code == 200
    assert "-groups.csv" in response.headers["Content-Disposition"]
    assert response.get_data(as_text=True) == text
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["group", "tag", "step", *STATS, "count"]
    assert_rows_match([tuple(r) for r in rows[1:]], 0.6)
    as_json = client.get(f"/api/export?{query}&format=json").get_json()
    assert as_json == [dict(zip(rows[0], map(_number, r), strict=True)) for r in rows[1:]]
    json_cli = runner.invoke(cli, [*args, "--json", "--tags", "^acc$", "--runs", "seed[01]"])
    picked = json.loads(json_cli.stdout_bytes)
    assert {r["tag"] for r in picked} == {"acc"}
    assert max(r["count"] for r in picked if r["group"] == "lr0.1") == 2


def _number(cell: str) -> object:
    try:
        return int(cell)
    except ValueError:
        try:
            return float(cell)
        except ValueError:
            return cell


def test_group_routes_serve_the_same_numbers(seeds_logdir: Path, make_app) -> None:
    client = make_app(seeds_logdir).test_client()
    listing = client.get(f"/api/groups?group={Q_GROUP}").get_json()
    assert [g["group"] for g in listing["groups"]] == ["lr0.01", "lr0.1"]
    assert sorted(listing["groups"][1]["members"]) == ["lr0.1_seed0", "lr0.1_seed1", "lr0.1_seed2"]
    assert listing["alone"] == ["baseline"]
    view = client.get(f"/api/scalars/groups?tag=acc&group={Q_GROUP}&smoothing=0.6").get_json()
    assert view["alone"] == ["baseline"]
    assert [g["members"] for g in view["groups"]][0] == ["lr0.01_seed0"]  # seed1 has no acc
    rows = [
        (g["group"], "acc", step, *(g[name][i] for name in STATS), g["count"][i])
        for g in view["groups"]
        for i, step in enumerate(g["steps"])
    ]
    expected = [e for e in expected_rows(0.6) if e[1] == "acc"]
    assert [(r[0], r[1], int(r[2])) for r in rows] == [e[:3] for e in expected]
    np.testing.assert_allclose(
        [r[3:8] for r in rows], [e[3:8] for e in expected], rtol=1e-9, atol=1e-12
    )
    # Only the runs asked for; downsampled to the points asked for.
    few = client.get(
        f"/api/scalars/groups?tag=loss&group={Q_GROUP}&run=lr0.1_seed0&run=lr0.1_seed1&points=4"
    ).get_json()
    (group,) = few["groups"]
    assert group["members"] == ["lr0.1_seed0", "lr0.1_seed1"]
    assert group["downsampled"] and len(group["steps"]) < group["total"]


@pytest.mark.parametrize(
    "query",
    [
        "/api/groups?group=(unclosed",
        "/api/groups",
        "/api/scalars/groups?tag=loss&group=[",
        "/api/scalars/groups?tag=loss&group=x&smoothing=1",
        "/api/scalars/groups?tag=loss&group=x&smoothing=nan",
        "/api/export?group=(",
        "/api/export?group=x&layout=wide",
        "/api/export?group=x&overwritten=1",
    ],
)
def test_bad_group_requests_are_400(seeds_logdir: Path, make_app, query: str) -> None:
    response = make_app(seeds_logdir).test_client().get(query)
    assert response.status_code == 400
    assert response.get_json()["error"]


def test_cli_group_usage_errors(seeds_logdir: Path) -> None:
    runner = CliRunner()
    base = ["export", "--logdir", str(seeds_logdir)]
    bad = runner.invoke(cli, [*base, "--group", "(unclosed"])
    assert bad.exit_code == 2 and "bad regular expression" in bad.output
    wide = runner.invoke(cli, [*base, "--group", GROUP, "--format", "wide"])
    assert wide.exit_code == 2 and "--format long" in wide.output
    lone = runner.invoke(cli, [*base, "--smoothing", "0.5"])
    assert lone.exit_code == 2 and "--group" in lone.output


# -- the sweep: five seeds of three learning rates, logged by Keras ---------------------
LRS = ("0.001", "0.01", "0.1")
KERAS_GROUP = r"(lr[\d.]+)_seed\d+/(train|validation)"


@pytest.fixture(scope="module")
def keras_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``model.fit`` with ``keras.callbacks.TensorBoard``, one run per learning rate and seed."""
    pytest.importorskip("tensorflow")
    import keras

    logdir = tmp_path_factory.mktemp("keras_sweep")
    data = np.random.default_rng(0).random((32, 4))
    target = data @ np.array([[1.0], [-2.0], [0.5], [0.0]])
    for lr in LRS:
        for seed in range(5):
            keras.utils.set_random_seed(seed)
            model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
            model.compile(keras.optimizers.SGD(float(lr)), "mse")
            model.fit(
                data,
                target,
                epochs=3,
                batch_size=16,
                validation_split=0.25,
                verbose=0,
                callbacks=[keras.callbacks.TensorBoard(str(logdir / f"lr{lr}_seed{seed}"))],
            )
    return logdir


def test_a_keras_sweep_exports_per_group_statistics(keras_sweep: Path) -> None:
    pytest.importorskip("pandas")
    frame = kboard.read_scalars(str(keras_sweep), group=KERAS_GROUP)
    groups = [f"lr{lr},{split}" for lr in LRS for split in ("train", "validation")]
    assert sorted(set(frame["group"])) == sorted(groups)
    loss = frame[frame["tag"] == "epoch_loss"]
    assert loss["count"].tolist() == [5] * 3 * len(groups)  # five seeds at each of three epochs
    points = kboard.read_scalars(str(keras_sweep), tags="^epoch_loss$")
    for group in groups:
        lr, split = group.split(",")
        mine = points[points["run"].str.fullmatch(rf"{re.escape(lr)}_seed\d/{split}")]
        by_step = mine.pivot(index="step", columns="run", values="value")  # same epochs
        rows = loss[loss["group"] == group]
        assert rows["step"].tolist() == by_step.index.tolist()
        np.testing.assert_allclose(rows["mean"], by_step.mean(axis=1), rtol=1e-12)
        np.testing.assert_allclose(rows["std"], by_step.std(axis=1, ddof=0), rtol=1e-9)
        np.testing.assert_allclose(rows["median"], by_step.median(axis=1), rtol=1e-12)
        np.testing.assert_allclose(rows["min"], by_step.min(axis=1), rtol=0)
        np.testing.assert_allclose(rows["max"], by_step.max(axis=1), rtol=0)
