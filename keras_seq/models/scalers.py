"""Scalers of a Forecaster: how raw inputs are normalized inside the model, and where their statistics come from.

A scaler owns:
- `normalize(inputs)`: the layers from the raw window to what the backbone reads;
- `set_statistics(model, scaling)`: store a `Scaling` (the training split's
  statistics) in a built model, input and target side.

`SCALERS` maps a scaler's name to it; per-window scaling is the next one.
"""

from __future__ import annotations

from keras_seq.errors import KerasSeqError
from keras_seq.models.layers import Standardize


class ZScoreScaler:
    """The training split's mean and standard deviation, per input column and for the target, as model weights."""

    name = "zscore"

    def normalize(self, inputs):
        return Standardize(name="standardize")(inputs)

    def set_statistics(self, model, scaling) -> None:
        standardize, destandardize = model.get_layer("standardize"), model.get_layer("destandardize")
        n_features = standardize.mean_weight.shape[0]
        if len(scaling.feature_mean) != n_features:
            raise KerasSeqError(
                f"the scaling has {len(scaling.feature_mean)} features but the model takes {n_features}."
            )
        standardize.set_statistics(scaling.feature_mean, scaling.feature_std)
        destandardize.set_statistics([scaling.target_mean], [scaling.target_std])


SCALERS = {"zscore": ZScoreScaler()}
