"""kboard: a dashboard and toolkit for TensorBoard event files."""

__version__ = "0.1.0"

from kboard.writer import SummaryWriter  # noqa: E402 - after __version__, which setuptools reads

__all__ = ["SummaryWriter", "__version__"]
