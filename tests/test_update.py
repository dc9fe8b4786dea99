"""`keras-seq update`: a trained run taken on to newer rows, as a child run with its lineage; a stopped update
resumes like a fit; new series of a global model; bad input in one line, nothing written."""

from __future__ import annotations

import json
import os
import signal

import numpy as np
import pandas as pd
import pytest

from conftest import files_under
from keras_seq.data.sources import DataSpec
from keras_seq.data.windows import WindowSpec
from keras_seq.errors import KerasSeqError, RunInterrupted
from keras_seq.models.spec import ModelSpec
from keras_seq.training.loop import TrainSpec

TINY = dict(windows=WindowSpec(window=8), model=ModelSpec(units=4, layers=1), train=TrainSpec(epochs=2, seed=3))


@pytest.fixture(scope="module")
def parent(tmp_path_factory):
    from keras_seq.workflows.fit import fit_run

    out = tmp_path_factory.mktemp("lineage")
    return fit_run(DataSpec(start="2021-01-01", end="2022-06-30"), **TINY, out=out, verbose=0).path


@pytest.fixture(scope="module")
def child(parent):
    from keras_seq.runs.update import update_run

    return update_run(parent, end="2022-12-30", epochs=2, verbose=0).path


def _config(folder):
    return json.loads((folder / "config.json").read_text())


def test_an_update_trains_on_the_newest_rows_and_scores_its_parent_on_the_same_test_rows(parent, child, run_cli):
    from keras_seq.evaluation.report import evaluate_model
    from keras_seq.models.builders import load_model
    from keras_seq.runs.run import SavedRun

    before, after = _config(parent), _config(child)
    assert (parent / "optimizer.npz").is_file() and child.parent == parent.parent
    assert after["parent"]["run"] == parent.name and after["parent"]["scaling"] == "kept"
    assert after["parent"]["optimizer"] == "kept" and after["scaling"] == before["scaling"]
    assert [entry["run"] for entry in after["lineage"]] == [parent.name]
    assert after["data"]["last_date"] == "2022-12-30" and after["data"]["first_date"] == before["data"]["first_date"]
    for split in ("validation", "test"):  # as long as the parent's, moved to the newest rows
        assert after["split_dates"][split]["rows"] == before["split_dates"][split]["rows"]
    assert after["split_dates"]["test"]["last"] == "2022-12-30"
    assert after["result"]["epochs_run"] == 2
    child_model, parent_model = load_model(child / "model.keras"), load_model(parent / "model.keras")
    assert any(not np.array_equal(a, b) for a, b in zip(child_model.get_weights(), parent_model.get_weights()))

    # The parent's row is its model on the child's test windows; the child's row is the child's.
    saved = SavedRun.read(child)
    windows = saved.scored_windows(saved.data.load())
    metrics = json.loads((child / "metrics.json").read_text())
    (parent_row,) = metrics["others"].values()
    assert parent_row["mae"] == pytest.approx(evaluate_model(parent_model, windows, "test")[0].model["mae"], rel=1e-5)
    assert metrics["model"]["mae"] == pytest.approx(evaluate_model(child_model, windows, "test")[0].model["mae"],
                                                    rel=1e-5)
    assert metrics["windows"] == windows.count("test") and parent_row["mae"] != metrics["model"]["mae"]

    code, out, err = run_cli("summary", child)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"{child.name}: 1 run(s) before it"
    assert lines[1].split()[:2] == ["fit", parent.name] and "2021-01-04..2022-06-30" in lines[1]
    assert lines[2].split()[:2] == ["update", child.name] and "..2022-12-30, 2 epochs" in lines[2]


def test_a_stopped_update_resumes_to_the_uninterrupted_updates_numbers(parent, child):
    from keras_seq.training.loop import watching_epochs
    from keras_seq.workflows.fit import resume_run
    from keras_seq.runs.update import update_run

    def stop_after_first(epoch, logs, model):
        if epoch == 0:
            os.kill(os.getpid(), signal.SIGINT)

    with watching_epochs(stop_after_first), pytest.raises(RunInterrupted, match="interrupted after epoch 1 of 2"):
        update_run(parent, end="2022-12-30", epochs=2, verbose=0)
    (stopped,) = [p for p in parent.parent.iterdir() if _config(p)["status"] != "complete"]
    with pytest.raises(KerasSeqError, match="is an unfinished run"):  # an unfinished run is no parent
        update_run(stopped, end="2023-01-31", verbose=0)
    resumed = resume_run(stopped, verbose=0).path
    assert _config(resumed)["parent"] == _config(child)["parent"]
    ours, theirs = (json.loads((f / "metrics.json").read_text()) for f in (resumed, child))
    assert ours["model"] == pytest.approx(theirs["model"], rel=1e-5) and ours["others"] == theirs["others"]


