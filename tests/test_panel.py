"""Several series of a long or a wide table in one global model: reading, windows that stay inside their series,
a report per series with aggregates over them, forecasts of every series as a long table, a large panel's keyed
order, calendar inputs and future features."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from conftest import REPO
from keras_seq.data.sources import DataSpec
from keras_seq.data.windows import make_windows
from keras_seq.errors import DataWarning

LONG = REPO / "tests" / "bad_inputs" / "files" / "long_table.csv"  # AAPL, IBM, MSFT: 120 days each


def test_several_series_load_as_one_long_frame_in_order():
    frame = DataSpec(source=str(LONG), target="price", series_column="symbol", series=("MSFT", "AAPL")).load()
    assert list(frame.columns) == ["symbol", "price"] and list(dict.fromkeys(frame["symbol"])) == ["MSFT", "AAPL"]
    raw = pd.read_csv(LONG, parse_dates=["date"])
    for name in ("MSFT", "AAPL"):
        mine = frame[frame["symbol"] == name]
        assert mine.index.is_monotonic_increasing and len(mine) == 120
        np.testing.assert_array_equal(mine["price"], raw[raw["symbol"] == name]["price"])
    assert len(DataSpec(source=str(LONG), target="price", series_column="symbol", series="all").load()) == 360


def test_panel_windows_stay_inside_their_series_and_short_ones_are_named():
    frame = DataSpec(source=str(LONG), target="price", series_column="symbol", series="all").load()
    short = frame[frame["symbol"] == "IBM"].iloc[:6].assign(symbol="TINY")  # 6 rows: less than one window
    with pytest.warns(DataWarning, match=r"1 of 4 series are shorter than one window's 9 steps .*: TINY \(6 rows\)"):
        windows = make_windows(pd.concat([frame, short]), target="price", window=8, series_column="symbol",
                               shuffle=False)
    assert windows.series_ids == ("AAPL", "IBM", "MSFT")
    cuts = {split: {str(windows.dates[rows[split][0]].date()) for rows in windows.series_splits}
            for split in ("validation", "test")}
    assert all(len(days) == 1 for days in cuts.values())  # every series cut on the same dates
    for split in ("train", "validation", "test"):
        starts = windows.starts(split)
        x, y = windows.gather(starts)
        for start, inputs, target in zip(starts, x, y):
            (series,) = [k for k, rows in enumerate(windows.series_splits) if rows["train"][0] <= start < rows["test"][1]]
            rows = windows.series_splits[series]
            assert start + 8 < rows["test"][1]  # inputs and target inside the window's own series
            np.testing.assert_array_equal(inputs[:, 0], windows.target_values[start:start + 8].astype("float32"))
    # the rows interleaved by date (each series still in date order): the same series, windows and values
    interleaved = make_windows(frame.sort_index(kind="stable"), target="price", window=8, series_column="symbol",
                               shuffle=False)
    assert interleaved.series_ids == ("AAPL", "IBM", "MSFT") and interleaved.series_splits == windows.series_splits
    for split in ("train", "test"):
        for mine, theirs in zip(interleaved.gather(interleaved.starts(split)), windows.gather(windows.starts(split))):
            np.testing.assert_array_equal(mine, theirs)


def test_a_global_model_fits_reports_each_series_and_exports(run_cli, tmp_path):
    code, out, err = run_cli("fit", "--data", LONG, "--target", "price", "--series-column", "symbol", "--series", "all",
                             "--calendar", "dow", "--arch", "gru", "--units", "4", "--layers", "1", "--epochs", "1",
                             "--out", tmp_path, "-q")
    assert code == 0, err
    (run_dir,) = tmp_path.iterdir()
    config = json.loads((run_dir / "config.json").read_text())
    assert config["data"]["calendar"] == ["dow"] and config["scaling"]["feature_names"] == ["price", "dow_sin", "dow_cos"]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert sorted(metrics["per_series"]) == ["AAPL", "IBM", "MSFT"] and metrics["windows"] == 54
    assert sum(m["windows"] for m in metrics["per_series"].values()) == 54
    assert "3 series: MASE mean " in out and "skill vs each one's persistence" in out
    code, out, err = run_cli("export", run_dir, "--format", "onnx")
    assert code == 0 and "over 54 test windows" in out, err
    card = json.loads((run_dir / "export" / "model_card.json").read_text())
    assert card["features"] == ["price", "dow_sin", "dow_cos"] and set(card["calendar_inputs"]) == {"dow_sin", "dow_cos"}
    code, out, err = run_cli("evaluate", run_dir, "--plot-series", "MSFT,IBM", "--out", tmp_path / "eval")
    assert code == 0 and (tmp_path / "eval" / "series_skill.png").is_file(), err
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["panel"]["series"] == 3
    code, out, err = run_cli("evaluate", run_dir, "--plot-series", "NOPE", "--out", tmp_path / "eval2")
    assert code == 1 and "--plot-series NOPE: no such series" in err and not (tmp_path / "eval2").exists()
    # predict forecasts every series of the panel in one long table; the ONNX file forecasts the same
    code, out, err = run_cli("predict", run_dir, "--steps", "2", "--csv", tmp_path / "run.csv")
    assert code == 0, err
    table = pd.read_csv(tmp_path / "run.csv", parse_dates=["date"])
    assert list(table.columns) == ["symbol", "date", "price"] and list(table["symbol"]) == ["AAPL"] * 2 + ["IBM"] * 2 + ["MSFT"] * 2
    raw = pd.read_csv(LONG, parse_dates=["date"])
    assert (table.groupby("symbol")["date"].min() > raw.groupby("symbol")["date"].max()).all()
    (onnx_file,) = (run_dir / "export").glob("*.onnx")
    code, out, err = run_cli("predict", onnx_file, "--steps", "2", "--series", "MSFT,AAPL", "--csv", tmp_path / "onnx.csv")
    assert code == 0, err
    chosen = pd.read_csv(tmp_path / "onnx.csv", parse_dates=["date"])
    expected = pd.concat([table[table["symbol"] == n] for n in ("MSFT", "AAPL")]).reset_index(drop=True)
    pd.testing.assert_frame_equal(chosen[["symbol", "date"]], expected[["symbol", "date"]])
    np.testing.assert_allclose(chosen["price"], expected["price"], rtol=1e-4)
    # a series it never saw, 50 times IBM's level: raw values in, a forecast at that level out
    unseen = raw[raw["symbol"] == "IBM"].assign(symbol="NEW", price=lambda f: f["price"] * 50 + 3)
    unseen.to_csv(tmp_path / "unseen.csv", index=False)
    code, out, err = run_cli("predict", onnx_file, "--data", tmp_path / "unseen.csv", "--series-column", "symbol",
                             "--csv", tmp_path / "new.csv")  # the series column alone: every series of the file
    assert code == 0, err
    new = pd.read_csv(tmp_path / "new.csv")
    assert list(new["symbol"]) == ["NEW"] and abs(new["price"][0] / unseen["price"].iloc[-1] - 1) < 0.05
    code, out, err = run_cli("predict", run_dir, "--series", "MSFT,NOPE")
    assert code == 1 and "--series NOPE: the model's data has no such series (AAPL, IBM, MSFT)" in err


@pytest.fixture
def wide_csv(tmp_path):
    """A wide table: series A (rows 0..79), B (rows 10..99, a later start) and C (rows 0..89), and a feature column."""
    rng = np.random.default_rng(0)
    dates = pd.date_range("2021-01-01", periods=100, freq="D")
    frame = pd.DataFrame({"date": dates, "A": 100 + rng.normal(size=100).cumsum(), "B": 5 + rng.normal(size=100).cumsum() / 10,
                          "C": 1000 + rng.normal(size=100).cumsum() * 10, "holiday": (dates.dayofweek == 6).astype(float)})
    frame.loc[80:, "A"] = np.nan
    frame.loc[:9, "B"] = np.nan
    frame.loc[90:, "C"] = np.nan
    path = tmp_path / "wide.csv"
    frame.to_csv(path, index=False)
    return path, frame


def test_a_wide_table_loads_one_series_per_column_each_over_its_own_dates(wide_csv):
    path, raw = wide_csv
    frame = DataSpec(source=str(path), targets="all", features=("holiday",)).load()
    assert list(frame.columns) == ["series", "holiday", "value"] and list(dict.fromkeys(frame["series"])) == ["A", "B", "C"]
    for name in "ABC":
        mine = frame[frame["series"] == name]
        expected = raw.set_index("date")[name].dropna()
        np.testing.assert_array_equal(mine["value"], expected)
        assert mine.index[0] == expected.index[0] and mine.index[-1] == expected.index[-1]
    assert list(dict.fromkeys(DataSpec(source=str(path), targets=("C", "A")).load()["series"])) == ["C", "A"]
    one = DataSpec(source=str(path), targets="B")  # one column: the same as --target B
    assert one.target == "B" and one.targets is None and one.panel_column is None
    windows = make_windows(frame, target="value", features=["holiday", "value"], window=8, series_column="series",
                           shuffle=False)
    assert windows.series_ids == ("A", "B", "C")
    tested = {name: rows["test"] for name, rows in zip(windows.series_ids, windows.series_splits)}
    assert tested["A"][0] == tested["A"][1]  # A ends before the test period (85% of the 100 dates)
    assert {windows.dates[tested[name][0]] for name in "BC"} == {raw["date"][85]}


@pytest.mark.parametrize("options, message", [
    (dict(targets=("A", "Z")), "`targets` names column 'Z', which is not in"),
    (dict(target="A", calendar=("week",)), "`calendar` names calendar features once each, of dow, month"),
    (dict(target="A", features=("A", "dow_sin"), calendar=("dow",)), "a column `calendar` makes from the dates"),
    (dict(targets="all", series_column="symbol"), "give one of them"),
    (dict(targets=("A", "B"), target="price"), "leave `target` out"),
])
def test_wide_table_mistakes_get_one_clear_line(wide_csv, options, message):
    from keras_seq.errors import KerasSeqError

    with pytest.raises(KerasSeqError, match=message):
        DataSpec(source=str(wide_csv[0]), **options).load()


def test_a_global_model_of_a_wide_table_fits_and_predicts_each_column(run_cli, wide_csv, tmp_path):
    code, out, err = run_cli("fit", "--data", wide_csv[0], "--targets", "A,B,C", "--arch", "gru", "--units", "4",
                             "--layers", "1", "--epochs", "1", "--window", "8", "--out", tmp_path / "runs", "-q")
    assert code == 0, err
    assert "2 series: MASE mean " in out and "weighted" in out and "vs its seasonal naive" in out  # A ends earlier
    assert "1 series has no window in this split (their rows end before it or are too few): A." in out
    (run_dir,) = (tmp_path / "runs").iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    per_series = metrics["per_series"]
    assert sorted(per_series) == ["B", "C"] and metrics["panel"]["series"] == 2
    assert metrics["panel"]["without_windows"] == ["A"]
    assert metrics["panel"]["mase_median"] == pytest.approx(np.median([m["mase"] for m in per_series.values()]))
    assert metrics["panel"]["owa_mean"] == pytest.approx(np.mean([m["owa"] for m in per_series.values()]))
    assert "OWA vs its naive2 mean" in out and "naive2" in metrics["baselines"]
    assert (run_dir / "series_skill.png").is_file()
    code, out, err = run_cli("predict", run_dir, "--series", "C", "--steps", "3")
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0].split() == ["series", "date", "value"] and [line.split()[:2] for line in lines[1:]] == [
        ["C", "2021-04-01"], ["C", "2021-04-02"], ["C", "2021-04-03"]]
    # another wide table: its columns are the series a wide model forecasts (here one it never saw, 10x C's level)
    other = wide_csv[1][["date"]].assign(D=wide_csv[1]["C"] * 10).iloc[:90]
    other.to_csv(tmp_path / "other.csv", index=False)
    code, out, err = run_cli("predict", run_dir, "--data", tmp_path / "other.csv", "--series", "D")
    assert code == 0, err
    (row,) = out.strip().splitlines()[1:]
    assert row.split()[0] == "D" and abs(float(row.split()[2]) / other["D"].iloc[-1] - 1) < 0.05


def test_panel_summary_weights_each_series_by_its_naive_error():
    from keras_seq.evaluation.report import panel_summary

    per_series = {"flat": {"windows": 10, "mae": 1.0, "scale": 0.01, "mase": 100.0, "smape": 1.0, "skill": -0.5,
                           "skill_seasonal": 0.1, "owa": 1.25},
                  "big": {"windows": 10, "mae": 50.0, "scale": 100.0, "mase": 0.5, "smape": 2.0, "skill": 0.2,
                          "skill_seasonal": 0.3, "owa": float("nan")}}
    summary = panel_summary(per_series)
    assert summary["mase_mean"] == pytest.approx(50.25)  # the near-constant series dominates the plain mean
    assert summary["mase_weighted"] == pytest.approx(51.0 / 100.01)  # not the weighted one
    assert summary["above_persistence"] == 1 and summary["above_seasonal_naive"] == 2
    assert summary["owa_mean"] == summary["owa_median"] == 1.25  # an undefined OWA is left out, not averaged in


@pytest.mark.parametrize("counts, stride", [([5], 1), ([3, 7, 1, 0, 12], 2), ([1000, 17, 4096], 3)])
def test_a_keyed_order_is_a_permutation_of_the_starts_fixed_by_its_key(counts, stride):
    from keras_seq.data.windows import KeyedOrder

    counts = np.array(counts)
    firsts = np.cumsum(counts * stride + 5) - counts * stride
    expected = np.concatenate([f + stride * np.arange(c) for f, c in zip(firsts, counts)])
    order = KeyedOrder(firsts, counts, stride, [7, 0])
    whole = order[: len(order)]
    assert len(order) == len(expected) and sorted(whole) == sorted(expected)  # every window once
    np.testing.assert_array_equal(np.concatenate([order[i : i + 4] for i in range(0, len(order), 4)]), whole)
    np.testing.assert_array_equal(KeyedOrder(firsts, counts, stride, [7, 0])[: len(order)], whole)  # replayable
    if len(expected) > 100:
        assert not np.array_equal(KeyedOrder(firsts, counts, stride, [7, 1])[: len(order)], whole)  # next epoch
        assert abs(np.corrcoef(np.arange(len(whole)), whole)[0, 1]) < 0.1  # not close to the stored order


def test_a_large_train_split_is_read_in_a_keyed_order_every_window_once(monkeypatch):
    """Above KEYED_ORDER_WINDOWS, fit reads batches of a keyed order: the same windows, each once an epoch."""
    import keras_seq.data.windows as windows_module
    from keras_seq.training.loop import fit_data

    frame = DataSpec(source=str(LONG), target="price", series_column="symbol", series="all").load()
    windows = make_windows(frame, target="price", window=8, series_column="symbol", batch_size=16, seed=5)
    in_memory = windows.epoch_starts("train", 0)
    monkeypatch.setattr(windows_module, "KEYED_ORDER_WINDOWS", 0)
    assert isinstance(windows.epoch_order("train", 0), windows_module.KeyedOrder)
    keyed = windows.epoch_starts("train", 0)
    assert sorted(keyed) == sorted(in_memory) and not np.array_equal(keyed, in_memory)
    data = fit_data(windows, "train")
    data.on_epoch_begin()
    inputs = np.concatenate([data[i][0] for i in range(data.num_batches)])
    np.testing.assert_array_equal(inputs, windows.gather(keyed)[0])
    data.on_epoch_begin()  # the next epoch: another order of the same windows
    assert not np.array_equal(data[0][0], inputs[:16])


def test_a_panel_backtest_cuts_every_series_at_the_same_fold_dates():
    """Folds are positions in the union of the series' dates; each fold truncates every series at its end."""
    from keras_seq.runs.comparison import backtest_folds, date_count
    from keras_seq.runs.fits import fold_data
    from keras_seq.data.windows import WindowSpec

    frame = DataSpec(source=str(LONG), target="price", series_column="symbol", series="all").load()
    frame = frame[~((frame["symbol"] == "IBM") & (frame.index < "2020-01-11"))]  # IBM starts 10 days later
    dates = np.sort(frame.index.unique())
    assert date_count(frame) == 120
    folds = backtest_folds(date_count(frame), WindowSpec(window=8), 2)
    assert [f[1:] for f in folds] == [(102, 111), (111, 120)]
    for val_lo, test_lo, test_hi in folds:
        rows, spec = fold_data(frame, WindowSpec(window=8), (val_lo, test_lo, test_hi))
        assert rows.index.max() == dates[test_hi - 1] and len(rows.groupby("symbol")) == 3
        windows = make_windows(rows, target="price", series_column="symbol", shuffle=False, **dataclasses.asdict(spec))
        for series in windows.series_splits:  # every series' test block begins and its validation ends on one date
            assert windows.dates[series["test"][0]] == dates[test_lo]
            assert windows.dates[series["validation"][0]] == dates[val_lo]


