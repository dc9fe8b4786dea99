"""`--missing mask`: a series with gaps trains, scores and forecasts; the model reads the last observed value and
an observed flag in place of a missing one, in Keras and in every exported artifact; refused by default."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

TINY = ["--window", "8", "--units", "4", "--layers", "1", "--epochs", "2", "-q"]


def _gappy_csv(path, rows: int = 320, every: int = 10, seed: int = 3):
    """A random walk with one value in `every` missing (NaN), none in its first and last window."""
    rng = np.random.default_rng(seed)
    values = 100 + np.cumsum(rng.normal(0, 1, rows))
    gaps = rng.choice(np.arange(10, rows - 10), size=rows // every, replace=False)
    values[gaps] = np.nan
    dates = pd.bdate_range("2020-01-01", periods=rows)
    pd.DataFrame({"Date": dates.strftime("%Y-%m-%d"), "value": values}).to_csv(path, index=False)
    return path, int(np.isnan(values).sum())


def test_a_missing_value_is_refused_by_default_naming_its_series_its_date_and_the_option(run_cli, tmp_path):
    rows = [f"2021-01-{day:02d},{name},{'' if (name, day) == ('south', 6) else 10 + day}"
            for name in ("north", "south") for day in range(1, 29)]
    path = tmp_path / "panel.csv"
    path.write_text("date,region,value\n" + "\n".join(rows) + "\n", encoding="utf-8")
    code, out, err = run_cli("fit", "--data", path, "--series-column", "region", "--target", "value", *TINY,
                             "--out", tmp_path / "runs")
    assert code == 1 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "(series south) has 1 missing values (first: 2021-01-06). Use --missing mask to train through them" in err
    assert not (tmp_path / "runs").exists()
    code, out, err = run_cli("fit", "--data", path, "--target", "value", "--missing", "mask", "--fill", "ffill")
    assert code == 1 and "--fill ffill fills missing values and --missing mask trains through them: give one" in err


def test_a_series_with_a_tenth_missing_trains_scores_forecasts_and_exports_with_nan_parity(run_cli, tmp_path):
    import onnxruntime
    import tensorflow as tf

    from keras_seq.models.builders import load_model

    path, gaps = _gappy_csv(tmp_path / "gappy.csv")
    code, out, err = run_cli("fit", "--data", path, "--target", "value", "--missing", "mask", *TINY,
                             "--out", tmp_path / "runs")
    assert code == 0, err
    (run,) = (tmp_path / "runs").iterdir()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["missing"] == {"value": gaps} and f"missing target values, left out of every figure above: " \
                                                      f"value {gaps}" in out
    assert all(np.isfinite(metrics[who]["mae"]) for who in ("model", "persistence"))
    assert all(np.isfinite(figures["mae"]) for figures in metrics["baselines"].values())
    history = pd.read_csv(run / "history.csv")
    assert np.isfinite(history[["loss", "val_loss"]].to_numpy()).all()

    code, out, err = run_cli("export", run, "--format", "onnx,savedmodel")
    assert code == 0, err
    model = load_model(run / "model.keras")
    window = np.linspace(95, 105, 8, dtype="float32").reshape(1, 8, 1).repeat(3, axis=0)
    window[0, 3, 0] = window[1, 7, 0] = np.nan  # a gap inside, and the last value missing
    window[2, :5, 0] = np.nan  # a missing start
    expected = np.asarray(model.predict(window, verbose=0))
    assert np.isfinite(expected).all()
    session = onnxruntime.InferenceSession(str(run / "export" / "model.onnx"))
    np.testing.assert_allclose(session.run(None, {session.get_inputs()[0].name: window})[0], expected,
                               rtol=1e-5, atol=1e-4)
    saved = tf.saved_model.load(str(run / "export" / "savedmodel" / "lstm" / "1"))
    served = saved.signatures["serving_default"](tf.constant(window))
    np.testing.assert_allclose(next(iter(served.values())).numpy(), expected, rtol=1e-5, atol=1e-4)

    frame = pd.read_csv(path)
    gap = int(np.flatnonzero(frame["value"].isna().to_numpy())[-1])
    code, out, err = run_cli("predict", run / "export" / "model.onnx", "--end", frame["Date"][gap + 2])
    assert code == 0, err  # its last window holds a missing value
    assert np.isfinite(float(out.splitlines()[-1].split()[-1]))
    frame.loc[len(frame) - 8 :, "value"] = np.nan
    frame.to_csv(tmp_path / "gone.csv", index=False)
    code, out, err = run_cli("predict", run, "--data", tmp_path / "gone.csv")
    assert code == 1 and "holds no observed value (its last 8 rows are all missing)" in err


@pytest.fixture(scope="module")
def masked_model():
    """A masked model of two input columns (the default window scaler), untrained."""
    from keras_seq.data.windows import WindowSpec
    from keras_seq.models.builders import build_forecaster
    from keras_seq.models.spec import ModelSpec

    return build_forecaster(ModelSpec(arch="gru", units=4, layers=1), WindowSpec(window=8), 2, masked=True)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_the_model_reads_the_last_observed_value_and_no_number_under_a_missing_one(masked_model, data):
    from keras_seq.models.scalers import MASKED_SPREAD_FLOOR

    masked = masked_model
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    level = data.draw(st.sampled_from([0.0, 50.0]))
    window = (level + np.cumsum(rng.normal(0, 1, (4, 8, 2)), axis=1)).astype("float32")
    gaps = rng.random((4, 8, 2)) < data.draw(st.floats(0.05, 0.6))
    gaps[:, 0, :] = False  # each column observed at its first step: every gap has a value before it
    holed = np.where(gaps, np.nan, window).astype("float32")
    other = np.where(gaps, rng.normal(0, 1e6, window.shape), window).astype("float32")  # other numbers under it
    forecast = np.asarray(masked.predict(holed, verbose=0))
    assert np.isfinite(forecast).all()
    np.testing.assert_array_equal(forecast, np.asarray(masked.predict(np.where(gaps, np.nan, other).astype("float32"),
                                                                      verbose=0)))
    # what the network reads: the forward-filled window scaled by its own statistics (a masked window's spread at
    # least MASKED_SPREAD_FLOOR of its level), and an observed flag
    filled = pd.DataFrame(holed.reshape(-1, 2)).groupby(np.repeat(np.arange(4), 8)).ffill().to_numpy()
    filled = filled.reshape(4, 8, 2).astype("float64")
    mean = filled.mean(axis=1, keepdims=True)
    spread = (np.sqrt(((filled - mean) ** 2).mean(axis=1, keepdims=True)) + 1e-3 * np.abs(filled).mean(axis=1, keepdims=True)
              + 1e-6)
    expected = (filled - mean) / np.maximum(spread, MASKED_SPREAD_FLOOR * np.abs(mean))
    reads = np.asarray(masked.get_layer("prepare")(holed)[0])
    np.testing.assert_allclose(reads[..., :2], expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(reads[..., 2:], (~gaps).astype("float32"))


def test_a_window_whose_target_is_missing_weighs_nothing_in_the_loss():
    from keras_seq.training.loop import weighted

    inputs = np.zeros((3, 4, 1), "float32")
    targets = np.array([[1.0, 2.0], [np.nan, 3.0], [4.0, 5.0]], "float32")
    _, finite, weights = weighted((inputs, targets))
    assert weights.tolist() == [1.0, 0.0, 1.0] and np.isfinite(finite).all() and finite[1, 0] > 0
    np.testing.assert_array_equal(finite[[0, 2]], targets[[0, 2]])
