"""The TensorFlow-free writers, checked by reading their files back with TensorBoard itself."""

from __future__ import annotations

import io
import math
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tensorboard.backend.event_processing import plugin_event_accumulator
from tensorboard.compat.proto import event_pb2, summary_pb2, types_pb2
from tensorboard.util import tensor_util

import kboard.summary
from kboard.tfevents import protos
from kboard.tfevents.records import iter_records
from kboard.writer import EventFileWriter, SummaryWriter

FAR = 3600.0  # a flush interval the tests never reach


def load(logdir: Path) -> plugin_event_accumulator.EventAccumulator:
    """Read a run directory with TensorBoard's own accumulator."""
    acc = plugin_event_accumulator.EventAccumulator(
        str(logdir), size_guidance={plugin_event_accumulator.TENSORS: 0}
    )
    acc.Reload()
    return acc


def arrays(acc: plugin_event_accumulator.EventAccumulator, tag: str) -> list[np.ndarray]:
    """Return the tensors of ``tag`` as numpy arrays."""
    return [tensor_util.make_ndarray(t.tensor_proto) for t in acc.Tensors(tag)]


def event_files(logdir: Path) -> list[Path]:
    """Return the event files of a directory, sorted by name."""
    return sorted(logdir.glob("events.out.tfevents.*"))


def read_events(path: Path) -> list[event_pb2.Event]:
    """Parse every record of an event file."""
    with open(path, "rb") as stream:
        return [event_pb2.Event.FromString(record) for record in iter_records(stream)]


def decode_png(data: bytes) -> np.ndarray:
    """Decode PNG bytes to a pixel array."""
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img)


