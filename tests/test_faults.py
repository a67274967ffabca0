"""Fault injection, end to end: broken files, odd values, hostile names, bad images and histograms.

Every case runs against the real Flask app and checks what the issue asks of it: the server
keeps answering, every intact point of the other series is served, the problem is reported (in
``/api/runs`` "problems" and as a log line on the ``kboard`` logger) and, where input could
make it grow, memory stays bounded. Cases that are normal events rather than faults (an empty
file, a record still being written) check that nothing is reported.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import tracemalloc
import zlib
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
import pytest
from tensorboard.compat.proto import event_pb2, summary_pb2

from kboard import ingest
from kboard.ingest import LogdirReader
from kboard.tfevents.protos import double_tensor, string_tensor
from kboard.tfevents.records import encode_record, masked_crc32c

from .conftest import scalar_event, write_events

EVENTS = "events.out.tfevents.1.host"
NAN, INF = float("nan"), float("inf")

# The intact runs every case keeps next to its broken one: (run, tag) -> values by step
# (float32 values: scalars are written as float32, as tf.summary writes them).
GOOD = {
    ("good_a", "loss"): np.float32([1.0 / (s + 1) for s in range(20)]).tolist(),
    ("good_a", "acc"): np.float32([s / 20 for s in range(20)]).tolist(),
    ("good_b", "loss"): np.float32([2.0 / (s + 1) for s in range(15)]).tolist(),
}


# -- helpers ----------------------------------------------------------------------------
def write_good(logdir: Path) -> None:
    for run in {run for run, _ in GOOD}:
        tags = {tag: values for (r, tag), values in GOOD.items() if r == run}
        steps = max(len(v) for v in tags.values())
        events = [
            scalar_event(tag, step, values[step])
            for step in range(steps)
            for tag, values in tags.items()
            if step < len(values)
        ]
        write_events(logdir / run / EVENTS, events)


def records_of(events: list) -> list[bytes]:
    """Framed records, the file_version event first, as a writer lays them out."""
    first = event_pb2.Event(file_version="brain.Event:2").SerializeToString()
    return [encode_record(first)] + [encode_record(e.SerializeToString()) for e in events]


def bad_points(n: int = 10) -> list:
    return [scalar_event("x", s, 100.0 + s) for s in range(n)]


def series(client, run: str, tag: str) -> tuple[list[int], list]:
    query = urlencode({"tag": tag, "run": run, "points": 100_000})
    response = client.get(f"/api/scalars?{query}")
    assert response.status_code == 200, response.get_data(as_text=True)
    found = response.get_json()["series"]
    assert len(found) == 1, found
    return found[0]["steps"], found[0]["values"]


def assert_serving(client) -> dict:
    """The server answers, and every point of the intact runs is served; return /api/runs."""
    runs = client.get("/api/runs")
    assert runs.status_code == 200
    body = json.loads(runs.get_data(as_text=True), parse_constant=pytest.fail)
    assert client.get("/").status_code == 200
    assert client.get("/api/tags/scalars").status_code == 200
    for (run, tag), values in GOOD.items():
        assert series(client, run, tag) == (list(range(len(values))), values)
        compat = client.get("/data/plugin/scalars/scalars?" + urlencode({"run": run, "tag": tag}))
        assert [v for _, _, v in compat.get_json()] == values
    return body


def problem_kinds(client, run: str | None = None) -> list[str]:
    problems = client.get("/api/runs").get_json()["problems"]
    return sorted(p["kind"] for p in problems if run is None or p["run"] == run)


def logged(caplog, *needles: str) -> list[str]:
    """Warnings (and worse) on the kboard logger that mention every needle."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "kboard"
        and r.levelno >= logging.WARNING
        and all(n in r.getMessage() for n in needles)
    ]


def reader_of(app) -> LogdirReader:
    return app.extensions["kboard"].reader


@pytest.fixture()
def logdir(tmp_path: Path, caplog) -> Path:
    caplog.set_level(logging.INFO, logger="kboard")
    write_good(tmp_path)
    return tmp_path


# -- files ------------------------------------------------------------------------------
def _flip(data: bytes, at: int, mask: int = 0x01) -> bytes:
    out = bytearray(data)
    out[at] ^= mask
    return bytes(out)


def _huge_header(length: int) -> bytes:
    raw = struct.pack("<Q", length)
    return raw + struct.pack("<I", masked_crc32c(raw))


