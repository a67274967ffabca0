"""Exports: the CLI, the HTTP API and the Python API agree row for row, on real logs."""

from __future__ import annotations

import csv
import io
import json
import math
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import kboard
from kboard.export import Selection, write_export
from kboard.ingest import LogdirReader
from kboard.provider import DataProvider

from .conftest import scalar_event, write_events


def cli_export(logdir: Path, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "kboard", "export", "--logdir", str(logdir), "-o", "-", *args],
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.decode("utf-8")


def http_export(client, query: str) -> str:
    response = client.get(f"/api/export?{query}")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Content-Disposition"].startswith("attachment; filename=")
    return response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("cli_args", "query"),
    [
        ((), ""),
        (("--runs", "^(train|eval)$", "--tags", "loss"), "runs=^(train|eval)$&tags=loss"),
        (("--format", "wide"), "layout=wide"),
        (("--kind", "histograms", "--runs", "torch"), "kind=histograms&runs=torch"),
        (("--format", "wide", "--json"), "layout=wide&format=json"),
    ],
)
def test_cli_and_http_give_the_same_bytes(mixed_logdir: Path, client, cli_args, query) -> None:
    assert cli_export(mixed_logdir, *cli_args) == http_export(client, query)


def test_cli_json_by_file_extension(mixed_logdir: Path, tmp_path: Path, client) -> None:
    out = tmp_path / "export.json"
    result = subprocess.run(
        [sys.executable, "-m", "kboard", "export", "--logdir", str(mixed_logdir), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert out.read_text(encoding="utf-8") == http_export(client, "format=json")
    rows = json.loads(out.read_text(encoding="utf-8"))
    odd = [r["value"] for r in rows if r["tag"] == "odd"]
    assert odd[:4] == ["nan", "inf", "-inf", 1.5]


def test_python_api_agrees_with_csv(mixed_logdir: Path, client) -> None:
    pytest.importorskip("pandas")
    frame = kboard.read_scalars(str(mixed_logdir))
    rows = list(csv.DictReader(io.StringIO(http_export(client, ""))))
    assert len(frame) == len(rows) == 2 * 2 * 6 + 6 + 2 * 6
    for (_, rec), row in zip(frame.iterrows(), rows):
        assert (rec.run, rec.tag, rec.step) == (row["run"], row["tag"], int(row["step"]))
        assert rec.wall_time == float(row["wall_time"])
        value = float(row["value"])
        assert rec.value == value or (math.isnan(rec.value) and math.isnan(value))


def test_python_api_wide_histograms_images(mixed_logdir: Path) -> None:
    pytest.importorskip("pandas")
    wide = kboard.read_scalars(str(mixed_logdir), tags="^loss$", pivot=True)
    assert sorted(wide.columns) == [
        "eval/loss",
        "kboard_writer/loss",
        "torch_style/loss",
        "train/loss",
    ]
    assert wide.index.tolist() == list(range(6))
    hist = kboard.read_histograms(str(mixed_logdir), runs="train")
    assert set(hist.columns) == {"run", "tag", "step", "wall_time", "left", "right", "count"}
    assert hist.groupby("step")["count"].sum().tolist() == [500.0] * 6
    images = kboard.read_images(str(mixed_logdir), runs="^train$")
    assert len(images) == 12 and images["data"].iloc[0].startswith(b"\x89PNG")
    with pytest.raises(FileNotFoundError):
        kboard.read_scalars(str(mixed_logdir / "missing"))
    with pytest.raises(ValueError, match="regular expression"):
        kboard.read_scalars(str(mixed_logdir), runs="(")


def test_formula_injection_is_neutralised(tmp_path: Path, make_app) -> None:
    names = ['=HYPERLINK("x")', "+1", "-cmd", "@SUM(A1)", "\tTAB", "\rCR", 'safe, "quoted"']
    write_events(
        tmp_path / "=run" / "events.out.tfevents.1", [scalar_event(name, 0, -1.5) for name in names]
    )
    text = http_export(make_app(tmp_path).test_client(), "")
    rows = list(csv.reader(io.StringIO(text)))[1:]
    assert [r[0] for r in rows] == ["'=run"] * len(names)
    assert sorted(r[1] for r in rows) == sorted(
        ["'" + n if n[0] in "=+-@\t\r" else n for n in names]
    )
    assert {r[4] for r in rows} == {"-1.5"}  # numbers are never altered
    assert cli_export(tmp_path) == text


def test_bad_requests(client) -> None:
    for query in ("format=xml", "layout=tall", "kind=images", "runs=("):
        response = client.get(f"/api/export?{query}")
        assert response.status_code == 400 and response.get_json()["error"]
    result = subprocess.run(
        [sys.executable, "-m", "kboard", "export", "--logdir", ".", "--runs", "("],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr


def test_large_export_streams_with_bounded_memory(tmp_path: Path) -> None:
    steps = 200_000
    for run in range(5):
        path = tmp_path / f"run{run}" / "events.out.tfevents.1"
        write_events(path, [scalar_event("loss", s, float(np.sin(s))) for s in range(steps)])
    reader = LogdirReader(str(tmp_path))
    reader.reload()
    out_path = tmp_path / "out.csv"
    with open(out_path, "w", encoding="utf-8", newline="") as out:
        tracemalloc.start()
        write_export(DataProvider(reader.store), out, Selection())
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    size = out_path.stat().st_size
    assert size > 40_000_000  # a million rows
    assert peak < 16 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB for a {size / 1e6:.0f} MB export"
    with open(out_path, encoding="utf-8") as f:
        assert sum(1 for _ in f) == 5 * steps + 1
