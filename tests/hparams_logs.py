"""Logdirs with hyperparameters, written by TensorBoard's ``hp`` API, torch and kboard."""

from __future__ import annotations

from pathlib import Path

import numpy as np

START = 1_700_000_000.0  # fixed session times, so that two writers' logs can be compared

# Five sessions in four groups: two seeds of one trial share its ``trial_id``.
SESSIONS = [
    ("a", {"lr": 0.01, "units": 4, "optimizer": "adam", "use_bias": True, "dropout": 0.1}),
    ("a", {"lr": 0.01, "units": 4, "optimizer": "adam", "use_bias": True, "dropout": 0.1}),
    ("b", {"lr": 0.1, "units": 8, "optimizer": "sgd", "use_bias": False, "dropout": 0.0}),
    ("c", {"lr": 0.1, "units": 2, "optimizer": "adam", "use_bias": True, "dropout": 0.5}),
    ("d", {"lr": 0.001, "units": 6, "optimizer": "sgd", "use_bias": False, "dropout": 0.2}),
]


def hp_config(hp):
    """The experiment config, as ``hp.HParam`` and ``hp.Metric`` objects (from TB or kboard)."""
    hparams = [
        hp.HParam("lr", hp.Discrete([0.001, 0.01, 0.1]), display_name="learning rate"),
        hp.HParam("units", hp.IntInterval(2, 8), description="units of the hidden layer"),
        hp.HParam("optimizer", hp.Discrete(["adam", "sgd"])),
        hp.HParam("use_bias", hp.Discrete([True, False])),
        hp.HParam("dropout", hp.RealInterval(0.0, 0.5)),
    ]
    metrics = [
        hp.Metric("epoch_loss", group="validation", display_name="val loss"),
        hp.Metric("epoch_accuracy", group="validation", display_name="val <b>acc</b>"),
        hp.Metric("epoch_loss", group="train", dataset_type=hp.Metric.TRAINING),
    ]
    return hparams, metrics


def write_hp_keras(logdir: Path) -> Path:
    """An experiment config and five sessions of a tiny Keras model under ``hp.KerasCallback``."""
    import keras
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp

    hparams, metrics = hp_config(hp)
    with tf.summary.create_file_writer(str(logdir)).as_default():
        hp.hparams_config(hparams=hparams, metrics=metrics, time_created_secs=START)
    rng = np.random.default_rng(0)
    x = rng.random((24, 3)).astype("float32")
    y = (x.sum(axis=1) > 1.5).astype("float32")
    for index, (trial, values) in enumerate(SESSIONS):
        keras.utils.set_random_seed(index)
        model = keras.Sequential(
            [
                keras.Input((3,)),
                keras.layers.Dense(values["units"], use_bias=values["use_bias"]),
                keras.layers.Dropout(values["dropout"]),
                keras.layers.Dense(1, activation="sigmoid"),
            ]
        )
        model.compile(
            keras.optimizers.SGD(values["lr"]), "binary_crossentropy", metrics=["accuracy"]
        )
        run = str(logdir / f"session{index}")
        callbacks = [
            keras.callbacks.TensorBoard(run, write_graph=False),
            hp.KerasCallback(run, values, trial_id=trial),
        ]
        model.fit(x, y, epochs=2, validation_split=0.25, verbose=0, callbacks=callbacks)
    return logdir


def write_hp_plain(logdir: Path) -> Path:
    """``hp.hparams`` and scalars with ``tf.summary``, no config: TB infers the experiment."""
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp
    from tensorboard.plugins.hparams import api_pb2
    from tensorboard.plugins.hparams import summary as hp_v1

    for index, (trial, values) in enumerate(SESSIONS):
        with tf.summary.create_file_writer(str(logdir / f"run{index}")).as_default():
            hp.hparams(values, trial_id=trial, start_time_secs=START + index)
            for step in range(3):
                tf.summary.scalar("loss", 1.0 / (step + 1 + index), step=step)
            if index != 4:  # the last one is still running: no end info
                status = api_pb2.STATUS_FAILURE if index == 3 else api_pb2.STATUS_SUCCESS
                end = hp_v1.session_end_pb(status, end_time_secs=START + 100 + index)
                tf.summary.experimental.write_raw_pb(end.SerializeToString(), step=0)
        with tf.summary.create_file_writer(str(logdir / f"run{index}" / "eval")).as_default():
            tf.summary.scalar("accuracy", 0.5 + index / 10, step=2)
    return logdir


def write_kboard_plain(logdir: Path) -> Path:
    """What :func:`write_hp_plain` writes, with ``kboard.summary`` (no TensorFlow)."""
    from kboard import summary

    for index, (trial, values) in enumerate(SESSIONS):
        writer = summary.create_file_writer(str(logdir / f"run{index}"))
        with writer.as_default():
            summary.hparams(values, trial_id=trial, start_time_secs=START + index)
            for step in range(3):
                summary.scalar("loss", 1.0 / (step + 1 + index), step=step)
            if index != 4:
                status = "failure" if index == 3 else "success"
                summary.session_end(status, end_time_secs=START + 100 + index, step=0)
        writer.close()
        writer = summary.create_file_writer(str(logdir / f"run{index}" / "eval"))
        with writer.as_default():
            summary.scalar("accuracy", 0.5 + index / 10, step=2)
        writer.close()
    return logdir


def write_config(logdir: Path, writer: str) -> None:
    """The experiment config alone, with TensorFlow (``"tf"``) or kboard."""
    if writer == "tf":
        import tensorflow as tf
        from tensorboard.plugins.hparams import api as hp

        with tf.summary.create_file_writer(str(logdir)).as_default():
            hp.hparams_config(*hp_config(hp), time_created_secs=START)
        return
    from kboard import summary

    with summary.create_file_writer(str(logdir)).as_default():
        summary.hparams_config(*hp_config(summary), time_created_secs=START)


TORCH_HPARAMS = [
    ({"lr": 0.1, "bsize": 16, "optimizer": "adam"}, 0.5, 0.9),
    ({"lr": 0.01, "bsize": 32, "optimizer": "sgd"}, 0.3, 0.8),
    ({"lr": 0.001, "bsize": 32, "optimizer": "sgd"}, 0.7, 0.6),
]


def write_torch_style(logdir: Path, writer_class) -> Path:
    """``add_hparams`` sessions (a sub-run each) beside ordinary scalars, torch's or kboard's."""
    with writer_class(str(logdir)) as writer:
        for step in range(3):
            writer.add_scalar("train/loss", 1.0 / (step + 1), step)
        for index, (hparams, loss, accuracy) in enumerate(TORCH_HPARAMS):
            writer.add_hparams(
                hparams,
                {"hparam/loss": loss, "hparam/accuracy": accuracy},
                hparam_domain_discrete={"optimizer": ["adam", "sgd"]},
                run_name=f"trial{index}",
            )
    return logdir
