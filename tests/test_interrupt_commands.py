"""Interrupted commands: a compare and an export stopped by SIGINT or SIGTERM, a tensorflow fit killed and resumed.

Real `keras-seq` processes, real signals (test_interrupt.py: the jax fits).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import run_console
from test_interrupt import FIT, _fit_until_epoch, _metrics

TENSORFLOW = ["--backend", "tensorflow", "--start", "2021-01-01"]


@pytest.mark.slow
def test_a_run_killed_on_tensorflow_resumes_to_the_same_metrics(tmp_path, run_cli):
    """The batch order is a function of seed and epoch on tensorflow too. The killed fit runs in its own process;
    the reference and the resumed fit in this one (the tests' Keras runs on tensorflow)."""
    # Two years of rows: tensorflow's epochs are slower than jax's, and the kill still comes mid-run.
    code, _, err = run_cli(*FIT, *TENSORFLOW, "--out", tmp_path / "reference")
    assert code == 0, err
    process = _fit_until_epoch(tmp_path / "cut", 3, *TENSORFLOW)
    process.send_signal(signal.SIGKILL)
    process.wait()
    (partial,) = (tmp_path / "cut").iterdir()
    code, _, err = run_cli("fit", "--resume", partial, "-q")
    assert code == 0, err
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
