"""The reader against TensorBoard's own reading of the same files, and its incremental rules."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend.event_processing import plugin_event_accumulator as pea
from tensorboard.compat.proto import event_pb2
from tensorboard.util import tensor_util

from kboard.ingest import LogdirReader, parse_logdir_spec
from kboard.store import Store
from kboard.tfevents.events import ImageSamples, Kind
from kboard.tfevents.records import encode_record

from .conftest import STEPS, scalar_event, write_events

PLUGIN_KIND = {
    "scalars": Kind.SCALARS,
    "histograms": Kind.HISTOGRAMS,
    "images": Kind.IMAGES,
    "text": Kind.TEXT,
}


def tensorboard_reading(run_dir: Path) -> dict[str, tuple[str, list]]:
    """Return ``{tag: (plugin, [TensorEvent, ...])}`` as TensorBoard reads a run directory."""
    acc = pea.EventAccumulator(str(run_dir), size_guidance={pea.TENSORS: 0})
    acc.Reload()
    return {
        tag: (acc.SummaryMetadata(tag).plugin_data.plugin_name, acc.Tensors(tag))
        for tag in acc.Tags()[pea.TENSORS]
    }


def assert_same_as_tensorboard(logdir: Path, run: str, store: Store) -> int:
    """Compare every series of ``run`` with TensorBoard's reading; return how many."""
    compared = 0
    for tag, (plugin, events) in tensorboard_reading(logdir / run).items():
        kind = PLUGIN_KIND.get(plugin)
        if kind is None:
            assert tag in store.tags(Kind.OTHER)[run], f"{plugin} tag {tag} not listed"
            continue
        if kind is Kind.SCALARS:
            cols = store.scalars(run, tag)
            assert cols.steps.tolist() == [e.step for e in events]
            assert cols.wall_times.tolist() == [e.wall_time for e in events]
            expected = [float(tensor_util.make_ndarray(e.tensor_proto)) for e in events]
            assert cols.values.tolist() == expected
        else:
            samples = store.samples(run, kind, tag)
            assert [s.step for s in samples] == [e.step for e in events]
            assert [s.wall_time for s in samples] == [e.wall_time for e in events]
            for sample, event in zip(samples, events):
                theirs = tensor_util.make_ndarray(event.tensor_proto)
                if kind is Kind.HISTOGRAMS:
                    np.testing.assert_array_equal(sample.value, theirs.astype(np.float64))
                elif kind is Kind.IMAGES:
                    assert isinstance(sample.value, ImageSamples)
                    flat = list(theirs.reshape(-1))
                    assert (
                        str(sample.value.width).encode(),
                        str(sample.value.height).encode(),
                    ) == (flat[0], flat[1])
                    assert list(sample.value.samples) == flat[2:]
                else:
                    decoded = np.vectorize(lambda b: b.decode("utf-8"), otypes=[object])(theirs)
                    assert sample.value.tolist() == decoded.tolist()
        compared += 1
    return compared


def read(logdir: Path | str | dict[str, str]) -> LogdirReader:
    reader = LogdirReader(logdir if isinstance(logdir, dict) else str(logdir))
    reader.reload()
    return reader


def test_tf_summary_logs_equal_tensorboard_reading(tf_logdir: Path) -> None:
    reader = read(tf_logdir)
    assert reader.store.runs() == ["eval", "train"]
    for run in ("train", "eval"):
        assert assert_same_as_tensorboard(tf_logdir, run, reader.store) == 5
        assert len(reader.store.scalars(run, "loss")) == STEPS
    assert reader.store.problems() == []


def test_tf_image_samples_per_step(tf_logdir: Path) -> None:
    samples = read(tf_logdir).store.samples("train", Kind.IMAGES, "samples")
    assert all(len(s.value.samples) == 2 for s in samples)
    assert (samples[0].value.width, samples[0].value.height) == (6, 8)
    assert samples[0].value.samples[0].startswith(b"\x89PNG")


def test_unknown_plugins_are_listed_not_dropped(tf_logdir: Path) -> None:
    other = read(tf_logdir).store.tags(Kind.OTHER)
    assert other["train"]["sound"].plugin_name == "audio"


