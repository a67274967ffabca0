"""TensorBoard plugin names and kboard's own summary formats, spelled once for reader and writer."""

from __future__ import annotations

SCALARS = "scalars"
IMAGES = "images"
HISTOGRAMS = "histograms"
TEXT = "text"
HPARAMS = "hparams"
GRAPH_KERAS_MODEL = "graph_keras_model"  # the Keras callback's model config (write_graph)
GRAPHS = "graphs"  # a GraphDef in an event's graph_def (or meta_graph_def) field
GRAPH_RUN_METADATA = "graph_run_metadata"  # tf.summary.trace_export with the profiler
GRAPH_RUN_METADATA_GRAPH = "graph_run_metadata_graph"  # tf.summary.trace_export(graph=True)
GRAPH_TAGGED_RUN_METADATA = "graph_tagged_run_metadata"  # an event's tagged_run_metadata

# kboard's structured model summary: a DT_STRING scalar holding JSON in this format.
MODEL_SUMMARY = "kboard_model_summary"
MODEL_SUMMARY_FORMAT = "kboard.model_summary/1"
