"""How far the reader is through a logdir: what ``/api/status`` and the page show while loading."""

from __future__ import annotations

import threading
import time
from typing import Any


class LoadProgress:
    """Runs found and read, bytes read, by the current (or last) reload; safe across threads.

    The reader calls :meth:`begin` once it has listed the runs, :meth:`add_bytes` as it
    reads and :meth:`run_read` after each run; :meth:`end` when the reload is over.
    ``loading`` is true from construction until the first reload ends, so a server that
    answers before its first read says so.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._first_done = False
        self._active = False
        self._runs_found = 0
        self._runs_read = 0
        self._bytes_read = 0
        self._started = time.monotonic()
        self._seconds = 0.0

    def begin(self, runs_found: int) -> None:
        with self._lock:
            self._active = True
            self._runs_found, self._runs_read, self._bytes_read = runs_found, 0, 0
            self._started = time.monotonic() if self._first_done else self._started

    def add_bytes(self, count: int) -> None:
        with self._lock:
            self._bytes_read += count

    def run_read(self) -> None:
        with self._lock:
            self._runs_read += 1

    def end(self) -> None:
        with self._lock:
            self._active = False
            if not self._first_done:
                self._first_done = True
                self._seconds = time.monotonic() - self._started

    def as_dict(self) -> dict[str, Any]:
        """``loading`` (the first read is not over), runs found and read, bytes read, and
        ``first_read_seconds`` (since start, once the first read is over)."""
        with self._lock:
            return {
                "loading": not self._first_done,
                "reading": self._active,
                "runs_found": self._runs_found,
                "runs_read": self._runs_read,
                "bytes_read": self._bytes_read,
                "first_read_seconds": round(self._seconds, 3) if self._first_done else None,
            }
