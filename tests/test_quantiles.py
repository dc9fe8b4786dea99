"""A quantile head: pinball loss, quantiles that never cross, interval scores against the random walk, and the
quantiles carried by every exported artifact and `predict`."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from keras_seq.evaluation.intervals import quantile_scores, random_walk_quantiles


def test_interval_scores_match_hand_computed_values():
    actual = np.array([[10.0], [20.0], [30.0], [40.0]])
    quantiles = np.array([[[8.0, 10.0, 12.0]], [[21.0, 22.0, 23.0]], [[25.0, 28.0, 29.0]], [[38.0, 41.0, 44.0]]])
    scores = quantile_scores(actual, quantiles, [0.1, 0.5, 0.9])
    # pinball of level 0.1: errors y - q = 2, -1, 5, 2 -> 0.2, 0.9, 0.5, 0.2; of 0.5: 0, -2, 2, -1 -> 0, 1, 1, 0.5;
    # of 0.9: -2, -3, 1, -4 -> 0.2, 0.3, 0.9, 0.4
    assert scores["pinball"] == pytest.approx({"0.1": 0.45, "0.5": 0.625, "0.9": 0.45})
    assert scores["crps"] == pytest.approx(2 * (0.45 + 0.625 + 0.45) / 3)
    (interval,) = scores["intervals"].values()
    assert interval["nominal"] == pytest.approx(0.8) and interval["coverage"] == 0.5  # 20 below, 30 above theirs
    assert interval["width"] == pytest.approx((4 + 2 + 4 + 6) / 4)
    # Winkler: width + 2/0.2 * miss: 4, 2 + 10 * 1, 4 + 10 * 1, 6
    assert interval["winkler"] == pytest.approx((4 + 12 + 14 + 6) / 4)


def test_the_random_walk_interval_is_the_last_value_plus_the_training_changes_quantiles():
    from keras_seq.data.windows import make_windows

    rng = np.random.default_rng(1)
    values = 100 + rng.normal(size=200).cumsum()
    frame = pd.DataFrame({"y": values}, index=pd.date_range("2020-01-01", periods=200))
    windows = make_windows(frame, target="y", window=5, horizon=2, shuffle=False)
    bands = random_walk_quantiles(windows, "test", [0.1, 0.5, 0.9])
    lo, hi = windows.split_rows["train"]
    train = values[lo:hi]
    last = values[windows.observed_positions("test")[:, 0]]
    for h in (1, 2):
        np.testing.assert_allclose(bands[:, h - 1], last[:, None] + np.quantile(train[h:] - train[:-h], [0.1, 0.5, 0.9]))


def test_quantiles_never_cross_whatever_the_weights():
    from keras_seq.data.windows import WindowSpec
    from keras_seq.models.builders import build_forecaster, network_of
    from keras_seq.models.spec import ModelSpec

    model = build_forecaster(ModelSpec(arch="gru", units=4, layers=1, quantiles=(0.05, 0.3, 0.7, 0.95)),
                             WindowSpec(window=6, horizon=3), 1)
    rng = np.random.default_rng(0)
    head = network_of(model).get_layer("head")
    head.set_weights([rng.normal(scale=5.0, size=w.shape) for w in head.get_weights()])  # far from the zero start
    output = np.asarray(model.predict(rng.normal(size=(64, 6, 1)).astype("float32") * 10 + 50, verbose=0))
    assert output.shape == (64, 3, 5) and (np.diff(output, axis=-1) >= 0).all()  # never crossing (gaps may underflow)


@pytest.mark.parametrize("distribution", ["normal", "student-t"])
def test_a_distribution_head_is_trained_on_its_log_likelihood_and_returns_its_quantiles(distribution):
    from scipy import stats

    from keras_seq.models.layers import negative_log_likelihood, normalized_quantiles
    from keras_seq.models.distributions import STUDENT_T_DF

    rng = np.random.default_rng(5)
    output = rng.normal(size=(4, 2 * 2)).astype("float32")  # 2 steps: location, raw scale each
    location, spread = output.reshape(4, 2, 2)[..., 0], np.log1p(np.exp(output.reshape(4, 2, 2)[..., 1])) + 1e-4
    law = stats.norm() if distribution == "normal" else stats.t(STUDENT_T_DF)
    stats_ = np.stack([np.full(4, 5.0), np.full(4, 5.0), np.full(4, 0.5)], axis=-1).astype("float32")
    y = (5 + 0.5 * rng.normal(size=(4, 2))).astype("float32")
    loss = np.asarray(negative_log_likelihood("none", distribution)(y, np.concatenate([output, stats_], axis=-1)))
    z = (y - 5) / 0.5
    expected = np.mean(-law.logpdf((z - location) / spread) + np.log(spread) + law.logpdf(0.0), axis=-1)
    np.testing.assert_allclose(loss, expected, rtol=1e-4, atol=1e-5)
    quantiles = np.asarray(normalized_quantiles(output, [0.1, 0.5, 0.9], distribution))
    np.testing.assert_allclose(quantiles, location[..., None] + spread[..., None] * law.ppf([0.1, 0.5, 0.9]), rtol=1e-5,
                               atol=1e-6)


def test_the_pinball_loss_of_training_is_the_mean_pinball_loss_of_the_normalized_quantiles():
    from keras_seq.models.layers import ordered_quantiles, pinball_error

    levels = (0.1, 0.5, 0.9)
    rng = np.random.default_rng(2)
    output = rng.normal(size=(5, 2 * 3)).astype("float32")
    stats = np.stack([np.full(5, 10.0), np.full(5, 10.0), np.full(5, 2.0)], axis=-1).astype("float32")  # last, center, scale
    y = (10 + 2 * rng.normal(size=(5, 2))).astype("float32")
    loss = np.asarray(pinball_error("none", levels)(y, np.concatenate([output, stats], axis=-1)))
    quantiles = np.asarray(ordered_quantiles(output, levels))
    expected = [np.mean(np.maximum(np.array(levels) * e, (np.array(levels) - 1) * e))
                for e in ((y - 10) / 2)[..., None] - quantiles]
    np.testing.assert_allclose(loss, expected, rtol=1e-5)


@pytest.mark.parametrize("head", [["--quantiles", "0.1,0.9"], ["--distribution", "student-t", "--quantiles", "0.1,0.9"],
                                  ["--quantiles", "0.5", "--conformal", "0.8"]])  # the last: conformalized quantiles
def test_a_quantile_model_reports_exports_and_predicts_its_quantiles(run_cli, tmp_path, head):
    code, out, err = run_cli("fit", *head, "--horizon", "2", "--arch", "gru", "--units", "4",
                             "--layers", "1", "--epochs", "1", "--start", "2021-01-01", "--out", tmp_path, "-q")
    assert code == 0, err
    (run_dir,) = tmp_path.iterdir()
    assert "quantiles 0.1, 0.5, 0.9: CRPS " in out and "80% interval: coverage " in out
    assert ("conformal intervals around the quantile head's intervals calibrated" in out) == ("--conformal" in head)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["intervals"]["levels"] == [0.1, 0.5, 0.9] and set(metrics["intervals"]) >= {"model", "random walk"}
    assert (run_dir / "calibration.png").is_file()
    code, out, err = run_cli("export", run_dir, "--format", "onnx")
    assert code == 0, err
    card = json.loads((run_dir / "export" / "model_card.json").read_text())
    assert card["quantile_output"]["levels"] == [0.1, 0.5, 0.9]
    assert card["artifacts"]["onnx"]["outputs"][0]["shape"] == [None, 2, 3]
    tables = []
    for artifact in (run_dir, run_dir / "export" / "model.onnx"):
        code, out, err = run_cli("predict", artifact, "--steps", "3", "--csv", tmp_path / "forecast.csv")
        assert code == 0 and "the steps after it are the median rolled forward, without quantiles" in err, err
        tables.append(pd.read_csv(tmp_path / "forecast.csv"))
    pd.testing.assert_frame_equal(tables[0], tables[1], rtol=1e-5)
    table = tables[0]
    assert list(table.columns) == ["date", "Close", "Close_q0.1", "Close_q0.5", "Close_q0.9"]
    assert (table["Close_q0.1"][:2] < table["Close"][:2]).all() and (table["Close"][:2] < table["Close_q0.9"][:2]).all()
    assert table["Close_q0.1"][2:].isna().all() and (table["Close"][:2] == table["Close_q0.5"][:2]).all()


def test_compare_ranks_quantile_models_by_crps(run_cli, tmp_path):
    code, out, err = run_cli("compare", "--archs", "gru,drnn", "--quantiles", "0.1,0.9", "--units", "4", "--layers", "1",
                             "--epochs", "1", "--start", "2022-01-01", "--out", tmp_path, "-q")
    assert code == 0, err
    (folder,) = tmp_path.iterdir()
    summary = json.loads((folder / "comparison.json").read_text())
    crps = {arch: entry["splits"]["test"]["crps"]["mean"] for arch, entry in summary["archs"].items()}
    text = (folder / "comparison.md").read_text()
    ranked = [line.split("|")[2].strip() for line in text.splitlines() if line.startswith("| 1 |") or line.startswith("| 2 |")]
    assert ranked == sorted(crps, key=crps.get) and "Ranked by CRPS" in text


def test_split_conformal_offsets_keep_the_finite_sample_guarantee_on_gaussian_errors():
    from keras_seq.evaluation.conformal import conformal_offsets

    rng = np.random.default_rng(3)
    n, coverage = 99, 0.8
    covered = []
    for _ in range(200):  # P(covered) lies in [c, c + 1/(n + 1)] for exchangeable scores
        calibration, test = np.abs(rng.normal(size=(n, 1))), np.abs(rng.normal(size=1000))
        covered.append(np.mean(test <= conformal_offsets(calibration, [coverage])[0, 0]))
    assert coverage - 0.01 <= np.mean(covered) <= coverage + 1 / (n + 1) + 0.01
    with pytest.raises(Exception, match="too few for a 95% conformal interval"):
        conformal_offsets(np.ones((10, 1)), [0.95])


def test_conformal_intervals_calibrated_on_validation_cover_the_test_split_of_a_random_walk():
    from keras_seq.evaluation.conformal import calibrate
    from keras_seq.data.windows import WindowSpec, make_windows
    from keras_seq.evaluation.report import evaluate_forecast
    from keras_seq.models.builders import build_forecaster
    from keras_seq.models.spec import ModelSpec

    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"y": 100 + rng.normal(size=3000).cumsum()}, index=pd.date_range("2000-01-01", periods=3000))
    windows = make_windows(frame, target="y", window=8, horizon=2, shuffle=False, splits=(0.4, 0.3, 0.3))
    model = build_forecaster(ModelSpec(arch="gru", units=2, layers=1, conformal=(0.8, 0.95)),
                             WindowSpec(window=8, horizon=2), 1)  # untrained and residual: persistence
    record = calibrate(model, windows)
    assert record["windows"] == windows.count("validation") and np.array(record["offsets"]).shape == (2, 2)
    report, points, bands = evaluate_forecast(model, windows, "test")
    np.testing.assert_allclose(points, windows.target_values[windows.observed_positions("test")])
    assert bands.shape == (windows.count("test"), 2, 5) and (np.diff(bands, axis=-1) >= 0).all()
    for name, nominal in (("80%", 0.8), ("95%", 0.95)):
        assert abs(report.intervals["model"]["intervals"][name]["coverage"] - nominal) < 0.04


def test_conformalized_quantiles_narrow_a_too_wide_head_and_stay_nested():
    from keras_seq.evaluation.conformal import calibrate
    from keras_seq.data.windows import WindowSpec, make_windows
    from keras_seq.errors import KerasSeqError
    from keras_seq.evaluation.report import evaluate_forecast
    from keras_seq.models.builders import build_forecaster, network_of
    from keras_seq.models.layers import ConformalIntervals
    from keras_seq.models.spec import ModelSpec

    layer = ConformalIntervals([0.5, 0.9], horizon=1)  # a 90% offset far below the 50%'s: the raw bounds would cross
    layer.build([(None, 1, 5), (None, 3)])
    layer.offsets.assign(np.array([[0.5, -1.8]], "float32"))
    out = np.asarray(layer([np.array([[[-2.0, -1.0, 0.0, 1.0, 2.0]]], "float32"), np.array([[0.0, 0.0, 2.0]], "float32")]))
    np.testing.assert_allclose(out[0, 0], [-2.0, -2.0, 0.0, 2.0, 2.0])  # the 90% bounds pushed out to the 50%'s

    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"y": 100 + rng.normal(size=3000).cumsum()}, index=pd.date_range("2000-01-01", periods=3000))
    windows = make_windows(frame, target="y", window=8, shuffle=False, splits=(0.4, 0.3, 0.3))
    spec = ModelSpec(arch="gru", units=2, layers=1, quantiles=(0.05,), conformal=(0.5, 0.9))
    assert spec.quantiles == (0.05, 0.25, 0.5, 0.75, 0.95)  # the head learns every interval's bounds
    model = build_forecaster(spec, WindowSpec(window=8), 1)  # untrained: the median is persistence
    head = network_of(model).get_layer("head")
    head.bias.assign(np.full(head.bias.shape, 3.0, "float32"))  # gaps of softplus(3) window scales: far too wide
    record = calibrate(model, windows)
    assert record["around"] == "the quantile head's intervals" and (np.array(record["offsets"]) < 0).all()
    report, points, bands = evaluate_forecast(model, windows, "test")
    assert (np.diff(bands, axis=-1) >= 0).all()
    for name, nominal in (("50%", 0.5), ("90%", 0.9)):
        assert abs(report.intervals["model"]["intervals"][name]["coverage"] - nominal) < 0.04
    with pytest.raises(KerasSeqError, match="must be among 0.05, 0.25, 0.5, 0.75, 0.95"):
        ModelSpec(quantiles=(0.1,), conformal=(0.5, 0.9))


def test_a_global_conformal_model_exports_its_calibrated_intervals(run_cli, tmp_path):
    from conftest import REPO

    panel = REPO / "tests" / "bad_inputs" / "files" / "long_table.csv"  # AAPL, IBM, MSFT: 120 days each
    code, out, err = run_cli("fit", "--data", panel, "--target", "price", "--series-column", "symbol", "--series",
                             "all", "--conformal", "0.8", "--arch", "gru", "--units", "4", "--layers", "1",
                             "--epochs", "1", "--out", tmp_path, "-q")
    assert code == 0, err
    assert "conformal intervals around the point forecast calibrated on the validation split's " in out and "80% interval: coverage" in out
    (run_dir,) = tmp_path.iterdir()
    config = json.loads((run_dir / "config.json").read_text())
    assert config["conformal"]["coverages"] == [0.8] and len(config["conformal"]["offsets"]) == 1
    code, out, err = run_cli("export", run_dir, "--format", "onnx")
    assert code == 0, err
    card = json.loads((run_dir / "export" / "model_card.json").read_text())
    assert card["quantile_output"]["levels"] == [0.1, 0.5, 0.9] and "conformal" in card["quantile_output"]["description"]
    for artifact in (run_dir, run_dir / "export" / "model.onnx"):
        code, out, err = run_cli("predict", artifact, "--csv", tmp_path / f"{artifact.name}.csv")
        assert code == 0, err
    mine, onnx = (pd.read_csv(tmp_path / f"{name}.csv") for name in (run_dir.name, "model.onnx"))
    pd.testing.assert_frame_equal(mine, onnx, rtol=1e-5)
    assert list(mine.columns) == ["symbol", "date", "price", "price_q0.1", "price_q0.5", "price_q0.9"]
    assert list(mine["symbol"]) == ["AAPL", "IBM", "MSFT"]
    assert (mine["price_q0.1"] < mine["price"]).all() and (mine["price"] < mine["price_q0.9"]).all()


def test_mc_dropout_samples_a_point_model_with_its_dropout_on():
    from keras_seq.data.windows import WindowSpec
    from keras_seq.errors import KerasSeqError
    from keras_seq.evaluation.mc_dropout import MC_LEVELS, check_mc, mc_quantiles
    from keras_seq.models.builders import build_forecaster
    from keras_seq.models.spec import ModelSpec

    windows = WindowSpec(window=6, horizon=2)
    model = build_forecaster(ModelSpec(arch="gru", units=4, layers=1, dropout=0.5, residual=False), windows, 1)
    x = np.random.default_rng(6).normal(size=(7, 6, 1)).astype("float32")
    check_mc(20, model)
    bands = mc_quantiles(model, x, 20)
    assert bands.shape == (7, 2, len(MC_LEVELS)) and (np.diff(bands, axis=-1) >= 0).all()
    assert (bands[..., -1] - bands[..., 0] > 0).all()  # the masks differ between samples
    without = build_forecaster(ModelSpec(arch="gru", units=4, layers=1), windows, 1)
    with pytest.raises(KerasSeqError, match="MC dropout needs a model trained with dropout"):
        check_mc(20, without)
    with pytest.raises(KerasSeqError, match="which a onnx artifact does not hold"):
        check_mc(20, None, "onnx")
    quantile = build_forecaster(ModelSpec(arch="gru", units=4, layers=1, dropout=0.5, quantiles=(0.1,)), windows, 1)
    with pytest.raises(KerasSeqError, match="already returns quantiles"):
        check_mc(20, quantile)
    with pytest.raises(KerasSeqError, match="at least 2"):
        check_mc(1, model)
