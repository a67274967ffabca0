"""The benchmark runner works (a tiny size: benchmarks are not tests, this keeps them running)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_generator_writes_what_tensorboard_reads(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing import plugin_event_accumulator as pea
    from tensorboard.util import tensor_util

    from bench.generate import generate

    assert generate(str(tmp_path), runs=1, tags=2, steps=30) == 60
    acc = pea.EventAccumulator(str(tmp_path / "run_000"), size_guidance={pea.TENSORS: 0})
    acc.Reload()
    assert acc.Tags()[pea.TENSORS] == ["metrics/tag_000", "metrics/tag_001"]
    events = acc.Tensors("metrics/tag_001")
    assert [e.step for e in events] == list(range(30))
    assert acc.SummaryMetadata("metrics/tag_001").plugin_data.plugin_name == "scalars"
    assert tensor_util.make_ndarray(events[0].tensor_proto).dtype.name == "float32"


def test_runner_smoke(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.run",
            "--runs",
            "2",
            "--tags",
            "2",
            "--steps",
            "50",
            "--skip-slow",
            "--timeout",
            "120",
            "--json",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(out.read_text())
    # The generator's logdir and, with TensorFlow installed, one written by tf.summary.
    assert set(report) == {"bench", "tf"}
    for rows in report.values():
        names = [r["name"] for r in rows]
        assert names[:2] == ["kboard (cold: empty cache)", "kboard (warm: same logdir again)"]
        assert names[2:] == [
            "tensorboard --load_fast=true, TensorFlow importable",
            "tensorboard --load_fast=true, TensorFlow blocked",
        ]
        assert all(r["points"] == 50 and r["seconds"] > 0 and r["peak_mb"] > 10 for r in rows)
        # Every point of every series, compared with kboard's bit for bit.
        assert all(r["values"] == "equal: 200 points in 4 series, bit for bit" for r in rows[1:])
    assert "Targets against TensorBoard's faster set-up" in result.stdout
    assert "- decoding:" in result.stdout
    assert "A reload that finds nothing new" in result.stdout


@pytest.mark.parametrize("fmt", ["tf2", "legacy"])
def test_generated_logdir_reads_fully(tmp_path: Path, fmt: str) -> None:
    from bench.generate import generate
    from kboard.ingest import LogdirReader

    generate(str(tmp_path), runs=2, tags=3, steps=100, fmt=fmt, extras=True)
    reader = LogdirReader(str(tmp_path))
    reader.reload()
    assert sum(len(c) for _, _, c in reader.store.iter_scalars()) == 600
    assert reader.store.problems() == []
