"""keras_seq/evaluation/metrics.py: a metric is a plug-in that owns its formula, its column and whether tune may minimize it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from keras_seq.evaluation import metrics
from keras_seq.errors import KerasSeqError

TINY = ("--window", "8", "--units", "2", "--layers", "1", "--epochs", "1", "--start", "2022-01-01", "--batch-size", "64")


def max_error(y_true, y_pred, scale):
    return float(np.max(np.abs(np.asarray(y_pred) - np.asarray(y_true))))


def test_a_new_metric_appears_in_fits_table_compares_tables_and_as_a_tune_objective(tmp_path, run_cli, request):
    metrics.register_metric(metrics.Metric("maxae", "max AE", max_error, width=10, digits=2))
    request.addfinalizer(lambda: metrics._METRICS.pop("maxae"))
    code, out, err = run_cli("fit", *TINY, "--out", tmp_path / "fit")
    assert code == 0 and "max AE" in out, err
    (run,) = (tmp_path / "fit").iterdir()
    test = json.loads((run / "metrics.json").read_text())
    assert test["model"]["maxae"] >= test["model"]["mae"] > 0
    code, out, err = run_cli("compare", "--archs", "gru", *TINY, "--out", tmp_path / "compare")
    assert code == 0, err
    (folder,) = (tmp_path / "compare").iterdir()
    assert "| max AE |" in (folder / "comparison.md").read_text()
    assert json.loads((folder / "comparison.json").read_text())["archs"]["gru"]["splits"]["test"]["maxae"]["n"] == 1
    code, out, err = run_cli("tune", *TINY, "--objective", "val_maxae", "--trials", "1", "--no-refit", "--study", "s",
                             "--out", tmp_path / "tune", "-q")
    assert code == 0, err
    assert json.loads((tmp_path / "tune" / "s" / "tune.json").read_text())["objective"] == "val_maxae"


def test_builtin_metrics_and_an_unknown_one():
    assert metrics.metric_names() == ("mae", "rmse", "mape", "smape", "mase")
    assert metrics.scores([1.0, 3.0], [2.0, 2.0], 2.0)["mase"] == pytest.approx(0.5)
    assert "mase" not in metrics.scores([1.0], [2.0])
    with pytest.raises(KerasSeqError, match="unknown metric 'nope'"):
        metrics.get_metric("nope")
