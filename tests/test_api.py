"""kboard's JSON API and the server's security rules, through real HTTP requests."""

from __future__ import annotations

import json
import math
import re
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from kboard.downsample import minmax_indices

from .conftest import STEPS, scalar_event, write_events


def test_runs_are_listed_with_start_times(client) -> None:
    body = client.get("/api/runs").get_json()
    names = [r["name"] for r in body["runs"]]
    assert sorted(names) == ["eval", "kboard_writer", "torch_style", "train"]
    assert all(r["start_time"] > 0 for r in body["runs"])
    assert body["problems"] == [] and body["generation"] >= 1


def test_scalar_tags(client) -> None:
    tags = client.get("/api/tags/scalars").get_json()["tags"]
    assert set(tags["train"]) == {"loss", "metrics/accuracy"}
    assert tags["torch_style"]["loss"]["displayName"] == "loss"
    assert client.get("/api/tags/nonsense").status_code == 404


def test_scalars_for_several_runs(client) -> None:
    body = client.get("/api/scalars?tag=loss&run=train&run=eval&run=missing").get_json()
    assert [s["run"] for s in body["series"]] == ["train", "eval"]
    train = body["series"][0]
    assert train["steps"] == list(range(STEPS)) and train["total"] == STEPS
    assert train["values"][0] == pytest.approx(1.0) and not train["downsampled"]
    every = client.get("/api/scalars?tag=loss").get_json()
    assert {s["run"] for s in every["series"]} == {"train", "eval", "torch_style", "kboard_writer"}


def test_non_finite_values_are_valid_json(client) -> None:
    response = client.get("/api/scalars?tag=odd&run=kboard_writer")
    text = response.get_data(as_text=True)
    json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c} in JSON"))
    values = response.get_json()["series"][0]["values"]
    assert values[:4] == ["NaN", "Infinity", "-Infinity", 1.5]


@pytest.mark.parametrize(
    "query",
    ["", "tag=loss&x=sideways", "tag=loss&points=1", "tag=loss&xmin=abc", "tag=loss&xmax=nan"],
)
def test_bad_scalar_requests_are_400(client, query: str) -> None:
    response = client.get(f"/api/scalars?{query}")
    assert response.status_code == 400 and "error" in response.get_json()


def test_unknown_tag_is_a_json_404(client) -> None:
    response = client.get("/api/scalars?tag=nope")
    assert response.status_code == 404 and response.get_json()["error"]
    assert client.get("/no/such/route").get_json()["error"]


def test_downsampling_keeps_extremes_and_non_finite(tmp_path: Path, make_app) -> None:
    values = np.sin(np.arange(20_000) / 300.0)
    values[12_345] = 50.0  # a spike
    values[777] = float("nan")
    events = [scalar_event("big", s, float(v)) for s, v in enumerate(values)]
    write_events(tmp_path / "run" / "events.out.tfevents.1", events)
    client = make_app(tmp_path).test_client()
    series = client.get("/api/scalars?tag=big&points=500").get_json()["series"][0]
    assert series["downsampled"] and series["total"] == 20_000 and series["count"] <= 520
    assert 12_345 in series["steps"] and 777 in series["steps"]
    assert series["steps"][0] == 0 and series["steps"][-1] == 19_999
    zoomed = client.get("/api/scalars?tag=big&points=500&xmin=1000&xmax=1200").get_json()
    steps = zoomed["series"][0]["steps"]
    assert steps == list(range(999, 1202))  # full resolution, one point beyond each edge


def test_minmax_indices_matches_brute_force() -> None:
    rng = np.random.default_rng(3)
    y = rng.normal(size=10_001)
    x = np.arange(len(y), dtype=float)
    idx = minmax_indices(x, y, None, None, 100)
    edges = np.linspace(0, len(y), 51).astype(int)
    for a, b in zip(edges[:-1], edges[1:]):
        assert a + int(np.argmin(y[a:b])) in idx and a + int(np.argmax(y[a:b])) in idx


def test_x_modes(client) -> None:
    rel = client.get("/api/scalars?tag=loss&run=train&x=relative").get_json()["series"][0]
    wall = client.get("/api/scalars?tag=loss&run=train&x=wall_time").get_json()["series"][0]
    assert rel["steps"] == wall["steps"] == list(range(STEPS))


def test_security_headers_on_every_response(client) -> None:
    for path in ("/api/runs", "/data/runs", "/api/scalars?tag=nope", "/"):
        response = client.get(path)
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-eval" not in csp


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("localhost:6006", 200),
        ("127.0.0.1", 200),
        ("[::1]:6006", 200),
        ("evil.example", 403),
        ("localhost.evil.example:6006", 403),
    ],
)
def test_dns_rebinding_is_refused(client, host: str, status: int) -> None:
    assert client.get("/api/runs", headers={"Host": host}).status_code == status


