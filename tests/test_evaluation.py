"""keras_seq/evaluation.py: metrics, the persistence baseline and plots."""

from __future__ import annotations

import math

import keras
import numpy as np
import pandas as pd
import pytest

from keras_seq.data.windows import make_windows
from keras_seq.evaluation import (
    Report,
    evaluate_model,
    forecast_metrics,
    mae,
    mape,
    persistence_forecast,
    plot_forecast,
    plot_loss,
    rmse,
    skill,
)


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
    assert forecast_metrics(actual, forecast) == {"mae": mae(actual, forecast), "rmse": rmse(actual, forecast), "mape": mape(actual, forecast)}


def frame_of(values):
    return pd.DataFrame({"Close": np.asarray(values, dtype="float64")},
                        index=pd.date_range("2021-01-01", periods=len(values), name="Date"))


def test_persistence_is_the_last_known_value():
    values = (np.arange(60) ** 1.5) + 100
    windows = make_windows(frame_of(values), target="Close", window=4, horizon=2, normalize=False)
    baseline = persistence_forecast(windows, "test")
    starts = windows.starts("test")
    np.testing.assert_array_equal(baseline, np.stack([values[starts + 3]] * 2, axis=1))


def last_value_model(window: int) -> keras.Model:
    """A model that forecasts the last input value: persistence as a Keras model."""
    inputs = keras.Input((window, 1))
    last = keras.layers.Cropping1D((window - 1, 0))(inputs)  # (batch, 1, 1)
    return keras.Model(inputs, keras.layers.Flatten()(last))


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


def test_report_table_is_in_price_units():
    report = Report("lstm", "test", 188, "2022-05-13", "2023-02-10",
                    {"mae": 332.37, "rmse": 431.89, "mape": 1.039}, {"mae": 296.5, "rmse": 389.9, "mape": 0.926}, -0.121)
    table = report.table()
    assert "test split 2022-05-13..2023-02-10, 188 windows, price units" in table
    assert "lstm" in table and "332.37" in table and "296.50" in table and "-0.121" in table


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

