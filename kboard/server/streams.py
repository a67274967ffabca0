"""Live streams (Server-Sent Events): their bound, and serving them with no worker thread each."""

from __future__ import annotations

import contextlib
import functools
import json
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from flask import Response
from waitress.channel import ClientDisconnected, HTTPChannel
from waitress.server import BaseWSGIServer
from waitress.task import WSGITask

from kboard.provider import DataProvider
from kboard.server.responses import json_error

DEFAULT_MAX_STREAMS = 1000
# A comment this often keeps proxies from closing an idle stream and finds vanished clients.
HEARTBEAT_SECONDS = 10.0
# Streams are told of changes at most this often (the newest generation each time).
NOTIFY_INTERVAL_SECONDS = 0.2
# Beyond the bound, a client is told to come back after this many seconds.
RETRY_AFTER_SECONDS = 30


def sse(event: str, data: dict[str, Any]) -> bytes:
    """One Server-Sent Event."""
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


class StreamHub:
    """Counts the open streams of one app against ``max_streams``."""

    def __init__(self, data: DataProvider, max_streams: int = DEFAULT_MAX_STREAMS) -> None:
        self.data = data
        self.max_streams = max_streams
        self._lock = threading.Lock()
        self._open = 0

    def reserve(self) -> bool:
        """Count one more open stream; False when the bound is reached."""
        with self._lock:
            if self._open >= self.max_streams:
                return False
            self._open += 1
            return True

    def release(self) -> None:
        """Count one stream fewer."""
        with self._lock:
            self._open = max(self._open - 1, 0)


# -- the stream route ----------------------------------------------------------------
# Set in the WSGI environ by a server that can carry a stream on after the response returns
# (waitress with :func:`serve_streams_from_event_loop`): calling it with the generation sent
# hands the connection to the I/O loop once the first event is written.
CONTINUE_AS_STREAM = "kboard.continue_as_stream"


def stream_response(hub: StreamHub, environ: dict[str, Any]) -> Response:
    """``/api/stream``: the generation now, then on every change; 503 beyond the bound."""
    if not hub.reserve():
        response = json_error(
            f"too many live streams ({hub.max_streams}); poll /api/runs for the generation", 503
        )
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    generation = hub.data.generation
    first = [b"retry: 1000\n", sse("generation", {"generation": generation})]
    continue_as_stream = environ.get(CONTINUE_AS_STREAM)
    if continue_as_stream is not None:
        continue_as_stream(generation)  # the event loop takes over after ``first``
        body: Iterator[bytes] = iter(first)
    else:  # another server (tests, werkzeug): a thread per stream, still counted
        body = _blocking_events(hub, first, generation)
    response = Response(body, mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    return response


def _blocking_events(hub: StreamHub, first: list[bytes], generation: int) -> Iterator[bytes]:
    try:
        yield from first
        while True:
            latest = hub.data.wait_for_change(generation, HEARTBEAT_SECONDS)
            if latest == generation:
                yield HEARTBEAT
                continue
            generation = latest
            yield sse("generation", {"generation": generation})
    finally:
        hub.release()


# -- streams in waitress's event loop --------------------------------------------------
# waitress runs a WSGI response in a worker thread until its body ends; a stream's body never
# ends, so each open page used to hold a worker. Here a stream's response returns at once
# (headers and the first event), and its connection stays open in waitress's own I/O loop
# (one thread, select/poll over every socket), which writes each later event. One more
# thread, the hub's, waits for the store's generation to change and for heartbeats.

HEARTBEAT = b": keepalive\n\n"
# A client that has not read this much of its stream is stuck or gone: it is dropped.
MAX_UNSENT_BYTES = 64 * 1024
# Unacknowledged data older than this aborts the connection (Linux): a vanished client is
# released within HEARTBEAT_SECONDS + this.
TCP_USER_TIMEOUT_MS = 20_000


class EventLoopStreams:
    """The sinks fed from the I/O loop thread; only that thread touches them."""

    def __init__(self, hub: StreamHub, post: Callable[[Callable[[], None]], None]) -> None:
        self.hub = hub
        self.post = post  # run a callable on the I/O loop thread
        self.sinks: set[_StreamChannel] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="kboard-streams", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=HEARTBEAT_SECONDS + 5)

    # On the hub's thread: wait for changes and heartbeats, hand the writing to the loop.
    def _watch(self) -> None:
        data = self.hub.data
        generation = data.generation
        next_beat = time.monotonic() + HEARTBEAT_SECONDS
        while not self._stop.is_set():
            wait = max(min(next_beat - time.monotonic(), 1.0), 0.0)
            latest = data.wait_for_change(generation, wait)
            if latest != generation:
                generation = latest
                self.post(functools.partial(self._send_generation, latest))
                # Changes in the next moment are told together: a page refetches on each.
                self._stop.wait(NOTIFY_INTERVAL_SECONDS)
            if time.monotonic() >= next_beat:
                next_beat = time.monotonic() + HEARTBEAT_SECONDS
                self.post(self._heartbeat)

    # On the I/O loop thread.
    def attach(self, channel: _StreamChannel, generation: int) -> None:
        if not channel.connected:
            self.hub.release()
            return
        self.sinks.add(channel)
        channel.generation = generation
        _keep_alive_briefly(channel.socket)
        self._send_generation(self.hub.data.generation, [channel])  # a change in between

    def detach(self, channel: _StreamChannel) -> None:
        if channel in self.sinks:
            self.sinks.discard(channel)
            self.hub.release()

    def _send_generation(self, generation: int, sinks: Iterable[_StreamChannel] = ()) -> None:
        event = sse("generation", {"generation": generation})
        for channel in list(sinks or self.sinks):
            if channel.generation == generation:
                continue
            channel.generation = generation
            self._push(channel, event)

    def _heartbeat(self) -> None:
        for channel in list(self.sinks):
            self._push(channel, HEARTBEAT)

    def _push(self, channel: _StreamChannel, data: bytes) -> None:
        if channel.connected and channel.total_outbufs_len <= MAX_UNSENT_BYTES:
            if channel.chunked:
                data = b"%X\r\n%s\r\n" % (len(data), data)
            with contextlib.suppress(ClientDisconnected, OSError):
                channel.write_soon(data)  # below the high watermark: never blocks
                return
        self.detach(channel)
        channel.will_close = True  # closed by the loop's next pass


