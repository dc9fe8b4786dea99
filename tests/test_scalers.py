"""keras_seq/models/scalers.py: a scaler is a plug-in that owns its statistics and how a window is normalized."""

from __future__ import annotations

import json

import numpy as np
import pytest

from keras_seq.errors import KerasSeqError
from keras_seq.models import ModelSpec, scalers


class MaxAbs(scalers.WindowScaler):
    """A scaler written outside keras-seq: each window's columns divided by their largest absolute value."""

    name = "maxabs"

    def normalization(self, layer, x, column, series):
        import keras

        spread = keras.ops.max(keras.ops.abs(x), axis=1, keepdims=True) + 1e-6
        return 0 * spread, spread, 0 * column, spread[..., layer.target_index] + 0 * column


def test_a_new_scaler_trains_is_saved_by_name_evaluates_and_exports_to_onnx_with_parity(tmp_path, run_cli,
                                                                                          monkeypatch):
    monkeypatch.setitem(scalers._SCALERS, "maxabs", MaxAbs())
    code, out, err = run_cli("fit", "--scaler", "maxabs", "--window", "8", "--units", "4", "--layers", "1",
                             "--epochs", "1", "--start", "2022-01-01", "--out", tmp_path)
    assert code == 0, err
    (run,) = tmp_path.iterdir()
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
