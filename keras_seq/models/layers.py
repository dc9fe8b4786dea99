"""Scaling layers: a keras-seq model takes raw values and returns raw values.

The z-score statistics live in the model as non-trainable weights, so a saved
or exported model needs nothing beside it. (Keras's `Normalization` layer,
exported to ONNX through tf2onnx, turns its constants into extra graph
inputs; these layers export as plain constants.)
"""

from __future__ import annotations

import numpy as np

from keras_seq.backend import import_keras
from keras_seq.models.scalers import get_scaler, known_series
from keras_seq.models.transforms import get_transform

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


# === Scale-free forecasting: target transforms and per-window scaling inside the model ===

@keras.saving.register_keras_serializable(package="keras_seq")
class PrepareWindow(keras.layers.Layer):
    """Raw window in; what the network reads, and the target's statistics that map its output back.

    Steps, in order:
    1. the target's column is transformed (`transform`: `none`, `diff` or
       `logdiff`; the first step becomes 0);
    2. every column is scaled by its scaler's statistics (`models.scalers`): by the training split's statistics
       (`scaler="zscore"`, non-trainable weights), by the window's own mean
       and standard deviation (`scaler="window"`: the forecast follows the
       window's level and scale, whatever range the series is in; with
       `per_step`, step t by the statistics of steps 0..t, so no step reads
       a later one), or by its series' training-split statistics
       (`scaler="series"`: a table of `series_count + 1` rows of
       non-trainable weights, the layer's inputs `[window, series index]`;
       index 0, a series not seen in training, is scaled as `window` does);
    3. the target's statistics are returned beside it as `(last, center,
       scale)`: the last observed raw value, and the center and scale of the
       transformed target. With `residual`, the center is the transformed
       value of "no change" (the last value, or 0 for the difference
       transforms), so a network that outputs 0 forecasts persistence.

    Args:
        scaler: str. A registered scaler's name (`models.scalers`): `"window"`,
            `"zscore"`, `"series"` or one added with `register_scaler`.
        transform: str. A registered transform's name (`models.transforms`): `"none"`, `"diff"`, `"logdiff"` or
            one added with `register_transform`.
        residual: bool. Center the target on persistence.
        target_index: int or None. The target's column among the inputs
            (None: the target is not an input, allowed for zscore without
            transform or residual).
        per_step: bool. Statistics at every step `(batch, window, 3)` (the
            network predicts from every step) rather than at the last
            `(batch, 3)`.
        mean, std: lists of float or None. The inputs' training-split
            statistics (zscore only).
        target_mean, target_std: float or None. The target's (zscore only).
        unscaled: list of int. Input columns on a fixed scale already (the
            sine and cosine of a calendar feature): passed to the network as
            they are, so a window keeps which month or weekday it is in.
            Defaults to none.
        series_count: int. Series known at training time (`scaler="series"`):
            indices 1..series_count select their statistics.
        mask: bool. A window may hold missing values (NaN: the steps before
            a padded series' first value, `WindowSpec.pad`). Each one is
            replaced by its column's mean over the window's observed values
            before the transform and scaling, set to 0 once normalized, and
            a 0/1 observed channel per column follows the columns: no
            number under a missing value reaches the network.
        season: int. The seasonal period of a scaler that smooths
            (`es`); 1: none. Defaults to `1`.

    A scaler with `extra_channels` (`es`: the seasonal factors) appends them
    last, after the observed flags.
    """

    def __init__(self, scaler="zscore", transform="none", residual=False, target_index=None, per_step=False,
                 mean=None, std=None, target_mean=None, target_std=None, unscaled=(), series_count=0, mask=False,
                 season=1, **kwargs):
        super().__init__(**kwargs)
        self.mask, self.season = bool(mask), int(season)
        self.series_count = int(series_count)
        self.unscaled = [int(k) for k in unscaled or ()]
        self.scaler, self.transform, self.residual = scaler, transform, bool(residual)
        self.target_index = None if target_index is None else int(target_index)
        self.per_step = bool(per_step)
        self.mean = None if mean is None else [float(v) for v in np.ravel(mean)]
        self.std = None if std is None else [float(v) for v in np.ravel(std)]
        self.target_mean = None if target_mean is None else float(target_mean)
        self.target_std = None if target_std is None else float(target_std)
        self.scaled_by = get_scaler(scaler)  # raises KerasSeqError for a name no scaler has
        self.moved_by = get_transform(transform)
        self.scaled_by.check(self)

    def build(self, input_shape):
        self.scaled_by.add_weights(self, (input_shape[0] if self.scaled_by.takes_series else input_shape)[-1])

    def call(self, inputs):
        ops, index = keras.ops, self.target_index
        series = None
        if self.scaled_by.takes_series:
            inputs, series = inputs
        missing = unseen = None
        if self.mask:  # a missing value reads as the last observed value of its column, beside a 0 observed flag;
            # before the first (a padded start) as the column's observed mean, then as 0 once normalized
            # (`where` on `missing` itself: tf2onnx turns a `where` on a negated condition into arithmetic, and NaN
            # times 0 is NaN)
            missing = ops.isnan(inputs)
            count = ops.sum(1.0 - ops.cast(missing, inputs.dtype), axis=1, keepdims=True)
            known = ops.where(missing, ops.zeros_like(inputs), inputs)
            last, seen = last_observed(known, missing)
            mean = ops.sum(known, axis=1, keepdims=True) / ops.maximum(count, 1.0)
            inputs = ops.where(missing, ops.where(seen, last, mean + 0.0 * known), inputs)
            unseen = ops.logical_and(missing, ops.logical_not(seen))
        x = inputs
        column = inputs[..., index] if index is not None else ops.zeros_like(inputs[..., 0])  # (batch, window), raw
        if index is not None and not self.moved_by.of_levels:
            moved = self.moved_by.window(column)[..., None]
            x = ops.concatenate([inputs[..., :index], moved, inputs[..., index + 1 :]], axis=-1)
        mean, spread, center, scale, *extra = self.scaled_by.normalization(self, x, column, series)
        normalized = (x - mean) / spread
        if self.unscaled:  # a 0/1 mask over the columns: arithmetic, so every export format has the ops
            mask = np.zeros(inputs.shape[-1], dtype="float32")
            mask[self.unscaled] = 1.0
            normalized = normalized * (1.0 - mask) + x * mask
        if missing is not None:
            normalized = ops.concatenate([ops.where(unseen, ops.zeros_like(normalized), normalized),
                                          1.0 - ops.cast(missing, normalized.dtype)], axis=-1)
        if extra:
            normalized = ops.concatenate([normalized, *extra], axis=-1)
        if self.residual and not self.scaled_by.own_residual:
            center = column if self.moved_by.of_levels else 0 * column
        stats = ops.stack([column, center, scale], axis=-1)  # (batch, window, 3)
        return normalized, (stats if self.per_step else stats[:, -1, :])

    def warmup_steps(self, window: int) -> int:
        """Steps at the start of a per-step output that training leaves out (the scaler's `warmup_steps`)."""
        return self.scaled_by.warmup_steps(window, self.per_step)

    def compute_output_shape(self, input_shape):
        if self.scaled_by.takes_series:
            input_shape = input_shape[0]
        stats = (input_shape[0], input_shape[1], 3) if self.per_step else (input_shape[0], 3)
        width = input_shape[-1] * (2 if self.mask else 1) + self.scaled_by.extra_channels
        return (*input_shape[:-1], width), stats

    def get_config(self):
        return {**super().get_config(), "scaler": self.scaler, "transform": self.transform, "residual": self.residual,
                "target_index": self.target_index, "per_step": self.per_step, "mean": self.mean, "std": self.std,
                "target_mean": self.target_mean, "target_std": self.target_std, "unscaled": self.unscaled,
                "series_count": self.series_count, "mask": self.mask, "season": self.season}


