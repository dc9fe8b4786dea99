"""A model that reads the series: per-series statistics stored in it and a learned vector per series, selected by a
second input, the series index; a series not seen in training falls back to its window's scaling and the mean
vector, in Keras, ONNX and the SavedModel alike."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import REPO
from keras_seq.data.sources import DataSpec
from keras_seq.data.windows import make_windows, series_statistics, series_vocabulary, with_series_index
from keras_seq.errors import KerasSeqError

LONG = REPO / "tests" / "bad_inputs" / "files" / "long_table.csv"  # AAPL, IBM, MSFT: 120 days each


def test_a_known_series_is_scaled_by_its_own_statistics_and_an_unseen_one_by_its_window():
    from keras_seq.models.layers import PrepareWindow
    from keras_seq.models.scalers import get_scaler

    rng = np.random.default_rng(0)
    x = (rng.normal(size=(4, 6, 2)) * [3.0, 0.5] + [100.0, 7.0]).astype("float32")
    index = np.array([1, 2, 0, 9], dtype="int32")  # 9: outside the table, read as unseen
    layer = PrepareWindow(scaler="series", target_index=0, series_count=2)
    layer([x, index])
    mean, std = np.array([[90.0, 6.0], [110.0, 8.0]]), np.array([[2.0, 0.5], [4.0, 1.0]])
    get_scaler("series").set_series_statistics(layer, mean, std)
    normalized, stats = (np.asarray(v) for v in layer([x, index]))
    window_normalized, window_stats = (np.asarray(v) for v in PrepareWindow(scaler="window", target_index=0)(x))
    for row, k in ((0, 0), (1, 1)):
        np.testing.assert_allclose(normalized[row], (x[row] - mean[k]) / std[k], rtol=1e-5)
        np.testing.assert_allclose(stats[row], [x[row, -1, 0], mean[k, 0], std[k, 0]], rtol=1e-5)
    np.testing.assert_allclose(normalized[2:], window_normalized[2:], rtol=1e-5)
    np.testing.assert_allclose(stats[2:], window_stats[2:], rtol=1e-5)
    with pytest.raises(ValueError, match="expected statistics of shape"):
        get_scaler("series").set_series_statistics(layer, mean[:1], std[:1])


def test_an_unseen_series_reads_the_mean_of_the_learned_vectors():
    from keras_seq.models.layers import SeriesEmbedding

    layer = SeriesEmbedding(3, 2)
    normalized = np.zeros((3, 4, 1), dtype="float32")
    layer([normalized, np.zeros(3, dtype="int32")])
    table = np.array([[50.0, 50.0], [1.0, 2.0], [3.0, 4.0], [5.0, 9.0]], dtype="float32")  # row 0 is never read
    layer.table.assign(table)
    out = np.asarray(layer([normalized, np.array([2, 0, -1], dtype="int32")]))
    assert out.shape == (3, 4, 3)
    np.testing.assert_allclose(out[0, :, 1:], np.tile(table[2], (4, 1)))
    np.testing.assert_allclose(out[1:, :, 1:], np.tile(table[1:].mean(axis=0), (2, 4, 1)))


def test_per_series_statistics_come_from_each_series_training_rows_alone():
    frame = DataSpec(source=str(LONG), target="price", series_column="symbol", series="all").load()
    tiny = frame[frame["symbol"] == "IBM"].iloc[-20:].assign(symbol="LATE")  # its rows all after the training split
    frame = pd.concat([frame, tiny])
    windows = make_windows(frame, target="price", window=8, series_column="symbol", shuffle=False)
    vocabulary = series_vocabulary(windows)
    assert vocabulary == ["AAPL", "IBM", "MSFT"]  # LATE has no training window: it is not a known series
    mean, std = series_statistics(windows)
    for k, name in enumerate(vocabulary):
        lo, hi = windows.series_splits[windows.series_ids.index(name)]["train"]
        train = frame[frame["symbol"] == name]["price"].iloc[: hi - lo]
        assert mean[k, 0] == pytest.approx(train.mean(), rel=1e-6) and std[k, 0] == pytest.approx(train.std(ddof=0), rel=1e-5)
    later = frame.copy()  # every value after the training split changed: the statistics are the same
    later.loc[later.index >= windows.dates[windows.series_splits[0]["validation"][0]], "price"] *= 3
    again = series_statistics(make_windows(later, target="price", window=8, series_column="symbol", shuffle=False))
    np.testing.assert_array_equal(again[0], mean)
    np.testing.assert_array_equal(again[1], std)
    indexed = with_series_index(windows, ["IBM", "AAPL"])
    starts = indexed.starts("test")
    (x, index), _ = indexed.gather(starts)
    names = np.array(windows.series_ids)[windows.series_of(starts)]
    np.testing.assert_array_equal(index, [{"IBM": 1, "AAPL": 2}.get(n, 0) for n in names])
    one = DataSpec(source=str(LONG), target="price", series_column="symbol", series="IBM")  # named by its series
    single = make_windows(one.load(), target="price", window=8, shuffle=False)
    assert series_vocabulary(single, one.series_name) == ["IBM"]
    assert with_series_index(single, ["AAPL", "IBM"], one.series_name).series_index.tolist() == [2]
    (tf_x, tf_index), _ = next(iter(indexed.test))  # the tf.data pipeline yields the same pairs
    np.testing.assert_array_equal(tf_index.numpy(), index[: len(tf_index)])
    np.testing.assert_array_equal(tf_x.numpy(), x[: len(tf_x)])


def test_a_model_that_reads_the_series_needs_to_know_them():
    from keras_seq.data.windows import WindowSpec
    from keras_seq.models.builders import build_forecaster
    from keras_seq.models.spec import ModelSpec

    with pytest.raises(KerasSeqError, match="needs the series known at training time"):
        build_forecaster(ModelSpec(scaler="series"), WindowSpec(window=4), 1, series_count=0)
    with pytest.raises(KerasSeqError, match="transform 'diff' needs scaler 'window'"):
        ModelSpec(scaler="series", transform="diff")
    with pytest.raises(KerasSeqError, match="`series_embedding` must be an integer of at least 0"):
        ModelSpec(series_embedding=-1)


def test_a_global_model_with_series_statistics_and_vectors_exports_and_forecasts_new_series(run_cli, tmp_path):
    code, out, err = run_cli("fit", "--data", LONG, "--target", "price", "--series-column", "symbol", "--series", "all",
                             "--scaler", "series", "--series-embedding", "2", "--arch", "gru", "--units", "4",
                             "--layers", "1", "--epochs", "1", "--out", tmp_path, "-q")
    assert code == 0, err
    (run_dir,) = tmp_path.iterdir()
    assert json.loads((run_dir / "config.json").read_text())["series_vocabulary"] == ["AAPL", "IBM", "MSFT"]
    code, out, err = run_cli("export", run_dir, "--format", "onnx,savedmodel")
    assert code == 0, err
    card = json.loads((run_dir / "export" / "model_card.json").read_text())
    assert card["series_vocabulary"] == ["AAPL", "IBM", "MSFT"] and card["series_input"]["dtype"] == "int32"
    assert [i["dtype"] for i in card["artifacts"]["onnx"]["inputs"]] == ["float32", "int32"]
    assert card["parity"]["onnx"]["windows"] == 2 * 54  # every test window as its series and as an unseen one
    ibm = pd.read_csv(LONG).query("symbol == 'IBM'")
    other = pd.concat([ibm, ibm.assign(symbol="NEW1"), ibm.assign(symbol="NEW50", price=ibm["price"] * 50)])
    other.to_csv(tmp_path / "other.csv", index=False)
    tables = {}
    for artifact in (run_dir, run_dir / "export" / "model.onnx", run_dir / "export" / "savedmodel" / "gru" / "1"):
        code, out, err = run_cli("predict", artifact, "--data", tmp_path / "other.csv", "--series-column", "symbol",
                                 "--series", "all", "--csv", tmp_path / "forecast.csv")
        assert code == 0 and "2 of 3 series were not seen in training (NEW1, NEW50)" in err, err
        tables[artifact.name] = pd.read_csv(tmp_path / "forecast.csv").set_index("symbol")["price"]
    for table in tables.values():
        np.testing.assert_allclose(table, tables[run_dir.name], rtol=1e-5)
    card.pop("series_vocabulary")  # a card that does not say which series are known: refused, not guessed
    (run_dir / "export" / "model_card.json").write_text(json.dumps(card))
    code, out, err = run_cli("predict", run_dir / "export" / "model.onnx")
    assert code == 1 and "takes a series index input, but its model_card.json lists no series_vocabulary" in err
    forecast = tables[run_dir.name]
    assert forecast["NEW50"] == pytest.approx(50 * forecast["NEW1"], rel=1e-4)  # an unseen series: scale-free
    assert forecast["IBM"] != pytest.approx(forecast["NEW1"], rel=1e-6)  # the same values, known: its own path