def test_legacy_protos_equal_tensorboard_reading(legacy_logdir: Path) -> None:
    """simple_value, Summary.Image and HistogramProto as TensorBoard's data_compat migrates them."""
    reader = read(legacy_logdir)
    assert assert_same_as_tensorboard(legacy_logdir, "torch_style", reader.store) == 4
    hist = reader.store.samples("torch_style", Kind.HISTOGRAMS, "hist")[0].value
    assert hist.shape[1] == 3 and hist[:, 2].sum() == 300
    assert hist[0, 2] > 0 and hist[-1, 2] > 0  # empty end buckets dropped


def test_run_names_follow_tensorboard(tmp_path: Path) -> None:
    write_events(tmp_path / "events.out.tfevents.1.root", [scalar_event("a", 0, 1.0)])
    write_events(tmp_path / "x" / "y" / "events.out.tfevents.1.h", [scalar_event("a", 0, 1.0)])
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("not events")
    assert read(tmp_path).store.runs() == [".", "x/y"]


def test_several_logdirs_with_names(tmp_path: Path) -> None:
    write_events(tmp_path / "a" / "events.out.tfevents.1", [scalar_event("t", 0, 1.0)])
    write_events(tmp_path / "b" / "r1" / "events.out.tfevents.1", [scalar_event("t", 0, 2.0)])
    spec = f"first:{tmp_path / 'a'},second:{tmp_path / 'b'}"
    assert read(parse_logdir_spec(spec)).store.runs() == ["first", "second/r1"]
    assert parse_logdir_spec(str(tmp_path)) == {"": str(tmp_path)}
    assert parse_logdir_spec("s3://bucket/x,local:/data/2024-01-01T10:00") == {
        "": "s3://bucket/x",
        "local": "/data/2024-01-01T10:00",
    }
    with pytest.raises(ValueError, match="name1:path1"):
        parse_logdir_spec("a:/x,/y,/z")


def test_metadata_only_on_first_event_is_remembered(tmp_path: Path) -> None:
    events = [scalar_event("loss", s, float(s), with_metadata=(s == 0)) for s in range(4)]
    write_events(tmp_path / "run" / "events.out.tfevents.1", events)
    reader = read(tmp_path)
    assert reader.store.scalars("run", "loss").values.tolist() == [0.0, 1.0, 2.0, 3.0]
    # Also across reloads: the metadata was in a record read by an earlier reload.
    write_events(
        tmp_path / "run" / "events.out.tfevents.1",
        [scalar_event("loss", 4, 4.0, with_metadata=False)],
        append=True,
    )
    reader.reload()
    assert reader.store.scalars("run", "loss").steps.tolist() == [0, 1, 2, 3, 4]


def test_incremental_reload_reads_only_new_bytes(tmp_path: Path) -> None:
    path = tmp_path / "run" / "events.out.tfevents.1"
    write_events(path, [scalar_event("loss", s, s * 0.5) for s in range(10)])
    reader = read(tmp_path)
    size = path.stat().st_size
    assert reader.reload().bytes_read == 0
    write_events(path, [scalar_event("loss", s, s * 0.5) for s in range(10, 15)], append=True)
    report = reader.reload()
    assert report.bytes_read == path.stat().st_size - size
    assert report.records == 5
    assert reader.store.scalars("run", "loss").steps.tolist() == list(range(15))


def test_partial_record_is_read_once_when_complete(tmp_path: Path) -> None:
    path = tmp_path / "run" / "events.out.tfevents.1"
    write_events(path, [scalar_event("loss", 0, 0.0)])
    tail = encode_record(scalar_event("loss", 1, 1.0).SerializeToString())
    reader = LogdirReader(str(tmp_path))
    for cut in range(len(tail)):  # the record arrives one byte at a time
        with open(path, "ab") as out:
            out.write(tail[cut : cut + 1])
        reader.reload()
        expected = [0, 1] if cut == len(tail) - 1 else [0]
        assert reader.store.scalars("run", "loss").steps.tolist() == expected
    assert reader.store.problems() == []
    reader.reload()
    assert reader.store.scalars("run", "loss").steps.tolist() == [0, 1]


