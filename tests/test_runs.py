"""keras_seq/workflows/fit.py: a run folder holds everything, and evaluates again to the same numbers."""

from __future__ import annotations

import json

import keras
import numpy as np
import pandas as pd
import pytest

from keras_seq.data.sources import DataSpec
from keras_seq.data.windows import WindowSpec, make_windows
from keras_seq.errors import KerasSeqError
from keras_seq.evaluation.report import forecast_metrics, naive_scale
from keras_seq.models import ModelSpec, load_model
from keras_seq.runs.folder import write_manifest
from keras_seq.workflows.evaluate import evaluate_run
from keras_seq.workflows.fit import fit_run
from keras_seq.training.loop import TrainSpec

pytestmark = pytest.mark.backend


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    result = fit_run(
        DataSpec(),
        WindowSpec(window=8),
        ModelSpec(arch="gru", units=4, layers=1),
        TrainSpec(epochs=2, batch_size=64),
        out=out,
        verbose=0,
    )
    return result


def test_run_folder_contents(small_run):
    path = small_run.path
    assert sorted(p.name for p in path.iterdir()) == [
        "config.json", "forecast.png", "history.csv", "loss.png", "manifest.json", "metrics.json", "model.keras",
        "optimizer.npz"]
    assert path.name.startswith("gru-") and path.name.endswith("Z")
    config = json.loads((path / "config.json").read_text())
    assert config["data"]["source"] == "dji" and config["data"]["rows"] == 1258
    assert config["data"]["first_date"] == "2018-02-13" and config["data"]["last_date"] == "2023-02-10"
    assert config["split_dates"]["train"]["last"] < config["split_dates"]["validation"]["first"]
    assert config["split_dates"]["validation"]["last"] < config["split_dates"]["test"]["first"]
    assert config["windows"]["window"] == 8 and config["model"]["arch"] == "gru" and config["train"]["epochs"] == 2
    assert config["backend"] == keras.backend.backend() == config["versions"]["backend"]
    assert set(config["versions"]) >= {"python", "keras", "keras_seq", "backend", "numpy", "pandas"}
    frame = DataSpec().load()
    train = frame["Close"].iloc[: config["split_dates"]["train"]["rows"]]
    assert config["scaling"]["target_mean"] == pytest.approx(train.mean())
    assert config["result"]["epochs_run"] == 2
    history = pd.read_csv(path / "history.csv")
    assert list(history.columns) == ["epoch", "loss", "val_loss"] and len(history) == 2
    assert json.loads((path / "metrics.json").read_text()) == small_run.report.to_dict()


def test_the_saved_model_alone_reproduces_the_test_metrics(small_run):
    config = json.loads((small_run.path / "config.json").read_text())
    model = load_model(small_run.path / "model.keras")
    frame = DataSpec().load()
    windows = make_windows(frame, target="Close", window=8, normalize=False, batch_size=1000)
    raw_test = next(iter(windows.test))[0].numpy()  # prices, no scaling applied outside the model
    predictions = np.asarray(model.predict(raw_test, verbose=0))
    metrics = forecast_metrics(windows.targets("test"), predictions, naive_scale(windows, small_run.report.season))
    assert metrics == pytest.approx(small_run.report.model, rel=1e-5)
    assert config["split_dates"]["test"]["windows"] == len(raw_test)


def test_evaluate_run_on_its_own_data_matches_fit(small_run):
    again = evaluate_run(small_run.path)
    assert again.path.parent == small_run.path / "evaluations"
    assert again.report.model == pytest.approx(small_run.report.model, rel=1e-5)
    assert again.report.persistence == pytest.approx(small_run.report.persistence)
    assert sorted(p.name for p in again.path.iterdir()) == ["forecast.png", "metrics.json"]


def test_evaluate_run_on_new_data_uses_every_window(small_run, tmp_path):
    result = evaluate_run(small_run.path, start="2010-01-04", end="2010-12-31", out=tmp_path / "eval")
    rows = len(DataSpec(start="2010-01-04", end="2010-12-31").load())
    assert result.report.windows == rows - 8
    assert result.path == tmp_path / "eval"
    with pytest.raises(KerasSeqError, match="already exists"):
        evaluate_run(small_run.path, out=tmp_path / "eval")


def test_bad_data_writes_no_run_folder(tmp_path):
    with pytest.raises(KerasSeqError, match="too short"):
        fit_run(DataSpec(start="2023-01-25"), WindowSpec(), ModelSpec(units=2), TrainSpec(epochs=1), out=tmp_path, verbose=0)
    with pytest.raises(KerasSeqError, match="reads the future"):
        fit_run(DataSpec(), WindowSpec(target_kind="sequence"), ModelSpec(arch="brnn"), out=tmp_path, verbose=0)
    assert list(tmp_path.iterdir()) == []


def test_evaluate_run_refuses_a_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(KerasSeqError, match="is not a run folder: it has no config.json"):
        evaluate_run(tmp_path)


@pytest.mark.parametrize("text, message", [("{not json", "is not valid JSON"), ('{"data": {}}', "has no 'windows'")])
def test_evaluate_run_refuses_a_broken_config(small_run, tmp_path, text, message):
    import shutil

    broken = tmp_path / "run"
    shutil.copytree(small_run.path, broken)
    (broken / "config.json").write_text(text)
    write_manifest(broken)  # a matching manifest, as whoever edits a folder can write (without one, that is refused first)
    with pytest.raises(KerasSeqError, match=message):
        evaluate_run(broken)


def test_a_changed_run_file_is_refused_by_its_manifest(small_run, tmp_path, run_cli):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(small_run.path, copy)
    manifest = json.loads((copy / "manifest.json").read_text())["sha256"]
    assert set(manifest) == {"config.json", "forecast.png", "history.csv", "loss.png", "metrics.json", "model.keras",
                             "optimizer.npz"}
    (copy / "evaluations").mkdir(exist_ok=True)  # files added later are not in the manifest: still fine
    evaluate_run(copy, out=tmp_path / "eval-ok")
    config = json.loads((copy / "config.json").read_text())
    config["scaling"]["target_mean"] += 1.0  # a silent edit that would shift every forecast
    (copy / "config.json").write_text(json.dumps(config))
    for args in (["evaluate", copy], ["export", copy], ["predict", copy]):
        code, out, err = run_cli(*args)
        assert code == 1 and f"{copy / 'config.json'} does not match the sha256 in manifest.json" in err, args
        assert len(err.strip().splitlines()) == 1
    assert not (copy / "export").exists()
