"""The ``tf.summary`` call style without TensorFlow.

    writer = kboard.summary.create_file_writer("logs/run1")
    with writer.as_default(step=0):
        kboard.summary.scalar("loss", 0.5)

The default writer and the default step belong to the calling thread, as in TensorFlow.
Hyperparameters as ``tensorboard.plugins.hparams.api`` (``hp``) writes them:
:func:`hparams_config` with :class:`HParam`, :class:`Metric` and the domains (TensorBoard's
own classes, which need no TensorFlow), :func:`hparams` per session, :func:`session_end`.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from tensorboard.plugins.hparams.summary_v2 import (
    Discrete,
    HParam,
    IntInterval,
    Metric,
    RealInterval,
)

from kboard.tfevents import protos
from kboard.writer import SummaryWriter, as_step

__all__ = [
    "Discrete",
    "HParam",
    "IntInterval",
    "Metric",
    "RealInterval",
    "SummaryFileWriter",
    "create_file_writer",
    "experimental",
    "flush",
    "hparams",
    "hparams_config",
    "histogram",
    "image",
    "scalar",
    "session_end",
    "text",
]

_state = threading.local()


class SummaryFileWriter:
    """A summary writer for one new event file in a log directory (``tf.summary`` style)."""

    def __init__(
        self,
        logdir: str | os.PathLike[str],
        max_queue: int = 10,
        flush_secs: float = 1.0,
        filename_suffix: str = ".v2",
    ) -> None:
        self._writer = SummaryWriter(
            logdir, max_queue=max_queue, flush_secs=flush_secs, filename_suffix=filename_suffix
        )

    @property
    def logdir(self) -> str:
        """Return the directory this writer writes to."""
        return self._writer.get_logdir()

    @property
    def path(self) -> str:
        """Return the path of the event file."""
        return self._writer.file_writer.path

    @contextmanager
    def as_default(self, step: Any = None) -> Iterator[SummaryFileWriter]:
        """Make this the thread's default writer (and ``step`` its default step) for a block.

        Both are restored, and this writer is flushed, when the block ends.
        """
        old_writer, old_step = _current_writer(), experimental.get_step()
        _state.writer = self
        if step is not None:
            experimental.set_step(step)
        try:
            yield self
        finally:
            _state.writer = old_writer
            if step is not None:
                experimental.set_step(old_step)
            if not self._writer.file_writer.closed:
                self.flush()

    def set_as_default(self, step: Any = None) -> None:
        """Make this the thread's default writer (and ``step`` its default step) from now on."""
        _state.writer = self
        if step is not None:
            experimental.set_step(step)

    def write(self, value: Any, step: Any = None) -> bool:
        """Write a prebuilt ``Summary.Value`` at ``step`` (or the default step)."""
        self._writer.add_value(value, _resolve_step(step))
        return True

    def flush(self) -> None:
        """Write everything queued to disk."""
        self._writer.flush()

    def close(self) -> None:
        """Flush and close the event file (again is a no-op)."""
        self._writer.close()


def create_file_writer(
    logdir: str | os.PathLike[str],
    max_queue: int | None = None,
    flush_millis: int | None = None,
    filename_suffix: str | None = None,
) -> SummaryFileWriter:
    """Create a writer like ``tf.summary.create_file_writer``.

    Defaults: 10 queued events, a flush every second (TensorFlow: 2 minutes; kboard is live),
    and the ``.v2`` file suffix TensorFlow uses.
    """
    return SummaryFileWriter(
        logdir,
        max_queue=10 if max_queue is None else max_queue,
        flush_secs=1.0 if flush_millis is None else flush_millis / 1000,
        filename_suffix=".v2" if filename_suffix is None else filename_suffix,
    )


def _current_writer() -> SummaryFileWriter | None:
    return getattr(_state, "writer", None)


def _get_step() -> int | None:
    """Return this thread's default step, or None when none is set."""
    return getattr(_state, "step", None)


def _set_step(step: Any) -> None:
    """Set this thread's default step (None unsets it)."""
    _state.step = None if step is None else as_step(step)


class experimental:  # lower case: it mirrors the tf.summary.experimental namespace
    """The ``tf.summary.experimental`` step functions."""

    get_step = staticmethod(_get_step)
    set_step = staticmethod(_set_step)


def _resolve_step(step: Any) -> int:
    if step is None:
        step = _get_step()
        if step is None:
            raise ValueError(
                "No step set: pass step=..., use writer.as_default(step=...), or call "
                "kboard.summary.experimental.set_step()"
            )
    return as_step(step)


