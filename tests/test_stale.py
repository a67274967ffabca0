"""Never serve stale data: files rewritten in place, stale caches, changed images.

Files here are larger than the regions the cache fingerprints (4 KiB at each end), and the
change sits in the middle, with valid checksums, so only the size, identity and modification
time can tell.
"""

from __future__ import annotations

import io
import shutil
import time
from pathlib import Path

import numpy as np
from PIL import Image

from kboard import SummaryWriter
from kboard.cache import DECODER_FILES, FINGERPRINT_BYTES, PACKAGE_DIR, RunCache, code_fingerprint
from kboard.ingest import LogdirReader
from kboard.tfevents.records import encode_record
from tests.conftest import scalar_event

STEPS = 600
CHANGED_STEP = 300


def event_bytes(values: dict[int, float]) -> bytes:
    """A whole event file: the version record, then one scalar per step."""
    from tensorboard.compat.proto import event_pb2

    out = [encode_record(event_pb2.Event(file_version="brain.Event:2").SerializeToString())]
    for step in range(STEPS):
        event = scalar_event("loss", step, values.get(step, float(step)))
        out.append(encode_record(event.SerializeToString()))
    return b"".join(out)


def write_run(logdir: Path, value: float) -> Path:
    path = logdir / "run" / "events.out.tfevents.1"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(event_bytes({CHANGED_STEP: value}))
    return path


def rewrite_in_place(path: Path, value: float) -> None:
    """Change one record mid-file, same size, same inode, valid checksums."""
    time.sleep(0.02)  # a later modification time than the first write, as in life
    data = event_bytes({CHANGED_STEP: value})
    assert len(data) == path.stat().st_size > 4 * FINGERPRINT_BYTES
    inode = path.stat().st_ino
    with open(path, "r+b") as f:
        f.write(data)
    assert path.stat().st_ino == inode


def value_at(reader: LogdirReader, step: int = CHANGED_STEP) -> float:
    cols = reader.store.scalars("run", "loss")
    return float(cols.values[int(np.searchsorted(cols.steps, step))])


def test_live_reload_sees_a_record_changed_in_place(tmp_path: Path) -> None:
    path = write_run(tmp_path, 1000.0)
    reader = LogdirReader(str(tmp_path))
    reader.reload()
    assert value_at(reader) == 1000.0
    rewrite_in_place(path, -42.0)
    report = reader.reload()
    assert report.runs_reread == ["run"]
    assert value_at(reader) == -42.0
    assert len(reader.store.scalars("run", "loss")) == STEPS


def test_live_reload_through_the_app(tmp_path: Path, make_app) -> None:
    path = write_run(tmp_path, 1000.0)
    app = make_app(tmp_path)
    client = app.test_client()

    def served() -> float:
        body = client.get("/data/plugin/scalars/scalars?run=run&tag=loss").get_json()
        return body[CHANGED_STEP][2]

    assert served() == 1000.0
    rewrite_in_place(path, -42.0)
    app.extensions["kboard"].reader.reload()
    assert served() == -42.0


def test_the_cache_is_not_used_for_a_file_changed_in_place(tmp_path: Path) -> None:
    logdir, cache_dir = tmp_path / "logs", tmp_path / "cache"
    path = write_run(logdir, 1000.0)
    first = LogdirReader(str(logdir), cache=RunCache(str(cache_dir)))
    first.reload()
    assert first.save_cache(min_new_bytes=0) == 1
    rewrite_in_place(path, -42.0)
    second = LogdirReader(str(logdir), cache=RunCache(str(cache_dir)))
    report = second.reload()
    assert report.runs_from_cache == []
    assert value_at(second) == -42.0


def test_the_cache_is_used_while_files_are_unchanged_or_only_grew(tmp_path: Path) -> None:
    # README: "used only while every file it covers is unchanged" (growing is not a change).
    logdir, cache_dir = tmp_path / "logs", tmp_path / "cache"
    path = write_run(logdir, 1000.0)
    first = LogdirReader(str(logdir), cache=RunCache(str(cache_dir)))
    first.reload()
    first.save_cache(min_new_bytes=0)
    second = LogdirReader(str(logdir), cache=RunCache(str(cache_dir)))
    assert second.reload().runs_from_cache == ["run"]
    assert value_at(second) == 1000.0
    with open(path, "ab") as f:
        f.write(encode_record(scalar_event("loss", STEPS, 7.0).SerializeToString()))
    third = LogdirReader(str(logdir), cache=RunCache(str(cache_dir)))
    assert third.reload().runs_from_cache == ["run"]
    cols = third.store.scalars("run", "loss")
    assert len(cols) == STEPS + 1 and cols.values[-1] == 7.0 and value_at(third) == 1000.0


