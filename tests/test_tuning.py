"""keras_seq/workflows/tune.py: `keras-seq tune`, an Optuna study on a journal file or SQLite, workers, pruning, resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

from keras_seq.data.sources import DataSpec
from keras_seq.data.windows import WindowSpec
from keras_seq.errors import KerasSeqError
from keras_seq.models import ModelSpec
from keras_seq.training.loop import TrainSpec
from keras_seq.workflows.recipe import parse_tune_table
from keras_seq.config.search import Param, TuneSpec

# A year of ^DJI, tiny models, a few epochs: each trial takes a second or two.
TINY = ["--start", "2022-01-01", "--window", "8", "--units", "4", "--layers", "1", "--batch-size", "64"]
RECIPE = """
description = "A tiny search for tests."

[data]
source = "dji"
start = 2022-01-01

[windows]
window = 8

[model]
archs = ["gru"]
layers = 1

[train]
epochs = 1
batch_size = 64
seed = 4

[tune]
trials = 2

[tune.model]
units = [4, 8]

[tune.train]
lr = {low = 1e-3, high = 1e-2, log = true}
"""


def study_of(folder: Path, storage: str | None = None):
    from optuna.storages.journal import JournalFileBackend

    storage = storage or optuna.storages.JournalStorage(JournalFileBackend(str(folder / "study.journal")))
    return optuna.load_study(study_name=folder.name, storage=storage)


def console(*args, **popen) -> subprocess.Popen:
    script = Path(sys.executable).with_name("keras-seq")
    return subprocess.Popen([str(script), "tune", *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **popen)


@pytest.mark.parametrize("table, words", [
    ({"model": {"units": {"low": 64, "high": 16}}}, "needs low < high"),
    ({"model": {"units": {"low": 4.5, "high": 16}}}, "low and high must be an integer"),
    ({"model": {"units": [4, "eight"]}}, "each choice must be an integer"),
    ({"model": {"scaler": {"low": 1, "high": 2}}}, "cannot be a range; give a list of choices"),
    ({"model": {"archs": ["lstm"]}}, "not an option a trial can change"),
    ({"data": {"start": ["2020-01-01"]}}, "unknown key 'tune.data'"),
    ({"train": {"lr": {"low": 0, "high": 0.1, "log": True}}}, "low > 0 on a log scale"),
    ({"train": {"lr": {"low": 0.001}}}, "expected a list of choices or a range"),
    ({"trials": "ten"}, "'tune.trials' must be an integer"),
])
def test_bad_tune_tables_are_one_line_naming_the_key(table, words):
    with pytest.raises(KerasSeqError, match=words):
        parse_tune_table(table, "r.toml")


def test_a_space_is_checked_before_any_trial():
    with pytest.raises(KerasSeqError, match="objective 'val_loss' cannot compare trials that change windows.window"):
        TuneSpec(objective="val_loss")  # the default space changes the window
    with pytest.raises(KerasSeqError, match="study name must be letters"):
        TuneSpec(study="../elsewhere")
    from keras_seq.backend import use_backend
    from keras_seq.runs.run import RunSpecs
    from keras_seq.config.search import check_space

    base = RunSpecs(DataSpec(), WindowSpec(), ModelSpec(), TrainSpec(), use_backend())
    with pytest.raises(KerasSeqError, match="model.units = 0 is refused: `units` must be"):
        check_space(base, TuneSpec(space=(Param("model", "units", choices=(8, 0)),)))


def test_a_recipe_search_scores_on_validation_and_only_its_refit_reads_the_test_split(run_cli, tmp_path, monkeypatch):
    import keras_seq.evaluation.report as evaluation

    path = tmp_path / "search.toml"
    path.write_text(RECIPE, encoding="utf-8")
    splits = []
    real = evaluation.evaluate_forecast
    monkeypatch.setattr(evaluation, "evaluate_forecast", lambda model, windows, split="test", **kw: (
        splits.append(split), real(model, windows, split, **kw))[1])
    code, out, err = run_cli("tune", "--recipe", path, "--study", "s1", "--out", tmp_path / "out", "-q")
    assert code == 0, err
    folder = tmp_path / "out" / "s1"
    assert {"study.journal", "trials.csv", "history.png", "tune.json", "best"} <= {p.name for p in folder.iterdir()}
    assert splits.count("test") == 1 and set(splits) == {"validation", "test"}  # per epoch and trial; test once
    trials = pd.read_csv(folder / "trials.csv")
    assert len(trials) == 2 and set(trials["state"]) <= {"COMPLETE", "PRUNED"}
    assert set(trials["params_model.units"]) <= {4, 8} and trials["params_train.lr"].between(1e-3, 1e-2).all()
    summary = json.loads((folder / "tune.json").read_text())
    best = summary["best"]
    assert best["value"] == trials.query("state == 'COMPLETE'")["value"].min()
    run = folder / summary["refit"]["run"]
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["units"] == best["params"]["model.units"] and config["train"]["lr"] == best["params"]["train.lr"]
    assert config["train"]["seed"] == 4 and config["model"]["arch"] == "gru"
    assert json.loads((run / "metrics.json").read_text())["model"]["mae"] == summary["refit"]["test"]["mae"]

    # The same study with other options is refused, and nothing changes.
    before = (folder / "study.journal").read_bytes()
    code, _, err = run_cli("tune", *TINY, "--epochs", "2", "--study", "s1", "--out", tmp_path / "out")
    assert code == 1 and "study 's1' in this storage was started with other data, options or search space" in err
    assert (folder / "study.journal").read_bytes() == before
    code, _, err = run_cli("tune", "--recipe", path, "--set", "train.seed=5", "--study", "s1", "--out", tmp_path / "out")
    assert code == 1 and "was started with other data, options or search space" in err  # --set reached the base fit
    assert "(train.seed: 4 then, 5 now)" in err  # which option differs (issue 35's first hour: it did not say)
    code, _, err = run_cli("tune", "--set", "train.seed=5", "--out", tmp_path / "out")
    assert code == 2 and "--set overrides a recipe's keys: give --recipe too" in err
    assert (folder / "study.journal").read_bytes() == before
    code, _, err = run_cli("run", path, "--out", tmp_path / "out")
    assert code == 1 and "declares a search ([tune]): run it with `keras-seq tune --recipe" in err


def test_the_pruner_reads_every_epoch_and_stops_a_trailing_trial(tmp_path):
    """The objective reports each epoch's validation MASE; a pruner that prunes everything stops at epoch 1."""
    from keras_seq.workflows.tune import Job, objective, prepare_job

    spec = TuneSpec(trials=1, space=(Param("model", "units", choices=(4,)),), study="p")
    job: Job = prepare_job(DataSpec(start="2022-01-01"), WindowSpec(window=8), ModelSpec(arch="gru", layers=1),
                           TrainSpec(epochs=5, batch_size=64), spec, out=tmp_path, backend=None)
    study = optuna.create_study(pruner=optuna.pruners.ThresholdPruner(upper=0.0))  # any MASE above 0 trails
    study.optimize(lambda trial: objective(job, trial), n_trials=1)
    (trial,) = study.trials
    assert trial.state == TrialState.PRUNED and list(trial.intermediate_values) == [0]
    assert 0 < trial.intermediate_values[0] < 5 and "epochs_run" not in trial.user_attrs
    kept = optuna.create_study(pruner=optuna.pruners.NopPruner())
    kept.optimize(lambda trial: objective(job, trial), n_trials=1)
    assert kept.trials[0].state == TrialState.COMPLETE and list(kept.trials[0].intermediate_values) == [0, 1, 2, 3, 4]


def test_hostile_study_folders_and_storages_are_refused_in_one_line(run_cli, tmp_path):
    outside = tmp_path / "outside.journal"
    outside.write_text("")
    (tmp_path / "out" / "s").mkdir(parents=True)
    os.symlink(outside, tmp_path / "out" / "s" / "study.journal")
    code, _, err = run_cli("tune", *TINY, "--study", "s", "--out", tmp_path / "out")
    assert code == 1 and "is not a plain file (a link or a folder): refusing to use it" in err
    assert outside.read_text() == ""
    for args, words in [(["--study", "../up"], "study name must be letters"),
                        (["--storage", "study.db"], "expected an SQLAlchemy URL"),
                        (["--objective", "val_loss"], "cannot compare trials that change")]:
        code, _, err = run_cli("tune", *TINY, *args, "--out", tmp_path / "fresh")
        assert code != 0 and words in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "fresh").exists()


def test_tune_json_shows_a_storage_url_without_its_password():
    from keras_seq.workflows.tune import _shown_storage

    assert _shown_storage("postgresql://me:secret@db.example/studies") == "postgresql://me:***@db.example/studies"
    assert _shown_storage("sqlite:////tmp/study.db") == "sqlite:////tmp/study.db"
