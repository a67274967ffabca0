"""Benchmarks: a deterministic logdir generator and a runner against TensorBoard."""
