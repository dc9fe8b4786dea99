"""keras_seq/evaluation/report.py: metrics, the persistence baseline and plots."""

from __future__ import annotations

import dataclasses
import math

import keras
import numpy as np
import pandas as pd
import pytest

from keras_seq.data.windows import make_windows
from keras_seq.evaluation.report import (
    Report,
    evaluate_model,
    forecast_metrics,
    mae,
    baseline_forecasts,
    infer_season,
    mape,
    naive_scale,
    owa,
    persistence_forecast,
    score_forecast,
    seasonal_indices,
    smape,
    rmse,
    skill,
)
from keras_seq.present.plots import plot_forecast, plot_loss


def test_metrics_against_hand_computed_values():
    actual = [100.0, 200.0, 400.0]
    forecast = [110.0, 180.0, 400.0]
    # errors +10, -20, 0
    assert mae(actual, forecast) == pytest.approx(10.0)
    assert rmse(actual, forecast) == pytest.approx(math.sqrt((100 + 400 + 0) / 3))
    assert mape(actual, forecast) == pytest.approx((10 / 100 + 20 / 200 + 0) / 3 * 100)
    assert skill(10.0, 40.0) == pytest.approx(0.75)
    assert skill(60.0, 40.0) == pytest.approx(-0.5)
    assert math.isnan(skill(1.0, 0.0))
    # sMAPE: 200 * mean(|e| / (|y| + |f|)) = 200/3 * (10/210 + 20/380 + 0)
    assert smape(actual, forecast) == pytest.approx(200 / 3 * (10 / 210 + 20 / 380))
    assert smape([0.0], [0.0]) == 0.0
    assert forecast_metrics(actual, forecast, mase_scale=20.0) == {
        "mae": mae(actual, forecast), "rmse": rmse(actual, forecast), "mape": mape(actual, forecast),
        "smape": smape(actual, forecast), "mase": 0.5}
    assert math.isnan(forecast_metrics(actual, forecast, mase_scale=0.0)["mase"])


def frame_of(values):
    return pd.DataFrame({"Close": np.asarray(values, dtype="float64")},
                        index=pd.date_range("2021-01-01", periods=len(values), name="Date"))


def test_persistence_is_the_last_known_value():
    values = (np.arange(60) ** 1.5) + 100
    windows = make_windows(frame_of(values), target="Close", window=4, horizon=2, normalize=False)
    baseline = persistence_forecast(windows, "test")
    starts = windows.starts("test")
    np.testing.assert_array_equal(baseline, np.stack([values[starts + 3]] * 2, axis=1))


def last_value_model(window: int, horizon: int = 1) -> keras.Model:
    """A model that forecasts the last input value for every step: persistence as a Keras model."""
    inputs = keras.Input((window, 1))
    last = keras.layers.Flatten()(keras.layers.Cropping1D((window - 1, 0))(inputs))  # (batch, 1)
    return keras.Model(inputs, keras.layers.Concatenate()([last] * horizon) if horizon > 1 else last)


@pytest.mark.backend
def test_a_model_that_repeats_the_last_value_scores_exactly_persistence():
    rng = np.random.default_rng(3)
    frame = frame_of(30000 + np.cumsum(rng.normal(0, 100, 200)))
    windows = make_windows(frame, target="Close", window=8, normalize=False, batch_size=32)
    report, predictions = evaluate_model(last_value_model(8), windows, "test", name="last")
    assert report.model == pytest.approx(report.persistence, rel=1e-5)  # float32 inputs
    assert report.skill == pytest.approx(0.0, abs=1e-5)
    assert report.windows == len(windows.starts("test")) == predictions.shape[0]
    assert report.first_date == str(frame.index[windows.split_rows["test"][0]].date())
    assert report.last_date == str(frame.index[-1].date())
    actual = windows.targets("test")
    assert report.persistence["mae"] == pytest.approx(np.mean(np.abs(np.diff(frame["Close"].to_numpy())[-len(actual):])))


