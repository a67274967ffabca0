"""The hparams routes answer what a real TensorBoard answers on the same logdirs.

Logdirs written by TensorBoard's ``hp`` API (with Keras under ``hp.KerasCallback``), by
``tf.summary`` plus ``hp.hparams`` (no config: TensorBoard infers it), by torch's
``add_hparams``, and the same by kboard's writer; one real ``tensorboard`` per logdir.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from bench.server import Server

from . import hparams_logs

TB_TIMEOUT = 90
TB_LIFETIME = 900
ALL_STATUSES = ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]
LOGDIRS = ("keras", "plain_tf", "plain_kb", "torch", "torch_kb")


@pytest.fixture(scope="module")
def logdirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    pytest.importorskip("tensorflow")
    from torch.utils.tensorboard import SummaryWriter as TorchWriter

    from kboard import SummaryWriter

    root = tmp_path_factory.mktemp("hparams_compat")
    return {
        "keras": hparams_logs.write_hp_keras(root / "keras"),
        "plain_tf": hparams_logs.write_hp_plain(root / "plain_tf"),
        "plain_kb": hparams_logs.write_kboard_plain(root / "plain_kb"),
        "torch": hparams_logs.write_torch_style(root / "torch", TorchWriter),
        "torch_kb": hparams_logs.write_torch_style(root / "torch_kb", SummaryWriter),
    }


@pytest.fixture(scope="module")
def servers(logdirs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory):
    """A real TensorBoard per logdir (started together), and a kboard test client for each."""
    from kboard.server.app import create_app

    with contextlib.ExitStack() as stack:
        # Started together, stopped at once (SIGKILL: nothing to save): each takes seconds.
        urls = {}
        for name, logdir in logdirs.items():
            cmd = [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir)]
            cmd += ["--host", "127.0.0.1", "--port", "0", "--load_fast", "false"]
            cmd += ["--reload_interval", "0"]
            log = tmp_path_factory.mktemp("tb") / "tensorboard.log"
            server = Server(cmd, log, stop_signal=signal.SIGKILL)
            stack.callback(server.stop)
            watchdog = threading.Timer(TB_LIFETIME, server.stop)
            watchdog.daemon = True
            watchdog.start()
            stack.callback(watchdog.cancel)
            urls[name] = server
        for server in urls.values():
            server.wait_for_url(TB_TIMEOUT)
        clients = {
            name: create_app(str(logdir), live=False).test_client()
            for name, logdir in logdirs.items()
        }
        deadline = time.monotonic() + TB_TIMEOUT
        for name, server in urls.items():
            # TensorBoard loads in the background: wait until it shows every session's metrics.
            expected = ours(clients[name], "session_groups", frontend_request())
            while time.monotonic() < deadline:
                with contextlib.suppress(OSError):
                    if theirs(server.url, "session_groups", frontend_request()) == expected:
                        break
                time.sleep(0.3)
            else:
                pytest.fail(f"tensorboard did not load {name} in time:\n" + server.output())
        yield {name: (server.url, clients[name]) for name, server in urls.items()}


def frontend_request(**extra) -> dict:
    """A session-groups request as TensorBoard's page sends it."""
    return {
        "experimentName": "",
        "allowedStatuses": ALL_STATUSES,
        "colParams": [],
        "startIndex": 0,
        "sliceSize": 100,
        **extra,
    }


def normalise(answer):
    """Sort the distinct values TensorBoard lists in set order (string domains)."""
    if isinstance(answer, dict):
        out = {k: normalise(v) for k, v in answer.items()}
        if isinstance(out.get("domainDiscrete"), list):
            out["domainDiscrete"] = sorted(out["domainDiscrete"], key=repr)
        return out
    if isinstance(answer, list):
        return [normalise(v) for v in answer]
    return answer


