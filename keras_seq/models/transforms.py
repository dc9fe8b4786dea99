"""Target transforms: what the network forecasts in place of the target's levels, and how levels come back.

A transform owns the map from levels to the steps the network sees
(`forward`) and back (`inverse`), and says what it needs: `of_levels`
(the steps are the levels themselves: nothing moved), `positive` (it needs a
target above 0 everywhere, as a logarithm does). The model's `prepare`
layer moves a window's target column with `forward`, its `restore` layer
and a quantile head map the forecast back with `inverse`, and the loss
compares the raw target moved by `forward`; each names its transform in its
saved config.

Built in: `none` (levels), `diff` (changes) and `logdiff` (log-changes). A
new transform is a subclass registered with `register_transform`; the
`transform` option, recipes and `ModelSpec` accept it from then on. (The
methods import Keras when called, so `keras-seq --help` reads the names
without it.)

>>> [(t.name, t.of_levels, t.positive) for t in map(get_transform, transform_names())]
[('none', True, False), ('diff', False, False), ('logdiff', False, True)]
"""

from __future__ import annotations

from keras_seq.plugins import Registry


class Transform:
    """Levels, unmoved: the base of every transform (see the module's docstring)."""

    name = "none"
    of_levels = True
    positive = False

    def forward(self, values, previous):
        """The steps of `values` (..., steps) as the network sees them; `previous` (..., 1) is the value before the
        first step."""
        return values

    def inverse(self, steps, last):
        """Levels from the transformed `steps` (..., horizon) that follow the last observed level `last` (..., 1)."""
        return steps

    def window(self, column):
        """A window's target column (batch, window) moved step by step; the first step, with no value before it,
        is 0."""
        if self.of_levels:
            return column
        import keras

        changes = self.forward(column[:, 1:], column[:, :1])
        return keras.ops.concatenate([keras.ops.zeros_like(column[:, :1]), changes], axis=1)


class Changes(Transform):
    """Each step's change from the one before; levels come back as a running sum from the last level."""

    name = "diff"
    of_levels = False

    def forward(self, values, previous):
        import keras

        return values - keras.ops.concatenate([previous, values[..., :-1]], axis=-1)

    def inverse(self, steps, last):
        import keras

        return last + keras.ops.cumsum(steps, axis=-1)


class LogChanges(Transform):
    """Each step's log-change from the one before (a target above 0); levels come back as the last level times
    the exponential of a running sum."""

    name = "logdiff"
    of_levels = False
    positive = True

    def forward(self, values, previous):
        import keras

        before = keras.ops.concatenate([previous, values[..., :-1]], axis=-1)
        return keras.ops.log(values) - keras.ops.log(before)

    def inverse(self, steps, last):
        import keras

        return last * keras.ops.exp(keras.ops.cumsum(steps, axis=-1))


_TRANSFORMS = Registry("transform", builtin=(Transform(), Changes(), LogChanges()))
register_transform = _TRANSFORMS.register
transform_names = _TRANSFORMS.names
get_transform = _TRANSFORMS.lookup
