"""Runs where teams already look: an MLflow tracking server (`keras_seq.training.tensorboard` writes TensorBoard's
files).

MLflow (`log_mlflow`, `keras-seq ... --mlflow [URI]`, `keras-seq log PATH`):
a finished folder is logged from what it holds, so a run logs the same
whether it was just trained or written last month. A run folder becomes one
MLflow run: every option as a param (`model.units`), each epoch's losses as
metrics by step, the test metrics of the model (`test_mae`), of every
baseline (`test_persistence_mae`) and of every series of a panel
(`test_series.NAME_mae`), its files as artifacts, and tags for the arch,
backend, keras-seq version and the data's sha256. A comparison, a study and
a recipe run are parent runs with a child per fit, per trial and per
experiment. A tracking server that cannot be reached, or fails, costs one
warning line: the folder is already written in full, and `keras-seq log`
logs it later. A password or token in the tracking URI is used, never shown.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import re
import time
import urllib.parse
from pathlib import Path

from keras_seq.errors import KerasSeqError, first_line
from keras_seq.runs.folder import read_history, read_json, read_run_config
from keras_seq.safety import read_text_bounded

EXPERIMENT = "keras-seq"  # the MLflow experiment a run goes to, unless MLFLOW_EXPERIMENT_NAME names another
MAX_PARAM_CHARS = 6000  # MLflow's limit on a param's value
BATCH = 200  # metrics per log_batch call (MLflow takes at most 1000, 100 params, 100 tags)
MAX_ARTIFACT_BYTES = 2 * 2**30  # a larger file in a folder is left out of the artifacts
MAX_ARTIFACT_FILES = 2000  # files logged from one folder (a run holds about ten): a crafted folder stops there


# === What a URI shows ===


def shown_uri(uri: str | None) -> str:
    """The tracking URI as keras-seq prints it: a user name, password or query (a token) masked.

    Example:
    >>> shown_uri("https://me:secret@mlflow.example:5000/x?token=abc")
    'https://***@mlflow.example:5000/x?***'
    >>> shown_uri("sqlite:///mlflow.db")
    'sqlite:///mlflow.db'
    """
    if not uri:
        return "MLflow's default tracking URI"
    parts = urllib.parse.urlsplit(uri)
    netloc = parts.netloc
    if "@" not in netloc and not parts.query:
        return uri
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "***" if parts.query else "", ""))


def masked_text(text: str, uri: str | None) -> str:
    """`text` with the URI's credentials (and the URI itself) replaced by what `shown_uri` shows."""
    if not uri:
        return text
    text = text.replace(uri, shown_uri(uri))
    parts = urllib.parse.urlsplit(uri)
    if "@" in parts.netloc:
        text = text.replace(parts.netloc.rsplit("@", 1)[0], "***")
    if parts.query:
        text = text.replace(parts.query, "***")
    return text


def has_credentials(uri: str) -> bool:
    """Whether a URI holds a user name, password or query (a token): what `shown_uri` masks."""
    parts = urllib.parse.urlsplit(uri)
    return "@" in parts.netloc or bool(parts.query)


def checked_uri(uri: str, where: str) -> str:
    """A tracking URI a recipe may hold: no password or token in it (files keep what they are given)."""
    if has_credentials(uri):
        raise KerasSeqError(f"{where} holds credentials; a recipe is a file that is copied and shared. Give the "
                            "URI without them and set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD "
                            "(or MLFLOW_TRACKING_TOKEN) instead.")
    return uri


def require_mlflow():
    """The `mlflow` module, or one line naming the extra that installs it."""
    import importlib.util

    if importlib.util.find_spec("mlflow") is None:
        raise KerasSeqError("MLflow is not installed; --mlflow, `keras-seq log` and `export --format mlflow` need "
                            "it. Install it with: pip install 'keras-seq[mlflow]'")
    import mlflow

    return mlflow


# === MLflow: logging a folder ===


def folder_kind(path: Path) -> str:
    """What keras-seq folder `path` is: run, comparison, study or recipe, or one line saying it is none."""
    if path.is_symlink() or not path.is_dir():
        raise KerasSeqError(f"{path} is not a folder. Give a run, comparison, study or recipe run folder that "
                            "keras-seq wrote.")
    for kind, marks in (("run", ("config.json", "model.keras")), ("comparison", ("comparison.json",)),
                        ("study", ("tune.json",)), ("recipe", ("run.json", "recipe.toml"))):
        if all((path / mark).is_file() and not (path / mark).is_symlink() for mark in marks):
            return kind
    raise KerasSeqError(f"{path} is not a run, comparison, study or recipe run folder of keras-seq (it has no "
                        "config.json, comparison.json, tune.json or run.json). Give a folder that keras-seq wrote.")