def _file_cases():
    """(id, bytes of the bad file, steps of it still served, problem kind or None)."""
    recs = records_of(bad_points())  # recs[1 + s] holds step s
    whole = b"".join(recs)
    third = sum(len(r) for r in recs[:4])  # offset of the record of step 3
    yield "zero_bytes", b"", [], None
    yield "ends_inside_a_header", whole + recs[1][:7], list(range(10)), None
    yield "flipped_payload_byte", _flip(whole, third + 14), [0, 1, 2, *range(4, 10)], "data_crc"
    yield "flipped_length_byte", _flip(whole, third, 0x40), [0, 1, 2], "length_crc"
    huge = whole[:third] + _huge_header(2**40) + b"x" * 64
    yield "huge_length_valid_crc", huge, [0, 1, 2], "too_long"
    not_event = encode_record(b"\xff\xfe\xfd garbage, not an Event protobuf")
    with_garbage = whole[:third] + not_event + whole[third:]
    yield "valid_record_not_an_event", with_garbage, list(range(10)), "decode"
    yield "text_named_like_events", b"These are my notes, not events.\n" * 20, [], "length_crc"
    yield "html_named_like_events", b"<html><script>alert(1)</script></html>" * 4, [], "length_crc"


FILE_CASES = list(_file_cases())


@pytest.mark.parametrize(
    ("data", "steps", "kind"), [c[1:] for c in FILE_CASES], ids=[c[0] for c in FILE_CASES]
)
def test_broken_file(logdir: Path, make_app, caplog, data: bytes, steps: list[int], kind) -> None:
    bad = logdir / "bad" / EVENTS
    bad.parent.mkdir()
    bad.write_bytes(data)
    client = make_app(logdir).test_client()
    assert_serving(client)
    if steps:
        assert series(client, "bad", "x") == (steps, [100.0 + s for s in steps])
    else:
        assert client.get("/api/scalars?tag=x&run=bad").status_code in (200, 404)
    assert problem_kinds(client) == ([kind] if kind else [])
    if kind:
        assert logged(caplog, str(bad))
    # Reported once, not on every reload; nothing changes when nothing was written.
    caplog.clear()
    assert reader_of(client.application).reload().problems == []
    assert logged(caplog) == []


def test_huge_length_is_refused_in_bounded_memory(logdir: Path, make_app) -> None:
    recs = records_of(bad_points(3))
    bad = logdir / "bad" / EVENTS
    bad.parent.mkdir()
    # 2**40 with a valid CRC, and a length just under the 256 MiB limit of a record that is
    # not all there yet (after more than one read block, so read_block's slow path runs).
    bad.write_bytes(b"".join(recs) + _huge_header(2**40) + b"y" * 100)
    big = logdir / "big" / EVENTS
    big.parent.mkdir()
    big.write_bytes(b"".join(recs) + _huge_header(255 << 20) + b"z" * (5 << 20))
    tracemalloc.start()
    try:
        client = make_app(logdir).test_client()
        body = assert_serving(client)
        reader_of(client.application).reload()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 48 << 20, f"peak {peak / 2**20:.0f} MiB"
    assert [p["kind"] for p in body["problems"]] == ["too_long"]
    assert series(client, "big", "x")[0] == [0, 1, 2]  # the unfinished record is "not yet"


def test_record_completed_later_is_read_exactly_once(logdir: Path, make_app, caplog) -> None:
    recs = records_of(bad_points(6))
    bad = logdir / "bad" / EVENTS
    bad.parent.mkdir()
    cut = sum(len(r) for r in recs[:5]) + len(recs[5]) // 2  # inside the payload of step 4
    whole = b"".join(recs)
    bad.write_bytes(whole[:cut])
    app = make_app(logdir)
    client = app.test_client()
    assert series(client, "bad", "x")[0] == [0, 1, 2, 3]
    generation = client.get("/api/runs").get_json()["generation"]
    with open(bad, "ab") as out:
        out.write(whole[cut:])
    reader_of(app).reload()
    assert series(client, "bad", "x") == ([0, 1, 2, 3, 4, 5], [100.0 + s for s in range(6)])
    assert client.get("/api/runs").get_json()["generation"] > generation
    reader_of(app).reload()
    assert series(client, "bad", "x")[0] == [0, 1, 2, 3, 4, 5]
    assert problem_kinds(client) == [] and logged(caplog) == []
    assert_serving(client)


def test_file_written_one_byte_at_a_time(logdir: Path, make_app, caplog) -> None:
    recs = records_of(bad_points(4))
    bad = logdir / "bad" / EVENTS
    bad.parent.mkdir()
    bad.write_bytes(b"".join(recs[:2]))
    app = make_app(logdir)
    client = app.test_client()
    tail = b"".join(recs[2:])
    ends = np.cumsum([len(r) for r in recs[2:]]).tolist()
    for i in range(len(tail)):
        with open(bad, "ab") as out:
            out.write(tail[i : i + 1])
        reader_of(app).reload()
        done = sum(1 for e in ends if e <= i + 1)
        steps = series(client, "bad", "x")[0]
        assert steps == list(range(1 + done)), (i, steps)
    assert problem_kinds(client) == [] and logged(caplog) == []
    assert_serving(client)