def test_calendar_columns_reach_the_network_unscaled_and_the_rest_scaled():
    import keras

    from keras_seq.data.calendar import add_calendar
    from keras_seq.data.windows import WindowSpec
    from keras_seq.models import ModelSpec
    from keras_seq.models.builders import build_forecaster

    dates = pd.date_range("2024-01-01", periods=40, freq="D")
    frame = add_calendar(pd.DataFrame({"y": 100 + np.arange(40.0) ** 1.5}, index=dates), ["dow", "month"])
    np.testing.assert_allclose(frame["dow_sin"] ** 2 + frame["dow_cos"] ** 2, 1.0)
    np.testing.assert_allclose(np.arctan2(frame["dow_sin"], frame["dow_cos"]) % (2 * np.pi),
                               2 * np.pi * dates.dayofweek / 7, atol=1e-9)
    x = frame.to_numpy("float32")[None, :8]  # one window: y, then four calendar columns
    for scaler in ("window", "zscore"):
        model = build_forecaster(ModelSpec(arch="gru", units=4, layers=1, scaler=scaler), WindowSpec(window=8), 5,
                                 target_index=0, unscaled=(1, 2, 3, 4))
        normalized, _ = model.get_layer("prepare")(keras.ops.convert_to_tensor(x))
        normalized = keras.ops.convert_to_numpy(normalized)
        np.testing.assert_array_equal(normalized[..., 1:], x[..., 1:])  # which weekday and month it is, as given
        if scaler == "window":  # (zscore here has no statistics set: the identity)
            assert np.abs(normalized[..., 0]).max() < 10  # the level of y is scaled away