def test_the_baselines_against_hand_computed_values():
    """Weekly dates (season 52 would need years): a given season of 4 on 60 rows split 60/20/20."""
    values = 100 + np.arange(60.0) ** 1.2 + 5 * np.sin(np.arange(60) * np.pi / 2)
    frame = pd.DataFrame({"y": values}, index=pd.date_range("2020-01-05", periods=60, freq="W", name="Date"))
    windows = make_windows(frame, target="y", window=6, horizon=3, splits=(0.6, 0.2, 0.2), shuffle=False)
    forecasts = baseline_forecasts(windows, "test", season=4)
    start = windows.starts("test")[0]
    observed = start + 5  # the window's last row; targets are rows +1, +2, +3
    np.testing.assert_allclose(forecasts["persistence"][0], [values[observed]] * 3)
    np.testing.assert_allclose(forecasts["seasonal naive"][0], values[[observed + 1 - 4, observed + 2 - 4, observed + 3 - 4]])
    slope = (values[observed] - values[0]) / observed
    np.testing.assert_allclose(forecasts["drift"][0], values[observed] + slope * np.arange(1, 4))
    np.testing.assert_allclose(forecasts["train mean"][0], [values[:36].mean()] * 3)
    assert naive_scale(windows, 4) == pytest.approx(np.mean(np.abs(values[4:36] - values[:32])))


def test_naive2s_seasonality_test_and_indices_against_hand_computed_values():
    # 2, 1, 2, 1, ...: deviations +-0.5, so r_1 = -(n - 1) / n and r_2 = (n - 2) / n. With 24 values r_2 = 0.917
    # exceeds 1.645 sqrt((1 + 2 r_1^2) / 24) = 0.565; the 2 x 2 moving average is 1.5 everywhere, so the ratios
    # are 2 / 1.5 and 1 / 1.5. With 6 values r_2 = 0.667 stays below 1.645 sqrt((1 + 2 (5/6)^2) / 6) = 1.038.
    np.testing.assert_allclose(seasonal_indices(np.tile([2.0, 1.0], 12), 2), [4 / 3, 2 / 3])
    assert seasonal_indices(np.tile([2.0, 1.0], 3), 2) is None
    assert seasonal_indices(np.tile([2.0, 1.0], 2), 2) is None  # fewer than three seasons
    assert seasonal_indices(np.tile([2.0, -1.0], 12), 2) is None  # multiplicative: values above 0 only
    # a level of 10 (or 1) times a pattern: every moving average is the level, so the indices are the pattern
    np.testing.assert_allclose(seasonal_indices(np.tile([0.9, 1.2, 0.9], 6), 3), [0.9, 1.2, 0.9])  # odd: order 3
    np.testing.assert_allclose(seasonal_indices(10 * np.tile([0.8, 1.2, 0.9, 1.1], 6), 4), [0.8, 1.2, 0.9, 1.1])


def test_naive2_adjusts_the_last_value_by_its_season_and_the_report_scores_owa_against_it():
    pattern = np.array([0.8, 1.2, 0.9, 1.1])
    values = 50 * np.tile(pattern, 15) * (1 + 0.01 * np.arange(60))  # seasonal, and trending
    frame = pd.DataFrame({"y": values}, index=pd.date_range("2010-01-01", periods=60, freq="QS", name="Date"))
    windows = make_windows(frame, target="y", window=6, horizon=3, splits=(0.6, 0.2, 0.2), shuffle=False)
    forecasts = baseline_forecasts(windows, "test", season=4)
    indices, observed = seasonal_indices(values[:36], 4), windows.starts("test")[0] + 5  # the training rows' season
    expected = values[observed] / indices[observed % 4] * indices[(observed + np.arange(1, 4)) % 4]
    np.testing.assert_allclose(forecasts["naive2"][0], expected)
    report = score_forecast(windows, "test", forecasts["naive2"], "naive2 itself", season=4)
    assert report.owa == pytest.approx(1.0) and "OWA (mean of sMAPE and MASE relative to naive2's" in report.table()
    persistence = score_forecast(windows, "test", forecasts["persistence"], "persistence", season=4)
    assert persistence.owa == pytest.approx(owa(persistence.model, persistence.baselines["naive2"]))
    assert persistence.owa > 1.5  # on a seasonal series persistence is far behind
    assert owa({"smape": 10.0, "mase": 1.0}, {"smape": 20.0, "mase": 4.0}) == 0.375
    assert math.isnan(owa({"smape": 10.0, "mase": 1.0}, {"smape": 0.0, "mase": 4.0}))