def test_zero_filled_tail_waits_then_is_reported(logdir: Path, make_app, caplog) -> None:
    recs = records_of(bad_points(5))
    bad = logdir / "bad" / EVENTS
    bad.parent.mkdir()
    bad.write_bytes(b"".join(recs[:4]) + b"\0" * 4096)  # steps 0..2, then allocated zeros
    reader = LogdirReader(str(logdir), pending_report_seconds=0.3)
    app = make_app(logdir, reader=reader)
    client = app.test_client()
    assert problem_kinds(client) == []  # pending, for now
    time.sleep(0.35)
    reader.reload()
    assert problem_kinds(client) == ["zero_tail"]
    assert logged(caplog, str(bad), "zero bytes")
    assert series(client, "bad", "x")[0] == [0, 1, 2]
    assert_serving(client)
    # The zeros are written over at last (same size): the records are read, the notice goes.
    data = bytearray(bad.read_bytes())
    at = sum(len(r) for r in recs[:4])
    data[at : at + len(recs[4])] = recs[4]
    bad.write_bytes(bytes(data))
    reader.reload()
    assert series(client, "bad", "x")[0] == [0, 1, 2, 3]
    assert problem_kinds(client) == []


@pytest.mark.parametrize("how", ["truncated_shorter", "truncated_then_longer", "replaced"])
def test_file_truncated_in_place_or_replaced(logdir: Path, make_app, caplog, how: str) -> None:
    bad = logdir / "bad" / EVENTS
    write_events(bad, [scalar_event("x", s, 1.0) for s in range(10)])
    app = make_app(logdir)
    client = app.test_client()
    new = [scalar_event("x", s, 2.0) for s in range(4 if how == "truncated_shorter" else 30)]
    if how == "replaced":
        other = logdir / "elsewhere"
        write_events(other, new)
        other.replace(bad)
    else:
        write_events(bad, new)  # open(..., "wb"): the same file, truncated and written again
    report = reader_of(app).reload()
    assert report.runs_reread == ["bad"]
    assert logged(caplog) == []  # a rewrite is not a fault; it is logged at INFO
    assert any("reading it again" in r.getMessage() for r in caplog.records)
    assert series(client, "bad", "x") == (list(range(len(new))), [2.0] * len(new))
    assert_serving(client)


def test_file_deleted_while_being_read(logdir: Path, make_app, monkeypatch) -> None:
    run = logdir / "bad"
    write_events(
        run / "events.out.tfevents.1.doomed", [scalar_event("x", s, 1.0) for s in range(50)]
    )
    write_events(run / "events.out.tfevents.2.kept", [scalar_event("y", s, 2.0) for s in range(5)])
    (run / "events.out.tfevents.3.corrupt").write_bytes(b"not events at all" * 3)
    real_read_block = ingest.read_block

    def read_then_delete(stream, offset, **kwargs):
        block = real_read_block(stream, offset, **kwargs)
        name = os.path.basename(stream.name)
        if name.endswith("doomed") and os.path.exists(stream.name):
            os.unlink(stream.name)  # gone while its bytes are being read
            os.unlink(run / "events.out.tfevents.3.corrupt")  # and the corrupt one too
        return block

    monkeypatch.setattr(ingest, "read_block", read_then_delete)
    app = make_app(logdir)
    client = app.test_client()
    assert_serving(client)
    monkeypatch.setattr(ingest, "read_block", real_read_block)
    report = reader_of(app).reload()
    assert report.runs_reread == ["bad"]
    assert client.get("/api/scalars?tag=x&run=bad").status_code == 404
    assert series(client, "bad", "y") == ([0, 1, 2, 3, 4], [2.0] * 5)
    assert problem_kinds(client) == []  # the corrupt file's problem went with it
    assert_serving(client)


UNREADABLE_DIR_SCENARIO = r"""
import json, logging, os, sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from tests.conftest import scalar_event, write_events
from kboard.server.app import create_app

logdir = Path(sys.argv[1])
records = []
handler = logging.Handler()
handler.emit = records.append
logging.getLogger("kboard").addHandler(handler)
points = [scalar_event("t", s, 1.0) for s in range(5)]
write_events(logdir / "open" / "events.out.tfevents.1", points)
write_events(logdir / "closed" / "events.out.tfevents.1", [scalar_event("t", 0, 2.0)])
(logdir / "closed").chmod(0)
app = create_app(str(logdir), live=False)
client = app.test_client()
body = client.get("/api/runs").get_json()
served = client.get("/api/scalars?tag=t&run=open").get_json()["series"][0]["values"]
(logdir / "closed").chmod(0o755)
app.extensions["kboard"].reader.reload()
after = client.get("/api/runs").get_json()
print(json.dumps({"body": body, "served": served, "after": after,
                  "log": [r.getMessage() for r in records if r.levelno >= logging.WARNING]}))
"""


