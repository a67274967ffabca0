"""TensorBoard's default loader (its Rust data server) shows what kboard's writer writes.

TensorBoard uses the Rust data server whenever it is installed (``--load_fast=auto``); it
shows scalars only as DT_FLOAT tensors, so a writer that wrote float64 scalars would leave a
TensorBoard user with an empty SCALARS tab.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from bench.server import running
from kboard import SummaryWriter

STEPS = 4


def fetch(url: str):
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    logdir = tmp_path_factory.mktemp("ours")
    with SummaryWriter(str(logdir / "run")) as writer:
        for step in range(STEPS):
            writer.add_scalar("loss", 1 / (step + 1), step)
            writer.add_histogram("weights", np.arange(10.0) * step, step)
            writer.add_image("image", np.full((3, 4, 4), step / STEPS), step)
            writer.add_text("notes", f"step **{step}**", step)
    return logdir


def test_tensorboards_rust_loader_shows_every_kind(written: Path, tmp_path: Path, make_app) -> None:
    cmd = [
        sys.executable, "-m", "tensorboard.main", "--logdir", str(written), "--host",
        "127.0.0.1", "--port", "0", "--load_fast", "true", "--reload_interval", "1",
    ]  # fmt: skip
    with running(cmd, timeout=90, lifetime=300, log=tmp_path / "tb.log") as server:
        base = server.url
        deadline = time.monotonic() + 60
        scalars: list = []
        while time.monotonic() < deadline and len(scalars) < STEPS:
            time.sleep(0.5)
            try:
                scalars = fetch(base + "/data/plugin/scalars/scalars?run=run&tag=loss")
            except OSError:
                continue
        ours = make_app(written).test_client()
        assert scalars == ours.get("/data/plugin/scalars/scalars?run=run&tag=loss").get_json()
        assert [value for _, _, value in scalars] == pytest.approx([1, 1 / 2, 1 / 3, 1 / 4])
        assert set(fetch(base + "/data/plugin/histograms/tags")["run"]) == {"weights"}
        assert fetch(base + "/data/plugin/images/tags")["run"]["image"]["samples"] == 1
        texts = fetch(base + "/data/plugin/text/text?run=run&tag=notes")
        assert [t["step"] for t in texts] == list(range(STEPS))
        assert "<strong>3</strong>" in texts[-1]["text"]
