"""keras_seq/data/windows.py: alignment, splits and leakage, against numpy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from keras_seq.data.windows import SPLIT_NAMES, WindowSpec, fit_scaling, make_windows, split_rows
from keras_seq.errors import KerasSeqError

OFFSET = 1000.0  # row r holds the value OFFSET + r, so a value names its row


def numbered_frame(n_rows: int, n_extra: int = 0) -> pd.DataFrame:
    rows = np.arange(n_rows, dtype="float64")
    columns = {"y": OFFSET + rows}
    for k in range(n_extra):
        columns[f"f{k}"] = -(OFFSET + rows) * (k + 2)
    return pd.DataFrame(columns, index=pd.date_range("2000-01-01", periods=n_rows, name="Date"))


def reference_windows(values: np.ndarray, target: np.ndarray, lo: int, hi: int, window, horizon, kind, stride, is_train):
    """Plain numpy: every window whose targets all lie in rows [lo, hi)."""
    xs, ys = [], []
    for start in range(0, len(target)):
        if kind == "next":
            end, targets = start + window + horizon, target[start + window : start + window + horizon]
            first_target = start + window
        else:
            end, targets = start + window + 1, target[start + 1 : start + window + 1][:, None]
            first_target = start + 1
        if end > hi or first_target < lo or (is_train and start < lo):
            continue
        xs.append(values[start : start + window])
        ys.append(targets)
    first = next((i for i in range(len(xs))), None)
    if first is None:
        return np.zeros((0,)), np.zeros((0,))
    return np.stack(xs)[::stride], np.stack(ys)[::stride]


def collect(dataset):
    xs, ys = [], []
    for x, y in dataset:
        xs.append(x.numpy())
        ys.append(y.numpy())
    return np.concatenate(xs), np.concatenate(ys)


window_cases = st.fixed_dictionaries(
    {
        "n_rows": st.integers(60, 240),
        "window": st.integers(2, 12),
        "horizon": st.integers(1, 4),
        "kind": st.sampled_from(["next", "sequence"]),
        "stride": st.integers(1, 3),
        "batch_size": st.sampled_from([1, 7, 32]),
        "n_extra": st.integers(0, 2),
    }
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=window_cases)
@example(case={"n_rows": 60, "window": 10, "horizon": 1, "kind": "sequence", "stride": 1, "batch_size": 1, "n_extra": 0})
def test_every_window_and_target_matches_numpy(case):
    horizon = case["horizon"] if case["kind"] == "next" else 1
    frame = numbered_frame(case["n_rows"], case["n_extra"])
    features = [*(f"f{k}" for k in range(case["n_extra"])), "y"]
    values, target = frame[features].to_numpy(), frame["y"].to_numpy()
    rows = split_rows(case["n_rows"], (0.7, 0.15, 0.15))
    wanted = {
        name: reference_windows(values, target, lo, hi, case["window"], horizon, case["kind"], case["stride"], name == "train")
        for name, (lo, hi) in rows.items()
    }
    options = dict(target="y", features=features, window=case["window"], horizon=horizon, target_kind=case["kind"],
                   sequence_stride=case["stride"], batch_size=case["batch_size"], seed=0, normalize=False)
    if any(len(want_x) == 0 for want_x, _ in wanted.values()):  # some split holds no whole window
        with pytest.raises(KerasSeqError, match="the series is too short"):
            make_windows(frame, **options)
        return
    windows = make_windows(frame, **options)
    for name in SPLIT_NAMES:
        want_x, want_y = wanted[name]
        got_x, got_y = collect(windows.dataset(name))
        if name == "train":  # shuffled: restore time order by the first value of each window
            order = np.argsort(got_x[:, 0, -1])
            got_x, got_y = got_x[order], got_y[order]
        np.testing.assert_array_equal(got_x, want_x)
        np.testing.assert_array_equal(got_y, want_y)
        np.testing.assert_array_equal(windows.targets(name), want_y.reshape(len(want_y), -1))
        # The numpy gather behind fit's array batches yields the same windows.
        gathered_x, gathered_y = windows.gather(windows.starts(name))
        np.testing.assert_array_equal(gathered_x, want_x)
        np.testing.assert_array_equal(gathered_y, want_y)


@settings(max_examples=25, deadline=None)
@given(case=window_cases)
def test_no_validation_or_test_value_reaches_training(case):
    horizon = case["horizon"] if case["kind"] == "next" else 1
    frame = numbered_frame(case["n_rows"])
    try:
        windows = make_windows(
            frame, target="y", window=case["window"], horizon=horizon, target_kind=case["kind"],
            sequence_stride=case["stride"], batch_size=case["batch_size"], seed=1, normalize=False,
        )
    except KerasSeqError as exc:  # when it is raised is checked against numpy in the test above
        assert "the series is too short" in str(exc)
        return
    train_end = windows.split_rows["train"][1]
    x, y = collect(windows.train)
    assert x.max() < OFFSET + train_end and y.max() < OFFSET + train_end
    # Validation and test targets lie in their own split; inputs never come from a later split.
    for name in ("validation", "test"):
        lo, hi = windows.split_rows[name]
        x, y = collect(windows.dataset(name))
        assert y.min() >= OFFSET + lo and y.max() < OFFSET + hi
        assert x.max() < OFFSET + hi
    # The scaling sees the training rows only: changing every later row leaves it unchanged.
    changed = frame.copy()
    changed.iloc[train_end:, 0] *= 1000
    again = make_windows(changed, target="y", window=case["window"], horizon=horizon, target_kind=case["kind"])
    assert again.scaling == windows.scaling
    assert windows.scaling.target_mean == pytest.approx(OFFSET + (train_end - 1) / 2)


def test_normalized_windows_are_z_scores_of_raw_windows(price_frame):
    kwargs = dict(target="Close", features=["Volume", "Close"], window=5, horizon=2, batch_size=64)
    raw = make_windows(price_frame, normalize=False, **kwargs)
    normalized = make_windows(price_frame, normalize=True, **kwargs)
    s = normalized.scaling
    x_raw, y_raw = collect(raw.test)
    x, y = collect(normalized.test)
    np.testing.assert_allclose(x, (x_raw - np.array(s.feature_mean)) / np.array(s.feature_std), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(y, (y_raw - s.target_mean) / s.target_std, rtol=1e-5, atol=1e-5)
    train = price_frame.iloc[: raw.split_rows["train"][1]]
    assert s.feature_std[0] == pytest.approx(train["Volume"].std(ddof=0))
    assert s.target_mean == pytest.approx(train["Close"].mean())


def test_only_training_is_shuffled_and_the_shuffle_is_seeded(price_frame):
    def first_values(split, seed):
        w = make_windows(price_frame, target="Close", window=4, batch_size=8, seed=seed, normalize=False, shuffle=True)
        return collect(w.dataset(split))[0][:, 0, 0], w

    train, w = first_values("train", 7)
    in_time_order = price_frame["Close"].to_numpy(dtype="float32")[w.starts("train")]
    assert not np.array_equal(train, in_time_order) and np.array_equal(np.sort(train), np.sort(in_time_order))
    np.testing.assert_array_equal(train, first_values("train", 7)[0])
    assert not np.array_equal(train, first_values("train", 8)[0])
    for split in ("validation", "test"):
        values, w = first_values(split, 7)
        np.testing.assert_array_equal(values, price_frame["Close"].to_numpy(dtype="float32")[w.starts(split)])


def test_epoch_order_is_a_fresh_permutation_fixed_by_seed_and_epoch(price_frame):
    windows = make_windows(price_frame, target="Close", window=4, batch_size=8, seed=7)
    starts = windows.starts("train")
    orders = [windows.epoch_starts("train", epoch) for epoch in range(3)]
    for order in orders:
        np.testing.assert_array_equal(np.sort(order), starts)  # every window once per epoch
    assert not np.array_equal(orders[0], orders[1]) and not np.array_equal(orders[1], orders[2])
    again = make_windows(price_frame, target="Close", window=4, batch_size=8, seed=7)
    np.testing.assert_array_equal(again.epoch_starts("train", 1), orders[1])  # epoch 1 replays on its own
    other = make_windows(price_frame, target="Close", window=4, batch_size=8, seed=8)
    assert not np.array_equal(other.epoch_starts("train", 1), orders[1])
    for split in ("validation", "test"):
        np.testing.assert_array_equal(windows.epoch_starts(split, 2), windows.starts(split))
    in_order = make_windows(price_frame, target="Close", window=4, seed=7, shuffle=False)
    np.testing.assert_array_equal(in_order.epoch_starts("train", 2), in_order.starts("train"))


def test_evaluation_windows_keep_the_train_split_in_time_order(price_frame):
    raw = make_windows(price_frame, target="Close", window=4, batch_size=8, seed=7, shuffle=False)
    assert not raw.shuffled and make_windows(price_frame, target="Close", window=4).shuffled
    values = collect(raw.train)[0][:, 0, 0]
    np.testing.assert_array_equal(values, price_frame["Close"].to_numpy(dtype="float32")[raw.starts("train")])


def test_windows_are_a_tf_data_pipeline_with_known_length(price_frame):
    w = make_windows(price_frame, target="Close", window=16, batch_size=16)
    assert isinstance(w.train, tf.data.Dataset)
    n_train = len(w.starts("train"))
    assert int(w.train.cardinality()) == -(-n_train // 16)
    x, y = next(iter(w.train))
    assert x.dtype == tf.float32 and tuple(x.shape) == (16, 16, 1) and tuple(y.shape) == (16, 1)


def test_sequence_targets_are_the_window_shifted_by_one(price_frame):
    w = make_windows(price_frame, target="Close", window=6, target_kind="sequence", batch_size=4, normalize=False)
    x, y = collect(w.test)
    assert y.shape == (len(x), 6, 1)
    np.testing.assert_array_equal(x[:, 1:, 0], y[:, :-1, 0])


def test_persistence_positions_are_the_last_known_value():
    w = make_windows(numbered_frame(100), target="y", window=5, horizon=3, normalize=False)
    observed, targets = w.observed_positions("test"), w.target_positions("test")
    assert np.all(observed[:, 0] == targets[:, 0] - 1) and np.all(observed == observed[:, :1])
    seq = make_windows(numbered_frame(100), target="y", window=5, target_kind="sequence", normalize=False)
    assert np.all(seq.observed_positions("test") == seq.target_positions("test") - 1)


def test_split_rows_are_chronological_and_cover_everything():
    rows = split_rows(1258, (0.7, 0.15, 0.15))
    assert rows == {"train": (0, 881), "validation": (881, 1070), "test": (1070, 1258)}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(window=1), "`window` must be an integer of at least 2. Received: window=1"),
        (dict(horizon=0), "`horizon` must be an integer of at least 1"),
        (dict(target_kind="past"), "unknown target kind 'past'. Expected one of: next, sequence"),
        (dict(target_kind="sequence", horizon=3), "target kind 'sequence' .* `horizon` must be 1"),
        (dict(splits=(0.5, 0.5, 0.5)), "`splits` must be three non-negative fractions .* sum to 1"),
        (dict(sequence_stride=0), "`stride` must be an integer of at least 1"),
        (dict(batch_size=0), "`batch_size` must be an integer of at least 1"),
        (dict(window=250), r"too short: 300 rows split 70/15/15 leave the train split 210 rows, not enough for one window of 251 steps"),
        (dict(horizon=46), r"too short: .* leave the validation split 45 rows, not enough for one window of 62 steps"),
    ],
)
def test_bad_window_options(price_frame, kwargs, message):
    with pytest.raises(KerasSeqError, match=message):
        make_windows(price_frame, target="Close", **kwargs)


def test_window_spec_checks_on_creation():
    with pytest.raises(KerasSeqError, match="`window` must be"):
        WindowSpec(window=0)
    assert WindowSpec(splits=[0.8, 0.1, 0.1]).splits == (0.8, 0.1, 0.1)


def test_constant_training_split_is_refused(price_frame):
    price_frame["Flat"] = 5.0
    with pytest.raises(KerasSeqError, match="column 'Flat' is constant over the training split .* cannot be standardized"):
        fit_scaling(price_frame, ["Flat"], "Close", (0, 100))


def test_a_panel_of_two_series_keeps_windows_inside_each_series_and_cuts_both_at_the_same_dates():
    """Two series stacked (the second starts later and is shorter): the one index serves tf.data and numpy alike."""
    import dataclasses

    from keras_seq.data.windows import _pipelines, _target_offsets, split_by_dates

    long, short = numbered_frame(90), numbered_frame(100).iloc[30:]  # 2000-01-01..03-30 and 2000-01-31..04-09
    short = short.assign(y=short["y"] + 1000.0)  # values name their series too
    single = make_windows(long, target="y", window=4, horizon=2, batch_size=8, normalize=False)
    dates = long.index.append(short.index)
    bounds = [(0, len(long)), (len(long), len(long) + len(short))]
    splits = (0.6, 0.2, 0.2)
    panel = dataclasses.replace(
        single, dates=dates, target_values=np.concatenate([long["y"], short["y"]]),
        series=np.concatenate([single.series, short[["y"]].to_numpy("float32")]),  # a univariate series: one column
        series_ids=("long", "short"), series_splits=tuple(split_by_dates(dates, bounds, splits)))
    union = dates.unique().sort_values()
    cut = split_rows(len(union), splits)
    _, span = _target_offsets(4, 2, "next")
    for name in SPLIT_NAMES:
        starts = panel.starts(name)
        series = np.searchsorted([end for _, end in bounds], starts, side="right")  # the series each window is in
        assert len(set(series)) == 2, name  # both series have windows in every split
        for start, k in zip(starts, series):
            assert bounds[k][0] <= start and start + span <= bounds[k][1]  # never across two series
            lo, hi = union[cut[name][0]], union[cut[name][1] - 1]
            target_dates = dates[start + 4 : start + span]
            assert (target_dates >= lo).all() and (target_dates <= hi).all()  # the same cut dates in both series
        x, y = panel.gather(starts)
        assert ((x[:, :, 0] >= OFFSET + 1000) == (series == 1)[:, None]).all()  # inputs come from their own series
        if name != "train":
            pipeline = _pipelines(panel)[name]
            got = [np.concatenate(parts) for parts in zip(*[(bx.numpy(), by.numpy()) for bx, by in pipeline])]
            np.testing.assert_array_equal(got[0], x)
            np.testing.assert_array_equal(got[1], y)
    # one series alone: split by dates is split by rows
    assert single.split_rows == split_rows(len(long), (0.7, 0.15, 0.15)) and single.series_splits == (single.split_rows,)
