"""Interrupted fits: Ctrl-C and SIGKILL lose nothing, and `fit --resume` ends where an uninterrupted run would.

Real `keras-seq fit` processes (the default backend, jax), real signals.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import run_console

FIT = ["fit", "--arch", "gru", "--units", "4", "--layers", "1", "--epochs", "8", "--seed", "5", "-q"]


def _metrics(folder: Path) -> dict:
    (run,) = [p for p in folder.iterdir() if not p.name.startswith(".")]
    return json.loads((run / "metrics.json").read_text())


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    """The metrics of the same fit, never interrupted."""
    out = tmp_path_factory.mktemp("reference")
    done = run_console(*FIT, "--out", out)
    assert done.returncode == 0, done.stderr
    return _metrics(out)


def _fit_until_epoch(out: Path, epochs_done: int, *extra: str) -> subprocess.Popen:
    """Start `fit` and return once its checkpoint holds `epochs_done` epochs (read as a reader would)."""
    script = Path(sys.executable).with_name("keras-seq")
    process = subprocess.Popen([str(script), *FIT, *extra, "--out", str(out)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        for checkpoint in out.glob(".*.partial/checkpoint.npz"):
            try:
                with np.load(checkpoint) as stored:
                    if json.loads(str(stored["meta"]))["epochs_done"] >= epochs_done:
                        return process
            except (OSError, ValueError, KeyError):  # the rename is atomic: never a half-written file
                pytest.fail(f"{checkpoint} could not be read while training")
        time.sleep(0.01)
    process.kill()
    pytest.fail(f"no checkpoint of {epochs_done} epochs appeared: {process.communicate()[1][-500:]}")


@pytest.mark.slow
def test_sigkill_leaves_a_checkpoint_that_resumes_to_the_same_metrics(tmp_path, reference):
    process = _fit_until_epoch(tmp_path, 3)
    process.send_signal(signal.SIGKILL)
    process.wait()
    (partial,) = tmp_path.iterdir()  # no published run: only the staged folder
    assert partial.name.startswith(".gru-") and partial.name.endswith(".partial")
    entries = sorted(p.name for p in partial.iterdir())
    # A kill during an epoch's checkpoint write leaves that write's temporary file beside the last whole checkpoint.
    cut_short = [e for e in entries if e.startswith(".checkpoint.npz.") and e.endswith(".tmp")]
    assert [e for e in entries if e not in cut_short] == ["checkpoint.npz", "config.json"] and len(cut_short) <= 1
    assert json.loads((partial / "config.json").read_text())["status"] == "running"

    refused = run_console("evaluate", partial)
    assert refused.returncode == 1 and f"fit --resume {partial}" in refused.stderr

    resumed = run_console("fit", "--resume", partial, "-q")
    assert resumed.returncode == 0, resumed.stderr
    assert not partial.exists() and _metrics(tmp_path) == reference
    (run,) = tmp_path.iterdir()
    assert not (run / "checkpoint.npz").exists() and json.loads((run / "config.json").read_text())["status"] == "complete"


@pytest.mark.slow
def test_ctrl_c_keeps_the_best_weights_marked_interrupted_and_resumes(tmp_path, reference):
    process = _fit_until_epoch(tmp_path, 3)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 130
    (run,) = tmp_path.iterdir()
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr
    assert f"the best weights so far are in {run}" in lines[0] and f"keras-seq fit --resume {run}" in lines[0]
    config = json.loads((run / "config.json").read_text())
    assert config["status"] == "interrupted" and config["result"]["epochs_run"] >= 3
    assert {"model.keras", "checkpoint.npz", "history.csv", "manifest.json"} <= {p.name for p in run.iterdir()}

    for command in (["evaluate", run], ["export", run, "--format", "keras"], ["predict", run]):
        refused = run_console(*command)
        assert refused.returncode == 1 and "is an unfinished run (interrupted after" in refused.stderr
    mixed = run_console("fit", "--resume", run, "--epochs", "3")
    assert mixed.returncode == 2 and "drop --epochs" in mixed.stderr

    resumed = run_console("fit", "--resume", run, "-q")
    assert resumed.returncode == 0, resumed.stderr
    assert _metrics(tmp_path) == reference
    again = run_console("fit", "--resume", run)
    assert again.returncode == 1 and "is a complete run: there is nothing to resume" in again.stderr


@pytest.mark.slow
def test_a_run_killed_on_tensorflow_resumes_to_the_same_metrics(tmp_path):
    """The batch order is a function of seed and epoch on tensorflow too."""
    done = run_console(*FIT, "--backend", "tensorflow", "--out", tmp_path / "reference")
    assert done.returncode == 0, done.stderr
    process = _fit_until_epoch(tmp_path / "cut", 3, "--backend", "tensorflow")
    process.send_signal(signal.SIGKILL)
    process.wait()
    (partial,) = (tmp_path / "cut").iterdir()
    resumed = run_console("fit", "--resume", partial, "-q")
    assert resumed.returncode == 0, resumed.stderr
    assert _metrics(tmp_path / "cut") == _metrics(tmp_path / "reference")


def _wait_for(pattern_parent: Path, pattern: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if list(pattern_parent.glob(pattern)):
            return
        time.sleep(0.05)
    process.kill()
    pytest.fail(f"no {pattern} under {pattern_parent}: {process.communicate()[1][-500:]}")


@pytest.mark.slow
def test_sigint_and_sigterm_stop_compare_and_export_the_same_way_and_leave_nothing(tmp_path):
    """Signals set a flag that each command checks at its safe points: one line, exit 130, no folder left."""
    done = run_console("fit", "--arch", "gru", "--units", "4", "--layers", "1", "--epochs", "1", "-q", "--out", tmp_path / "run")
    assert done.returncode == 0, done.stderr
    (run,) = (tmp_path / "run").iterdir()
    before = sorted(p.name for p in run.iterdir())
    script = Path(sys.executable).with_name("keras-seq")
    compare = ["compare", "--archs", "gru,drnn", "--units", "4", "--layers", "1", "--epochs", "500", "-q"]
    started = {}
    # SIGINT and SIGTERM set the same flag: each once, in a compare and in an export.
    for name, args, staged in [("compare-SIGINT", compare, ".compare-*.partial"),
                               ("export-SIGTERM", ["export", run, "--format", "savedmodel,onnx,keras"], ".export.*.partial")]:
        out = tmp_path / name
        out.mkdir()
        command = [*args, "--out", out / "export"] if name.startswith("export") else [*args, "--out", out]
        process = subprocess.Popen([str(script), *map(str, command)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True)
        started[name] = (process, out, staged)  # an export stages its folder beside --out
    for name, (process, out, staged) in started.items():
        _wait_for(out, staged, process)
        if name.startswith("compare"):
            time.sleep(1.0)  # into the first model's training
        process.send_signal(signal.SIGINT if name.endswith("SIGINT") else signal.SIGTERM)
    for name, (process, out, _) in started.items():
        _, stderr = process.communicate(timeout=300)
        lines = stderr.strip().splitlines()
        assert process.returncode == 130, stderr
        assert len(lines) == 1 and "Traceback" not in stderr, stderr
        assert f"{name.split('-')[1]} received: " in lines[0] and "stopped; nothing was written" in lines[0], lines[0]
        assert list(out.iterdir()) == [], f"{name} left {list(out.iterdir())}"
    assert sorted(p.name for p in run.iterdir()) == before
