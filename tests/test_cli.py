"""keras_seq/cli.py: the commands end to end, and one clear line for every mistake."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import warnings

import pandas as pd
import pytest

from conftest import files_under, run_console
from test_models import expected_params

ARCHS = ["drnn", "brnn", "lstm", "gru"]


def test_help_imports_neither_keras_nor_tensorflow():
    code = (
        "import sys\n"
        "from keras_seq.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('keras', 'tensorflow', 'jax', 'torch', 'pandas', 'matplotlib') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "Commands:" in result.stdout and "fit" in result.stdout
    assert "HEAVY []" in result.stdout


# Every arch here; the backend passes rerun the default one (the archs' numerics per backend: test_recurrent).
@pytest.mark.parametrize("arch", [pytest.param(a, marks=pytest.mark.backend) if a == "lstm" else a for a in ARCHS])
def test_fit_one_epoch_on_dji_then_evaluate(arch, run_cli, tmp_path):
    code, out, err = run_cli("fit", "--arch", arch, "--epochs", "1", "--units", "4", "--batch-size", "64",
                             "--out", tmp_path, "--quiet")
    assert code == 0, err
    assert "test split 2022-05-13..2023-02-10: 188 windows, forecasts 1 step ahead; errors in Close's units" in out
    assert "persistence" in out and "skill vs persistence" in out
    (run_dir,) = [p for p in tmp_path.iterdir()]
    assert f"run written to {run_dir}" in out
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert f"{metrics['model']['mae']:.2f}" in out

    code, out, err = run_cli("evaluate", run_dir)
    assert code == 0, err
    assert f"{metrics['model']['mae']:.2f}" in out and "evaluation written to" in out


def test_summary_lists_weights_and_the_parameter_count(run_cli):
    for scaler in ("window", "zscore"):  # zscore keeps the training split's statistics as weights
        code, out, err = run_cli("summary", "--arch", "gru", "--scaler", scaler)
        assert code == 0, err
        assert re.search(r"^  gru_1/gru_cell/kernel +\[1, 192\]$", out, re.M)
        assert re.search(r"^  gru_2/gru_cell/recurrent_kernel +\[64, 192\]$", out, re.M)
        assert bool(re.search(r"^  prepare/mean +\[1\]  \(scaling, not trained\)$", out, re.M)) == (scaler == "zscore")
        trainable, scaling = expected_params("gru", n_features=1, units=64, layers=2, horizon=1, target_kind="next",
                                             scaler=scaler)
        assert f"parameters: {trainable + scaling} ({trainable} trainable, {scaling} scaling)" in out


def test_summary_takes_fits_model_options_and_its_features_are_columns(run_cli):
    from keras_seq.cli import cli

    model_options = {"arch", "features", "window", "horizon", "target_kind", "units", "layers", "dropout", "cell",
                     "transition_layers", "output_layers", "allow_future_leak", "backend"}
    for command in ("fit", "compare", "summary"):
        params = {p.name: p for p in cli.commands[command].params}
        assert model_options - ({"arch"} if command == "compare" else set()) <= set(params), command  # compare: --archs
        assert all(params[name].help for name in model_options - {"arch", "backend"} if name in params), command
    code, out, err = run_cli("summary", "--arch", "gru", "--features", "Close,Volume,Open", "--dropout", "0.2",
                             "--units", "4", "--layers", "1")
    assert code == 0, err
    assert re.search(r"^  gru_1/gru_cell/kernel +\[3, 12\]$", out, re.M) and "3 feature(s)" in out
    code, _, err = run_cli("summary", "--features", "Close,Close")
    assert code == 1 and "--features names a column twice: Close" in err


def test_summary_of_brnn_with_an_lstm_inside(run_cli):
    code, out, _ = run_cli("summary", "--arch", "brnn", "--cell", "lstm", "--units", "8", "--layers", "1")
    trainable, scaling = expected_params("brnn", n_features=1, units=8, layers=1, horizon=1, target_kind="next", cell="lstm")
    assert code == 0 and f"({trainable} trainable" in out
    assert "brnn_1/forward_brnn_1_lstm" in out and "brnn_1/backward_brnn_1_lstm" in out


BAD_INPUTS = [
    (["fit", "--arch", "cnn"], 2, "Invalid value for '--arch'"),
    (["fit", "--window", "abc"], 2, "'abc' is not a valid integer"),
    (["fit", "--window", "1"], 1, "--window must be an integer of at least 2. Received: window=1"),
    (["fit", "--horizon", "0"], 1, "--horizon must be an integer of at least 1"),
    (["fit", "--epochs", "0"], 1, "--epochs must be an integer of at least 1"),
    (["fit", "--units", "-3"], 1, "--units must be an integer of at least 1"),
    (["fit", "--batch-size", "0"], 1, "--batch-size must be an integer of at least 1"),
    (["fit", "--dropout", "1.5"], 1, "--dropout must be in [0, 1)"),
    (["fit", "--splits", "0.5,0.5,0.5"], 1, "--splits must be three non-negative fractions"),
    (["fit", "--splits", "a,b"], 2, "expected three numbers like 0.7,0.15,0.15"),
    (["fit", "--data", "missing.csv"], 1, "data file not found: missing.csv"),
    (["fit", "--target", "Price"], 1, "column 'Price' not found in dji. Available columns: 'Open', 'High', 'Low', 'Close', 'Volume'"),
    (["fit", "--features", "Close,Close"], 1, "names a column twice"),
    (["fit", "--features", ","], 2, "give one or more column names"),
    (["fit", "--start", "2022-01-01", "--end", "2021-01-01"], 1, "--start is after --end"),
    (["fit", "--start", "not-a-date"], 1, "--start is not a date"),
    (["fit", "--start", "1925-01-01", "--end", "1932-01-01", "--features", "Volume,Close"], 1, "column 'Volume' of dji has"),
    (["fit", "--arch", "brnn", "--target-kind", "sequence"], 1, "reads the future"),
    (["fit", "--target-kind", "sequence", "--horizon", "2"], 1, "--horizon must be 1"),
    (["fit", "--backend", "theano"], 2, "Invalid value for '--backend'"),
    (["evaluate", "no/such/run"], 1, "run folder not found: no/such/run"),
    (["summary", "--units", "0"], 1, "--units must be an integer of at least 1"),
    (["nope"], 2, "No such command 'nope'"),
]


@pytest.mark.parametrize("args, status, words", BAD_INPUTS, ids=[" ".join(a) for a, _, _ in BAD_INPUTS])
def test_bad_input_is_one_line_and_writes_nothing(args, status, words, run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out_dir = tmp_path / "saved_models"
    code, out, err = run_cli(*args)
    assert code == status
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("Error: ") and words in lines[0]
    assert "Traceback" not in out + err
    assert files_under(out_dir) == {}


def test_bad_input_after_keras_is_loaded_is_still_one_line(tmp_path):
    """Through the real console script: TensorFlow's start-up chatter must not reach the user."""
    result = run_console("fit", "--start", "2023-01-25", "--out", tmp_path / "runs", timeout=300)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "too short" in result.stderr and "Traceback" not in result.stderr
    assert files_under(tmp_path / "runs") == {}


