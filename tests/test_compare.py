"""keras_seq/workflows/compare.py and `keras-seq compare`: identical conditions, honest scores, folds that only look back."""

from __future__ import annotations

import json

import numpy as np
import pytest

from keras_seq.runs.comparison import CompareSpec, backtest_folds
from keras_seq.workflows.compare import compare_models
from keras_seq.data.sources import DataSpec
from keras_seq.data.windows import WindowSpec
from keras_seq.errors import KerasSeqError
from keras_seq.models import ModelSpec
from keras_seq.training.loop import TrainSpec

from conftest import files_under


SMALL = dict(model=ModelSpec(units=4, layers=1), train=TrainSpec(epochs=2, batch_size=64))


@pytest.fixture(scope="module")
def repeated(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare")
    return compare_models(DataSpec(), WindowSpec(window=8), spec=CompareSpec(archs=("drnn", "gru"), repeats=2),
                          out=out, **SMALL)


@pytest.mark.backend  # a comparison trains on each backend; the rest is orchestration
def test_comparison_folder_holds_tables_plots_and_every_model(repeated):
    names = sorted(p.name for p in repeated.path.iterdir())
    assert names == ["compare_forecast.png", "compare_loss.png", "compare_mae.png", "comparison.json",
                     "comparison.md", "runs"]
    assert repeated.path.name.startswith("compare-")
    runs = sorted(p.name for p in (repeated.path / "runs").iterdir())
    assert runs == ["drnn-seed42", "drnn-seed43", "gru-seed42", "gru-seed43"]
    for name in runs:
        assert (repeated.path / "runs" / name / "model.keras").is_file()
    for plot in ("compare_forecast.png", "compare_loss.png", "compare_mae.png"):
        assert (repeated.path / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.backend  # a comparison trains on each backend; the rest is orchestration
def test_every_arch_is_scored_on_identical_windows_and_seeds(repeated):
    summary = json.loads((repeated.path / "comparison.json").read_text())
    configs = {name: json.loads((repeated.path / "runs" / name / "config.json").read_text())
               for name in ("drnn-seed42", "drnn-seed43", "gru-seed42", "gru-seed43")}
    split_dates = {json.dumps(c["split_dates"], sort_keys=True) for c in configs.values()}
    scaling = {json.dumps(c["scaling"], sort_keys=True) for c in configs.values()}
    assert len(split_dates) == 1 and len(scaling) == 1
    assert [c["train"]["seed"] for c in configs.values()] == [42, 43, 42, 43]
    assert {c["train"]["epochs"] for c in configs.values()} == {2}
    reports = [r["splits"]["test"] for r in summary["runs"]]
    assert len({(r["first_date"], r["last_date"], r["windows"]) for r in reports}) == 1
    assert len({r["persistence"]["mae"] for r in reports}) == 1
    assert summary["settings"]["seeds"] == [42, 43]


@pytest.mark.backend  # a comparison trains on each backend; the rest is orchestration
def test_summary_is_mean_and_std_over_seeds(repeated):
    summary = json.loads((repeated.path / "comparison.json").read_text())
    for arch in ("drnn", "gru"):
        maes = [r["splits"]["test"]["model"]["mae"] for r in summary["runs"] if r["arch"] == arch]
        stats = summary["archs"][arch]["splits"]["test"]["mae"]
        assert stats["mean"] == pytest.approx(np.mean(maes)) and stats["std"] == pytest.approx(np.std(maes, ddof=1))
        assert maes[0] != maes[1]  # two seeds, two models
        config = json.loads((repeated.path / "runs" / f"{arch}-seed42" / "config.json").read_text())
        assert summary["archs"][arch]["parameters"] == config["parameters"]
    markdown = (repeated.path / "comparison.md").read_text()
    assert repeated.markdown == markdown
    assert "| drnn |" in markdown and "| persistence |" in markdown and "| naive2 |" in markdown and " ± " in markdown
    table = [line for line in markdown.split("## test split")[1].splitlines() if line.startswith("|")]
    assert len({line.count("|") for line in table}) == 1  # every row, baselines too, has a cell per column
    persistence = next(line for line in table if line.startswith("| persistence |")).split("|")
    assert float(persistence[9]) == pytest.approx(summary["splits"]["test"]["persistence"]["smape"], abs=1e-3)  # sMAPE


def test_backtest_folds_cut_the_test_rows_and_only_look_back():
    folds = backtest_folds(1000, WindowSpec(splits=(0.7, 0.15, 0.15)), 3)
    assert folds[0][1] == 850 and folds[-1][2] == 1000
    assert all(a[2] == b[1] for a, b in zip(folds, folds[1:]))  # contiguous test blocks
    assert all(test_lo - val_lo == 150 for val_lo, test_lo, _ in folds)  # same validation length


def test_backtest_pools_its_folds(tmp_path):
    result = compare_models(DataSpec(), WindowSpec(window=8), spec=CompareSpec(archs=("gru",), backtest=3),
                            out=tmp_path, **SMALL)
    summary = result.summary
    folds = [r for r in summary["runs"] if isinstance(r["fold"], int)]
    (pooled,) = [r for r in summary["runs"] if r["fold"] == "pooled"]
    assert [r["fold"] for r in folds] == [1, 2, 3]
    sizes = [r["splits"]["test"]["windows"] for r in folds]
    fold_maes = [r["splits"]["test"]["model"]["mae"] for r in folds]
    assert pooled["splits"]["backtest"]["windows"] == sum(sizes) == 188
    assert pooled["splits"]["backtest"]["model"]["mae"] == pytest.approx(np.average(fold_maes, weights=sizes))
    for name in ("model", "persistence"):  # each fold scales by its own training split: MASE over every window
        fold_mases = [r["splits"]["test"][name]["mase"] for r in folds]
        assert pooled["splits"]["backtest"][name]["mase"] == pytest.approx(np.average(fold_mases, weights=sizes))
    assert "| nan |" not in result.markdown
    previous_test_last = None
    for record in folds:
        dates = json.loads((result.path / record["run"] / "config.json").read_text())["split_dates"]
        assert dates["train"]["last"] < dates["validation"]["first"] <= dates["validation"]["last"] < dates["test"]["first"]
        if previous_test_last:
            assert dates["test"]["first"] > previous_test_last
        previous_test_last = dates["test"]["last"]
    assert previous_test_last == "2023-02-10"
    assert "## test MAE per walk-forward fold" in result.markdown


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(archs=("lstm", "transformer")), "unknown arch 'transformer'"),
        (dict(archs=("lstm", "lstm")), "may appear once"),
        (dict(repeats=0), "`repeats` must be an integer"),
        (dict(backtest=-1), "`backtest` must be an integer of at least 0"),
        (dict(on=("holdout",)), "unknown split 'holdout'"),
        (dict(backtest=2, on=("train", "test")), "scores its test folds only"),
    ],
)
def test_compare_spec_refuses_bad_options(kwargs, words):
    with pytest.raises(KerasSeqError, match=words):
        CompareSpec(**kwargs)


