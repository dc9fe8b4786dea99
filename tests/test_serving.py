"""keras_seq/workflows/predict.py: `predict` from every artifact kind, and loading artifacts without keras-seq."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from keras_seq.data.sources import DataSpec
from keras_seq.data.windows import WindowSpec
from keras_seq.errors import KerasSeqError
from keras_seq.artifacts.export import export_run
from keras_seq.models import ModelSpec
from keras_seq.workflows.fit import fit_run
from keras_seq.workflows.predict import future_dates, predict_artifact
from keras_seq.training.loop import TrainSpec


@pytest.fixture(scope="module")
def exported_lstm(tmp_path_factory):
    out = tmp_path_factory.mktemp("serving")
    run_dir = fit_run(DataSpec(), WindowSpec(window=8), ModelSpec(arch="lstm", units=4), TrainSpec(epochs=1, batch_size=64),
                      out=out, verbose=0).path
    export_run(run_dir, "all")
    return run_dir


def artifact_paths(run_dir):
    export = run_dir / "export"
    return {"run": run_dir, "keras": export / "model.keras", "savedmodel": export / "savedmodel" / "lstm" / "1",
            "onnx": export / "model.onnx"}


def test_every_artifact_kind_gives_the_same_forecast(exported_lstm):
    forecasts = {kind: predict_artifact(path, steps=3) for kind, path in artifact_paths(exported_lstm).items()}
    reference = forecasts["run"]
    assert list(reference.columns) == ["date", "Close"]
    assert [d.strftime("%Y-%m-%d") for d in reference["date"]] == ["2023-02-13", "2023-02-14", "2023-02-15"]
    scale = json.loads((exported_lstm / "config.json").read_text())["scaling"]["target_std"]
    for kind, table in forecasts.items():
        np.testing.assert_allclose(table["Close"], reference["Close"], atol=1e-5 * scale, err_msg=kind)
        assert table["date"].equals(reference["date"])


def test_rolling_forecast_starts_with_the_one_step_forecast(exported_lstm):
    one = predict_artifact(exported_lstm, steps=1)
    five = predict_artifact(exported_lstm, steps=5)
    assert len(five) == 5 and five["Close"].iloc[0] == pytest.approx(one["Close"].iloc[0])
    assert five["date"].iloc[-1] == pd.Timestamp("2023-02-17")


def test_other_data_and_ranges(exported_lstm):
    table = predict_artifact(exported_lstm, end="2020-03-20")
    assert table["date"].iloc[0] == pd.Timestamp("2020-03-23")
    with pytest.raises(KerasSeqError, match="the data has 4 rows, fewer than the model's window of 8"):
        predict_artifact(exported_lstm, start="2023-02-07")


def test_artifacts_load_without_keras_seq(exported_lstm, tmp_path):
    """Plain onnxruntime and TensorFlow, in a process where keras_seq cannot be imported."""
    frame = DataSpec().load()
    window = frame["Close"].to_numpy(dtype="float32")[-8:].reshape(1, 8, 1)
    np.save(tmp_path / "window.npy", window)
    paths = artifact_paths(exported_lstm)
    script = textwrap.dedent(f"""
        import sys
        sys.modules["keras_seq"] = None  # any import of keras_seq now fails
        import numpy as np
        import onnxruntime as ort
        import tensorflow as tf
        x = np.load({str(tmp_path / 'window.npy')!r})
        session = ort.InferenceSession({str(paths['onnx'])!r})
        onnx_out = session.run(None, {{session.get_inputs()[0].name: x}})[0]
        serve = tf.saved_model.load({str(paths['savedmodel'])!r}).signatures["serving_default"]
        saved_out = serve(window=tf.constant(x))["output_0"].numpy()
        try:
            import keras_seq
            print("KERAS_SEQ_IMPORTED")
        except ImportError:
            pass
        print("FORECASTS", float(onnx_out[0, 0]), float(saved_out[0, 0]))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "KERAS_SEQ_IMPORTED" not in result.stdout
    onnx_value, saved_value = map(float, result.stdout.split("FORECASTS")[1].split())
    expected = predict_artifact(exported_lstm, steps=1)["Close"].iloc[0]
    assert onnx_value == pytest.approx(expected, abs=0.05) and saved_value == pytest.approx(expected, abs=0.05)