def _open_to_others(path: str) -> bool:
    """Whether users other than the owner may enter ``path`` and every folder above it."""
    folder = Path(path).resolve()
    return all(p.stat().st_mode & 0o005 == 0o005 for p in (folder, *folder.parents))


def test_directory_without_read_permission() -> None:
    """Run as the unprivileged user ``nobody`` (root reads every directory)."""
    python = Path(sys.prefix) / "bin" / "python"
    if os.geteuid() != 0:
        command = [str(python)]
    elif shutil.which("setpriv"):
        command = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", str(python)]
    else:
        pytest.skip("running as root without setpriv: root reads any directory")
    home = tempfile.mkdtemp(prefix="kboard-perm-")
    try:
        os.chmod(home, 0o777)
        env = {**os.environ, "HOME": home, "PYTHONDONTWRITEBYTECODE": "1"}
        repo = str(Path(__file__).parent.parent)
        result = subprocess.run(
            [*command, "-c", UNREADABLE_DIR_SCENARIO, home, repo],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            cwd=home,
        )
    finally:
        subprocess.run(["chmod", "-R", "u+rwx", home], check=False)
        shutil.rmtree(home, ignore_errors=True)
    if (
        result.returncode != 0
        and "Permission denied" in result.stderr
        and "python" in result.stderr
    ):
        pytest.skip(f"nobody cannot run this Python: {result.stderr[-300:]}")
    if result.returncode != 0 and command[0] == "setpriv" and not _open_to_others(repo):
        pytest.skip(f"nobody cannot read this checkout ({repo} or a folder above is private)")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.splitlines()[-1])
    assert [r["name"] for r in out["body"]["runs"]] == ["open"]
    assert out["served"] == [1.0] * 5
    [problem] = out["body"]["problems"]
    assert problem["kind"] == "io" and problem["run"] == "closed"
    assert "Permission denied" in problem["message"]
    assert any("cannot list directory closed" in line for line in out["log"])
    # Readable again: the run appears and the notice goes.
    assert sorted(r["name"] for r in out["after"]["runs"]) == ["closed", "open"]
    assert out["after"]["problems"] == []


def test_symlink_loops_are_reported_or_never_entered(logdir: Path, make_app, caplog) -> None:
    run = logdir / "links"
    write_events(run / EVENTS, bad_points(3))
    (run / "events.out.tfevents.2.loop").symlink_to("events.out.tfevents.2.loop")
    (run / "events.out.tfevents.3.dangling").symlink_to(logdir / "nowhere")
    (run / "again").symlink_to(logdir)  # a directory loop: logdir/links/again/links/again/...
    (logdir / "self").symlink_to(".")
    started = time.monotonic()
    client = make_app(logdir).test_client()
    assert time.monotonic() - started < 10
    assert_serving(client)
    assert series(client, "links", "x")[0] == [0, 1, 2]
    assert sorted(r["name"] for r in client.get("/api/runs").get_json()["runs"]) == [
        "good_a",
        "good_b",
        "links",
    ]
    problems = client.get("/api/runs").get_json()["problems"]
    assert sorted((p["file"], p["kind"]) for p in problems) == [
        ("events.out.tfevents.2.loop", "io"),
        ("events.out.tfevents.3.dangling", "io"),
    ]
    assert "symbolic links" in next(p["message"] for p in problems if "loop" in p["file"])
    assert logged(caplog, "events.out.tfevents.2.loop")
    assert logged(caplog, "not following symlinked directory", str(run / "again"))
    assert logged(caplog, "not following symlinked directory", str(logdir / "self"))
    caplog.clear()
    reader_of(client.application).reload()
    assert logged(caplog) == []  # each said once
    # The dangling link is removed: its notice goes.
    (run / "events.out.tfevents.3.dangling").unlink()
    reader_of(client.application).reload()
    assert [p["file"] for p in client.get("/api/runs").get_json()["problems"]] == [
        "events.out.tfevents.2.loop"
    ]


def test_symlinks_out_of_the_logdir_follow_the_documented_policy(
    tmp_path: Path, make_app, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="kboard")
    logdir, outside = tmp_path / "logs", tmp_path / "outside"
    write_good(logdir)
    write_events(outside / "run" / EVENTS, bad_points(4))
    (logdir / "linked_file").mkdir()
    (logdir / "linked_file" / EVENTS).symlink_to(outside / "run" / EVENTS)
    (logdir / "linked_dir").symlink_to(outside / "run")
    client = make_app(logdir).test_client()
    assert_serving(client)
    # A symlinked event file is read; a symlinked directory is not followed, and says so.
    assert series(client, "linked_file", "x")[0] == [0, 1, 2, 3]
    names = [r["name"] for r in client.get("/api/runs").get_json()["runs"]]
    assert "linked_dir" not in names
    assert logged(caplog, "not following symlinked directory", "linked_dir")
    assert problem_kinds(client) == []


