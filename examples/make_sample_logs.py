"""Write small sample logs with kboard's TensorFlow-free writer (no training involved).

Three runs of a simulated training curve that differ in learning rate, with scalars, weight
histograms, images and text notes. Usage: python examples/make_sample_logs.py [OUTDIR]
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np

from kboard import SummaryWriter

STEPS = 200
LEARNING_RATES = (0.1, 0.03, 0.01)


def write_run(logdir: Path, lr: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    start = 1_767_225_600.0 + seed * 3600.0  # fixed wall times keep the files reproducible
    for split, noise in (("train", 0.04), ("validation", 0.06)):
        with SummaryWriter(str(logdir / f"lr={lr}" / split), flush_secs=60) as writer:
            loss = 2.3
            for step in range(STEPS):
                wall = start + step * 1.5
                loss = loss * (1 - lr * 0.2) + rng.normal(0, noise) * loss * 0.2
                writer.add_scalar("epoch_loss", loss, step, walltime=wall)
                writer.add_scalar("epoch_accuracy", 1 - loss / 2.5, step, walltime=wall)
                if split == "train":
                    writer.add_scalar("epoch_learning_rate", lr * 0.99**step, step, walltime=wall)
                if split == "train" and step % 20 == 0:
                    spread = 1.0 / (1 + step * lr)
                    for layer in ("dense", "dense_1"):
                        weights = rng.normal(0, spread, 2000) + (0.1 if layer == "dense" else 0)
                        writer.add_histogram(
                            f"{layer}/kernel/histogram", weights, step, walltime=wall
                        )
                if split == "train" and step % 50 == 0:
                    grid = np.linspace(0, 1, 28)
                    phase = step / STEPS * np.pi
                    digit = np.outer(np.sin(grid * np.pi + phase), np.cos(grid * np.pi)) ** 2
                    writer.add_image("samples/prediction", digit[:, :, None], step, walltime=wall)
            if split == "train":
                writer.add_text(
                    "notes",
                    f"Learning rate **{lr}**, {STEPS} steps, seed {seed}.",
                    0,
                    walltime=start,
                )


def main(out: str = "sample_logs") -> None:
    logdir = Path(out)
    if logdir.exists():
        shutil.rmtree(logdir)
    for seed, lr in enumerate(LEARNING_RATES):
        write_run(logdir, lr, seed)
    size = sum(p.stat().st_size for p in logdir.rglob("*") if p.is_file())
    print(f"wrote {logdir} ({size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main(*sys.argv[1:])
