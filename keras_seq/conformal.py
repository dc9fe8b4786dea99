"""Split-conformal intervals around a trained model's point forecast, calibrated on its validation windows.

For each validation window and step ahead h, the score is the absolute
error divided by the window's own scale (the spread the model's scaler
found in it): `|y - forecast| / scale`. Step h's offset for coverage c is
the ceil((n + 1) c)-th smallest of its n scores, so a new window's
interval `forecast -/+ offset * scale` holds the actual value with
probability at least c when the windows are exchangeable (the
finite-sample guarantee of split conformal prediction). Dividing by the
scale makes the interval follow each window's level and volatility, and
each step ahead gets its own offset. The offsets are stored in the model's
`conformal` layer (`keras_seq.models.layers.ConformalIntervals`), so an
exported artifact returns the calibrated intervals from raw values.
"""

from __future__ import annotations

import math

import numpy as np

from keras_seq.errors import KerasSeqError


def conformal_offsets(scores: np.ndarray, coverages) -> np.ndarray:
    """`(horizon, coverages)` offsets: per step, the ceil((n + 1) c)-th smallest of the `(n, horizon)` scores.

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
                f"needs at least {math.ceil(coverage / (1 - coverage))}). Give --splits a larger validation fraction, "
                "or a lower coverage."
            )
        offsets[:, j] = ordered[rank - 1]
    return offsets


def calibrate(model, windows, split: str = "validation") -> dict:
    """Set the offsets of `model`'s conformal layer from `split`'s windows; return what calibrated it.

    Args:
        model: keras.Model. A keras-seq model built with `conformal`
            coverages (its offsets are replaced).
        windows: Windows. Raw windows in time order, as the model reads
            them (`make_windows(..., shuffle=False)`).

    Returns:
        `{"split", "windows", "first_date", "last_date", "coverages",
        "offsets"}`, the offsets `(horizon, coverages)` in units of each
        window's scale.
    """
    layer = model.get_layer("conformal")
    if windows.count(split) == 0:
        raise KerasSeqError(f"conformal calibration needs windows in the {split} split, and it has none. Give "
                            "--splits a validation fraction above 0.")
    horizon, n_coverages = (int(d) for d in layer.offsets.shape)
    layer.offsets.assign(np.ones((horizon, n_coverages), dtype="float32"))  # output bounds = forecast -/+ scale
    from keras_seq.evaluation import predict_split

    output = predict_split(model, windows, split)  # (n, horizon, 2 * coverages + 1)
    middle = n_coverages
    forecast, scale = output[..., middle], output[..., middle + 1] - output[..., middle]
    scores = np.abs(windows.targets(split) - forecast) / scale
    offsets = conformal_offsets(scores, layer.coverages)
    layer.offsets.assign(offsets.astype("float32"))
    dates = windows.dates[windows.target_positions(split).ravel()]
    return {"split": split, "windows": int(len(scores)), "first_date": str(dates.min().date()),
            "last_date": str(dates.max().date()), "coverages": list(layer.coverages), "offsets": offsets.tolist()}
