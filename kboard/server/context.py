"""What a running app serves, and how handlers reach it (set up by the app factory)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from kboard.ingest import LogdirReader
from kboard.provider import DataProvider
from kboard.server.auth import TokenAuth
from kboard.server.live import LiveReloader
from kboard.server.streams import StreamHub
from kboard.store import Store


@dataclass
class Serving:
    """The app's data provider, the reader that fills it, the live reloader, who may ask."""

    provider: DataProvider
    reader: LogdirReader
    live: LiveReloader | None
    logdir: str
    allowed_hosts: frozenset[str] | None  # None: any Host (bound to all interfaces)
    auth: TokenAuth | None  # None: no token required (loopback, or --no-auth)
    streams: StreamHub

    @property
    def store(self) -> Store:
        """The reader's store (for tests and tools; handlers use :attr:`provider`)."""
        return self.reader.store


def serving() -> Serving:
    """Return the serving state of the current app."""
    return current_app.extensions["kboard"]


def provider() -> DataProvider:
    """Return the data provider of the current app."""
    return serving().provider
