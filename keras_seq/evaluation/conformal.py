"""Split-conformal intervals around a trained model's forecast, calibrated on its validation windows.

For each validation window, step ahead h and coverage c, the score is how
far the actual value lies outside the model's own interval `[low, high]`
of that coverage, in units of the window's scale (the spread the model's
scaler found in it): `max(low - y, y - high) / scale`. For a point model
low = high = the forecast, so the score is `|y - forecast| / scale`; for a
quantile or distribution head, `low` and `high` are its quantiles at
(1 - c) / 2 and (1 + c) / 2 and the score is negative inside them
(conformalized quantile regression, Romano, Patterson and Candes 2019).
Step h's offset for c is the ceil((n + 1) c)-th smallest of its n scores,
so a new window's interval `[low - offset * scale, high + offset * scale]`
holds the actual value with probability at least c when the windows are
exchangeable (the finite-sample guarantee of split conformal prediction).
Dividing by the scale makes the interval follow each window's level and
volatility, and each step ahead gets its own offset. The offsets are
stored in the model's `conformal` layer
(`keras_seq.models.layers.ConformalIntervals`), so an exported artifact
returns the calibrated intervals from raw values.
"""

from __future__ import annotations

import math

import numpy as np

from keras_seq.data.reading import label_of
from keras_seq.errors import KerasSeqError


def conformal_offsets(scores: np.ndarray, coverages) -> np.ndarray:
    """`(horizon, coverages)` offsets: per step, the ceil((n + 1) c)-th smallest of the n scores.

    `scores` is `(n, horizon)`, one score per window and step for every
    coverage, or `(n, horizon, coverages)`, each coverage's own.

    Raises:
        KerasSeqError: n is too small for a coverage (it needs n >= c / (1 - c)).

    Example:
    >>> conformal_offsets(np.arange(1.0, 10.0)[:, None], [0.8]).tolist()  # 9 scores: the 8th smallest
    [[8.0]]
    """
    n = len(scores)
    offsets = np.empty((scores.shape[1], len(coverages)))
    ordered = np.sort(scores, axis=0)
    for j, coverage in enumerate(coverages):
        rank = math.ceil((n + 1) * coverage)
        if rank > n:
            raise KerasSeqError(
                f"the validation split has {n} windows, too few for a {100 * coverage:g}% conformal interval (it "
                f"needs at least {math.ceil(coverage / (1 - coverage))}). Give `splits` a larger validation fraction, "
                "or a lower coverage."
            )
        offsets[:, j] = ordered[rank - 1] if ordered.ndim == 2 else ordered[rank - 1, :, j]
    return offsets


def calibrate(model, windows, split: str = "validation") -> dict:
    """Set the offsets of `model`'s conformal layer from `split`'s windows; return what calibrated it.

    Args:
        model: keras.Model. A keras-seq model built with `conformal`
            coverages, a point or a quantile model (its offsets are
            replaced).
        windows: Windows. Raw windows in time order, as the model reads
            them (`make_windows(..., shuffle=False)`).

    Returns:
        `{"split", "around", "windows", "first_date", "last_date",
        "coverages", "offsets"}`: `around` what the intervals were
        calibrated (`"the point forecast"`, `"the quantile head's
        intervals"`), the offsets `(horizon, coverages)` in units of each
        window's scale.
    """
    layer = model.get_layer("conformal")
    if windows.count(split) == 0:
        raise KerasSeqError(f"conformal calibration needs windows in the {split} split, and it has none. Give "
                            "`splits` a validation fraction above 0.")
    from keras_seq.evaluation.adaptive import interval_parts, scores_of

    low, high, _, scale = interval_parts(model, windows, split)
    scores = scores_of(low, high, scale, windows.targets(split))
    scores = scores[~np.isnan(scores).reshape(len(scores), -1).any(axis=1)]  # a missing actual (`missing` mask)
    offsets = conformal_offsets(scores, layer.coverages)
    layer.offsets.assign(offsets.astype("float32"))
    dates = windows.dates[windows.target_positions(split).ravel()]
    return {"split": split, "around": _around(model), "windows": int(len(scores)), "first_date": label_of(dates.min()),
            "last_date": label_of(dates.max()), "coverages": list(layer.coverages), "offsets": offsets.tolist()}


def _around(model) -> str:
    """What `model`'s conformal intervals widen: its point forecast, or its quantile or distribution head's own."""
    from keras_seq.models.heads import model_head

    head = model_head(model)
    if head.name == "point":
        return "the point forecast"
    return f"the {getattr(head, 'distribution', 'quantile')} head's intervals"
