"""The command line, run as a user runs it: a real subprocess on real logdirs."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

from kboard import __version__
from kboard.ingest import LogdirReader

from .conftest import scalar_event, write_events


def kboard(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kboard", *args], capture_output=True, text=True, timeout=120
    )


def test_version() -> None:
    result = kboard("--version")
    assert result.returncode == 0 and __version__ in result.stdout


def test_inspect_lists_runs_tags_counts_and_ranges(tf_logdir: Path) -> None:
    result = kboard("inspect", "--logdir", str(tf_logdir))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "run train" in out and "run eval" in out
    for section in ("scalars", "images", "histograms", "text", "other"):
        assert f"  {section}\n" in out
    loss_line = next(line for line in out.splitlines() if line.strip().startswith("loss "))
    assert "6 points" in loss_line and "steps 0..5" in loss_line
    assert "plugin audio" in out


def test_inspect_reports_problems(tmp_path: Path) -> None:
    write_events(tmp_path / "ok" / "events.out.tfevents.1", [scalar_event("a", 0, 1.0)])
    bad = tmp_path / "bad" / "events.out.tfevents.1"
    bad.parent.mkdir()
    bad.write_text("hello, I am a text file\n")
    result = kboard("inspect", "--logdir", str(tmp_path))
    assert result.returncode == 3  # problems listed (docs/cli.md)
    assert "problems (1)" in result.stdout and "length checksum" in result.stdout
    assert "run ok" in result.stdout


def test_inspect_of_an_empty_logdir_says_what_to_do(tmp_path: Path) -> None:
    result = kboard("inspect", "--logdir", str(tmp_path))
    assert result.returncode == 0 and "No event files found" in result.stdout


def test_export_has_every_point(tf_logdir: Path, tmp_path: Path) -> None:
    out = tmp_path / "scalars.csv"
    result = kboard("export", "--logdir", str(tf_logdir), "-o", str(out))
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    reader = LogdirReader(str(tf_logdir))
    reader.reload()
    store = reader.store
    expected = [
        (run, tag, step, wall, value)
        for run, tag, cols in store.iter_scalars()
        for step, wall, value in zip(cols.steps, cols.wall_times, cols.values)
    ]
    assert len(rows) == len(expected) == 2 * 2 * 6
    for row, (run, tag, step, wall, value) in zip(rows, expected):
        assert (row["run"], row["tag"], int(row["step"])) == (run, tag, step)
        assert float(row["wall_time"]) == wall and float(row["value"]) == value


def test_export_to_stdout_with_filters_and_special_values(tmp_path: Path) -> None:
    events = [
        scalar_event("=cmd", 0, float("nan")),
        scalar_event("=cmd", 1, float("inf")),
        scalar_event("=cmd", 2, -2.5),
        scalar_event("other", 0, 1.0),
    ]
    write_events(tmp_path / "run" / "events.out.tfevents.1", events)
    result = kboard("export", "--logdir", str(tmp_path), "-o", "-", "--tags", "cmd")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "run,tag,step,wall_time,value",
        "run,'=cmd,0,1000.0,nan",
        "run,'=cmd,1,1001.0,inf",
        "run,'=cmd,2,1002.0,-2.5",
    ]


def test_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    for args in (
        ("inspect", "--logdir", str(tmp_path / "missing")),
        ("export", "--logdir", str(tmp_path), "--runs", "("),
        ("export", "--logdir", str(tmp_path), "-o", str(tmp_path / "no" / "dir" / "x.csv")),
    ):
        result = kboard(*args)
        assert result.returncode != 0, args
        assert "Traceback" not in result.stderr
        assert result.stderr.strip(), args
    missing = kboard("inspect", "--logdir", str(tmp_path / "missing"))
    assert missing.stderr.strip().splitlines() == [
        f"Error: logdir not found: {tmp_path / 'missing'}"
    ]


def test_console_script_is_installed() -> None:
    exe = Path(sys.executable).with_name("kboard")
    result = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "inspect" in result.stdout and "export" in result.stdout


def test_every_command_and_option_is_documented() -> None:
    from kboard.cli import cli

    doc = (Path(__file__).resolve().parent.parent / "docs" / "cli.md").read_text("utf-8")
    for name, command in cli.commands.items():
        assert f"## `kboard {name}`" in doc, name
        for param in command.params:
            for opt in param.opts:
                if opt.startswith("--"):
                    assert f"`{opt}" in doc, f"kboard {name} {opt} is not in docs/cli.md"


def test_logdir_is_one_path_never_split(tmp_path: Path) -> None:
    logdir = tmp_path / "2024-01-01T10:00,sweep"
    write_events(logdir / "run" / "events.out.tfevents.1", [scalar_event("loss", 0, 1.0)])
    result = kboard("inspect", "--logdir", str(logdir))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "run run"
    out = tmp_path / "x.csv"
    assert kboard("export", "--logdir", str(logdir), "-o", str(out)).returncode == 0
    assert out.read_text(encoding="utf-8").splitlines()[1].startswith("run,loss,0,")


def test_logdir_spec_names_several_logdirs(tmp_path: Path) -> None:
    write_events(tmp_path / "a:1" / "events.out.tfevents.1", [scalar_event("t", 0, 1.0)])
    write_events(tmp_path / "b" / "r" / "events.out.tfevents.1", [scalar_event("t", 0, 2.0)])
    spec = f"first:{tmp_path / 'a:1'},second:{tmp_path / 'b'}"
    result = kboard("inspect", "--logdir_spec", spec)
    assert result.returncode == 0, result.stderr
    assert [line for line in result.stdout.splitlines() if line.startswith("run ")] == [
        "run first",
        "run second/r",
    ]
    both = kboard("inspect", "--logdir", str(tmp_path), "--logdir_spec", spec)
    assert both.returncode == 2 and "not both" in both.stderr
    neither = kboard("inspect")
    assert neither.returncode == 2 and "--logdir" in neither.stderr
    bad = kboard("inspect", "--logdir_spec", "a:/x,/y,/z")
    assert bad.returncode == 2 and "name1:path1" in bad.stderr


def test_a_logdir_that_is_a_file_is_reported_as_such(tmp_path: Path) -> None:
    event_file = tmp_path / "run" / "events.out.tfevents.1"
    write_events(event_file, [scalar_event("loss", 0, 1.0)])
    for command in ("inspect", "export"):
        result = kboard(command, "--logdir", str(event_file))
        assert result.returncode == 1, command
        assert "is a file, not a directory" in result.stderr
        assert f"--logdir {event_file.parent}" in result.stderr
        assert "Traceback" not in result.stderr


def test_inspect_exit_codes(tmp_path: Path) -> None:
    write_events(tmp_path / "ok" / "events.out.tfevents.1", [scalar_event("a", 0, 1.0)])
    assert kboard("inspect", "--logdir", str(tmp_path)).returncode == 0
    assert kboard("inspect", "--logdir", str(tmp_path / "missing")).returncode == 1
    assert kboard("inspect", "--logdir", str(tmp_path), "--bogus").returncode == 2
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "events.out.tfevents.1").write_bytes(b"\xff" * 64)
    assert kboard("inspect", "--logdir", str(tmp_path)).returncode == 3


def test_export_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    events = [scalar_event("loss", step, float(step)) for step in range(20_000)]
    write_events(tmp_path / "run" / "events.out.tfevents.1", events)
    proc = subprocess.Popen(
        [sys.executable, "-m", "kboard", "export", "--logdir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline() == b"run,tag,step,wall_time,value\r\n"
    proc.stdout.close()  # as `| head -1` does
    try:
        assert proc.wait(timeout=120) == 0
        assert proc.stderr.read() == b""
    finally:
        proc.kill()
        proc.stderr.close()


def test_wide_export_counts_rows_written(tmp_path: Path) -> None:
    for run in ("a", "b"):
        events = [scalar_event("loss", step, 1.0) for step in range(5)]
        write_events(tmp_path / run / "events.out.tfevents.1", events)
    out = tmp_path / "wide.csv"
    result = kboard("export", "--logdir", str(tmp_path), "--format", "wide", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert len(out.read_text(encoding="utf-8").splitlines()) == 1 + 5
    assert f"wrote 5 rows (one per step) to {out}" in result.stderr
    long = kboard("export", "--logdir", str(tmp_path), "-o", str(tmp_path / "long.csv"))
    assert "wrote 10 rows to" in long.stderr
