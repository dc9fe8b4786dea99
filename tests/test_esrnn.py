"""ES-RNN (issue 34, item 5): per-series Holt-Winters smoothing learned with a dilated LSTM, arch `esrnn` and its
scaler `es`; the smoothing on hand-computed values, the untrained model's forecast, dilation, a CLI fit and its
exports. Its bad inputs: tests/bad_inputs/cases.toml."""

from __future__ import annotations

import json

import keras
import numpy as np
import pandas as pd
import pytest

from keras_seq.data.windows import WindowSpec
from keras_seq.errors import KerasSeqError
from keras_seq.models.builders import build_forecaster
from keras_seq.models.layers import Dilate, Undilate
from keras_seq.models.scalers import holt_winters
from keras_seq.models.spec import ModelSpec

SERIES = np.array([[2.0, 4.0, 3.0, 6.0, 4.0]], dtype="float32")


def logit(p):
    return float(np.log(p / (1 - p)))


def test_holt_winters_smoothing_matches_values_computed_by_hand():
    level, factors, next_factors = (keras.ops.convert_to_numpy(v) for v in
                                    holt_winters(SERIES, np.array([0.5], "float32"), np.array([0.5], "float32"), 2))
    # season 2: factors start at 2/3 and 4/3 (the first season over its mean 3), the level at 2 / (2/3) = 3;
    # then level[t] = .5 y/s + .5 level, s[t+2] = .5 y/level + .5 s: by hand, step by step
    np.testing.assert_allclose(level[0], [3.0, 3.0, 3.75, 4.125, 4.789773], rtol=1e-5)
    np.testing.assert_allclose(factors[0], [2 / 3, 4 / 3, 2 / 3, 4 / 3, 0.733333], rtol=1e-5)
    np.testing.assert_allclose(next_factors[0], [2 / 3, 4 / 3, 0.733333, 1.393939, 0.784223], rtol=1e-5)
    # no season: exponential smoothing of the level alone, every factor 1
    level, factors, _ = (keras.ops.convert_to_numpy(v) for v in holt_winters(SERIES, np.array([0.25], "float32"),
                                                                            np.array([0.5], "float32"), 1))
    np.testing.assert_allclose(level[0], [2.0, 2.5, 2.625, 3.46875, 3.6015625], rtol=1e-6)
    assert (factors == 1).all()


@pytest.mark.backend
def test_an_untrained_esrnn_forecasts_its_smoothing_with_each_series_own_coefficients():
    spec = ModelSpec(arch="esrnn", seasonality=2, units=4, layers=2)
    assert spec.scaler == "es" and spec.residual  # its own scaler in place of the default; its head starts at 0
    model = build_forecaster(spec, WindowSpec(window=5, horizon=3), 1, series_count=2)
    prepare = model.get_layer("prepare")
    prepare.level_smoothing_weight.assign([9.0, logit(0.5), logit(0.25)])  # row 0 is never read
    prepare.season_smoothing_weight.assign([-9.0, logit(0.5), logit(0.75)])
    window = np.repeat(SERIES[:, :, None], 3, axis=0)
    forecast = keras.ops.convert_to_numpy(model([window, np.array([1, 2, 0], "int32")]))
    # series 1 (alpha = gamma = .5): the last level times the next season's factors, s[5], s[6], s[5] again
    np.testing.assert_allclose(forecast[0], 4.789773 * np.array([1.393939, 0.784223, 1.393939]), rtol=1e-5)
    # series 2 its own coefficients; an unseen series (index 0) the mean of the known series' logits
    typical = [1 / (1 + np.exp(-(logit(a) + logit(b)) / 2)) for a, b in ((0.5, 0.25), (0.5, 0.75))]
    for row, (alpha, gamma) in ((1, (0.25, 0.75)), (2, typical)):
        level, _, after = (keras.ops.convert_to_numpy(v) for v in holt_winters(
            SERIES, np.array([alpha], "float32"), np.array([gamma], "float32"), 2))
        np.testing.assert_allclose(forecast[row], level[0, -1] * after[0, [3, 4, 3]], rtol=1e-5)
    assert not np.allclose(forecast[0], forecast[1])


@pytest.mark.backend
def test_a_dilated_lstm_steps_back_its_dilation():
    x = np.random.default_rng(0).normal(size=(2, 7, 3)).astype("float32")
    dilated = Dilate(3)(x)  # 7 steps padded to 9, three interleaved sequences of 3 per window
    assert tuple(dilated.shape) == (6, 3, 3)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(Undilate(3, 7)(dilated)), x)

    inputs = keras.Input((7, 1))
    lstm = keras.layers.LSTM(4, return_sequences=True)
    model = keras.Model(inputs, Undilate(2, 7)(lstm(Dilate(2)(inputs))))
    x = np.random.default_rng(1).normal(size=(1, 7, 1)).astype("float32")
    base = keras.ops.convert_to_numpy(model(x))[0, 6]
    for step, moves in ((5, False), (4, True), (2, True), (3, False)):  # step 6 reads steps 6, 4, 2, 0 only
        changed = x.copy()
        changed[0, step] += 3.0
        assert (not np.allclose(keras.ops.convert_to_numpy(model(changed))[0, 6], base)) == moves, step


