"""Metrics in the target's units, the baselines a forecaster is judged by, and plots.

Every metric compares raw forecasts with raw actual values of a held-out
split: MAE, RMSE, MAPE, sMAPE and MASE (the MAE over the training split's
in-sample seasonal naive MAE: below 1 beats that naive forecast on average).
Five baselines are scored on the same rows: persistence ("tomorrow =
today"), seasonal naive (the value one season before; the season inferred
from the dates or given), drift (the last value plus the average change so
far), the training split's mean, and naive2, the M competitions' benchmark
(persistence on the seasonally adjusted series, `naive2_forecast`). Every
report gives the model's skill, `1 - MAE_model / MAE_baseline` (above 0:
better), against persistence and against the best baseline, named, and the
M4 competition's OWA against naive2 (`owa`).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from keras_seq.data.reading import label_of
from keras_seq.data.windows import Windows
from keras_seq.evaluation.metrics import MAPE_UNDEFINED, figure, mae, mape, metrics, rmse, scores, smape  # noqa: F401 - this module's API
from keras_seq.models.registry import get_arch
from keras_seq.models.scalers import get_scaler


PERSISTENCE = "persistence"  # the baseline every model is scored against: tomorrow = today


def skill(model_mae: float, baseline_mae: float) -> float:
    """`1 - model_mae / baseline_mae`: 0 matches the baseline, 1 is perfect.

    Example:
    >>> skill(50.0, 100.0)
    0.5
    """
    if baseline_mae == 0:
        return float("nan")
    return 1.0 - model_mae / baseline_mae


def forecast_metrics(y_true, y_pred, mase_scale: float | None = None) -> dict:
    """Every registered metric (`keras_seq.evaluation.metrics`: MAE, RMSE, MAPE and sMAPE in percent, and MASE where
    `mase_scale`, the in-sample naive MAE, is given)."""
    return scores(y_true, y_pred, mase_scale)


# === Baselines ===

def infer_season(dates) -> tuple[int, str]:
    """The seasonal period of a series from the spacing of its dates, and what it was read from.

    Example:
    >>> import pandas as pd
    >>> infer_season(pd.bdate_range("2020-01-01", periods=30))
    (5, 'business-day dates: a week of 5')
    >>> infer_season(pd.date_range("2000-01-01", periods=30, freq="MS"))
    (12, 'monthly dates: a year of 12')
    """
    if not isinstance(dates, pd.DatetimeIndex):
        return 1, "steps without a calendar: none (give `season`, e.g. 12 for monthly steps)"
    if len(dates) < 3:
        return 1, "too few dates to tell: none"
    days = float(np.median(np.diff(np.asarray(dates, dtype="datetime64[s]").astype("int64")))) / 86400
    if days < 0.9:  # intraday: a day of steps
        steps = max(1, int(round(1 / days)))
        return steps, f"intraday dates {24 * days:g} h apart: a day of {steps}"
    for low, high, season, words in ((0.9, 1.5, 7, "daily"), (6, 8, 52, "weekly"), (27, 32, 12, "monthly"),
                                     (88, 93, 4, "quarterly"), (360, 370, 1, "yearly")):
        if low <= days <= high:
            if words == "daily" and (pd.DatetimeIndex(dates).dayofweek < 5).all():
                return 5, "business-day dates: a week of 5"
            if season == 1:
                return 1, "yearly dates: no calendar season (give `season` for a cycle such as 11)"
            span = "a week" if season == 7 else "a year"
            return season, f"{words} dates: {span} of {season}"
    return 1, f"dates {days:g} days apart: none"


def baseline_forecasts(windows: Windows, split: str, season: int, whole: bool = False) -> dict:
    """Each baseline's forecast of every target value of `split`, shaped like `windows.targets(split)`.

    - persistence: the last known value ("tomorrow = today");
    - seasonal naive: the value one season before (the last known one of
      that phase when the horizon is longer than the season);
    - drift: the last known value plus the average change per step from
      the series' first row to it;
    - train mean: the mean of the series' training split;
    - naive2: the M competitions' benchmark, `naive2_forecast`.
    """
    values, positions, observed = windows.target_values, windows.target_positions(split), windows.observed_positions(split)
    first, train_mean = _series_rows(windows, positions)
    ahead = positions - observed
    seasonal_rows = np.maximum(positions - season * -(-ahead // season), first)
    span = np.maximum(observed - first, 1)
    return {
        "persistence": values[observed],
        "seasonal naive": values[seasonal_rows],
        "drift": values[observed] + ahead * (values[observed] - values[first]) / span,
        "train mean": train_mean,
        "naive2": naive2_forecast(windows, split, season, whole),
    }


# The M4 competition's seasonality test: significant at 90% (one-sided normal quantile).
SEASONALITY_Z = 1.645


def seasonal_indices(values: np.ndarray, season: int) -> np.ndarray | None:
    """Naive2's multiplicative seasonal indices of a series (one per phase 0..season-1, averaging 1), or None
    where it shows no seasonality.

    The series is seasonal where its autocorrelation at lag `season`, r_m,
    exceeds 1.645 sqrt((1 + 2 (r_1² + ... + r_{m-1}²)) / n) in absolute value
    (and it has at least three seasons, all values above 0). The indices are
    those of a classical multiplicative decomposition: the trend a centred
    moving average of order `season` (2 x m for an even m), each phase's index
    the mean ratio of value to trend, scaled to average 1.

    Example:
    >>> seasonal_indices(np.tile([8.0, 12.0, 9.0, 11.0], 6), 4)
    array([0.8, 1.2, 0.9, 1.1])
    """
    values = np.asarray(values, dtype="float64")
    n = len(values)
    if season < 2 or n < 3 * season or not np.all(values > 0):
        return None
    deviations = values - values.mean()
    spread = float(np.sum(deviations ** 2))
    if spread == 0:
        return None
    r = np.array([np.sum(deviations[k:] * deviations[:-k]) / spread for k in range(1, season + 1)])
    if abs(r[-1]) <= SEASONALITY_Z * np.sqrt((1 + 2 * np.sum(r[:-1] ** 2)) / n):
        return None
    weights = np.full(season, 1 / season) if season % 2 else np.r_[0.5, np.ones(season - 1), 0.5] / season
    trend = np.convolve(values, weights, mode="valid")
    start = (len(weights) - 1) // 2  # the row of trend[0]
    phases = np.arange(start, start + len(trend)) % season
    ratios = values[start : start + len(trend)] / trend
    figure = np.array([ratios[phases == phase].mean() for phase in range(season)])
    return figure / figure.mean()


def naive2_forecast(windows: Windows, split: str, season: int, whole: bool = False) -> np.ndarray:
    """Naive2 for every target value of `split`: the last known value, seasonally adjusted by its series'
    `seasonal_indices` (of its training rows; `whole`: every row), carried forward and seasonalized again;
    persistence for a series without seasonality."""
    values, positions = windows.target_values, windows.target_positions(split)
    observed = np.broadcast_to(windows.observed_positions(split), positions.shape)
    factor = np.ones(positions.shape)
    which = windows.series_of(positions)
    for k, rows in enumerate(windows.series_splits):
        lo, hi = (rows["train"][0], rows["test"][1]) if whole else rows["train"]
        mine = which == k
        indices = seasonal_indices(values[lo:hi], season) if mine.any() else None
        if indices is not None:
            factor[mine] = indices[(positions[mine] - lo) % season] / indices[(observed[mine] - lo) % season]
    return values[observed] * factor


def owa(model: dict, naive2: dict) -> float:
    """The M4 competition's overall weighted average: the mean of the model's sMAPE and MASE, each relative to
    Naive2's (below 1: better than Naive2); NaN where Naive2's is 0 or undefined.

    Example:
    >>> owa({"smape": 10.0, "mase": 1.0}, {"smape": 20.0, "mase": 4.0})
    0.375
    """
    ratios = [model.get(key, np.nan) / naive2[key] if naive2.get(key) else np.nan for key in ("smape", "mase")]
    return float(np.mean(ratios))


def _series_rows(windows: Windows, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each target position: the first row of its series (after any padding), and the mean of that series'
    training split (of a series without training rows, `split_steps`: of its rows before its test split)."""
    firsts, which = windows.first_rows + windows.padding, windows.series_of(positions)
    spans = [rows["train"] if rows["train"][1] > rows["train"][0] else (rows["train"][0], rows["test"][0])
             for rows in windows.series_splits]
    means = np.array([windows.target_values[lo:hi].mean() if hi > lo else np.nan for lo, hi in spans])
    return firsts[which], means[which]


