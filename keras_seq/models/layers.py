"""Scaling layers: a keras-seq model takes raw values and returns raw values.

The z-score statistics live in the model as non-trainable weights, so a saved
or exported model needs nothing beside it. (Keras's `Normalization` layer,
exported to ONNX through tf2onnx, turns its constants into extra graph
inputs; these layers export as plain constants.)
"""

from __future__ import annotations

import numpy as np

from keras_seq.backend import import_keras

keras = import_keras()  # quietly, with keras-seq's default backend where none was chosen


class _Statistics(keras.layers.Layer):
    """Holds `mean` and `std` as non-trainable weights.

    Subclasses with `per_feature = False` keep a single statistic that applies
    to every output value (the target's).
    """

    per_feature = True

    def __init__(self, mean=None, std=None, **kwargs):
        super().__init__(**kwargs)
        self.mean = None if mean is None else [float(v) for v in np.ravel(mean)]
        self.std = None if std is None else [float(v) for v in np.ravel(std)]

    def build(self, input_shape):
        size = input_shape[-1] if self.per_feature else 1
        for name, values, default in (("mean", self.mean, 0.0), ("std", self.std, 1.0)):
            if values is not None and len(values) != size:
                raise ValueError(f"`{name}` has {len(values)} values for {size} features. Received: {name}={values}")
            initializer = keras.initializers.Constant(values if values is not None else default)
            setattr(self, f"{name}_weight", self.add_weight(shape=(size,), initializer=initializer, trainable=False, name=name))

    def set_statistics(self, mean, std) -> None:
        """Replace the statistics (the layer must be built)."""
        self.mean = [float(v) for v in np.ravel(mean)]
        self.std = [float(v) for v in np.ravel(std)]
        self.mean_weight.assign(np.asarray(self.mean, dtype="float32"))
        self.std_weight.assign(np.asarray(self.std, dtype="float32"))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"mean": self.mean, "std": self.std})
        return config


@keras.saving.register_keras_serializable(package="keras_seq")
class Standardize(_Statistics):
    """Maps raw values to z-scores: `(x - mean) / std` over the last axis.

    Args:
        mean: list of float or None. Per-feature mean. Defaults to zeros.
        std: list of float or None. Per-feature standard deviation. Defaults
            to ones.

    Example:
    >>> import numpy as np
    >>> layer = Standardize(mean=[10.0], std=[2.0])
    >>> np.asarray(layer(np.array([[[12.0]]], dtype="float32"))).item()
    1.0
    """

    def call(self, inputs):
        return (inputs - self.mean_weight) / self.std_weight


@keras.saving.register_keras_serializable(package="keras_seq")
class Destandardize(_Statistics):
    """Maps z-scores of the target back to raw values: `x * std + mean`.

    One statistic applies to every value (all horizon steps are the target).

    Args:
        mean: list of one float or None. The target's mean. Defaults to 0.
        std: list of one float or None. The target's standard deviation.
            Defaults to 1.

    Example:
    >>> import numpy as np
    >>> layer = Destandardize(mean=[10.0], std=[2.0])
    >>> np.asarray(layer(np.array([[1.0]], dtype="float32"))).item()
    12.0
    """

    per_feature = False

    def call(self, inputs):
        return inputs * self.std_weight + self.mean_weight
