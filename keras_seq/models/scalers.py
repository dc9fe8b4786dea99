"""Scalers of a Forecaster: each owns its statistics, where they are kept, and how a window is normalized by them.

The model's `prepare` layer (`layers.PrepareWindow`) transforms the target's
column, then asks its scaler (by name, from this registry) for the
statistics of each column, normalizes the window by them and returns the
target's `(last, center, scale)`, which the head's `restore` layer maps the
forecast back with. A scaler owns:
- `add_weights(layer, n_features)`: the statistics it keeps in the model
  (non-trainable weights of the layer, so every export carries them);
- `normalization(layer, x, column, series)`: each column's center and
  spread for the window `x`, and the target's center and scale;
- `set_statistics(model, scaling)` and `fit_statistics(model, training)`:
  store the training split's statistics in a built model;
- what the model needs and what it can follow: `takes_series` (its inputs
  are the window and the series index), `of_levels` (its statistics are of
  levels, so no change transform), `reads_target` (it needs the target's
  own past among the inputs), `fixed_on_training` (its statistics are fixed
  on the training split, so a series that leaves that range is forecast
  poorly), `warmup_steps` (steps a model trained from every step leaves
  out), `positive` (it divides by the target, which must be above 0),
  `extra_channels` (channels it appends to what the network reads, returned
  as a fifth item of `normalization`), `own_residual` (its center is
  already the forecast a zero output stands for: `residual` leaves it) and
  `seasonal` (it smooths with the model's `seasonality`, which its `prepare`
  layer keeps as `season`).

Built in: `window` (each window by its own mean and standard deviation:
nothing is fixed on the training period, so the model follows a series into
ranges it never saw), `zscore` (the training split's mean and standard
deviation: keras-seq's scaling before 0.2), `series` (each known series by
its own training-split statistics, an unseen series by its window's) and
`es` (ES-RNN's: each window smoothed by Holt-Winters with each series' own
learned coefficients; the arch `esrnn` and this scaler come together). A new
scaler is a subclass registered with `register_scaler`; `scaler NAME`,
recipes and `ModelSpec` accept it from then on, and a saved model names it
in its `prepare` layer's config.

Keras is imported inside the methods: `keras-seq --help` reads the names.

Example:
>>> scaler_names()
('window', 'zscore', 'series', 'es')
>>> get_scaler("zscore").of_levels, get_scaler("window").of_levels
(True, False)
"""

from __future__ import annotations

from keras_seq.errors import KerasSeqError
from keras_seq.plugins import Registry


# A masked window's spread is at least this share of its level: a window of few observed values is otherwise
# scaled by the spread of two or three of them, and its normalized targets dwarf every other window's.
MASKED_SPREAD_FLOOR = 0.05


def window_statistics(x):
    """Each column's mean and spread over the whole window, `(batch, 1, features)` each."""
    import keras

    ops = keras.ops
    mean = ops.mean(x, axis=1, keepdims=True)
    spread = ops.sqrt(ops.mean(ops.square(x - mean), axis=1, keepdims=True))
    return mean, spread + 1e-3 * ops.mean(ops.abs(x), axis=1, keepdims=True) + 1e-6  # a flat window stays finite


def running_statistics(x):
    """Each column's mean and spread over steps 0..t at every step t, `(batch, window, features)` each.

    What a model that forecasts from every step scales by: step t never
    sees a statistic of a later step. Sums are taken from the window's first
    value, so large levels keep their precision.
    """
    import keras

    ops = keras.ops
    count = ops.cast(ops.arange(1, ops.shape(x)[1] + 1), x.dtype)[None, :, None]
    shifted = x - x[:, :1, :]
    mean = ops.cumsum(shifted, axis=1) / count
    variance = ops.maximum(ops.cumsum(ops.square(shifted), axis=1) / count - ops.square(mean), 0.0)
    magnitude = ops.cumsum(ops.abs(x), axis=1) / count
    return mean + x[:, :1, :], ops.sqrt(variance) + 1e-3 * magnitude + 1e-6


def known_series(series, count: int):
    """A batch of series indices as int32 `(batch,)`, any outside 1..`count` (unseen, or not an index) as 0."""
    import keras

    ops = keras.ops
    series = ops.reshape(ops.cast(series, "int32"), (-1,))
    return ops.where(ops.logical_and(series > 0, series <= count), series, ops.zeros_like(series))


