"""Write TensorBoard event files without TensorFlow, with the torch ``SummaryWriter`` API.

A log directory may be an fsspec URL (``s3://bucket/run``): the event file is then an object,
uploaded whole on each flush and rolled to a new object past ``ROLL_BYTES`` (see
:class:`kboard.storage.ObjectSink`).
"""

from __future__ import annotations

import itertools
import os
import socket
import threading
import time
import weakref
from datetime import datetime
from types import TracebackType
from typing import Any

import numpy as np
from tensorboard.compat.proto import event_pb2, summary_pb2

from kboard.storage import ObjectSink, is_url
from kboard.tfevents import protos
from kboard.tfevents.plugins import HPARAMS
from kboard.tfevents.records import encode_record

_counter = itertools.count()
_counter_lock = threading.Lock()

# The axes an image layout may name, in any order (torch takes "WH", "CWH" and so on too).
_LAYOUT_AXES = (frozenset("HW"), frozenset("HWC"), frozenset("NHW"), frozenset("NHWC"))
_LAYOUTS_BY_RANK = {2: "'HW'", 3: "'CHW' or 'HWC'", 4: "'NCHW' or 'NHWC'"}
# In an object store, an event file is uploaded whole on each flush until it holds this much;
# then the next flush starts a new object. Bounds a flush's upload and a run's object count.
ROLL_BYTES = 256 * 1024


def _next_count() -> int:
    with _counter_lock:
        return next(_counter)


class _EventFile:
    """The open file, its pending records and its lock: everything the flush thread touches.

    Kept apart from ``EventFileWriter`` so that neither the thread nor the exit hook keeps
    the writer alive.
    """

    def __init__(self, path: str, max_queue: int, sink: ObjectSink | None = None) -> None:
        self._path = path
        self._sink = sink
        self._file = sink if sink is not None else open(path, "xb")  # noqa: SIM115
        self._max_queue = max_queue
        self._pending: list[bytes] = []
        self._lock = threading.Lock()
        self._closed = False
        self._error: OSError | None = None

    @property
    def path(self) -> str:
        """The file (or the object being written, which changes as objects roll)."""
        return self._sink.path if self._sink is not None else self._path

    def add(self, record: bytes) -> None:
        with self._lock:
            self._check()
            self._pending.append(record)
            if len(self._pending) >= self._max_queue:
                self._write(durable=False)

    def flush(self) -> None:
        with self._lock:
            self._check()
            self._write()

    def background_flush(self) -> None:
        with self._lock:
            if self._closed or self._error is not None:
                return
            try:
                self._write()
            except OSError as error:  # surfaced by the next call from the user's thread
                self._error = error

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                if self._error is None:
                    self._write()
            finally:
                self._file.close()

    def _check(self) -> None:
        if self._closed:
            raise RuntimeError(f"cannot write to {self.path}: the writer is closed")
        if self._error is not None:
            raise OSError(f"writing {self.path} failed in the background") from self._error

    def _write(self, durable: bool = True) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            self._file.write(data)
        if durable or self._sink is None:  # an object is uploaded on flushes only
            self._file.flush()


def _flush_loop(file: _EventFile, stop: threading.Event, interval: float) -> None:
    while not stop.wait(interval):
        file.background_flush()


def _shutdown(file: _EventFile, stop: threading.Event, thread: threading.Thread) -> None:
    stop.set()
    if thread is not threading.current_thread():
        thread.join()
    file.close()


