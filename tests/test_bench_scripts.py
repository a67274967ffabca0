"""bench.load and bench.soak pass in quick mode (a few seconds each), so they keep working."""

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
