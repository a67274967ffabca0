"""``KBoardCallback``: the logs of ``keras.callbacks.TensorBoard``, written by kboard's writer.

Switching is one line: ``keras.callbacks.TensorBoard(log_dir, ...)`` becomes
``KBoardCallback(log_dir, ...)``. The runs (``train``, ``validation``), tags, steps and
plugin formats are those of Keras 3's callback, written through kboard's TensorFlow-free
``SummaryWriter`` (so any Keras backend works), with these differences:

- every epoch's metrics are written whatever ``update_freq`` is (Keras's callback writes
  epoch metrics, histograms and evaluation metrics only for epochs whose last batch number
  is a multiple of an integer ``update_freq``);
- files are flushed at every epoch end, so every completed epoch is on disk even when
  training stops on an exception (the files are closed at ``on_train_end``, and otherwise
  when the callback is garbage-collected or the interpreter exits);
- the model summary (what ``model.summary()`` shows, as structured JSON) is written at the
  start of training with the ``kboard_model_summary`` plugin;
- weight images are scaled from the weight's min..max to black..white (TensorFlow clips
  float pixels to [0, 1], which shows every negative weight as black).

This is the only kboard module that imports Keras when imported (``kboard.demo`` imports it
only inside the functions that train, in the demo's child process).
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np
from PIL import Image, ImageDraw, ImageFont
from tensorboard.compat.proto import summary_pb2

from kboard.summary import normalize_hparams, session_group_name
from kboard.tfevents import protos
from kboard.tfevents.plugins import MODEL_SUMMARY as MODEL_SUMMARY_PLUGIN
from kboard.tfevents.plugins import MODEL_SUMMARY_FORMAT
from kboard.writer import SummaryWriter

__all__ = ["KBoardCallback", "MODEL_SUMMARY_FORMAT", "MODEL_SUMMARY_PLUGIN", "model_summary"]

log = logging.getLogger("kboard")

MODEL_SUMMARY_TAG = "model_summary"
KERAS_MODEL_TAG = "keras"  # the tag Keras's callback writes the model config under
KERAS_MODEL_PLUGIN = "graph_keras_model"
TRAIN_RUN = "train"
VALIDATION_RUN = "validation"
WEIGHT_IMAGES_PER_WEIGHT = 3  # tf.summary.image's default max_outputs, which Keras uses
MAX_IMAGE_SAMPLES = 16
SAMPLE_IMAGES_TAG = "samples/predictions"
SAMPLE_TABLE_TAG = "samples/predictions_table"

# Layer settings worth showing next to a layer (the MODEL tab shows the same keys).
KEY_SETTINGS = (
    "units", "activation", "filters", "kernel_size", "strides", "padding", "pool_size", "rate",
    "input_dim", "output_dim", "num_heads", "key_dim", "axis", "epsilon", "momentum",
    "return_sequences", "use_bias", "target_shape", "data_format",
)  # fmt: skip


class KBoardCallback(keras.callbacks.Callback):
    """Log metrics, weights and the model summary of ``fit`` as ``keras.callbacks.TensorBoard``.

    ``log_dir``, ``histogram_freq``, ``write_graph``, ``write_images``,
    ``write_steps_per_second`` and ``update_freq`` mean what they mean for Keras's callback.
    ``profile_batch``, ``embeddings_freq`` and ``embeddings_metadata`` are accepted so that
    switching is one line, but profiling and embeddings are not supported (a warning says so
    when they are turned on). Extras: ``image_samples=(x, y)`` writes, at every epoch end,
    up to 16 of the images ``x`` captioned with the model's prediction and the label ``y``
    (``class_names`` names the classes); ``hparams={name: value}`` (and ``trial_id``) records
    the fit as a session of those hyperparameters in ``log_dir``, as ``hp.KerasCallback``;
    ``flush_secs`` is how often a background thread
    writes pending events between the flushes at epoch ends.
    """

    def __init__(
        self,
        log_dir: str | os.PathLike[str] = "logs",
        histogram_freq: int = 0,
        write_graph: bool = True,
        write_images: bool = False,
        write_steps_per_second: bool = False,
        update_freq: str | int = "epoch",
        profile_batch: int | str | Sequence[int] = 0,
        embeddings_freq: int = 0,
        embeddings_metadata: str | Mapping[str, str] | None = None,
        *,
        image_samples: tuple[Any, Any] | None = None,
        class_names: Sequence[str] | None = None,
        flush_secs: float = 1.0,
        hparams: Mapping[Any, Any] | None = None,
        trial_id: str | None = None,
    ) -> None:
        super().__init__()
        if isinstance(histogram_freq, bool) or not isinstance(histogram_freq, int):
            raise TypeError(f"histogram_freq must be an int, got {histogram_freq!r}")
        if histogram_freq < 0:
            raise ValueError(f"histogram_freq must be >= 0, got {histogram_freq}")
        self.log_dir = os.fspath(log_dir)
        self.histogram_freq = histogram_freq
        self.write_graph = bool(write_graph)
        self.write_images = bool(write_images)
        self.write_steps_per_second = bool(write_steps_per_second)
        self.update_freq = _update_freq(update_freq)
        self.flush_secs = flush_secs
        for name, value in (
            ("profile_batch", profile_batch),
            ("embeddings_freq", embeddings_freq),
            ("embeddings_metadata", embeddings_metadata),
        ):
            if value:
                warnings.warn(
                    f"KBoardCallback ignores {name}={value!r}: profiling and embeddings are "
                    "not supported (use keras.callbacks.TensorBoard for them)",
                    UserWarning,
                    stacklevel=2,
                )
        self.hparams = normalize_hparams(hparams) if hparams is not None else None
        self.trial_id = trial_id
        if self.hparams is not None:
            protos.session_start(self.hparams)  # fail fast on a value of the wrong type
        self.image_samples = _check_samples(image_samples)
        self.class_names = list(class_names) if class_names is not None else None
        self._writers: dict[str, SummaryWriter] = {}
        # Close the files when the callback is collected (e.g. after an interrupted fit in a
        # notebook); the writers' own finalizers close them at interpreter exit.
        self._finalizer = weakref.finalize(self, _close_writers, self._writers)
        self._global_train_batch = 0
        self._summary_pending = False
        self._batch_start = 0.0
        self._epoch_start = 0.0
        self._epoch_start_iterations = 0
        self._warned: set[str] = set()

    # -- writers -----------------------------------------------------------------------
    def _writer(self, run: str) -> SummaryWriter:
        """Return the open writer of ``run``, creating its event file on first use."""
        writer = self._writers.get(run)
        if writer is None:
            writer = self._writers[run] = SummaryWriter(
                os.path.join(self.log_dir, run), flush_secs=self.flush_secs, filename_suffix=".v2"
            )
        return writer

    def _flush(self) -> None:
        for writer in self._writers.values():
            writer.flush()

    def close(self) -> None:
        """Flush and close the event files (they are reopened, as new files, when needed)."""
        _close_writers(self._writers)

    # -- training ----------------------------------------------------------------------
    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.close()  # a previous fit or evaluate: start new files, as Keras does
        self._global_train_batch = 0
        self._summary_pending = True
        if self.hparams is not None:  # as hp.KerasCallback: the session is the log_dir run
            group = session_group_name(self.trial_id, self.hparams)
            start = protos.session_start(
                self.hparams, group_name=group, start_time_secs=time.time()
            )
            self._writer("").add_value(start, 0)
        if _is_built(self.model) and all(_is_built(layer) for layer in self.model.layers):
            self._write_model_summary()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self.hparams is not None:
            self._writer("").add_value(protos.session_end("success", time.time()), 0)
        self.close()

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.write_steps_per_second:
            self._epoch_start = time.perf_counter()
            self._epoch_start_iterations = self._iterations() or 0

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._global_train_batch += 1
        if self.write_steps_per_second:
            self._batch_start = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self._summary_pending:  # a subclassed model built by its first batch
            self._write_model_summary()
        step = self._global_train_batch
        if self.update_freq == "epoch" or step % self.update_freq:
            return
        writer = self._writer(TRAIN_RUN)
        if self.write_steps_per_second:
            elapsed = time.perf_counter() - self._batch_start
            if elapsed > 0:
                writer.add_scalar("batch_steps_per_second", 1.0 / elapsed, step)
        if isinstance(logs, Mapping):
            self._write_scalars(writer, "batch_", logs, step)

    def on_test_end(self, logs: dict[str, Any] | None = None) -> None:
        iterations = self._iterations()
        if iterations is None or not isinstance(logs, Mapping):
            return
        writer = self._writer(VALIDATION_RUN)
        for name, value in logs.items():
            self._write_scalar(writer, f"evaluation_{name}_vs_iterations", value, iterations)
        writer.flush()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = dict(logs or {})
        train = {k: v for k, v in logs.items() if not k.startswith("val_")}
        validation = {k[4:]: v for k, v in logs.items() if k.startswith("val_")}
        train.update(self._learning_rates())
        if self.write_steps_per_second:
            elapsed = time.perf_counter() - self._epoch_start
            done = (self._iterations() or 0) - self._epoch_start_iterations
            if elapsed > 0:
                train["steps_per_second"] = done / elapsed
        self._write_scalars(self._writer(TRAIN_RUN), "epoch_", train, epoch)
        if validation:
            self._write_scalars(self._writer(VALIDATION_RUN), "epoch_", validation, epoch)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            self._write_weights(epoch)
        if self.image_samples is not None:
            self._write_image_samples(epoch)
        self._flush()

    # -- what is written -----------------------------------------------------------------
    def _write_scalars(
        self, writer: SummaryWriter, prefix: str, values: Mapping[str, Any], step: int
    ) -> None:
        for name, value in values.items():
            self._write_scalar(writer, f"{prefix}{name}", value, step)

    def _write_scalar(self, writer: SummaryWriter, tag: str, value: Any, step: int) -> None:
        try:
            number = protos.as_float(keras.ops.convert_to_numpy(value))
        except (TypeError, ValueError):
            if tag not in self._warned:  # e.g. a metric that returns one value per class
                self._warned.add(tag)
                log.warning("KBoardCallback: %s is not a single number; not written", tag)
            return
        writer.add_scalar(tag, number, step)

    def _write_model_summary(self) -> None:
        self._summary_pending = False
        writer = self._writer(TRAIN_RUN)
        try:
            summary = model_summary(self.model)
        except Exception as exc:  # a summary must never break training
            log.warning("KBoardCallback: cannot summarise the model (%s)", exc)
        else:
            writer.add_value(model_summary_value(summary), 0)
        if self.write_graph and type(self.model).__name__ in ("Functional", "Sequential"):
            try:
                config = self.model.to_json()
            except Exception as exc:
                log.warning("KBoardCallback: the model config is not JSON (%s)", exc)
            else:
                writer.add_value(keras_model_value(config), 0)
        writer.flush()

    def _write_weights(self, epoch: int) -> None:
        writer = self._writer(TRAIN_RUN)
        for layer in self.model.layers:
            for weight in layer.weights:
                name = weight.path.replace(":", "_")
                values = keras.ops.convert_to_numpy(weight)
                writer.add_histogram(f"{name}/histogram", values, epoch)
                if self.write_images:
                    pixels = weight_image(values)
                    if pixels is not None:
                        writer.add_value(
                            protos.image(
                                f"{name}/image", pixels, max_outputs=WEIGHT_IMAGES_PER_WEIGHT
                            ),
                            epoch,
                        )

    def _write_image_samples(self, epoch: int) -> None:
        x, y = self.image_samples
        output = self.model.predict_on_batch(x)
        if isinstance(output, Mapping):
            output = next(iter(output.values()))
        elif isinstance(output, (list, tuple)):
            output = output[0]
        predicted, confidence = _classify(keras.ops.convert_to_numpy(output))
        truth = _labels(y)
        names = [self._class_name(int(p)) for p in predicted]
        true_names = [self._class_name(int(t)) for t in truth]
        images = [
            caption_image(x[i], names[i], true_names[i], float(confidence[i]))
            for i in range(len(x))
        ]
        writer = self._writer(VALIDATION_RUN)
        writer.add_value(protos.image(SAMPLE_IMAGES_TAG, np.stack(images)), epoch)
        rows = [
            f"| {i} | {true_names[i]} | {names[i]} | {confidence[i]:.1%} | "
            f"{'yes' if predicted[i] == truth[i] else '**no**'} |"
            for i in range(len(x))
        ]
        table = "\n".join(
            ["| # | label | prediction | confidence | right |", "|---|---|---|---|---|", *rows]
        )
        writer.add_text(SAMPLE_TABLE_TAG, table, epoch)

    def _class_name(self, index: int) -> str:
        if self.class_names is not None and 0 <= index < len(self.class_names):
            return str(self.class_names[index])
        return str(index)

    # -- reading the model's state ---------------------------------------------------------
    def _iterations(self) -> int | None:
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is None or not hasattr(optimizer, "iterations"):
            return None
        return int(keras.ops.convert_to_numpy(optimizer.iterations))

    def _learning_rates(self) -> dict[str, float]:
        """Return the learning rate(s) as Keras's callback logs them."""
        optimizer = getattr(self.model, "optimizer", None)
        optimizer = getattr(optimizer, "inner_optimizer", optimizer)  # LossScaleOptimizer
        if hasattr(optimizer, "optimizers"):
            return {
                f"learning_rate_{opt.name}": float(keras.ops.convert_to_numpy(opt.learning_rate))
                for opt in optimizer.optimizers
            }
        if isinstance(optimizer, keras.optimizers.Optimizer):
            return {"learning_rate": float(keras.ops.convert_to_numpy(optimizer.learning_rate))}
        return {}


