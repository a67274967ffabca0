"""bench.generate writes byte for byte what ``tf.summary.scalar`` writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.generate import write_scalar_run, write_tf_run
from kboard.tfevents.records import iter_records


def _only_file(path: Path) -> bytes:
    (found,) = [f for f in path.iterdir() if "tfevents" in f.name]
    return found.read_bytes()


def test_generator_bytes_equal_tf_summary(tmp_path: Path) -> None:
    pytest.importorskip("tensorflow")
    tags, steps = 3, 300  # steps 0 (no step field), 1-127 (one byte), 128+ (two bytes)
    write_tf_run(tmp_path / "tf", tags, steps, seed=7)
    tf_bytes = _only_file(tmp_path / "tf")
    records = list(iter_records(__import__("io").BytesIO(tf_bytes)))
    assert len(records) == 1 + tags * steps
    # TensorFlow's clock is the one thing to copy: each event's wall_time, bytes 1..9.
    walls = np.array([np.frombuffer(r[1:9], "<f8")[0] for r in records])
    write_scalar_run(
        tmp_path / "gen",
        tags,
        steps,
        seed=7,
        wall_times=walls[1:].reshape(steps, tags),
        first_wall_time=float(walls[0]),
    )
    gen_bytes = _only_file(tmp_path / "gen")
    assert records[1][9:11] == b"\x2a\x2c"  # step 0: no step field, the summary follows
    assert gen_bytes == tf_bytes


def test_step_zero_and_zero_values_follow_proto3(tmp_path: Path) -> None:
    from bench.generate import scalar_event

    # Step 0 is left out (proto3 default); a 0.0 value is still written (tensor_content).
    event = scalar_event(b"t", 0, 1.5, 0.0, tf2=True, metadata=False)
    assert b"\x10" not in event[:10]
    assert event.endswith(bytes(4))
    legacy = scalar_event(b"t", 0, 1.5, 0.0, tf2=False, metadata=False)
    assert legacy.endswith(b"\x15" + bytes(4))  # simple_value is in a oneof: always written