class EventFileWriter:
    """Append events to a new event file; a daemon thread flushes every ``flush_secs``.

    Thread-safe. The file starts with the ``brain.Event:2`` file-version event. Events wait
    in memory until ``max_queue`` of them are pending, a flush, or close. ``close()`` is
    idempotent and also runs at interpreter exit (``weakref.finalize`` registers it with
    ``atexit``) or when the writer is garbage-collected.
    """

    def __init__(
        self,
        logdir: str | os.PathLike[str],
        filename_suffix: str = "",
        flush_secs: float = 1.0,
        max_queue: int = 10,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        if not flush_secs > 0:
            raise ValueError(f"flush_secs must be a positive number of seconds, got {flush_secs}")
        if max_queue < 0:
            raise ValueError(f"max_queue must be >= 0, got {max_queue}")
        self._logdir = os.fspath(logdir)
        if is_url(self._logdir):
            self._file = _open_event_object(
                self._logdir, filename_suffix, max_queue, storage_options
            )
        else:
            os.makedirs(self._logdir, exist_ok=True)
            self._file = _open_event_file(self._logdir, filename_suffix, max_queue)
        self._file.add(encode_record(protos.file_version_event(time.time()).SerializeToString()))
        self._file.flush()
        stop = threading.Event()
        thread = threading.Thread(
            target=_flush_loop,
            args=(self._file, stop, float(flush_secs)),
            name=f"kboard-flush:{os.path.basename(self._file.path)}",
            daemon=True,
        )
        thread.start()
        self._finalizer = weakref.finalize(self, _shutdown, self._file, stop, thread)

    @property
    def path(self) -> str:
        """Return the path of the event file."""
        return self._file.path

    @property
    def closed(self) -> bool:
        """Return True once ``close()`` has run."""
        return not self._finalizer.alive

    def get_logdir(self) -> str:
        """Return the directory holding the event file."""
        return self._logdir

    def add_event(self, event: event_pb2.Event) -> None:
        """Queue one event for writing."""
        self._file.add(encode_record(event.SerializeToString()))

    def flush(self) -> None:
        """Write every queued event to the file now."""
        self._file.flush()

    def close(self) -> None:
        """Flush, stop the flush thread and close the file (again is a no-op)."""
        self._finalizer()

    def __enter__(self) -> EventFileWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _event_file_name(suffix: str) -> str:
    # Readers (TensorBoard, kboard) take a run's files in name order: the zero-padded
    # counter keeps files opened in the same second in the order they were opened.
    host, pid, count = socket.gethostname(), os.getpid(), _next_count()
    return f"events.out.tfevents.{int(time.time())}.{host}.{pid}.{count:06d}{suffix}"


def _open_event_file(logdir: str, suffix: str, max_queue: int) -> _EventFile:
    while True:
        try:
            return _EventFile(os.path.join(logdir, _event_file_name(suffix)), max_queue)
        except FileExistsError:
            continue


def _open_event_object(
    url: str, suffix: str, max_queue: int, options: dict[str, Any] | None
) -> _EventFile:
    """An event file in an object store; each object it rolls to starts with a version event."""
    sink = ObjectSink(
        url,
        lambda: _event_file_name(suffix),
        lambda: encode_record(protos.file_version_event(time.time()).SerializeToString()),
        roll_bytes=ROLL_BYTES,
        options=options,
    )
    return _EventFile(sink.path, max_queue, sink)


def as_step(step: Any) -> int:
    """Return a step as an int: None means 0; ints, numpy ints and int tensors are accepted."""
    if step is None:
        return 0
    array = protos.as_array(step)
    if array.dtype.kind not in "iu" or array.size != 1:
        raise TypeError(f"step must be an integer, got {step!r}")
    return int(array.reshape(()))


def _as_wall_time(walltime: Any) -> float:
    return time.time() if walltime is None else protos.as_float(walltime, "walltime")


def _to_nhwc(img_tensor: Any, dataformats: str) -> np.ndarray:
    """Transpose ``img_tensor`` from ``dataformats`` (H, W, maybe C and N, any order) to NHWC."""
    layout = dataformats.upper() if isinstance(dataformats, str) else ""
    if len(set(layout)) != len(layout) or frozenset(layout) not in _LAYOUT_AXES:
        raise ValueError(
            "dataformats must name H and W, and optionally C (channels) and N (images), each "
            f"once and in any order, such as CHW, HWC, HW, NCHW or NHWC; got {dataformats!r}"
        )
    array = protos.as_array(img_tensor)
    if array.ndim != len(layout):
        hint = _LAYOUTS_BY_RANK.get(array.ndim)
        raise ValueError(
            f"dataformats {layout!r} describes a {len(layout)}-D array, but the image has "
            f"shape {array.shape} ({array.ndim}-D)"
            + (f"; pass dataformats={hint} to match it" if hint else "")
        )
    channels = array.shape[layout.index("C")] if "C" in layout else 1
    if channels not in (1, 3, 4):
        last = layout.replace("C", "") + "C"
        raise ValueError(
            f"images have 1, 3 or 4 channels, but dataformats {layout!r} reads {channels} "
            f"from shape {array.shape}"
            + (f"; for channels last pass dataformats={last!r}" if last != layout else "")
        )
    if "N" not in layout:
        array, layout = array[None], "N" + layout
    if "C" not in layout:
        array, layout = array[..., None], layout + "C"
    return array.transpose([layout.index(axis) for axis in "NHWC"])


def _torch_pixels(images: np.ndarray) -> np.ndarray:
    """Return NHWC uint8 pixels as torch's ``image()`` makes them.

    uint8 is kept; any other dtype is multiplied by 255 in float32, clipped to 0..255 and
    truncated (NaN becomes 0); one channel is repeated into RGB.
    """
    if images.dtype.kind not in "biuf":
        raise TypeError(f"images must be numbers, got dtype {images.dtype}")
    if images.dtype != np.uint8:
        scaled = np.nan_to_num(images.astype(np.float32) * np.float32(255), nan=0.0)
        images = scaled.clip(0, 255).astype(np.uint8)
    if images.shape[3] == 1:
        images = np.repeat(images, 3, axis=3)
    return images


class SummaryWriter:
    """Write summaries with the API of ``torch.utils.tensorboard.SummaryWriter``.

    Values use the TF2 tensor format; plugin metadata goes with the first value of each tag.
    """

    def __init__(
        self,
        log_dir: str | os.PathLike[str] | None = None,
        comment: str = "",
        purge_step: int | None = None,
        max_queue: int = 10,
        flush_secs: float = 1.0,
        filename_suffix: str = "",
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        if log_dir is None:
            stamp = datetime.now().strftime("%b%d_%H-%M-%S")
            log_dir = os.path.join("runs", f"{stamp}_{socket.gethostname()}{comment}")
        self._log_dir = os.fspath(log_dir)
        self._plugins: dict[str, str] = {}
        self._lock = threading.Lock()
        self._file = EventFileWriter(
            self._log_dir, filename_suffix, flush_secs, max_queue, storage_options
        )
        if purge_step is not None:
            # As torch does: readers that honour restarts drop older points at steps >= this.
            # (TensorBoard ignores the first START of a run, so a purge needs an earlier one.)
            self._file.add_event(protos.session_start_event(as_step(purge_step), time.time()))

    def get_logdir(self) -> str:
        """Return the directory this writer writes to."""
        return self._log_dir

    @property
    def file_writer(self) -> EventFileWriter:
        """Return the underlying event-file writer."""
        return self._file

    def add_value(
        self, value: summary_pb2.Summary.Value, global_step: Any = None, walltime: Any = None
    ) -> None:
        """Write one prebuilt value (see :mod:`kboard.tfevents.protos`); metadata once per tag."""
        step, wall_time = as_step(global_step), _as_wall_time(walltime)
        plugin = value.metadata.plugin_data.plugin_name
        event = protos.event([value], step, wall_time)  # copies value
        with self._lock:
            known = self._plugins.get(value.tag)
            if known is not None and plugin != HPARAMS:  # hparams data is its metadata
                if plugin and known != plugin:
                    raise ValueError(
                        f"tag {value.tag!r} already holds {known!r} data, not {plugin!r}"
                    )
                event.summary.value[0].ClearField("metadata")
            self._file.add_event(event)
            if known is None:
                self._plugins[value.tag] = plugin

    def add_scalar(
        self, tag: str, scalar_value: Any, global_step: Any = None, walltime: Any = None
    ) -> None:
        """Write one number (kept as float64)."""
        self.add_value(protos.scalar(tag, scalar_value), global_step, walltime)

    def add_image(
        self,
        tag: str,
        img_tensor: Any,
        global_step: Any = None,
        walltime: Any = None,
        dataformats: str = "CHW",
    ) -> None:
        """Write one image: ``CHW`` (default), ``HWC``, ``HW`` or any order of those axes.

        As torch does: uint8 pixels are kept, any other dtype is taken as [0, 1] (scaled by
        255, clipped, truncated); one channel becomes RGB; 4 channels are RGBA. A layout with
        ``N`` writes each image as its own sample, where torch draws them in one grid.
        """
        images = _torch_pixels(_to_nhwc(img_tensor, dataformats))
        self.add_value(protos.image(tag, images), global_step, walltime)

    def add_images(
        self,
        tag: str,
        img_tensor: Any,
        global_step: Any = None,
        walltime: Any = None,
        dataformats: str = "NCHW",
    ) -> None:
        """Write several images at one step: ``NCHW`` (default), ``NHWC``, ``NHW``, ...

        Pixels as in :meth:`add_image`; each image is one sample of the step.
        """
        self.add_image(tag, img_tensor, global_step, walltime, dataformats)

    def add_histogram(
        self,
        tag: str,
        values: Any,
        global_step: Any = None,
        bins: protos.Bins = protos.DEFAULT_BUCKET_COUNT,
        walltime: Any = None,
    ) -> None:
        """Write a histogram of the finite ``values`` (see ``protos.histogram_buckets``)."""
        self.add_value(protos.histogram(tag, values, bins=bins), global_step, walltime)

    def add_text(
        self, tag: str, text_string: str, global_step: Any = None, walltime: Any = None
    ) -> None:
        """Write a (Markdown) text."""
        if not isinstance(text_string, str):
            raise TypeError(f"text_string must be a str, got {type(text_string).__name__}")
        self.add_value(protos.text(tag, text_string), global_step, walltime)

    def add_hparams(
        self,
        hparam_dict: dict[str, Any],
        metric_dict: dict[str, Any],
        hparam_domain_discrete: dict[str, list[Any]] | None = None,
        run_name: str | None = None,
        global_step: Any = None,
    ) -> None:
        """Write a session of hyperparameters and its final metrics, as torch does.

        The session goes into the sub-directory ``run_name`` (default: the current time), with
        ``metric_dict`` as scalars there; see :func:`kboard.tfevents.protos.torch_hparams`.
        """
        now = time.time()
        values = protos.torch_hparams(hparam_dict, metric_dict, hparam_domain_discrete, now)
        run_dir = os.path.join(self._log_dir, run_name or str(now))
        with SummaryWriter(run_dir) as session:
            for value in values:
                session.add_value(value, global_step)
            for tag, metric in metric_dict.items():
                session.add_scalar(tag, metric, global_step)

    def flush(self) -> None:
        """Write everything queued to disk."""
        self._file.flush()

    def close(self) -> None:
        """Flush and close the event file (again is a no-op)."""
        self._file.close()

    def __enter__(self) -> SummaryWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
