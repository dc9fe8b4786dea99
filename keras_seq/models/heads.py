"""Heads of a Forecaster: what the network outputs, how it is trained, and how it maps back to raw values.

A head owns four things:
- `outputs(features, windows)`: the layers from the backbone's features to
  the network's (normalized) output;
- `loss`: what training minimizes on that output;
- `to_raw(x)`: the layers from the normalized output to raw values (the
  target's inverse scaling), inside the saved model;
- `point(forecast)`: the point forecast that evaluation scores, from the
  raw output.

`HEADS` maps a head's name to it; the next heads (quantiles, distributions)
are one class each.
"""

from __future__ import annotations

from keras_seq.backend import import_keras
from keras_seq.models.layers import Destandardize

keras = import_keras()  # quietly, with keras-seq's default backend where none was chosen


class PointHead:
    """One value per forecast step: Dense to `horizon` on the last step (`next`), to 1 on every step (`sequence`).

    Trained on the mean squared error of z-scores; its raw output is the point forecast.
    """

    name = "point"
    loss = "mean_squared_error"

    def width(self, windows) -> int:
        """Output values per window (per step for `sequence`)."""
        return windows.horizon if windows.target_kind == "next" else 1

    def outputs(self, features, windows):
        """(batch, horizon) for `next`, (batch, window, 1) for `sequence`, in z-scores."""
        return keras.layers.Dense(self.width(windows), name="head")(features)

    def to_raw(self, x):
        return Destandardize(name="destandardize")(x)

    def point(self, forecast):
        return forecast


HEADS = {"point": PointHead()}