def test_future_features_enter_a_window_for_the_dates_it_forecasts_and_no_later():
    """A window ending at t reads a future feature's values at t+1..t+horizon, a past one's only up to t."""
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"y": rng.normal(size=60).cumsum(), "past": rng.normal(size=60), "promo": rng.random(60)},
                         index=pd.date_range("2024-01-01", periods=60))
    options = dict(target="y", features=["y", "past"], window=6, horizon=2, future_features=["promo"], shuffle=False)
    windows = make_windows(frame, **options)
    assert windows.scaling.feature_names == ("y", "past", "promo+1", "promo+2")
    starts = windows.starts("test")
    x, _ = windows.gather(starts)
    ends = starts + 6 - 1  # each window's last row: its forecast time t
    np.testing.assert_array_equal(x[:, -1, 2], frame["promo"].to_numpy("float32")[ends + 1])
    np.testing.assert_array_equal(x[:, -1, 3], frame["promo"].to_numpy("float32")[ends + 2])
    t = int(ends[0])
    for column, first_unseen in (("promo", t + 3), ("past", t + 1), ("y", t + 1)):
        changed = frame.copy()
        changed.iloc[first_unseen:, changed.columns.get_loc(column)] += 1000.0
        x_changed, _ = make_windows(changed, **options).gather(starts[:1])
        np.testing.assert_array_equal(x_changed, x[:1], err_msg=column)  # nothing after what is known at t
    changed = frame.copy()
    changed.iloc[t + 2, changed.columns.get_loc("promo")] += 1000.0  # known in advance: seen
    assert not np.array_equal(make_windows(changed, **options).gather(starts[:1])[0], x[:1])


