"""Reading the results as a new user would: what every table, warning, plot and run-folder argument says."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from keras_seq.data.windows import make_windows
from keras_seq.evaluation.report import score_forecast
from keras_seq.present.plots import plot_forecast

TINY = ("--units", "4", "--layers", "1", "--epochs", "1", "--batch-size", "64", "--quiet")


@pytest.fixture(scope="module")
def zscore_run(tmp_path_factory):
    """A tiny run with the old scaling (training-split z-scores, no residual), in <tmp>/saved_models."""
    from keras_seq.cli import main

    home = tmp_path_factory.mktemp("reading")
    try:
        main(["fit", "--arch", "gru", "--start", "2021-06-01", "--scaler", "zscore", "--no-residual",
              "--out", str(home / "saved_models"), *TINY])
    except SystemExit as done:
        assert done.code in (0, None)
    (run_dir,) = (home / "saved_models").iterdir()
    return home, run_dir


def test_a_losing_run_says_so_in_one_line_with_what_to_try(zscore_run):
    home, run_dir = zscore_run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["skill_vs_best"] < 0  # one epoch of 4 units: it loses
    note = metrics["note"]
    assert note.startswith(f"gru loses to {metrics['best_baseline']} here (skill {metrics['skill_vs_best']:+.3f}): ")
    assert "`scaler` window" in note and "\n" not in note


def test_evaluating_far_from_the_training_range_warns_and_titles_the_range(zscore_run, run_cli):
    home, run_dir = zscore_run
    code, out, err = run_cli("evaluate", run_dir, "--start", "2010-01-04", "--end", "2012-12-31")
    assert code == 0, err
    (warning,) = [line for line in err.splitlines() if line.startswith("Warning: ")]
    assert re.search(r"the evaluated Close lies [0-9.]+ training standard deviations from the training split's mean", warning)
    assert "--scaler window" in warning
    assert out.startswith("the given data 2010-01") and "..2012-12-31:" in out.splitlines()[0]
    assert "test split" not in out
    assert "its z-scores were fixed on the training split" in out  # the losing line names the reason
    # No training rows in that data: the season and MASE's scale come from it, and there is no training mean.
    assert "Season 5 (business-day dates: a week of 5); MASE scales by its in-sample error on the evaluated data" in out
    assert "train mean" not in out and " nan" not in out


def test_latest_names_the_newest_complete_run(zscore_run, run_cli, monkeypatch, tmp_path):
    home, run_dir = zscore_run
    (home / "saved_models" / ".lstm-x.abcd.partial").mkdir()  # an unfinished run is never "latest"
    monkeypatch.chdir(home)
    for args in (("evaluate", "latest", "--out", tmp_path / "e1"), ("evaluate", "saved_models/latest", "--out", tmp_path / "e2"),
                 ("predict", "latest")):
        code, out, err = run_cli(*args)
        assert code == 0, (args, err)
    assert (tmp_path / "e1" / "metrics.json").is_file() and (tmp_path / "e2" / "metrics.json").is_file()
    code, out, err = run_cli("export", "latest", "--format", "keras", "--out", tmp_path / "x")
    assert code == 0 and (tmp_path / "x" / "model_card.json").is_file(), err
    code, out, err = run_cli("evaluate", tmp_path / "latest")
    assert code == 1 and err.startswith(f"Error: no complete run folder in {tmp_path} for '{tmp_path / 'latest'}'")
    assert len(err.strip().splitlines()) == 1


def test_a_longer_horizon_is_scored_and_plotted_per_step(tmp_path):
    frame = pd.DataFrame({"Level": 50 + np.cumsum(np.random.default_rng(0).normal(size=200))},
                         index=pd.bdate_range("2020-01-01", periods=200, name="Date"))
    windows = make_windows(frame, target="Level", window=8, horizon=5, shuffle=False)
    predictions = windows.targets("test") + np.arange(1, 6)  # an error of k at step k
    report = score_forecast(windows, "test", predictions, name="m")
    assert report.per_step["m"] == pytest.approx([1, 2, 3, 4, 5])
    table = report.table()
    assert "forecasts 1..5 steps ahead (each figure the mean over the 5 steps)" in table
    assert "MAE by step ahead: m 1.00 2.00 3.00 4.00 5.00; persistence " in table
    title, labels = plot_forecast(windows, "test", predictions, tmp_path / "f.png", name="m", report=report)
    assert title == f"m: test split {report.first_date}..{report.last_date}, step 1 of a 5-step horizon"
    persistence = np.mean(np.abs(windows.targets("test")[:, 0] - windows.target_values[windows.observed_positions("test")[:, 0]]))
    assert labels == ["actual", f"persistence (MAE {persistence:.2f})", "m forecast (MAE 1.00)"]
