"""A persistent cache of decoded runs, so serving the same logdir again starts at once.

One file per run holds the run's stored data and how far each of its event files was read. It is
used only when every file it names is still the same file: the same device and inode, the same
modification time (in nanoseconds) when its size is unchanged, at least as long as the offset
read, and the same checksums of its first bytes and of the bytes just before the offset, taken
from the bytes as they were read. An object in a store is the same object when its listing
shows the same size and ETag (or version): then nothing of it is fetched; the cache keeps its
first bytes and the bytes before the offset, so the reader can check later growth. Otherwise
the run is read from its files as if there were no cache. A cache written by other decoding
code (any change to the modules that read and keep events) is not used either: its key holds a
hash of their source. Cache files are written to a temporary name and renamed, and carry a
checksum of their content, so a process killed mid-write leaves either the old cache or none,
never a partial one. The cache directory must be owned by the user and closed to others (its
files are pickles).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import pickle
import stat
import struct
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import google_crc32c

from kboard.storage import LOCAL, Storage, canonical
from kboard.store import Problem
from kboard.tfevents.events import TagInfo
from kboard.version import __version__

log = logging.getLogger("kboard")

MAGIC = b"KBCACHE1"
FORMAT = 4
FINGERPRINT_BYTES = 4096
PACKAGE_DIR = Path(__file__).resolve().parent
# The code that turns files into stored runs: a change to any of it invalidates every cache.
DECODER_FILES = (
    "tfevents/records.py",
    "tfevents/events.py",
    "tfevents/fastpath.py",
    "tfevents/plugins.py",
    "store.py",
    "ingest.py",
    "cache.py",
    "storage.py",
)
_HEADER = struct.Struct("<8sIQ")  # magic, crc32c of payload, payload length


def default_cache_dir() -> str:
    """``$KBOARD_CACHE_DIR``, else ``$XDG_CACHE_HOME/kboard``, else ``~/.cache/kboard``."""
    explicit = os.environ.get("KBOARD_CACHE_DIR")
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "kboard")


def code_fingerprint(package_dir: Path = PACKAGE_DIR) -> str:
    """A hash of the decoding code's source (:data:`DECODER_FILES` under ``package_dir``)."""
    digest = hashlib.sha256()
    for name in DECODER_FILES:
        digest.update(name.encode())
        digest.update((package_dir / name).read_bytes())
    return digest.hexdigest()[:24]


@cache
def _installed_code() -> str:
    return code_fingerprint()


@dataclass(frozen=True)
class CachedFile:
    """One event file as far as the cached state read it, as it was when read."""

    path: str
    identity: tuple[int, int]
    offset: int
    size: int
    mtime_ns: int
    fingerprint: str
    stopped: bool
    head: bytes = b""  # objects only: the bytes the fingerprint is of
    tail: bytes = b""


def fingerprint_of(head: bytes, tail: bytes, offset: int) -> str:
    """Checksums of a file's first bytes and of the bytes just before ``offset``.

    ``head`` is the first ``min(FINGERPRINT_BYTES, offset)`` bytes of the file and ``tail``
    the same number of bytes ending at ``offset``.
    """
    return f"{google_crc32c.value(head):08x}{google_crc32c.value(tail):08x}{offset:x}"


def head_and_tail(path: str, offset: int, storage: Storage = LOCAL) -> tuple[bytes, bytes]:
    """A file's first ``min(FINGERPRINT_BYTES, offset)`` bytes and as many ending at ``offset``."""
    with storage.open(path, read_ahead=0) as f:
        head = f.read(min(FINGERPRINT_BYTES, offset))
        f.seek(max(0, offset - FINGERPRINT_BYTES))
        return head, f.read(min(FINGERPRINT_BYTES, offset))


def fingerprint(path: str, offset: int, storage: Storage = LOCAL) -> str:
    """:func:`fingerprint_of` the file at ``path`` as it is now."""
    return fingerprint_of(*head_and_tail(path, offset, storage), offset)


class RunCache:
    """Saves and loads decoded runs under one directory."""

    def __init__(self, directory: str | None = None, *, code: str | None = None) -> None:
        self.directory = os.path.abspath(directory or default_cache_dir())
        self.code = code or _installed_code()  # caches of other decoding code are not used
        self.usable = self._prepare()

    def _prepare(self) -> bool:
        try:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            st = os.stat(self.directory)
        except OSError as exc:
            log.warning("cache disabled: cannot use %s (%s)", self.directory, exc.strerror)
            return False
        if st.st_uid != os.getuid() or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            log.warning("cache disabled: %s is not private to this user", self.directory)
            return False
        return True

    def path_for(self, run_path: str) -> str:
        key = hashlib.sha256(canonical(run_path).encode("utf-8", "surrogateescape"))
        return os.path.join(self.directory, key.hexdigest()[:40] + ".kbc")

    # -- saving -----------------------------------------------------------------------
    def save(
        self,
        run_path: str,
        files: list[CachedFile],
        tag_infos: dict[str, TagInfo],
        data: dict[str, Any],
        problems: list[Problem],
    ) -> None:
        """Write one run's cache atomically."""
        if not self.usable:
            return
        payload = pickle.dumps(
            {
                "format": FORMAT,
                "version": __version__,
                "code": self.code,
                "run_path": canonical(run_path),
                "files": files,
                "tag_infos": tag_infos,
                "data": data,
                "problems": problems,
            },
            protocol=5,
        )
        header = _HEADER.pack(MAGIC, google_crc32c.value(payload), len(payload))
        target = self.path_for(run_path)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".kbc")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(header)
                out.write(payload)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        except OSError as exc:
            log.warning("could not write cache %s: %s", target, exc.strerror)
            with contextlib.suppress(OSError):
                os.unlink(tmp)

    # -- loading ----------------------------------------------------------------------
    def load(self, run_path: str, storage: Storage = LOCAL) -> dict[str, Any] | None:
        """Return the cached state of a run if it is intact and still true of its files."""
        if not self.usable:
            return None
        target = self.path_for(run_path)
        try:
            with open(target, "rb") as f:
                head = f.read(_HEADER.size)
                if len(head) != _HEADER.size:
                    return None
                magic, crc, length = _HEADER.unpack(head)
                payload = f.read(length + 1)
        except OSError:
            return None
        if magic != MAGIC or len(payload) != length or google_crc32c.value(payload) != crc:
            log.info("ignoring damaged cache file %s", target)
            return None
        try:
            state = pickle.loads(payload)  # noqa: S301 - our own file, in a private directory
        except Exception:  # noqa: BLE001 - any unpickling failure means "no cache"
            return None
        if (
            not isinstance(state, dict)
            or state.get("format") != FORMAT
            or state.get("version") != __version__
            or state.get("code") != self.code
            or state.get("run_path") != canonical(run_path)
        ):
            return None
        for cached in state["files"]:
            if not _still_valid(cached, storage):
                log.info("cache of %s is stale (%s changed)", run_path, cached.path)
                return None
        return state


def _still_valid(cached: CachedFile, storage: Storage = LOCAL) -> bool:
    try:
        st = storage.stat(cached.path)
        if storage.remote and (st.st_size, st.st_mtime_ns) == (cached.size, cached.mtime_ns):
            return True  # the same object: objects never change in place
        return (
            (st.st_dev, st.st_ino) == cached.identity
            and st.st_size >= cached.offset
            # The same size but another modification time: rewritten in place.
            and (st.st_size != cached.size or st.st_mtime_ns == cached.mtime_ns)
            and fingerprint(cached.path, cached.offset, storage) == cached.fingerprint
        )
    except OSError:
        return False
