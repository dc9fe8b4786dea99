"""Conformal intervals that adapt as forecasts meet actual values.

Split conformal (`keras_seq.evaluation.conformal`) calibrates each offset
once, on the validation windows; when the series drifts, the test period's
errors are no longer exchangeable with those and the coverage drifts too
(^DJI's 80% interval covered 87.6% of 2022-23's test days: its validation
period held the 2022 sell-off). Adaptive conformal inference (Gibbs and
Candes, NeurIPS 2021) re-estimates the miscoverage level online,
`alpha_{t+1} = alpha_t + gamma (alpha - err_t)`, and keeps the long-run
miscoverage near alpha whatever the data do. keras-seq uses the form of it
that moves the offset itself rather than the level, quantile tracking
(Angelopoulos, Candes and Tibshirani, "Conformal PID control for time
series prediction", NeurIPS 2023): after each actual value,

    offset_{t+1} = offset_t + eta * (err_t - (1 - c))

with err_t = 1 where the actual fell outside interval t (its score above
offset_t) and c the coverage. A miss widens the interval by eta * c, a hit
narrows it by eta * (1 - c); over T forecasts the miss rate is within
(B + eta) / (eta T) of 1 - c, B bounding the scores. The step eta is `rate`
times the split-conformal offset of that step and coverage (at least 0.01 of
the window's scale), so one rate serves every series and scaler.

Each step ahead h and coverage keeps its own offset. An actual value is
known h steps after its window's last one; replayed over a split in window
order, window t's interval uses the offsets updated through the windows
before it, so no interval is scored with its own actual.
"""

from __future__ import annotations

import numpy as np

from keras_seq.errors import KerasSeqError

MIN_STEP = 0.01  # eta's floor, in units of the window's scale: an offset calibrated at 0 still moves


def track_offsets(initial: np.ndarray, scores: np.ndarray, coverages, rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Quantile tracking of conformal offsets through a sequence of scores.

    Args:
        initial: `(horizon, coverages)` offsets to start from (split
            conformal's).
        scores: `(n, horizon, coverages)` scores in time order, as
            `conformal.calibrate` computes them (above the offset: a miss).
        coverages: the coverages, increasing.
        rate: float > 0. The learning rate: eta = rate * max(initial,
            MIN_STEP).

    Returns:
        `(offsets, used)`: the offsets after the last score, and `(n,
        horizon, coverages)` the offsets each window's interval used (before
        its own score was seen).

    Example:
    >>> offsets, used = track_offsets(np.array([[1.0]]), np.array([[[2.0]], [[0.5]]]), [0.8], 0.5)
    >>> used[:, 0, 0].round(6).tolist(), offsets.round(6).tolist()  # a miss: +0.5 * 0.8; a hit: -0.5 * 0.2
    ([1.0, 1.4], [[1.3]])
    """
    if not rate > 0:
        raise KerasSeqError(f"the adaptive conformal rate must be above 0. Received: {rate!r}")
    offsets = np.array(initial, dtype="float64")
    eta = rate * np.maximum(offsets, MIN_STEP)
    alpha = 1.0 - np.asarray(coverages, dtype="float64")[None, :]
    used = np.empty(np.shape(scores), dtype="float64")
    for t, score in enumerate(np.asarray(scores, dtype="float64")):
        used[t] = offsets
        offsets = np.where(np.isnan(score), offsets, offsets + eta * ((score > offsets) - alpha))  # a missing actual
        # value (`missing` mask) moves nothing
    return offsets, used


def interval_parts(model, windows, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The parts a conformal model's intervals are made of on `split`: its own bounds `low`, `high` and the point
    forecast (each `(n, horizon, coverages)` but the point, `(n, horizon)`), and each window's `scale`
    `(n, horizon, 1)`. The layer's offsets are left as they were."""
    from keras_seq.evaluation.report import predict_split

    import keras

    layer = model.get_layer("conformal")
    kept = np.array(keras.ops.convert_to_numpy(layer.offsets))
    n_coverages = len(layer.coverages)
    bounds = []
    try:
        for offset in (0.0, 1.0):  # the model's own bounds, then those bounds -/+ each window's scale
            layer.offsets.assign(np.full(kept.shape, offset, dtype="float32"))
            bounds.append(predict_split(model, windows, split))  # (n, horizon, 2 * coverages + 1)
    finally:
        layer.offsets.assign(kept)
    own, wider = bounds
    low, high = own[..., n_coverages - 1 :: -1], own[..., n_coverages + 1 :]
    return low, high, own[..., n_coverages], wider[..., -1:] - own[..., -1:]


def scores_of(low, high, scale, actual) -> np.ndarray:
    """How far each actual value lies outside the model's own interval, in units of its window's scale (negative
    inside): `(n, horizon, coverages)`."""
    actual = np.asarray(actual)[..., None]
    return np.maximum(low - actual, actual - high) / scale


def adaptive_forecast(model, windows, split: str, rate: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A conformal model's intervals on `split` with offsets tracked window by window from its calibrated ones.

    Returns:
        `(forecast, offsets, used)`: the forecast `(n, horizon, 2 *
        coverages + 1)` as the model returns it (lower bounds widest first,
        the point, upper bounds) but with each window's tracked offsets; the
        offsets after the split's last actual value; and the offsets each
        window used.
    """
    import keras

    layer = model.get_layer("conformal")
    low, high, point, scale = interval_parts(model, windows, split)
    scores = scores_of(low, high, scale, windows.targets(split))
    offsets, used = track_offsets(keras.ops.convert_to_numpy(layer.offsets), scores, layer.coverages, rate)
    lower, upper = low - used * scale, high + used * scale
    lower = np.minimum.accumulate(np.minimum(lower, point[..., None]), axis=-1)  # nested: wider never inside
    upper = np.maximum.accumulate(np.maximum(upper, point[..., None]), axis=-1)
    return np.concatenate([lower[..., ::-1], point[..., None], upper], axis=-1), offsets, used


def track_new_actuals(model, windows, since, rate: float) -> dict:
    """Track a conformal model's offsets (in place) through the windows of `windows`' test split whose actual
    values come after `since` (the date or step its offsets were last tracked to), in the order they arrived.

    Returns:
        `{"actuals", "first", "last", "before", "after"}`: how many windows
        moved the offsets, their first and last target dates, and the
        offsets `(horizon, coverages)` before and after.

    Raises:
        KerasSeqError: no window's actual value comes after `since`.
    """
    import keras
    import pandas as pd

    from keras_seq.data.reading import label_of

    layer = model.get_layer("conformal")
    first = windows.dates[windows.target_positions("test")[:, 0]]  # each window's first actual value's date
    after = np.asarray(first > (pd.Timestamp(since) if isinstance(first, pd.DatetimeIndex) else int(since)))
    if not len(first) or not after.any():
        raise KerasSeqError(f"the actual values end on {label_of(first.max()) if len(first) else 'no date'}, and the "
                            f"model's intervals were last tracked to {since}: there is no new actual value to track. "
                            "Give the rows that came after it.")
    chosen = np.flatnonzero(after)[np.argsort(np.asarray(first[after]), kind="stable")]
    low, high, _, scale = interval_parts(model, windows, "test")
    scores = scores_of(low, high, scale, windows.targets("test"))[chosen]
    before = np.array(keras.ops.convert_to_numpy(layer.offsets), dtype="float64")
    offsets, _ = track_offsets(before, scores, layer.coverages, rate)
    layer.offsets.assign(offsets.astype("float32"))
    return {"actuals": int(len(chosen)), "first": label_of(first[chosen].min()), "last": label_of(first[chosen].max()),
            "before": before, "after": offsets}