def log_mlflow(path, uri: str | None = None, *, experiment: str | None = None) -> str:
    """Log a finished keras-seq folder to MLflow; return the (parent) MLflow run's id.

    Args:
        path: a run, comparison, study or recipe run folder.
        uri: the tracking URI (`http://127.0.0.1:5000`, `sqlite:///mlflow.db`, a folder). Defaults to
            `MLFLOW_TRACKING_URI`, else MLflow's default.
        experiment: the MLflow experiment, created if new. Defaults to `MLFLOW_EXPERIMENT_NAME`, else "keras-seq".

    Raises:
        KerasSeqError: the folder is not one keras-seq wrote, or is unfinished or changed (its manifest), or
            MLflow is not installed, or the tracking server refused or could not be reached.
    """
    path = Path(path)
    kind = folder_kind(path)
    config = read_run_config(path) if kind == "run" else None  # complete, every file as its manifest says
    mlflow = require_mlflow()
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or None
    _check_reachable(uri)
    with quiet_mlflow():
        try:
            client = mlflow.MlflowClient(tracking_uri=uri)
            experiment_id = experiment_of(client, experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME"))
            if kind == "run":
                return _log_run(client, experiment_id, path, None, config)
            return _LOGGERS[kind](client, experiment_id, path, None)
        except KerasSeqError:
            raise
        except Exception as exc:  # MLflow's and its HTTP client's errors: one line, credentials masked
            raise KerasSeqError(f"MLflow at {shown_uri(uri)} refused the log of {path}: "
                                f"{masked_text(first_line(str(exc)) or type(exc).__name__, uri)}") from None


def experiment_of(client, name: str | None = None) -> str:
    """The id of the MLflow experiment `name` (default "keras-seq"), created if new."""
    name = name or EXPERIMENT
    found = client.get_experiment_by_name(name)
    return found.experiment_id if found is not None else client.create_experiment(name)


def track(path, uri: str | None, echo=None) -> str | None:
    """`log_mlflow`, with a failure turned into a `RunWarning` (one line): the folder is written in full either way.
    `echo` receives the line that says where it was logged."""
    import warnings

    from keras_seq.errors import RunWarning

    echo = echo or (lambda line: None)
    try:
        run_id = log_mlflow(path, uri)
    except KerasSeqError as exc:
        warnings.warn(f"{exc} The {folder_kind_or(path)} is written in full at {path}; log it later with "
                      f"`keras-seq log {path} --mlflow URI`.", RunWarning, stacklevel=2)
        return None
    echo(f"logged to MLflow at {shown_uri(uri or os.environ.get('MLFLOW_TRACKING_URI'))}: run {run_id}")
    return run_id


def folder_kind_or(path) -> str:
    try:
        return folder_kind(Path(path))
    except KerasSeqError:
        return "folder"


def _check_reachable(uri: str | None) -> None:
    """An HTTP tracking server that does not answer in 10 s: one line now, not minutes of MLflow's retries."""
    if not uri or urllib.parse.urlsplit(uri).scheme not in ("http", "https"):
        return
    import socket

    parts = urllib.parse.urlsplit(uri)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=10):
            pass
    except (OSError, ValueError) as exc:
        raise KerasSeqError(f"the MLflow tracking server at {shown_uri(uri)} cannot be reached "
                            f"({masked_text(type(exc).__name__ + ': ' + str(exc), uri)}).") from None