def scalar(name: str, data: Any, step: Any = None, description: str | None = None) -> bool:
    """Write a scalar to the default writer; return False when there is none."""
    writer = _current_writer()
    if writer is None:
        return False
    step = _resolve_step(step)
    return writer.write(protos.scalar(name, data, description=description or ""), step)


def image(
    name: str,
    data: Any,
    step: Any = None,
    max_outputs: int = 3,
    description: str | None = None,
) -> bool:
    """Write up to ``max_outputs`` images of ``[k, h, w, c]`` data (uint8 or floats in [0, 1])."""
    writer = _current_writer()
    if writer is None:
        return False
    step = _resolve_step(step)
    value = protos.image(name, data, max_outputs=max_outputs, description=description or "")
    return writer.write(value, step)


def histogram(
    name: str,
    data: Any,
    step: Any = None,
    buckets: protos.Bins | None = None,
    description: str | None = None,
) -> bool:
    """Write a histogram of the finite values of ``data`` (30 equal-width buckets by default)."""
    writer = _current_writer()
    if writer is None:
        return False
    step = _resolve_step(step)
    bins = protos.DEFAULT_BUCKET_COUNT if buckets is None else buckets
    value = protos.histogram(name, data, bins=bins, description=description or "")
    return writer.write(value, step)


def text(name: str, data: Any, step: Any = None, description: str | None = None) -> bool:
    """Write a (Markdown) text, or an array of texts, to the default writer."""
    writer = _current_writer()
    if writer is None:
        return False
    step = _resolve_step(step)
    return writer.write(protos.text(name, data, description=description or ""), step)


def hparams(
    hparams: Mapping[Any, Any],
    trial_id: str | None = None,
    start_time_secs: float | None = None,
) -> bool:
    """Write one session's hyperparameter values, as ``hp.hparams`` (at step 0).

    Keys are names or :class:`HParam` objects; sessions with the same ``trial_id`` (default:
    a hash of the values) form one group. False when there is no default writer.
    """
    writer = _current_writer()
    if writer is None:
        return False
    values = normalize_hparams(hparams)
    value = protos.session_start(
        values,
        group_name=session_group_name(trial_id, values),
        start_time_secs=time.time() if start_time_secs is None else start_time_secs,
    )
    return writer.write(value, 0)


def session_group_name(trial_id: str | None, hparams: Mapping[str, Any]) -> str:
    """``trial_id``, or the hash of the values that ``hp`` uses as the group name."""
    if trial_id is not None:
        if not isinstance(trial_id, str):
            raise TypeError(f"trial_id should be a str, got {trial_id!r}")
        return trial_id
    canonical = json.dumps(dict(hparams), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def normalize_hparams(hparams: Mapping[Any, Any]) -> dict[str, Any]:
    """``{name: value}`` from keys that are names or :class:`HParam`, values as Python scalars."""
    out: dict[str, Any] = {}
    for key, value in hparams.items():
        name = key.name if isinstance(key, HParam) else key
        if not isinstance(name, str):
            raise TypeError(f"hparam names must be str or HParam, got {type(key).__name__}")
        if name in out:
            raise ValueError(f"multiple values specified for hparam {name!r}")
        out[name] = protos.hparam_number(value)
    return out


def hparams_config(
    hparams: Sequence[HParam], metrics: Sequence[Metric], time_created_secs: float | None = None
) -> bool:
    """Write the experiment's hyperparameters and metrics, as ``hp.hparams_config`` (step 0)."""
    writer = _current_writer()
    if writer is None:
        return False
    infos = []
    for hparam in hparams:
        info = protos.api_pb2.HParamInfo(
            name=hparam.name,
            description=hparam.description or "",
            display_name=hparam.display_name or "",
        )
        if hparam.domain is not None:
            hparam.domain.update_hparam_info(info)
        infos.append(info)
    created = time.time() if time_created_secs is None else time_created_secs
    value = protos.experiment(infos, [m.as_proto() for m in metrics], created)
    return writer.write(value, 0)


def session_end(status: str = "success", end_time_secs: float | None = None, step: Any = 0) -> bool:
    """Write how the session ended (``success``, ``failure``, ``running``, ``unknown``)."""
    writer = _current_writer()
    if writer is None:
        return False
    end = time.time() if end_time_secs is None else end_time_secs
    return writer.write(protos.session_end(status, end), step)


def flush(writer: SummaryFileWriter | None = None) -> bool:
    """Flush ``writer`` or the default writer; return False when there is none."""
    if writer is None:
        writer = _current_writer()
    if writer is None:
        return False
    writer.flush()
    return True
