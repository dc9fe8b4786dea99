"""Ensembles in one model (issue 34): `ensemble` members trained side by side, their median or mean inside the
Keras model, which evaluates, calibrates, saves and exports as one (export parity: test_export.py's gru case)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from keras_seq.data.windows import make_windows
from keras_seq.models.builders import build_model, ensemble_members, load_model, member_forecasts
from keras_seq.models.layers import CombineMembers
from keras_seq.training.loop import TrainSpec, train_model


def test_members_combine_by_their_median_or_mean_value_by_value():
    import keras

    members = [np.array([[1.0, 9.0]]), np.array([[5.0, 2.0]]), np.array([[3.0, 4.0]]), np.array([[4.0, 0.0]])]
    combined = {(how, n): keras.ops.convert_to_numpy(CombineMembers(how)(members[:n]))
                for how in ("median", "mean") for n in (3, 4)}
    np.testing.assert_allclose(combined["median", 3], [[3.0, 4.0]])  # the middle of (1, 3, 5) and of (2, 4, 9)
    np.testing.assert_allclose(combined["median", 4], [[3.5, 3.0]])  # an even count: the mean of the middle two
    np.testing.assert_allclose(combined["mean", 3], [[3.0, 5.0]])
    np.testing.assert_allclose(combined["mean", 4], [[3.25, 3.75]])
    assert keras.ops.convert_to_numpy(CombineMembers("stack")(members[:2])).shape == (1, 2, 2)


def test_an_ensemble_forecasts_the_median_of_its_separately_weighted_members(tmp_path):
    rng = np.random.default_rng(3)
    values = 50 + np.cumsum(rng.normal(size=260)) + 5 * np.sin(np.arange(260) / 4)
    frame = pd.DataFrame({"y": values}, index=pd.date_range("2020-01-01", periods=260, name="Date"))
    windows = make_windows(frame, target="y", window=8, horizon=2, batch_size=32, seed=0)
    model = build_model("gru", window=8, horizon=2, units=4, layers=1, ensemble=3, scaling=windows.scaling)
    members = ensemble_members(model)
    assert [m.name for m in members] == ["member_1", "member_2", "member_3"]
    assert model.count_params() == 3 * build_model("gru", window=8, horizon=2, units=4, layers=1).count_params()
    before = [m.get_weights() for m in members]
    history = train_model(model, windows, TrainSpec(epochs=1, batch_size=32), verbose=0)
    assert len(history["loss"]) == 1 and np.isfinite(history["val_loss"]).all()
    # every member learned (its weights moved), and from its own start: no two members share weights
    for member, start in zip(members, before):
        assert any(not np.allclose(w, w0) for w, w0 in zip(member.get_weights(), start))
    assert not np.allclose(members[0].get_weights()[0], members[1].get_weights()[0])

    inputs = windows.model_inputs("test")
    parts = np.stack(member_forecasts(model, inputs))
    assert parts.shape == (3, len(inputs), 2) and np.ptp(parts, axis=0).max() > 0  # the members disagree
    forecast = model.predict(inputs, verbose=0)
    np.testing.assert_allclose(forecast, np.median(parts, axis=0), rtol=1e-6, atol=1e-5)
    # the mean instead: the same members, combined the other way
    mean_model = build_model("gru", window=8, horizon=2, units=4, layers=1, ensemble=3, combine="mean")
    mean_model.set_weights(model.get_weights())
    np.testing.assert_allclose(mean_model.predict(inputs, verbose=0), parts.mean(axis=0), rtol=1e-6, atol=1e-5)
    # saved and loaded, it is the same one model
    model.save(tmp_path / "ensemble.keras")
    np.testing.assert_allclose(load_model(tmp_path / "ensemble.keras").predict(inputs, verbose=0), forecast, rtol=1e-6)


def test_an_ensemble_is_calibrated_evaluated_and_forecast_as_one_model(fit_tiny, run_cli, tmp_path):
    run = fit_tiny("--ensemble", "2", "--ensemble-archs", "gru,drnn", "--ensemble-windows", "8,5", "--combine",
                   "mean", "--conformal", "0.8")
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["ensemble"] == 2 and config["model"]["combine"] == "mean"
    assert config["model"]["ensemble_archs"] == ["gru", "drnn"] and config["model"]["ensemble_windows"] == [8, 5]
    assert config["conformal"]["coverages"] == [0.8]  # calibrated on the combined forecast
    model = load_model(run / "model.keras")
    # each member its own arch; the second reads the window's last 5 steps
    assert [[layer.name for layer in m.layers[1:3]] for m in ensemble_members(model)] == [
        ["gru_1", "head"], ["last_steps", "drnn_1"]]
    assert "combine" in [layer.name for layer in model.layers]
    metrics = json.loads((run / "metrics.json").read_text())
    code, out, err = run_cli("evaluate", run)
    assert code == 0, err
    evaluation = json.loads(next((run / "evaluations").glob("*/metrics.json")).read_text())
    assert evaluation["model"]["mae"] == pytest.approx(metrics["model"]["mae"], rel=1e-5)
    code, out, err = run_cli("predict", run, "--steps", "1", "--csv", tmp_path / "forecast.csv")
    assert code == 0, err
    table = pd.read_csv(tmp_path / "forecast.csv")  # the 80% interval's bounds around the ensemble's forecast
    assert (table["Close_q0.1"] < table["Close"]).all() and (table["Close"] < table["Close_q0.9"]).all()


def test_a_member_with_a_shorter_window_reads_only_the_last_steps_and_bad_windows_are_refused():
    import keras

    from keras_seq.errors import KerasSeqError
    from keras_seq.models.builders import network_of

    model = build_model("gru", window=8, units=4, layers=1, ensemble=3, ensemble_windows=(8, 3), residual=False)
    network = network_of(model)  # members read windows 8, 3, 8 of the normalized window
    x = np.random.default_rng(0).normal(size=(2, 8, 1)).astype("float32")
    changed = x.copy()
    changed[:, :5] += 4.0  # every step before the last 3
    before, after = ([keras.ops.convert_to_numpy(o) for o in network(v)] for v in (x, changed))
    assert not np.allclose(before[0], after[0]) and not np.allclose(before[2], after[2])
    np.testing.assert_array_equal(before[1], after[1])
    for options, words in (({"ensemble_windows": (9, 4)}, "each must be at most `window` \\(8\\)"),
                           ({"ensemble_windows": (4,), "ensemble": 1}, "Give `ensemble` 2 or more")):
        with pytest.raises(KerasSeqError, match=words):
            build_model("gru", window=8, **{"ensemble": 2, **options})
