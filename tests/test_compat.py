"""TensorBoard-compatible routes compared with a real TensorBoard serving the same logdir."""

from __future__ import annotations

import csv
import io
import json
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from bench.server import running

from .conftest import STEPS

TB_TIMEOUT = 90
TB_LIFETIME = 900  # longer than this module runs


@pytest.fixture(scope="module")
def tensorboard_url(mixed_logdir: Path, tmp_path_factory: pytest.TempPathFactory):
    """Start the real ``tensorboard`` (Python loader) on a free port.

    The logdir is smaller than TensorBoard's sampling limits, so it keeps every point too.
    """
    cmd = [
        sys.executable,
        "-m",
        "tensorboard.main",
        "--logdir",
        str(mixed_logdir),
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--load_fast",
        "false",
        "--reload_interval",
        "0",
    ]
    log = tmp_path_factory.mktemp("tensorboard") / "tensorboard.log"
    deadline = time.monotonic() + TB_TIMEOUT
    with running(cmd, timeout=TB_TIMEOUT, lifetime=TB_LIFETIME, log=log) as server:
        # Wait until it has loaded every run (it loads in the background, run after run).
        probes = [
            f"/data/plugin/scalars/scalars?run={run}&tag=loss"
            for run in ("train", "eval", "torch_style", "kboard_writer")
        ]
        while time.monotonic() < deadline:
            try:
                if all(len(get_json(server.url, probe)) == STEPS for probe in probes):
                    break
            except OSError:
                pass
            time.sleep(0.3)
        else:
            pytest.fail("tensorboard did not load the logdir in time:\n" + server.output())
        yield server.url


def get_json(base: str, path: str):
    with urllib.request.urlopen(base + path, timeout=30) as response:
        return json.loads(response.read())


def get_text(base: str, path: str) -> str:
    with urllib.request.urlopen(base + path, timeout=30) as response:
        return response.read().decode()


def ours(client, path: str):
    response = client.get(path)
    assert response.status_code == 200, path
    return json.loads(response.get_data(as_text=True))


@pytest.mark.parametrize(
    "path",
    ["/data/plugin/scalars/tags", "/data/plugin/histograms/tags"],
)
def test_tags_match(client, tensorboard_url: str, path: str) -> None:
    assert ours(client, path) == get_json(tensorboard_url, path)


def test_runs_match(client, tensorboard_url: str) -> None:
    assert sorted(ours(client, "/data/runs")) == sorted(get_json(tensorboard_url, "/data/runs"))


def test_scalars_match_every_point(client, tensorboard_url: str) -> None:
    tags = get_json(tensorboard_url, "/data/plugin/scalars/tags")
    compared = 0
    for run, run_tags in tags.items():
        for tag in run_tags:
            query = f"/data/plugin/scalars/scalars?run={run}&tag={tag}"
            theirs = get_json(tensorboard_url, query)
            assert ours(client, query) == theirs, (run, tag)
            compared += 1
    assert compared == 7
    nan_query = "/data/plugin/scalars/scalars?run=kboard_writer&tag=odd"
    assert [v for _, _, v in ours(client, nan_query)][:3] == ["NaN", "Infinity", "-Infinity"]


def test_scalars_csv_matches(client, tensorboard_url: str) -> None:
    query = "/data/plugin/scalars/scalars?run=train&tag=loss&format=csv"
    mine = list(csv.reader(io.StringIO(client.get(query).get_data(as_text=True))))
    theirs = list(csv.reader(io.StringIO(get_text(tensorboard_url, query))))
    assert mine == theirs and len(mine) == 7


def test_histograms_match(client, tensorboard_url: str) -> None:
    for run, tag in (("train", "weights"), ("torch_style", "hist"), ("kboard_writer", "w")):
        query = f"/data/plugin/histograms/histograms?run={run}&tag={tag}"
        assert ours(client, query) == get_json(tensorboard_url, query), (run, tag)


def test_image_routes_match_and_serve_the_same_bytes(client, tensorboard_url: str) -> None:
    tb_tags = get_json(tensorboard_url, "/data/plugin/images/tags")
    assert ours(client, "/data/plugin/images/tags") == tb_tags
    for run, tag, sample in (("train", "samples", 1), ("torch_style", "img", 0)):
        query = f"/data/plugin/images/images?run={run}&tag={tag}&sample={sample}"
        mine, theirs = ours(client, query), get_json(tensorboard_url, query)
        assert [(e["wall_time"], e["step"]) for e in mine] == [
            (e["wall_time"], e["step"]) for e in theirs
        ]
        for mine_entry, their_entry in zip(mine, theirs):
            image = client.get("/data/plugin/images/individualImage?" + mine_entry["query"])
            with urllib.request.urlopen(
                f"{tensorboard_url}/data/plugin/images/individualImage?{their_entry['query']}"
            ) as response:
                assert image.data == response.read()
            assert image.mimetype == "image/png"


@pytest.mark.parametrize(
    "path",
    [
        "/data/plugin/scalars/scalars?run=nope&tag=loss",
        "/data/plugin/scalars/scalars?run=train&tag=nope",
        "/data/plugin/histograms/histograms?run=train&tag=loss",
        "/data/plugin/images/individualImage?run=train&tag=samples&sample=0&step=999",
        "/data/plugin/images/individualImage?run=train&tag=samples&sample=9&step=0",
        "/data/plugin/images/individualImage?run=../../etc&tag=passwd&sample=0&step=0",
    ],
)
def test_unknown_things_are_json_404(client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404 and response.get_json()["error"]