def _keep_alive_briefly(sock: socket.socket | None) -> None:
    """Let the kernel abort the connection when the client stops acknowledging data."""
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if hasattr(socket, "TCP_USER_TIMEOUT"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, TCP_USER_TIMEOUT_MS)


class _StreamTask(WSGITask):
    """A WSGI task whose response may continue, as a stream, after the task ends."""

    def get_environment(self) -> dict[str, Any]:
        environ = super().get_environment()
        environ[CONTINUE_AS_STREAM] = self._continue_as_stream
        return environ

    def _continue_as_stream(self, generation: int) -> None:
        self.channel.pending_generation = generation

    def finish(self) -> None:
        channel = self.channel
        if channel.pending_generation is None:
            return super().finish()
        if not self.wrote_header:
            self.write(b"")
        # No end of body: the connection stays open for the events to come.
        channel.chunked = self.chunked_response
        channel.streaming = True
        self.close_on_finish = False
        channel.stream_ready = True
        return None


class _StreamChannel(HTTPChannel):
    """A waitress connection that can become a stream fed from the I/O loop."""

    task_class = _StreamTask
    streams: EventLoopStreams  # set on the subclass made for one server
    pending_generation: int | None = None
    stream_ready = False
    streaming = False
    chunked = False
    generation = -1

    def received(self, data: bytes) -> bool:
        if self.streaming:
            return True  # a stream's client has nothing more to ask on this connection
        return super().received(data)

    def service(self) -> None:
        super().service()
        generation, self.pending_generation = self.pending_generation, None
        if generation is None:
            return
        if self.stream_ready:
            attach = functools.partial(self.streams.attach, self, generation)
            self.server.trigger.pull_trigger(attach)
        else:  # the response failed before it was sent
            self.streams.hub.release()

    def handle_close(self) -> None:
        if self.streaming:
            self.streams.detach(self)
        super().handle_close()


def serve_streams_from_event_loop(server: Any, hub: StreamHub) -> EventLoopStreams:
    """Make a waitress server (``waitress.create_server``) carry streams in its I/O loop."""
    servers = [s for s in getattr(server, "map", {}).values() if isinstance(s, BaseWSGIServer)]
    if isinstance(server, BaseWSGIServer):
        servers = [server]
    if not servers:
        raise TypeError(f"not a waitress server: {server!r}")
    streams = EventLoopStreams(hub, servers[0].trigger.pull_trigger)
    channel_class = type("KboardChannel", (_StreamChannel,), {"streams": streams})
    for each in servers:
        each.channel_class = channel_class
    streams.start()
    return streams
