"""Compact scalar columns: float32 values and int32 steps while exact, 64 bits when needed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, types_pb2

from kboard.ingest import LogdirReader
from kboard.store import ScalarSeries

from .conftest import scalar_event, write_events


def _extend(series: ScalarSeries, steps: list[int], values: list[float]) -> None:
    series.extend(np.array(steps), np.array(steps, dtype=float) + 1e9, np.array(values))


def test_float32_sources_take_half_the_room_and_stay_exact() -> None:
    series = ScalarSeries()
    values = [float(np.float32(v)) for v in (0.1, -2.5, 1e-30)] + [np.nan, np.inf, -0.0]
    _extend(series, list(range(6)), values)
    cols = series.snapshot()
    assert (cols.steps.dtype, cols.values.dtype) == (np.int32, np.float32)
    assert np.array_equal(cols.values.astype(np.float64), values, equal_nan=True)
    assert np.signbit(cols.values[-1])


def test_a_float64_value_widens_the_column_losslessly() -> None:
    series = ScalarSeries()
    first = float(np.float32(0.1))
    _extend(series, [0], [first])
    before = series.snapshot()
    _extend(series, [1, 2], [0.1, 1e300])  # neither is a float32
    cols = series.snapshot()
    assert cols.values.dtype == np.float64
    assert cols.values.tolist() == [first, 0.1, 1e300]
    assert before.values.dtype == np.float32 and before.values.tolist() == [first]


def test_steps_beyond_int32_widen_the_column() -> None:
    series = ScalarSeries()
    _extend(series, [1, 2**31 - 1], [1.0, 2.0])
    assert series.snapshot().steps.dtype == np.int32
    _extend(series, [2**31, 2**40], [3.0, 4.0])
    cols = series.snapshot()
    assert cols.steps.dtype == np.int64
    assert cols.steps.tolist() == [1, 2**31 - 1, 2**31, 2**40]


def test_restored_columns_keep_their_types() -> None:
    series = ScalarSeries()
    _extend(series, [0, 1], [0.5, 0.25])
    restored = ScalarSeries.restore(series.state())
    assert restored.snapshot().values.dtype == np.float32
    _extend(restored, [2], [0.1])
    assert restored.snapshot().values.tolist() == [0.5, 0.25, 0.1]


def _double_event(tag: str, step: int, value: float) -> event_pb2.Event:
    tensor = tensor_pb2.TensorProto(dtype=types_pb2.DT_DOUBLE, double_val=[value])
    val = summary_pb2.Summary.Value(tag=tag, tensor=tensor)
    val.metadata.plugin_data.plugin_name = "scalars"
    return event_pb2.Event(
        wall_time=1e9 + step, step=step, summary=summary_pb2.Summary(value=[val])
    )


def test_files_read_keep_every_value_exactly(tmp_path: Path) -> None:
    doubles = [0.1 * i for i in range(300)]
    write_events(
        tmp_path / "f64" / "events.out.tfevents.1",
        [_double_event("loss", i, v) for i, v in enumerate(doubles)],
    )
    write_events(
        tmp_path / "f32" / "events.out.tfevents.1",
        [scalar_event("loss", i, v) for i, v in enumerate(doubles)],
    )
    reader = LogdirReader(str(tmp_path))
    reader.reload()
    f64 = reader.store.scalars("f64", "loss")
    assert f64.values.dtype == np.float64 and f64.values.tolist() == doubles
    f32 = reader.store.scalars("f32", "loss")
    assert f32.values.dtype == np.float32
    assert f32.values.tolist() == [float(np.float32(v)) for v in doubles]
