"""keras_seq/jobs/pool.py: a comparison's fits on local worker processes and on a dask LocalCluster give the serial
run's numbers, and an interrupted fan-out keeps what finished for `compare --resume`."""

from __future__ import annotations

import json
import os
import signal

import pytest

from keras_seq.runs.comparison import CompareSpec
from keras_seq.workflows.compare import compare_models, resume_comparison
from keras_seq.data.sources import DataSpec
from keras_seq.data.windows import WindowSpec
from keras_seq.errors import KerasSeqError, RunInterrupted
from keras_seq.jobs.pool import Fanout
from keras_seq.models import ModelSpec
from keras_seq.training.loop import TrainSpec

OPTIONS = dict(data=DataSpec(start="2019-01-01"), windows=WindowSpec(window=8), model=ModelSpec(units=4, layers=1),
               train=TrainSpec(epochs=2, batch_size=64))
SPEC = dict(archs=("drnn",), backtest=2)  # 2 fits: two walk-forward folds, one per worker


def numbers(path) -> tuple:
    """Every figure of a comparison that training decides (its seconds aside), and each model's weights file list."""
    summary = json.loads((path / "comparison.json").read_text())
    runs = [{k: v for k, v in run.items() if k != "train_seconds"} for run in summary["runs"]]
    archs = {arch: entry["splits"] for arch, entry in summary["archs"].items()}
    return runs, archs, summary["settings"]


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    return compare_models(**OPTIONS, spec=CompareSpec(**SPEC), out=tmp_path_factory.mktemp("serial"))


RECIPE = """
description = "The fan-out tests' comparison, on two local worker processes."
[data]
source = "dji"
start = 2019-01-01
[windows]
window = 8
[model]
archs = ["drnn"]
units = 4
layers = 1
[train]
epochs = 2
batch_size = 64
[evaluate]
backtest = 2
jobs = 2
"""


@pytest.mark.slow
def test_a_recipe_on_local_workers_and_a_comparison_on_a_dask_cluster_give_the_serial_numbers(serial, tmp_path,
                                                                                                run_cli):
    from distributed import LocalCluster

    recipe = tmp_path / "fanout.toml"
    recipe.write_text(RECIPE, encoding="utf-8")
    code, out, err = run_cli("run", recipe, "--out", tmp_path / "jobs")
    assert code == 0, err
    (folder,) = (tmp_path / "jobs").iterdir()
    jobs = folder / "main"
    assert numbers(jobs) == numbers(serial.path)
    assert sorted(p.name for p in jobs.iterdir()) == sorted(p.name for p in serial.path.iterdir())
    assert sorted(p.name for p in (jobs / "runs").iterdir()) == [f"drnn-seed42-fold{k}" for k in (1, 2)]
    lines = [line for line in out.splitlines() if " done in " in line]
    assert len(lines) == 2 and lines[-1].startswith("[2/2] ")  # one line per finished fit, no epoch bars
    assert "jobs = 2" in (folder / "recipe.toml").read_text()  # the resolved recipe runs the same way again
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        spec = CompareSpec(**SPEC, scheduler=cluster.scheduler_address)
        on_dask = compare_models(**OPTIONS, spec=spec, out=tmp_path / "dask")
    assert numbers(on_dask.path) == numbers(serial.path)
    assert "jobs" not in json.loads((on_dask.path / "comparison.json").read_text())["settings"]["compare"]


@pytest.mark.slow
def test_an_interrupted_fan_out_keeps_what_finished_and_resume_gives_the_serial_numbers(serial, tmp_path,
                                                                                       monkeypatch):
    import keras_seq.runs.comparison as comparison

    out, write = tmp_path / "out", comparison.write_fit_folder

    def interrupt_after_the_first_fit(folder, outcome):  # Ctrl-C as the first worker's fit lands (not a thread's
        write(folder, outcome)  # poll: the two fits end together, and a poll could come after the comparison)
        if len(list(folder.glob("runs/*-fold*"))) == 1:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(comparison, "write_fit_folder", interrupt_after_the_first_fit)
    with pytest.raises(RunInterrupted, match=r"SIGINT received: the comparison stopped\. [12] of 2 fits finished") as info:
        compare_models(**OPTIONS, spec=CompareSpec(**SPEC, jobs=2), out=out)
    (kept,) = out.iterdir()
    assert str(kept) in str(info.value) and f"keras-seq compare --resume {kept}" in str(info.value)
    record = json.loads((kept / "interrupted.json").read_text())
    finished = sorted(record["finished"])
    assert 1 <= len(finished) <= 2 and sorted(p.name for p in (kept / "runs").iterdir()) == finished
    assert not (kept / "comparison.json").exists()

    resumed = resume_comparison(kept)  # the rest here, one after another
    assert resumed.path == kept and not (kept / "interrupted.json").exists() and not (kept / "fits").exists()
    assert numbers(kept) == numbers(serial.path)


def test_a_changed_or_foreign_folder_is_refused_by_resume(serial, tmp_path):
    with pytest.raises(KerasSeqError, match="is not an interrupted comparison: it has no interrupted.json"):
        resume_comparison(serial.path)
    folder = tmp_path / "cut"
    folder.mkdir()
    (folder / "interrupted.json").write_text(json.dumps({"settings": {"compare": 3}}))
    with pytest.raises(KerasSeqError, match="is not a keras-seq comparison record"):
        resume_comparison(folder)
    outside = tmp_path / "outside.md"
    (folder / "comparison.md").symlink_to(outside)  # a hostile folder: finishing it would write through the link
    with pytest.raises(KerasSeqError, match="comparison.md is a symlink"):
        resume_comparison(folder)
    assert not outside.exists()


@pytest.mark.parametrize("fanout, message", [
    (dict(jobs=0), "`jobs` must be an integer of at least 1"),
    (dict(scheduler="8786"), "`scheduler` takes a dask scheduler's address such as tcp://"),
])
def test_bad_fan_out_options_are_one_line(fanout, message):
    with pytest.raises(KerasSeqError, match=message):
        Fanout(**fanout)
    with pytest.raises(KerasSeqError, match=message):
        CompareSpec(**fanout)


def test_an_unreachable_scheduler_is_one_line_and_writes_nothing(closed_port_url, tmp_path, monkeypatch):
    monkeypatch.setattr("keras_seq.jobs.pool.CONNECT_SECONDS", 1)
    address = closed_port_url.replace("http://", "tcp://").rstrip("/")
    with pytest.raises(KerasSeqError, match=f"cannot reach the dask scheduler at {address}"):
        compare_models(**OPTIONS, spec=CompareSpec(**SPEC, scheduler=address), out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_compare_resume_takes_its_options_from_the_folder(run_cli, tmp_path):
    code, out, err = run_cli("compare", "--resume", tmp_path, "--epochs", "3", "--jobs", "2")
    assert code == 2 and "--resume takes every option from the comparison's interrupted.json; drop --epochs" in err
    code, out, err = run_cli("compare", "--resume", tmp_path, "--jobs", "2")
    assert code == 1 and f"{tmp_path} is not an interrupted comparison: it has no interrupted.json" in err
    assert len(err.strip().splitlines()) == 1 and not any(tmp_path.iterdir())


def test_fan_out_and_data_parallel_fits_are_refused_together(tmp_path):
    with pytest.raises(KerasSeqError, match="leave `devices` at 1"):
        compare_models(**{**OPTIONS, "train": TrainSpec(epochs=1, devices=2)}, spec=CompareSpec(**SPEC, jobs=2),
                       out=tmp_path)
