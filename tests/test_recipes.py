"""keras_seq/workflows/recipe.py, `keras-seq run` and `keras-seq recipes`: checked before work, repeatable, shipped ones run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from keras_seq.workflows.recipe import load_recipe, resolved_sections, resolved_toml, shipped_recipes

from conftest import REPO, files_under

TINY = """
description = "A tiny comparison for tests."

[data]
source = "dji"
start = 2021-01-01

[windows]
window = 8

[model]
archs = ["drnn", "gru"]
units = 4
layers = 1

[train]
epochs = 2
batch_size = 64
seed = 3
"""


def write_recipe(tmp_path: Path, text: str, name: str = "tiny.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def metrics_of(folder: Path) -> dict:
    """Every score of every experiment (training times left out: they are wall-clock)."""
    result = {}
    for comparison in sorted(folder.glob("*/comparison.json")):
        summary = json.loads(comparison.read_text())
        result[comparison.parent.name] = [
            (r["arch"], r["seed"], r["best_val_loss"], json.dumps(r["splits"], sort_keys=True)) for r in summary["runs"]
        ]
    return result


def test_shipped_recipes_are_listed_with_a_description(run_cli):
    shipped = shipped_recipes()
    assert set(shipped) == {"seed-replication", "dji-compare", "dji-lstm-export"}
    code, out, err = run_cli("recipes")
    assert code == 0
    for name, (path, description) in shipped.items():
        assert description and f"{name}  " in out and description in out
        assert path.parent == REPO / "keras_seq" / "recipes"
    assert not (REPO / "recipes").exists()  # one folder of recipes (issue 35's first hour: a second one confused)


def test_every_shipped_recipe_resolves():
    for name in shipped_recipes():
        recipe = load_recipe(name)
        assert recipe.experiments and recipe.description


def test_set_overrides_the_top_level_and_every_experiment(tmp_path):
    recipe = load_recipe("seed-replication", ["train.epochs=1", "data.start=2019-01-02", "model.archs=drnn,gru"])
    assert [e.train.epochs for e in recipe.experiments] == [1, 1]
    assert {e.data.start for e in recipe.experiments} == {"2019-01-02"}
    assert {e.compare.archs for e in recipe.experiments} == {("drnn", "gru")}
    # An experiment's own key is overridden too.
    assert load_recipe("seed-replication", ["windows.target_kind=next"]).experiments[0].windows.target_kind == "next"
    assert load_recipe("seed-replication").experiments[0].windows.target_kind == "sequence"


def test_resolved_recipe_round_trips(tmp_path):
    recipe = load_recipe("seed-replication", ["train.epochs=3", "evaluate.repeats=2"])
    again = load_recipe(write_recipe(tmp_path, resolved_toml(recipe), "resolved.toml"))
    assert [resolved_sections(e) for e in again.experiments] == [resolved_sections(e) for e in recipe.experiments]
    assert [e.compare for e in again.experiments] == [e.compare for e in recipe.experiments]
    assert again.name == recipe.name and again.description == recipe.description


@pytest.mark.parametrize(
    "text, words",
    [
        ("description = 'x'\n[train]\nepochs = 'five'\n", "'train.epochs' must be an integer. Received: 'five'"),
        ("description = 'x'\n[train]\nepoch = 5\n", "unknown key 'train.epoch'"),
        ("description = 'x'\n[training]\nepochs = 5\n", "unknown key 'training'"),
        ("[train]\nepochs = 5\n", "missing 'description'"),
        ("description = 'x'\n[train\nepochs = 5\n", "not valid TOML"),
        ("description = 'x'\n[model]\narchs = 'lstm'\n", "'model.archs' must be a list of strings"),
        ("description = 'x'\n[windows]\nsplits = [0.5, 0.5]\n", "'windows.splits' must be a list of three fractions"),
        ("description = 'x'\n[windows]\nwindow = 0\n", "[windows]: 'windows.window' must be an integer of at least 2"),
        ("description = 'x'\n[model]\narchs = ['lstm', 'transformer']\n", "[model]: unknown arch 'transformer'"),
        ("description = 'x'\n[export]\nformats = ['pickle']\n", "unknown export format 'pickle'"),
        ("description = 'x'\n[[experiment]]\nnote = 'n'\n", "experiment 1: missing 'name'"),
        ("description = 'x'\n[[experiment]]\nname = 'a'\ntrain.epochs = -1\n", "experiment 'a' [train]: 'train.epochs'"),
        ("description = 'x'\n[windows]\ntarget_kind = 'sequence'\n[model]\narchs = ['brnn']\n", "reads the future"),
    ],
)
def test_bad_recipes_are_one_line_naming_file_and_key(run_cli, tmp_path, text, words):
    path = write_recipe(tmp_path, text)
    code, out, err = run_cli("run", path, "--out", tmp_path / "out")
    assert code == 1
    assert err.startswith(f"Error: {path}") and words in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert files_under(tmp_path / "out") == {}


@pytest.mark.parametrize(
    "override, words",
    [
        ("train.epochs=five", "'train.epochs' must be an integer. Received: 'five'"),
        ("train.epoch=5", "unknown key 'train.epoch'"),
        ("epochs", "expected KEY=VALUE"),
        ("model.allow_future_leak=maybe", "'model.allow_future_leak' must be true or false"),
    ],
)
def test_bad_overrides_are_one_line(run_cli, tmp_path, override, words):
    code, out, err = run_cli("run", "dji-compare", "--set", override, "--out", tmp_path / "out")
    assert code == 1 and words in err and len(err.strip().splitlines()) == 1
    assert files_under(tmp_path / "out") == {}


def test_unknown_recipe_names_the_shipped_ones(run_cli, tmp_path):
    code, out, err = run_cli("run", "no-such-recipe", "--out", tmp_path)
    assert code == 1 and "recipe not found: no-such-recipe" in err and "dji-compare" in err


@pytest.mark.slow  # on tensorflow only: test_cli's separate-process test checks each backend's determinism
def test_same_recipe_seed_and_backend_give_identical_metrics(run_cli, tmp_path):
    path = write_recipe(tmp_path, TINY.replace('archs = ["drnn", "gru"]', 'archs = ["gru"]'))  # one model is enough
    code, out, err = run_cli("run", path, "--out", tmp_path / "a", "-q")
    assert code == 0, err
    folders = list((tmp_path / "a").iterdir())
    first = metrics_of(folders[0])
    assert first
    # The resolved recipe in the run folder repeats the run exactly: same seed, backend and rows, same metrics.
    code, out, err = run_cli("run", folders[0] / "recipe.toml", "--out", tmp_path / "c", "-q")
    assert code == 0, err
    (again,) = (tmp_path / "c").iterdir()
    assert metrics_of(again) == first
    run = json.loads((folders[0] / "run.json").read_text())
    summary = json.loads((folders[0] / "main" / "comparison.json").read_text())
    assert run["data_sha256"]["main"] == summary["settings"]["data"]["sha256"]
    assert set(run["versions"]) >= {"keras", "keras_seq", "backend"} and run["backend"] == summary["settings"]["backend"]
    resolved = (folders[0] / "recipe.toml").read_text()
    assert 'start = "2021-01-04"' in resolved and 'end = "2023-02-10"' in resolved  # the rows actually read


def test_recipe_exports_its_models(run_cli, tmp_path):
    # a panel too: ^DJI's open and close as two series of a wide table, one global model that reads the series,
    # with a distribution head whose 80% interval is conformalized
    model = '["gru"]\nscaler = "series"\nseries_embedding = 2\ndistribution = "normal"\nquantiles = [0.9]\nconformal = [0.8]'
    text = TINY.replace('["drnn", "gru"]', model).replace(
        'start = 2021-01-01', 'start = 2021-01-01\ntargets = ["Open", "Close"]')
    path = write_recipe(tmp_path, text + '\n[export]\nformats = ["onnx"]\n')
    code, out, err = run_cli("run", path, "--out", tmp_path, "-q")
    assert code == 0, err
    (folder,) = tmp_path.glob("tiny-*")
    metrics = json.loads((folder / "main" / "runs" / "gru-seed3" / "metrics.json").read_text())
    assert sorted(metrics["per_series"]) == ["Close", "Open"] and metrics["panel"]["series"] == 2
    card = json.loads((folder / "main" / "runs" / "gru-seed3" / "export" / "model_card.json").read_text())
    assert set(card["artifacts"]) == {"onnx"} and card["parity"]["onnx"]["relative_diff"] <= 1e-5
    assert card["series_vocabulary"] == ["Open", "Close"] and card["model"]["series_embedding"] == 2
    assert card["quantile_output"]["levels"] == [0.1, 0.5, 0.9] and metrics["intervals"]["levels"] == [0.1, 0.5, 0.9]
    assert card["model"]["distribution"] == "normal" and card["quantile_output"]["calibration"]["coverages"] == [0.8]
    assert "around the normal head's intervals" in card["quantile_output"]["description"]
    assert [i["name"] for i in card["artifacts"]["onnx"]["inputs"]][1] == card["series_input"]["name"]
    assert "Exported: `main/runs/gru-seed3/export`" in (folder / "report.md").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["seed-replication", "dji-compare", "dji-lstm-export"])
def test_shipped_recipe_runs_shortened(run_cli, tmp_path, name):
    # One epoch, one seed, two years of rows, a tiny network in big batches: the suite's time is short.
    shortened = ["train.epochs=1", "evaluate.repeats=1", "data.start=2021-01-04", "model.units=4", "model.layers=1",
                 "train.batch_size=64"]
    if name != "dji-lstm-export":  # two archs, one of them brnn (the future leak's report needs it)
        shortened.append("model.archs=drnn,brnn")
    code, out, err = run_cli("run", REPO / "keras_seq" / "recipes" / f"{name}.toml", *(a for s in shortened for a in ("--set", s)),
                             "--out", tmp_path, "-q")
    assert code == 0, err
    (folder,) = tmp_path.iterdir()
    assert sorted(p.name for p in folder.iterdir() if p.is_file()) == ["recipe.toml", "report.md", "run.json"]
    recipe = load_recipe(name, shortened)
    report = (folder / "report.md").read_text()
    for experiment in recipe.experiments:
        sub = folder / experiment.name
        for file in ("comparison.md", "comparison.json", "compare_loss.png", "compare_forecast.png", "compare_mae.png"):
            assert (sub / file).is_file()
        summary = json.loads((sub / "comparison.json").read_text())
        assert list(summary["archs"]) == list(experiment.compare.archs)
        assert len(summary["runs"]) == len(experiment.compare.archs) * experiment.compare.repeats
        assert {r["epochs_run"] for r in summary["runs"]} == {1}
        assert f"## {experiment.name}" in report
    if name == "seed-replication":
        assert "### Future leak" in report and "### train split" in report and "### test split" in report
    if name == "dji-lstm-export":
        export = folder / "main" / "runs" / "lstm-seed42" / "export"
        assert (export / "model.onnx").is_file() and (export / "savedmodel" / "lstm" / "1" / "saved_model.pb").is_file()
