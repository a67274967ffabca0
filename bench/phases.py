"""Where kboard's start-up time goes, phase by phase, on one logdir.

Process start (the interpreter alone) and imports are timed in fresh processes; discovery,
framing (reading bytes and splitting records, CRCs included), decoding and filling the store
are timed inside one real ``LogdirReader.reload()`` by wrapping the functions it calls.

    python -m bench.phases LOGDIR [--repeat 3]
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

# What ``kboard serve`` imports before it reads a file (the CLI, the app, the reader).
SERVE_IMPORTS = "import kboard.cli, kboard.server.serve, kboard.server.app"


def _subprocess_seconds(code: str, repeat: int) -> float:
    """Best wall time of ``python -c code`` in a fresh process."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        best = min(best, time.perf_counter() - started)
    return best


@contextlib.contextmanager
def _timed(owner: Any, name: str, totals: dict[str, float], phase: str) -> Iterator[None]:
    """Add the time spent in ``owner.name`` to ``totals[phase]`` while the block runs."""
    original: Callable[..., Any] = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            totals[phase] += time.perf_counter() - started

    setattr(owner, name, wrapper)
    try:
        yield
    finally:
        setattr(owner, name, original)


def reload_phases(logdir: str) -> dict[str, float]:
    """Seconds spent in each phase of one cold ``reload()`` of ``logdir`` (no cache)."""
    from kboard import ingest

    totals = dict.fromkeys(("discovery", "framing", "decoding", "store", "reload"), 0.0)
    reader = ingest.LogdirReader(logdir)
    with contextlib.ExitStack() as stack:
        stack.enter_context(_timed(ingest.LogdirReader, "_discover", totals, "discovery"))
        stack.enter_context(_timed(ingest, "read_block", totals, "framing"))
        stack.enter_context(_timed(ingest, "decode_block", totals, "decoding"))
        stack.enter_context(_timed(ingest._RunBatch, "apply", totals, "store"))
        started = time.perf_counter()
        reader.reload()
        totals["reload"] = time.perf_counter() - started
    totals["other reading"] = totals["reload"] - sum(
        totals[k] for k in ("discovery", "framing", "decoding", "store")
    )
    return totals


def startup_phases(logdir: str, repeat: int = 3) -> dict[str, float]:
    """Interpreter start, imports, and the reload phases (best of ``repeat`` each)."""
    from bench.run import compile_kboard

    compile_kboard()  # timed as installed: from bytecode
    interpreter = _subprocess_seconds("pass", repeat)
    imports = _subprocess_seconds(SERVE_IMPORTS, repeat) - interpreter
    runs = [reload_phases(logdir) for _ in range(repeat)]
    best = min(runs, key=lambda r: r["reload"])
    return {"process start": interpreter, "imports": imports, **best}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("logdir")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    for name, seconds in startup_phases(args.logdir, args.repeat).items():
        print(f"{name:>15}: {seconds * 1000:8.0f} ms")


if __name__ == "__main__":
    main()