def test_a_model_with_future_features_predicts_from_values_given_for_the_dates_ahead(run_cli, tmp_path):
    rng = np.random.default_rng(0)
    parts = []
    for store, level in (("A", 100.0), ("B", 50.0)):
        promo = (rng.random(80) < 0.3).astype(float)
        parts.append(pd.DataFrame({"date": pd.date_range("2020-01-01", periods=80), "store": store, "promo": promo,
                                   "sales": level * (1 + 0.1 * promo) + rng.normal(size=80).cumsum() * 0.1}))
    pd.concat(parts).to_csv(tmp_path / "sales.csv", index=False)
    code, out, err = run_cli("fit", "--data", tmp_path / "sales.csv", "--target", "sales", "--series-column", "store",
                             "--series", "all", "--future-features", "promo", "--arch", "gru", "--units", "4",
                             "--layers", "1", "--epochs", "1", "--window", "8", "--out", tmp_path / "runs", "-q")
    assert code == 0, err
    (run_dir,) = (tmp_path / "runs").iterdir()
    code, out, err = run_cli("export", run_dir, "--format", "onnx")
    assert code == 0, err
    card = json.loads((run_dir / "export" / "model_card.json").read_text())
    assert card["features"] == ["sales", "promo+1"] and list(card["future_inputs"]) == ["promo+1"]
    code, out, err = run_cli("predict", run_dir)
    assert code == 1 and "this model reads promo for the dates it forecasts: give --future" in err
    future = tmp_path / "future.csv"
    future.write_text("date,store,promo\n2020-03-21,A,1\n2020-03-21,B,0\n")
    tables = []
    for artifact in (run_dir, run_dir / "export" / "model.onnx"):
        code, out, err = run_cli("predict", artifact, "--future", future, "--csv", tmp_path / "f.csv")
        assert code == 0, err
        tables.append(pd.read_csv(tmp_path / "f.csv"))
    assert list(tables[0]["store"]) == ["A", "B"] and list(tables[0]["date"]) == ["2020-03-21"] * 2
    np.testing.assert_allclose(tables[0]["sales"], tables[1]["sales"], rtol=1e-4)
    future.write_text("date,store,promo\n2020-03-22,A,1\n2020-03-21,B,0\n")
    code, out, err = run_cli("predict", run_dir, "--future", future)
    assert code == 1 and "--future has no promo for 2020-03-21 of series A" in err and len(err.strip().splitlines()) == 1


