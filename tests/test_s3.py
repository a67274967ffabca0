"""Logdirs in an object store: moto's S3 server on loopback, through a fault-injecting proxy."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from click.testing import CliRunner

from bench.s3proxy import Fault, FaultProxy
from kboard.cache import RunCache
from kboard.cli import cli
from kboard.ingest import LogdirReader
from kboard.storage import MissingBackend, redact, redact_text, storage_for
from kboard.tfevents.events import Kind
from tests.conftest import scalar_event, write_events

BUCKET = "kboard-test"


@pytest.fixture(scope="module")
def s3(s3_endpoint: str):
    """The S3 filesystem of the loopback server, with the test bucket."""
    import fsspec

    fs = fsspec.filesystem("s3", skip_instance_cache=True, use_listings_cache=False)
    if not fs.exists(BUCKET):
        fs.mkdir(BUCKET)
    return fs


@pytest.fixture()
def proxy(s3_endpoint: str) -> Iterator[FaultProxy]:
    proxy = FaultProxy(s3_endpoint)
    yield proxy
    proxy.close()


def through(proxy: FaultProxy, **extra) -> dict:
    """Storage options that send a reader's requests through ``proxy``, with quick timeouts."""
    return {
        "endpoint_url": proxy.url,
        "config_kwargs": {
            "read_timeout": 1,
            "connect_timeout": 1,
            "retries": {"total_max_attempts": 1},
        },
        **extra,
    }


def quick(reader: LogdirReader, retries: int = 1) -> LogdirReader:
    """Make the reader's stores retry fast (the backend's own retries: none)."""
    for storage in reader.storages.values():
        if storage.remote:
            storage.retries = retries
            storage.retry_base_seconds = 0.01
            storage.fs.retries = 1
    return reader


def upload(s3, local: Path, prefix: str) -> str:
    """Copy a local logdir to ``prefix`` in the bucket (object for file); return its URL."""
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        s3.put_file(str(path), f"{BUCKET}/{prefix}/{path.relative_to(local).as_posix()}")
    return f"s3://{BUCKET}/{prefix}"


# -- the same logs, on disk and in a bucket ---------------------------------------------------
def every_data_path(app, client) -> list[str]:
    """A request for every GET route of /api and /data, for every run and tag of every kind."""
    pairs = set()
    for kind in Kind:
        for run, tags in client.get(f"/api/tags/{kind.value}").get_json()["tags"].items():
            pairs.update((run, tag) for tag in tags)
    assert len(pairs) > 10
    paths = []
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or set()) or not rule.rule.startswith(("/api", "/data")):
            continue
        if rule.rule in ("/api/stream", "/api/status"):
            continue
        kinds = [k.value for k in Kind] if "<kind>" in rule.rule else [""]
        for kind in kinds:
            path = re.sub(r"<(?:\w+:)?kind>", kind, rule.rule)
            paths.append(path)
            for run, tag in sorted(pairs):
                query = f"run={quote(run)}&tag={quote(tag)}&runs={quote(run)}&step=0&sample=0"
                paths.append(f"{path}?{query}")
                paths.append(f"{path}?{query}&format=csv&overwritten=1")
    return paths


def test_a_bucket_reads_like_the_same_logdir_on_disk(s3, make_app, mixed_logdir: Path) -> None:
    url = upload(s3, mixed_logdir, "mixed")
    local = make_app(mixed_logdir)
    remote = make_app(url)
    ours, theirs = local.test_client(), remote.test_client()
    paths = every_data_path(local, ours)
    assert len(paths) > 200
    for path in paths:
        a, b = ours.get(path), theirs.get(path)
        assert (a.status_code, a.mimetype) == (b.status_code, b.mimetype), path
        body = b.get_data().replace(url.encode(), str(mixed_logdir).encode())
        assert a.get_data() == body, path
    status = theirs.get("/api/status").get_json()
    [stats] = status["storage"]
    assert stats["url"] == url and stats["list_requests"] == 1 and stats["bytes_read"] > 0
    assert ours.get("/api/status").get_json()["storage"] == []


