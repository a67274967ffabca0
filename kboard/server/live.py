"""Live reloading: a watchdog observer for prompt updates, a periodic poll as the fallback.

A logdir in an object store cannot be watched: it is polled (every 30 s by default), and
while reloads find nothing new the interval grows, up to :data:`MAX_BACKOFF` times the
interval; anything new brings it back. Idle objects cost no request at all (one listing
shows they are unchanged).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import warnings

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from kboard.ingest import LogdirReader

log = logging.getLogger("kboard")

# watchdog's inotify thread warns when a directory and its parent appear at once (its own
# callback bookkeeping); nothing is lost, and the periodic poll reads whatever it misses.
warnings.filterwarnings("ignore", "Callback with id", RuntimeWarning, r"watchdog\.")

# Coalesce bursts of file events (a training step writes several records) into one reload.
DEBOUNCE_SECONDS = 0.05
# Refresh the on-disk cache of decoded runs at most this often.
CACHE_SAVE_SECONDS = 60.0
LOCAL_INTERVAL = 5.0
REMOTE_INTERVAL = 30.0
MAX_BACKOFF = 4.0  # an idle remote logdir is polled at most this many intervals apart


class LiveReloader:
    """Reloads a :class:`LogdirReader` on file-system events and every ``interval`` seconds."""

    def __init__(
        self, reader: LogdirReader, *, interval: float | None = None, watch: bool = True
    ) -> None:
        self.reader = reader
        self.remote = any(storage.remote for storage in reader.storages.values())
        if interval is None:
            interval = REMOTE_INTERVAL if self.remote else LOCAL_INTERVAL
        self.interval = interval
        self.watch = watch
        self.idle_reloads = 0  # reloads in a row that found nothing new
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._observer: Observer | None = None

    def start(self) -> None:
        """Start the reload thread and, unless disabled, the file-system observer."""
        if self.watch:
            self._start_observer()
        self._thread = threading.Thread(target=self._loop, name="kboard-reload", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _start_observer(self) -> None:
        handler = _Poke(self._wake)
        observer = Observer()
        scheduled = 0
        for root in self.reader.roots.values():
            if os.path.isdir(root):
                try:
                    observer.schedule(handler, root, recursive=True)
                    scheduled += 1
                except OSError as exc:  # e.g. the inotify watch limit
                    log.warning("cannot watch %s (%s); polling every %ss", root, exc, self.interval)
        if scheduled:
            observer.daemon = True
            try:
                observer.start()
            except OSError as exc:
                log.warning("file watching failed (%s); polling every %ss", exc, self.interval)
                return
            self._observer = observer

    def _loop(self) -> None:
        last_save = time.monotonic()
        while not self._stop.is_set():
            self._wake.wait(self.next_wait() if self.interval > 0 else None)
            if self._stop.is_set():
                return
            time.sleep(DEBOUNCE_SECONDS)
            self._wake.clear()
            try:
                report = self.reader.reload()
                quiet = not (
                    report.records
                    or report.runs_added
                    or report.runs_removed
                    or report.runs_reread
                    or report.problems
                )
                self.idle_reloads = self.idle_reloads + 1 if quiet else 0
                if time.monotonic() - last_save > CACHE_SAVE_SECONDS:
                    last_save = time.monotonic()
                    self.reader.save_cache()
            except Exception:  # the reader reports file problems itself; this is a bug
                log.exception("reload failed")

    def next_wait(self) -> float:
        """Seconds to the next poll: the interval, or longer while a remote logdir is idle."""
        if not self.remote:
            return self.interval
        return self.interval * min(MAX_BACKOFF, 1.5**self.idle_reloads)


class _Poke(FileSystemEventHandler):
    def __init__(self, wake: threading.Event) -> None:
        self._wake = wake

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in ("opened", "closed_no_write"):
            self._wake.set()
