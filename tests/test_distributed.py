"""Data-parallel training (keras_seq/training/distributed.py): two host devices and two processes on 127.0.0.1 train as one,
and a two-device run or a two-process job stopped and resumed ends as the uninterrupted one."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest

from keras_seq.training.distributed import Cluster
from keras_seq.errors import KerasSeqError
from keras_seq.training.loop import TrainSpec

TINY = ["--units", "8", "--layers", "1", "--window", "10"]

# Trains the same tiny LSTM on one and on two host devices in one jax process: keras-seq itself asks XLA for the
# second device (the test does not set XLA_FLAGS). Prints both histories and the largest weight difference.
ONE_AND_TWO_DEVICES = textwrap.dedent("""
    import json, os, sys
    import numpy as np
    from keras_seq.data.sources import DataSpec
    from keras_seq.data.windows import WindowSpec
    from keras_seq.workflows.fit import fit_run
    from keras_seq.models.spec import ModelSpec
    from keras_seq.training.loop import TrainSpec

    runs = {}
    for devices in (2, 1):
        result = fit_run(DataSpec(source=sys.argv[1]), WindowSpec(window=10), ModelSpec(units=8, layers=1),
                         TrainSpec(epochs=3, devices=devices), out=sys.argv[2], verbose=0)
        runs[devices] = result
    # The two-device run again, stopped by SIGINT after its second epoch and resumed from its checkpoint.
    import signal
    from pathlib import Path
    from keras_seq.errors import RunInterrupted
    from keras_seq.workflows.fit import resume_run
    from keras_seq.training.loop import watching_epochs

    def stop_after_the_second_epoch(epoch, logs, model):
        if epoch == 1:
            os.kill(os.getpid(), signal.SIGINT)  # training stops after the current batch: the epoch's last

    try:
        with watching_epochs(stop_after_the_second_epoch):
            fit_run(DataSpec(source=sys.argv[1]), WindowSpec(window=10), ModelSpec(units=8, layers=1),
                    TrainSpec(epochs=3, devices=2), out=Path(sys.argv[2]) / "cut", verbose=0)
        raise SystemExit("the signal did not stop the two-device run")
    except RunInterrupted:
        (cut,) = (Path(sys.argv[2]) / "cut").iterdir()
    runs["resumed"] = resume_run(cut, verbose=0)
    import jax
    from keras_seq.models.builders import load_model  # Keras loads in the first fit, after the devices are set
    weights = {d: load_model(runs[d].path / "model.keras").get_weights() for d in (1, 2, "resumed")}
    print(json.dumps({"devices": jax.device_count(), "flags": os.environ.get("XLA_FLAGS"),
                      "tensorflow": "tensorflow" in sys.modules,
                      "history": {d: runs[d].history for d in (1, 2, "resumed")},
                      "mae": {d: runs[d].report.model["mae"] for d in (1, 2)},
                      "weights": max(float(np.abs(a - b).max()) for a, b in zip(weights[1], weights[2])),
                      "resumed_weights": max(float(np.abs(a - b).max()) for a, b in zip(weights[2], weights["resumed"]))}))
