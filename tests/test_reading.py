"""Reading the results as a new user would: what every table, warning, plot and run-folder argument says."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from keras_seq.data.windows import make_windows
from keras_seq.evaluation.report import baseline_forecasts, score_forecast
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
    # A path through `latest`, as the README writes `saved_models/latest/export/model.onnx` (issue 35's first hour:
    # its commands named run folders that do not exist)
    (home / "saved_models" / "latest-x").symlink_to(tmp_path / "x")  # never counted as a run
    code, out, err = run_cli("predict", "saved_models/latest/../latest-x/model.keras")
    assert code == 0 and "Close" in out, err
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
    assert "MAE by step ahead: m 1.000 2.000 3.000 4.000 5.000; persistence " in table
    title, labels = plot_forecast(windows, "test", predictions, tmp_path / "f.png", name="m", report=report)
    assert title == f"m: test split {report.first_date}..{report.last_date}, steps 1 and 5 of a 5-step horizon"
    # The first and the last step are drawn, each beside the baseline the table names best (issue 35: step 1 only,
    # and always persistence)
    best = baseline_forecasts(windows, "test", report.season)[report.best_baseline]
    errors = [np.mean(np.abs(windows.targets("test")[:, k] - best[:, k])) for k in (0, 4)]
    label = report.best_baseline if report.best_baseline != "seasonal naive" else f"seasonal naive ({report.season})"
    assert labels == ["actual", f"{label} (MAE {errors[0]:.2f})", "m forecast (MAE 1.00)",
                      "actual", f"{label} (MAE {errors[1]:.2f})", "m forecast (MAE 5.00)"]


def test_forecast_png_draws_the_baseline_the_table_names_best(tmp_path):
    """A seasonal series, where a seasonal baseline beats persistence: the plot draws the best one, whose win the
    table reports (issue 35: it drew persistence, so the plot showed a win the table called a loss)."""
    t = np.arange(240)
    frame = pd.DataFrame({"Sales": 100 + 30 * np.sin(2 * np.pi * t / 12) + np.random.default_rng(1).normal(size=240)},
                         index=pd.date_range("2000-01-01", periods=240, freq="MS", name="Date"))
    windows = make_windows(frame, target="Sales", window=24, shuffle=False)
    predictions = windows.targets("test") + 3.0
    report = score_forecast(windows, "test", predictions, name="m", season=12)
    assert report.best_baseline in ("seasonal naive", "naive2")
    _, labels = plot_forecast(windows, "test", predictions, tmp_path / "f.png", name="m", report=report)
    label = "seasonal naive (12)" if report.best_baseline == "seasonal naive" else "naive2"
    best = report.baselines[report.best_baseline]["mae"]
    assert labels[1] == f"{label} (MAE {best:.2f})" and not any("persistence" in text for text in labels)


def test_tables_show_four_significant_digits_so_close_errors_read_apart():
    """A stock near 30 moves about 0.4 a day: the model's and the baselines' MAEs differ in the third digit, which
    two fixed decimals hid (issue 35: `lstm 0.43 / persistence 0.43 / drift 0.43`)."""
    close = 30 + np.cumsum(np.random.default_rng(2).normal(0, 0.5, size=300))
    frame = pd.DataFrame({"Close": close}, index=pd.bdate_range("2020-01-01", periods=300, name="Date"))
    windows = make_windows(frame, target="Close", window=8, shuffle=False)
    persistence = baseline_forecasts(windows, "test", 5)["persistence"]
    report = score_forecast(windows, "test", persistence + 0.01, name="m", season=5)
    rows = {line.split()[0]: line.split()[1] for line in report.table().splitlines()[2:] if line.split()}
    assert float(rows["m"]) == pytest.approx(report.model["mae"], rel=1e-3)
    assert float(rows["persistence"]) == pytest.approx(report.persistence["mae"], rel=1e-3)
    assert rows["m"] != rows["persistence"] and len(rows["m"].replace(".", "").lstrip("0")) >= 4


def test_half_hourly_data_gets_the_weekly_season_where_the_training_split_shows_it():
    """Half-hourly demand, low at weekends: a week of 336 steps fits better than a day of 48 (issue 35: 48 was
    given, and never 336); a series with no weekly pattern keeps the day."""
    steps = pd.date_range("2021-01-04", periods=48 * 7 * 5, freq="30min", name="Date")
    day = 10 * np.sin(2 * np.pi * np.arange(len(steps)) / 48)
    noise = np.random.default_rng(3).normal(0, 0.5, len(steps))
    for weekend, expected in ((30.0, 336), (0.0, 48)):
        level = 100 + day + noise - weekend * (steps.dayofweek >= 5)
        windows = make_windows(pd.DataFrame({"Load": level}, index=steps), target="Load", window=8, shuffle=False)
        report = score_forecast(windows, "test", windows.targets("test"), name="m")
        assert report.season == expected, report.season_note
        assert "the better of a day (48) and a week (336)" in report.season_note


def test_series_skill_png_draws_each_of_a_few_series_with_its_sign(tmp_path):
    """Four series, three below 0: each gets its own bar (issue 35: a histogram of four values drew them all on the
    positive side)."""
    from types import SimpleNamespace

    from keras_seq.present.plots import plot_series_skill

    skills = {"a": -0.2, "b": -0.1, "c": -0.05, "d": 0.1}
    report = SimpleNamespace(name="m", scope="test split", per_series={
        name: {"skill": value, "skill_seasonal": value / 2} for name, value in skills.items()})
    drawn = plot_series_skill(report, tmp_path / "series_skill.png")
    assert drawn["vs its persistence"] == skills
    assert drawn["vs its seasonal naive"] == {name: value / 2 for name, value in skills.items()}
    assert (tmp_path / "series_skill.png").stat().st_size > 0


def test_compare_plots_keep_archs_of_close_figures_apart(tmp_path):
    """Three archs within 0.2 of each other near 296: the MAE dots sit on an axis around them, each figure written
    to 4 digits, and the forecast chart's lower panel separates lines that overlap on the scale of the values
    (issue 35: bars from 0 all read 296, and the lines looked like one)."""
    from types import SimpleNamespace

    from keras_seq.present.plots import plot_comparison

    dates = pd.bdate_range("2022-01-03", periods=40).to_numpy()
    actual = 30000 + np.cumsum(np.random.default_rng(4).normal(0, 200, 40))
    maes = {"lstm": 296.61, "gru": 296.50, "drnn": 296.73}
    shown = {arch: {"history": {"loss": [0.6, 0.5], "val_loss": [0.62, 0.61]}, "split": "test", "ylabel": "Close",
                    "drawn": (dates[1:], actual[:-1] + k), "actual": (dates, actual)}
             for k, arch in enumerate(maes)}
    summary = {"archs": {a: {"splits": {"test": {"mae": {"mean": m, "std": 0.0}}}} for a, m in maes.items()},
               "splits": {"test": {"persistence": {"mae": 296.55}, "split": "test split"}}}
    specs = SimpleNamespace(model=SimpleNamespace(loss_name="mse"), data=SimpleNamespace(target="Close"))
    drew = plot_comparison(tmp_path, shown, summary, specs, SimpleNamespace(backtest=0, repeats=1), "test")
    low, high = drew["mae_axis"]
    assert 295 < low < 296.5 and 296.73 < high < 298
    assert drew["mae_written"] == ["296.61", "296.50", "296.73"]
    assert drew["apart"] == pytest.approx({"lstm": 1.0, "gru": 0.0, "drnn": 1.0}, abs=1e-6)
    assert all((tmp_path / f"compare_{name}.png").stat().st_size > 0 for name in ("loss", "forecast", "mae"))