class Scaler:
    """A scaler: the statistics a `prepare` layer normalizes a window by (see the module's docstring)."""

    name = ""
    takes_series = False
    of_levels = False
    reads_target = True
    fixed_on_training = False
    positive = False
    extra_channels = 0
    own_residual = False
    seasonal = False

    def check(self, layer) -> None:
        """Refuse a `prepare` layer's settings this scaler cannot work with (`ValueError`)."""

    def add_weights(self, layer, n_features: int) -> None:
        """Add the statistics this scaler keeps to `layer` (built once, before its first call)."""

    def normalization(self, layer, x, column, series):
        """`(center, spread, target_center, target_scale)`: the first two broadcast against `x` (batch, window,
        features), the last two are `(batch, window)` like the raw target `column`; a scaler with
        `extra_channels` returns them fifth, `(batch, window, extra_channels)`."""
        raise NotImplementedError

    def warmup_steps(self, window: int, per_step: bool) -> int:
        """Steps at the start of a per-step output that training leaves out."""
        return 0

    def set_statistics(self, model, scaling) -> None:
        """Check that `scaling` (the training split's `Scaling`) is for this model's inputs; store what it keeps."""
        n_features = model.inputs[0].shape[-1]  # the raw window (a second input is the series index)
        if len(scaling.feature_mean) != n_features:
            raise KerasSeqError(f"the scaling has {len(scaling.feature_mean)} features but the model takes {n_features}.")

    def fit_statistics(self, model, training) -> None:
        """Store what this scaler learns from the training windows (`data.windows.Windows`) beyond `Scaling`."""