def test_cache_fingerprints_come_from_the_bytes_read_not_the_bytes_saved(tmp_path: Path) -> None:
    # The file changes between the read and the save (its head rewritten, then it grows):
    # fingerprints taken at save time would vouch for bytes the store never saw.
    logdir, cache_dir = tmp_path / "logs", tmp_path / "cache"
    path = write_run(logdir, 1000.0)
    reader = LogdirReader(str(logdir), cache=RunCache(str(cache_dir)))
    reader.reload()
    data = event_bytes({1: -1.0})  # step 1 sits in the first 4 KiB
    data += encode_record(scalar_event("loss", STEPS, 7.0).SerializeToString())
    with open(path, "r+b") as f:
        f.write(data)
    reader.save_cache(min_new_bytes=0)
    fresh = LogdirReader(str(logdir), cache=RunCache(str(cache_dir)))
    assert fresh.reload().runs_from_cache == []
    assert value_at(fresh, 1) == -1.0


def test_a_cache_of_other_decoding_code_is_not_used(tmp_path: Path) -> None:
    logdir, cache_dir = tmp_path / "logs", tmp_path / "cache"
    write_run(logdir, 1000.0)
    old = LogdirReader(str(logdir), cache=RunCache(str(cache_dir), code="old decoder"))
    old.reload()
    old.save_cache(min_new_bytes=0)
    again = LogdirReader(str(logdir), cache=RunCache(str(cache_dir), code="old decoder"))
    assert again.reload().runs_from_cache == ["run"]
    new = LogdirReader(str(logdir), cache=RunCache(str(cache_dir)))
    assert new.reload().runs_from_cache == []


def test_the_code_fingerprint_follows_every_decoder_module(tmp_path: Path) -> None:
    copy = tmp_path / "kboard"
    shutil.copytree(PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__", "static"))
    base = code_fingerprint(copy)
    assert base == code_fingerprint(PACKAGE_DIR) == RunCache(str(tmp_path / "c")).code
    for name in DECODER_FILES:
        module = copy / name
        original = module.read_bytes()
        module.write_bytes(original + b"\n# changed\n")
        assert code_fingerprint(copy) != base, name
        module.write_bytes(original)
    assert code_fingerprint(copy) == base


def png(color: tuple[int, int, int]) -> np.ndarray:
    return np.full((3, 4, 4), np.array(color, dtype=np.uint8)[:, None, None])


def write_image_run(logdir: Path, color: tuple[int, int, int]) -> None:
    run = logdir / "pics"
    shutil.rmtree(run, ignore_errors=True)
    with SummaryWriter(str(run)) as writer:
        writer.add_image("img", png(color), 0, dataformats="CHW")


def pixel(data: bytes) -> tuple[int, ...]:
    return Image.open(io.BytesIO(data)).convert("RGB").getpixel((0, 0))


def test_images_are_revalidated_so_a_reread_run_never_shows_an_old_image(
    tmp_path: Path, make_app
) -> None:
    write_image_run(tmp_path, (255, 0, 0))
    app = make_app(tmp_path)
    client = app.test_client()
    urls = (
        "/api/image?run=pics&tag=img&step=0&sample=0",
        "/data/plugin/images/individualImage?run=pics&tag=img&step=0&sample=0",
    )
    etags = {}
    for url in urls:
        first = client.get(url)
        assert first.status_code == 200 and pixel(first.data) == (255, 0, 0)
        cache_control = first.headers["Cache-Control"]
        assert "no-cache" in cache_control and "max-age" not in cache_control
        etags[url] = first.headers["ETag"]
        again = client.get(url, headers={"If-None-Match": etags[url]})
        assert again.status_code == 304 and again.data == b""
    time.sleep(0.02)
    write_image_run(tmp_path, (0, 0, 255))
    app.extensions["kboard"].reader.reload()
    for url in urls:
        changed = client.get(url, headers={"If-None-Match": etags[url]})
        assert changed.status_code == 200 and pixel(changed.data) == (0, 0, 255)
        assert changed.headers["ETag"] != etags[url]
