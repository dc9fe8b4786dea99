"""Scalers of a Forecaster: how raw inputs are normalized inside the model, and where their statistics come from.

A scaler owns:
- `normalize(inputs, spec, target_index, per_step, unscaled)`: the layer from the raw
  window to what the backbone reads and the target's `(last, center, scale)`
  (`keras_seq.models.layers.PrepareWindow`, named `prepare`);
- `set_statistics(model, scaling)`: store a `Scaling` (the training split's
  statistics) in a built model, where the scaler uses them.

`SCALERS` maps a scaler's name to it:
- `window`: each window by its own mean and standard deviation (reversible
  instance normalization): nothing is fixed on the training period, so the
  model follows a series into ranges it never saw;
- `zscore`: the training split's mean and standard deviation (keras-seq's
  scaling before 0.2, kept to reproduce those runs);
- `series`: each known series by its own training-split mean and standard
  deviation (a table in the model, selected by the series index input),
  an unseen series by its window's.
"""

from __future__ import annotations

from keras_seq.errors import KerasSeqError
from keras_seq.models.layers import PrepareWindow


class _Scaler:
    name = ""

    def normalize(self, inputs, spec, target_index: int | None, per_step: bool, unscaled=(), series=None,
                  series_count: int = 0):
        layer = PrepareWindow(scaler=self.name, transform=spec.transform, residual=spec.residual,
                              target_index=target_index, per_step=per_step, unscaled=unscaled, name="prepare",
                              series_count=series_count if self.name == "series" else 0)
        return layer([inputs, series] if self.name == "series" else inputs)

    def set_statistics(self, model, scaling) -> None:
        """Check that `scaling` is for this model's inputs (and store it where the scaler uses it)."""
        n_features = model.inputs[0].shape[-1]  # the raw window (a second input is the series index)
        if len(scaling.feature_mean) != n_features:
            raise KerasSeqError(f"the scaling has {len(scaling.feature_mean)} features but the model takes {n_features}.")


class ZScoreScaler(_Scaler):
    """The training split's mean and standard deviation, per input column and for the target, as model weights."""

    name = "zscore"

    def set_statistics(self, model, scaling) -> None:
        super().set_statistics(model, scaling)
        model.get_layer("prepare").set_statistics(scaling)


class WindowScaler(_Scaler):
    """Each window's own mean and standard deviation per column: no statistics to store."""

    name = "window"


class SeriesScaler(_Scaler):
    """Each known series' own training-split mean and standard deviation per column (`set_series_statistics`),
    an unseen series' window's."""

    name = "series"


def set_series_statistics(model, mean, std) -> None:
    """Store per-series statistics `(series, features)` in a model with scaler `series`."""
    model.get_layer("prepare").set_series_statistics(mean, std)


SCALERS = {"zscore": ZScoreScaler(), "window": WindowScaler(), "series": SeriesScaler()}
