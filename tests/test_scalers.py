"""keras_seq/models/scalers.py and transforms.py: a scaler is a plug-in that owns its statistics and how a window is
normalized; a transform owns the map from levels to what the network forecasts, and back."""

from __future__ import annotations

import json

import numpy as np
import pytest

from keras_seq.errors import KerasSeqError
from keras_seq.models import ModelSpec, scalers, transforms


class MaxAbs(scalers.WindowScaler):
    """A scaler written outside keras-seq: each window's columns divided by their largest absolute value."""

    name = "maxabs"

    def normalization(self, layer, x, column, series):
        import keras

        spread = keras.ops.max(keras.ops.abs(x), axis=1, keepdims=True) + 1e-6
        return 0 * spread, spread, 0 * column, spread[..., layer.target_index] + 0 * column


def test_a_new_scaler_trains_is_saved_by_name_evaluates_and_exports_to_onnx_with_parity(run_cli, fit_tiny, monkeypatch):
    monkeypatch.setitem(scalers._SCALERS, "maxabs", MaxAbs())
    run = fit_tiny("--scaler", "maxabs")
    assert json.loads((run / "config.json").read_text())["model"]["scaler"] == "maxabs"
    from keras_seq.models.builders import load_model

    prepare = load_model(run / "model.keras").get_layer("prepare")  # the saved layer names its scaler
    window = np.random.default_rng(0).uniform(1, 100, size=(2, 8, 1)).astype("float32")
    normalized, stats = (np.asarray(v) for v in prepare(window))
    np.testing.assert_allclose(normalized, window / window.max(axis=1, keepdims=True), rtol=1e-5)
    np.testing.assert_allclose(stats[:, 2], window.max(axis=1)[:, 0], rtol=1e-5)  # the target's scale
    code, out, err = run_cli("evaluate", run)
    assert code == 0 and "MAE" in out, err
    code, out, err = run_cli("export", run, "--format", "onnx")  # export fails unless ONNX matches Keras
    assert code == 0 and "parity" in out, err


def test_an_unregistered_scaler_is_refused():
    with pytest.raises(KerasSeqError, match="unknown scaler 'maxabs2'. Expected one of: window, zscore, series"):
        ModelSpec(scaler="maxabs2")


class Percent(transforms.Transform):
    """A transform written outside keras-seq: each step's change in percent of the step before."""

    name = "percent"
    of_levels = False

    def forward(self, values, previous):
        import keras

        before = keras.ops.concatenate([previous, values[..., :-1]], axis=-1)
        return 100 * (values - before) / before

    def inverse(self, steps, last):
        import keras

        return last * keras.ops.exp(keras.ops.cumsum(keras.ops.log(1 + steps / 100), axis=-1))


def test_a_new_transform_trains_is_saved_by_name_and_exports_to_onnx_with_parity(run_cli, fit_tiny, monkeypatch):
    monkeypatch.setitem(transforms._TRANSFORMS, "percent", Percent())
    run = fit_tiny("--transform", "percent")
    assert json.loads((run / "config.json").read_text())["model"]["transform"] == "percent"
    from keras_seq.models.builders import load_model

    model = load_model(run / "model.keras")  # its layers name their transform: the registered one is found
    assert isinstance(model.get_layer("prepare").moved_by, Percent)
    window = np.random.default_rng(0).uniform(50, 100, size=(2, 8, 1)).astype("float32")
    moved = np.asarray(Percent().window(window[..., 0]))
    np.testing.assert_allclose(moved[:, 1:], 100 * np.diff(window[..., 0], axis=1) / window[:, :-1, 0], rtol=1e-4)
    code, out, err = run_cli("export", run, "--format", "onnx")  # export fails unless ONNX matches Keras
    assert code == 0 and "parity" in out, err
    with pytest.raises(KerasSeqError, match="unknown transform 'percent2'. Expected one of: none, diff, logdiff"):
        ModelSpec(transform="percent2")
