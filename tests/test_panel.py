"""Several series of a long table in one global model: reading, windows that stay inside their series, and a
report per series (the first part of the many-series work)."""

from __future__ import annotations

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


def test_a_global_model_fits_reports_each_series_and_exports(run_cli, tmp_path):
    code, out, err = run_cli("fit", "--data", LONG, "--target", "price", "--series-column", "symbol", "--series", "all",
                             "--arch", "gru", "--units", "4", "--layers", "1", "--epochs", "1", "--out", tmp_path, "-q")
    assert code == 0, err
    (run_dir,) = tmp_path.iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert sorted(metrics["per_series"]) == ["AAPL", "IBM", "MSFT"] and metrics["windows"] == 54
    assert sum(m["windows"] for m in metrics["per_series"].values()) == 54
    assert "3 series: MASE mean " in out and "skill vs each one's persistence" in out
    code, out, err = run_cli("export", run_dir, "--format", "onnx")
    assert code == 0 and "over 54 test windows" in out, err
    code, out, err = run_cli("predict", run_dir)
    assert code == 1 and "was trained on several series" in err and len(err.strip().splitlines()) == 1