def _update_freq(value: str | int) -> str | int:
    if value == "batch":
        return 1
    if value == "epoch":
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f'update_freq must be "epoch", "batch" or an int >= 1, got {value!r}')
    return value


def _close_writers(writers: dict[str, SummaryWriter]) -> None:
    for writer in writers.values():
        writer.close()
    writers.clear()


def _is_built(model: Any) -> bool:
    return bool(getattr(model, "built", False))


def _check_samples(samples: tuple[Any, Any] | None) -> tuple[np.ndarray, np.ndarray] | None:
    if samples is None:
        return None
    try:
        x, y = samples
    except (TypeError, ValueError):
        raise ValueError("image_samples must be a pair (x, y)") from None
    x, y = np.asarray(x)[:MAX_IMAGE_SAMPLES], np.asarray(y)[:MAX_IMAGE_SAMPLES]
    if len(x) == 0 or len(x) != len(y):
        raise ValueError("image_samples needs as many labels y as images x, at least one")
    if not (x.ndim == 3 or (x.ndim == 4 and x.shape[3] in (1, 3, 4))):
        raise ValueError(f"image_samples x must be [k, h, w] or [k, h, w, c] images, got {x.shape}")
    return x, y


# -- the model summary ---------------------------------------------------------------------
def model_summary(model: keras.Model) -> dict[str, Any]:
    """Return what ``model.summary()`` shows as ``kboard.model_summary/1`` JSON data."""
    trainable = _count(model.trainable_weights)
    non_trainable = _count(model.non_trainable_weights)
    return {
        "format": MODEL_SUMMARY_FORMAT,
        "name": model.name,
        "class": type(model).__name__,
        "total_params": trainable + non_trainable,
        "trainable_params": trainable,
        "non_trainable_params": non_trainable,
        "layers": [_layer_entry(layer) for layer in _summary_layers(model)],
        "text": summary_text(model),
        "keras_config": _model_config(model),
    }


