"""Forecast distributions of a distribution head: each owns its negative log-likelihood and its quantiles.

A distribution head outputs, per step, a location and a positive scale; the
model is trained on the distribution's negative log-likelihood of the
normalized target, and returns its quantiles at fixed levels (constants of
the graph, so every export carries them). A new distribution is a class with
a `name`, an `nll` and a `standard_quantiles`, registered with
`register_distribution`; ``distribution` NAME`, recipes and `ModelSpec`
accept it from then on.

Example:
>>> sorted(distribution_names())
['normal', 'student-t']
>>> round(float(get_distribution("normal").standard_quantiles([0.975])[0]), 2)
1.96
"""

from __future__ import annotations

from keras_seq.plugins import Registry

STUDENT_T_DF = 5.0  # the Student-t head's degrees of freedom: fixed, so its quantiles are constants of the model


class Normal:
    """The normal distribution."""

    name = "normal"

    def nll(self, error, spread):
        """Per step, the negative log-likelihood of `error` (standardized) with scale `spread`, constants left out."""
        import keras

        return keras.ops.log(spread) + 0.5 * keras.ops.square(error)

    def standard_quantiles(self, levels):
        import numpy as np
        from scipy import special

        return special.ndtri(np.asarray(levels, dtype="float64"))


class StudentT:
    """Student's t with `STUDENT_T_DF` degrees of freedom: heavier tails than the normal's."""

    name = "student-t"

    def nll(self, error, spread):
        import keras

        ops = keras.ops
        return ops.log(spread) + (STUDENT_T_DF + 1) / 2 * ops.log1p(ops.square(error) / STUDENT_T_DF)

    def standard_quantiles(self, levels):
        import numpy as np
        from scipy import special

        return special.stdtrit(STUDENT_T_DF, np.asarray(levels, dtype="float64"))


_DISTRIBUTIONS = Registry("distribution", also=("none",), builtin=(Normal(), StudentT()))
register_distribution = _DISTRIBUTIONS.register
distribution_names = _DISTRIBUTIONS.names
get_distribution = _DISTRIBUTIONS.lookup