@contextlib.contextmanager
def quiet_mlflow():
    """MLflow's own log lines and retries kept short while logging: its warnings could show the URI."""
    import logging

    saved = {key: os.environ.get(key) for key in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")}
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    loggers = [logging.getLogger(name) for name in ("mlflow", "urllib3", "alembic")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _version() -> str:
    """keras-seq's installed version (a run's own tag is the version that wrote it: its config's `versions`)."""
    import importlib.metadata

    try:
        return importlib.metadata.version("keras-seq")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _key(text) -> str:
    """A name from the data as part of an MLflow key (letters, digits, `_ - . /` and spaces only)."""
    return re.sub(r"[^A-Za-z0-9_\-. /]", "_", str(text))[:200] or "_"


def _param(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:MAX_PARAM_CHARS]


def _number(value):
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and \
        math.isfinite(value) else None


def _start(client, experiment_id: str, name: str, parent: str | None, tags: dict) -> str:
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

    tags = {"keras_seq.version": _version(), **{k: str(v)[:5000] for k, v in tags.items()},
            **({MLFLOW_PARENT_RUN_ID: parent} if parent else {})}
    return client.create_run(experiment_id, run_name=name, tags=tags).info.run_id


def _log(client, run_id: str, params: dict | None = None, metrics: list | None = None) -> None:
    """Params and metrics in batches MLflow accepts; `metrics` holds (key, value, step) triples."""
    from mlflow.entities import Metric, Param

    now = int(time.time() * 1000)
    params = [Param(_key(k), _param(v)) for k, v in (params or {}).items()]
    metrics = [Metric(_key(k), v, now, step) for k, v, step in (metrics or []) if _number(v) is not None]
    for start in range(0, len(params), 100):
        client.log_batch(run_id, params=params[start:start + 100])
    for start in range(0, len(metrics), BATCH):
        client.log_batch(run_id, metrics=metrics[start:start + BATCH])


def _log_files(client, run_id: str, folder: Path, leave_out: tuple[str, ...] = ()) -> None:
    """The folder's plain files as artifacts (at most `MAX_ARTIFACT_FILES`): no symlink followed, no file over
    2 GiB, `leave_out` folders left to the child runs that log them."""
    count = 0
    for root, dirs, files in os.walk(folder, followlinks=False):
        here = Path(root)
        dirs[:] = sorted(d for d in dirs if not (here / d).is_symlink() and
                         not (here == folder and d in leave_out))
        for name in sorted(files):
            file = here / name
            if file.is_symlink() or not file.is_file() or file.stat().st_size > MAX_ARTIFACT_BYTES:
                continue
            count += 1
            if count > MAX_ARTIFACT_FILES:
                return
            relative = file.parent.relative_to(folder).as_posix()
            client.log_artifact(run_id, str(file), None if relative == "." else relative)


def _end(client, run_id: str) -> None:
    client.set_terminated(run_id, "FINISHED")


def _report_metrics(report: dict) -> list:
    """A metrics.json report as (key, value, step) triples: the model's, each baseline's, each series'."""
    split = _key(report.get("split") or "test")
    rows = []
    for metric, value in (report.get("model") or {}).items():
        rows.append((f"{split}_{metric}", value, 0))
    for baseline, figures in (report.get("baselines") or {"persistence": report.get("persistence") or {}}).items():
        for metric, value in (figures or {}).items():
            rows.append((f"{split}_{_key(baseline).replace(' ', '_')}_{metric}", value, 0))
    for key in ("skill", "skill_vs_best", "owa"):
        rows.append((f"{split}_{key}", report.get(key), 0))
    for series, figures in (report.get("per_series") or {}).items():
        for metric, value in (figures or {}).items():
            rows.append((f"{split}_series.{_key(series)}_{metric}", value, 0))
    for metric, value in (report.get("panel") or {}).items():
        rows.append((f"{split}_panel_{_key(metric)}", value, 0))
    return rows


def _history_metrics(path: Path) -> list:
    """history.csv as (key, value, epoch) triples (rows without a whole epoch number left out; `_log` leaves out
    values that are not finite)."""
    history = read_history(path)
    epochs = history.pop("epoch", [])
    return [(key, value, int(epoch)) for key, values in history.items() for epoch, value in zip(epochs, values)
            if math.isfinite(epoch)]


def _log_run(client, experiment_id: str, path: Path, parent: str | None, config: dict | None = None) -> str:
    config = config or read_run_config(path)
    model, data = config.get("model") or {}, config.get("data") or {}
    run_id = _start(client, experiment_id, path.name, parent, {
        "keras_seq.kind": "run", "keras_seq.arch": model.get("arch", ""), "keras_seq.backend": config.get("backend", ""),
        "keras_seq.data_sha256": data.get("sha256", ""), "keras_seq.folder": path.name,
        **({"keras_seq.version": config["versions"].get("keras_seq")} if isinstance(config.get("versions"), dict) and
           config["versions"].get("keras_seq") else {})})
    params = {f"{section}.{key}": value for section in ("data", "windows", "model", "train")
              for key, value in (config.get(section) or {}).items()}
    params["backend"] = config.get("backend")
    metrics = _history_metrics(path / "history.csv")
    if (path / "metrics.json").is_file():
        metrics += _report_metrics(read_json(path / "metrics.json"))
    result = config.get("result") or {}
    metrics += [(f"result_{key}", value, 0) for key, value in result.items()]
    _log(client, run_id, params, metrics)
    _log_files(client, run_id, path)
    _end(client, run_id)
    return run_id


def run_folders(folder: Path) -> list[Path]:
    """The run folders directly inside `folder` (a comparison's runs/, a study's best/), by name; no link."""
    if not folder.is_dir() or folder.is_symlink():
        return []
    return sorted(p for p in folder.iterdir() if not p.is_symlink() and (p / "config.json").is_file()
                  and (p / "model.keras").is_file())


def _log_comparison(client, experiment_id: str, path: Path, parent: str | None) -> str:
    summary = read_json(path / "comparison.json")
    settings = summary.get("settings") if isinstance(summary, dict) else {}
    run_id = _start(client, experiment_id, path.name, parent, {"keras_seq.kind": "comparison",
                                                               "keras_seq.folder": path.name})
    params = {f"{section}.{key}": value for section, values in (settings or {}).items() if isinstance(values, dict)
              for key, value in values.items()}
    _log(client, run_id, params)
    for run in run_folders(path / "runs"):
        _log_run(client, experiment_id, run, run_id)
    _log_files(client, run_id, path, leave_out=("runs",))
    _end(client, run_id)
    return run_id


def read_trials(path: Path) -> list[dict]:
    """A study's trials.csv: each trial's `number`, `state`, `value` (None unless a finite number) and `params`
    (its `params_*` columns, names without the prefix); no rows for a missing or linked file."""
    if not path.is_file() or path.is_symlink():
        return []
    return [{"number": row.get("number", ""), "state": row.get("state", ""), "value": _float(row.get("value")),
             "params": {key[len("params_"):]: value for key, value in row.items() if key.startswith("params_")}}
            for row in csv.DictReader(io.StringIO(read_text_bounded(path)))]


def _log_study(client, experiment_id: str, path: Path, parent: str | None) -> str:
    summary = read_json(path / "tune.json")
    summary = summary if isinstance(summary, dict) else {}
    run_id = _start(client, experiment_id, path.name, parent, {
        "keras_seq.kind": "study", "keras_seq.folder": path.name, "keras_seq.objective": summary.get("objective", "")})
    best = summary.get("best") if isinstance(summary.get("best"), dict) else {}
    _log(client, run_id, {"objective": summary.get("objective"), "trials": summary.get("trials_asked"),
                          **{f"best.{k}": v for k, v in (best.get("params") or {}).items()}},
         [("best_value", best.get("value"), 0)])
    for trial in read_trials(path / "trials.csv"):
        child = _start(client, experiment_id, f"trial {trial['number']}", run_id,
                       {"keras_seq.kind": "trial", "keras_seq.state": trial["state"]})
        _log(client, child, trial["params"], [("value", trial["value"], 0)] if trial["value"] is not None else [])
        client.set_terminated(child, "FINISHED" if trial["state"] == "COMPLETE" else "KILLED")
    for run in run_folders(path / "best"):
        _log_run(client, experiment_id, run, run_id)
    _log_files(client, run_id, path, leave_out=("best",))
    _end(client, run_id)
    return run_id


def _float(text):
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _log_recipe(client, experiment_id: str, path: Path, parent: str | None) -> str:
    run_id = _start(client, experiment_id, path.name, parent, {"keras_seq.kind": "recipe", "keras_seq.folder": path.name})
    children = sorted(p for p in path.iterdir() if not p.is_symlink() and (p / "comparison.json").is_file())
    for child in children:
        _log_comparison(client, experiment_id, child, run_id)
    _log_files(client, run_id, path, leave_out=tuple(p.name for p in children))
    _end(client, run_id)
    return run_id


_LOGGERS = {"run": _log_run, "comparison": _log_comparison, "study": _log_study, "recipe": _log_recipe}