def test_data_warnings_are_one_line_each(run_cli, write_csv, tmp_path):
    rows = "".join(f"2021-{m:02d}-{d:02d},{100 + m + d / 31 + (d % 3)}\n" for m in range(1, 7) for d in range(1, 29))
    path = write_csv("Date,Close\n" + rows + rows.splitlines()[0] + "\n")  # the first row again, at the end
    code, out, err = run_cli("fit", "--data", path, "--window", "4", "--epochs", "1", "--units", "2",
                             "--out", tmp_path / "runs", "--quiet")
    assert code == 0, err
    assert [line for line in err.strip().splitlines() if "test split holds only" not in line] == [
        "Warning: dates in " + str(path) + " were not in ascending order; sorted them.",
        "Warning: 1 repeated rows in " + str(path) + " (first: 2021-01-01); kept one of each.",
    ]


def test_a_column_name_the_plot_font_lacks_gives_no_warning(run_cli, write_csv, tmp_path):
    """The run's plots draw such characters as boxes, without matplotlib's warning for each."""
    rows = "".join(f"2021-{m:02d}-{d:02d},{100 + m + d / 31 + (d % 3)}\n" for m in range(1, 7) for d in range(1, 29))
    path = write_csv("Date,\U00031440\n" + rows)
    with warnings.catch_warnings(record=True) as caught:  # pytest would take warnings before they reach stderr
        warnings.simplefilter("always")
        code, out, err = run_cli("fit", "--data", path, "--target", "\U00031440", "--window", "4", "--epochs", "1",
                                 "--units", "2", "--out", tmp_path / "runs", "--quiet")
    assert code == 0, err
    assert "Glyph" not in err and "font" not in err.lower()
    assert not [str(w.message) for w in caught if "Glyph" in str(w.message)]
    (run,) = (tmp_path / "runs").iterdir()
    assert (run / "forecast.png").stat().st_size > 0


def test_a_backend_that_is_not_installed_names_its_extra(run_cli, monkeypatch):
    find_spec = importlib.util.find_spec  # `make test` installs torch: make it look absent to keras-seq's check
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None if name == "torch" else find_spec(name, *args))
    code, _, err = run_cli("fit", "--backend", "torch")
    assert code == 1
    assert err.strip() == "Error: backend 'torch' is not installed (no module 'torch'). Install it with: pip install 'keras-seq[torch]'"


@pytest.mark.slow
def test_same_options_and_seed_give_identical_metrics_in_separate_processes(tmp_path):
    """Two `fit` processes started at once into one --out: two folders, the same metrics.json.

    On torch: test_interrupt's resumed runs match uninterrupted ones in other processes on jax and tensorflow.
    """
    import os
    from pathlib import Path

    import importlib.util

    if importlib.util.find_spec("torch") is None:
        pytest.skip("the torch extra is not installed (make test installs it)")
    script = Path(sys.executable).with_name("keras-seq")
    args = [str(script), "fit", "--arch", "gru", "--units", "4", "--layers", "1", "--window", "8", "--epochs", "2",
            "--batch-size", "64", "--out", str(tmp_path), "-q"]
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
    folders = sorted(tmp_path.iterdir())
    assert len(folders) == 2 and all(f.name.startswith("gru-") for f in folders)  # never the same folder
    metrics = [(f / "metrics.json").read_text() for f in folders]
    assert metrics[0] == metrics[1]
    assert json.loads(metrics[0])["model"]["mae"] > 0


def test_a_test_split_of_few_windows_is_warned_of(run_cli, write_csv, tmp_path):
    """Ten test windows: the run says its figures can turn on a few dates (issue 35: no warning at 6 or 10)."""
    rows = "".join(f"{d:%Y-%m-%d},{100 + k % 7 + k / 10}\n" for k, d in
                   enumerate(pd.date_range("2020-01-01", periods=80, freq="D")))
    path = write_csv("Date,Close\n" + rows)
    code, _, err = run_cli("fit", "--data", path, "--window", "4", "--epochs", "1", "--units", "2",
                           "--splits", "0.7,0.15,0.15", "--out", tmp_path / "runs", "--quiet")
    assert code == 0, err
    (line,) = [line for line in err.splitlines() if "test split holds only" in line]
    assert line.startswith("Warning: the test split holds only ") and "compare --backtest" in line