def test_read_functions_and_cli_take_urls(s3, mixed_logdir: Path) -> None:
    pd = pytest.importorskip("pandas")
    url = upload(s3, mixed_logdir, "mixed_cli")
    import kboard

    expected = kboard.read_scalars(str(mixed_logdir))
    pd.testing.assert_frame_equal(kboard.read_scalars(url + "/"), expected)  # a trailing / too
    runner = CliRunner()
    local = runner.invoke(cli, ["inspect", "--logdir", str(mixed_logdir)])
    remote = runner.invoke(cli, ["inspect", "--logdir_spec", f"m:{url}"])
    assert remote.exit_code == local.exit_code == 0, remote.output
    assert "run m/train" in remote.output
    assert re.search(
        r"storage s3://kboard-test/mixed_cli: \d+ requests \(1 list, \d+ get", remote.output
    )
    exported = runner.invoke(cli, ["export", "--logdir", url, "--tags", "loss"])
    assert (
        exported.output
        == runner.invoke(cli, ["export", "--logdir", str(mixed_logdir), "--tags", "loss"]).output
    )


def test_a_missing_backend_is_one_line_naming_the_extra() -> None:
    pytest.importorskip("s3fs")
    try:
        import gcsfs  # noqa: F401
    except ImportError:
        with pytest.raises(MissingBackend, match=r'pip install "kboard\[gcs\]"'):
            storage_for("gs://bucket/logs")
    result = CliRunner().invoke(cli, ["inspect", "--logdir", "nosuchproto://x"])
    assert result.exit_code == 1 and "unknown storage protocol nosuchproto://" in result.output


