"""bench.load, bench.soak and bench.browser --graphs pass at a tiny size, so they keep working."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("bench.load", ["failures    0", "all served exactly: yes", "server RSS", "p99"]),
        ("bench.soak", ["open file descriptors", "traced memory at the end"]),
    ],
)
def test_quick_mode_passes(module: str, expected: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", module, "--quick"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for line in expected:
        assert line in result.stdout, result.stdout
    assert result.stdout.rstrip().endswith("PASS")


def test_browser_graph_bench_at_a_tiny_size(tmp_path: Path) -> None:
    """bench.browser --graphs measures what it says: a collapsed op graph, every layer shown."""
    import os
    import re

    from bench.server import CHROMIUM

    pytest.importorskip("tensorflow")
    if not os.path.exists(CHROMIUM) and not os.environ.get("CI"):
        pytest.skip(f"{CHROMIUM} is missing")
    result = subprocess.run(
        [sys.executable, "-m", "bench.browser", "--graphs", "--ops", "300", "--layers", "12"]
        + ["--loads", "1"],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
        env={**os.environ, "TMPDIR": str(tmp_path)},  # its logdir goes where pytest cleans up
    )
    assert result.returncode == 0, result.stdout + result.stderr
    number = r"([\d,]+)"
    ops = re.search(
        rf"op graph of {number} ops, collapsed: {number} boxes laid out and drawn in {number} ms"
        rf" \({number} ms after navigation start\); laid out again in {number} ms",
        result.stdout,
    )
    model = re.search(
        rf"Keras model of 12 layers, all shown: {number} boxes laid out and drawn in {number} ms",
        result.stdout,
    )
    assert ops and model, result.stdout
    op_count, boxes, layout_ms, at_ms, again_ms = (int(g.replace(",", "")) for g in ops.groups())
    assert 300 <= op_count < 1_000 and 1 < boxes < op_count / 10  # opened collapsed, by scope
    assert 0 < layout_ms <= at_ms and again_ms > 0
    assert int(model.group(1)) == 12 and int(model.group(2).replace(",", "")) > 0
