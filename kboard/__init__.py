"""kboard: a dashboard and toolkit for TensorBoard event files."""

__version__ = "0.1.0"

from kboard.read import read_histograms, read_images, read_scalars  # noqa: E402
from kboard.writer import SummaryWriter  # noqa: E402 - after __version__, which setuptools reads

__all__ = ["SummaryWriter", "__version__", "read_histograms", "read_images", "read_scalars"]
