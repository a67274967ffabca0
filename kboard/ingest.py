"""The reader: follows log directories and feeds the store with only what is new.

Every directory under a logdir that holds event files is a run, named by its path relative
to the logdir (``.`` for the logdir itself), as TensorBoard names them. Each reload stats the
known files, reads only bytes past each file's offset, and picks up new files and runs. A
file that shrinks, is replaced or vanishes makes its run be read again from the start; a
run whose directory is gone disappears.

A logdir may also be an fsspec URL (``s3://bucket/prefix``, ``gs://…``): its storage
(:mod:`kboard.storage`) lists every object once per reload, and only objects whose size or
ETag changed are read, from their offset; an object replaced by a longer one whose bytes before
the offset are unchanged is a growing file. A store that cannot be listed is a problem of that
logdir, and its runs stay as last read.

Symlinks: a symlinked event file is read, wherever it points (the person who runs kboard put
it there; requests never name paths). A symlinked directory is not followed (logged once), so
a symlink loop or a link to ``/`` can never make a reload walk forever; to show runs kept
elsewhere, name them on the command line: ``--logdir_spec here:DIR,there:OTHER_DIR``.

Problems (corrupt records, unreadable files and directories, a zero-filled tail that stays
unwritten for ``pending_report_seconds``) go to the store and the log, once each; they never
stop other files or runs from being read.
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kboard.cache import FINGERPRINT_BYTES, CachedFile, RunCache, fingerprint_of, head_and_tail
from kboard.progress import LoadProgress
from kboard.storage import (
    LOCAL,
    IOStats,
    Storage,
    StorageError,
    is_url,
    iter_stats,
    redact,
    root_path,
    storage_for,
)
from kboard.store import Problem, RunData, Sample, Store, WriteTxn
from kboard.tfevents.events import Datum, Restart, TagInfo
from kboard.tfevents.fastpath import DecodedBlock, ScalarBatch, decode_block
from kboard.tfevents.records import (
    DEFAULT_MAX_RECORD_BYTES,
    HEADER_SIZE,
    RecordBlock,
    read_block,
)

log = logging.getLogger("kboard")

EVENT_FILE_MARKER = "tfevents"
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# How long a zero-filled tail may wait for its data before it is reported.
PENDING_REPORT_SECONDS = 60.0


def is_event_file(name: str) -> bool:
    """Return True for a file name TensorBoard would read as an event file."""
    return EVENT_FILE_MARKER in name


def parse_logdir_spec(spec: str) -> dict[str, str]:
    """Parse TensorBoard's ``--logdir_spec`` ``name1:path1,name2:path2`` into ``{name: path}``.

    The first ``:`` of an entry ends its name, so paths may hold more. One entry may have no
    name (``path`` alone, or a URL such as ``s3://bucket/x``): its runs are named as under
    ``--logdir``.
    """
    entries: dict[str, str] = {}
    for part in spec.split(","):
        if _URL.match(part) or ":" not in part:
            name, path = "", part
        else:
            name, _, path = part.partition(":")
            if not name:
                raise ValueError(f"bad logdir entry {part!r}: expected name:path")
        if not path:
            raise ValueError(f"bad logdir entry {part!r}: expected name:path")
        if name in entries:
            what = f"logdir name {name!r} is given twice" if name else "two logdirs have no name"
            raise ValueError(f"{what}; expected name1:path1,name2:path2")
        entries[name] = path
    return entries


def logdir_roots(logdir: str | Mapping[str, str]) -> dict[str, str]:
    """``{name: path}`` of a logdir: one path (never split) is ``{"": path}``."""
    return {"": logdir} if isinstance(logdir, str) else dict(logdir)


def logdir_label(roots: Mapping[str, str]) -> str:
    """How a logdir is shown: its path, or the spec of several named ones (no secrets)."""
    if set(roots) == {""}:
        return redact(roots[""])
    return ",".join(
        f"{name}:{redact(path)}" if name else redact(path) for name, path in roots.items()
    )


def run_name(prefix: str, relpath: str) -> str:
    """Name a run as TensorBoard does: its path relative to the logdir, '/'-separated."""
    rel = relpath.replace(os.sep, "/")
    if not prefix:
        return rel
    return prefix if rel == "." else f"{prefix}/{rel}"


@dataclass
class FileState:
    """How far one event file has been read."""

    path: str
    identity: tuple[int, int]  # (st_dev, st_ino)
    offset: int = 0
    size: int = 0  # and modification time, as stat said before the last read
    mtime_ns: int = 0
    stopped: bool = False  # a fatal framing problem: retried only when the file grows
    head: bytes = b""  # the first bytes read, up to FINGERPRINT_BYTES (for the cache)
    tail: bytes = b""  # the bytes just before ``offset``: a file rewritten in place changes them
    zero_since: float | None = None  # when a zero-filled tail was first seen at ``zero_at``
    zero_at: int = -1
    zero_reported: bool = False
    failed: bool = False  # the last attempt to read it failed (reported)


@dataclass
class RunState:
    """The reader's state of one run: its files and the tag metadata seen so far."""

    name: str
    path: str
    storage: Storage = LOCAL  # where its files are: local, or an object store
    root: str = ""  # the logdir it was found under
    files: dict[str, FileState] = field(default_factory=dict)
    tag_infos: dict[str, TagInfo] = field(default_factory=dict)
    broken: set[str] = field(default_factory=set)  # event-file names that cannot be opened
    unsaved_bytes: int = 0  # read since the run was last written to the cache


@dataclass
class ReloadReport:
    """What one reload did."""

    records: int = 0
    bytes_read: int = 0
    runs_added: list[str] = field(default_factory=list)
    runs_removed: list[str] = field(default_factory=list)
    runs_reread: list[str] = field(default_factory=list)
    runs_from_cache: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


class LogdirReader:
    """Reads one or more logdirs incrementally into a :class:`Store`."""

    def __init__(
        self,
        logdir: str | Mapping[str, str],
        store: Store | None = None,
        *,
        max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
        cache: RunCache | None = None,
        pending_report_seconds: float = PENDING_REPORT_SECONDS,
        storage_options: Mapping[str, Any] | None = None,
    ) -> None:
        # One path (never split), or {name: path} for several (see parse_logdir_spec).
        self.roots = {name: root_path(path) for name, path in logdir_roots(logdir).items()}
        # Local paths, or object-store URLs read through fsspec with ``storage_options``.
        self.storages = {root: storage_for(root, storage_options) for root in self.roots.values()}
        self.store = store if store is not None else Store()
        self.max_record_bytes = max_record_bytes
        self.cache = cache
        self.pending_report_seconds = pending_report_seconds
        self._runs: dict[str, RunState] = {}
        self._reload_lock = threading.Lock()
        self._walk_problems: dict[str, Problem] = {}  # directory -> why it cannot be listed
        self._links_seen: set[str] = set()  # symlinked directories already logged
        self.progress = LoadProgress()  # how far the current reload is (for /api/status)

    def missing_roots(self) -> list[str]:
        """Return the local logdir paths that do not exist (yet)."""
        return [p for p in self.roots.values() if not is_url(p) and not os.path.exists(p)]

    def file_roots(self) -> list[str]:
        """Return the local logdir paths that are files, not directories (a mistake to report)."""
        return [
            p
            for p in self.roots.values()
            if not is_url(p) and os.path.exists(p) and not os.path.isdir(p)
        ]

    def io_stats(self) -> list[IOStats]:
        """Requests made and bytes read, per logdir in an object store (none for local ones)."""
        return list(iter_stats(self.storages))

    def reload(self) -> ReloadReport:
        """Read whatever is new on disk into the store."""
        with self._reload_lock:
            report = ReloadReport()
            found, walk_problems, unlisted = self._discover()
            self.progress.begin(len(found))
            for name in sorted(set(self._runs) - set(found)):
                if self._runs[name].root in unlisted:
                    continue  # its store failed to answer: keep what was read
                del self._runs[name]
                with self.store.write() as txn:
                    txn.remove_run(name)
                report.runs_removed.append(name)
                log.info("run %s is gone", name)
            self._report_walk_problems(walk_problems, report)
            for name, (root, path, files) in sorted(found.items()):
                state = self._runs.get(name)
                if state is None or state.path != path:
                    state = self._runs[name] = RunState(name, path, self.storages[root], root)
                    report.runs_added.append(name)
                    if self.cache is not None and self._restore(state):
                        report.runs_from_cache.append(name)
                self._reload_run(state, files, report)
                self.progress.run_read()
            self.progress.end()
            return report

    def _restore(self, state: RunState) -> bool:
        """Start a run from its cached state, when the cache is still true of its files."""
        cached = self.cache.load(state.path, state.storage) if self.cache is not None else None
        if cached is None:
            return False
        state.tag_infos = dict(cached["tag_infos"])
        for f in cached["files"]:
            fstate = FileState(f.path, f.identity, f.offset, f.size, f.mtime_ns, f.stopped)
            # The cache checked these bytes a moment ago: in-place rewrites stay detectable.
            # Objects keep them in the cache: a warm start fetches no event data.
            if state.storage.remote:
                fstate.head, fstate.tail = f.head, f.tail
            else:
                fstate.head, fstate.tail = _head_and_tail(f.path, f.offset)
            state.files[f.path] = fstate
        with self.store.write() as txn:
            txn.replace_run(state.name, RunData.from_state(cached["data"]))
            for problem in cached["problems"]:
                txn.report(problem)
        log.info("run %s restored from the cache", state.name)
        return True

    def save_cache(self, min_new_bytes: int = 1 << 20) -> int:
        """Write runs that grew by ``min_new_bytes`` since their last save; return how many."""
        if self.cache is None or not self.cache.usable:
            return 0
        jobs = []
        with self._reload_lock:
            for state in self._runs.values():
                if state.unsaved_bytes < min_new_bytes:
                    continue
                # Fingerprints of the bytes as they were read, not as the files are now.
                files = [
                    CachedFile(
                        f.path,
                        f.identity,
                        f.offset,
                        f.size,
                        f.mtime_ns,
                        fingerprint_of(f.head, f.tail, f.offset),
                        f.stopped,
                        *((f.head, f.tail) if state.storage.remote else ()),
                    )
                    for f in state.files.values()
                ]
                try:
                    data, problems = self.store.run_snapshot(state.name)
                except KeyError:
                    continue  # the run vanished: the next reload sorts it out
                jobs.append((state.path, files, dict(state.tag_infos), data, problems))
                state.unsaved_bytes = 0
        for path, files, tag_infos, data, problems in jobs:
            self.cache.save(path, files, tag_infos, data, problems)
        return len(jobs)

    def _discover(
        self,
    ) -> tuple[dict[str, tuple[str, str, list[str]]], dict[str, Problem], set[str]]:
        """Find ``{run name: (root, directory, [event file paths])}`` under every root.

        Also returns the directories that could not be listed, as problems, and the roots in
        object stores that could not be listed (their runs are kept as they were).
        """
        found: dict[str, tuple[str, str, list[str]]] = {}
        problems: dict[str, Problem] = {}
        unlisted: set[str] = set()
        for prefix, root in self.roots.items():
            storage = self.storages[root]
            if storage.remote:
                try:
                    listing = storage.list()
                except StorageError as exc:
                    unlisted.add(root)
                    problems[root] = Problem(prefix or ".", redact(root), 0, "storage", str(exc))
                    continue
                for name, (path, files) in _runs_in_listing(prefix, root, listing).items():
                    found[name] = (root, path, files)
                continue
            if not os.path.isdir(root):
                continue

            def unlistable(exc: OSError, prefix: str = prefix, root: str = root) -> None:
                path = str(exc.filename)
                name = run_name(prefix, os.path.relpath(path, root))
                message = f"cannot list directory {name}: {exc.strerror}"
                problems[path] = Problem(name, path, 0, "io", message)

            for dirpath, dirnames, filenames in os.walk(root, onerror=unlistable):
                dirnames.sort()
                for d in dirnames:
                    self._note_link(os.path.join(dirpath, d))
                events = sorted(n for n in filenames if is_event_file(n))
                if events:
                    name = run_name(prefix, os.path.relpath(dirpath, root))
                    found[name] = (root, dirpath, [os.path.join(dirpath, n) for n in events])
        return found, problems, unlisted

    def _note_link(self, path: str) -> None:
        """Log, once, that a symlinked directory is not followed."""
        if path not in self._links_seen and os.path.islink(path):
            self._links_seen.add(path)
            log.warning(
                "not following symlinked directory %s (symlinked directories are not read; "
                "name other logdirs with --logdir_spec name:path,...)",
                path,
            )

    def _report_walk_problems(self, problems: dict[str, Problem], report: ReloadReport) -> None:
        """Report newly unlistable directories (or stores, whose fault may change); forget the
        ones that can be listed again."""
        old = self._walk_problems
        if problems == old:
            return
        with self.store.write() as txn:
            for path, problem in old.items():
                if problems.get(path) != problem:
                    txn.forget_problems(problem.run, problem.path)
            for path, problem in problems.items():
                if old.get(path) != problem and txn.report(problem):
                    report.problems.append(problem)
                    log.warning("%s", problem.message)
        self._walk_problems = problems

    def _reload_run(self, state: RunState, paths: list[str], report: ReloadReport) -> None:
        stats: dict[str, os.stat_result] = {}
        new_problems: list[Problem] = []
        resolved: list[tuple[str, str]] = []  # (path, problem kind) no longer true
        broken: set[str] = set()
        storage = state.storage
        for path in paths:
            try:
                stats[path] = storage.stat(path)
            except OSError as exc:
                # Vanished between listing and stat: treated as gone below. A name that is
                # there but cannot be followed (a symlink loop, a dangling link) is reported.
                if storage.lexists(path):
                    broken.add(path)
                    message = f"cannot open {os.path.basename(path)}: {exc.strerror}"
                    new_problems.append(Problem(state.name, path, 0, "io", message))
        resolved += [(path, "io") for path in state.broken - broken]
        state.broken = broken
        reread = any(p not in stats for p in state.files) or any(
            _must_reread(state.files[p], st, storage) for p, st in stats.items() if p in state.files
        )
        if reread:
            state.files.clear()
            state.tag_infos.clear()
            report.runs_reread.append(state.name)
            log.info("run %s changed on disk; reading it again from the start", state.name)
        batch = _RunBatch()
        for path, st in stats.items():
            fstate = state.files.get(path)
            if fstate is None:
                fstate = state.files[path] = FileState(path, (st.st_dev, st.st_ino))
            if st.st_size == fstate.size and (fstate.offset == st.st_size or fstate.stopped):
                continue  # nothing new
            self._read_file(state, fstate, st, batch, new_problems, resolved, report)
        if batch.empty and not (
            new_problems or resolved or reread or state.name in report.runs_added
        ):
            return
        with self.store.write() as txn:
            data = txn.run(state.name)
            if reread:
                data = RunData()
                txn.replace_run(state.name, data)
                txn.forget_problems(state.name)  # of every file, gone ones too: all reread
            for path, kind in resolved:
                txn.forget_problems(state.name, path, kind)
            batch.apply(txn, data)
            for problem in new_problems:
                if txn.report(problem):
                    report.problems.append(problem)
                    log.warning("%s: %s", problem.path, problem.message)

    def _read_file(
        self,
        state: RunState,
        fstate: FileState,
        st: os.stat_result,
        batch: _RunBatch,
        problems: list[Problem],
        resolved: list[tuple[str, str]],
        report: ReloadReport,
    ) -> None:
        size = st.st_size
        try:
            with state.storage.open(fstate.path) as stream:
                if fstate.failed:
                    fstate.failed = False
                    resolved.append((fstate.path, "io"))
                while True:
                    block = read_block(
                        stream, fstate.offset, max_record_bytes=self.max_record_bytes
                    )
                    self._take_block(state, fstate, block, batch, problems, report)
                    if (
                        block.stopped
                        or block.end_offset <= fstate.offset
                        or (block.end_offset >= size)
                    ):
                        fstate.offset = block.end_offset
                        break
                    fstate.offset = block.end_offset
        except OSError as exc:
            fstate.failed = True
            message = f"cannot read {os.path.basename(fstate.path)}: {exc.strerror or exc}"
            problems.append(Problem(state.name, fstate.path, 0, "io", message))
            return
        fstate.size, fstate.mtime_ns = size, st.st_mtime_ns
        fstate.stopped = block.stopped
        self._check_zero_tail(state, fstate, block, problems, resolved)

    def _check_zero_tail(
        self,
        state: RunState,
        fstate: FileState,
        block: RecordBlock,
        problems: list[Problem],
        resolved: list[tuple[str, str]],
    ) -> None:
        """Report zeros where a record should start once they stay unwritten for a while."""
        if not block.zero_tail or fstate.zero_at != fstate.offset:
            fstate.zero_since = None
            if fstate.zero_reported:  # data arrived: the zeros were written over
                fstate.zero_reported = False
                resolved.append((fstate.path, "zero_tail"))
        if not block.zero_tail:
            return
        now = time.monotonic()
        if fstate.zero_since is None:
            fstate.zero_since, fstate.zero_at = now, fstate.offset
        waited = now - fstate.zero_since
        if waited >= self.pending_report_seconds and not fstate.zero_reported:
            fstate.zero_reported = True
            message = (
                f"zero bytes at byte {fstate.offset} where a record should start, unwritten for "
                f"{waited:.0f} s (space allocated but never written, e.g. after a crash); "
                "read again when they change"
            )
            problems.append(Problem(state.name, fstate.path, fstate.offset, "zero_tail", message))

    def _take_block(
        self,
        state: RunState,
        fstate: FileState,
        block: RecordBlock,
        batch: _RunBatch,
        problems: list[Problem],
        report: ReloadReport,
    ) -> None:
        report.bytes_read += block.end_offset - fstate.offset
        self.progress.add_bytes(block.end_offset - fstate.offset)
        state.unsaved_bytes += block.end_offset - fstate.offset
        report.records += len(block)
        consumed = block.end_offset - block.offset
        if consumed:
            _remember_bytes(fstate, block.buf, consumed)
        for rp in block.problems:
            problems.append(Problem(state.name, fstate.path, rp.offset, rp.kind, rp.message))
        decoded = decode_block(block, state.tag_infos)
        for index, dp in decoded.problems:
            at = block.offset + int(block.starts[index]) - HEADER_SIZE
            problems.append(Problem(state.name, fstate.path, at, "decode", dp.message))
        batch.add_block(decoded)


def _must_reread(fstate: FileState, st: os.stat_result, storage: Storage = LOCAL) -> bool:
    """A file replaced by another, shorter than what was read, or rewritten, is read again.

    Rewritten: the bytes before the offset changed, or the size is the same but the
    modification time is not (a record changed in place), unless the file still has bytes
    to come past the offset (a record being written, zeros being filled).
    """
    if (st.st_dev, st.st_ino) != fstate.identity or st.st_size < fstate.offset:
        return True
    if st.st_size != fstate.size:
        return _rewritten(fstate, storage)
    waiting = fstate.offset < fstate.size and not fstate.stopped
    return st.st_mtime_ns != fstate.mtime_ns and not waiting


def _remember_bytes(fstate: FileState, buf: bytes, consumed: int) -> None:
    """Keep the file's first bytes and the bytes before the new offset (``buf[:consumed]``)."""
    if len(fstate.head) < FINGERPRINT_BYTES:
        fstate.head += buf[: min(consumed, FINGERPRINT_BYTES - len(fstate.head))]
    if consumed >= FINGERPRINT_BYTES:
        fstate.tail = bytes(buf[consumed - FINGERPRINT_BYTES : consumed])
    else:
        fstate.tail = (fstate.tail + buf[:consumed])[-FINGERPRINT_BYTES:]


def _head_and_tail(path: str, offset: int) -> tuple[bytes, bytes]:
    """The bytes that :func:`_remember_bytes` keeps for a file read up to ``offset``."""
    try:
        return head_and_tail(path, offset)
    except OSError:
        return b"", b""


def _rewritten(fstate: FileState, storage: Storage = LOCAL) -> bool:
    """Whether the bytes before the read offset changed: truncated in place and written again.

    An object replaced by a longer one is a growing file when these bytes are unchanged.
    """
    if not fstate.tail:
        return False
    try:
        with storage.open(fstate.path) as f:
            f.seek(fstate.offset - len(fstate.tail))
            return f.read(len(fstate.tail)) != fstate.tail
    except OSError:
        return False  # reading the file will report it


def _runs_in_listing(
    prefix: str, root: str, listing: Mapping[str, Any]
) -> dict[str, tuple[str, list[str]]]:
    """``{run name: (directory URL, [event file URLs])}`` from one listing of a store."""
    by_dir: dict[str, list[str]] = {}
    for url in listing:
        rel = url[len(root) + 1 :]
        directory, _, name = rel.rpartition("/")
        if is_event_file(name):
            by_dir.setdefault(directory, []).append(url)
    return {
        run_name(prefix, directory or "."): (
            f"{root}/{directory}" if directory else root,
            sorted(urls),
        )
        for directory, urls in sorted(by_dir.items())
    }


_NO_ORDER = np.empty(0, dtype=np.int64)


class _RunBatch:
    """New data of one run in file order: scalar columns per tag, other data in order.

    A restart splits the data, so it is applied between what was written before it and
    what was written after it.
    """

    def __init__(self) -> None:
        self.ops: list[Restart | Datum | dict[str, ScalarBatch]] = []
        self.start_time: float | None = None

    def add_block(self, decoded: DecodedBlock) -> None:
        # The run's start: its earliest wall time, ignoring ones that cannot be times.
        walls = [item.wall_time for _, item in decoded.items]
        for b in decoded.scalars.values():
            usable = b.wall_times[np.isfinite(b.wall_times) & (b.wall_times > 0)]
            if len(usable):
                walls.append(float(usable.min()))
        walls = [w for w in walls if math.isfinite(w) and w > 0]
        if walls and (self.start_time is None or min(walls) < self.start_time):
            self.start_time = min(walls)
        cuts = [i for i, item in decoded.items if isinstance(item, Restart)]
        if not cuts:
            for b in decoded.scalars.values():
                b.order = _NO_ORDER  # only needed to cut at a restart: 8 bytes a point less
            self.ops.append(decoded.scalars)
            self.ops.extend(item for _, item in decoded.items)
            return
        lo = -1
        for hi in [*cuts, None]:
            self.ops.append(_slice_scalars(decoded.scalars, lo, hi))
            self.ops.extend(item for i, item in decoded.items if i > lo and (hi is None or i < hi))
            if hi is not None:
                self.ops.append(next(it for i, it in decoded.items if i == hi))
                lo = hi

    @property
    def empty(self) -> bool:
        return not any(op for op in self.ops)

    def apply(self, txn: WriteTxn, data: RunData) -> None:
        if self.start_time is not None and (
            data.start_time is None or self.start_time < data.start_time
        ):
            data.start_time = self.start_time
        # Room for every new point at once: no growing by steps, no unused room after.
        incoming: dict[str, int] = {}
        for op in self.ops:
            if isinstance(op, dict):
                for tag, cols in op.items():
                    incoming[tag] = incoming.get(tag, 0) + len(cols.steps)
        for tag, count in incoming.items():
            txn.reserve_scalars(data, tag, count)
        for op in self.ops:
            if isinstance(op, Restart):
                txn.restart(data, op.step)
            elif isinstance(op, Datum):
                txn.add_sample(data, op.tag, op.info, Sample(op.step, op.wall_time, op.value))
            else:
                for tag, cols in op.items():
                    txn.add_scalars(data, tag, cols.info, cols.steps, cols.wall_times, cols.values)


def _slice_scalars(
    scalars: dict[str, ScalarBatch], lo: int, hi: int | None
) -> dict[str, ScalarBatch]:
    """The points recorded after record ``lo`` and before record ``hi``."""
    out = {}
    for tag, b in scalars.items():
        mask = b.order > lo if hi is None else (b.order > lo) & (b.order < hi)
        if mask.any():
            out[tag] = ScalarBatch(
                b.info, b.order[mask], b.steps[mask], b.wall_times[mask], b.values[mask]
            )
    return out