def _model_config(model: keras.Model) -> dict[str, Any] | None:
    """The model's config as ``to_json`` gives it (how its layers connect), when it has one."""
    if type(model).__name__ not in ("Functional", "Sequential"):
        return None
    try:
        return json.loads(model.to_json())
    except Exception:  # a layer whose config is not JSON: the summary stays without it
        return None


def summary_text(model: keras.Model) -> str:
    """Return the plain text ``model.summary()`` prints."""
    chunks: list[str] = []
    try:
        model.summary(print_fn=lambda text, *_, **__: chunks.append(str(text)))
    except ValueError:  # "Insufficient console width": a very narrow terminal
        chunks.clear()
        model.summary(line_length=100, print_fn=lambda text, *_, **__: chunks.append(str(text)))
    return "\n".join(chunks).rstrip("\n")


def model_summary_value(summary: Mapping[str, Any]) -> summary_pb2.Summary.Value:
    """Build the ``kboard_model_summary`` value: a DT_STRING scalar holding the JSON."""
    data = json.dumps(summary, ensure_ascii=False).encode("utf-8")
    metadata = protos.summary_metadata(MODEL_SUMMARY_PLUGIN)
    metadata.data_class = summary_pb2.DATA_CLASS_TENSOR
    return summary_pb2.Summary.Value(
        tag=MODEL_SUMMARY_TAG, tensor=protos.string_tensor([data], []), metadata=metadata
    )