# -- values -----------------------------------------------------------------------------
def test_non_finite_values_agree_everywhere(logdir: Path, make_app) -> None:
    values = [1.0, NAN, INF, -INF, 2.5]
    write_events(logdir / "odd" / EVENTS, [scalar_event("v", s, v) for s, v in enumerate(values)])
    client = make_app(logdir).test_client()
    assert_serving(client)
    names = ["1.0", "NaN", "Infinity", "-Infinity", "2.5"]
    api = client.get("/api/scalars?tag=v&run=odd").get_data(as_text=True)
    assert json.loads(api, parse_constant=pytest.fail)["series"][0]["values"] == [
        1.0,
        "NaN",
        "Infinity",
        "-Infinity",
        2.5,
    ]
    compat = client.get("/data/plugin/scalars/scalars?run=odd&tag=v").get_data(as_text=True)
    assert [str(v) for _, _, v in json.loads(compat, parse_constant=pytest.fail)] == names
    csv_text = client.get("/data/plugin/scalars/scalars?run=odd&tag=v&format=csv").get_data(
        as_text=True
    )
    exported = client.get("/api/export?runs=^odd$").get_data(as_text=True)
    as_json = json.loads(client.get("/api/export?runs=^odd$&format=json").get_data(as_text=True))
    spelled = ["1.0", "nan", "inf", "-inf", "2.5"]
    assert [row[2] for row in csv.reader(io.StringIO(csv_text))][1:] == spelled
    assert [row[4] for row in csv.reader(io.StringIO(exported))][1:] == spelled
    assert [str(r["value"]) for r in as_json] == spelled


def test_odd_wall_times_and_extreme_steps(logdir: Path, make_app, caplog) -> None:
    walls = [INF, NAN, -5.0, 0.0, 1e9, NAN]
    steps = [-3, 0, 1, 2, 2**40, 2**63 - 1]
    events = [
        scalar_event("w", s, float(i), wall_time=w) for i, (s, w) in enumerate(zip(steps, walls))
    ]
    write_events(logdir / "odd" / EVENTS, events)
    client = make_app(logdir).test_client()
    body = assert_serving(client)
    odd = next(r for r in body["runs"] if r["name"] == "odd")
    assert odd["start_time"] == 1e9  # the only wall time that can be a time
    assert series(client, "odd", "w") == (steps, [float(i) for i in range(6)])
    for x in ("step", "relative", "wall_time"):
        for extra in ("", "&xmin=0&xmax=1e30", "&points=2"):
            response = client.get(f"/api/scalars?tag=w&run=odd&x={x}{extra}")
            assert response.status_code == 200, (x, extra)
            json.loads(response.get_data(as_text=True), parse_constant=pytest.fail)
    rows = list(
        csv.reader(io.StringIO(client.get("/api/export?runs=^odd$").get_data(as_text=True)))
    )
    assert [int(r[2]) for r in rows[1:]] == steps
    assert [r[3] for r in rows[1:]] == ["inf", "nan", "-5.0", "0.0", "1000000000.0", "nan"]
    wide = client.get("/api/export?runs=^odd$&layout=wide").get_data(as_text=True)
    assert wide.splitlines()[-1] == f"{2**63 - 1},5.0"
    assert problem_kinds(client) == [] and logged(caplog) == []


def test_rewind_and_restart(logdir: Path, make_app) -> None:
    start = event_pb2.Event(
        step=6,
        wall_time=2000.0,
        session_log=event_pb2.SessionLog(status=event_pb2.SessionLog.START),
    )
    events = [scalar_event(t, s, 1.0) for s in range(10) for t in ("a", "b")]
    events += [scalar_event("a", s, 2.0) for s in (4, 5)]  # "a" rewinds to step 4
    events += [start, scalar_event("b", 7, 3.0)]  # the job restarts at step 6
    write_events(logdir / "restarted" / EVENTS, events)
    client = make_app(logdir).test_client()
    assert_serving(client)
    assert series(client, "restarted", "a") == ([0, 1, 2, 3, 4, 5], [1.0] * 4 + [2.0] * 2)
    assert series(client, "restarted", "b") == ([0, 1, 2, 3, 4, 5, 7], [1.0] * 6 + [3.0])


