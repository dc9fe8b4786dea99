"""Heads of a Forecaster: what the network outputs, how it is trained, and how it maps back to raw values.

A head owns four things:
- `outputs(features, windows, zero)`: the layers from the backbone's
  features to the network's (normalized) output;
- `loss(transform)`: what training minimizes on that output, from the raw
  target;
- `to_raw(output, stats, transform)`: the layers from the normalized output
  and the target's `(last, center, scale)` to raw values, inside the saved
  model;
- `point(forecast)`: the point forecast that evaluation scores, from the
  raw output.

`HEADS` maps a head's name to it; the next heads (quantiles, distributions)
are one class each.
"""

from __future__ import annotations

from keras_seq.backend import import_keras
from keras_seq.models.layers import RestoreForecast, normalized_error

keras = import_keras()  # quietly, with keras-seq's default backend where none was chosen


class PointHead:
    """One value per forecast step: Dense to `horizon` per step read (the last, or every step).

    Trained on the mean squared error of the normalized target; its raw
    output is the point forecast.
    """

    name = "point"

    def width(self, windows) -> int:
        """Output values per step read."""
        return windows.horizon if windows.target_kind == "next" else 1

    def outputs(self, features, windows, zero: bool = False):
        """(batch, width) from the last step's features, (batch, window, width) from every step's.

        `zero` starts the output at exactly 0 (a residual model: persistence until it learns).
        """
        initial = {"kernel_initializer": "zeros", "bias_initializer": "zeros"} if zero else {}
        return keras.layers.Dense(self.width(windows), name="head", **initial)(features)

    def loss(self, transform: str, skip_steps: int = 0):
        return normalized_error(transform, skip_steps)

    def to_raw(self, output, stats, transform: str):
        return RestoreForecast(transform=transform, name="restore")([output, stats])

    def point(self, forecast):
        return forecast


HEADS = {"point": PointHead()}