def naive_scale(windows: Windows, season: int, whole: bool = False) -> float:
    """The in-sample MAE of the seasonal naive forecast over the training rows (`whole`: every row): MASE's denominator."""
    errors = [_naive_errors(windows.target_values, rows, season, whole) for rows in windows.series_splits]
    errors = [e for e in errors if len(e)]
    return float(np.mean(np.concatenate(errors))) if errors else float("nan")


def _naive_errors(values: np.ndarray, rows: dict, season: int, whole: bool) -> np.ndarray:
    """|seasonal naive error| over one series' training rows (`whole`: all its rows); empty if too few."""
    lo, hi = (rows["train"][0], rows["test"][1]) if whole else rows["train"]
    train = values[lo:hi]
    errors = np.abs(train[season:] - train[:-season]) if len(train) > season else train[:0]
    return errors[~np.isnan(errors)]  # a pair with a missing value (`missing` mask) is no error


def _naive_mae(values: np.ndarray, rows: dict, season: int, whole: bool) -> float:
    """`naive_scale` of one series."""
    errors = _naive_errors(values, rows, season, whole)
    return float(np.mean(errors)) if len(errors) else float("nan")


def persistence_forecast(windows: Windows, split: str) -> np.ndarray:
    """The last known target value for every target value of `split`."""
    return windows.target_values[windows.observed_positions(split)]


