"""Runs logged where teams look: a real `mlflow server` (SQLite store) on 127.0.0.1, read back through MlflowClient,
and TensorBoard event files read back with tensorboard's own reader."""

import csv
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import files_under, open_page

pytestmark = pytest.mark.slow


class MlflowServer:
    """`mlflow server` on a free port of 127.0.0.1 with a SQLite backend store; it starts while the test trains."""

    def __init__(self, folder: Path):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.log = open(folder / "server.log", "wb")
        self.process = subprocess.Popen(
            [str(Path(sys.executable).with_name("mlflow")), "server", "--backend-store-uri",
             f"sqlite:///{folder / 'mlflow.db'}", "--artifacts-destination", str(folder / "artifacts"),
             "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=folder,
            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})
        self._url = f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The server's URL, once it answers /health (at most 120 s)."""
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{self._url}/health", timeout=2):
                    return self._url
            except OSError:
                assert self.process.poll() is None and time.monotonic() < deadline, "mlflow server did not start"
                time.sleep(0.3)

    def client(self):
        import mlflow

        return mlflow.MlflowClient(tracking_uri=self.url)

    def close(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    server = MlflowServer(tmp_path_factory.mktemp("mlflow"))
    yield server
    server.close()


def runs_of(client, experiment="keras-seq"):
    found = client.get_experiment_by_name(experiment)
    return {r.info.run_name: r for r in client.search_runs([found.experiment_id])} if found else {}


def test_a_fit_logs_its_options_epochs_metrics_files_and_tags_to_mlflow_and_its_epochs_to_tensorboard(
        mlflow_server, fit_tiny, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    server = mlflow_server
    run = fit_tiny("--epochs", "2", "--mlflow", server.url, "--tensorboard", tmp_path / "tb")
    config = json.loads((run / "config.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    history = list(csv.DictReader((run / "history.csv").open()))

    client = server.client()
    logged = runs_of(client)[run.name]
    assert logged.info.status == "FINISHED"
    params = logged.data.params
    options = {f"{s}.{k}": v for s in ("data", "windows", "model", "train") for k, v in config[s].items()}
    assert set(options) <= set(params) and params["model.units"] == "4" and params["windows.window"] == "8"
    assert params["data.sha256"] == config["data"]["sha256"]
    tags = logged.data.tags
    assert (tags["keras_seq.arch"], tags["keras_seq.backend"]) == ("lstm", config["backend"])
    assert tags["keras_seq.data_sha256"] == config["data"]["sha256"]
    assert tags["keras_seq.version"] == config["versions"]["keras_seq"]
    losses = client.get_metric_history(logged.info.run_id, "val_loss")
    assert [(m.step, m.value) for m in losses] == [(int(r["epoch"]), pytest.approx(float(r["val_loss"])))
                                                   for r in history]
    assert logged.data.metrics["test_mae"] == pytest.approx(metrics["model"]["mae"])
    assert logged.data.metrics["test_persistence_mae"] == pytest.approx(metrics["baselines"]["persistence"]["mae"])
    assert logged.data.metrics["test_seasonal_naive_mase"] == pytest.approx(
        metrics["baselines"]["seasonal naive"]["mase"])
    artifacts = {a.path for a in client.list_artifacts(logged.info.run_id)}
    assert {"model.keras", "config.json", "metrics.json", "forecast.png", "loss.png"} <= artifacts

    (board,) = (tmp_path / "tb").iterdir()
    assert board.name == run.name
    for split, column in (("train", "loss"), ("validation", "val_loss")):
        events = EventAccumulator(str(board / split))
        events.Reload()
        assert [(s.step, s.value) for s in events.Scalars("epoch_loss")] == [
            (int(r["epoch"]), pytest.approx(float(r[column]), rel=1e-6)) for r in history]


def test_a_comparison_and_a_study_log_as_parent_runs_with_a_child_per_fit_and_per_trial(
        mlflow_server, run_cli, tmp_path, chromium):
    tiny = ("--window", "8", "--units", "4", "--layers", "1", "--epochs", "1", "--start", "2022-06-01",
            "--out", tmp_path)
    code, _, err = run_cli("compare", "--archs", "lstm,gru", "-q", *tiny)
    assert code == 0, err
    code, out, err = run_cli("tune", "--trials", "2", "--study", "tiny", "--no-refit", *tiny)
    assert code == 0, err
    # one line per trial with its score and the best so far, no progress bar in a log (issue 35's first hour)
    lines = [line for line in out.splitlines() if line.startswith("trial ")]
    assert len(lines) == 2 and lines[0].startswith("trial 0: val_mase ") and "; best " in lines[1], out
    assert "\x1b[" not in out + err and "━" not in out + err
    (comparison,) = tmp_path.glob("compare-*")
    server = mlflow_server
    for folder, experiment in ((comparison, "comparisons"), (tmp_path / "tiny", "studies")):
        code, out, err = run_cli("log", folder, "--mlflow", server.url, "--experiment", experiment)
        assert code == 0 and "logged" in out, err

    client = server.client()
    runs = runs_of(client, "comparisons")
    parent = runs[comparison.name]
    children = {name: r for name, r in runs.items() if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    assert sorted(children) == sorted(p.name for p in (comparison / "runs").iterdir())
    summary = json.loads((comparison / "comparison.json").read_text())
    for record in summary["runs"]:
        child = children[Path(record["run"]).name]
        assert child.data.metrics["test_mae"] == pytest.approx(record["splits"]["test"]["model"]["mae"])
    assert "comparison.md" in {a.path for a in client.list_artifacts(parent.info.run_id)}

    # Their HTML pages too (`keras-seq report`, issue 35's item 4), drawn in Chromium without an error
    for folder, words in ((comparison, ("lstm", "gru", "Validation loss per epoch")),
                          (tmp_path / "tiny", ("best so far", "Study"))):
        code, out, err = run_cli("report", folder)
        assert code == 0 and "report written to" in out, err
        dom = open_page(chromium, folder / "report.html", "--dump-dom")
        assert 'data-drawn="yes"' in dom and "data-errors" not in dom and all(w in dom for w in words)

    runs = runs_of(client, "studies")
    study = runs["tiny"]
    trials = {name: r for name, r in runs.items() if r.data.tags.get("mlflow.parentRunId") == study.info.run_id}
    assert sorted(trials) == ["trial 0", "trial 1"]
    table = {row["number"]: row for row in csv.DictReader((tmp_path / "tiny" / "trials.csv").open())}
    for name, trial in trials.items():
        row = table[name.split()[1]]
        assert trial.data.metrics["value"] == pytest.approx(float(row["value"]))
        assert {k: v for k, v in trial.data.params.items()} == {
            k[len("params_"):]: v for k, v in row.items() if k.startswith("params_")}


def test_an_unreachable_server_costs_one_warning_line_and_shows_no_credentials(run_cli, closed_port_url, tmp_path,
                                                                              monkeypatch):
    secret_url = closed_port_url.replace("http://", "http://alice:s3cr3t@")
    code, out, err = run_cli("fit", "--window", "8", "--units", "4", "--layers", "1", "--epochs", "1", "--start",
                             "2022-06-01", "--mlflow", secret_url, "--out", tmp_path / "runs", "-q")
    assert code == 0, err
    (run,) = (tmp_path / "runs").iterdir()
    assert (run / "model.keras").is_file() and (run / "metrics.json").is_file()  # the run is whole
    (warning,) = [line for line in err.splitlines() if "MLflow" in line]
    assert warning.startswith("Warning:") and "cannot be reached" in warning and f"keras-seq log {run}" in warning
    for text in [out, err, *(p.read_text(errors="replace") for p in run.iterdir() if p.suffix in (".json", ".csv"))]:
        assert "s3cr3t" not in text and "alice" not in text

    code, out, err = run_cli("log", run, "--mlflow", secret_url)
    assert code != 0 and len(err.strip().splitlines()) == 1 and "cannot be reached" in err, err
    assert "s3cr3t" not in err + out and "***@127.0.0.1" in err

    before = files_under(tmp_path)
    code, _, err = run_cli("log", tmp_path, "--mlflow", closed_port_url)
    assert code != 0 and "is not a run, comparison, study or recipe run folder" in err
    assert len(err.strip().splitlines()) == 1 and files_under(tmp_path) == before

    import importlib.util

    found = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else found(name, *a))
    for args in (("log", run), ("export", run, "--format", "mlflow", "--out", tmp_path / "x")):
        code, _, err = run_cli(*args)  # without the extra: one line naming it, nothing written
        assert code != 0 and "pip install 'keras-seq[mlflow]'" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "x").exists()
    monkeypatch.undo()

    recipe = tmp_path / "r.toml"
    recipe.write_text('description = "x"\n[track]\nmlflow = "http://bob:pw@127.0.0.1:1"\n')
    code, _, err = run_cli("run", recipe, "--check")
    assert code != 0 and "holds credentials" in err and "MLFLOW_TRACKING_PASSWORD" in err and ":pw@" not in err


def test_an_mlflow_export_forecasts_as_predict_does_in_python_and_served_over_http_and_is_registered(
        mlflow_server, run_cli, tmp_path):
    import signal

    import mlflow
    import pandas as pd

    from keras_seq.data.sources import DataSpec

    code, _, err = run_cli("fit", "--window", "8", "--units", "4", "--layers", "1", "--epochs", "1", "--start",
                           "2022-06-01", "--quantiles", "0.1,0.5,0.9", "--out", tmp_path / "runs", "-q")
    assert code == 0, err
    (run,) = (tmp_path / "runs").iterdir()
    code, out, err = run_cli("export", run, "--format", "onnx,mlflow", "--out", tmp_path / "export",
                             "--register", "tiny-lstm", "--mlflow", mlflow_server.url)
    assert code == 0 and "registered as 'tiny-lstm' version 1" in out, err
    code, _, err = run_cli("predict", run, "--csv", tmp_path / "predict.csv")
    assert code == 0, err
    expected = pd.read_csv(tmp_path / "predict.csv")

    last = DataSpec(start="2022-06-01").load(quote=False)["Close"].to_numpy()[-8:]
    frame = pd.DataFrame([last], columns=[f"Close[-{k}]" for k in range(8, 0, -1)])
    answer = mlflow.pyfunc.load_model(str(tmp_path / "export" / "mlflow")).predict(frame)
    columns = ["Close", "Close_q0.1", "Close_q0.5", "Close_q0.9"]
    assert list(answer.columns) == ["row", "step", *columns]
    assert answer[columns].to_numpy() == pytest.approx(expected[columns].to_numpy(), rel=1e-5)

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        code, _, err = run_cli("serve", tmp_path / "export", "--port", port)  # taken: one line, nothing started
        assert code != 0 and "Give a free --port" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli("serve", run, "--port", port)
    assert code != 0 and "is not an MLflow export of keras-seq" in err
    tampered = tmp_path / "tampered"
    shutil.copytree(tmp_path / "export", tampered)
    with (tampered / "mlflow" / "code" / "keras_seq_onnx_forecaster.py").open("a") as stream:
        stream.write("\nimport os; os.system('touch pwned')\n")  # serving runs the folder's Python
    code, _, err = run_cli("serve", tampered, "--port", port)
    assert code != 0 and "holds code other than this keras-seq's loader" in err and not Path("pwned").exists()

    server = subprocess.Popen([str(Path(sys.executable).with_name("keras-seq")), "serve", tmp_path / "export",
                               "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2):
                    break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "keras-seq serve did not start"
                time.sleep(0.3)
        body = json.dumps({"dataframe_split": frame.to_dict(orient="split", index=False)}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            served = pd.DataFrame(json.loads(response.read())["predictions"])
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    assert served[columns].to_numpy() == pytest.approx(expected[columns].to_numpy(), rel=1e-5)

    (version,) = mlflow_server.client().search_model_versions("name='tiny-lstm'")
    assert version.version == "1" and version.run_id
    card = json.loads((tmp_path / "export" / "model_card.json").read_text())
    assert card["parity"]["mlflow"]["relative_diff"] <= 1e-5 and card["artifacts"]["mlflow"]["path"] == "mlflow"