@keras.saving.register_keras_serializable(package="keras_seq")
class SeriesEmbedding(keras.layers.Layer):
    """A learned vector per known series, appended to every step of the normalized window.

    Inputs `[normalized (batch, window, features), series index (batch,)]`;
    output `(batch, window, features + dim)`. Index k in 1..`series_count`
    selects series k's vector; index 0, a series not seen in training,
    reads the mean of the learned vectors (a typical series, not the
    untrained row).

    Args:
        series_count: int. Series known at training time.
        dim: int. Width of each vector.
    """

    def __init__(self, series_count, dim, **kwargs):
        super().__init__(**kwargs)
        self.series_count, self.dim = int(series_count), int(dim)

    def build(self, input_shape):
        self.table = self.add_weight(shape=(self.series_count + 1, self.dim), name="table",
                                     initializer=keras.initializers.RandomNormal(stddev=0.05))

    def call(self, inputs):
        ops = keras.ops
        normalized, series = inputs
        series = known_series(series, self.series_count)
        typical = ops.mean(self.table[1:], axis=0, keepdims=True)  # (1, dim)
        vectors = ops.where(ops.reshape(series > 0, (-1, 1)), ops.take(self.table, series, axis=0), typical)
        steps = ops.zeros_like(normalized[..., :1]) + vectors[:, None, :]  # (batch, window, dim)
        return ops.concatenate([normalized, steps], axis=-1)

    def compute_output_shape(self, input_shape):
        shape = input_shape[0]
        return (*shape[:-1], shape[-1] + self.dim)

    def get_config(self):
        return {**super().get_config(), "series_count": self.series_count, "dim": self.dim}