NULL_REASONS = {"skill": "undefined: the baseline's MAE is 0",  # a metric's own: its `undefined`
                "skill_vs_best": "undefined: the baseline's MAE is 0",
                "owa": "undefined: naive2's sMAPE or MASE is 0 or undefined"}


@dataclasses.dataclass
class Report:
    """Metrics of one model and of the baselines on one split, in the target's units.

    `persistence` and `skill` (against it) are kept beside `baselines` (every
    baseline's metrics, persistence included) and `skill_vs_best` (against
    `best_baseline`, the baseline with the lowest MAE). For a horizon above 1
    each metric is the mean over the steps ahead, and `per_step` gives the MAE
    of every step.
    """

    name: str
    split: str
    windows: int
    first_date: str
    last_date: str
    model: dict
    persistence: dict
    skill: float
    baselines: dict = dataclasses.field(default_factory=dict)
    best_baseline: str = "persistence"
    skill_vs_best: float | None = None
    season: int = 1
    season_note: str = ""
    target: str = ""
    horizon: int = 1
    per_step: dict = dataclasses.field(default_factory=dict)  # who -> MAE of each step ahead (horizon > 1)
    note: str = ""  # why a model that loses to a baseline may lose, and what to try
    mase_scale: str = "training split"  # whose in-sample seasonal naive error MASE divides by
    per_series: dict = dataclasses.field(default_factory=dict)  # a panel's series -> their MAE, MASE and skill
    panel: dict = dataclasses.field(default_factory=dict)  # `panel_summary(per_series)`: aggregates over the series
    intervals: dict = dataclasses.field(default_factory=dict)  # a quantile forecast's `intervals.score_quantiles`
    owa: float | None = None  # `owa`: the mean of sMAPE and MASE relative to Naive2's
    others: dict = dataclasses.field(default_factory=dict)  # other models on the same rows (an update's parent)
    missing: dict = dataclasses.field(default_factory=dict)  # series -> its missing target values (`missing` mask)

    @property
    def scope(self) -> str:
        """What was evaluated: `test split 2022-05-13..2023-02-10` or the range given."""
        where = f"{self.split} split" if self.split in ("train", "validation", "test") else self.split
        return f"{where} {self.first_date}..{self.last_date}"

    @property
    def steps_ahead(self) -> str:
        if self.horizon == 1:
            return "1 step ahead"
        return f"1..{self.horizon} steps ahead (each figure the mean over the {self.horizon} steps)"

    def to_dict(self) -> dict:
        """The report as strict JSON: an undefined metric is `null`, with the reason under `null_reasons`."""
        report = dataclasses.asdict(self)
        reasons = {}
        for who, figures in [("model", report["model"]), ("persistence", report["persistence"]),
                             *((f"baselines.{name}", m) for name, m in report["baselines"].items())]:
            for key, value in figures.items():
                if value is not None and not np.isfinite(value):
                    figures[key] = None
                    reasons[f"{who}.{key}"] = _undefined(key)
        for figures in [*report["per_series"].values(), report["panel"]]:
            figures.update({k: None for k, v in figures.items() if isinstance(v, float) and not np.isfinite(v)})
        for key in ("skill", "skill_vs_best", "owa"):
            if report[key] is not None and not np.isfinite(report[key]):
                report[key] = None
                reasons[key] = NULL_REASONS[key]
        report["intervals"] = _finite_or_null(report["intervals"])
        report["others"] = {who: _finite_or_null(figures) for who, figures in report["others"].items()}
        for key in ("intervals", "others"):
            if not report[key]:
                del report[key]
        return {**report, "null_reasons": reasons} if reasons else report

    def table(self) -> str:
        """A plain-text table in the target's units, the baselines under the model."""
        rows = [(self.name, self.model), *self.others.items()] + [(baseline_label(n, self.season), m) for n, m in
                                            (self.baselines or {"persistence": self.persistence}).items()]
        width = max(len(name) for name, _ in rows)
        units = f"{self.target}'s units" if self.target else "the target's units"
        lines = [f"{self.scope}: {self.windows} windows, forecasts {self.steps_ahead}; errors in {units}",
                 f"{'model':<{width}}  " + "  ".join(f"{m.label:>{m.width}}" for m in metrics())]
        for name, figures in rows:
            lines.append(f"{name:<{width}}  " + "  ".join(m.shown(figures.get(m.name)) for m in metrics()))
        if self.per_step:
            lines.append("MAE by step ahead: " + "; ".join(
                f"{who} " + " ".join(figure(v) for v in values) for who, values in self.per_step.items()))
        lines.append(f"skill vs persistence (1 - MAE/MAE_persistence): {self.skill:+.3f}")
        if self.owa is not None and np.isfinite(self.owa):
            lines.append(f"OWA (mean of sMAPE and MASE relative to naive2's; below 1 beats it): {self.owa:.3f}")
        if self.baselines:
            lines.append(f"best baseline: {self.best_baseline}; skill vs it: {self.skill_vs_best:+.3f}. "
                         f"Season {self.season} ({self.season_note}); MASE scales by its in-sample error on the "
                         f"{self.mase_scale}.")
        if self.per_series:
            lines.append(_per_series_line(self.per_series, self.panel))
            missing = self.panel.get("without_windows", [])
            if missing:
                lines.append(f"{len(missing)} series {'has' if len(missing) == 1 else 'have'} no window in this split "
                             f"(their rows end before it or are too few): {', '.join(missing[:10])}"
                             f"{', ...' if len(missing) > 10 else ''}.")
        if self.missing:
            shown = ", ".join(f"{name} {count}" for name, count in list(self.missing.items())[:10])
            lines.append(f"missing target values, left out of every figure above: {shown}"
                         f"{', ...' if len(self.missing) > 10 else ''} (the baselines forecast from the last "
                         "observed value).")
        if self.intervals:
            from keras_seq.evaluation.intervals import interval_lines

            lines += interval_lines(self.intervals)
        if self.note:
            lines.append(self.note)
        return "\n".join(lines)