def test_two_writers_into_one_run(logdir: Path, make_app) -> None:
    run = logdir / "shared"
    first, second = run / "events.out.tfevents.1.a", run / "events.out.tfevents.1.b"
    write_events(first, [scalar_event("own_a", s, 1.0 + s) for s in range(8)])
    write_events(second, [scalar_event("own_b", s, 2.0 + s) for s in range(8)])
    app = make_app(logdir)
    client = app.test_client()
    written = {}
    for step in range(8, 40):  # both append, interleaved, with a shared tag too
        for path, base in ((first, 1.0), (second, 2.0)):
            own = "own_a" if path == first else "own_b"
            value = base * 1000 + step
            written.setdefault(step, set()).add(value)
            write_events(
                path,
                [scalar_event(own, step, base + step), scalar_event("both", step, value)],
                append=True,
            )
        if step % 7 == 0:
            reader_of(app).reload()
    reader_of(app).reload()
    assert_serving(client)
    assert series(client, "shared", "own_a") == (list(range(40)), [1.0 + s for s in range(40)])
    assert series(client, "shared", "own_b") == (list(range(40)), [2.0 + s for s in range(40)])
    steps, values = series(client, "shared", "both")
    assert steps == sorted(set(steps)) and steps[-1] == 39  # a valid series, newest kept
    assert all(v in written[s] for s, v in zip(steps, values))  # every point one written


# -- names and text ---------------------------------------------------------------------
HOSTILE_RUNS = [
    "<b>bold</b> %{y} & co",
    "javascript:alert(1)",
    "\u202eevil\u202c.exe",
    "r" * 255,
    "..%2F..%2Fetc",
    "=cmd|' /C calc'!A0",
    "quote\"'<>&",
]
HOSTILE_TAGS = [
    "<img src=x onerror=alert(1)>",
    "javascript:alert(document.cookie)",
    "\u202egnp.exe",
    "nul\0byte",
    "t" * 10_000,
    "../../../etc/passwd",
    "%{y}<br>",
    '+1,"\r\n-2',
]


def test_hostile_names_are_data_everywhere(tmp_path: Path, make_app, caplog) -> None:
    caplog.set_level(logging.INFO, logger="kboard")
    write_good(tmp_path)
    for i, run in enumerate(HOSTILE_RUNS):
        write_events(
            tmp_path / run / EVENTS,
            [scalar_event(tag, s, i + 0.5 * s) for s in range(3) for tag in HOSTILE_TAGS],
        )
    client = make_app(tmp_path).test_client()
    body = assert_serving(client)
    assert sorted(r["name"] for r in body["runs"]) == sorted(HOSTILE_RUNS + ["good_a", "good_b"])
    tags = client.get("/api/tags/scalars").get_json()["tags"]
    for i, run in enumerate(HOSTILE_RUNS):
        assert sorted(tags[run]) == sorted(HOSTILE_TAGS)
        for tag in HOSTILE_TAGS:
            assert series(client, run, tag) == ([0, 1, 2], [i, i + 0.5, i + 1.0])
    # CSV: every name comes back exactly (after the formula guard), with every point.
    rows = list(csv.reader(io.StringIO(client.get("/api/export").get_data(as_text=True))))
    hostile_rows = [r for r in rows[1:] if not r[0].startswith("good_")]
    assert len(hostile_rows) == 3 * len(HOSTILE_RUNS) * len(HOSTILE_TAGS)
    guard = {"=cmd|' /C calc'!A0": "'=cmd|' /C calc'!A0", '+1,"\r\n-2': "'+1,\"\r\n-2"}
    assert {r[0] for r in hostile_rows} == {guard.get(r, r) for r in HOSTILE_RUNS}
    assert {r[1] for r in hostile_rows} == {guard.get(t, t) for t in HOSTILE_TAGS}
    exported = json.loads(client.get("/api/export?format=json").get_data(as_text=True))
    assert {r["tag"] for r in exported if r["run"] in HOSTILE_RUNS} == set(HOSTILE_TAGS)
    # The download name never carries a name from the logs.
    disposition = client.get("/api/export?runs=evil").headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="kboard-') and "<" not in disposition
    assert problem_kinds(client) == [] and logged(caplog) == []


def _text_event(tag: str, text: str, step: int = 0, description: str = "") -> event_pb2.Event:
    value = summary_pb2.Summary.Value(tag=tag, tensor=string_tensor([text.encode()], []))
    value.metadata.plugin_data.plugin_name = "text"
    value.metadata.summary_description = description
    return event_pb2.Event(step=step, wall_time=1.0, summary=summary_pb2.Summary(value=[value]))