def test_esrnn_refuses_what_it_cannot_do(run_cli, tmp_path):
    for options, words in (({"scaler": "zscore"}, "scales with its own scaler 'es', not 'zscore'"),
                           ({"quantiles": (0.1, 0.9)}, "no `quantiles` or `distribution`"),
                           ({"transform": "diff"}, "takes `transform` none"),
                           ({"ensemble": 2, "ensemble_archs": ("esrnn", "gru")}, "members share one")):
        with pytest.raises(KerasSeqError, match=words):
            ModelSpec(arch="esrnn", **options)
    assert ModelSpec(arch="gru", scaler="es").scaler == "window"  # another arch (compared with esrnn): the default
    with pytest.raises(KerasSeqError, match="needs a window of two seasons or more"):
        build_forecaster(ModelSpec(arch="esrnn", seasonality=4), WindowSpec(window=7), 1, series_count=1)
    with pytest.raises(KerasSeqError, match="needs `target_kind` next and `supervision` last"):
        build_forecaster(ModelSpec(arch="esrnn"), WindowSpec(window=8, supervision="every"), 1, series_count=1)
    # from the command line: one line naming the flags, nothing written (a non-positive target: the corpus)
    for flags, words in ((("--scaler", "zscore"), "arch 'esrnn' scales with its own scaler 'es', not 'zscore': drop "
                                                  "--scaler"),
                         (("--seasonality", "12", "--window", "16"), "needs a window of two seasons or more")):
        code, _, err = run_cli("fit", "--arch", "esrnn", *flags, "--epochs", "1", "--out", tmp_path / "runs")
        assert code == 1 and len(err.strip().splitlines()) == 1 and words in err, err
        assert not (tmp_path / "runs").exists()


def test_esrnn_fits_a_panel_from_the_cli_learns_each_series_smoothing_and_exports_with_parity(tmp_path, run_cli):
    import onnxruntime

    from keras_seq.models.builders import load_model

    rng = np.random.default_rng(0)
    rows = []
    for k in range(4):
        t = np.arange(40 + 4 * k)
        y = (20 + 10 * k) * (1 + 0.3 * np.sin(np.pi * t / 2 + k)) * np.exp(rng.normal(0, 0.05, len(t)))
        rows.append(pd.DataFrame({"series": f"s{k}", "t": t, "value": y}))
    pd.concat(rows).to_csv(tmp_path / "panel.csv", index=False)
    code, out, err = run_cli("fit", "--data", tmp_path / "panel.csv", "--target", "value", "--series-column", "series",
                             "--series", "all", "--arch", "esrnn", "--seasonality", "4", "--window", "8", "--horizon",
                             "3", "--split-steps", "3,3", "--units", "4", "--layers", "2", "--epochs", "3",
                             "--conformal", "0.8", "--season", "4", "--out", tmp_path / "runs", "-q")
    assert code == 0, err
    (run,) = (tmp_path / "runs").iterdir()
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["arch"] == "esrnn" and config["model"]["scaler"] == "es"
    assert config["model"]["seasonality"] == 4 and config["model"]["dilation"] == 2
    model = load_model(run / "model.keras")
    prepare = model.get_layer("prepare")
    for weight, start in ((prepare.level_smoothing_weight, logit(0.5)), (prepare.season_smoothing_weight, logit(0.2))):
        learned = keras.ops.convert_to_numpy(weight)[1:]
        assert np.abs(learned - start).min() > 0 and np.ptp(learned) > 0  # each series' own, and trained

    code, out, err = run_cli("export", run, "--format", "onnx,savedmodel", "--out", tmp_path / "export")
    assert code == 0, err
    assert "savedmodel" in out and out.count("parity: max |diff|") == 2
    windows = np.abs(rng.normal(30, 5, size=(5, 8, 1))).astype("float32")
    series = np.array([1, 2, 3, 4, 0], "int32")
    session = onnxruntime.InferenceSession(str(tmp_path / "export" / "model.onnx"))
    (onnx_forecast,) = session.run(None, {"window": windows, "series": series})
    np.testing.assert_allclose(onnx_forecast, model.predict([windows, series], verbose=0), rtol=1e-4, atol=1e-3)
    assert onnx_forecast.shape == (5, 3, 3)  # each step's lower bound, forecast and upper bound
