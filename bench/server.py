"""Start a server process, wait for the URL it prints, and stop it (and its children) for sure.

One helper for every benchmark and test that runs ``kboard serve`` (or TensorBoard, or
``kboard demo``) as a real process::

    with served(logdir, "--no-watch") as server:
        urllib.request.urlopen(server.url + "/api/runs")

The process runs in a session of its own, its output goes to a file (a pipe nobody reads fills
up and blocks it), and it is stopped when the block ends, however it ends: ``stop_signal``
(SIGTERM) to its process group, then SIGKILL after ``stop_timeout`` seconds. A process that has
not printed its URL within ``timeout`` seconds is stopped the same way, and one still running
after ``lifetime`` seconds is stopped by a watchdog even while the block hangs.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

# What kboard ("serving at http://localhost:8080/") and TensorBoard ("at http://...:6006/") print.
URL = re.compile(r"(http://\S+?:(\d+))/")
# Debian's Chromium, headless, kept off the network (this machine has none but loopback).
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Runs the command with SIGINT at its default, even when started from a background job (which
# ignores SIGINT, and children inherit that), so that a Ctrl-C test can send SIGINT.
_SIGINT_DEFAULT = "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
_SIGINT_DEFAULT += "os.execvp(sys.argv[1], sys.argv[1:])"


class Server:
    """A started process: ``url`` and ``port`` once it printed them; ``stop()`` is idempotent."""

    def __init__(
        self,
        cmd: Sequence[str],
        log: Path,
        *,
        stop_signal: int = signal.SIGTERM,
        stop_timeout: float = 10.0,
        env: dict[str, str] | None = None,
    ) -> None:
        self.log = log
        self.url = ""
        self.port = 0
        self.stop_signal = stop_signal
        self.stop_timeout = stop_timeout
        self.outlived = False  # stopped by the lifetime watchdog
        self._saved: str | None = None  # the output, once the log is about to go
        self._lock = threading.Lock()
        if stop_signal == signal.SIGINT:
            cmd = [sys.executable, "-c", _SIGINT_DEFAULT, *cmd]
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                list(cmd),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped with its children
                env=env,
            )

    def output(self) -> str:
        """Everything the process printed so far (stdout and stderr)."""
        if self._saved is not None:
            return self._saved
        return self.log.read_text(errors="replace")

    def save_output(self) -> None:
        """Keep the output in memory (the log is a temporary file)."""
        self._saved = self.output()

    def wait_for_url(self, timeout: float) -> str:
        """Wait until the process prints its URL; stop it and raise if it does not in time."""
        deadline = time.monotonic() + timeout
        while True:
            match = URL.search(self.output())
            if match:
                self.url, self.port = match.group(1), int(match.group(2))
                return self.url
            exited = self._exited(0)
            if exited or time.monotonic() > deadline:
                self.stop()
                why = f"exit status {self.proc.returncode}" if exited else "no URL in time"
                raise RuntimeError(f"{self.proc.args!r} did not start ({why}):\n{self.output()}")
            time.sleep(0.01)

    def stop(self) -> int:
        """Send ``stop_signal`` to the process group, SIGKILL it if needed; the exit status."""
        with self._lock:
            if self.proc.returncode is None and not self._exited(0):
                self._signal(self.stop_signal)
                if not self._exited(self.stop_timeout):
                    self._signal(signal.SIGKILL)
                    self._exited(None)
            if self.proc.returncode is None:
                # The leader has exited but is not reaped, so its pid still names the group.
                self._signal(signal.SIGKILL)  # whatever it started and left behind
                self.proc.wait()
            return self.proc.returncode

    def _signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signum)

    def _exited(self, timeout: float | None) -> bool:
        """Wait for the leader to exit, without reaping it (its pid keeps naming the group)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        flags = os.WEXITED | os.WNOWAIT | os.WNOHANG
        while True:
            try:
                if os.waitid(os.P_PID, self.proc.pid, flags) is not None:
                    return True
            except ChildProcessError:  # already reaped
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.01)

    def _outlive(self) -> None:
        """Stop a process that is still running after its lifetime (a hung test)."""
        self.outlived = not self._exited(0)
        self.stop()


@contextlib.contextmanager
def running(
    cmd: Sequence[str],
    *,
    timeout: float = 60.0,
    lifetime: float | None = None,
    stop_signal: int = signal.SIGTERM,
    stop_timeout: float = 10.0,
    log: str | Path | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[Server]:
    """Run ``cmd`` until the block ends; yield it once it has printed its URL."""
    with contextlib.ExitStack() as stack:
        if log is None:
            log = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kboard-srv-")))
            log = log / "output.log"
        server = Server(cmd, Path(log), stop_signal=stop_signal, stop_timeout=stop_timeout, env=env)
        stack.callback(server.save_output)
        stack.callback(server.stop)
        if lifetime is not None:
            watchdog = threading.Timer(lifetime, server._outlive)
            watchdog.daemon = True
            watchdog.start()
            stack.callback(watchdog.cancel)
        server.wait_for_url(timeout)
        yield server
        if server.outlived:
            raise TimeoutError(f"{server.proc.args!r} ran longer than {lifetime:g} s; stopped")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (for a server that must be told its port)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def running_kboard(*args: str | Path, **kwargs) -> contextlib.AbstractContextManager[Server]:
    """Run ``python -m kboard ARGS`` (``serve``, ``demo``) as :func:`running` does."""
    return running([sys.executable, "-m", "kboard", *map(str, args)], **kwargs)


def served(logdir: str | Path, *args: str, **kwargs) -> contextlib.AbstractContextManager[Server]:
    """Run ``kboard serve --logdir LOGDIR ARGS`` as :func:`running` does."""
    return running_kboard("serve", "--logdir", logdir, *args, **kwargs)
