"""The M competitions' protocol (issue 34): series numbered by integer steps, each series' own holdout
(`split_steps`), and what a series too short for it gets."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keras_seq.data.sources import DataSpec
from keras_seq.data.windows import SPLIT_NAMES, make_windows, split_by_steps
from keras_seq.errors import DataWarning, KerasSeqError

OFFSET = 1000.0  # row r of the stacked panel holds OFFSET + r: a value names its row


def step_panel(lengths, first_steps=None) -> pd.DataFrame:
    """A long frame of series s0, s1, ... of `lengths` rows, numbered by steps from `first_steps` (default 1)."""
    parts, row = [], 0
    for k, n in enumerate(lengths):
        first = 1 if first_steps is None else first_steps[k]
        index = pd.Index(np.arange(first, first + n), name="step")
        parts.append(pd.DataFrame({"id": f"s{k}", "y": OFFSET + row + np.arange(n, dtype="float64")}, index=index))
        row += n
    return pd.concat(parts)


def test_each_series_is_held_out_from_its_own_end():
    frame = step_panel([20, 14, 9], first_steps=[1, 40, 5])  # three lengths, ending on different steps
    windows = make_windows(frame, target="y", window=3, horizon=2, series_column="id", split_steps=(2, 4),
                           shuffle=False)
    assert windows.series_splits == (
        {"train": (0, 14), "validation": (14, 16), "test": (16, 20)},
        {"train": (20, 28), "validation": (28, 30), "test": (30, 34)},
        {"train": (34, 37), "validation": (37, 39), "test": (39, 43)},
    )
    # every series' test targets are its last 4 steps, whatever step it ends on
    last_steps = {int(windows.dates[rows["test"][1] - 1]) for rows in windows.series_splits}
    assert last_steps == {20, 53, 13}
    assert windows.split_dates()["test"] == {"rows": 4, "windows": 9, "first": "17", "last": "20"}
    # TEST 0: every row trains except the last VAL, which validate; the test split is empty
    fitted_on_all = make_windows(frame, target="y", window=3, series_column="id", split_steps=(3, 0))
    assert [rows["test"][1] - rows["test"][0] for rows in fitted_on_all.series_splits] == [0, 0, 0]
    assert fitted_on_all.count("test") == 0 and fitted_on_all.count("validation") == 9
    with pytest.raises(KerasSeqError, match="`split_steps` cuts each series' own last steps and `split_dates`"):
        make_windows(frame, target="y", series_column="id", split_steps=(2, 2), split_dates=("2020-01-01", "2021-01-01"))
    with pytest.raises(KerasSeqError, match="`split_dates` cuts dated rows, and the data is numbered by steps"):
        make_windows(frame, target="y", window=3, series_column="id", split_dates=("2020-01-01", "2021-01-01"))


def test_a_series_no_longer_than_its_holdout_is_named_and_left_out_of_training():
    frame = step_panel([30, 8, 30])
    with pytest.warns(DataWarning, match=r"1 of 3 series have no more rows than `split_steps` 4,4 holds out: they are "
                                         r"left out of training and validation, and still forecast .*: s1 \(8 rows\)"):
        windows = make_windows(frame, target="y", window=3, series_column="id", split_steps=(4, 4), shuffle=False)
    rows = windows.series_splits[1]
    assert rows["train"][1] == rows["train"][0] and rows["validation"][1] == rows["validation"][0]
    assert rows["test"] == (34, 38)  # its last 4 rows are still its test split, windows reaching back into its own rows
    assert windows.count("test") == 3 * 4
    assert list(windows.series_ids) == ["s0", "s1", "s2"]
    with pytest.raises(KerasSeqError, match="`split_steps` 0,4 leaves nothing to validate on"):
        make_windows(frame, target="y", window=3, series_column="id", split_steps=(0, 4))
    with pytest.raises(KerasSeqError, match="no series has a window in the train split .`split_steps` 4,24"):
        with pytest.warns(DataWarning, match="1 of 3 series"):  # s0 and s2 keep 2 training rows, s1 none
            make_windows(frame, target="y", window=3, series_column="id", split_steps=(4, 24))


@settings(max_examples=30, deadline=None)
@given(lengths=st.lists(st.integers(8, 40), min_size=1, max_size=4), validation=st.integers(1, 6),
       test=st.integers(0, 6), window=st.integers(2, 5), horizon=st.integers(1, 3))
def test_no_held_out_value_of_any_series_reaches_training(lengths, validation, test, window, horizon):
    frame = step_panel(lengths)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataWarning)  # a series no longer than the holdout: named in a warning
            windows = make_windows(frame, target="y", window=window, horizon=horizon, series_column="id",
                                   shuffle=False, split_steps=(validation, test))
    except KerasSeqError as exc:  # refused only where some split asked for holds no window of any series
        assert "no series has a window" in str(exc) or "no training rows" in str(exc)
        return
    for rows, n in zip(windows.series_splits, lengths):  # the holdout counted from each series' own end
        first, end = rows["train"][0], rows["test"][1]
        assert end - first == n and rows["test"][1] - rows["test"][0] == min(test, n)
        if n > validation + test:
            assert rows["validation"][1] - rows["validation"][0] == validation
    for split in SPLIT_NAMES:
        starts = windows.starts(split)
        if not len(starts):
            continue
        x, y = windows.gather(starts)
        for start, inputs, targets in zip(starts, x, y):
            (rows,) = [r for r in windows.series_splits if r["train"][0] <= start < r["test"][1]]
            lo, hi = rows[split]
            assert ((targets >= OFFSET + lo) & (targets < OFFSET + hi)).all()  # its targets in its own split
            assert (inputs < OFFSET + hi).all() and (inputs >= OFFSET + rows["train"][0]).all()  # never later, own series
            if split == "train":
                assert (inputs >= OFFSET + lo).all()
    # the scaling sees the training rows only: changing every held-out value leaves it unchanged
    held_out = np.zeros(len(frame), dtype=bool)
    for rows in windows.series_splits:
        held_out[rows["validation"][0]:rows["test"][1]] = True
    changed = frame.assign(y=np.where(held_out, frame["y"] * 1000, frame["y"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        again = make_windows(changed, target="y", window=window, horizon=horizon, series_column="id",
                             split_steps=(validation, test))
    assert again.scaling == windows.scaling


def test_split_by_steps_takes_what_a_short_series_has():
    splits, short = split_by_steps([(0, 3)], 2, 5)
    assert splits == [{"train": (0, 0), "validation": (0, 0), "test": (0, 3)}] and short == [0]


def test_a_competition_style_panel_fits_evaluates_and_predicts_by_step(run_cli, write_csv, tmp_path):
    rng = np.random.default_rng(1)
    rows = []
    for k, n in enumerate((40, 33, 47)):
        steps = np.arange(1, n + 1) + 5 * k
        values = 50 + 10 * k + 0.3 * steps + 4 * np.sin(2 * np.pi * steps / 4) + rng.normal(0, 0.5, n)
        rows += [f"S{k},{t},{v:.4f}" for t, v in zip(steps, values)]
    path = write_csv("series,t,value\n" + "\n".join(rows) + "\n", name="m3like.csv")
    code, out, err = run_cli("fit", "--data", path, "--series-column", "series", "--series", "all", "--target", "value",
                             "--window", "6", "--horizon", "4", "--split-steps", "4,4", "--season", "4", "--units", "4",
                             "--layers", "1", "--epochs", "1", "--out", tmp_path / "runs", "-q")
    assert code == 0, err
    (run_dir,) = (tmp_path / "runs").iterdir()
    config = json.loads((run_dir / "config.json").read_text())
    assert config["windows"]["split_steps"] == [4, 4] and config["data"]["first_date"] == "1"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["windows"] == 3 and sorted(metrics["per_series"]) == ["S0", "S1", "S2"]  # one test window each
    assert "OWA" in out and "Season 4 (given)" in out
    code, out, err = run_cli("predict", run_dir, "--csv", tmp_path / "ahead.csv")
    assert code == 0, err
    ahead = pd.read_csv(tmp_path / "ahead.csv")
    assert list(ahead.columns) == ["series", "step", "value"]
    assert ahead.groupby("series")["step"].apply(list).to_dict() == {"S0": [41, 42, 43, 44], "S1": [39, 40, 41, 42],
                                                                     "S2": [58, 59, 60, 61]}
    code, out, err = run_cli("fit", "--data", path, "--series-column", "series", "--series", "all", "--target", "value",
                             "--calendar", "month", "--out", tmp_path / "no")
    assert code == 1 and "--calendar makes inputs from dates, and the data is numbered by steps" in err
    assert not (tmp_path / "no").exists()
    code, out, err = run_cli("fit", "--data", path, "--split-steps", "4", "--out", tmp_path / "no")
    assert code == 2 and "expected two whole numbers of steps like 18,18" in err


def test_a_recipe_names_split_steps(tmp_path):
    from keras_seq.workflows.recipe import load_recipe

    path = tmp_path / "m3.toml"
    path.write_text('description = "M3 monthly, each series\' last 18 months held out"\n'
                    '[windows]\nwindow = 12\nhorizon = 18\nsplit_steps = [18, 18]\n')
    (experiment,) = load_recipe(path).experiments
    assert experiment.windows.split_steps == (18, 18)
    path.write_text('description = "x"\n[windows]\nsplit_steps = [18, -1]\n')
    with pytest.raises(KerasSeqError, match="split_steps"):
        load_recipe(path)


# === Every series gets a forecast: left-padding masked inside the model (issue 34, item 3) ===


@settings(max_examples=25, deadline=None)
@given(lengths=st.lists(st.integers(3, 30), min_size=1, max_size=4), window=st.integers(2, 8),
       horizon=st.integers(1, 2))
def test_a_padded_window_begins_with_missing_values_never_another_series(lengths, window, horizon):
    frame = step_panel(lengths)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        try:
            windows = make_windows(frame, target="y", window=window, horizon=horizon, series_column="id", pad=True,
                                   split_steps=(horizon, horizon), shuffle=False)
        except KerasSeqError as exc:
            assert any(words in str(exc) for words in ("no series has a window", "no training rows",
                                                       "every series is shorter"))
            return
    firsts = {f"s{k}": row for k, row in enumerate(np.cumsum([0, *lengths[:-1]]))}  # first value's row, unpadded
    sizes = {f"s{k}": n for k, n in enumerate(lengths)}
    for split in SPLIT_NAMES:
        starts = windows.starts(split)
        if not len(starts):
            continue
        x, y = windows.gather(starts)
        which = windows.series_of(starts)
        for inputs, targets, k in zip(x[..., 0], y, which):
            known = inputs[~np.isnan(inputs)]
            name = windows.series_ids[k]
            first = OFFSET + firsts[name]
            assert len(known) >= -(-window // 2) and np.isnan(inputs[: window - len(known)]).all()  # half observed
            assert (known >= first).all() and (known < first + sizes[name]).all()  # values of its own series only
            assert np.all(np.diff(np.concatenate([known, targets])) == 1)  # consecutive, the targets right after
    # the baselines and the scaling read the series' own values, never the padding
    rows = windows.series_splits[0]
    assert not np.isnan(windows.target_values[rows["train"][0]:rows["test"][1]]).any()
    assert np.isfinite(windows.scaling.target_mean)


def test_a_masked_model_reads_no_number_under_a_missing_value_and_exports_with_parity(run_cli, write_csv, tmp_path):
    import onnxruntime as ort

    from keras_seq.models.builders import load_model

    rng = np.random.default_rng(2)
    rows = []
    for k, n in enumerate((3, 7, 30, 41)):  # two series shorter than the window
        values = 20 + 5 * k + np.cumsum(rng.normal(0, 1, n))
        rows += [f"S{k},{t},{v:.4f}" for t, v in zip(range(1, n + 1), values)]
    path = write_csv("series,t,value\n" + "\n".join(rows) + "\n", name="short.csv")
    flags = ["--data", path, "--series-column", "series", "--series", "all", "--target", "value", "--window", "10",
             "--horizon", "2", "--split-steps", "2,2", "--units", "4", "--layers", "1", "--epochs", "1"]
    code, out, err = run_cli("fit", *flags, "--pad", "--out", tmp_path / "runs", "-q")
    assert code == 0, err
    (run_dir,) = (tmp_path / "runs").iterdir()
    # a padded training window reads at least half a window of values (5 here): S1's 7 rows give it a test window,
    # S0's 3 none (it is still forecast below)
    assert sorted(json.loads((run_dir / "metrics.json").read_text())["per_series"]) == ["S1", "S2", "S3"]
    model = load_model(run_dir / "model.keras")
    window = np.full((3, 10, 1), np.nan, "float32")
    window[0, 7:, 0], window[1, 2:, 0], window[2, :, 0] = [5, 6, 7], np.arange(8) + 3, np.arange(10) + 1
    normalized, _ = model.get_layer("prepare")(window)
    normalized = np.asarray(normalized)
    assert normalized.shape == (3, 10, 2)  # the value and its observed flag
    assert (normalized[0, :7] == 0).all() and (normalized[0, 7:, 1] == 1).all() and (normalized[1, :2] == 0).all()
    assert np.isfinite(np.asarray(model.predict(window, verbose=0))).all()
    code, out, err = run_cli("export", run_dir, "--format", "onnx,savedmodel")
    assert code == 0 and "onnx" in out and "savedmodel" in out, err
    session = ort.InferenceSession(str(run_dir / "export" / "model.onnx"))
    np.testing.assert_allclose(session.run(None, {session.get_inputs()[0].name: window})[0],
                               model.predict(window, verbose=0), rtol=1e-4, atol=1e-4)
    code, out, err = run_cli("predict", run_dir / "export" / "model.onnx", "--csv", tmp_path / "all.csv")
    assert code == 0, err
    forecast = pd.read_csv(tmp_path / "all.csv")
    assert forecast.groupby("series")["step"].min().to_dict() == {"S0": 4, "S1": 8, "S2": 31, "S3": 42}
    # without `pad` the short series are named and left out of training (and of the forecast: `predict`'s test)
    frame = DataSpec(source=str(path), target="value", series_column="series", series="all").load()
    with pytest.warns(DataWarning, match=r"2 of 4 series are shorter than one window's 12 steps and were left out "
                                         r"\(`pad` keeps every series"):
        make_windows(frame, target="value", window=10, horizon=2, series_column="series", split_steps=(2, 2))