def test_other_host_only_when_asked(make_app, mixed_logdir: Path) -> None:
    lan = make_app(mixed_logdir, host="192.0.2.7").test_client()
    assert lan.get("/api/runs", headers={"Host": "192.0.2.7:6006"}).status_code == 200
    assert lan.get("/api/runs", headers={"Host": "evil.example"}).status_code == 403


def test_page_and_plotly_are_served_locally(client) -> None:
    page = client.get("/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "<script>" not in html and "cdn" not in html.lower()
    tag = next(part for part in html.split("<script") if "plotly" in part)
    src = re.search(r' src="([^"]+)"', tag).group(1)
    full = re.search(r' data-full="([^"]+)"', tag).group(1)
    assert src.startswith("/vendor/plotly-basic-") and full.startswith("/vendor/plotly-")
    sizes = []
    for url in (src, full):  # the partial bundle the page loads, the full one on demand
        js = client.get(url)
        assert js.status_code == 200 and js.mimetype == "text/javascript" and len(js.data) > 1e6
        assert "immutable" in js.headers["Cache-Control"]
        sizes.append(len(js.data))
        js.close()
    assert sizes[0] < sizes[1] / 3
    assert client.get("/vendor/plotly-0.0.0.min.js").status_code == 404
    assert client.get("/vendor/plotly-basic-0.0.0.min.js").status_code == 404


def test_stream_announces_changes(tmp_path: Path, make_app) -> None:
    path = tmp_path / "run" / "events.out.tfevents.1"
    write_events(path, [scalar_event("loss", 0, 1.0)])
    app = make_app(tmp_path)
    state = app.extensions["kboard"]
    response = app.test_client().get("/api/stream", buffered=False)
    chunks = response.response
    assert next(chunks).startswith(b"retry:")
    first = next(chunks).decode()
    assert first.startswith("event: generation\n")
    generation = json.loads(first.split("data: ")[1])["generation"]

    def write_later() -> None:
        time.sleep(0.2)
        write_events(path, [scalar_event("loss", 1, 2.0)], append=True)
        state.reader.reload()

    threading.Thread(target=write_later).start()
    started = time.monotonic()
    update = next(chunks).decode()
    assert time.monotonic() - started < 5
    assert json.loads(update.split("data: ")[1])["generation"] > generation
    response.close()


def test_live_reload_by_watching(tmp_path: Path, make_app) -> None:
    path = tmp_path / "run" / "events.out.tfevents.1"
    write_events(path, [scalar_event("loss", 0, 1.0)])
    app = make_app(tmp_path, live=True, reload_interval=60)  # only the watcher can be this quick
    client = app.test_client()
    write_events(path, [scalar_event("loss", 1, 2.0)], append=True)
    deadline = time.monotonic() + 2
    steps: list[int] = []
    while time.monotonic() < deadline:
        steps = client.get("/api/scalars?tag=loss").get_json()["series"][0]["steps"]
        if steps == [0, 1]:
            break
        time.sleep(0.05)
    assert steps == [0, 1]


def test_live_reload_by_polling(tmp_path: Path, make_app) -> None:
    path = tmp_path / "run" / "events.out.tfevents.1"
    write_events(path, [scalar_event("loss", 0, 1.0)])
    app = make_app(tmp_path, live=True, watch=False, reload_interval=0.2)
    client = app.test_client()
    write_events(tmp_path / "new" / "events.out.tfevents.1", [scalar_event("x", 0, 1.0)])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(client.get("/api/runs").get_json()["runs"]) < 2:
        time.sleep(0.05)
    assert sorted(r["name"] for r in client.get("/api/runs").get_json()["runs"]) == ["new", "run"]


def test_problems_are_reported(tmp_path: Path, make_app) -> None:
    write_events(tmp_path / "ok" / "events.out.tfevents.1", [scalar_event("a", 0, 1.0)])
    bad = tmp_path / "bad" / "events.out.tfevents.1"
    bad.parent.mkdir()
    bad.write_bytes(b"<html>not events</html>" * 4)
    body = make_app(tmp_path).test_client().get("/api/runs").get_json()
    assert [p["kind"] for p in body["problems"]] == ["length_crc"]
    assert body["problems"][0]["run"] == "bad" and "ok" in [r["name"] for r in body["runs"]]
    assert all(math.isfinite(r["start_time"]) for r in body["runs"] if r["start_time"])


def test_zoomed_range_that_fits_is_not_called_downsampled(client) -> None:
    full = client.get("/api/scalars?tag=loss&run=train&xmin=1&xmax=3&points=10").get_json()
    series = full["series"][0]
    assert series["steps"] == [0, 1, 2, 3, 4] and not series["downsampled"]


def test_tag_known_but_not_in_requested_runs_is_an_empty_answer(client) -> None:
    body = client.get("/api/scalars?tag=loss&run=nope").get_json()
    assert body == {"tag": "loss", "series": []}