def test_ten_megabytes_of_text_in_bounded_time_and_memory(logdir: Path, make_app) -> None:
    unit = "<script>alert(1)</script> [x](javascript:alert(1)) ![i](data:image/png,x) **b**\n"
    big = unit * (10_000_000 // len(unit))
    write_events(logdir / "text" / EVENTS, [_text_event("big", big)])
    tracemalloc.start()
    try:
        client = make_app(logdir).test_client()
        _, read_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        started = time.monotonic()
        preview = client.get("/api/text?run=text&tag=big").get_json()["entries"][0]
        full = client.get("/api/text?run=text&tag=big&step=0&full=1").get_json()["entries"][0]
        seconds = time.monotonic() - started
        _, serve_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert read_peak < 100 << 20 and serve_peak < 100 << 20, (read_peak, serve_peak)
    assert seconds < 10
    assert preview["truncated"] and len(preview["html"]) < 100_000
    assert full["truncated"] and 5 * len(preview["html"]) < len(full["html"]) < 2_000_000
    for entry in (preview, full):
        assert "<script" not in entry["html"] and 'href="javascript' not in entry["html"]
        assert 'src="data:' not in entry["html"]
    assert_serving(client)


@pytest.mark.parametrize("text", ["[" * 20_000, "![" * 10_000, "[a](" * 5_000])
def test_markdown_that_is_slow_to_parse_cannot_hold_the_server(
    logdir: Path, make_app, text: str
) -> None:
    write_events(logdir / "text" / EVENTS, [_text_event("slow", text, description=text)])
    client = make_app(logdir).test_client()
    started = time.monotonic()
    assert client.get("/api/text?run=text&tag=slow").status_code == 200
    assert client.get("/data/plugin/scalars/tags").status_code == 200
    assert time.monotonic() - started < 5  # Python-Markdown took minutes on these
    assert_serving(client)


# -- images -----------------------------------------------------------------------------
def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _decompression_bomb() -> bytes:
    """A PNG that declares 100,000 x 100,000 pixels: 10 GB once decoded, 10 kB as bytes."""
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * (10 << 20), 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


IMAGES = {
    "corrupt_png": (b"\x89PNG\r\n\x1a\n" + b"\xde\xad" * 50, "image/png"),
    "zero_bytes": (b"", "application/octet-stream"),
    "html": (b"<html><script>alert(1)</script></html>", "application/octet-stream"),
    "svg": (
        b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
        "application/octet-stream",
    ),
    "bomb": (_decompression_bomb(), "image/png"),
}


def test_hostile_images_are_served_as_bytes_never_decoded(
    logdir: Path, make_app, monkeypatch
) -> None:
    from PIL import Image, ImageFile

    def refuse(*args, **kwargs):
        raise AssertionError("the server decoded an image")

    events = []
    for tag, (data, _) in IMAGES.items():
        image = summary_pb2.Summary.Image(height=100_000, width=100_000, encoded_image_string=data)
        value = summary_pb2.Summary.Value(tag=tag, image=image)
        events.append(
            event_pb2.Event(step=0, wall_time=1.0, summary=summary_pb2.Summary(value=[value]))
        )
    write_events(logdir / "images" / EVENTS, events)
    for name in ("open", "frombytes", "frombuffer"):
        monkeypatch.setattr(Image, name, refuse)
    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)
    tracemalloc.start()
    try:
        client = make_app(logdir).test_client()
        for tag, (data, mime) in IMAGES.items():
            listing = client.get(f"/api/images?run=images&tag={tag}").get_json()
            assert listing["steps"][0]["width"] == 100_000
            for url in (
                f"/api/image?run=images&tag={tag}&step=0",
                f"/data/plugin/images/individualImage?run=images&tag={tag}&step=0&sample=0",
            ):
                response = client.get(url)
                assert response.status_code == 200
                assert response.data == data and response.mimetype == mime
                assert response.headers["X-Content-Type-Options"] == "nosniff"
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20
    assert_serving(client)


# -- histograms -------------------------------------------------------------------------
def _histograms() -> dict[str, summary_pb2.Summary.Value]:
    legacy = {
        "zero_buckets": dict(min=0, max=0, bucket_limit=[], bucket=[]),
        "one_bucket": dict(min=1, max=2, bucket_limit=[2.0], bucket=[5]),
        "min_above_max": dict(min=5, max=1, bucket_limit=[2.0, 3.0], bucket=[1, 2]),
        "nan_edges": dict(min=NAN, max=NAN, bucket_limit=[NAN, 1.0], bucket=[1, 2]),
        "negative_counts": dict(min=0, max=3, bucket_limit=[1.0, 2.0, 3.0], bucket=[-1, 2, -3]),
        "million_buckets": dict(
            min=0, max=1e6, bucket_limit=np.arange(1, 1e6 + 1).tolist(), bucket=[1.0] * 10**6
        ),
        "ragged": dict(min=0, max=3, bucket_limit=[1.0], bucket=[1, 2, 3]),
    }
    out = {
        f"legacy_{tag}": summary_pb2.Summary.Value(
            tag=f"legacy_{tag}", histo=summary_pb2.HistogramProto(num=1, sum=1, **kw)
        )
        for tag, kw in legacy.items()
    }
    tensors = {
        "zero_buckets": np.zeros((0, 3)),
        "min_above_max": np.array([[2.0, 1.0, 3.0]]),
        "nan_edges": np.array([[NAN, 1.0, 3.0], [1.0, INF, 1.0]]),
        "negative_counts": np.array([[0.0, 1.0, -4.0], [1.0, 2.0, 2.0]]),
        "wrong_shape": np.zeros((4, 2)),
    }
    for tag, buckets in tensors.items():
        value = summary_pb2.Summary.Value(tag=f"tensor_{tag}", tensor=double_tensor(buckets))
        value.metadata.plugin_data.plugin_name = "histograms"
        out[f"tensor_{tag}"] = value
    return out