def keras_model_value(config_json: str) -> summary_pb2.Summary.Value:
    """Build the ``keras`` value as Keras's callback writes it (``graph_keras_model``, v1)."""
    metadata = protos.summary_metadata(KERAS_MODEL_PLUGIN)
    metadata.plugin_data.content = b"1"
    metadata.data_class = summary_pb2.DATA_CLASS_BLOB_SEQUENCE
    return summary_pb2.Summary.Value(
        tag=KERAS_MODEL_TAG,
        tensor=protos.string_tensor([config_json.encode("utf-8")], [1]),
        metadata=metadata,
    )


def _count(weights: Sequence[Any]) -> int:
    unique = {id(w): w for w in weights}.values()
    return int(sum(int(np.prod(w.shape)) for w in unique))


def _summary_layers(model: Any) -> list[Any]:
    """Return the rows ``model.summary()`` shows: the operations of a functional model."""
    if not isinstance(model, keras.Sequential) and type(model).__name__ == "Functional":
        operations = getattr(model, "operations", None)
        if operations is not None:
            return list(operations)
    return list(getattr(model, "layers", []))


def _layer_entry(layer: Any) -> dict[str, Any]:
    nested = getattr(layer, "layers", None) or []
    return {
        "name": str(layer.name),
        "class": type(layer).__name__,
        "output_shape": _output_shape(layer),
        "params": int(layer.count_params()) if _is_built(layer) else 0,
        "trainable": bool(getattr(layer, "trainable", True)),
        "config": _key_config(layer),
        "layers": [_layer_entry(sub) for sub in _summary_layers(layer)] if nested else [],
    }