def test_new_files_and_runs_are_picked_up(tmp_path: Path) -> None:
    write_events(tmp_path / "a" / "events.out.tfevents.1", [scalar_event("t", 0, 1.0)])
    reader = read(tmp_path)
    write_events(tmp_path / "a" / "events.out.tfevents.2", [scalar_event("u", 0, 1.0)])
    write_events(tmp_path / "b" / "events.out.tfevents.1", [scalar_event("t", 0, 1.0)])
    report = reader.reload()
    assert report.runs_added == ["b"]
    assert set(reader.store.tags(Kind.SCALARS)["a"]) == {"t", "u"}


def test_deleted_run_disappears(tmp_path: Path) -> None:
    for run in ("a", "b"):
        write_events(tmp_path / run / "events.out.tfevents.1", [scalar_event("t", 0, 1.0)])
    reader = read(tmp_path)
    shutil.rmtree(tmp_path / "a")
    assert reader.reload().runs_removed == ["a"]
    assert reader.store.runs() == ["b"]
    with pytest.raises(KeyError):
        reader.store.scalars("a", "t")


def test_run_deleted_while_being_read(tmp_path: Path) -> None:
    events = [scalar_event(f"tag{i % 20}", i // 20, 1.0) for i in range(20_000)]
    write_events(tmp_path / "keep" / "events.out.tfevents.1", events[:100])
    errors: list[BaseException] = []
    for attempt in range(5):
        run_dir = tmp_path / f"doomed{attempt}"
        write_events(run_dir / "events.out.tfevents.1", events)
        reader = LogdirReader(str(tmp_path))

        def reload() -> None:
            try:
                reader.reload()
            except BaseException as exc:  # noqa: BLE001 - the test reports any escape
                errors.append(exc)

        thread = threading.Thread(target=reload)
        thread.start()
        shutil.rmtree(run_dir)
        thread.join()
        reader.reload()
        assert f"doomed{attempt}" not in reader.store.runs()
        assert len(reader.store.scalars("keep", "tag0")) == 5
    assert errors == []


def test_replaced_or_shrunk_file_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "run" / "events.out.tfevents.1"
    write_events(path, [scalar_event("loss", s, 1.0) for s in range(10)])
    reader = read(tmp_path)
    write_events(path, [scalar_event("loss", s, 2.0) for s in range(3)])  # truncated, rewritten
    assert reader.reload().runs_reread == ["run"]
    cols = reader.store.scalars("run", "loss")
    assert cols.steps.tolist() == [0, 1, 2] and cols.values.tolist() == [2.0] * 3
    replacement = tmp_path / "new"
    write_events(replacement, [scalar_event("loss", s, 3.0) for s in range(5)])
    replacement.replace(path)  # same name and larger size, but another file
    assert reader.reload().runs_reread == ["run"]
    assert reader.store.scalars("run", "loss").values.tolist() == [3.0] * 5


def test_rewind_of_steps_replaces_newer_points(tmp_path: Path) -> None:
    path = tmp_path / "run" / "events.out.tfevents.1"
    events = [scalar_event("loss", s, 1.0) for s in range(10)]
    events += [scalar_event("loss", s, 2.0) for s in range(5, 8)]  # restarted from step 5
    write_events(path, events)
    reader = read(tmp_path)
    cols = reader.store.scalars("run", "loss")
    assert cols.steps.tolist() == [0, 1, 2, 3, 4, 5, 6, 7]
    assert cols.values.tolist() == [1.0] * 5 + [2.0] * 3
    # Across reloads too, and a snapshot handed out before keeps its values.
    write_events(path, [scalar_event("loss", s, 3.0) for s in (2, 3)], append=True)
    reader.reload()
    assert reader.store.scalars("run", "loss").values.tolist() == [1.0, 1.0, 3.0, 3.0]
    assert cols.values.tolist() == [1.0] * 5 + [2.0] * 3


def test_session_log_start_purges_every_tag(tmp_path: Path) -> None:
    path = tmp_path / "run" / "events.out.tfevents.1"
    events = [scalar_event(t, s, 1.0) for s in range(10) for t in ("a", "b")]
    events.append(
        event_pb2.Event(step=4, session_log=event_pb2.SessionLog(status=event_pb2.SessionLog.START))
    )
    events.append(scalar_event("a", 6, 9.0))
    write_events(path, events)
    store = read(tmp_path).store
    assert store.scalars("run", "a").steps.tolist() == [0, 1, 2, 3, 6]
    assert store.scalars("run", "b").steps.tolist() == [0, 1, 2, 3]


def test_corrupt_files_are_reported_and_hide_nothing_else(tmp_path: Path) -> None:
    good = [scalar_event("loss", s, float(s)) for s in range(5)]
    write_events(tmp_path / "good" / "events.out.tfevents.1", good)
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "events.out.tfevents.notes").write_text("just text\n" * 10)
    flipped = tmp_path / "flipped" / "events.out.tfevents.1"
    write_events(flipped, good)
    data = bytearray(flipped.read_bytes())
    data[-5] ^= 0xFF  # inside the payload of the last record
    flipped.write_bytes(bytes(data))
    empty = tmp_path / "empty" / "events.out.tfevents.1"
    empty.parent.mkdir()
    empty.write_bytes(b"")
    not_event = tmp_path / "notevent" / "events.out.tfevents.1"
    not_event.parent.mkdir()
    not_event.write_bytes(encode_record(b"\xff\xff\xff garbage, not a protobuf"))
    reader = LogdirReader(str(tmp_path))
    report = reader.reload()
    store = reader.store
    assert store.scalars("good", "loss").values.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert store.scalars("flipped", "loss").steps.tolist() == [0, 1, 2, 3]
    kinds = {(p.run, p.kind) for p in store.problems()}
    assert kinds == {("text", "length_crc"), ("flipped", "data_crc"), ("notevent", "decode")}
    assert len(report.problems) == 3
    assert reader.reload().problems == []  # reported once, not on every reload


def test_snapshots_are_consistent_during_reloads(tmp_path: Path) -> None:
    path = tmp_path / "run" / "events.out.tfevents.1"
    write_events(path, [scalar_event("loss", 0, 0.0)])
    reader = read(tmp_path)
    stop = threading.Event()
    bad: list[str] = []

    def check() -> None:
        while not stop.is_set():
            cols = reader.store.scalars("run", "loss")
            steps = cols.steps
            if len(steps) != len(cols.values) or not np.all(np.diff(steps) > 0):
                bad.append(f"inconsistent snapshot of {len(steps)} points")
            if not np.array_equal(cols.values, steps.astype(float)):
                bad.append("values do not match their steps")

    checker = threading.Thread(target=check)
    checker.start()
    for batch in range(1, 60):
        write_events(
            path,
            [scalar_event("loss", s, float(s)) for s in range(batch * 50 - 49, batch * 50 + 1)],
            append=True,
        )
        reader.reload()
    stop.set()
    checker.join()
    assert bad == []
    assert len(reader.store.scalars("run", "loss")) == 59 * 50 + 1


def test_sampling_limit_keeps_newest(tmp_path: Path) -> None:
    tbx = pytest.importorskip("tensorboardX")
    with tbx.SummaryWriter(str(tmp_path / "run")) as writer:
        for step in range(50):
            writer.add_text("note", f"n{step}", step)
            writer.add_scalar("s", step, step)
    reader = LogdirReader(str(tmp_path), Store(limits={Kind.TEXT: 10}))
    reader.reload()
    samples = reader.store.samples("run", Kind.TEXT, "note/text_summary")
    assert len(samples) == 10 and samples[-1].step == 49
    assert [s.step for s in samples] == sorted(s.step for s in samples)
    assert reader.store.sample_counts("run", Kind.TEXT, "note/text_summary") == (10, 50)
    assert len(reader.store.scalars("run", "s")) == 50  # scalars are never sampled
