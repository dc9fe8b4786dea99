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
