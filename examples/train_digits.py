"""Train small Keras CNNs on generated digits with KBoardCallback: this writes ``sample_logs/``.

A small sweep: three learning rates, two seeds each, so comparing them means something (the
HPARAMS tab, and SCALARS grouping the seeds of a learning rate into a mean and band). Each run
has epoch and batch scalars, weight histograms and images, captioned predictions for a few
validation digits, its hyperparameters, the model summary with its layer graph, and text
notes. The digits are drawn with Pillow's
built-in font (``kboard.demo.make_digits``): nothing is downloaded. Seeds are fixed.

Usage: python examples/train_digits.py [OUTDIR]   (default: sample_logs/ of this checkout;
OUTDIR is replaced, and it must hold nothing but event files)
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402 - after quieting TensorFlow's start-up logs
import numpy as np  # noqa: E402

from kboard import summary  # noqa: E402
from kboard.demo import CLASS_NAMES, build_model, make_digits  # noqa: E402
from kboard.ingest import is_event_file  # noqa: E402
from kboard.keras import KBoardCallback  # noqa: E402

LEARNING_RATES = (0.0003, 0.003, 0.01)
SEEDS = (0, 1)
EPOCHS = 12
TRAIN_SAMPLES = 4000
VALIDATION_SAMPLES = 600
BATCH_SIZE = 64
DROPOUT = 0.2
DATA_SEED = 0
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "sample_logs"


def train_run(logdir: Path, lr: float, seed: int, data: tuple[np.ndarray, ...]) -> float:
    """Train one model at ``lr`` from ``seed`` into ``logdir``; return its validation accuracy."""
    x_train, y_train, x_val, y_val = data
    keras.utils.set_random_seed(seed)
    model = build_model(dropout=DROPOUT)
    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    notes = summary.create_file_writer(logdir / "train")
    with notes.as_default(step=0):
        summary.text(
            "notes/hyperparameters",
            "| setting | value |\n|---|---|\n"
            f"| learning rate | **{lr}** |\n| optimizer | Adam |\n| dropout | {DROPOUT} |\n"
            f"| batch size | {BATCH_SIZE} |\n| epochs | {EPOCHS} |\n| seed | {seed} |\n"
            f"| data | {TRAIN_SAMPLES} generated 16x16 digits, seed {DATA_SEED} |",
        )
    board = KBoardCallback(
        logdir,
        histogram_freq=1,
        write_images=True,
        update_freq=10,
        image_samples=(x_val[:8], y_val[:8]),
        class_names=CLASS_NAMES,
        hparams={"lr": lr, "seed": seed, "dropout": DROPOUT, "batch_size": BATCH_SIZE},
    )
    model.fit(
        x_train,
        y_train,
        batch_size=BATCH_SIZE,
        epochs=EPOCHS,
        validation_data=(x_val, y_val),
        callbacks=[board],
        verbose=0,
    )
    predicted = model.predict(x_val, batch_size=256, verbose=0).argmax(axis=1)
    accuracy = float((predicted == y_val).mean())
    confusion = np.zeros((10, 10), dtype=int)
    np.add.at(confusion, (y_val, predicted), 1)
    header = "| label \\ predicted | " + " | ".join(CLASS_NAMES) + " |"
    rows = [f"| **{d}** | " + " | ".join(str(n) for n in confusion[d]) + " |" for d in range(10)]
    with notes.as_default(step=EPOCHS - 1):
        summary.text(
            "notes/result",
            f"Validation accuracy after {EPOCHS} epochs: **{accuracy:.1%}**\n\n"
            + "\n".join([header, "|---" * 11 + "|", *rows]),
        )
    notes.close()
    return accuracy


def clear(out: Path) -> None:
    """Remove ``out`` when it holds nothing but event files (refuse anything else)."""
    if not out.exists():
        return
    others = [p for p in out.rglob("*") if p.is_file() and not is_event_file(p.name)]
    if others:
        sys.exit(f"{out} holds files that are not event files (e.g. {others[0]}); not replacing it")
    shutil.rmtree(out)


def main(out: str | None = None) -> None:
    """Write the sample logs to ``out``."""
    start = time.monotonic()
    logdir = Path(out) if out else DEFAULT_OUT
    clear(logdir)
    x, y = make_digits(TRAIN_SAMPLES + VALIDATION_SAMPLES, seed=DATA_SEED)
    data = (x[:TRAIN_SAMPLES], y[:TRAIN_SAMPLES], x[TRAIN_SAMPLES:], y[TRAIN_SAMPLES:])
    for lr in LEARNING_RATES:
        for seed in SEEDS:
            accuracy = train_run(logdir / f"lr={lr},seed={seed}", lr, seed, data)
            print(f"lr={lr}, seed={seed}: validation accuracy {accuracy:.1%}", flush=True)
    size = sum(p.stat().st_size for p in logdir.rglob("*") if p.is_file())
    print(f"wrote {logdir} ({size / 1024:.0f} KiB) in {time.monotonic() - start:.0f} s")


if __name__ == "__main__":
    main(*sys.argv[1:])