def theirs(base: str, route: str, body: dict, query: str = ""):
    """POST ``body`` to TensorBoard's hparams route."""
    req = urllib.request.Request(
        f"{base}/data/plugin/hparams/{route}{query}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as response:
        text = response.read().decode()
    return (
        normalise(json.loads(text))
        if response.headers["Content-Type"].startswith("application/json")
        else text
    )


def ours(client, route: str, body: dict, query: str = ""):
    response = client.post(f"/data/plugin/hparams/{route}{query}", data=json.dumps(body))
    assert response.status_code == 200, response.get_data(as_text=True)
    if response.mimetype == "application/json":
        return normalise(response.get_json())
    return response.get_data(as_text=True)


EXPERIMENT_REQUESTS = [
    {"experimentName": ""},
    {"experimentName": "", "includeMetrics": False},
    {"experimentName": "", "hparamsLimit": 2},
]

METRIC = {"tag": "METRIC"}  # replaced by each logdir's loss metric
LOSS_METRICS = {
    "keras": {"tag": "epoch_loss", "group": "validation"},
    "plain_tf": {"tag": "loss"},
    "plain_kb": {"tag": "loss"},
    "torch": {"tag": "hparam/loss"},
    "torch_kb": {"tag": "hparam/loss"},
}
SESSION_REQUESTS = {
    "plain": frontend_request(),
    "sort_hparam_desc": frontend_request(colParams=[{"hparam": "lr", "order": "ORDER_DESC"}]),
    "sort_metric_asc": frontend_request(colParams=[{"metric": METRIC, "order": "ORDER_ASC"}]),
    "filter_interval": frontend_request(
        colParams=[{"hparam": "lr", "filterInterval": {"minValue": 0.005, "maxValue": 0.5}}]
    ),
    "filter_discrete": frontend_request(
        colParams=[{"hparam": "optimizer", "filterDiscrete": ["sgd"], "order": "ORDER_ASC"}]
    ),
    "filter_regexp": frontend_request(colParams=[{"hparam": "optimizer", "filterRegexp": "^a"}]),
    "metric_filter_missing": frontend_request(
        colParams=[
            {
                "metric": METRIC,
                "filterInterval": {"minValue": 0, "maxValue": 0.6},
                "excludeMissingValues": True,
            }
        ]
    ),
    "aggregate_max": frontend_request(aggregationType="AGGREGATION_MAX", aggregationMetric=METRIC),
    "aggregate_median": frontend_request(
        aggregationType="AGGREGATION_MEDIAN", aggregationMetric=METRIC
    ),
    "include_some": frontend_request(
        colParams=[{"hparam": "lr", "includeInResult": True}, {"hparam": "units"}]
    ),
    "statuses": frontend_request(allowedStatuses=["STATUS_SUCCESS"]),
    "slice": frontend_request(startIndex=1, sliceSize=2, includeMetrics=False),
}


@pytest.mark.parametrize("logdir", LOGDIRS)
def test_experiment_as_tensorboard(servers, logdir: str) -> None:
    url, client = servers[logdir]
    for body in EXPERIMENT_REQUESTS:
        assert ours(client, "experiment", body) == theirs(url, "experiment", body), body
    # The GET form, with the request in the query.
    query = "?request=" + urllib.parse.quote(json.dumps({"experimentName": ""}))
    response = client.get("/data/plugin/hparams/experiment" + query)
    assert normalise(response.get_json()) == theirs(url, "experiment", {})
    assert response.get_json()["hparamInfos"], "every logdir here has hyperparameters"


@pytest.mark.parametrize("logdir", LOGDIRS)
def test_session_groups_as_tensorboard(servers, logdir: str) -> None:
    url, client = servers[logdir]
    for name, request in SESSION_REQUESTS.items():
        body = for_logdir(request, logdir)
        assert ours(client, "session_groups", body) == theirs(url, "session_groups", body), name


@pytest.mark.parametrize("logdir", ["keras", "plain_tf", "torch_kb"])
@pytest.mark.parametrize("fmt", ["json", "csv", "latex"])
def test_download_data_as_tensorboard(servers, logdir: str, fmt: str) -> None:
    url, client = servers[logdir]
    columns = len(ours(client, "experiment", {})["hparamInfos"]) + 3
    visibility = [True] * (columns - 1) + [False]
    query = f"?format={fmt}&columnsVisibility=" + urllib.parse.quote(json.dumps(visibility))
    body = frontend_request(colParams=[{"hparam": "lr", "order": "ORDER_ASC"}])
    assert ours(client, "download_data", body, query) == theirs(url, "download_data", body, query)


def for_logdir(body: dict, logdir: str) -> dict:
    """A request with ``METRIC`` replaced by the logdir's loss metric."""
    text = json.dumps(body).replace(json.dumps(METRIC), json.dumps(LOSS_METRICS[logdir]))
    return json.loads(text)


def _without_times(answer):
    """An answer without what differs between two writers: wall times and session times."""
    if isinstance(answer, dict):
        return {
            k: _without_times(v)
            for k, v in answer.items()
            if k not in ("wallTimeSecs", "startTimeSecs", "endTimeSecs")
        }
    if isinstance(answer, list):
        return [_without_times(v) for v in answer]
    return answer


@pytest.mark.parametrize(
    ("reference", "kboard_written"), [("plain_tf", "plain_kb"), ("torch", "torch_kb")]
)
def test_tensorboard_serves_kboard_hparams_as_its_own(servers, reference, kboard_written) -> None:
    """What kboard's writer wrote, TensorBoard serves as what TF or torch wrote."""
    ref_url, _ = servers[reference]
    kb_url, _ = servers[kboard_written]
    assert theirs(kb_url, "experiment", {}) == theirs(ref_url, "experiment", {})
    for name, request in SESSION_REQUESTS.items():
        body = for_logdir(request, reference)
        ref = _without_times(theirs(ref_url, "session_groups", body))
        assert _without_times(theirs(kb_url, "session_groups", body)) == ref, name


def test_bad_requests_are_400(servers) -> None:
    _, client = servers["plain_tf"]
    assert client.get("/data/plugin/hparams/experiment").status_code == 400
    assert client.post("/data/plugin/hparams/session_groups", data="{nope").status_code == 400
    body = frontend_request(colParams=[{"hparam": "lr", "filterRegexp": "x"}])
    response = client.post("/data/plugin/hparams/session_groups", data=json.dumps(body))
    assert response.status_code == 400  # a regexp over numbers, as TensorBoard refuses it
    response = client.post("/data/plugin/hparams/download_data?format=csv", data="{}")
    assert response.status_code == 400