def test_degenerate_histograms_everywhere(logdir: Path, make_app, caplog) -> None:
    values = _histograms()
    write_events(
        logdir / "hist" / EVENTS,
        [
            event_pb2.Event(step=0, wall_time=1.0, summary=summary_pb2.Summary(value=[v]))
            for v in values.values()
        ],
    )
    client = make_app(logdir).test_client()
    assert_serving(client)
    broken = {"legacy_ragged", "tensor_wrong_shape"}
    problems = client.get("/api/runs").get_json()["problems"]
    assert sorted(p["kind"] for p in problems) == ["decode", "decode"]
    assert all(any(t in p["message"] for t in broken) for p in problems)
    assert len(logged(caplog, "hist")) == 2
    listed = client.get("/api/tags/histograms").get_json()["tags"]["hist"]
    assert set(listed) == set(values) - broken
    for tag in listed:
        for url in (
            f"/api/histograms?run=hist&tag={tag}",
            f"/data/plugin/histograms/histograms?run=hist&tag={tag}",
        ):
            response = client.get(url)
            assert response.status_code == 200, url
            json.loads(response.get_data(as_text=True), parse_constant=pytest.fail)
    body = client.get("/api/histograms?run=hist&tag=legacy_million_buckets").get_json()
    assert body["totals"] == [1e6] and len(body["counts"][0]) == 30
    exported = client.get("/api/export?kind=histograms&runs=^hist$").get_data(as_text=True)
    assert exported.count("\r\n") > 10**6


# -- the server -------------------------------------------------------------------------
def test_security_rules_on_every_kind_of_response(logdir: Path, make_app, monkeypatch) -> None:
    app = make_app(logdir)
    assert not app.debug and not app.testing and not app.config["PROPAGATE_EXCEPTIONS"]
    client = app.test_client()
    cases = {
        "/": 200,
        "/api/runs": 200,
        "/api/export": 200,
        "/static/js/app.js": 200,
        "/api/scalars": 400,
        "/api/scalars?tag=nope": 404,
        "/nowhere/../../etc/passwd": 404,
        "/static/../app.py": 404,
    }
    for path, status in cases.items():
        response = client.get(path)
        response.close()
        assert response.status_code == status, path
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
        csp = response.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp, path
        assert "unsafe-eval" not in csp and "unsafe-inline" not in csp.split("style-src")[0]
    assert client.post("/api/runs").status_code == 405
    assert client.get("/api/runs", headers={"Host": "evil.example"}).status_code == 403
    # An unexpected error: JSON, no stack trace, and the headers all the same.
    store = app.extensions["kboard"].store
    monkeypatch.setattr(store, "runs", lambda: 1 / 0)
    response = client.get("/api/runs")
    assert response.status_code == 500 and response.get_json() == {
        "error": "internal error (see the server log)"
    }
    assert "Traceback" not in response.get_data(as_text=True)
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_default_bind_is_loopback() -> None:
    from kboard.cli import serve

    assert next(p for p in serve.params if p.name == "host").default == "127.0.0.1"


def test_nothing_is_opened_from_a_path_in_the_request(logdir: Path, make_app) -> None:
    """Hostile requests, with an audit hook watching every file the server opens."""
    marker = "kbzq"
    client = make_app(logdir).test_client()
    opened: list[str] = []
    watching = [True]

    def hook(event: str, args: tuple) -> None:
        if watching[0] and event == "open" and args and isinstance(args[0], str | bytes):
            opened.append(os.fsdecode(args[0]))

    sys.addaudithook(hook)  # stays for the process; the flag turns it off
    try:
        for query in (
            f"/api/image?run=../../{marker}&tag=../{marker}&step=0",
            f"/api/scalars?tag=/etc/{marker}&run=../{marker}",
            f"/api/text?run=good_a/../../{marker}&tag={marker}",
            f"/data/plugin/images/individualImage?run=/{marker}&tag=x&step=0",
            f"/api/export?runs=../{marker}",
            f"/static/{marker}.js",
            f"/static/..%2f..%2f{marker}",
            f"/vendor/plotly-../../{marker}.min.js",
        ):
            assert client.get(query).status_code in (200, 400, 404), query
    finally:
        watching[0] = False
    assert [path for path in opened if marker in path] == []
