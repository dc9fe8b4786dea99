"""Forecast metrics: each owns its formula, its column in the tables, and whether `tune` may minimize it.

A metric compares raw forecasts with raw actual values (`score(y_true,
y_pred, scale)`; `scale` is the training split's in-sample seasonal naive
MAE, which a `scaled` metric such as MASE divides by). Every registered
metric appears in `fit`'s and `evaluate`'s tables, in `metrics.json`, in
`compare`'s tables and `comparison.json`, and, unless `objective=False`, as
`tune`'s `objective` `val_NAME` on the validation split. Lower is better for
every metric. Register one with `register_metric`.

numpy is imported inside the formulas, so this module is light enough for
`keras-seq --help` to read the objective names from it.

Example:
>>> metric_names()
('mae', 'rmse', 'mape', 'smape', 'mase')
>>> get_metric("mase").score([1.0, 3.0], [2.0, 2.0], 2.0)
0.5
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

from keras_seq.plugins import Registry


def _arrays(y_true, y_pred):
    """The actual values and forecasts as float64, where an actual value is missing (NaN: `missing` mask) both
    left out (flattened then); every metric is a mean over what is left.

    Example:
    >>> [a.tolist() for a in _arrays([1.0, float("nan"), 3.0], [2.0, 2.0, 2.0])]
    [[1.0, 3.0], [2.0, 2.0]]
    """
    import numpy as np

    y_true, y_pred = np.asarray(y_true, dtype="float64"), np.asarray(y_pred, dtype="float64")
    missing = np.isnan(y_true)
    if not missing.any():
        return y_true, y_pred
    y_pred = np.broadcast_to(y_pred, np.broadcast_shapes(y_true.shape, y_pred.shape))
    return y_true[~np.broadcast_to(missing, y_pred.shape)], y_pred[~np.broadcast_to(missing, y_pred.shape)]


def mae(y_true, y_pred) -> float:
    """Mean absolute error.

    Example:
    >>> mae([1.0, 2.0], [2.0, 4.0])
    1.5
    """
    import numpy as np

    y_true, y_pred = _arrays(y_true, y_pred)
    return float(np.mean(np.abs(y_pred - y_true)))


def rmse(y_true, y_pred) -> float:
    """Root mean squared error.

    Example:
    >>> rmse([0.0, 0.0], [2.0, -2.0])
    2.0
    """
    import numpy as np

    y_true, y_pred = _arrays(y_true, y_pred)
    return float(np.sqrt(np.mean((y_pred - y_true) ** 2)))


MAPE_UNDEFINED = "undefined: the actual values include 0, and MAPE divides by them"


def mape(y_true, y_pred) -> float:
    """Mean absolute percentage error, in percent; NaN (undefined) if an actual value is 0.

    Example:
    >>> mape([100.0, 100.0], [110.0, 90.0]), mape([0.0, 1.0], [1.0, 1.0])
    (10.0, nan)
    """
    import numpy as np

    y_true, y_pred = _arrays(y_true, y_pred)
    if (y_true == 0).any():
        return float("nan")
    return float(100.0 * np.mean(np.abs(y_pred - y_true) / np.abs(y_true)))


def smape(y_true, y_pred) -> float:
    """Symmetric MAPE in percent (the M4 competition's): `200 * mean(|error| / (|actual| + |forecast|))`.

    A term whose actual value and forecast are both 0 counts as 0.

    Example:
    >>> round(smape([100.0, 100.0], [110.0, 90.0]), 4)
    10.0251
    """
    import numpy as np

    y_true, y_pred = _arrays(y_true, y_pred)
    denominator = np.abs(y_true) + np.abs(y_pred)
    terms = np.divide(2 * np.abs(y_pred - y_true), denominator, out=np.zeros_like(denominator), where=denominator > 0)
    return float(100.0 * np.mean(terms))


@dataclasses.dataclass(frozen=True)
class Metric:
    """A forecast metric.

    Args:
        name: str. Its key in `metrics.json` and `comparison.json`; `tune`
            minimizes it as `val_<name>`.
        label: str. Its column in the tables.
        score: callable. `score(y_true, y_pred, scale) -> float` (lower is
            better); `scale` is the in-sample seasonal naive MAE, or None.
        width, digits: int. Its column's width and decimals in `fit`'s table.
        scaled: bool. It needs `scale` (left out where there is none).
        objective: bool. `tune` may minimize it (`objective` `val_<name>`).
        undefined: str. Why a value is missing (`null_reasons`), and, if
            `shown_undefined`, what the table shows in its place.
    """

    name: str
    label: str
    score: Callable
    width: int = 8
    digits: int = 3
    scaled: bool = False
    objective: bool = True
    undefined: str = "undefined"
    shown_undefined: bool = False

    def shown(self, value) -> str:
        """The value as `fit`'s table shows it, right-aligned in `width`: `digits` decimals, more where the value
        needs them for 4 significant digits (`figure`)."""
        value = float("nan") if value is None else value
        if self.shown_undefined and not math.isfinite(value):
            return f"{'undefined':>{self.width}}"
        return f"{figure(value, self.digits):>{self.width}}"


def figure(value: float, decimals: int = 2, significant: int = 4) -> str:
    """`value` with `decimals` decimals, or more (at most 8) where it needs them for `significant` digits: errors
    of 0.4312 and 0.4298 read apart, as 296.50 does from 301.13.

    Example:
    >>> figure(296.5), figure(0.43124), figure(0.0123456), figure(float("nan"))
    ('296.50', '0.4312', '0.01235', 'nan')
    """
    if not math.isfinite(value) or value == 0:
        return f"{value:.{decimals}f}"
    needed = significant - 1 - math.floor(math.log10(abs(value)))
    return f"{value:.{min(max(decimals, needed), 8)}f}"


_METRICS = Registry("metric")
register_metric = _METRICS.register  # a metric joins every report, table and comparison (and tune's objectives)
metric_names = _METRICS.names
get_metric = _METRICS.lookup


def metrics() -> tuple[Metric, ...]:
    """The registered metrics, in registration order (the tables' column order)."""
    return tuple(_METRICS.values())


def objective_names() -> tuple[str, ...]:
    """What `tune`'s `objective` takes: `val_<metric>` for each objective metric, and `val_loss`."""
    return (*(f"val_{m.name}" for m in metrics() if m.objective), "val_loss")


def scores(y_true, y_pred, scale: float | None = None) -> dict:
    """Every registered metric of a forecast (the scaled ones only where `scale` is given)."""
    return {m.name: m.score(y_true, y_pred, scale) for m in metrics() if scale is not None or not m.scaled}


for _metric in (
    Metric("mae", "MAE", lambda y, f, scale: mae(y, f), width=10, digits=2),
    Metric("rmse", "RMSE", lambda y, f, scale: rmse(y, f), width=10, digits=2),
    Metric("mape", "MAPE %", lambda y, f, scale: mape(y, f), width=9, undefined=MAPE_UNDEFINED, shown_undefined=True),
    Metric("smape", "sMAPE %", lambda y, f, scale: smape(y, f)),
    Metric("mase", "MASE", lambda y, f, scale: mae(y, f) / scale if scale > 0 else float("nan"), width=7, scaled=True,
           undefined="undefined: the training split's seasonal naive error is 0"),
):
    register_metric(_metric)