def _output_shape(layer: Any) -> str:
    """Return the output shape as ``model.summary()`` prints it, e.g. ``(None, 32)``."""
    try:  # Keras's own formatting (a private function: fall back when it moves)
        import rich.text
        from keras.src.utils.summary_utils import format_layer_shape

        return rich.text.Text.from_markup(format_layer_shape(layer)).plain
    except Exception:
        pass
    try:
        shape = layer.output.shape
    except Exception:
        return "?"
    return "(" + ", ".join(str(d) for d in shape) + ")"


def _key_config(layer: Any) -> dict[str, Any]:
    try:
        config = layer.get_config()
    except Exception:
        return {}
    out: dict[str, Any] = {}
    for key in KEY_SETTINGS:
        value = config.get(key) if isinstance(config, Mapping) else None
        if isinstance(value, (str, int, float, bool)):
            out[key] = value
        elif isinstance(value, (list, tuple)) and all(
            isinstance(v, (str, int, float, bool)) for v in value
        ):
            out[key] = list(value)
    return out


# -- images ----------------------------------------------------------------------------
def weight_image(values: np.ndarray) -> np.ndarray | None:
    """Lay a weight out as ``[k, h, w, 1]`` images as Keras's callback does, scaled to [0, 1].

    Biases become one column, dense kernels one image (wider than tall), 3-D conv kernels
    one image per output channel; other shapes give None.
    """
    image = np.squeeze(np.asarray(values, dtype=np.float64))
    if image.ndim == 1:
        image = image.reshape(1, image.shape[0], 1, 1)
    elif image.ndim == 2:
        if image.shape[0] > image.shape[1]:
            image = image.T
        image = image.reshape(1, image.shape[0], image.shape[1], 1)
    elif image.ndim == 3:
        if keras.config.image_data_format() == "channels_last":
            image = image.transpose(2, 0, 1)
        image = image.reshape(*image.shape, 1)
    else:
        return None
    low, high = float(np.nanmin(image)), float(np.nanmax(image))
    if not (np.isfinite(low) and np.isfinite(high)) or high <= low:
        return np.full(image.shape, 0.5)
    return (image - low) / (high - low)


