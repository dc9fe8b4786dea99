"""Heads of a Forecaster: what the network outputs, how it is trained, and how it maps back to raw values.

A head owns four things:
- `outputs(features, windows, zero)`: the layers from the backbone's
  features to the network's (normalized) output;
- `loss(transform)`: what training minimizes on that output, from the raw
  target;
- `to_raw(output, stats, transform)`: the layer (`restore(transform)`) from the
  normalized output and the target's `(last, center, scale)` to raw values,
  inside the saved model;
- `point(forecast)`: the point forecast that evaluation scores, from the
  raw output.

`HEADS` maps a head's name to it; the next heads (quantiles, distributions)
are one class each.
"""

from __future__ import annotations

from keras_seq.backend import import_keras
from keras_seq.models.layers import (RestoreForecast, RestoreQuantiles, negative_log_likelihood, normalized_error,
                                     pinball_error)

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
        return self.restore(transform)([output, stats])

    def restore(self, transform: str):
        """The layer `to_raw` applies (an ensemble applies one to each member's output)."""
        return RestoreForecast(transform=transform, name="restore")

    def point(self, forecast):
        return forecast


class QuantileHead(PointHead):
    """Quantiles at `levels` of every forecast step, in increasing order: `(batch, horizon, levels)` raw.

    The network outputs the median and softplus gaps
    (`layers.ordered_quantiles`), trained on the pinball loss; the median is
    the point forecast.
    """

    name = "quantile"

    def __init__(self, levels):
        self.levels = tuple(float(v) for v in levels)

    def width(self, windows) -> int:
        return windows.horizon * len(self.levels)

    def loss(self, transform: str, skip_steps: int = 0):
        return pinball_error(transform, self.levels)

    def restore(self, transform: str):
        return RestoreQuantiles(self.levels, transform=transform, name="restore")

    def point(self, forecast):
        return forecast[..., self.levels.index(0.5)]


class DistributionHead(QuantileHead):
    """A normal or Student-t forecast distribution per step (location and scale), trained on its negative
    log-likelihood; the model returns its quantiles at `levels`, `(batch, horizon, levels)` raw."""

    name = "distribution"

    def __init__(self, distribution: str, levels):
        super().__init__(levels)
        self.distribution = distribution

    def width(self, windows) -> int:
        return windows.horizon * 2

    def loss(self, transform: str, skip_steps: int = 0):
        return negative_log_likelihood(transform, self.distribution)

    def restore(self, transform: str):
        return RestoreQuantiles(self.levels, transform=transform, distribution=self.distribution, name="restore")


HEADS = {"point": PointHead()}


def head_of(spec) -> PointHead:
    """The head of a `ModelSpec`: a distribution's, quantiles at `spec.quantiles`, else a point forecast."""
    if spec.distribution != "none":
        return DistributionHead(spec.distribution, spec.quantiles)
    return QuantileHead(spec.quantiles) if spec.quantiles else HEADS["point"]


def model_head(model) -> PointHead:
    """The head a built or loaded keras-seq model has (read from its `restore` layer)."""
    restore = model.get_layer("restore") if "restore" in [layer.name for layer in model.layers] else None
    levels = getattr(restore, "levels", None)
    if levels and getattr(restore, "distribution", "none") != "none":
        return DistributionHead(restore.distribution, levels)
    return QuantileHead(levels) if levels else HEADS["point"]


def output_levels(model) -> tuple[float, ...]:
    """The levels along a built or loaded model's output's last axis: its conformal intervals' bounds and median,
    or its quantile head's; empty for a point forecast."""
    names = [layer.name for layer in model.layers]
    if "conformal" in names:
        return tuple(model.get_layer("conformal").levels)
    return tuple(getattr(model_head(model), "levels", ()))