@keras.saving.register_keras_serializable(package="keras_seq")
class RestoreForecast(keras.layers.Layer):
    """The network's output and the target's `(last, center, scale)` in; the raw forecast out.

    `center + scale * output` is the transformed forecast, and the inverse
    transform (a running sum of changes from the last value, or its
    exponential for log-changes) turns it into levels.
    """

    def __init__(self, transform="none", **kwargs):
        super().__init__(**kwargs)
        self.transform = transform

    def call(self, inputs):
        output, stats = inputs
        last, center, scale = stats[..., 0:1], stats[..., 1:2], stats[..., 2:3]
        return get_transform(self.transform).inverse(center + scale * output, last)

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "transform": self.transform}


def ordered_quantiles(output, levels):
    """`(batch, horizon, n)` quantiles in increasing order from the head's `(batch, horizon * n)` output.

    The median's own output is the median; each level above adds a softplus
    gap to the one below it, each level below subtracts one: a monotone
    parameterisation, so no two quantiles ever cross (never a sort after the
    fact). A zero output (a residual head before training) is the median at
    "no change" with gaps of log 2 normalized units.
    """
    ops, n = keras.ops, len(levels)
    values = ops.reshape(output, (-1, ops.shape(output)[-1] // n, n))
    middle = list(levels).index(0.5)
    median = values[..., middle : middle + 1]
    gaps = ops.softplus(values)
    above = median + ops.cumsum(gaps[..., middle + 1 :], axis=-1)
    below = median - ops.flip(ops.cumsum(ops.flip(gaps[..., :middle], axis=-1), axis=-1), axis=-1)
    return ops.concatenate([below, median, above], axis=-1)


def standard_quantiles(distribution: str, levels) -> np.ndarray:
    """The quantiles at `levels` of a registered distribution's standard form (`models.distributions`)."""
    from keras_seq.models.distributions import get_distribution

    return get_distribution(distribution).standard_quantiles(levels)


def normalized_quantiles(output, levels, distribution: str = "none"):
    """`(batch, horizon, n)` quantiles in normalized units from a head's output: a quantile head's
    (`ordered_quantiles`), or a distribution head's `(batch, horizon * 2)` location and scale (softplus of the
    second), `location + scale * z` with `z` the standard distribution's quantiles."""
    if distribution == "none":
        return ordered_quantiles(output, levels)
    location, scale = distribution_parameters(output)
    z = standard_quantiles(distribution, levels).astype("float32")
    return location[..., None] + scale[..., None] * z


def distribution_parameters(output):
    """A distribution head's `(batch, horizon * 2)` output as its location and positive scale, `(batch, horizon)` each
    (a zero output: location 0, scale log 2)."""
    ops = keras.ops
    pairs = ops.reshape(output, (-1, ops.shape(output)[-1] // 2, 2))
    return pairs[..., 0], ops.softplus(pairs[..., 1]) + 1e-4


@keras.saving.register_keras_serializable(package="keras_seq")
class RestoreQuantiles(keras.layers.Layer):
    """The quantile head's output and the target's `(last, center, scale)` in; raw quantiles `(batch, horizon,
    levels)` out.

    Each level is mapped back as `RestoreForecast` maps a point forecast: a
    monotone map, so the quantiles of the normalized forecast are the raw
    forecast's (for a transform of changes, of a one-step horizon: a
    running sum of quantiles is not a quantile of the sum, so longer
    horizons with a transform are refused when the model is built).
    """

    def __init__(self, levels, transform="none", distribution="none", **kwargs):
        super().__init__(**kwargs)
        self.levels, self.transform, self.distribution = [float(v) for v in levels], transform, distribution

    def call(self, inputs):
        output, stats = inputs
        ops = keras.ops
        quantiles = normalized_quantiles(output, self.levels, self.distribution)  # (batch, horizon, n)
        last, center, scale = (stats[:, None, k : k + 1] for k in range(3))  # (batch, 1, 1) each
        steps = ops.transpose(center + scale * quantiles, (0, 2, 1))  # (batch, n, horizon)
        return ops.transpose(get_transform(self.transform).inverse(steps, last), (0, 2, 1))

    def compute_output_shape(self, input_shape):
        output, per_step = input_shape[0], (len(self.levels) if self.distribution == "none" else 2)
        return (output[0], None if output[1] is None else output[1] // per_step, len(self.levels))

    def get_config(self):
        return {**super().get_config(), "levels": self.levels, "transform": self.transform,
                "distribution": self.distribution}


def negative_log_likelihood(transform: str, distribution: str):
    """A distribution head's loss: the negative log-likelihood of the normalized target (the packing of
    `normalized_error`) under each step's distribution (its own `nll`), averaged over steps."""
    from keras_seq.models.distributions import get_distribution

    family = get_distribution(distribution)

    def loss(y_true, packed):
        output, target = normalized_target(y_true, packed, transform)
        location, spread = distribution_parameters(output)
        return keras.ops.mean(family.nll((target - location) / spread, spread), axis=-1)

    loss.__name__ = "nll"
    return loss


def last_observed(known, missing):
    """Each step's last observed value of its column, at that step or before (`known`: the window `(batch, steps,
    columns)` with 0 where `missing`), and whether one was observed. Arithmetic over a steps x steps triangle: every
    export format has the ops, and no missing value's number takes part.

    Example:
    >>> x = np.array([[[1.0], [np.nan], [np.nan], [4.0]]], "float32")
    >>> last, seen = last_observed(np.nan_to_num(x), np.isnan(x))
    >>> np.asarray(last)[0, :, 0].tolist(), np.asarray(seen)[0, :, 0].tolist()
    ([1.0, 1.0, 1.0, 4.0], [True, True, True, True])
    """
    ops, steps = keras.ops, known.shape[1]
    position = np.arange(steps, dtype="float32")
    upto = np.tril(np.ones((steps, steps), "float32"))[None, :, :, None]  # [t, s]: 1 where s <= t
    step_of = ops.where(missing, -ops.ones_like(known), ops.zeros_like(known) + position[None, :, None])
    latest = ops.max(step_of[:, None, :, :] * upto + (upto - 1.0), axis=2)  # (batch, t, columns): -1 where none
    pick = ops.cast(ops.equal(latest[:, :, None, :], position[None, None, :, None]), known.dtype)
    return ops.sum(pick * known[:, None, :, :], axis=2), latest >= 0.0


@keras.saving.register_keras_serializable(package="keras_seq")
class ConformalIntervals(keras.layers.Layer):
    """A raw forecast and the target's `(last, center, scale)` in; the forecast with its conformal intervals out,
    `(batch, horizon, 2 * coverages + 1)`: the lower bounds (widest first), the point forecast, the upper bounds.

    The forecast is a point model's `(batch, horizon)`, or a quantile or
    distribution head's `(batch, horizon, 2 * coverages + 1)` quantiles at
    the same levels (conformalized quantile regression). Step h's interval
    of coverage c is `[low - offsets[h, c] * scale, high + offsets[h, c] *
    scale]`, `low` and `high` the forecast's bounds of that interval (both
    the point forecast for a point model) and `scale` the window's (the
    training split's for the zscore scaler). The offsets are non-trainable
    weights, 0 until `keras_seq.evaluation.conformal.calibrate` sets them from
    validation errors; a head's may be negative (its own interval was too
    wide), so its intervals are kept nested around the median.

    Args:
        coverages: list of float. The intervals' coverages, increasing.
        horizon: int. Forecast steps.
    """

    def __init__(self, coverages, horizon, **kwargs):
        super().__init__(**kwargs)
        from keras_seq.models.spec import output_levels

        self.coverages, self.horizon = [float(c) for c in coverages], int(horizon)
        self.levels = list(output_levels(conformal=self.coverages))

    def build(self, input_shape):
        self.offsets = self.add_weight(shape=(self.horizon, len(self.coverages)), initializer="zeros",
                                       trainable=False, name="offsets")

    def call(self, inputs):
        ops = keras.ops
        forecast, stats = inputs
        spread = self.offsets[None, :, :] * stats[:, None, 2:3]  # (batch, horizon, coverages), narrowest first
        if len(forecast.shape) == 2:  # a point forecast: its offsets grow with the coverage, so they nest
            point = forecast[..., None]
            return ops.concatenate([point - ops.flip(spread, axis=-1), point, point + spread], axis=-1)
        n = len(self.coverages)
        lower = forecast[..., :n] - ops.flip(spread, axis=-1)
        median, upper = forecast[..., n : n + 1], forecast[..., n + 1 :] + spread
        return ops.concatenate([*_nested(lower, median, ops.minimum, reverse=True), median,
                                *_nested(upper, median, ops.maximum)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], self.horizon, 2 * len(self.coverages) + 1)

    def get_config(self):
        return {**super().get_config(), "coverages": self.coverages, "horizon": self.horizon}


def _nested(bounds, median, outward, reverse: bool = False) -> list:
    """The `(batch, horizon, 1)` columns of `bounds` (innermost first, or last when `reverse`), each pushed out by
    `outward` (minimum or maximum) to at least the one inside it, the innermost to at least the median."""
    columns = [bounds[..., k : k + 1] for k in range(bounds.shape[-1])]
    inside, nested = median, []
    for column in (reversed(columns) if reverse else columns):
        inside = outward(column, inside)
        nested.append(inside)
    return nested[::-1] if reverse else nested


def pinball_error(transform: str, levels):
    """The quantile head's loss: the pinball loss of every level in the target's normalized units, from the raw
    target (the packing of `normalized_error`), averaged over levels and steps."""
    taus = np.asarray(levels, dtype="float32")

    def loss(y_true, packed):
        output, target = normalized_target(y_true, packed, transform)  # target: (batch, horizon)
        error = target[..., None] - ordered_quantiles(output, levels)  # (batch, horizon, n)
        return keras.ops.mean(keras.ops.maximum(taus * error, (taus - 1.0) * error), axis=(-2, -1))

    loss.__name__ = "pinball"
    return loss


@keras.saving.register_keras_serializable(package="keras_seq")
class LastStep(keras.layers.Layer):
    """`x[:, -1]`: the last step of a sequence (what a model trained on every step forecasts from)."""

    def call(self, inputs):
        return inputs[:, -1]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *input_shape[2:])


@keras.saving.register_keras_serializable(package="keras_seq")
class CombineMembers(keras.layers.Layer):
    """An ensemble's members' forecasts (a list of tensors of one shape) in; their median or mean out, each value
    over the members (`how`), or with `how` "stack" all of them along a new last axis (what training scores).

    The median of an even number of members is the mean of the middle two.
    """

    def __init__(self, how="median", **kwargs):
        super().__init__(**kwargs)
        if how not in ("median", "mean", "stack"):
            raise ValueError(f"CombineMembers: `how` must be median, mean or stack. Received: how={how!r}")
        self.how = how

    def call(self, inputs):
        ops, n = keras.ops, len(inputs)
        stacked = ops.stack(inputs, axis=-1)
        if self.how == "stack":
            return stacked
        if self.how == "median":
            stacked = ops.sort(stacked, axis=-1)[..., (n - 1) // 2 : n // 2 + 1]
        return ops.mean(stacked, axis=-1)

    def compute_output_shape(self, input_shape):
        first = tuple(input_shape[0])
        return (*first, len(input_shape)) if self.how == "stack" else first

    def get_config(self):
        return {**super().get_config(), "how": self.how}


def each_member(loss):
    """The mean over an ensemble's members of `loss`, each scored on its own slice of the trainer's stacked output
    (`CombineMembers(how="stack")`: the members along the last axis)."""

    def members(y_true, stacked):
        count = stacked.shape[-1]
        return keras.ops.mean(keras.ops.stack([loss(y_true, stacked[..., i]) for i in range(count)]), axis=0)

    members.__name__ = f"members_{loss.__name__}"
    return members


def normalized_target(y_true, packed, transform: str):
    """`(output, target)` from the trainer's `packed` output (the network's output, then the target's `(last,
    center, scale)` on the last axis): the raw target transformed and scaled exactly as the model undoes it."""
    output, last, center, scale = packed[..., :-3], packed[..., -3:-2], packed[..., -2:-1], packed[..., -1:]
    return output, (get_transform(transform).forward(y_true, last) - center) / scale


def normalized_error(transform: str, skip_steps: int = 0):
    """The loss of a point forecast in the target's normalized units, from the raw target.

    `packed` is the network's output with the target's `(last, center,
    scale)` appended on the last axis (what the trainer returns): the raw
    target is transformed and scaled exactly as `RestoreForecast` undoes it.
    `skip_steps` leaves the first steps of a per-step output out of the loss
    (see `PrepareWindow.warmup_steps`).
    """

    def loss(y_true, packed):
        if skip_steps:
            y_true, packed = y_true[:, skip_steps:], packed[:, skip_steps:]
        output, target = normalized_target(y_true, packed, transform)
        return keras.ops.mean(keras.ops.square(target - output), axis=-1)

    loss.__name__ = "normalized_mse"
    return loss


@keras.saving.register_keras_serializable(package="keras_seq")
class Dilate(keras.layers.Layer):
    """`(batch, steps, features)` in; `(batch * dilation, ceil(steps / dilation), features)` out: the steps split
    into `dilation` interleaved sequences (sequence r holds steps r, r + d, r + 2d, ... of the window left-padded
    with zeros to a multiple of d), so a recurrent layer over them steps back `dilation` steps at a time (Chang et
    al., 2017). `Undilate` puts the steps back in order."""

    def __init__(self, dilation, **kwargs):
        super().__init__(**kwargs)
        self.dilation = int(dilation)

    def call(self, inputs):
        ops, d = keras.ops, self.dilation
        steps, width = inputs.shape[1], inputs.shape[2]
        padded = -(-steps // d) * d
        x = ops.pad(inputs, [[0, 0], [padded - steps, 0], [0, 0]])
        x = ops.transpose(ops.reshape(x, (-1, padded // d, d, width)), (0, 2, 1, 3))
        return ops.reshape(x, (-1, padded // d, width))

    def compute_output_shape(self, input_shape):
        return (None, -(-input_shape[1] // self.dilation), input_shape[2])

    def get_config(self):
        return {**super().get_config(), "dilation": self.dilation}


@keras.saving.register_keras_serializable(package="keras_seq")
class Undilate(keras.layers.Layer):
    """The inverse of `Dilate(dilation)` for a window of `steps`: `(batch * dilation, ceil(steps / dilation),
    units)` in, `(batch, steps, units)` out, the padding dropped."""

    def __init__(self, dilation, steps, **kwargs):
        super().__init__(**kwargs)
        self.dilation, self.steps = int(dilation), int(steps)

    def call(self, inputs):
        ops, d = keras.ops, self.dilation
        count, width = inputs.shape[1], inputs.shape[2]
        x = ops.transpose(ops.reshape(inputs, (-1, d, count, width)), (0, 2, 1, 3))
        return ops.reshape(x, (-1, count * d, width))[:, count * d - self.steps :]

    def compute_output_shape(self, input_shape):
        return (None, self.steps, input_shape[2])

    def get_config(self):
        return {**super().get_config(), "dilation": self.dilation, "steps": self.steps}


@keras.saving.register_keras_serializable(package="keras_seq")
class Reseasonalise(keras.layers.Layer):
    """ES-RNN's output: the head's `(batch, horizon)` output and the normalized window in; each step's forecast
    over the window's last level out, `s[T + h] * exp(sd * output)`: `s[T + h]` the seasonal factor the smoothing
    left for that step and `sd` the deseasonalised window's spread (scaler `es`'s two extra channels, from
    `channel`: the last `season` steps of the first hold the next season's factors).

    A zero output forecasts the smoothing's own level times the seasonal factor. The exponent is clipped to
    [-10, 10], so no forecast overflows.
    """

    def __init__(self, season, channel, **kwargs):
        super().__init__(**kwargs)
        self.season, self.channel = int(season), int(channel)

    def call(self, inputs):
        ops = keras.ops
        output, window = inputs
        steps, horizon, m = window.shape[1], output.shape[-1], self.season
        channel = self.channel % window.shape[-1]
        factors = ops.take(window[..., channel], [steps - m + (k % m) for k in range(horizon)], axis=1)
        spread = window[:, -1, channel + 1 : channel + 2]  # (batch, 1)
        return factors * ops.exp(ops.clip(spread * output, -10.0, 10.0))

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "season": self.season, "channel": self.channel}
