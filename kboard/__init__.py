"""kboard: a dashboard and toolkit for TensorBoard event files."""

from kboard.read import read_histograms, read_images, read_scalars
from kboard.version import __version__
from kboard.writer import SummaryWriter

__all__ = ["SummaryWriter", "__version__", "read_histograms", "read_images", "read_scalars"]