def _undefined(key: str) -> str:
    """Why a figure is missing: its metric's own reason, else a plain 'undefined'."""
    from keras_seq.evaluation.metrics import get_metric, metric_names

    return get_metric(key).undefined if key in metric_names() else "undefined"


def _finite_or_null(value):
    """`value` with every float that is not finite, at any depth of dicts and lists, as None (strict JSON)."""
    if isinstance(value, dict):
        return {k: _finite_or_null(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_or_null(v) for v in value]
    return None if isinstance(value, float) and not np.isfinite(value) else value


def _per_series_line(per_series: dict, summary: dict) -> str:
    """A panel's spread over series (`summary`: its `panel_summary`): MASE and skill against each series' own
    baselines, mean and median."""
    skills = {name: m["skill"] for name, m in per_series.items() if np.isfinite(m["skill"])}
    worst = min(skills, key=skills.get) if skills else None
    lowest = f"; lowest {worst} ({skills[worst]:+.3f})" if worst is not None else ""
    return (f"{summary['series']} series: MASE mean {summary['mase_mean']:.3f}, median {summary['mase_median']:.3f}, "
            f"weighted {summary['mase_weighted']:.3f}; skill vs each one's persistence mean "
            f"{summary['skill_mean']:+.3f}, median {summary['skill_median']:+.3f}, {summary['above_persistence']} above "
            f"0{lowest}; vs its seasonal naive mean {summary['skill_seasonal_mean']:+.3f}, "
            f"{summary['above_seasonal_naive']} above 0; OWA vs its naive2 mean {summary['owa_mean']:.3f}, median "
            f"{summary['owa_median']:.3f}.")


def _panel(windows: Windows, per_series: dict) -> dict:
    """`panel_summary`, and the series of the panel that have no window in the split (named, never dropped silently)."""
    if not per_series:
        return {}
    missing = [str(name) for name in windows.series_ids if str(name) not in per_series]
    return {**panel_summary(per_series), **({"without_windows": missing} if missing else {})}


def panel_summary(per_series: dict) -> dict:
    """Aggregates over a panel's series: mean and median of each series' MASE, sMAPE and skills, and weighted MASE.

    The weighted MASE is the sum of every series' MAE over the sum of their
    seasonal naive scales (each weighted by its windows): series with larger
    naive errors weigh more, and no single near-constant series dominates as
    it can in the plain mean.
    """
    def column(key):
        return np.array([m[key] for m in per_series.values()], dtype="float64")

    weights, maes, scales = column("windows"), column("mae"), column("scale")
    valid = np.isfinite(scales) & (scales > 0)
    summary = {"series": len(per_series)}
    for key in ("mase", "smape", "skill", "skill_seasonal", "owa"):
        values = column(key)
        finite = values[np.isfinite(values)]
        summary[f"{key}_mean"] = float(finite.mean()) if len(finite) else float("nan")
        summary[f"{key}_median"] = float(np.median(finite)) if len(finite) else float("nan")
    summary["mase_weighted"] = (float((weights * maes)[valid].sum() / (weights * scales)[valid].sum())
                                if valid.any() else float("nan"))
    summary["above_persistence"] = int((column("skill") > 0).sum())
    summary["above_seasonal_naive"] = int((column("skill_seasonal") > 0).sum())
    return summary


def per_series_metrics(windows: Windows, split: str, predictions: np.ndarray, baselines: dict, season: int,
                       whole: bool) -> dict:
    """Each series of a panel: its MAE, sMAPE, MASE (by its own training split's naive error), skill against
    its own persistence and seasonal naive, and OWA against its own naive2 (`baselines`: `baseline_forecasts`)."""
    positions, actual = windows.target_positions(split)[:, 0], windows.targets(split)  # series by series, in order
    result = {}
    for name, rows in zip(windows.series_ids, windows.series_splits):
        mine = slice(*np.searchsorted(positions, [rows["train"][0], rows["test"][1]]))  # this series' windows
        if mine.stop == mine.start:
            continue
        model_mae = mae(actual[mine], predictions[mine])
        scale = _naive_mae(windows.target_values, rows, season, whole)
        mine_metrics, naive2 = ({"smape": smape(actual[mine], forecast[mine]),
                                 "mase": mae(actual[mine], forecast[mine]) / scale if scale > 0 else float("nan")}
                                for forecast in (predictions, baselines["naive2"]))
        result[str(name)] = {"windows": int(mine.stop - mine.start), "mae": model_mae, **mine_metrics, "scale": scale,
                             "owa": owa(mine_metrics, naive2),
                             "skill": skill(model_mae, mae(actual[mine], baselines["persistence"][mine])),
                             "skill_seasonal": skill(model_mae, mae(actual[mine], baselines["seasonal naive"][mine]))}
    return result


def baseline_label(name: str, season: int) -> str:
    """A baseline as tables and plots name it: seasonal naive with its season."""
    return f"seasonal naive ({season})" if name == "seasonal naive" else name


PREDICT_CHUNK_WINDOWS = 65_536  # windows gathered at once by predict_split


def predict_split(model, windows: Windows, split: str) -> np.ndarray:
    """Raw forecasts of a keras-seq model for `split`, shaped like `windows.targets(split)`."""
    if windows.normalized:
        raise ValueError("predict_split needs raw windows: make_windows(..., normalize=False).")
    if split == "train" and windows.shuffled:
        raise ValueError("the train split is shuffled, so its predictions would not line up with its targets.")
    starts = windows.starts(split)
    if not len(starts):
        raise ValueError(f"the {split} split has no windows.")
    # numpy batches on every backend (no TensorFlow on jax and torch), gathered a chunk at a time: a chunk is a
    # whole number of batches, so only the split's last batch has a shape of its own
    chunk = windows.batch_size * max(1, PREDICT_CHUNK_WINDOWS // windows.batch_size)
    parts = [model.predict(windows.gather(starts[i : i + chunk])[0], batch_size=windows.batch_size, verbose=0)
             for i in range(0, len(starts), chunk)]
    predictions = np.concatenate([np.asarray(p, dtype="float64") for p in parts])
    shape = windows.target_positions(split).shape
    return predictions.reshape(shape if predictions.size == np.prod(shape) else (*shape, -1))


def evaluate_forecast(model, windows: Windows, split: str = "test", name: str = "model",
                      season: int | None = None, mc_samples: int = 0) -> tuple[Report, np.ndarray, np.ndarray | None]:
    """`evaluate_model`, and a quantile model's quantiles `(n, horizon, levels)` (None for a point model).

    A quantile model's report scores its median as the point forecast and
    its quantiles against the random-walk interval (`Report.intervals`).
    With `mc_samples`, a point model with dropout is a quantile model: the
    quantiles of that many forecasts with dropout on (`keras_seq.evaluation.mc_dropout`).
    """
    from keras_seq.evaluation.intervals import score_quantiles
    from keras_seq.evaluation.mc_dropout import MC_LEVELS, check_mc, mc_quantiles
    from keras_seq.models.heads import output_levels

    if mc_samples:
        check_mc(mc_samples, model)
        forecast, levels = mc_quantiles(model, windows.model_inputs(split), mc_samples), MC_LEVELS
    else:
        forecast, levels = predict_split(model, windows, split), output_levels(model)
    if forecast.ndim < 3 or not levels:
        return score_forecast(windows, split, forecast, name, season), forecast, None
    points = forecast[..., levels.index(0.5)]
    report = score_forecast(windows, split, points, name, season)
    report.intervals = score_quantiles(windows, split, forecast, levels)
    return report, points, forecast


def evaluate_model(model, windows: Windows, split: str = "test", name: str = "model",
                   season: int | None = None) -> tuple[Report, np.ndarray]:
    """Metrics of `model` and of the baselines on one split, in the target's units.

    Args:
        model: keras.Model. A keras-seq model (raw values in and out).
        windows: Windows. Raw windows: `make_windows(...)`.
        split: str. `"train"`, `"validation"` or `"test"`. Defaults to
            `"test"`.
        name: str. The model's name in the report. Defaults to `"model"`.
        season: int or None. The seasonal naive baseline's period and
            MASE's. Defaults to `None`: inferred from the dates
            (`infer_season`).

    Returns:
        `(report, predictions)`, the predictions (a quantile model's
        median) shaped like `windows.targets(split)`.
    """
    report, predictions, _ = evaluate_forecast(model, windows, split, name, season)
    return report, predictions


def _week_if_better(windows: Windows, season: int, note: str, trained: bool) -> tuple[int, str]:
    """Intraday data has a day and a week of steps: the week where its seasonal naive fits the training split clearly
    better (an in-sample MAE 10% lower: a daily pattern repeats weekly too), where the training split holds two
    weeks."""
    week = 7 * season
    lo, hi = windows.series_splits[0]["train"]
    if not (trained and note.startswith("intraday") and season > 1 and hi - lo > 2 * week):
        return season, note
    day_mae, week_mae = naive_scale(windows, season), naive_scale(windows, week)
    chosen, words = (week, "a week") if week_mae < 0.9 * day_mae else (season, "a day")
    return chosen, (f"{note.split(':')[0]}: {words} of {chosen}, the better of a day ({season}) and a week ({week}) "
                    f"on the training split (in-sample seasonal naive MAE {figure(day_mae)} and {figure(week_mae)}); "
                    "give `season` to choose")


def score_forecast(windows: Windows, split: str, predictions: np.ndarray, name: str = "model",
                   season: int | None = None) -> Report:
    """The `Report` of raw `predictions` (shaped like `windows.targets(split)`) against the actual values."""
    # Data without training rows (a run evaluated on other dates): the season and MASE's scale come from the data
    # itself, and there is no training mean.
    trained = any(hi > lo for lo, hi in (rows["train"] for rows in windows.series_splits))
    if season is None:
        season, season_note = infer_season(windows.dates[slice(*windows.split_rows["train"])] if trained else windows.dates)
        season, season_note = _week_if_better(windows, season, season_note, trained)
    else:
        season_note = "given"
    actual = windows.targets(split)
    scale = naive_scale(windows, season, whole=not trained)
    model_metrics = forecast_metrics(actual, predictions, scale)
    forecasts = baseline_forecasts(last_observed_targets(windows), split, season, whole=not trained)
    if not trained:
        del forecasts["train mean"]
    baselines = {who: forecast_metrics(actual, forecast, scale) for who, forecast in forecasts.items()}
    best = min(baselines, key=lambda who: baselines[who]["mae"])
    positions = windows.target_positions(split)
    horizon = positions.shape[1] if windows.target_kind == "next" else 1
    per_step = {}
    if horizon > 1:
        per_step = {name: np.nanmean(np.abs(predictions - actual), axis=0).tolist(),
                    "persistence": np.nanmean(np.abs(forecasts["persistence"] - actual), axis=0).tolist()}
    per_series = (per_series_metrics(windows, split, predictions, forecasts, season, not trained)
                  if len(windows.series_ids) > 1 else {})
    dates = windows.dates[positions.ravel()]  # of a panel: the earliest and latest date of any series
    return Report(
        name=name, split=split, windows=int(len(positions)),
        first_date=label_of(dates.min()), last_date=label_of(dates.max()),
        model=model_metrics, persistence=baselines["persistence"],
        skill=skill(model_metrics["mae"], baselines["persistence"]["mae"]),
        baselines=baselines, best_baseline=best, skill_vs_best=skill(model_metrics["mae"], baselines[best]["mae"]),
        season=int(season), season_note=season_note, target=windows.scaling.target_name, horizon=int(horizon),
        per_step=per_step, mase_scale="training split" if trained else "evaluated data (it has no training rows)",
        per_series=per_series, panel=_panel(windows, per_series), owa=owa(model_metrics, baselines["naive2"]),
        missing=missing_counts(windows),
    )


def last_observed_targets(windows: Windows) -> Windows:
    """`windows` whose target values are each series' last observed value where one is missing (`missing` mask;
    before a series' first observed value, that one): what the baselines forecast from. `windows` itself where
    nothing is missing."""
    values = windows.target_values
    if not np.isnan(values).any():
        return windows
    filled = np.array(values, dtype="float64")
    for first, rows in zip(windows.first_rows, windows.series_splits):
        part = pd.Series(filled[first : rows["test"][1]])
        filled[first : rows["test"][1]] = part.ffill().bfill().to_numpy()
    return dataclasses.replace(windows, target_values=filled)


def missing_counts(windows: Windows) -> dict:
    """Each series' missing target values over its rows (only those that miss any), by name."""
    values = windows.target_values
    if not np.isnan(values).any():
        return {}
    counts = {str(name): int(np.isnan(values[rows["train"][0] : rows["test"][1]]).sum())
              for name, rows in zip(windows.series_ids, windows.series_splits)}
    return {name: count for name, count in counts.items() if count}


def losing_note(report: Report, model=None, supervision: str = "last", distance: float | None = None,
                window: int | None = None) -> str:
    """One line for a model that loses to its best baseline: the likely reason and what to try ("" otherwise).

    `model` is the run's `ModelSpec` and `window` its window (what was
    already tried is not suggested again); `distance` is how far the
    evaluated values lie from the training split's, in training standard
    deviations (`scaling_distance`).
    """
    if report.skill_vs_best is None or not report.skill_vs_best < 0:
        return ""
    head = f"{report.name} loses to {report.best_baseline} here (skill {report.skill_vs_best:+.3f})"
    scaler, transform = (model.scaler, model.transform) if model is not None else (None, None)
    if scaler is not None and get_scaler(scaler).fixed_on_training and distance is not None and distance > 3:
        return (f"{head}: its z-scores were fixed on the training split and these values lie {distance:.1f} training "
                "standard deviations from it; refit with `scaler` window, which scales every window by its own "
                "statistics.")
    if report.best_baseline == "seasonal naive" and (window is None or window < 2 * report.season):
        why = (f"the season of {report.season} steps carries most of the signal; give the model a `window` of two "
               f"seasons or more ({2 * report.season}), or check `season`")
    elif report.best_baseline == "seasonal naive":  # a longer window is no measured cure: say what is known only
        why = (f"the season of {report.season} steps carries most of the signal, and the window of {window} already "
               f"holds {window // report.season} of them; check `season`")
    elif report.best_baseline == "train mean":
        why = "the series keeps returning to one level; try `scaler` zscore --no-residual, which can learn that level"
    else:
        arch = get_arch(model.arch) if model is not None else None
        reads_ahead = arch is not None and not arch.causal  # `supervision` every is refused there
        fixed = arch is not None and bool(arch.scaler or arch.finish)  # esrnn: its own scaler, a level forecast
        tries = [option for option, used in (("`scaler` window", scaler == "window" or fixed),
                                             ("`supervision` every", supervision == "every" or reads_ahead or fixed),
                                             ("`transform` logdiff", transform == "logdiff" or fixed)) if not used]
        why = ("close to a random walk, tomorrow = today (or its drift) is hard to beat, and a small loss to it is "
               "expected; try " + ", ".join(tries + ["more `epochs` with `patience`"]))
    return f"{head}: {why}."


def scaling_distance(values, scaling) -> float:
    """How far `values` of the target lie from the training split's: the median |z-score| of the training statistics."""
    values = np.asarray(values, dtype="float64")
    return float(np.median(np.abs(values - scaling.target_mean)) / scaling.target_std) if len(values) else 0.0