@pytest.mark.parametrize("flags, message", [
    (["--end", "2022-05-31"], "the data ends on 2022-05-31, not after {name}'s last date 2022-06-30: there is nothing "
                              "new to train on"),
    (["--data", "{csv}"], "the data's target is 'Value', but {name} forecasts 'Close'"),
    (["--epochs", "0"], "--epochs"),
])
def test_bad_updates_are_one_line_and_write_nothing(parent, child, run_cli, tmp_path, flags, message):
    csv = tmp_path / "other.csv"
    pd.DataFrame({"Date": pd.bdate_range("2021-01-01", periods=600).strftime("%Y-%m-%d"),
                  "Value": np.arange(600.0)}).to_csv(csv, index=False)
    before = files_under(parent.parent)
    code, out, err = run_cli("update", parent, *[f.format(csv=csv) for f in flags])
    assert code != 0 and message.format(name=parent.name) in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and files_under(parent.parent) == before


def test_a_comparisons_run_is_updated_only_into_a_folder_given(parent, run_cli, tmp_path):
    import shutil

    copy = tmp_path / "compare-x" / "runs" / parent.name
    shutil.copytree(parent, copy)
    (tmp_path / "compare-x" / "comparison.json").write_text("{}")
    before = files_under(tmp_path)
    code, out, err = run_cli("update", copy, "--end", "2022-12-30")
    assert code == 1 and "lies in a comparison's runs folder, which only `compare` writes: give --out" in err
    assert files_under(tmp_path) == before


def _panel_csv(path, names, end):
    rng = np.random.default_rng(0)
    dates = pd.bdate_range("2020-01-01", end)
    rows = [pd.DataFrame({"Date": dates.strftime("%Y-%m-%d"), "name": name,
                          "value": 100 * (k + 1) + np.cumsum(rng.normal(0, 1, len(dates)))})
            for k, name in enumerate(names)]
    pd.concat(rows).to_csv(path, index=False)
    return path


def test_a_global_model_takes_on_a_new_series_and_keeps_the_known_ones_statistics(tmp_path):
    from keras_seq.models.builders import load_model
    from keras_seq.workflows.fit import fit_run
    from keras_seq.runs.update import update_run

    old = _panel_csv(tmp_path / "old.csv", ["north", "south"], "2020-12-31")
    new = _panel_csv(tmp_path / "new.csv", ["north", "south", "west"], "2021-06-30")
    data = DataSpec(source=str(old), target="value", series_column="name")
    model = ModelSpec(units=4, layers=1, scaler="series", series_embedding=2)
    first = fit_run(data, TINY["windows"], model, TINY["train"], out=tmp_path / "runs", verbose=0).path
    with pytest.warns(Warning, match=r"1 series the parent never trained on \(west\): their scaling statistics are "
                                     r"fitted on their own training rows .*; their embedding rows start untrained"):
        second = update_run(first, source=str(new), epochs=1, verbose=0).path
    assert _config(second)["series_vocabulary"] == ["north", "south", "west"]

    def tables(folder):
        net = load_model(folder / "model.keras")
        return {v.path: np.asarray(v.numpy()) for v in net.weights if "series" in v.path}

    grown, kept = tables(second), tables(first)  # row 0: a series the model never saw; then its series in order
    assert len(grown) == 3 and {path: value.shape[0] for path, value in grown.items()} == {path: 4 for path in grown}
    assert {path: value.shape[0] for path, value in kept.items()} == {path: 3 for path in grown}
    statistics = [path for path in grown if path.startswith("prepare/series_")]
    assert len(statistics) == 2  # the series scaler's rows: the known series' as the parent had them, west's its own
    for path in statistics:
        np.testing.assert_array_equal(grown[path][:3], kept[path])
        assert not np.allclose(grown[path][3], grown[path][1])

