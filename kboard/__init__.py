"""kboard: a dashboard and toolkit for TensorBoard event files."""

__version__ = "0.1.0"