class WindowScaler(Scaler):
    """Each window by its own mean and standard deviation per column (with a per-step output, step t by those of
    steps 0..t): no statistics to store."""

    name = "window"

    def normalization(self, layer, x, column, series):
        mean, spread = self.column_statistics(layer, x, series)
        index = layer.target_index
        return mean, spread, mean[..., index] + 0 * column, spread[..., index] + 0 * column

    def column_statistics(self, layer, x, series):
        """Each column's center and spread: the window's (steps 0..t at step t, with a per-step output). A masked
        window (`pad`) may hold a value or two: its spread is at least `MASKED_SPREAD_FLOOR` of its level."""
        import keras

        mean, spread = (running_statistics if layer.per_step else window_statistics)(x)
        if layer.mask:
            spread = keras.ops.maximum(spread, MASKED_SPREAD_FLOOR * keras.ops.abs(mean))
        return mean, spread

    def warmup_steps(self, window: int, per_step: bool) -> int:
        """Step t is scaled by the spread of steps 0..t: too few values at first (step 0 has none)."""
        return max(1, window // 4) if per_step else 0


class ZScoreScaler(Scaler):
    """The training split's mean and standard deviation, per input column and for the target, as model weights."""

    name = "zscore"
    of_levels, reads_target, fixed_on_training = True, False, True

    def add_weights(self, layer, n_features: int) -> None:
        import keras

        for name, values, default in (("mean", layer.mean, 0.0), ("std", layer.std, 1.0)):
            if values is not None and len(values) != n_features:
                raise ValueError(f"`{name}` has {len(values)} values for {n_features} features. Received: "
                                 f"{name}={values}")
            initializer = keras.initializers.Constant(values if values is not None else default)
            setattr(layer, f"{name}_weight", layer.add_weight(shape=(n_features,), initializer=initializer,
                                                              trainable=False, name=name))
        for name, value, default in (("target_mean", layer.target_mean, 0.0), ("target_std", layer.target_std, 1.0)):
            initializer = keras.initializers.Constant(value if value is not None else default)
            setattr(layer, f"{name}_weight", layer.add_weight(shape=(1,), initializer=initializer, trainable=False,
                                                              name=name))

    def normalization(self, layer, x, column, series):
        return (layer.mean_weight, layer.std_weight, layer.target_mean_weight[0] + 0 * column,
                layer.target_std_weight[0] + 0 * column)

    def set_statistics(self, model, scaling) -> None:
        import numpy as np

        super().set_statistics(model, scaling)
        layer = model.get_layer("prepare")
        layer.mean, layer.std = list(scaling.feature_mean), list(scaling.feature_std)
        layer.target_mean, layer.target_std = float(scaling.target_mean), float(scaling.target_std)
        for name in ("mean", "std", "target_mean", "target_std"):
            getattr(layer, f"{name}_weight").assign(np.ravel(np.asarray(getattr(layer, name), dtype="float32")))


class SeriesScaler(WindowScaler):
    """Each known series by its own training-split mean and standard deviation per column (a table of
    `series_count + 1` rows in the model, selected by the series index input); an unseen series (index 0) by its
    window's, as `window` does."""

    name = "series"
    takes_series, of_levels = True, True

    def check(self, layer) -> None:
        if layer.series_count < 1 or layer.target_index is None:
            raise ValueError(f"scaler 'series' needs series_count >= 1 and a target_index. Received: "
                             f"series_count={layer.series_count}, target_index={layer.target_index}")

    def add_weights(self, layer, n_features: int) -> None:
        import keras

        for name, default in (("series_mean", 0.0), ("series_std", 1.0)):  # row k: series k's (row 0 never read)
            setattr(layer, f"{name}_weight", layer.add_weight(
                shape=(layer.series_count + 1, n_features), trainable=False,
                initializer=keras.initializers.Constant(default), name=name))

    def column_statistics(self, layer, x, series):
        """A known series' own statistics, an unseen one's window's."""
        import keras

        ops = keras.ops
        mean, spread = super().column_statistics(layer, x, series)
        series = known_series(series, layer.series_count)
        known = ops.reshape(series > 0, (-1, 1, 1))
        mean = ops.where(known, ops.take(layer.series_mean_weight, series, axis=0)[:, None, :], mean)
        spread = ops.where(known, ops.take(layer.series_std_weight, series, axis=0)[:, None, :], spread)
        return mean, spread

    def warmup_steps(self, window: int, per_step: bool) -> int:
        return 0  # a known series' statistics are the training split's; an unseen one's step 0 is as `window`'s

    def set_series_statistics(self, layer, mean, std) -> None:
        """Store each known series' statistics, `(series_count, features)` each, in a built `prepare` layer."""
        import numpy as np

        for weight, values, pad in ((layer.series_mean_weight, mean, 0.0), (layer.series_std_weight, std, 1.0)):
            values = np.asarray(values, dtype="float32")
            if values.shape != (layer.series_count, weight.shape[1]):
                raise ValueError(f"expected statistics of shape {(layer.series_count, weight.shape[1])}, "
                                 f"received {values.shape}")
            weight.assign(np.concatenate([np.full((1, values.shape[1]), pad, dtype="float32"), values]))

    def fit_statistics(self, model, training) -> None:
        from keras_seq.data.windows import series_statistics

        self.set_series_statistics(model.get_layer("prepare"), *series_statistics(training))


def holt_winters(y, alpha, gamma, season: int):
    """Multiplicative Holt-Winters smoothing (level and seasonality, no trend) over each row of `y`.

    `y` is `(batch, steps)`, above 0; `alpha` and `gamma` are `(batch,)`
    smoothing coefficients in (0, 1); `season` is at most `steps`. The first
    season's factors start as its values over their mean (1 without a
    season), the level as the first value deseasonalised, then every step t:

        level[t] = alpha * y[t] / s[t] + (1 - alpha) * level[t - 1]
        s[t + season] = gamma * y[t] / level[t] + (1 - gamma) * s[t]

    Returns `(level, factors, next_factors)`, `(batch, steps)` each: the
    level after each step, the seasonal factor each step was read with
    (`s[t]`) and the one step t leaves for a season later (`s[t + season]`;
    the last season's are the forecast's), as tensors of Keras's backend.
    """
    import keras

    ops = keras.ops
    steps = y.shape[1]
    y, alpha, gamma = ops.convert_to_tensor(y), ops.convert_to_tensor(alpha)[:, None], ops.convert_to_tensor(gamma)[:, None]
    if season > 1:
        first = y[:, :season]
        factors = list(ops.unstack(first / ops.mean(first, axis=1, keepdims=True), axis=1))
    else:
        factors = [ops.ones_like(y[:, 0])]
    level, levels = y[:, :1] / factors[0][:, None], []
    for t in range(steps):
        value, factor = y[:, t : t + 1], factors[t if season > 1 else 0][:, None]
        level = alpha * value / factor + (1.0 - alpha) * level
        levels.append(level)
        if season > 1:
            factors.append((gamma * value / level + (1.0 - gamma) * factor)[:, 0])
    level = ops.concatenate(levels, axis=1)
    if season == 1:
        ones = ops.ones_like(level)
        return level, ones, ones
    return level, ops.stack(factors[:steps], axis=1), ops.stack(factors[season : season + steps], axis=1)


class SmoothingScaler(WindowScaler):
    """ES-RNN's (Smyl, 2020): each window smoothed by multiplicative Holt-Winters (`holt_winters`) with its
    series' own level and seasonality coefficients, learned with the network (trainable weights of the `prepare`
    layer, a row per known series; an unseen series reads the mean of their logits).

    The target's column reaches the network deseasonalised and over the window's last level, less 1, in units of
    that ratio's spread over the window: `(r[t] - 1) / sd(r)`, `r[t] = y[t] / (level[T] * s[t])`; other columns
    are scaled as `window` scales them. Two extra channels follow: the seasonal factor each step leaves for a
    season later (the last season's are the forecast's) and `sd(r)`, which `esrnn`'s output multiplies back. The
    target's center is 0 and its scale the last level: the network forecasts `y / level[T]`.
    """

    name = "es"
    takes_series, of_levels, positive, extra_channels, own_residual, seasonal = True, True, True, 2, True, True
    ALPHA, GAMMA = 0.5, 0.2  # where the coefficients start

    def check(self, layer) -> None:
        if layer.series_count < 1 or layer.target_index is None or layer.per_step:
            raise ValueError(f"scaler 'es' needs series_count >= 1, a target_index and per_step false. Received: "
                             f"series_count={layer.series_count}, target_index={layer.target_index}, "
                             f"per_step={layer.per_step}")

    def add_weights(self, layer, n_features: int) -> None:
        import keras
        import numpy as np

        for name, start in (("level_smoothing", self.ALPHA), ("season_smoothing", self.GAMMA)):  # their logits
            setattr(layer, f"{name}_weight", layer.add_weight(
                shape=(layer.series_count + 1,), trainable=True, name=name,
                initializer=keras.initializers.Constant(float(np.log(start / (1.0 - start))))))

    def coefficients(self, layer, series):
        """Each window's `(alpha, gamma)`, `(batch,)` each: its series' own, an unseen series' the mean logit's."""
        import keras

        ops = keras.ops
        series = known_series(series, layer.series_count)
        known = series > 0

        def of(table):
            return ops.sigmoid(ops.where(known, ops.take(table, series, axis=0), ops.mean(table[1:])))

        return of(layer.level_smoothing_weight), of(layer.season_smoothing_weight)

    def normalization(self, layer, x, column, series):
        import keras
        import numpy as np

        ops = keras.ops
        mean, spread = self.column_statistics(layer, x, series)
        positive = ops.maximum(column, 1e-6)  # fit refuses a target at or below 0; a served window stays finite
        level, factors, next_factors = holt_winters(positive, *self.coefficients(layer, series), layer.season)
        last = level[:, -1:]
        base = (last * factors)[..., None]  # (batch, window, 1): the target's value at "no change"
        ratio = positive[..., None] / base
        deviation = ops.sqrt(ops.mean(ops.square(ratio - ops.mean(ratio, axis=1, keepdims=True)), axis=1,
                                      keepdims=True)) + 1e-3  # (batch, 1, 1): the deseasonalised window's spread
        target = np.zeros(x.shape[-1], dtype="float32")
        target[layer.target_index] = 1.0
        target = ops.convert_to_tensor(target)  # torch: an array times a tensor that needs its gradient fails
        center = mean * (1.0 - target) + base * target
        spread = spread * (1.0 - target) + base * deviation * target
        extra = ops.stack([next_factors, deviation[..., 0] + 0.0 * column], axis=-1)
        return center, spread, 0.0 * column, last + 0.0 * column, extra


_SCALERS = Registry("scaler", builtin=(WindowScaler(), ZScoreScaler(), SeriesScaler(), SmoothingScaler()))
register_scaler = _SCALERS.register
scaler_names = _SCALERS.names
get_scaler = _SCALERS.lookup