# -- writing to a bucket, read live ---------------------------------------------------------
def test_every_flushed_point_is_served_while_a_writer_uploads(
    s3, make_app, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import kboard.summary
    import kboard.writer
    from kboard import SummaryWriter

    monkeypatch.setattr(kboard.writer, "ROLL_BYTES", 600)  # several objects, rolled
    url = f"s3://{BUCKET}/live"
    writer = SummaryWriter(f"{url}/torch_style", flush_secs=3600)
    tf_style = kboard.summary.create_file_writer(f"{url}/tf_style", flush_millis=3_600_000)
    writer.add_scalar("loss", 0.0, 0)
    writer.flush()
    app = make_app(url, live=True, reload_interval=0.1)
    client = app.test_client()
    for step in range(1, 12):
        writer.add_scalar("loss", step / 2, step)
        with tf_style.as_default(step=step):
            kboard.summary.scalar("acc", step / 10)
        writer.flush()
        deadline = time.monotonic() + 10
        while True:
            got = client.get("/api/scalars?tag=loss&runs=torch_style").get_json()
            got_tf = client.get("/api/scalars?tag=acc&runs=tf_style").get_json()
            if (got.get("series") or [{}])[0].get("total") == step + 1 and (
                got_tf.get("series") or [{}]
            )[0].get("total") == step:
                break
            assert time.monotonic() < deadline, f"step {step} not served"
            time.sleep(0.05)
        assert got["series"][0]["values"][-1] == step / 2
    writer.close()
    tf_style.close()
    objects = s3.find(f"{BUCKET}/live/torch_style")
    assert len(objects) > 1  # rolled to new objects, all read in order
    # TensorBoard reads the objects (downloaded) as kboard reads them in the bucket.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util.tensor_util import make_ndarray

    for name in objects:
        s3.get_file(name, str(tmp_path / name.rsplit("/", 1)[1]))
    acc = EventAccumulator(str(tmp_path), size_guidance={"tensors": 0})  # every point
    acc.Reload()
    tb = [(e.step, make_ndarray(e.tensor_proto).item()) for e in acc.Tensors("loss")]
    ours = client.get("/api/scalars?tag=loss&runs=torch_style").get_json()["series"][0]
    assert tb == list(zip(ours["steps"], ours["values"], strict=True))


def test_a_failed_upload_loses_nothing(s3, proxy: FaultProxy) -> None:
    from kboard import SummaryWriter

    url = f"s3://{BUCKET}/upload_faults/run"
    writer = SummaryWriter(url, flush_secs=3600, storage_options=through(proxy))
    writer.file_writer._file._sink.fs.retries = 1
    writer.add_scalar("loss", 1.0, 0)
    proxy.add(Fault(lambda m, p: m == "PUT", "error", 403, "AccessDenied"))
    with pytest.raises(OSError, match="access denied"):
        writer.flush()
    proxy.clear()
    writer.add_scalar("loss", 2.0, 1)
    writer.close()
    reader = LogdirReader(f"s3://{BUCKET}/upload_faults")
    reader.reload()
    assert reader.store.scalars("run", "loss").values.tolist() == [1.0, 2.0]


# -- cost: warm starts and idle reloads -----------------------------------------------------
def test_a_warm_start_fetches_no_event_data(s3, proxy: FaultProxy, tmp_path: Path) -> None:
    for run in range(3):
        write_events(
            tmp_path / "logs" / f"run{run}" / "events.out.tfevents.1",
            [scalar_event("loss", step, step / 3) for step in range(50)],
        )
    url = upload(s3, tmp_path / "logs", "warm")
    cache = RunCache(str(tmp_path / "cache"))
    cold = LogdirReader(url, cache=cache, storage_options=through(proxy))
    cold.reload()
    assert cold.save_cache(min_new_bytes=0) == 3
    assert proxy.object_gets() == 3
    proxy.clear()
    warm = LogdirReader(
        url, cache=RunCache(str(tmp_path / "cache")), storage_options=through(proxy)
    )
    report = warm.reload()
    assert sorted(report.runs_from_cache) == ["run0", "run1", "run2"]
    assert proxy.object_gets() == 0 and proxy.count() == 1  # one listing, no GET of data
    [stats] = warm.io_stats()
    assert (stats.get_requests, stats.bytes_read) == (0, 0)
    assert warm.store.scalars("run1", "loss").steps.tolist() == list(range(50))
    # Growth after the warm start is read from the offset, checked against the cached tail.
    grows_from_the_offset(warm, tmp_path / "logs", lambda: upload(s3, tmp_path / "logs", "warm"))


def grows_from_the_offset(reader: LogdirReader, logs: Path, upload_again) -> None:
    """Append a point to ``logs``' run1, upload it again: only the new bytes are read."""
    path = logs / "run1" / "events.out.tfevents.1"
    steps = len(reader.store.scalars("run1", "loss").steps)
    write_events(path, [scalar_event("loss", steps, 1.0)], append=True)
    upload_again()
    report = reader.reload()
    assert report.runs_reread == [] and report.bytes_read < 200
    assert reader.store.scalars("run1", "loss").steps.tolist() == list(range(steps + 1))


def test_an_idle_reload_over_many_files_costs_one_listing(
    s3, proxy: FaultProxy, tmp_path: Path
) -> None:
    for run in range(100):
        write_events(
            tmp_path / "idle" / f"run{run:03d}" / "events.out.tfevents.1",
            [scalar_event("loss", 0, 1.0)],
        )
    url = upload(s3, tmp_path / "idle", "idle")
    reader = LogdirReader(url, storage_options=through(proxy))
    reader.reload()
    assert len(reader.store.runs()) == 100
    proxy.clear()
    before = reader.io_stats()[0].requests
    report = reader.reload()
    assert report.records == 0
    assert proxy.count() <= 5 and proxy.object_gets() == 0
    assert reader.io_stats()[0].requests - before == 1


# -- faults ---------------------------------------------------------------------------------
@pytest.fixture()
def two_prefixes(s3, tmp_path: Path) -> dict[str, str]:
    for name in ("ok", "other"):
        write_events(
            tmp_path / name / "run" / "events.out.tfevents.1",
            [scalar_event("loss", step, step / 4) for step in range(4)],
        )
    return {name: upload(s3, tmp_path / name, f"faults/{name}") for name in ("ok", "other")}


def test_throttling_resets_and_timeouts_are_retried(
    two_prefixes: dict[str, str], proxy: FaultProxy
) -> None:
    proxy.add(Fault(lambda m, p: "list-type" in p, "error", 503, "SlowDown", times=2))
    proxy.add(Fault(lambda m, p: m == "GET" and "list-type" not in p, "reset", times=1))
    proxy.add(Fault(lambda m, p: "other/run" in p and m == "GET", "delay", seconds=1.5, times=1))
    reader = quick(LogdirReader(two_prefixes, storage_options=through(proxy)), retries=3)
    reader.reload()
    assert reader.store.problems() == []
    assert sorted(reader.store.runs()) == ["ok/run", "other/run"]
    assert reader.store.scalars("other/run", "loss").values.tolist() == [0, 0.25, 0.5, 0.75]
    assert sum(s.retries for s in reader.io_stats()) >= 2


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (Fault(lambda m, p: "other" in p, "error", 403, "AccessDenied"), "access denied to"),
        (
            Fault(lambda m, p: "other" in p, "error", 403, "InvalidAccessKeyId"),
            "wrong credentials for",
        ),
        (
            Fault(lambda m, p: "other" in p, "error", 403, "SignatureDoesNotMatch"),
            "wrong credentials for",
        ),
        (Fault(lambda m, p: "other" in p, "error", 503, "SlowDown"), "throttled by the store"),
        (Fault(lambda m, p: "other" in p, "reset"), "store unreachable"),
        (Fault(lambda m, p: "other" in p, "delay", seconds=3), "store unreachable"),
    ],
    ids=["denied", "bad-key", "bad-secret", "throttled", "reset", "timeout"],
)
def test_a_failing_prefix_is_reported_and_the_rest_served(
    two_prefixes: dict[str, str],
    proxy: FaultProxy,
    make_app,
    fault: Fault,
    message: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    options = through(proxy, key="testing", secret="s3cr3t-value")
    reader = quick(LogdirReader(two_prefixes, storage_options=options))
    reader.reload()  # everything read once
    proxy.add(fault)
    with caplog.at_level(logging.WARNING, "kboard"):
        reader.reload()
    app = make_app(two_prefixes, reader=reader)
    listing = app.test_client().get("/api/runs").get_json()
    # Nothing already read is dropped; the fault is one line in the log and on the page.
    assert sorted(r["name"] for r in listing["runs"]) == ["ok/run", "other/run"]
    [problem] = listing["problems"]
    assert message in problem["message"] and "s3://kboard-test/faults/other" in problem["message"]
    assert "\n" not in problem["message"] and "s3cr3t" not in problem["message"]
    assert message in caplog.text
    if fault.code != "AccessDenied":  # another fault in its place: the page says the new one
        proxy.clear()
        proxy.add(Fault(lambda m, p: "other" in p, "error", 403, "AccessDenied"))
        reader.reload()
        [problem] = reader.store.problems()
        assert "access denied to" in problem.message
    proxy.clear()
    reader.reload()
    assert reader.store.problems() == []  # the fault is gone: so is the problem


def test_a_failed_read_keeps_what_was_read_and_is_tried_again(
    two_prefixes: dict[str, str], proxy: FaultProxy, s3, tmp_path: Path
) -> None:
    reader = quick(LogdirReader(two_prefixes, storage_options=through(proxy)))
    reader.reload()
    write_events(
        tmp_path / "other" / "run" / "events.out.tfevents.1",
        [scalar_event("loss", 4, 1.0)],
        append=True,
    )
    upload(s3, tmp_path / "other", "faults/other")
    proxy.add(Fault(lambda m, p: m == "GET" and "other/run" in p, "error", 403, "AccessDenied"))
    reader.reload()
    [problem] = reader.store.problems()
    assert problem.kind == "io" and problem.message.startswith("cannot read events.out.")
    assert "access denied to s3://kboard-test/faults/other" in problem.message
    assert reader.store.scalars("other/run", "loss").steps.tolist() == [0, 1, 2, 3]
    proxy.clear()
    reader.reload()
    assert reader.store.problems() == []
    assert reader.store.scalars("other/run", "loss").steps.tolist() == [0, 1, 2, 3, 4]


def test_no_credentials_is_said(
    two_prefixes: dict[str, str], proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance role either
    reader = quick(LogdirReader(two_prefixes["ok"], storage_options=through(proxy)))
    reader.reload()
    [problem] = reader.store.problems()
    assert problem.kind == "storage"
    assert problem.message.startswith("no credentials for s3://kboard-test/faults/ok")
    assert proxy.count() == 0  # refused before any request


def test_a_missing_bucket_is_said_and_other_logdirs_served(
    two_prefixes: dict[str, str], proxy: FaultProxy
) -> None:
    spec = f"ok:{two_prefixes['ok']},gone:s3://no-such-bucket/logs"
    result = CliRunner().invoke(
        cli,
        ["inspect", "--logdir_spec", spec, "--storage-option", f"endpoint_url={proxy.url}"],
    )
    assert result.exit_code == 3, result.output
    assert "run ok/run" in result.output
    assert "bucket no-such-bucket does not exist (s3://no-such-bucket/logs)" in result.output


def test_secrets_are_never_shown(two_prefixes: dict[str, str], proxy: FaultProxy) -> None:
    secret = "Sup3rSecretValue"
    proxy.add(Fault(lambda m, p: True, "error", 403, "SignatureDoesNotMatch"))
    result = CliRunner().invoke(
        cli,
        [
            "-v",
            "inspect",
            "--logdir",
            two_prefixes["ok"],
            "--storage-option",
            f"endpoint_url={proxy.url}",
            "--storage-option",
            f"secret={secret}",
            "--storage-option",
            "key=AKIAEXAMPLE",
        ],
    )
    assert result.exit_code == 3 and "wrong credentials" in result.output
    assert secret not in result.output and "AKIAEXAMPLE" not in result.output
    assert redact("https://user:pw@host/x?sig=abc") == "https://***@host/x?…"
    said = redact_text("cannot reach 'http://ak:sk@minio.lan:9000/b?X-Amz-Signature=s' now")
    assert said == "cannot reach 'http://***@minio.lan:9000/b?…' now"


def test_the_object_store_benchmark_runs_and_meets_its_targets(s3_endpoint: str) -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    args = ["--runs", "1", "--tags", "2", "--steps", "200", "--idle-files", "30"]
    result = subprocess.run(
        [sys.executable, "-m", "bench.s3", *args, "--write-points", "300", "--flush-every", "50"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=root,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warm start from the cache: 0 GETs of event data seen by the proxy, 0 counted" in (
        result.stdout
    )
    idle = re.search(r"idle files: (\d+) HTTP requests seen by the proxy", result.stdout)
    assert idle and int(idle.group(1)) <= 5, result.stdout


def test_a_remote_logdir_is_polled_every_30_s_and_less_while_idle() -> None:
    from kboard.server.live import LiveReloader

    local = LiveReloader(LogdirReader("."), watch=False)
    remote = LiveReloader(LogdirReader({"a": ".", "b": "memory://kboard-idle/logs"}))
    assert (local.interval, remote.interval) == (5.0, 30.0)
    waits = []
    for idle in range(6):
        remote.idle_reloads = idle
        waits.append(remote.next_wait())
    assert waits[0] == 30.0 and waits == sorted(waits) and waits[-1] == 120.0
    local.idle_reloads = 5
    assert local.next_wait() == 5.0


def test_keras_callback_writes_to_a_bucket(s3) -> None:
    keras = pytest.importorskip("keras")
    import numpy as np

    from kboard.keras import KBoardCallback
    from kboard.provider import load_logdir

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile("adam", "mse")
    url = f"s3://{BUCKET}/keras"
    callback = KBoardCallback(url)
    model.fit(np.zeros((8, 3)), np.zeros((8, 2)), epochs=2, verbose=0, callbacks=[callback])
    data = load_logdir(url)
    assert [r.name for r in data.runs()] == ["train"]
    assert data.scalars("train", "epoch_loss").steps.tolist() == [0, 1]
