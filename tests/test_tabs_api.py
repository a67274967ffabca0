"""The API behind IMAGES, HISTOGRAMS, DISTRIBUTIONS, TEXT and MODEL, on real logs."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tensorboard.compat.proto import event_pb2, summary_pb2

from kboard import SummaryWriter
from kboard.histograms import BASIS_POINTS, clean_buckets, percentiles, rebin

from .conftest import STEPS, write_events


def test_tf_images_with_several_samples(client) -> None:
    body = client.get("/api/images?run=train&tag=samples").get_json()
    assert [s["step"] for s in body["steps"]] == list(range(STEPS))
    assert body["steps"][0] | {"wall_time": 0} == {
        "step": 0,
        "wall_time": 0,
        "width": 6,
        "height": 8,
        "samples": 2,
    }
    for sample in (0, 1):
        response = client.get(f"/api/image?run=train&tag=samples&step=3&sample={sample}")
        assert response.mimetype == "image/png"
        assert Image.open(io.BytesIO(response.data)).size == (6, 8)
    assert client.get("/api/image?run=train&tag=samples&step=3&sample=2").status_code == 404
    assert client.get("/api/image?run=train&tag=samples&step=99").status_code == 404
    assert client.get("/api/image?run=train&tag=samples").status_code == 400


def test_legacy_images(client) -> None:
    body = client.get("/api/images?run=torch_style&tag=img").get_json()
    assert len(body["steps"]) == STEPS and body["steps"][0]["samples"] == 1
    response = client.get("/api/image?run=torch_style&tag=img&step=0")
    assert Image.open(io.BytesIO(response.data)).size == (7, 5)


def test_keras_weight_images(keras_logdir: Path, make_app) -> None:
    client = make_app(keras_logdir).test_client()
    tags = client.get("/api/tags/images").get_json()["tags"]["train"]
    assert "first/kernel/image" in tags
    body = client.get("/api/images?run=train&tag=first/kernel/image").get_json()
    assert len(body["steps"]) == 3


@pytest.mark.parametrize(
    ("payload", "mime"),
    [
        (b"<html><script>alert(1)</script></html>", "application/octet-stream"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"/>', "application/octet-stream"),
        (b"GIF89a....", "image/gif"),
        (b"\xff\xd8\xff\xe0JFIF", "image/jpeg"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"", "application/octet-stream"),
    ],
)
def test_image_content_type_is_sniffed_from_an_allowlist(
    tmp_path: Path, make_app, payload: bytes, mime: str
) -> None:
    image = summary_pb2.Summary.Image(height=1, width=1, encoded_image_string=payload)
    value = summary_pb2.Summary.Value(tag="img", image=image)
    write_events(
        tmp_path / "run" / "events.out.tfevents.1",
        [event_pb2.Event(step=0, wall_time=1.0, summary=summary_pb2.Summary(value=[value]))],
    )
    response = make_app(tmp_path).test_client().get("/api/image?run=run&tag=img&step=0")
    assert response.mimetype == mime and response.data == payload
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def independent_percentile(buckets: np.ndarray, q: float) -> float:
    """Walk the buckets one value-mass at a time: the textbook definition, no numpy tricks."""
    total = sum(c for _, _, c in buckets)
    target = q * total
    seen = 0.0
    for left, right, count in buckets:
        if seen + count >= target:
            return left + (target - seen) / count * (right - left)
        seen += count
    return buckets[-1][1]


def test_distribution_percentiles_match_an_independent_computation(client) -> None:
    body = client.get("/api/histograms?run=train&tag=weights").get_json()
    from kboard.ingest import LogdirReader  # the same buckets the server used

    assert body["basis_points"] == list(BASIS_POINTS)
    reader = LogdirReader(client.application.extensions["kboard"].logdir)
    reader.reload()
    from kboard.tfevents.events import Kind

    stored = reader.store.samples("train", Kind.HISTOGRAMS, "weights")
    for step_values, sample in zip(body["percentiles"], stored):
        buckets = [tuple(b) for b in sample.value if b[2] > 0]
        expected = [independent_percentile(buckets, bp / 10000) for bp in BASIS_POINTS]
        assert step_values == pytest.approx(expected, rel=1e-9, abs=1e-12)
        assert step_values[0] == buckets[0][0] and step_values[-1] == buckets[-1][1]
        assert step_values == sorted(step_values)


def test_histograms_rebinned_to_a_common_range(client) -> None:
    body = client.get("/api/histograms?run=train&tag=weights").get_json()
    assert len(body["edges"]) == 31 and body["edges"][0] == body["min"]
    assert body["edges"][-1] == body["max"]
    for counts, total in zip(body["counts"], body["totals"]):
        assert len(counts) == 30 and sum(counts) == pytest.approx(total) and total == 500
    legacy = client.get("/api/histograms?run=torch_style&tag=hist").get_json()
    assert all(sum(c) == pytest.approx(300) for c in legacy["counts"])


def test_rebin_keeps_mass_where_it_was() -> None:
    buckets = clean_buckets(np.array([[0.0, 1.0, 10.0], [1.0, 3.0, 20.0]]))
    counts = rebin(buckets, 0.0, 3.0, 3)
    assert counts.tolist() == pytest.approx([10.0, 10.0, 10.0])


@pytest.mark.parametrize(
    "buckets",
    [
        np.zeros((0, 3)),
        np.array([[1.0, 1.0, 5.0]]),
        np.array([[2.0, 1.0, 3.0]]),
        np.array([[float("nan"), 1.0, 3.0], [1.0, 2.0, 1.0]]),
        np.array([[0.0, 1.0, 0.0]]),
        np.array([[0.0, 1.0, -4.0], [1.0, 2.0, 2.0]]),
        np.column_stack([np.arange(1e6), np.arange(1e6) + 1, np.ones(1000000)]),
    ],
)
def test_degenerate_histograms_never_fail(tmp_path: Path, make_app, buckets: np.ndarray) -> None:
    clean = clean_buckets(buckets)
    assert len(percentiles(clean)) == len(BASIS_POINTS)
    from kboard.tfevents.protos import double_tensor  # the writer's own tensor builder

    value = summary_pb2.Summary.Value(tag="h", tensor=double_tensor(buckets))
    value.metadata.plugin_data.plugin_name = "histograms"
    write_events(
        tmp_path / "run" / "events.out.tfevents.1",
        [event_pb2.Event(step=0, wall_time=1.0, summary=summary_pb2.Summary(value=[value]))],
    )
    response = make_app(tmp_path).test_client().get("/api/histograms?run=run&tag=h")
    assert response.status_code == 200
    body = json.loads(response.get_data(as_text=True))
    assert len(body["percentiles"][0]) == len(BASIS_POINTS)


@pytest.fixture()
def text_client(tmp_path: Path, make_app):
    with SummaryWriter(str(tmp_path / "run")) as writer:
        writer.add_text("md", "| a | b |\n|---|---|\n| 1 | 2 |\n\n```\ncode()\n```", 0)
        writer.add_text(
            "evil",
            "see <script>alert(1)</script> [x](javascript:alert(1)) "
            "<img src=x onerror=alert(1)> [d](data:text/html,hi) [ok](https://e.org)",
            0,
        )
        writer.add_text("long", "x" * 50_000, 0)
    tf = pytest.importorskip("tensorflow")
    tf_writer = tf.summary.create_file_writer(str(tmp_path / "tf"))
    with tf_writer.as_default():
        tf.summary.text("table", tf.constant([["a", "b"], ["**c**", "d"]]), step=0)
    tf_writer.close()
    return make_app(tmp_path).test_client()


def test_markdown_rendered(text_client) -> None:
    html = text_client.get("/api/text?run=run&tag=md").get_json()["entries"][0]["html"]
    assert "<table>" in html and "<th>a</th>" in html and "<pre><code>code()" in html


def test_hostile_text_is_inert(text_client) -> None:
    html = text_client.get("/api/text?run=run&tag=evil").get_json()["entries"][0]["html"]
    # Refused links stay as plain text ("javascript:" may be read, never followed).
    assert "<script" not in html and "onerror" not in html
    assert 'href="javascript:' not in html and 'href="data:' not in html
    assert 'href="https://e.org"' in html


def test_two_dimensional_text_is_a_table(text_client) -> None:
    html = text_client.get("/api/text?run=tf&tag=table").get_json()["entries"][0]["html"]
    assert html.count("<tr>") == 2 and "<strong>c</strong>" in html


def test_long_text_is_capped_with_a_full_view(text_client) -> None:
    entry = text_client.get("/api/text?run=run&tag=long").get_json()["entries"][0]
    assert entry["truncated"] and len(entry["html"]) < 25_000
    full = text_client.get("/api/text?run=run&tag=long&step=0&full=1").get_json()["entries"][0]
    assert not full["truncated"] and full["html"].count("x") == 50_000


def test_keras_model_config_as_a_layer_tree(keras_logdir: Path, make_app) -> None:
    client = make_app(keras_logdir).test_client()
    assert list(client.get("/api/tags/model").get_json()["tags"]["train"]) == ["keras"]
    model = client.get("/api/model?run=train&tag=keras").get_json()["model"]
    assert (model["name"], model["class"], model["source"]) == (
        "outer",
        "Functional",
        "keras_config",
    )
    names = [layer["name"] for layer in model["layers"]]
    assert names[-2:] == ["first", "inner"]
    first = model["layers"][names.index("first")]
    assert first["settings"]["units"] == "8" and first["input_shape"] == "(None, 3)"
    inner = model["layers"][names.index("inner")]
    assert [(c["class"], c["settings"].get("activation")) for c in inner["layers"]][-2:] == [
        ("Dense", "relu"),
        ("Dense", "linear"),
    ]


def test_kboard_model_summary(tmp_path: Path, make_app) -> None:
    summary = {
        "format": "kboard.model_summary/1",
        "name": "m",
        "class": "Sequential",
        "total_params": 42,
        "trainable_params": 40,
        "non_trainable_params": 2,
        "layers": [
            {
                "name": "d",
                "class": "Dense",
                "output_shape": "(None, 2)",
                "params": 42,
                "trainable": True,
                "config": {"units": 2},
                "layers": [],
            }
        ],
        "text": "Model: m",
    }
    from kboard.tfevents.protos import string_tensor

    value = summary_pb2.Summary.Value(
        tag="model", tensor=string_tensor([json.dumps(summary).encode()], [])
    )
    value.metadata.plugin_data.plugin_name = "kboard_model_summary"
    write_events(
        tmp_path / "run" / "events.out.tfevents.1",
        [event_pb2.Event(step=0, wall_time=1.0, summary=summary_pb2.Summary(value=[value]))],
    )
    model = make_app(tmp_path).test_client().get("/api/model?run=run&tag=model").get_json()["model"]
    assert (model["total_params"], model["trainable_params"], model["non_trainable_params"]) == (
        42,
        40,
        2,
    )
    assert model["layers"][0] | {"settings": None} == {
        "name": "d",
        "class": "Dense",
        "settings": None,
        "input_shape": None,
        "output_shape": "(None, 2)",
        "params": 42,
        "trainable": True,
        "layers": [],
    }


def test_unknown_things_are_404(client) -> None:
    for path in (
        "/api/images?run=train&tag=nope",
        "/api/histograms?run=nope&tag=weights",
        "/api/text?run=train&tag=nope",
        "/api/model?run=train&tag=nope",
    ):
        response = client.get(path)
        assert response.status_code == 404 and response.get_json()["error"], path
