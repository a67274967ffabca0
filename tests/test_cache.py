"""The warm-start cache: used only when still true, never stale, never partial."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from kboard.cache import RunCache
from kboard.ingest import LogdirReader
from kboard.tfevents.events import Kind
from kboard.writer import SummaryWriter

from .conftest import scalar_event, write_events


def make_logdir(root: Path, steps: int = 500) -> None:
    for run in ("a", "b"):
        with SummaryWriter(str(root / run)) as writer:
            for step in range(steps):
                writer.add_scalar("loss", 1.0 / (step + 1), step)
            writer.add_histogram("w", np.arange(100.0), 0)
            writer.add_text("note", f"run {run}", 0)


def contents(reader: LogdirReader) -> dict:
    store = reader.store
    out = {}
    for run, tag, cols in store.iter_scalars():
        out[(run, tag)] = (cols.steps.tolist(), cols.wall_times.tolist(), cols.values.tolist())
    for kind in (Kind.HISTOGRAMS, Kind.TEXT):
        for run, tags in store.tags(kind).items():
            for tag in tags:
                out[(run, kind.value, tag)] = [
                    (s.step, s.wall_time, np.asarray(s.value).tolist())
                    for s in store.samples(run, kind, tag)
                ]
    return out


def cold_then_warm(logdir: Path, cache_dir: Path) -> tuple[LogdirReader, LogdirReader]:
    cold = LogdirReader(str(logdir), cache=RunCache(str(cache_dir)))
    cold.reload()
    assert cold.save_cache(min_new_bytes=0) == 2
    warm = LogdirReader(str(logdir), cache=RunCache(str(cache_dir)))
    return cold, warm


def test_warm_start_equals_cold_and_reads_nothing(tmp_path: Path) -> None:
    make_logdir(tmp_path / "logs")
    cold, warm = cold_then_warm(tmp_path / "logs", tmp_path / "cache")
    report = warm.reload()
    assert sorted(report.runs_from_cache) == ["a", "b"] and report.bytes_read == 0
    assert contents(warm) == contents(cold)


def test_appended_data_is_read_on_top_of_the_cache(tmp_path: Path) -> None:
    logdir = tmp_path / "logs"
    write_events(
        logdir / "a" / "events.out.tfevents.1", [scalar_event("t", s, s) for s in range(5)]
    )
    cache = RunCache(str(tmp_path / "cache"))
    first = LogdirReader(str(logdir), cache=cache)
    first.reload()
    first.save_cache(min_new_bytes=0)
    write_events(logdir / "a" / "events.out.tfevents.1", [scalar_event("t", 5, 5.0)], append=True)
    warm = LogdirReader(str(logdir), cache=cache)
    report = warm.reload()
    assert report.runs_from_cache == ["a"] and report.records == 1
    assert warm.store.scalars("a", "t").steps.tolist() == [0, 1, 2, 3, 4, 5]


@pytest.mark.parametrize("change", ["replaced", "rewritten_in_place", "deleted", "shrunk"])
def test_a_changed_file_makes_the_cache_stale(tmp_path: Path, change: str) -> None:
    logdir = tmp_path / "logs"
    path = logdir / "a" / "events.out.tfevents.1"
    write_events(path, [scalar_event("t", s, 1.0) for s in range(50)])
    write_events(logdir / "a" / "events.out.tfevents.2", [scalar_event("u", 0, 1.0)])
    cache = RunCache(str(tmp_path / "cache"))
    first = LogdirReader(str(logdir), cache=cache)
    first.reload()
    first.save_cache(min_new_bytes=0)
    if change == "replaced":
        new = tmp_path / "new"
        write_events(new, [scalar_event("t", s, 2.0) for s in range(50)])
        new.replace(path)
    elif change == "rewritten_in_place":
        data = path.read_bytes()
        with open(path, "r+b") as f:  # same inode, same size, other values
            write_events(tmp_path / "other", [scalar_event("t", s, 2.0) for s in range(50)])
            f.write((tmp_path / "other").read_bytes()[: len(data)])
    elif change == "deleted":
        path.unlink()
    else:
        write_events(path, [scalar_event("t", s, 2.0) for s in range(10)])
    warm = LogdirReader(str(logdir), cache=cache)
    report = warm.reload()
    assert report.runs_from_cache == []
    fresh = LogdirReader(str(logdir))
    fresh.reload()
    assert contents(warm) == contents(fresh)


def test_damaged_or_partial_cache_files_are_ignored(tmp_path: Path) -> None:
    make_logdir(tmp_path / "logs", steps=50)
    cold, _ = cold_then_warm(tmp_path / "logs", tmp_path / "cache")
    files = sorted((tmp_path / "cache").glob("*.kbc"))
    assert len(files) == 2
    data = files[0].read_bytes()
    files[0].write_bytes(data[: len(data) // 2])  # as if killed mid-write without the rename
    damaged = bytearray(files[1].read_bytes())
    damaged[-10] ^= 0xFF
    files[1].write_bytes(bytes(damaged))
    (tmp_path / "cache" / ".tmp-leftover.kbc").write_bytes(b"partial")
    warm = LogdirReader(str(tmp_path / "logs"), cache=RunCache(str(tmp_path / "cache")))
    report = warm.reload()
    assert report.runs_from_cache == [] and contents(warm) == contents(cold)


def test_a_cache_directory_open_to_others_is_not_used(tmp_path: Path, caplog) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    with caplog.at_level("WARNING", logger="kboard"):
        assert not RunCache(str(shared)).usable
    assert "not private" in caplog.text


def test_the_server_restarts_from_the_cache(tmp_path: Path, make_app) -> None:
    make_logdir(tmp_path / "logs")
    first = make_app(tmp_path / "logs", cache_dir=str(tmp_path / "cache"))
    first.extensions["kboard"].reader.save_cache(
        min_new_bytes=0
    )  # what the app does in the background
    second = make_app(tmp_path / "logs", cache_dir=str(tmp_path / "cache"))
    body = second.test_client().get("/api/scalars?tag=loss&run=a&points=1000").get_json()
    assert body["series"][0]["total"] == 500
    assert second.extensions["kboard"].store.runs() == ["a", "b"]


def test_a_rewrite_after_a_warm_start_is_still_detected(tmp_path: Path) -> None:
    logdir = tmp_path / "logs"
    path = logdir / "a" / "events.out.tfevents.1"
    write_events(path, [scalar_event("t", s, 1.0) for s in range(20)])
    cache = RunCache(str(tmp_path / "cache"))
    first = LogdirReader(str(logdir), cache=cache)
    first.reload()
    first.save_cache(min_new_bytes=0)
    warm = LogdirReader(str(logdir), cache=cache)
    assert warm.reload().runs_from_cache == ["a"]
    # Truncated in place and written again, longer than before, with other values.
    write_events(tmp_path / "other", [scalar_event("t", s, 2.0) for s in range(30)])
    with open(path, "r+b") as f:
        f.write((tmp_path / "other").read_bytes())
    assert warm.reload().runs_reread == ["a"]
    assert warm.store.scalars("a", "t").values.tolist() == [2.0] * 30