def test_cli_compare_writes_its_folder_and_labels_each_fits_progress(run_cli, tmp_path):
    code, out, err = run_cli("compare", "--archs", "drnn,lstm", "--epochs", "1", "--units", "4", "--layers", "1",
                             "--window", "8", "--out", tmp_path)
    assert code == 0, err
    (folder,) = tmp_path.iterdir()
    assert f"comparison written to {folder}" in out
    assert "| lstm |" in out and "| persistence |" in out
    assert (folder / "comparison.md").read_text() in out
    # Keras's progress lines, each block under the fit it belongs to.
    lines = out.splitlines()
    first, second = lines.index("[1/2] drnn, seed 42"), lines.index("[2/2] lstm, seed 42")
    assert first < second and any("val_loss:" in line for line in lines[first:second])


@pytest.mark.parametrize(
    "args, words",
    [
        (["--archs", "lstm,transformer"], "unknown arch 'transformer'"),
        (["--archs", "lstm,lstm"], "each arch may appear once"),
        (["--repeats", "0"], "--repeats"),
        (["--backtest", "500"], "--backtest 500 cuts the 188 test rows"),
        (["--target-kind", "sequence"], "arch 'brnn' with target kind 'sequence' reads the future"),
    ],
)
def test_cli_compare_bad_options_are_one_line_and_write_nothing(run_cli, tmp_path, args, words):
    code, out, err = run_cli("compare", "--out", tmp_path / "out", *args)
    assert code != 0
    assert words in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert files_under(tmp_path / "out") == {}