def test_the_season_is_inferred_from_the_dates():
    assert infer_season(pd.bdate_range("2020-01-01", periods=50))[0] == 5
    assert infer_season(pd.date_range("2020-01-01", periods=50))[0] == 7
    assert infer_season(pd.date_range("2020-01-05", periods=50, freq="W"))[0] == 52
    assert infer_season(pd.date_range("2000-01-01", periods=50, freq="QS"))[0] == 4
    assert infer_season(pd.date_range("2020-01-01", periods=50, freq="h"))[0] == 24
    assert infer_season(pd.date_range("1700-01-01", periods=50, freq="YS")) == (
        1, "yearly dates: no calendar season (give `season` for a cycle such as 11)")


@pytest.mark.backend
def test_a_report_names_the_target_the_horizon_and_the_best_baseline():
    """The table of a 3-step forecast of a trending series: every baseline, per-step MAE, the best one named."""
    frame = pd.DataFrame({"Temp": 10 + np.arange(120.0)}, index=pd.date_range("2020-01-01", periods=120, name="Date"))
    windows = make_windows(frame, target="Temp", window=4, horizon=3, shuffle=False)
    report, _ = evaluate_model(last_value_model(4, 3), windows, "test", name="last")
    table = report.table()
    assert "forecasts 1..3 steps ahead (each figure the mean over the 3 steps); errors in Temp's units" in table
    assert "price" not in table
    for label in ("persistence", "seasonal naive (7)", "drift", "train mean"):
        assert label in table
    assert report.best_baseline == "drift" and report.baselines["drift"]["mae"] == pytest.approx(0.0, abs=1e-9)
    assert "best baseline: drift; skill vs it: " in table and "Season 7 (daily dates: a week of 7)" in table
    assert report.per_step["last"] == pytest.approx([1.0, 2.0, 3.0])  # persistence's error grows by 1 a step
    assert "MAE by step ahead: last 1.000 2.000 3.000" in table


def test_plots_are_written_as_png(tmp_path):
    plot_loss({"loss": [1.0, 0.5, 0.25], "val_loss": [1.2, 0.8, 0.9]}, tmp_path / "loss.png")
    windows = make_windows(frame_of(np.linspace(1, 2, 80)), target="Close", window=4, normalize=False)
    plot_forecast(windows, "test", windows.targets("test") + 0.01, tmp_path / "forecast.png")
    for name in ("loss.png", "forecast.png"):
        data = (tmp_path / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_mape_is_undefined_when_the_target_has_zeros_and_written_as_null_with_the_reason():
    metrics = forecast_metrics([0.0, 2.0], [1.0, 2.0])
    assert math.isnan(metrics["mape"]) and metrics["mae"] == 0.5
    report = Report("gru", "test", 2, "2020-01-01", "2020-01-02", metrics, forecast_metrics([0.0, 2.0], [0.0, 0.0]), 0.5)
    written = report.to_dict()
    assert written["model"]["mape"] is None and written["persistence"]["mape"] is None
    assert written["null_reasons"]["model.mape"].startswith("undefined: the actual values include 0")
    assert "undefined" in report.table().splitlines()[2]
    assert "price" not in report.table()



def test_a_losing_model_is_told_only_what_it_can_try():
    """brnn reads later steps: training it from every step is refused, so the note does not suggest it."""
    from keras_seq.evaluation.report import Report, losing_note
    from keras_seq.models.spec import ModelSpec

    report = Report("m", "test", 10, "2020-01-01", "2020-01-10", {"mae": 2.0}, {"mae": 1.0}, -1.0,
                    skill_vs_best=-1.0)
    assert "`supervision` every" in losing_note(report, ModelSpec(arch="gru"))
    note = losing_note(report, ModelSpec(arch="brnn"))
    assert note.startswith("m loses to persistence") and "supervision" not in note and "`transform` logdiff" in note
    # a window of two seasons is advised only to a run whose window is shorter (issue 35: advice from what it did)
    report = dataclasses.replace(report, best_baseline="seasonal naive", season=12)
    assert "a `window` of two seasons or more (24)" in losing_note(report, ModelSpec(arch="gru"), window=16)
    note = losing_note(report, ModelSpec(arch="gru"), window=24)
    assert "`window` of two seasons" not in note and "the window of 24 already holds 2 of them" in note
