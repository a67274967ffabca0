"""TensorBoard plugin names and kboard's own summary formats, spelled once for reader and writer."""

from __future__ import annotations

SCALARS = "scalars"
IMAGES = "images"
HISTOGRAMS = "histograms"
TEXT = "text"
HPARAMS = "hparams"
GRAPH_KERAS_MODEL = "graph_keras_model"  # the Keras callback's model config (write_graph)

# kboard's structured model summary: a DT_STRING scalar holding JSON in this format.
MODEL_SUMMARY = "kboard_model_summary"
MODEL_SUMMARY_FORMAT = "kboard.model_summary/1"
