"""`export --format mlflow`: an MLflow model folder that serves a keras-seq export with nothing of keras-seq.

The folder (`<export>/mlflow/`) is MLflow's own format, written by
`mlflow.pyfunc.save_model`: an `MLmodel` with the `python_function` flavor,
whose loader (`code/keras_seq_onnx_forecaster.py`, a copy of
`keras_seq.artifacts.mlflow_pyfunc`) needs onnxruntime, numpy and pandas;
`data/` holds the ONNX model and the model card; a signature and an input
example (three test windows) come with it. Its parity with the Keras model is
proven through `mlflow.pyfunc.load_model(...).predict(frame)`, like every
other format's. `register` adds it to an MLflow model registry as a new
version of a named model.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np

from keras_seq.errors import KerasSeqError

ENTRY = "mlflow"
LOADER = "keras_seq_onnx_forecaster"  # the loader's module name inside the MLflow folder


def _frame(x, index, card: dict):
    """The input frame of windows `x` and series indices `index` (the card's vocabulary names them)."""
    from keras_seq.artifacts.mlflow_pyfunc import example_frame

    names = None
    if index is not None:
        vocabulary = card.get("series_vocabulary") or []
        names = [vocabulary[k - 1] if 1 <= k <= len(vocabulary) else "" for k in np.asarray(index)]
    return example_frame(x, names, card["features"], card["window"])


def write_mlflow_model(folder: Path, onnx_path: Path, card: dict, windows: tuple):
    """Write the MLflow model into `folder/mlflow` from the export's ONNX file and card; return its path and a
    runner (windows -> forecasts shaped like the Keras model's) that goes through `mlflow.pyfunc.load_model`."""
    from keras_seq.runs.tracking import quiet_mlflow, require_mlflow

    mlflow = require_mlflow()
    if card["target_kind"] != "next":
        raise KerasSeqError("`export --format mlflow` serves forecasts of the values after a window; a model of "
                            "target kind sequence has no such forecast. Export it as onnx or savedmodel.")
    import importlib.metadata
    import json

    from keras_seq.artifacts import mlflow_pyfunc

    path = folder / ENTRY
    with tempfile.TemporaryDirectory(prefix="keras-seq-mlflow-") as scratch:
        data, code = Path(scratch) / "data", Path(scratch) / f"{LOADER}.py"
        data.mkdir()
        shutil.copyfile(onnx_path, data / "model.onnx")
        (data / "model_card.json").write_text(json.dumps(card, indent=2, default=str), encoding="utf-8")
        shutil.copyfile(mlflow_pyfunc.__file__, code)
        example = _frame(windows[0][:3], windows[1][:3] if len(windows) > 1 else None, card)
        answer = mlflow_pyfunc.Forecaster(str(data)).predict(example)
        requirements = [f"{name}=={importlib.metadata.version(name)}" for name in ("onnxruntime", "numpy", "pandas")]
        with quiet_mlflow(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its hint on integer output columns (row, step: never missing)
            mlflow.pyfunc.save_model(str(path), loader_module=LOADER, data_path=str(data), code_paths=[str(code)],
                                     signature=mlflow.models.infer_signature(example, answer),
                                     input_example=example, pip_requirements=requirements)
            served = mlflow.pyfunc.load_model(str(path))

    def run(x, index=None):
        table = served.predict(_frame(x, index, card))
        levels = [c for c in table.columns if c.startswith(f"{card['target']}_q")]
        values = table[levels or [card["target"]]].to_numpy(dtype="float64")
        return values.reshape(len(x), card["horizon"], -1) if levels else values.reshape(len(x), card["horizon"])

    return path, run


def register(path: Path, name: str, uri: str | None, run_name: str) -> str:
    """Log the MLflow model folder in a run of its own and add it to the registry as a new version of `name`;
    returns the version."""
    from keras_seq.runs.tracking import experiment_of, masked_text, require_mlflow, shown_uri

    mlflow = require_mlflow()
    try:
        client = mlflow.MlflowClient(tracking_uri=uri)
        run = client.create_run(experiment_of(client), run_name=f"export of {run_name}", tags={"keras_seq.kind": "export"})
        client.log_artifacts(run.info.run_id, str(path), "model")
        client.set_terminated(run.info.run_id, "FINISHED")
        try:
            client.create_registered_model(name)
        except mlflow.exceptions.MlflowException as exc:
            if "already exists" not in str(exc).lower() and "RESOURCE_ALREADY_EXISTS" not in str(exc):
                raise
        version = client.create_model_version(name, f"{run.info.artifact_uri}/model", run.info.run_id)
        return str(version.version)
    except Exception as exc:
        raise KerasSeqError(f"MLflow at {shown_uri(uri)} could not register the model as {name!r}: "
                            f"{masked_text(' '.join(str(exc).split())[:200], uri)}") from None


def serve_command(folder, host: str, port: int, workers: int) -> tuple[list[str], dict]:
    """The `mlflow models serve` command (and its environment: this Python's scripts first on PATH, where MLflow
    finds uvicorn) that serves the MLflow model of `folder` (an export folder, its `mlflow/`, or a run folder
    whose export has one) on host:port; one line where the folder is no such model or the port is taken."""
    import os
    import shutil as which
    import socket
    import sys

    from keras_seq.runs.tracking import require_mlflow
    from keras_seq.safety import read_text_bounded

    from keras_seq.runs.folder import resolve_latest

    require_mlflow()
    folder = resolve_latest(folder)  # a run folder (`saved_models/latest`) serves its export/mlflow
    model = next((f for f in (folder / "export" / ENTRY, folder / ENTRY) if (f / "MLmodel").is_file()), folder)
    mlmodel = model / "MLmodel"
    if mlmodel.is_symlink() or not mlmodel.is_file() or f"loader_module: {LOADER}" not in read_text_bounded(mlmodel):
        raise KerasSeqError(f"{folder} is not an MLflow export of keras-seq (no {ENTRY}/MLmodel with its loader). "
                            "Write one with `keras-seq export RUN_DIR --format mlflow`.")
    check_served_code(model)
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise KerasSeqError(f"cannot serve on {host}:{port}: {exc.strerror or exc}. Give a free --port.") from None
    scripts = str(Path(sys.executable).parent)
    mlflow = which.which("mlflow", path=scripts) or "mlflow"
    env = {**os.environ, "PATH": os.pathsep.join([scripts, os.environ.get("PATH", "")]),
           "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
    return [mlflow, "models", "serve", "-m", str(model.resolve()), "--env-manager", "local", "--host", host,
            "--port", str(port), "-w", str(workers)], env  # -w: mlflow's --workers


def check_served_code(model: Path) -> None:
    """Serving runs the model folder's Python: refuse a folder whose code is not keras-seq's own loader, byte for
    byte, or whose ONNX model asks for more than keras-seq's exports do (`safety.check_onnx`)."""
    from keras_seq.artifacts import mlflow_pyfunc
    from keras_seq.safety import check_onnx, refuse_symlink

    code = model / "code"
    refuse_symlink(code)
    found = sorted(p.name for p in code.iterdir()) if code.is_dir() else []
    mine = Path(mlflow_pyfunc.__file__).read_bytes()
    loader = code / f"{LOADER}.py"
    if found != [f"{LOADER}.py"] or loader.is_symlink() or loader.read_bytes() != mine:
        raise KerasSeqError(f"{model} holds code other than this keras-seq's loader ({', '.join(found) or 'none'}); "
                            "serving it would run that code. Export the run again with this keras-seq.")
    for onnx in model.rglob("*.onnx"):
        refuse_symlink(onnx)
        check_onnx(onnx)
