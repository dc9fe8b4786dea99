"""Load a series, split it by time and window it (nothing here imports Keras)."""

from keras_seq.data.sources import DataSpec, load_series
from keras_seq.data.windows import Scaling, WindowSpec, Windows, make_windows

__all__ = ["DataSpec", "Scaling", "WindowSpec", "Windows", "load_series", "make_windows"]
