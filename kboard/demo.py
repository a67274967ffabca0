"""``kboard demo``: train a small Keras model in the background and serve its logs live.

The dashboard process never imports TensorFlow: it starts the training as a child process
(``python -m kboard.demo --logdir DIR``), serves the temporary logdir while the child writes
it with ``KBoardCallback``, and on Ctrl-C stops the child and removes the logdir. The data are
digits drawn with Pillow's built-in font, so nothing is downloaded; ``make_digits`` and
``build_model`` are also used by ``examples/train_digits.py``. Keras is imported only inside
the functions that train.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from types import FrameType
from typing import Any, BinaryIO, TextIO

import click
import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps

TF_MISSING = 'kboard demo trains a Keras model and needs TensorFlow: pip install "kboard[tf]"'
DEMO_RUN = "digits"
CLASS_NAMES = tuple("0123456789")
IMAGE_SIZE = 16


def make_digits(count: int, size: int = IMAGE_SIZE, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Return ``count`` digit images ``[count, size, size, 1]`` (float32 in [0, 1]) and labels.

    Each is a digit 0-9 drawn with Pillow's default font at a random scale, width, slant,
    stroke and offset, dimmed at random over a noisy background: small, but it takes learning.
    """
    rng = np.random.default_rng(seed)
    glyphs = _glyphs()
    labels = rng.integers(0, 10, count)
    images = np.empty((count, size, size), dtype=np.float32)
    for i, label in enumerate(labels):
        glyph = glyphs[label]
        if rng.random() < 0.3:  # a bolder stroke
            glyph = ImageOps.expand(glyph, 1).filter(ImageFilter.MaxFilter(3))
        height = int(rng.integers(size // 2, int(size * 0.85) + 1))
        width = max(1, round(glyph.width * height / glyph.height * rng.uniform(0.8, 1.25)))
        image = glyph.resize((width, height), Image.BILINEAR)
        image = image.rotate(rng.uniform(-15, 15), Image.BILINEAR, expand=True)
        image = image.crop((0, 0, min(image.width, size), min(image.height, size)))
        top = int(rng.integers(0, size - image.height + 1))
        left = int(rng.integers(0, size - image.width + 1))
        canvas = np.zeros((size, size), dtype=np.float32)
        ink = np.asarray(image, dtype=np.float32) / 255.0 * rng.uniform(0.6, 1.0)
        canvas[top : top + image.height, left : left + image.width] = ink
        images[i] = canvas + rng.normal(0.0, 0.15, (size, size))
    return np.clip(images, 0.0, 1.0)[..., None], labels.astype(np.int64)


def _glyphs() -> list[Image.Image]:
    """Draw each digit large with the default font and crop it to its ink."""
    try:
        font: Any = ImageFont.load_default(size=32)
    except TypeError:  # Pillow < 10.1: the small bitmap font, scaled up later
        font = ImageFont.load_default()
    glyphs = []
    for digit in CLASS_NAMES:
        image = Image.new("L", (64, 64), 0)
        ImageDraw.Draw(image).text((8, 8), digit, fill=255, font=font)
        glyphs.append(image.crop(image.getbbox()))
    return glyphs


def build_model(dropout: float = 0.2, size: int = IMAGE_SIZE) -> Any:
    """Return a small CNN for digit images: a nested ``features`` block, then a classifier."""
    import keras

    features = keras.Sequential(
        [
            keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1"),
            keras.layers.BatchNormalization(name="norm"),
            keras.layers.MaxPooling2D(name="pool1"),
            keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv2"),
            keras.layers.MaxPooling2D(name="pool2"),
        ],
        name="features",
    )
    return keras.Sequential(
        [
            keras.Input((size, size, 1), name="digit"),
            features,
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dropout(dropout, name="dropout"),
            keras.layers.Dense(10, activation="softmax", name="classifier"),
        ],
        name="digits_cnn",
    )


def train(
    logdir: str, epochs: int, samples: int = 4000, seed: int = 0, out: TextIO | None = None
) -> None:
    """Train the demo model into ``logdir``/digits, saying each epoch's result on ``out``."""
    import keras

    from kboard.keras import KBoardCallback

    keras.utils.set_random_seed(seed)
    x, y = make_digits(samples + 800, seed=seed)
    x_train, y_train, x_val, y_val = x[:samples], y[:samples], x[samples:], y[samples:]
    model = build_model()
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    board = KBoardCallback(
        os.path.join(logdir, DEMO_RUN),
        histogram_freq=1,
        write_images=True,
        write_steps_per_second=True,
        update_freq=5,
        image_samples=(x_val[:8], y_val[:8]),
        class_names=CLASS_NAMES,
    )
    parent = os.getppid()

    def progress(epoch: int, logs: dict[str, Any] | None) -> None:
        logs = logs or {}
        loss, accuracy = logs.get("loss", float("nan")), logs.get("val_accuracy", float("nan"))
        message = f"epoch {epoch + 1}/{epochs}: loss {loss:.3f}, validation accuracy {accuracy:.3f}"
        _say(message, out)

    def stop_when_orphaned(batch: int, logs: dict[str, Any] | None) -> None:
        if os.getppid() != parent:  # the dashboard is gone: nobody watches
            model.stop_training = True

    watcher = keras.callbacks.LambdaCallback(
        on_epoch_end=progress, on_train_batch_end=stop_when_orphaned
    )
    model.fit(
        x_train,
        y_train,
        batch_size=64,
        epochs=epochs,
        validation_data=(x_val, y_val),
        callbacks=[board, watcher],
        verbose=0,
    )
    _say("training done; the dashboard keeps serving (Ctrl-C stops)", out)


def _say(message: str, stream: TextIO | None = None) -> None:
    print(f"kboard demo: {message}", file=stream or sys.stderr, flush=True)


def tensorflow_available() -> bool:
    """Return True when TensorFlow (the ``kboard[tf]`` extra) can be imported."""
    try:
        return importlib.util.find_spec("tensorflow") is not None
    except (ImportError, ValueError):
        return False


def run_demo(*, host: str, port: int | None, epochs: int) -> None:
    """Serve a temporary logdir while a child process trains into it; clean up on Ctrl-C."""
    from kboard.server.serve import serve_forever

    if not tensorflow_available():
        raise click.ClickException(TF_MISSING)
    workdir = tempfile.mkdtemp(prefix="kboard-demo-")
    logdir = os.path.join(workdir, "logs")
    os.mkdir(logdir)
    _say(f"training a small CNN on generated digits for {epochs} epochs into {logdir}")
    try:
        with open(os.path.join(workdir, "train.log"), "w+b") as log_file:
            child = subprocess.Popen(
                [sys.executable, "-m", "kboard.demo", "--logdir", logdir, "--epochs", str(epochs)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,  # progress lines, passed on by _relay
                stderr=log_file,  # TensorFlow's start-up noise; shown only if training fails
                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"},
                start_new_session=True,  # Ctrl-C reaches the dashboard, which stops the child
            )
            relay = threading.Thread(target=_relay, args=(child, log_file), daemon=True)
            relay.start()
            previous = signal.signal(signal.SIGTERM, _interrupt)
            try:
                serve_forever(
                    logdir, host=host, port=port, reload_interval=1.0, watch=True, threads=16
                )
            finally:
                signal.signal(signal.SIGTERM, previous)
                _stop(child)
                relay.join(timeout=5)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _relay(child: subprocess.Popen[bytes], log_file: BinaryIO) -> None:
    """Pass the child's progress lines on to stderr; say so when training fails."""
    assert child.stdout is not None
    for line in child.stdout:
        sys.stderr.write(line.decode("utf-8", errors="replace"))
        sys.stderr.flush()
    code = child.wait()
    if code > 0:
        log_file.seek(0)
        tail = log_file.read().decode("utf-8", errors="replace").splitlines()[-20:]
        _say(f"training failed (exit status {code}):\n" + "\n".join(tail))


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _stop(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def main(argv: Sequence[str] | None = None) -> None:
    """Train the demo model (the child process of ``kboard demo``)."""
    parser = argparse.ArgumentParser(prog="python -m kboard.demo", description=main.__doc__)
    parser.add_argument("--logdir", required=True)
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        train(args.logdir, args.epochs, out=sys.stdout)


if __name__ == "__main__":
    main()
