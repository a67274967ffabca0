"""Live reloading: a watchdog observer for prompt updates, a periodic poll as the fallback."""

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


class LiveReloader:
    """Reloads a :class:`LogdirReader` on file-system events and every ``interval`` seconds."""

    def __init__(self, reader: LogdirReader, *, interval: float = 5.0, watch: bool = True):
        self.reader = reader
        self.interval = interval
        self.watch = watch
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
            self._wake.wait(self.interval if self.interval > 0 else None)
            if self._stop.is_set():
                return
            time.sleep(DEBOUNCE_SECONDS)
            self._wake.clear()
            try:
                self.reader.reload()
                if time.monotonic() - last_save > CACHE_SAVE_SECONDS:
                    last_save = time.monotonic()
                    self.reader.save_cache()
            except Exception:  # the reader reports file problems itself; this is a bug
                log.exception("reload failed")


class _Poke(FileSystemEventHandler):
    def __init__(self, wake: threading.Event) -> None:
        self._wake = wake

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in ("opened", "closed_no_write"):
            self._wake.set()