def _classify(output: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return predicted classes and their probabilities from probabilities or logits."""
    out = np.asarray(output, dtype=np.float64)
    out = out.reshape(len(out), -1)
    if out.shape[1] == 1:  # one sigmoid (or logit) unit
        p = out[:, 0]
        if p.min() < 0 or p.max() > 1:
            p = 1 / (1 + np.exp(-p))
        predicted = (p >= 0.5).astype(np.int64)
        return predicted, np.where(predicted == 1, p, 1 - p)
    if out.min() < 0 or not np.allclose(out.sum(axis=1), 1, atol=1e-3):  # logits
        out = np.exp(out - out.max(axis=1, keepdims=True))
        out /= out.sum(axis=1, keepdims=True)
    predicted = out.argmax(axis=1)
    return predicted, out[np.arange(len(out)), predicted]


def _labels(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:  # one-hot
        return y.argmax(axis=1)
    return y.reshape(len(y)).astype(np.int64)


def caption_image(pixels: Any, predicted: str, label: str, confidence: float) -> np.ndarray:
    """Return an RGB ``[h, w, 3]`` uint8 image: the input enlarged, with its prediction below.

    The caption is green when the prediction is right, red when it is wrong.
    """
    array = np.asarray(pixels, dtype=np.float64)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    low, high = float(np.nanmin(array)), float(np.nanmax(array))
    if low < 0 or high > 1:
        array = array / 255.0 if low >= 0 and high <= 255 else (array - low) / (high - low or 1)
    array = np.clip(np.nan_to_num(array), 0, 1)
    picture = Image.fromarray(np.rint(array * 255).astype(np.uint8)).convert("RGB")
    scale = max(1, -(-64 // max(picture.height, 1)))
    picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    font = ImageFont.load_default()
    lines = [f"pred {predicted} {confidence:.0%}", f"label {label}"]
    draw = ImageDraw.Draw(picture)
    text_width = max(int(draw.textlength(line, font=font)) for line in lines) + 6
    canvas = Image.new("RGB", (max(picture.width, text_width), picture.height + 26), "white")
    canvas.paste(picture, ((canvas.width - picture.width) // 2, 0))
    color = (0, 128, 0) if predicted == label else (200, 0, 0)
    draw = ImageDraw.Draw(canvas)
    draw.text((3, picture.height + 1), lines[0], fill=color, font=font)
    draw.text((3, picture.height + 13), lines[1], fill=(60, 60, 60), font=font)
    return np.asarray(canvas)