""")


@pytest.fixture
def series_csv(tmp_path):
    rng = np.random.default_rng(0)
    dates = pd.bdate_range("2020-01-01", periods=200)
    path = tmp_path / "series.csv"
    pd.DataFrame({"Date": dates, "Close": 100 + np.cumsum(rng.normal(0, 1, 200))}).to_csv(path, index=False)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_two_devices_and_two_processes_train_like_one_device_and_a_signal_to_one_process_stops_and_resumes_all(
        series_csv, tmp_path):
    """One jax process trains on one and two host devices (and a two-device run stopped and resumed); meanwhile a
    two-process job on 127.0.0.1 is signalled on process 0 alone, stops every process after the same epoch, and is
    resumed by both to the one-device run's losses."""
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "KERAS_BACKEND")} | {"KERAS_BACKEND": "jax"}
    # TensorFlow's notices left on: a process that loads it prints its oneDNN line, as a user would see
    loud = {k: v for k, v in env.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    script = str(os.path.join(os.path.dirname(sys.executable), "keras-seq"))

    def job(*args):
        address = f"127.0.0.1:{free_port()}"
        return [subprocess.Popen([script, "fit", *args, "--coordinator", address, "--num-processes", "2",
                                  "--process-id", str(k)], env=loud, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True) for k in (0, 1)]

    # The signal comes after epoch 1: 16 epochs leave room for a loaded machine (the job polls for the first
    # checkpoint every 50 ms; an epoch of the two-process job takes about 0.5 s).
    started = job("--data", str(series_csv), *TINY, "--epochs", "16", "-q", "--devices", "all",
                  "--out", str(tmp_path / "job"))
    in_one = subprocess.Popen([sys.executable, "-c", ONE_AND_TWO_DEVICES, str(series_csv), str(tmp_path / "one")],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not list(tmp_path.glob("job/.*.partial/checkpoint.npz")):
        time.sleep(0.05)
    started[0].send_signal(signal.SIGINT)  # process 0 alone, as Ctrl-C on one host's terminal
    outputs = [process.communicate(timeout=240)[0] for process in started]
    assert [p.returncode for p in started] == [130, 130], outputs[0][-2000:] + outputs[1][-2000:]
    assert "Traceback" not in outputs[0] + outputs[1]
    assert "process 1 of 2: the job stopped on a signal after a whole epoch" in outputs[1]
    (run,) = (tmp_path / "job").iterdir()  # process 0 kept the folder, process 1 wrote nothing
    config = json.loads((run / "config.json").read_text())
    assert config["status"] == "interrupted" and 1 <= config["result"]["epochs_run"] < 16
    assert f"keras-seq fit --resume {run}" in outputs[0]
    resumed = job("--resume", str(run), "-q")  # every process resumes from the folder process 0 kept
    outputs += [process.communicate(timeout=240)[0] for process in resumed]
    assert [p.returncode for p in resumed] == [0, 0], outputs[2][-2000:] + outputs[3][-2000:]
    assert "process 1 of 2: trained" in outputs[3]
    assert not any("oneDNN" in output for output in outputs)  # joining the job did not load TensorFlow

    stdout, stderr = in_one.communicate(timeout=300)
    assert in_one.returncode == 0, stderr[-3000:]
    found = json.loads(stdout.strip().splitlines()[-1])
    assert found["devices"] == 2 and "--xla_force_host_platform_device_count=2" in found["flags"]
    assert found["tensorflow"] is False  # a jax fit (and its .keras save) never imports TensorFlow
    one, two = found["history"]["1"], found["history"]["2"]
    assert len(one["loss"]) == 3 and one["loss"][0] != one["loss"][-1]  # it trained
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(two[key], one[key], rtol=0, atol=1e-5)
    assert found["weights"] < 1e-5
    assert found["mae"]["2"] == pytest.approx(found["mae"]["1"], abs=1e-3)
    # A two-device run stopped after epoch 2 and resumed ends where the uninterrupted one did.
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(found["history"]["resumed"][key], two[key], rtol=0, atol=1e-6)
    assert found["resumed_weights"] < 1e-6
    # The two-process job, stopped and resumed, trained its first epochs as the one-device run did.
    config = json.loads((run / "config.json").read_text())
    assert config["status"] == "complete" and config["result"]["epochs_run"] == 16
    assert config["train"]["devices"] == "all"
    history = pd.read_csv(run / "history.csv")
    assert len(history) == 16
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(history[key][:3], one[key], rtol=0, atol=1e-5)


def test_devices_option_is_checked_before_any_work(run_cli, tmp_path):
    code, _, err = run_cli("fit", "--devices", "two", "--out", tmp_path)
    assert code != 0 and "expected a positive integer or 'all'" in err
    with pytest.raises(KerasSeqError, match="positive integer or \"all\""):
        TrainSpec(devices=0)
    # The in-process suite runs on tensorflow (or torch): data-parallel training needs jax, in one line.
    import keras

    if keras.backend.backend() != "jax":
        code, _, err = run_cli("fit", "--devices", "2", "--epochs", "1", "--out", tmp_path)
        assert code != 0 and "runs on the jax backend" in err and "Traceback" not in err
        assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("given, environment, message", [
    ({"coordinator": "127.0.0.1:1234"}, {}, "needs --num-processes"),
    ({"coordinator": "127.0.0.1:1234", "num_processes": 2, "process_id": 2}, {}, "from 0 to 1"),
    ({"coordinator": "no-port", "num_processes": 2, "process_id": 0}, {}, "must be host:port"),
    ({}, {"KERAS_DISTRIBUTION_NUM_PROCESSES": "two"}, "must be a whole number"),
])
def test_an_incomplete_cluster_is_refused_in_one_line(monkeypatch, given, environment, message):
    for name in ("KERAS_DISTRIBUTION_JOB_ADDRESSES", "KERAS_DISTRIBUTION_NUM_PROCESSES", "KERAS_DISTRIBUTION_PROCESS_ID"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(KerasSeqError, match=message):
        Cluster.from_environment(**given)


def test_the_cluster_comes_from_keras_environment_variables(monkeypatch):
    monkeypatch.setenv("KERAS_DISTRIBUTION_JOB_ADDRESSES", "10.0.0.1:1234,10.0.0.2:2345")
    monkeypatch.setenv("KERAS_DISTRIBUTION_NUM_PROCESSES", "2")
    monkeypatch.setenv("KERAS_DISTRIBUTION_PROCESS_ID", "1")
    assert Cluster.from_environment(process_id=0) == Cluster("10.0.0.1:1234,10.0.0.2:2345", 2, 0)
