"""keras_seq/models/distributions.py: a distribution is a plug-in that owns its NLL and quantiles."""

from __future__ import annotations

import numpy as np
import pytest

from keras_seq.errors import KerasSeqError
from keras_seq.models import ModelSpec
from keras_seq.models import distributions


class Laplace:
    """A distribution written outside keras-seq: its negative log-likelihood and standard quantiles."""

    name = "laplace"

    def nll(self, error, spread):
        import keras

        return keras.ops.log(spread) + keras.ops.abs(error)

    def standard_quantiles(self, levels):
        levels = np.asarray(levels, dtype="float64")
        return -np.sign(levels - 0.5) * np.log(1 - 2 * np.abs(levels - 0.5))


def test_a_new_distribution_trains_exports_to_onnx_with_parity_and_predicts(tmp_path, run_cli, fit_tiny, monkeypatch):
    monkeypatch.setitem(distributions._DISTRIBUTIONS, "laplace", Laplace())
    run = fit_tiny("--distribution", "laplace")
    code, out, err = run_cli("export", run, "--format", "onnx")  # export fails unless ONNX matches Keras
    assert code == 0 and "parity" in out, err
    code, out, err = run_cli("predict", run / "export" / "model.onnx", "--csv", tmp_path / "f.csv")
    assert code == 0, err
    table = __import__("pandas").read_csv(tmp_path / "f.csv")
    spread = {q: float(table[[c for c in table.columns if c.endswith(q)][0]].iloc[0]) for q in ("0.5", "0.9", "0.975")}
    ratio = (spread["0.975"] - spread["0.5"]) / (spread["0.9"] - spread["0.5"])
    assert ratio == pytest.approx(np.log(20) / np.log(5), rel=1e-3)  # Laplace's tails, not the normal's (1.53)


def test_an_unregistered_distribution_is_refused():
    with pytest.raises(KerasSeqError, match="unknown distribution 'laplace2'. Expected one of: none, normal"):
        ModelSpec(distribution="laplace2")