def test_adaptive_offsets_follow_a_hand_computed_sequence():
    from keras_seq.evaluation.adaptive import track_offsets

    scores = np.array([[[1.5, 1.5]], [[0.2, 0.2]], [[1.07, 1.07]], [[1.14, 2.5]]])  # (4 windows, 1 step, 2 coverages)
    offsets, used = track_offsets(np.array([[1.0, 2.0]]), scores, [0.8, 0.95], rate=0.1)
    # 80%: eta 0.1; miss +0.08, hit -0.02, miss +0.08, 1.14 is not above 1.14: hit -0.02.
    np.testing.assert_allclose(used[:, 0, 0], [1.0, 1.08, 1.06, 1.14])
    # 95%: eta 0.2; three hits -0.01 each, then a miss +0.19.
    np.testing.assert_allclose(used[:, 0, 1], [2.0, 1.99, 1.98, 1.97])
    np.testing.assert_allclose(offsets, [[1.12, 2.16]])


def test_tracked_offsets_keep_the_long_run_miss_rate_within_the_bound_whatever_the_scores():
    from keras_seq.evaluation.adaptive import track_offsets

    rng = np.random.default_rng(1)
    bound, rate, count = 4.0, 0.2, 4000
    drifting = np.clip(rng.normal(np.linspace(0, 3, count), 1.0), -bound, bound)[:, None, None]
    offsets, used = track_offsets(np.array([[1.0]]), drifting, [0.8], rate)
    misses = np.mean(drifting[:, 0, 0] > used[:, 0, 0])
    eta = rate * 1.0  # the rate times the calibrated offset
    # The offset moves by eta (err - alpha) each step, so the misses' excess is (last - first offset) / (eta T); it
    # never leaves [-B - eta, B + eta] for scores within [-B, B] (Angelopoulos, Candes and Tibshirani 2023).
    assert abs(offsets[0, 0]) <= bound + eta
    assert abs(misses - 0.2) <= (2 * bound + eta) / (eta * count)
    fixed_misses = np.mean(drifting[:, 0, 0] > 1.0)
    assert fixed_misses > 0.5  # split conformal's fixed offset misses most of a drifting series


def test_a_fit_with_a_conformal_rate_scores_the_tracked_intervals_and_stores_the_last_offsets(tmp_path):
    from keras_seq.models.builders import load_model
    from keras_seq.workflows.fit import fit_run

    model = ModelSpec(units=4, layers=1, conformal=(0.8,), conformal_rate=0.1)
    result = fit_run(DataSpec(start="2021-01-01", end="2022-12-30"), TINY["windows"], model, TINY["train"],
                     out=tmp_path, verbose=0)
    calibration = _config(result.path)["conformal"]
    adaptive = calibration["adaptive"]
    assert adaptive["split"] == "test" and adaptive["through"] == "2022-12-30" and adaptive["rate"] == 0.1
    assert adaptive["offsets"] != calibration["offsets"]
    stored = load_model(result.path / "model.keras").get_layer("conformal").offsets
    np.testing.assert_allclose(np.asarray(stored), adaptive["offsets"], rtol=1e-6)
    intervals = result.report.intervals
    assert set(intervals["adaptive"]["split_conformal_coverage"]) == {"80%"}
    assert "adaptive: the offsets followed each test actual value at rate 0.1" in result.report.table()
    with pytest.raises(KerasSeqError, match="`conformal_rate` 0.1 adapts conformal intervals, and `conformal` names"):
        ModelSpec(conformal_rate=0.1)

    # predict --actuals: the rows after the fit's last date move the offsets before the forecast (nothing stored)
    from keras_seq.workflows.predict import predict_artifact

    csv = tmp_path / "newer.csv"
    frame = DataSpec(start="2021-01-01", end="2023-02-10").load()
    frame.to_csv(csv)
    plain = predict_artifact(result.path, source=str(csv))
    tracked = predict_artifact(result.path, actuals=csv)
    newer = frame.index[frame.index > "2022-12-30"]
    assert tracked.attrs["adapted"].startswith(f"intervals: offsets tracked through {len(newer)} actual values "
                                               f"({newer[0].date()}..{newer[-1].date()}) at rate 0.1; step 1: 80% ")
    assert tracked["Close"].iloc[0] == pytest.approx(plain["Close"].iloc[0])  # the point forecast is the model's
    assert tracked["Close_q0.1"].iloc[0] != pytest.approx(plain["Close_q0.1"].iloc[0])  # its interval moved
    stored = load_model(result.path / "model.keras").get_layer("conformal").offsets
    np.testing.assert_allclose(np.asarray(stored), adaptive["offsets"], rtol=1e-6)  # the run folder is as it was
    older = tmp_path / "older.csv"
    frame.iloc[:300].to_csv(older)
    with pytest.raises(KerasSeqError, match="the model's intervals were last tracked to 2022-12-30: there is no new"):
        predict_artifact(result.path, actuals=older)