def wait_for(condition, timeout: float = 5.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def flush_threads() -> list[threading.Thread]:
    """Return the live background flush threads."""
    return [t for t in threading.enumerate() if t.name.startswith("kboard-flush:")]


class Arrayish:
    """Something with ``__array__`` only, like a JAX array."""

    def __init__(self, data: np.ndarray) -> None:
        self._data = data

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return self._data if dtype is None else self._data.astype(dtype)


class Tensorish:
    """Something with ``.numpy()``, like a TensorFlow eager tensor."""

    def __init__(self, data: np.ndarray) -> None:
        self._data = data

    def numpy(self) -> np.ndarray:
        return self._data


# --- file layout -------------------------------------------------------------------------


def test_first_record_is_file_version(tmp_path: Path) -> None:
    before = time.time()
    with SummaryWriter(tmp_path) as writer:
        writer.add_scalar("loss", 1.0, 3)
    (path,) = event_files(tmp_path)
    events = read_events(path)
    assert events[0].file_version == "brain.Event:2"
    assert events[0].step == 0
    assert before <= events[0].wall_time <= time.time()
    assert not events[0].HasField("summary")
    assert [e.step for e in events[1:]] == [3]


def test_file_name(tmp_path: Path) -> None:
    before = int(time.time())
    with SummaryWriter(tmp_path, filename_suffix=".profile") as writer:
        path = Path(writer.file_writer.path)
    assert event_files(tmp_path) == [path]
    pattern = r"events\.out\.tfevents\.(\d+)\.(.+)\.(\d+)\.(\d+)\.profile"
    match = re.fullmatch(pattern, path.name)
    assert match, path.name
    assert before <= int(match[1]) <= time.time()
    assert match[2] == socket.gethostname()
    assert int(match[3]) == os.getpid()


def test_writers_in_one_directory_get_distinct_files(tmp_path: Path) -> None:
    writers = [EventFileWriter(tmp_path, flush_secs=FAR) for _ in range(3)]
    for writer in writers:
        writer.close()
    assert len({w.path for w in writers}) == 3
    assert len(event_files(tmp_path)) == 3


def test_creates_nested_log_dir(tmp_path: Path) -> None:
    logdir = tmp_path / "a" / "b"
    with SummaryWriter(logdir) as writer:
        assert writer.get_logdir() == str(logdir)
    assert len(event_files(logdir)) == 1


def test_default_log_dir_is_like_torch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with SummaryWriter(comment="_lr0.1") as writer:
        logdir = writer.get_logdir()
    parent, name = os.path.split(logdir)
    assert parent == "runs"
    assert re.fullmatch(
        r"[A-Z][a-z]{2}\d\d_\d\d-\d\d-\d\d_" + re.escape(socket.gethostname()), name[:-6]
    )
    assert name.endswith("_lr0.1")
    assert len(event_files(tmp_path / logdir)) == 1


# --- SummaryWriter round trips ---------------------------------------------------------


def test_scalars_round_trip_as_tf_summary_writes_them(tmp_path: Path) -> None:
    values = [1 / 3, 0.1 + 0.2, 1e-300, 2**53 + 1.0, -7, np.float32(0.25), np.array(5.5), True]
    with SummaryWriter(tmp_path) as writer:
        for step, value in enumerate(values):
            writer.add_scalar("loss", value, global_step=step * 10, walltime=1000.0 + step / 7)
        writer.add_scalar("nan", float("nan"), 0, walltime=5.0)
        writer.add_scalar("tensor-like", Tensorish(np.array([2.5])), np.int64(4), 6.0)
        writer.add_scalar("no-step", 9.0)
    acc = load(tmp_path)
    assert set(acc.Tags()["tensors"]) == {"loss", "nan", "tensor-like", "no-step"}
    events = acc.Tensors("loss")
    assert [e.step for e in events] == [step * 10 for step in range(len(values))]
    assert [e.wall_time for e in events] == [1000.0 + step / 7 for step in range(len(values))]
    read = [float(a) for a in arrays(acc, "loss")]
    assert read == [float(np.float32(np.asarray(v))) for v in values]  # as tf.summary writes
    assert all(a.dtype == np.float32 and a.shape == () for a in arrays(acc, "loss"))
    assert math.isnan(float(arrays(acc, "nan")[0]))
    assert [(e.step, e.wall_time) for e in acc.Tensors("tensor-like")] == [(4, 6.0)]
    assert [e.step for e in acc.Tensors("no-step")] == [0]
    metadata = acc.SummaryMetadata("loss")
    assert metadata.plugin_data.plugin_name == "scalars"


@pytest.mark.parametrize(
    ("dataformats", "layout"), [("HWC", "HWC"), ("CHW", "CHW"), ("HW", "HW"), ("hwc", "HWC")]
)
def test_add_image_uint8_round_trips(tmp_path: Path, dataformats: str, layout: str) -> None:
    rng = np.random.default_rng(0)
    hwc = rng.integers(0, 256, size=(5, 7, 1 if layout == "HW" else 3), dtype=np.uint8)
    given = {"HWC": hwc, "CHW": hwc.transpose(2, 0, 1), "HW": hwc[:, :, 0]}[layout]
    with SummaryWriter(tmp_path) as writer:
        writer.add_image("img", given, global_step=2, walltime=3.5, dataformats=dataformats)
    acc = load(tmp_path)
    (event,) = acc.Tensors("img")
    assert (event.step, event.wall_time) == (2, 3.5)
    (tensor,) = arrays(acc, "img")
    assert tensor.shape == (3,)
    assert tensor[0] == b"7" and tensor[1] == b"5"  # width, height
    expected = np.repeat(hwc[:, :, :1], 3, axis=2) if layout == "HW" else hwc  # grey -> RGB
    np.testing.assert_array_equal(decode_png(tensor[2]), expected)
    assert acc.SummaryMetadata("img").plugin_data.plugin_name == "images"


def test_add_image_floats_are_scaled_clipped_and_truncated_like_torch(tmp_path: Path) -> None:
    pixels = np.array(
        [[[0.0, 0.5, 1.0, 1.0], [1.5, -0.2, np.nan, 0.25]]], dtype=np.float32
    )  # 1x2 RGBA
    with SummaryWriter(tmp_path) as writer:
        writer.add_image("rgba", pixels, 0, dataformats="HWC")
        writer.add_image("grey", Arrayish(np.array([[[0.2], [0.8]]])), 0, dataformats="HWC")
    acc = load(tmp_path)
    rgba = decode_png(arrays(acc, "rgba")[0][2])
    np.testing.assert_array_equal(rgba, [[[0, 127, 255, 255], [255, 0, 0, 63]]])  # NaN -> 0
    grey = decode_png(arrays(acc, "grey")[0][2])
    np.testing.assert_array_equal(grey, [[[51, 51, 51], [204, 204, 204]]])  # 1x2, as RGB


def test_add_images_writes_several_samples_in_one_step(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    nhwc = rng.integers(0, 256, size=(4, 3, 6, 4), dtype=np.uint8)
    with SummaryWriter(tmp_path) as writer:
        writer.add_images("batch", nhwc.transpose(0, 3, 1, 2), 5, dataformats="NCHW")
        writer.add_images("batch", nhwc[:2], 6, dataformats="NHWC")
        writer.add_images("grey", nhwc[:, :, :, 0], 5, dataformats="NHW")
    acc = load(tmp_path)
    first, second = arrays(acc, "batch")
    assert first.shape == (6,) and second.shape == (4,)
    assert list(first[:2]) == [b"6", b"3"]
    for i, png in enumerate(first[2:]):
        np.testing.assert_array_equal(decode_png(png), nhwc[i])
    np.testing.assert_array_equal(decode_png(second[3]), nhwc[1])
    grey = decode_png(arrays(acc, "grey")[0][5])
    np.testing.assert_array_equal(grey, np.repeat(nhwc[3, :, :, :1], 3, axis=2))
    assert [e.step for e in acc.Tensors("batch")] == [5, 6]


def test_add_image_defaults_to_chw_like_torch(tmp_path: Path) -> None:
    chw = np.zeros((3, 32, 24))
    chw[0] = 1.0  # red
    with SummaryWriter(tmp_path) as writer:
        writer.add_image("x", chw, 0)
        writer.add_images("batch", np.stack([chw, chw[::-1]]), 0)
    acc = load(tmp_path)
    (single,) = arrays(acc, "x")
    assert list(single[:2]) == [b"24", b"32"]  # width, height
    red = np.zeros((32, 24, 3), dtype=np.uint8)
    red[:, :, 0] = 255
    np.testing.assert_array_equal(decode_png(single[2]), red)
    (batch,) = arrays(acc, "batch")
    assert list(batch[:2]) == [b"24", b"32"] and len(batch) == 4
    np.testing.assert_array_equal(decode_png(batch[2]), red)
    np.testing.assert_array_equal(decode_png(batch[3]), red[:, :, ::-1])  # blue


class DeviceTensor:
    """A tensor on another device that requires grad: ``.numpy()`` works after detach, cpu."""

    def __init__(self, data: np.ndarray, detached: bool = False, on_cpu: bool = False) -> None:
        self._data, self._detached, self._on_cpu = data, detached, on_cpu

    def detach(self) -> DeviceTensor:
        return DeviceTensor(self._data, True, self._on_cpu)

    def cpu(self) -> DeviceTensor:
        return DeviceTensor(self._data, self._detached, True)

    def numpy(self) -> np.ndarray:
        if not (self._detached and self._on_cpu):
            raise RuntimeError("call .detach().cpu() first")
        return self._data


def test_add_image_takes_tensors_that_need_detach_and_cpu(tmp_path: Path) -> None:
    chw = np.random.default_rng(4).integers(0, 256, size=(3, 2, 5), dtype=np.uint8)
    with SummaryWriter(tmp_path) as writer:
        writer.add_image("img", DeviceTensor(chw), 0)
    (tensor,) = arrays(load(tmp_path), "img")
    np.testing.assert_array_equal(decode_png(tensor[2]), chw.transpose(1, 2, 0))


# --- the same pixels as torch.utils.tensorboard ------------------------------------------


def _float_with_extremes(shape: tuple[int, ...]) -> np.ndarray:
    """Floats mostly in [0, 1], with a few out of range and infinities (clipped)."""
    data = np.random.default_rng(5).uniform(-0.3, 1.3, size=shape).astype(np.float32)
    data.flat[:3] = [np.inf, -np.inf, 1 / 3]
    return data


# (id, method, input builder (gets the torch module), extra keyword arguments)
TORCH_CASES = [
    ("chw-float64", "add_image", lambda t: np.random.default_rng(6).random((3, 5, 7)), {}),
    ("chw-float32-clipped", "add_image", lambda t: _float_with_extremes((3, 5, 7)), {}),
    ("chw-1-channel", "add_image", lambda t: np.random.default_rng(7).random((1, 5, 7)), {}),
    ("chw-4-channel", "add_image", lambda t: np.random.default_rng(8).random((4, 5, 7)), {}),
    (
        "hwc-uint8",
        "add_image",
        lambda t: np.random.default_rng(9).integers(0, 256, (5, 7, 3), dtype=np.uint8),
        {"dataformats": "HWC"},
    ),
    (
        "hwc-4-channel-uint8",
        "add_image",
        lambda t: np.random.default_rng(10).integers(0, 256, (5, 7, 4), dtype=np.uint8),
        {"dataformats": "HWC"},
    ),
    (
        "hwc-1-channel",
        "add_image",
        lambda t: np.random.default_rng(11).random((5, 7, 1)),
        {"dataformats": "HWC"},
    ),
    ("hw", "add_image", lambda t: np.random.default_rng(12).random((5, 7)), {"dataformats": "HW"}),
    ("wh", "add_image", lambda t: np.random.default_rng(13).random((7, 5)), {"dataformats": "WH"}),
    (
        "cwh-lower-case",
        "add_image",
        lambda t: np.random.default_rng(14).random((3, 7, 5)),
        {"dataformats": "cwh"},
    ),
    (
        "int64-scaled-like-floats",
        "add_image",
        lambda t: np.random.default_rng(15).integers(0, 3, (3, 5, 7)),
        {},
    ),
    ("bool", "add_image", lambda t: np.random.default_rng(16).random((3, 5, 7)) > 0.5, {}),
    ("torch-float-requires-grad", "add_image", lambda t: t.rand(3, 5, 7, requires_grad=True), {}),
    ("torch-float16", "add_image", lambda t: t.rand(1, 5, 7, dtype=t.float16), {}),
    (
        "torch-uint8-hwc",
        "add_image",
        lambda t: t.randint(0, 256, (5, 7, 4), dtype=t.uint8),
        {"dataformats": "HWC"},
    ),
    ("nchw", "add_images", lambda t: np.random.default_rng(17).random((1, 3, 5, 7)), {}),
    ("nchw-1-channel", "add_images", lambda t: _float_with_extremes((1, 1, 5, 7)), {}),
    (
        "nhwc-uint8",
        "add_images",
        lambda t: np.random.default_rng(18).integers(0, 256, (1, 5, 7, 3), dtype=np.uint8),
        {"dataformats": "NHWC"},
    ),
    ("torch-nchw", "add_images", lambda t: t.rand(1, 3, 5, 7, requires_grad=True), {}),
]


@pytest.fixture(scope="module")
def torch():
    """The torch module (CI installs it; skip locally without it)."""
    return pytest.importorskip("torch")


def written_images(logdir: Path) -> list[event_pb2.Event]:
    """Return the events of the only event file in ``logdir`` that carry a summary."""
    (path,) = event_files(logdir)
    return [e for e in read_events(path) if e.HasField("summary")]


def write_with_both(
    torch, tmp_path: Path, method: str, img_tensor, **kwargs
) -> tuple[summary_pb2.Summary.Image, np.ndarray]:
    """Write ``img_tensor`` with torch's writer and kboard's; return torch's image, ours."""
    from torch.utils.tensorboard import SummaryWriter as TorchWriter

    with TorchWriter(str(tmp_path / "torch")) as writer:
        getattr(writer, method)("img", img_tensor, 3, **kwargs)
    with SummaryWriter(tmp_path / "kboard") as writer:
        getattr(writer, method)("img", img_tensor, 3, **kwargs)
    (theirs,) = written_images(tmp_path / "torch")
    (ours,) = written_images(tmp_path / "kboard")
    assert theirs.step == ours.step == 3
    return theirs.summary.value[0].image, tensor_util.make_ndarray(ours.summary.value[0].tensor)


@pytest.mark.parametrize(
    ("method", "make", "kwargs"),
    [case[1:] for case in TORCH_CASES],
    ids=[case[0] for case in TORCH_CASES],
)
def test_images_have_the_pixels_torch_writes(
    torch, tmp_path: Path, method: str, make, kwargs: dict
) -> None:
    theirs, ours = write_with_both(torch, tmp_path, method, make(torch), **kwargs)
    assert ours.shape == (3,)  # width, height, one PNG
    expected = decode_png(theirs.encoded_image_string)
    pixels = decode_png(ours[2])
    assert pixels.dtype == expected.dtype == np.uint8
    np.testing.assert_array_equal(pixels, expected)
    assert (int(ours[0]), int(ours[1])) == (theirs.width, theirs.height)
    assert pixels.shape == (theirs.height, theirs.width, theirs.colorspace)


def test_a_batch_is_torch_grid_cut_into_samples(torch, tmp_path: Path) -> None:
    batch = torch.rand(10, 1, 5, 7)  # torch: one grid, 8 columns, 2 rows, grey as RGB
    theirs, ours = write_with_both(torch, tmp_path, "add_images", batch)
    grid = decode_png(theirs.encoded_image_string)
    assert grid.shape == (2 * 5, 8 * 7, 3) and theirs.colorspace == 3
    assert list(ours[:2]) == [b"7", b"5"] and len(ours) == 2 + 10
    for i, png in enumerate(ours[2:]):
        row, column = divmod(i, 8)
        tile = grid[row * 5 : (row + 1) * 5, column * 7 : (column + 1) * 7]
        np.testing.assert_array_equal(decode_png(png), tile)


def test_add_histogram_default_buckets(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    data = rng.normal(size=1000)
    with_bad = np.concatenate([data, [np.nan, np.inf, -np.inf]])
    with SummaryWriter(tmp_path) as writer:
        writer.add_histogram("weights", with_bad.reshape(-1, 1), global_step=1, walltime=2.0)
    acc = load(tmp_path)
    assert acc.SummaryMetadata("weights").plugin_data.plugin_name == "histograms"
    (event,) = acc.Tensors("weights")
    assert (event.step, event.wall_time) == (1, 2.0)
    (buckets,) = arrays(acc, "weights")
    assert buckets.shape == (30, 3) and buckets.dtype == np.float64
    assert buckets[:, 2].sum() == data.size
    assert buckets[0, 0] == data.min() and buckets[-1, 1] == data.max()
    np.testing.assert_array_equal(buckets[1:, 0], buckets[:-1, 1])  # contiguous
    counts, edges = np.histogram(data, bins=30)
    np.testing.assert_array_equal(buckets[:, 2], counts)
    np.testing.assert_allclose(buckets[:, 0], edges[:-1])


def test_add_histogram_bins_specs_and_edge_cases(tmp_path: Path) -> None:
    data = np.arange(100, dtype=np.float32)
    with SummaryWriter(tmp_path) as writer:
        writer.add_histogram("auto", data, 0, bins="auto")
        writer.add_histogram("edges", data, 0, bins=[0, 10, 50, 99])
        writer.add_histogram("five", Tensorish(data), 0, bins=5)
        writer.add_histogram("empty", [], 0)
        writer.add_histogram("all-nan", [np.nan, np.inf], 0)
        writer.add_histogram("constant", np.full(7, 3.0), 0, bins=4)
        writer.add_histogram("torch-default", data, 0, bins="tensorflow")
        writer.add_histogram("huge-range", [-1e308, 0.0, 1e308], 0, bins=2)
    acc = load(tmp_path)
    counts, edges = np.histogram(data, bins="auto")
    (auto,) = arrays(acc, "auto")
    np.testing.assert_array_equal(auto[:, 2], counts)
    np.testing.assert_array_equal(auto[:, 0], edges[:-1])
    (explicit,) = arrays(acc, "edges")
    np.testing.assert_array_equal(explicit, [[0, 10, 10], [10, 50, 40], [50, 99, 50]])
    (five,) = arrays(acc, "five")
    np.testing.assert_array_equal(five[:, 2], [20] * 5)
    assert arrays(acc, "empty")[0].shape == (0, 3)
    assert arrays(acc, "all-nan")[0].shape == (0, 3)
    np.testing.assert_array_equal(
        arrays(acc, "constant")[0], [[3, 3, 0], [3, 3, 0], [3, 3, 0], [3, 3, 7]]
    )
    assert arrays(acc, "torch-default")[0].shape == (30, 3)
    np.testing.assert_array_equal(arrays(acc, "huge-range")[0], [[-1e308, 0, 1], [0, 1e308, 2]])


def test_add_text_round_trips_unicode(tmp_path: Path) -> None:
    message = "# Résumé ✓\n\n| naïve | 東京 | 🚀 |"
    with SummaryWriter(tmp_path) as writer:
        writer.add_text("notes", message, global_step=4, walltime=8.0)
    acc = load(tmp_path)
    (event,) = acc.Tensors("notes")
    assert (event.step, event.wall_time) == (4, 8.0)
    (tensor,) = arrays(acc, "notes")
    assert tensor.shape == ()
    assert tensor.item().decode("utf-8") == message
    assert acc.SummaryMetadata("notes").plugin_data.plugin_name == "text"


def test_metadata_goes_with_the_first_value_of_each_tag(tmp_path: Path) -> None:
    with SummaryWriter(tmp_path) as writer:
        for step in range(3):
            writer.add_scalar("a", step, step)
            writer.add_text("b", "x", step)
    events = read_events(event_files(tmp_path)[0])[1:]
    values = [e.summary.value[0] for e in events]
    assert [(v.tag, v.HasField("metadata")) for v in values] == [
        ("a", True),
        ("b", True),
        ("a", False),
        ("b", False),
        ("a", False),
        ("b", False),
    ]
    # A new file (a new writer) starts over.
    with SummaryWriter(tmp_path) as writer:
        writer.add_scalar("a", 1.0, 9)
    assert read_events(event_files(tmp_path)[-1])[1].summary.value[0].HasField("metadata")


def test_purge_step_writes_a_restart_that_tensorboard_honours(tmp_path: Path) -> None:
    with SummaryWriter(tmp_path, purge_step=0) as writer:
        first_name = os.path.basename(writer.file_writer.path)
        for step in range(10):
            writer.add_scalar("loss", 1.0, step)
    counter = int(first_name.rsplit(".", 1)[1])
    if len(str(counter + 1)) > len(str(counter)):  # 9 -> 10 would sort first: wait a second
        wait_for(lambda: int(time.time()) > int(first_name.split(".")[3]), timeout=2)
    with SummaryWriter(tmp_path, purge_step=5) as writer:
        for step in range(5, 8):
            writer.add_scalar("loss", 2.0, step)
    second = event_files(tmp_path)[-1]
    assert second.name != first_name
    restart = read_events(second)[1]
    assert restart.session_log.status == event_pb2.SessionLog.START
    assert restart.step == 5
    acc = load(tmp_path)
    read = [(e.step, float(a)) for e, a in zip(acc.Tensors("loss"), arrays(acc, "loss"))]
    assert read == [(s, 1.0) for s in range(5)] + [(s, 2.0) for s in range(5, 8)]


# --- flushing, closing, threads ----------------------------------------------------------


def test_flush_makes_data_visible_before_close(tmp_path: Path) -> None:
    writer = SummaryWriter(tmp_path, max_queue=1000, flush_secs=FAR)
    try:
        writer.add_scalar("loss", 0.5, 1)
        assert "loss" not in load(tmp_path).Tags()["tensors"]
        writer.flush()
        assert [float(a) for a in arrays(load(tmp_path), "loss")] == [0.5]
    finally:
        writer.close()


def test_max_queue_forces_a_write(tmp_path: Path) -> None:
    with SummaryWriter(tmp_path, max_queue=3, flush_secs=FAR) as writer:
        path = Path(writer.file_writer.path)
        writer.add_scalar("loss", 1.0, 1)
        writer.add_scalar("loss", 1.0, 2)
        assert len(read_events(path)) == 1
        writer.add_scalar("loss", 1.0, 3)
        assert len(read_events(path)) == 4


def test_background_thread_flushes_without_being_asked(tmp_path: Path) -> None:
    with SummaryWriter(tmp_path, max_queue=1000, flush_secs=0.05) as writer:
        path = Path(writer.file_writer.path)
        writer.add_scalar("loss", 0.5, 1)
        assert wait_for(lambda: len(read_events(path)) == 2)


def test_context_manager_closes_and_writing_after_close_raises(tmp_path: Path) -> None:
    with SummaryWriter(tmp_path) as writer:
        writer.add_scalar("loss", 1.0, 0)
        thread_name = f"kboard-flush:{os.path.basename(writer.file_writer.path)}"
        assert thread_name in [t.name for t in flush_threads()]
    assert writer.file_writer.closed
    assert thread_name not in [t.name for t in flush_threads()]
    with pytest.raises(RuntimeError, match="closed"):
        writer.add_scalar("loss", 2.0, 1)
    with pytest.raises(RuntimeError, match="closed"):
        writer.flush()
    writer.close()  # idempotent
    assert [float(a) for a in arrays(load(tmp_path), "loss")] == [1.0]


def test_dropped_writer_is_closed_and_its_thread_stops(tmp_path: Path) -> None:
    writer = SummaryWriter(tmp_path, max_queue=1000, flush_secs=FAR)
    writer.add_scalar("loss", 3.0, 1)
    name = f"kboard-flush:{os.path.basename(writer.file_writer.path)}"
    del writer
    assert name not in [t.name for t in flush_threads()]
    assert [float(a) for a in arrays(load(tmp_path), "loss")] == [3.0]


def test_data_is_flushed_at_interpreter_exit(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from kboard.writer import SummaryWriter\n"
        "w = SummaryWriter(sys.argv[1], max_queue=1000, flush_secs=3600)\n"
        "w.add_scalar('loss', 0.75, 12)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, timeout=30)
    events = read_events(event_files(tmp_path)[0])
    assert [(e.step, e.summary.value[0].tag) for e in events[1:]] == [(12, "loss")]


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    with SummaryWriter(tmp_path, max_queue=7, flush_secs=0.01) as writer:

        def work(worker: int) -> None:
            for step in range(200):
                writer.add_scalar(f"w{worker}", step, step)
                writer.add_scalar("shared", worker, step)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    events = read_events(event_files(tmp_path)[0])[1:]
    assert len(events) == 4 * 200 * 2
    seen: set[str] = set()
    for event in events:
        value = event.summary.value[0]
        assert value.HasField("metadata") == (value.tag not in seen)
        seen.add(value.tag)
    acc = load(tmp_path)
    for worker in range(4):
        assert [e.step for e in acc.Tensors(f"w{worker}")] == list(range(200))
    assert len(acc.Tensors("shared")) == 800


# --- argument validation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda w: w.add_scalar("s", "1.0"), TypeError, "real number"),
        (lambda w: w.add_scalar("s", None), TypeError, "real number"),
        (lambda w: w.add_scalar("s", 1 + 2j), TypeError, "real number"),
        (lambda w: w.add_scalar("s", [1.0, 2.0]), ValueError, "exactly one"),
        (lambda w: w.add_scalar("s", 1.0, global_step=1.5), TypeError, "step"),
        (lambda w: w.add_scalar("s", 1.0, walltime="now"), TypeError, "walltime"),
        (lambda w: w.add_scalar("", 1.0), ValueError, "tag"),
        (lambda w: w.add_scalar(3, 1.0), TypeError, "tag"),
        (lambda w: w.add_image("i", np.zeros((4, 4, 3)), dataformats="HWX"), ValueError, "HWC"),
        (lambda w: w.add_image("i", np.zeros((4, 4, 3)), dataformats="HHC"), ValueError, "once"),
        (lambda w: w.add_image("i", np.zeros((4, 4, 3)), dataformats=3), ValueError, "CHW"),
        (lambda w: w.add_image("i", np.zeros((4, 4)), dataformats="HWC"), ValueError, "3-D"),
        (lambda w: w.add_image("i", np.zeros((4, 4))), ValueError, r"'CHW'.*2-D.*'HW'"),
        (
            lambda w: w.add_image("i", np.zeros((4, 4, 2)), dataformats="HWC"),
            ValueError,
            "channels",
        ),
        (lambda w: w.add_image("i", np.zeros((5, 4, 4))), ValueError, "channels"),
        (lambda w: w.add_image("i", np.zeros((8, 8, 3))), ValueError, "dataformats='HWC'"),
        (lambda w: w.add_images("i", np.zeros((2, 8, 8, 3))), ValueError, "'NHWC'"),
        (lambda w: w.add_image("i", np.zeros((0, 4, 3)), dataformats="HWC"), ValueError, "1x1"),
        (lambda w: w.add_image("i", np.full((3, 2, 2), "a")), TypeError, "dtype"),
        (lambda w: w.add_image("i", np.full((3, 2, 2), 1j)), TypeError, "dtype"),
        (lambda w: w.add_images("i", np.zeros((4, 4, 3))), ValueError, r"'NCHW'.*4-D.*3-D"),
        (
            lambda w: w.add_images("i", np.zeros((1, 4, 4, 3)), dataformats="HWC"),
            ValueError,
            "NHWC",
        ),
        (lambda w: w.add_histogram("h", [1.0], bins=0), ValueError, "positive"),
        (lambda w: w.add_histogram("h", [1.0], bins=2.5), ValueError, "bins"),
        (lambda w: w.add_histogram("h", [1.0], bins="nonsense"), ValueError, "nonsense"),
        (lambda w: w.add_histogram("h", [1.0], bins=[3, 1]), ValueError, "monoton"),
        (lambda w: w.add_histogram("h", ["a"]), TypeError, "numbers"),
        (lambda w: w.add_text("t", 42), TypeError, "str"),
    ],
)
def test_invalid_arguments_are_rejected(tmp_path: Path, call, error, match) -> None:
    with SummaryWriter(tmp_path) as writer:
        with pytest.raises(error, match=match):
            call(writer)
        writer.add_scalar("still-works", 1.0)


def test_a_tag_keeps_its_kind(tmp_path: Path) -> None:
    with SummaryWriter(tmp_path) as writer:
        writer.add_scalar("x", 1.0)
        with pytest.raises(ValueError, match="already holds 'scalars'"):
            writer.add_text("x", "hello")


@pytest.mark.parametrize(
    ("kwargs", "match"), [({"flush_secs": 0}, "flush_secs"), ({"max_queue": -1}, "max_queue")]
)
def test_invalid_writer_options(tmp_path: Path, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SummaryWriter(tmp_path, **kwargs)


# --- the tf.summary style ------------------------------------------------------------------


def test_summary_api_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    images = rng.random((5, 4, 3, 3))
    data = np.concatenate([rng.normal(size=500), [np.nan]])
    writer = kboard.summary.create_file_writer(tmp_path, flush_millis=60_000)
    before = time.time()
    with writer.as_default(step=7):
        assert kboard.summary.scalar("loss", 0.125, description="Training *loss*")
        assert kboard.summary.scalar("loss", np.float64(0.0625), step=8)
        assert kboard.summary.image("images", images, max_outputs=2)
        assert kboard.summary.histogram("weights", data, buckets=10)
        assert kboard.summary.text("notes", "héllo 🌍")
        assert kboard.summary.text("table", np.array([["a", "b"], ["ç", "d"]]))
        assert kboard.summary.flush()
    after = time.time()
    writer.close()
    assert Path(writer.path).name.endswith(".v2")
    acc = load(tmp_path)
    assert set(acc.Tags()["tensors"]) == {"loss", "images", "weights", "notes", "table"}
    assert [(e.step, float(a)) for e, a in zip(acc.Tensors("loss"), arrays(acc, "loss"))] == [
        (7, 0.125),
        (8, 0.0625),
    ]
    assert all(before <= e.wall_time <= after for e in acc.Tensors("loss"))
    metadata = acc.SummaryMetadata("loss")
    assert metadata.plugin_data.plugin_name == "scalars"
    assert metadata.summary_description == "Training *loss*"
    (shown,) = arrays(acc, "images")
    assert shown.shape == (4,)
    expected = np.rint(images[1] * 255).astype(np.uint8)
    np.testing.assert_array_equal(decode_png(shown[3]), expected)
    (buckets,) = arrays(acc, "weights")
    assert buckets.shape == (10, 3) and buckets[:, 2].sum() == 500
    assert arrays(acc, "notes")[0].item().decode() == "héllo 🌍"
    table = arrays(acc, "table")[0]
    assert table.shape == (2, 2) and table[1, 0].decode() == "ç"
    assert acc.SummaryMetadata("table").plugin_data.plugin_name == "text"


def test_summary_without_default_writer_returns_false() -> None:
    assert kboard.summary.scalar("loss", 1.0, step=0) is False
    assert kboard.summary.text("t", "x") is False  # no step needed when nothing is written
    assert kboard.summary.flush() is False


def test_summary_step_rules(tmp_path: Path) -> None:
    writer = kboard.summary.create_file_writer(tmp_path)
    try:
        assert kboard.summary.experimental.get_step() is None
        with writer.as_default():
            with pytest.raises(ValueError, match="No step set"):
                kboard.summary.scalar("loss", 1.0)
            kboard.summary.experimental.set_step(np.int64(3))
            assert kboard.summary.experimental.get_step() == 3
            assert kboard.summary.scalar("loss", 1.0)
            with writer.as_default(step=10):
                assert kboard.summary.experimental.get_step() == 10
                assert kboard.summary.scalar("loss", 2.0)
            assert kboard.summary.experimental.get_step() == 3
            with pytest.raises(TypeError, match="step"):
                kboard.summary.scalar("loss", 1.0, step=2.5)
        kboard.summary.experimental.set_step(None)
        assert kboard.summary.scalar("loss", 1.0, step=1) is False  # default writer restored
    finally:
        kboard.summary.experimental.set_step(None)
        writer.close()
    assert [e.step for e in load(tmp_path).Tensors("loss")] == [3, 10]


def test_summary_as_default_flushes_on_exit(tmp_path: Path) -> None:
    writer = kboard.summary.create_file_writer(tmp_path, max_queue=1000, flush_millis=3_600_000)
    try:
        with writer.as_default(step=1):
            kboard.summary.scalar("loss", 1.5)
        assert [float(a) for a in arrays(load(tmp_path), "loss")] == [1.5]
    finally:
        writer.close()


def test_summary_default_writer_is_per_thread(tmp_path: Path) -> None:
    writer = kboard.summary.create_file_writer(tmp_path)
    results: list[bool] = []

    def in_thread() -> None:
        writer.set_as_default(step=2)  # for this thread only: it ends with the thread
        results.append(kboard.summary.scalar("x", 1.0))

    try:
        other = threading.Thread(target=in_thread)
        other.start()
        other.join()
        assert results == [True]
        assert kboard.summary.scalar("x", 1.0, step=3) is False
        assert kboard.summary.experimental.get_step() is None
    finally:
        writer.close()
    assert [e.step for e in load(tmp_path).Tensors("x")] == [2]


def test_summary_image_validation(tmp_path: Path) -> None:
    writer = kboard.summary.create_file_writer(tmp_path)
    try:
        with writer.as_default(step=0):
            with pytest.raises(ValueError, match=r"\[k, h, w, c\]"):
                kboard.summary.image("img", np.zeros((4, 4, 3)))
            with pytest.raises(ValueError, match="max_outputs"):
                kboard.summary.image("img", np.zeros((1, 4, 4, 3)), max_outputs=-1)
    finally:
        writer.close()


# --- no TensorFlow -------------------------------------------------------------------------


def test_writing_does_not_import_tensorflow(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "import numpy as np\n"
        "import kboard.summary\n"
        "from kboard.writer import SummaryWriter\n"
        "with SummaryWriter(sys.argv[1]) as w:\n"
        "    w.add_scalar('s', 1.0); w.add_image('i', np.zeros((3, 2, 2)))\n"
        "    w.add_histogram('h', [1, 2, 3]); w.add_text('t', 'x')\n"
        "with kboard.summary.create_file_writer(sys.argv[1]).as_default(step=1):\n"
        "    kboard.summary.scalar('s2', 2.0)\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, timeout=30)


def test_protos_build_tf2_values() -> None:
    value = protos.scalar("s", 2.5, description="d")
    assert value.tensor.dtype == types_pb2.DT_FLOAT  # TensorBoard's Rust loader needs it
    assert value.tensor.tensor_content == np.float32(2.5).tobytes()
    assert value.metadata.plugin_data.plugin_name == "scalars"
    assert value.metadata.summary_description == "d"
    assert protos.file_version_event(1.0).file_version == protos.FILE_VERSION


def test_files_opened_in_one_second_sort_in_the_order_they_were_opened(tmp_path: Path) -> None:
    # Readers take a run's event files in name order; counter 10 must not sort before 9.
    for index in range(12):
        with SummaryWriter(tmp_path) as writer:
            writer.add_scalar("index", float(index), 0)
    files = sorted(event_files(tmp_path), key=lambda p: p.name)
    assert len(files) == 12
    values = [read_events(f)[1].summary.value[0].tensor for f in files]
    assert [float(np.frombuffer(v.tensor_content, "<f4")[0]) for v in values] == list(range(12))
