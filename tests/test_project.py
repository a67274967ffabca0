"""The project's own promises: lint-clean code and a README whose commands CI really runs."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def fenced_after(marker: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(rf"<!-- {marker} -->\s*```\n(.*?)\n```", text, re.S)
    assert match, f"README.md has no command block after <!-- {marker} -->"
    return match.group(1).strip()


def test_readme_opens_with_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```\n(.*?)\n```", text, re.S)
    assert blocks[:2] == [fenced_after("start-command"), fenced_after("test-command")]
    assert "sample_logs" in blocks[0] and blocks[1].endswith("pytest")


def test_ci_runs_the_readme_test_command() -> None:
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "<!-- test-command -->" in script
    awk = re.search(r"test_command=\$\(awk '(.*?)' README.md\)", script).group(1)
    extracted = subprocess.run(
        ["awk", awk, "README.md"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert extracted == fenced_after("test-command")


def test_sample_logs_are_small_and_readable() -> None:
    from kboard.ingest import LogdirReader

    files = [p for p in (ROOT / "sample_logs").rglob("*") if p.is_file()]
    assert files and sum(p.stat().st_size for p in files) < 5 * 1024 * 1024
    reader = LogdirReader(str(ROOT / "sample_logs"))
    reader.reload()
    assert len(reader.store.runs()) >= 2 and reader.store.problems() == []


@pytest.mark.parametrize("args", [["check", "."], ["format", "--check", "."]])
def test_ruff_is_clean(args: list[str]) -> None:
    if importlib.util.find_spec("ruff") is None:
        pytest.fail("ruff is not installed (it is in the [test] extra)")
    result = subprocess.run(
        [sys.executable, "-m", "ruff", *args], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