def test_a_recipe_updates_a_run_and_refuses_options_its_run_holds(parent, tmp_path):
    from keras_seq.workflows.recipe import load_recipe, resolved_toml, run_recipe

    recipe = tmp_path / "newest.toml"
    recipe.write_text(f'description = "The tiny LSTM on to the year end."\n[update]\nrun = "{parent}"\n'
                      'end = 2022-12-30\nepochs = 1\n', encoding="utf-8")
    loaded = load_recipe(recipe)
    assert 'end = "2022-12-30"' in resolved_toml(loaded) and "[experiment" not in resolved_toml(loaded)
    result = run_recipe(loaded)
    config = _config(result.path)
    assert config["parent"]["run"] == parent.name and config["result"]["epochs_run"] == 1
    assert result.path.parent == parent.parent and f"parent {parent.name}" in result.report
    recipe.write_text(recipe.read_text() + "[model]\nunits = 8\n", encoding="utf-8")
    with pytest.raises(KerasSeqError, match=r"\[update\] takes every option from its run, and the recipe also has "
                                            r"'model'"):
        load_recipe(recipe)


def test_a_childs_export_adds_the_next_version_beside_its_parents_which_still_verify(parent, child, run_cli, tmp_path):
    from keras_seq.artifacts.export import export_run
    from keras_seq.workflows.predict import forecast, load_artifact

    out = tmp_path / "export"
    export_run(parent, "savedmodel,onnx", out=out)
    first = files_under(out)
    card_before = json.loads((out / "model_card.json").read_text())
    export_run(child, "savedmodel,onnx", out=out)
    kept = [name for name in first if (out / name).is_file() and name != "model_card.json"]
    assert kept and {name: files_under(out)[name] for name in kept} == {name: first[name] for name in kept}
    card = json.loads((out / "model_card.json").read_text())
    assert card["run"] == child.name and card["parent"]["run"] == parent.name
    assert [(v["version"], v["run"], v["parent"]) for v in card["model_versions"]] == [
        (1, parent.name, None), (2, child.name, parent.name)]
    assert card["model_versions"][0]["artifacts"] == {
        fmt: {"path": entry["path"], "sha256": entry["sha256"]} for fmt, entry in card_before["artifacts"].items()}
    assert card["artifacts"]["savedmodel"]["path"] == "savedmodel/lstm/2"
    assert card["artifacts"]["onnx"]["path"] == "onnx/lstm/2/model.onnx" and (out / "cards" / "1.json").is_file()
    frame = DataSpec(start="2021-01-01", end="2022-12-30").load()
    forecasts = {path: forecast(load_artifact(out / path), frame)["Close"].iloc[0]
                 for path in ("model.onnx", "onnx/lstm/2/model.onnx", "savedmodel/lstm/1", "savedmodel/lstm/2")}
    assert forecasts["model.onnx"] == pytest.approx(forecasts["savedmodel/lstm/1"], rel=1e-6)
    assert forecasts["onnx/lstm/2/model.onnx"] == pytest.approx(forecasts["savedmodel/lstm/2"], rel=1e-6)
    assert forecasts["model.onnx"] != forecasts["onnx/lstm/2/model.onnx"]

    code, text, err = run_cli("summary", out)
    assert code == 0, err
    assert [line.split(":")[0] for line in text.splitlines()] == ["version 1", "version 2"]
    assert all(line.endswith("savedmodel: sha256 ok") for line in text.splitlines())
    code, text, err = run_cli("export", parent, "--out", out)  # a first fit's export never adds to a folder
    assert code == 1 and "already exists. Pass --overwrite" in err
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "model_card.json").write_text(json.dumps({**card_before, "run": "gru-20200101T000000Z"}))
    code, text, err = run_cli("export", child, "--out", foreign)
    assert code == 1 and f"holds gru-20200101T000000Z's export, which is not in {child.name}'s lineage" in err
    assert sorted(p.name for p in foreign.iterdir()) == ["model_card.json"]
    with open(out / "model.onnx", "ab") as stream:
        stream.write(b"\0")
    code, text, err = run_cli("summary", out)
    assert code == 1 and "version 1: " in text and "onnx CHANGED" in text and "version 1 of" in err
