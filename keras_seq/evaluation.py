"""Metrics in price units, the persistence baseline, and plots.

Every metric compares raw forecasts with raw actual values of a held-out
split. The persistence baseline forecasts each value as the last value known
when the forecast is made ("tomorrow = today"); on daily index closes it is
hard to beat, so every report gives the model's skill against it:
`1 - MAE_model / MAE_persistence` (above 0: better than persistence).
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np

from keras_seq.data.windows import Windows


def mae(y_true, y_pred) -> float:
    """Mean absolute error.

    Example:
    >>> mae([1.0, 2.0], [2.0, 4.0])
    1.5
    """
    return float(np.mean(np.abs(np.asarray(y_pred, dtype="float64") - np.asarray(y_true, dtype="float64"))))


def rmse(y_true, y_pred) -> float:
    """Root mean squared error.

    Example:
    >>> rmse([0.0, 0.0], [2.0, -2.0])
    2.0
    """
    errors = np.asarray(y_pred, dtype="float64") - np.asarray(y_true, dtype="float64")
    return float(np.sqrt(np.mean(errors**2)))


MAPE_UNDEFINED = "undefined: the actual values include 0, and MAPE divides by them"


def mape(y_true, y_pred) -> float:
    """Mean absolute percentage error, in percent; NaN (undefined) if an actual value is 0.

    Example:
    >>> mape([100.0, 100.0], [110.0, 90.0]), mape([0.0, 1.0], [1.0, 1.0])
    (10.0, nan)
    """
    y_true = np.asarray(y_true, dtype="float64")
    if (y_true == 0).any():
        return float("nan")
    errors = np.asarray(y_pred, dtype="float64") - y_true
    return float(100.0 * np.mean(np.abs(errors) / np.abs(y_true)))


def skill(model_mae: float, baseline_mae: float) -> float:
    """`1 - model_mae / baseline_mae`: 0 matches the baseline, 1 is perfect.

    Example:
    >>> skill(50.0, 100.0)
    0.5
    """
    if baseline_mae == 0:
        return float("nan")
    return 1.0 - model_mae / baseline_mae


def forecast_metrics(y_true, y_pred) -> dict:
    """MAE, RMSE and MAPE (percent) of a forecast."""
    return {"mae": mae(y_true, y_pred), "rmse": rmse(y_true, y_pred), "mape": mape(y_true, y_pred)}


def persistence_forecast(windows: Windows, split: str) -> np.ndarray:
    """The last known target value for every target value of `split`."""
    return windows.target_values[windows.observed_positions(split)]


@dataclasses.dataclass
class Report:
    """Test metrics of one model and of the persistence baseline."""

    name: str
    split: str
    windows: int
    first_date: str
    last_date: str
    model: dict
    persistence: dict
    skill: float

    def to_dict(self) -> dict:
        """The report as strict JSON: an undefined MAPE is `null`, with the reason under `null_reasons`."""
        report = dataclasses.asdict(self)
        reasons = {}
        for who in ("model", "persistence"):
            if not np.isfinite(report[who]["mape"]):
                report[who]["mape"] = None
                reasons[f"{who}.mape"] = MAPE_UNDEFINED
        return {**report, "null_reasons": reasons} if reasons else report

    def table(self) -> str:
        """A plain-text table in price units."""
        rows = [(self.name, self.model), ("persistence", self.persistence)]
        width = max(len(name) for name, _ in rows)
        scope = f"{self.split} split" if self.split in ("train", "validation", "test") else self.split
        lines = [
            f"{scope} {self.first_date}..{self.last_date}, {self.windows} windows, price units",
            f"{'model':<{width}}  {'MAE':>10}  {'RMSE':>10}  {'MAPE %':>8}",
        ]
        for name, metrics in rows:
            shown = f"{metrics['mape']:>8.3f}" if np.isfinite(metrics["mape"]) else f"{'undefined':>8}"
            lines.append(f"{name:<{width}}  {metrics['mae']:>10.2f}  {metrics['rmse']:>10.2f}  {shown}")
        lines.append(f"skill vs persistence (1 - MAE/MAE_persistence): {self.skill:+.3f}")
        return "\n".join(lines)


def predict_split(model, windows: Windows, split: str) -> np.ndarray:
    """Raw forecasts of a keras-seq model for `split`, shaped like `windows.targets(split)`."""
    if windows.normalized:
        raise ValueError("predict_split needs raw windows: make_windows(..., normalize=False).")
    if split == "train" and windows.shuffled:
        raise ValueError("the train split is shuffled, so its predictions would not line up with its targets.")
    dataset = windows.dataset(split)
    if dataset is None:
        raise ValueError(f"the {split} split has no windows.")
    predictions = np.asarray(model.predict(dataset, verbose=0), dtype="float64")
    return predictions.reshape(windows.target_positions(split).shape)


def evaluate_model(model, windows: Windows, split: str = "test", name: str = "model") -> tuple[Report, np.ndarray]:
    """Metrics of `model` and of persistence on one split, in the target's units.

    Args:
        model: keras.Model. A keras-seq model (raw values in and out).
        windows: Windows. Raw windows: `make_windows(..., normalize=False)`.
        split: str. `"train"`, `"validation"` or `"test"`. Defaults to
            `"test"`.
        name: str. The model's name in the report. Defaults to `"model"`.

    Returns:
        `(report, predictions)`, the predictions shaped like
        `windows.targets(split)`.
    """
    predictions = predict_split(model, windows, split)
    actual = windows.targets(split)
    model_metrics = forecast_metrics(actual, predictions)
    baseline = forecast_metrics(actual, persistence_forecast(windows, split))
    positions = windows.target_positions(split)
    report = Report(
        name=name,
        split=split,
        windows=int(len(positions)),
        first_date=str(windows.dates[positions.min()].date()),
        last_date=str(windows.dates[positions.max()].date()),
        model=model_metrics,
        persistence=baseline,
        skill=skill(model_metrics["mae"], baseline["mae"]),
    )
    return report, predictions


# === Plots ===


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, path: Path) -> None:
    """Lay out, write and close `fig`. A name in the data with characters the font lacks is drawn as boxes,
    without matplotlib's two-line warning for each."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_loss(history: dict, path: Path, title: str = "") -> None:
    """Training and validation loss per epoch (normalized units), the best epoch marked."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(7, 4))
    for key, label in (("loss", "train"), ("val_loss", "validation")):
        if key in history:
            ax.plot(range(1, len(history[key]) + 1), history[key], marker="o", markersize=3, label=label)
    if history.get("val_loss"):
        best = int(np.argmin(history["val_loss"]))
        ax.axvline(best + 1, color="grey", linestyle=":", label=f"best validation (epoch {best + 1})")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE (z-score units)")
    ax.set_title(title or "loss")
    ax.legend()
    _save(plt, fig, path)


def plot_forecast(windows: Windows, split: str, predictions: np.ndarray, path: Path, name: str = "model") -> None:
    """Actual values of `split` and the model's one-step-ahead forecasts, in price units."""
    plt = _pyplot()
    positions = windows.target_positions(split)
    # One forecast per date: the first horizon step (`next`) or the last step (`sequence`).
    column = 0 if windows.target_kind == "next" else -1
    lo, hi = windows.split_rows[split]
    fig, ax = plt.subplots(figsize=(10, 4.5))
    ax.plot(windows.dates[lo:hi], windows.target_values[lo:hi], color="black", linewidth=1.2, label="actual")
    ax.plot(windows.dates[positions[:, column]], predictions[:, column], linewidth=1.0, label=f"{name} forecast")
    ax.set_ylabel(windows.scaling.target_name)
    ax.set_title(f"{name}: {split} split, one step ahead")
    ax.legend()
    fig.autofmt_xdate()
    _save(plt, fig, path)