def test_split_dates_cut_every_series_at_the_days_given():
    from keras_seq.errors import KerasSeqError

    frame = DataSpec(source=str(LONG), target="price", series_column="symbol", series="all").load()
    windows = make_windows(frame, target="price", window=8, series_column="symbol", shuffle=False,
                           split_dates=("2020-03-01", "2020-04-01"))
    for rows in windows.series_splits:
        assert str(windows.dates[rows["validation"][0]].date()) == "2020-03-01"
        assert str(windows.dates[rows["test"][0]].date()) == "2020-04-01"
        assert windows.dates[rows["validation"][0] - 1] < pd.Timestamp("2020-03-01")
    with pytest.raises(KerasSeqError, match="no series has a window in the test split .`split_dates` 2020-03-01,2021-01-01"):
        make_windows(frame, target="price", window=8, series_column="symbol", split_dates=("2020-03-01", "2021-01-01"))
    with pytest.raises(KerasSeqError, match="`split_dates` must be two dates in order"):
        make_windows(frame, target="price", window=8, series_column="symbol", split_dates=("2020-04-01", "2020-03-01"))


def test_a_clean_long_table_loads_in_a_few_passes_exactly_as_series_by_series(tmp_path):
    """The quick path of a clean table gives the per-series path's frame; anything unusual takes the careful path."""
    from keras_seq.data.reading import read_csv_frame, sorted_unique
    from keras_seq.data.sources import _finish_panel, _quick_panel, _series_parts

    rng = np.random.default_rng(3)
    rows = [pd.DataFrame({"date": pd.date_range("2021-01-01", periods=20 + k), "id": f" s{k} ", "y": rng.normal(size=20 + k),
                          "x": rng.integers(0, 5, size=20 + k)}) for k in range(6)]
    table = pd.concat(rows).sample(frac=1.0, random_state=0).sort_values("date", kind="stable")  # interleaved by date
    table.to_csv(tmp_path / "t.csv", index=False)
    raw = read_csv_frame(tmp_path / "t.csv", "t.csv", None)
    start, end = pd.Timestamp("2021-01-05"), pd.Timestamp("2021-01-22")
    for wanted in ("all", ("s4", "s1")):
        parts = [(sid, sorted_unique(part, "t")) for sid, part in _series_parts(raw, "t", "id", wanted)]
        careful = _finish_panel(parts, start, end, "t", ["x", "y"], None, "id")
        pd.testing.assert_frame_equal(_quick_panel(raw, "id", wanted, start, end, ["x", "y"]), careful)
    loaded = DataSpec(source=str(tmp_path / "t.csv"), target="y", features=("x", "y"), series_column="id", series="all")
    assert list(dict.fromkeys(loaded.load()["id"])) == [f"s{k}" for k in range(6)]
    late = raw.copy()
    late.iloc[3, late.columns.get_loc("y")] = np.nan  # a missing value: the careful path refuses or fills it
    assert _quick_panel(late, "id", "all", None, None, ["y"]) is None
    repeated = pd.concat([raw, raw.iloc[:1]])  # a date twice in one series
    assert _quick_panel(repeated, "id", "all", None, None, ["y"]) is None
    assert _quick_panel(raw, "id", ("s1", "nope"), None, None, ["y"]) is None
    # rows numbered by steps: the same frame both ways, and a series with a gap in its steps takes the careful path
    table.assign(date=table.groupby("id").cumcount() + 1).rename(columns={"date": "t"}).to_csv(tmp_path / "s.csv",
                                                                                               index=False)
    steps = read_csv_frame(tmp_path / "s.csv", "s.csv", None)
    parts = [(sid, sorted_unique(part, "s")) for sid, part in _series_parts(steps, "s", "id", "all")]
    pd.testing.assert_frame_equal(_quick_panel(steps, "id", "all", 3, 15, ["x", "y"]),
                                  _finish_panel(parts, 3, 15, "s", ["x", "y"], None, "id"))
    gap = steps[~((steps["id"].str.strip() == "s0") & (steps.index == 5))]
    assert _quick_panel(gap, "id", "all", None, None, ["y"]) is None