def test_a_changed_artifact_is_refused(exported_lstm, tmp_path):
    export = tmp_path / "export"
    shutil.copytree(exported_lstm / "export", export)
    with open(export / "model.onnx", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(KerasSeqError, match=r"model.onnx does not match the sha256 in .*model_card.json: .*tampered"):
        predict_artifact(export / "model.onnx")
    (export / "savedmodel" / "lstm" / "1" / "fingerprint.pb").write_bytes(b"changed")
    with pytest.raises(KerasSeqError, match=r"1 does not match the sha256"):
        predict_artifact(export / "savedmodel" / "lstm" / "1")


def test_artifacts_without_a_card_or_of_unknown_kind(tmp_path, exported_lstm):
    shutil.copy(exported_lstm / "export" / "model.onnx", tmp_path / "lonely.onnx")
    with pytest.raises(KerasSeqError, match="no model_card.json found beside"):
        predict_artifact(tmp_path / "lonely.onnx")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(KerasSeqError, match="is not a keras-seq artifact"):
        predict_artifact(tmp_path / "notes.txt")
    with pytest.raises(KerasSeqError, match="artifact not found"):
        predict_artifact(tmp_path / "missing.onnx")
    with pytest.raises(KerasSeqError, match="`steps` must be an integer of at least 1"):
        predict_artifact(exported_lstm, steps=0)


def test_data_without_the_models_columns(exported_lstm, write_csv):
    path = write_csv("Date,Price\n" + "".join(f"2021-01-{d:02d},{100 + d}\n" for d in range(1, 20)))
    with pytest.raises(KerasSeqError, match="column 'Close' not found"):
        predict_artifact(exported_lstm / "export" / "model.onnx", source=str(path))


def test_predict_cli_prints_a_table_and_writes_csv(exported_lstm, run_cli, tmp_path):
    code, out, err = run_cli("predict", exported_lstm / "export" / "model.onnx", "--steps", "2", "--csv", tmp_path / "f.csv")
    assert code == 0, err
    assert out.splitlines()[0].split() == ["date", "Close"] and out.splitlines()[1].startswith("2023-02-13 ")
    written = pd.read_csv(tmp_path / "f.csv")
    assert list(written["date"]) == ["2023-02-13", "2023-02-14"]
    assert f"{written['Close'].iloc[0]:.2f}" in out


def test_multivariate_models_do_not_roll_past_their_horizon(tmp_path):
    run_dir = fit_run(DataSpec(features=("Close", "Volume")), WindowSpec(window=8, horizon=2), ModelSpec(arch="gru", units=4),
                      TrainSpec(epochs=1, batch_size=64), out=tmp_path, verbose=0).path
    assert len(predict_artifact(run_dir)) == 2
    with pytest.raises(KerasSeqError, match="`steps` 3 goes beyond the model's horizon of 2, which needs a univariate model"):
        predict_artifact(run_dir, steps=3)


def test_future_dates_are_business_days_for_daily_data():
    daily = pd.bdate_range("2023-01-02", "2023-02-10")
    assert list(future_dates(daily, 2)) == [pd.Timestamp("2023-02-13"), pd.Timestamp("2023-02-14")]
    monthly = pd.date_range("2020-01-01", periods=12, freq="30D")
    assert future_dates(monthly, 1)[0] == monthly[-1] + pd.Timedelta(days=30)


@pytest.mark.parametrize("index, expected", [
    (pd.date_range("2024-01-22 00:00", "2024-01-23 02:00", freq="h"), ["2024-01-23 03:00", "2024-01-23 04:00"]),
    (pd.date_range("2015-01-01", periods=24, freq="MS").delete([5]), ["2017-01-01", "2017-02-01"]),  # one month missing
    (pd.date_range("2015-01-31", periods=24, freq="ME"), ["2017-01-31", "2017-02-28"]),
    (pd.to_datetime([str(y) for y in range(1700, 2009)], format="%Y"), ["2009-01-01", "2010-01-01"]),
    (pd.to_datetime([str(y) for y in range(1700, 2009) if y != 2000], format="%Y"), ["2009-01-01", "2010-01-01"]),
    (pd.DatetimeIndex(["2020-01-01", "2020-04-01", "2020-10-01", "2021-01-01"]), ["2021-04-01", "2021-07-01"]),
    (pd.bdate_range("2023-01-02", "2023-02-10").delete([11]), ["2023-02-13", "2023-02-14"]),  # a holiday
    (pd.date_range("2020-01-05", periods=20, freq="W-SUN"), ["2020-05-24", "2020-05-31"]),
])
def test_future_dates_follow_the_datas_own_frequency(index, expected):
    from keras_seq.workflows.predict import date_format

    dates = future_dates(pd.DatetimeIndex(index), 2)
    assert [d.strftime(date_format(dates)) for d in dates] == expected



def test_a_model_that_does_not_read_its_target_forecasts_within_its_horizon():
    """--steps below a horizon of 3 needs no rolling, so the target need not be among the inputs."""
    import keras

    from keras_seq.models.builders import build_model
    from keras_seq.workflows.predict import Artifact, forecast

    model = build_model("gru", window=8, n_features=1, horizon=3, units=4, layers=1, scaler="zscore",
                        residual=False, target_index=None)
    artifact = Artifact("keras", None, lambda x: keras.ops.convert_to_numpy(model(x)), window=8, horizon=3,
                        target_kind="next", features=["Open"], target="Close", data={})
    frame = pd.DataFrame({"Open": np.arange(20.0)}, index=pd.date_range("2024-01-01", periods=20))
    table = forecast(artifact, frame, steps=2)
    expected = keras.ops.convert_to_numpy(model(frame[["Open"]].to_numpy("float32")[None, -8:]))[0, :2]
    np.testing.assert_allclose(table["Close"], expected, rtol=1e-6)
