"""Export a run's model as artifacts that run anywhere, proven equal before they are written.

`export_run` writes, into `RUN_DIR/export/` by default:
- `savedmodel/<name>/<version>/`: a TF SavedModel in TF Serving's layout,
  signature `serving_default`, float32 `(batch, window, features)` raw values
  in (and for a model that reads the series, `series`: int32 `(batch,)`, as
  the card's `series_input` says), raw values out;
- `model.onnx`: fixed window length, dynamic batch;
- `model.keras`: a copy of the Keras model;
- `mlflow/` (asked for by name, not in `all`): an MLflow model of the ONNX
  model and the card, served with nothing of keras-seq
  (`keras_seq.artifacts.mlflow_model`);
- `model_card.json`: what the model reads and returns, its scaling, data,
  test metrics, versions and each artifact's sha256.

Each format is a module of `keras_seq.artifacts`. Each artifact is loaded back
in its own runtime (`tf.saved_model.load`, `onnxruntime.InferenceSession`,
Keras), through the format's loader that `predict` uses, and run on the
run's test windows; the
largest difference from the Keras model, relative to the target's standard
deviation, must be at most `tolerance`. Everything is written in a temporary
folder and renamed into place only when every artifact passed.

Exporting always runs on the tensorflow backend (the weights are
backend-neutral): a model trained on jax or torch exports the same way, and
Python code whose Keras already runs on another backend exports through
`keras-seq export` in a new process.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

import numpy as np

from keras_seq.backend import import_keras, use_backend
from keras_seq.errors import KerasSeqError, first_line
from keras_seq.artifacts import CARD_FILE, format_names, get_format, io_signature
from keras_seq.artifacts.versions import VERSION_ENTRIES
from keras_seq.runs.folder import write_json
from keras_seq.safety import artifact_sha256, is_folder_name, read_text_bounded, write_error

FORMATS = format_names()  # keras_seq.artifacts: savedmodel, onnx, keras
MLFLOW = "mlflow"  # an MLflow model folder made of the ONNX model and the card (`artifacts.mlflow_model`); not in all
# Everything an export folder may hold (what `overwrite` may replace): versions 2.. add `onnx/`, `keras/`, `cards/`.
EXPORT_ENTRIES = (CARD_FILE, *(get_format(name).entry for name in FORMATS), MLFLOW, *VERSION_ENTRIES)
DEFAULT_TOLERANCE = 1e-5


def parse_formats(value: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """`"all"`, one format or several (comma-separated) -> a tuple of formats."""
    items = value.split(",") if isinstance(value, str) else list(value)
    items = [item.strip().lower() for item in items if item.strip()]
    if "all" in items:
        items = [*FORMATS, *(item for item in items if item == MLFLOW)]
    unknown = [item for item in items if item not in (*FORMATS, MLFLOW)]
    if unknown or not items:
        raise KerasSeqError(
            f"unknown export format '{unknown[0] if unknown else value}'. Expected one of: {', '.join(FORMATS)}, "
            f"{MLFLOW}, all."
        )
    return tuple(dict.fromkeys(items))


@dataclasses.dataclass
class ExportResult:
    """Where the export went, and each artifact's parity with the Keras model."""

    path: Path
    parity: dict  # format -> {"max_abs_diff", "relative_diff", "windows"}
    card: dict


def export_run(
    run_dir: str | os.PathLike,
    formats: str | tuple[str, ...] = "all",
    *,
    out: str | os.PathLike | None = None,
    overwrite: bool = False,
    name: str | None = None,
    version: int = 1,
    tolerance: float = DEFAULT_TOLERANCE,
) -> ExportResult:
    """Export a run folder's model and prove each artifact equal to it.

    Args:
        run_dir: path. A folder written by `keras-seq fit`.
        formats: str or tuple. `"savedmodel"`, `"onnx"`, `"keras"`, `"mlflow"`
            (an MLflow model folder: `artifacts.mlflow_model`), several of them,
            or `"all"` (the first three). Defaults to `"all"`.
        out: path or None. Export folder. Defaults to `RUN_DIR/export`.
        overwrite: bool. Replace an existing export folder. Defaults to `False`.
        name: str or None. The SavedModel's model name in TF Serving's layout.
            Defaults to the run's arch.
        version: int. The SavedModel's version folder. Defaults to `1`.
        tolerance: float. Largest allowed difference from the Keras model,
            relative to the target's standard deviation. Defaults to `1e-5`.

    Returns:
        An `ExportResult`.

    Raises:
        KerasSeqError: bad arguments, an existing export without
            `overwrite`, or an artifact that fails parity (nothing is written).
    """
    from keras_seq.runs.folder import check_run_folder
    from keras_seq.safety import folder_lock
    from keras_seq.jobs.stop import stop_signals

    run_dir = check_run_folder(run_dir)
    formats = parse_formats(formats)
    if MLFLOW in formats:
        from keras_seq.runs.tracking import require_mlflow

        require_mlflow()  # before any work: the extra's absence is one line
    if not isinstance(version, int) or version < 1:
        raise KerasSeqError(f"`version` must be an integer of at least 1. Received: version={version}")
    if name is not None and not is_folder_name(name):
        raise KerasSeqError(f"`name` must be letters, digits, '-' or '_'. Received: name={name!r}")
    out = Path(out) if out is not None else run_dir / "export"
    if "keras" in sys.modules and sys.modules["keras"].backend.backend() != "tensorflow":
        export_target(out, run_dir, overwrite)  # refused here, before a process starts for it
        return _export_in_tensorflow_process(run_dir, formats, out, overwrite, name, version, tolerance)
    with stop_signals(), folder_lock(run_dir, f"export {run_dir}"):
        return _export_locked(run_dir, formats, out, overwrite, name, version, tolerance)


def _export_in_tensorflow_process(run_dir: Path, formats, out: Path, overwrite: bool, name, version: int, tolerance):
    """The export in a new process on tensorflow (`jobs.processes`), for Python code whose Keras runs on jax or
    torch."""
    import functools

    from keras_seq.jobs import processes

    call = functools.partial(export_run, run_dir, formats, out=out, overwrite=overwrite, name=name, version=version,
                             tolerance=tolerance)
    (failed,) = processes.wait([processes.start(call, (), "tensorflow", own_session=True, watch_parent=True)])
    if failed:
        raise KerasSeqError(failed)
    card = json.loads(read_text_bounded(out / CARD_FILE))
    return ExportResult(out, card["parity"], card)


def export_target(out: Path, run_dir: Path, overwrite: bool) -> dict | None:
    """Where an export goes: the card of the folder of the run's line that the run adds a version to
    (`artifacts.versions`), or None for a new folder (or one `overwrite` replaces), checked by
    `check_export_target`."""
    from keras_seq.artifacts.versions import ancestor_export
    from keras_seq.runs.folder import read_run_config

    if not overwrite and out.is_dir() and not out.is_symlink():
        previous = ancestor_export(out, read_run_config(run_dir), Path(run_dir).name)
        if previous is not None:
            return previous
    check_export_target(out, run_dir, overwrite)
    return None


def check_export_target(out: Path, run_dir: Path, overwrite: bool) -> None:
    """Refuse an export folder that exists (unless `overwrite` and it is an export), is a symlink, or holds runs.

    `--overwrite` replaces only a folder that is itself a keras-seq export:
    it holds a model card and nothing but export files. A run folder, a
    folder holding run folders or anything else is never replaced.
    """
    from keras_seq.safety import refuse_symlink

    refuse_symlink(out)
    if out.resolve() in (run_dir.resolve(), *run_dir.resolve().parents):
        raise KerasSeqError(f"`out` {out} is the run folder or a folder above it. Give a new folder for the export.")
    if not out.exists():
        return
    if not overwrite:
        raise KerasSeqError(f"export folder {out} already exists. Pass `overwrite` to replace it, or give `out`.")
    if not out.is_dir():
        raise KerasSeqError(f"`out` {out} is a file. `overwrite` replaces only an export folder; give a folder.")
    entries = sorted(p.name for p in out.iterdir())
    foreign = [e for e in entries if e not in EXPORT_ENTRIES or (out / e).is_symlink()]  # a run's config.json too
    if CARD_FILE not in entries or foreign:
        what = f"it holds {foreign[0]}" if foreign else f"it has no {CARD_FILE}"
        raise KerasSeqError(
            f"`overwrite` replaces only a keras-seq export folder (a {CARD_FILE} and export files), and {out} is "
            f"not one: {what}. Nothing was deleted; give `out` a new folder."
        )


def _export_locked(run_dir: Path, formats, out: Path, overwrite: bool, name: str | None, version: int, tolerance: float):
    from keras_seq.jobs.stop import STOP
    from keras_seq.runs.run import SavedRun

    saved = SavedRun.read(run_dir)
    given_name, name = name, name or saved.model.arch
    if not is_folder_name(name):
        raise KerasSeqError(f"{run_dir}'s config.json names no arch that can be a folder name. Give `name`.")
    previous = export_target(out, run_dir, overwrite)
    if previous is not None and MLFLOW in formats:
        raise KerasSeqError(f"{out} holds the versions of {run_dir.name}'s line, and an MLflow model is exported into "
                            "a folder of its own: give `out` a new folder for --format mlflow.")
    model, check = _prepared(saved, tolerance)
    if previous is not None:
        return _export_version(saved, out, formats, previous, model, check, given_name)
    from keras_seq.runs.folder import staged_folder

    with staged_folder(out.parent, out.name, replace=overwrite, exclusive=not overwrite) as staged:
        stage = staged.path
        artifacts, parity = {}, {}
        for fmt in (f for f in formats if f != MLFLOW):
            STOP.check("export")
            path, runner, signature = write_artifact(fmt, model, stage, name, version)
            parity[fmt] = check(fmt, runner)
            artifacts[fmt] = {"path": path.relative_to(stage).as_posix(), "sha256": artifact_sha256(path), **signature}
        card = _model_card(saved, artifacts, parity)
        if MLFLOW in formats:
            STOP.check("export")
            _add_mlflow_model(stage, model, card, check)
        write_json(stage / CARD_FILE, card)
        STOP.check("export")
    return ExportResult(staged.final, parity, card)


def _prepared(saved, tolerance: float):
    """The run's Keras model on tensorflow, and the parity check of its artifacts against it on the test windows."""
    try:
        use_backend("tensorflow")
    except KerasSeqError as exc:
        raise KerasSeqError(f"exporting needs the tensorflow backend in a fresh process: {exc}") from None
    import_keras()
    model = saved.load_model()
    windows = parity_inputs(saved.scored_windows(saved.data.load(quote=False), batch_size=4096).model_inputs("test"))
    reference = np.asarray(model.predict(windows[0] if len(windows) == 1 else list(windows), verbose=0), dtype="float64")
    return model, _ParityCheck(reference, windows, float(saved.scaling.target_std), tolerance)


def _export_version(saved, out: Path, formats, previous: dict, model, check, name: str | None) -> ExportResult:
    """The run's artifacts added to its line's export folder as the next version (`artifacts.versions`), each
    proven equal to the model before it is moved into place; the card then lists every version."""
    import tempfile

    from keras_seq.artifacts.versions import (keep_card, publish_version, remove_scratch, version_entry,
                                              version_name, versions_of)
    from keras_seq.jobs.stop import STOP
    from keras_seq.safety import folder_lock

    versions = versions_of(previous, out)
    version = max(entry["version"] for entry in versions) + 1
    name = version_name(previous, name, saved.model.arch)
    with folder_lock(out, f"export {saved.path}"):
        keep_card(out, previous, versions[-1]["version"])  # before anything else: it may only be added
        scratch = Path(tempfile.mkdtemp(prefix=".version-", dir=out))
        try:
            artifacts, parity = {}, {}
            for fmt in formats:
                STOP.check("export")
                written, runner, signature = write_artifact(fmt, model, scratch, name, version)
                parity[fmt] = check(fmt, runner)
                artifacts[fmt] = {"path": written.relative_to(scratch).as_posix(), "sha256": artifact_sha256(written),
                                  **signature}
            STOP.check("export")

            def card_of(placed):
                card = _model_card(saved, placed, parity)
                return {**card, "model_versions": [*versions, version_entry(card, version)]}

            card = publish_version(scratch, out, artifacts, name, version, card_of)
        finally:
            remove_scratch(scratch)
    return ExportResult(out, parity, card)


class _ParityCheck:
    """An artifact's runner checked on the test windows against the Keras model's forecasts (`reference`)."""

    def __init__(self, reference, windows: tuple, scale: float, tolerance: float):
        self.reference, self.windows, self.scale, self.tolerance = reference, windows, scale, tolerance

    def __call__(self, fmt: str, runner) -> dict:
        outputs = np.asarray(runner(*self.windows), dtype="float64").reshape(self.reference.shape)
        max_abs = float(np.max(np.abs(outputs - self.reference))) if self.reference.size else 0.0
        count, relative = len(self.windows[0]), max_abs / self.scale
        if not relative <= self.tolerance:
            raise KerasSeqError(
                f"{fmt} artifact differs from the Keras model by {max_abs:.3g} ({relative:.2e} of the target's "
                f"std, limit {self.tolerance:g}) on {count} test windows; nothing was exported."
            )
        return {"max_abs_diff": max_abs, "relative_diff": relative, "windows": count}


def _add_mlflow_model(stage: Path, model, card: dict, check: _ParityCheck) -> None:
    """The MLflow model folder, made of the export's ONNX model (written aside when onnx was not asked for) and its
    card, checked through MLflow's loader, and entered in `card`."""
    import tempfile

    from keras_seq.artifacts.mlflow_model import write_mlflow_model

    with tempfile.TemporaryDirectory(prefix="keras-seq-onnx-") as scratch:
        onnx = stage / card["artifacts"]["onnx"]["path"] if "onnx" in card["artifacts"] else \
            write_artifact("onnx", model, Path(scratch))[0]
        path, runner = write_mlflow_model(stage, onnx, card, check.windows)
    card["parity"][MLFLOW] = check(MLFLOW, runner)
    card["artifacts"][MLFLOW] = {"path": path.relative_to(stage).as_posix(), "sha256": artifact_sha256(path),
                                 "flavor": "python_function", "loader": "onnxruntime, numpy and pandas"}


# The model card's description of a model's second input (a model with scaler `series` or a series embedding).
SERIES_INPUT = {
    "name": "series",
    "dtype": "int32",
    "shape": [None],
    "description": ("one index per window: k+1 for the series series_vocabulary[k] (known at training time), 0 for "
                    "any other. A known series is scaled by its own training statistics and reads its learned vector; "
                    "index 0 (or any index outside 1..len(series_vocabulary)) is scaled by its window and reads the "
                    "mean of the learned vectors."),
}


def _quantile_output(levels, calibration: dict | None, distribution: str = "none") -> dict:
    """The model card's description of the output of a quantile or distribution model, or of one with conformal
    intervals."""
    middle = list(levels).index(0.5)
    if calibration:
        around = calibration.get("around", "the point forecast")
        what = (f"the point forecast (index {middle}) between the bounds of its conformal intervals (around "
                f"{around}) of coverage "
                f"{', '.join(f'{100 * c:g}%' for c in calibration['coverages'])} (levels "
                f"{', '.join(f'{v:g}' for v in levels)}), calibrated on the {calibration['split']} split's "
                f"{calibration['windows']} windows ({calibration['first_date']}..{calibration['last_date']}); the "
                "offsets are inside the model")
    else:
        of = "" if distribution == "none" else f" (of each step's {distribution} forecast distribution)"
        what = (f"the forecast's quantiles{of} at levels {', '.join(f'{v:g}' for v in levels)} along the last axis, "
                f"in increasing order (they never cross); index {middle}, the median, is the point forecast")
    return {"shape": ["batch", "horizon", len(levels)], "levels": list(levels), "description": what,
            **({"calibration": calibration} if calibration else {})}


def parity_inputs(windows) -> tuple:
    """The inputs every artifact is checked on: the test windows; of a model that reads the series, each window
    twice, with its series' index and as an unseen series (index 0), so both paths through the model are proven."""
    if not isinstance(windows, tuple):
        return (windows,)
    x, index = windows
    return np.concatenate([x, x]), np.concatenate([index, np.zeros_like(index)])


def write_artifact(fmt: str, model, folder: Path, name: str = "model", version: int = 1):
    """Write one artifact of `model` into `folder` and load it back in its own runtime.

    Args:
        fmt: str. `"savedmodel"`, `"onnx"` or `"keras"`.
        model: keras.Model. A keras-seq model (tensorflow backend).
        folder: Path. Existing folder that receives the artifact.
        name: str. SavedModel model name. Defaults to `"model"`.
        version: int. SavedModel version. Defaults to `1`.

    Returns:
        `(path, runner, signature)`: the artifact's path, a function from a
        float32 `(batch, window, features)` array (and for a model that
        reads the series, its int32 `(batch,)` index) to the artifact's
        outputs, and its input/output names, dtypes and shapes.

    Raises:
        KerasSeqError: the disk is full or the folder not writable, or the
            artifact fails keras-seq's checks of what it may run.
    """
    try:
        writer = get_format(fmt)
        path = writer.write(model, Path(folder), name, version)
        loaded = writer.load(path)
        return path, loaded.run, io_signature(model, loaded, **writer.signature_extra(path))
    except OSError as exc:
        raise write_error(folder, exc) from None
    except Exception as exc:
        # TensorFlow reports a full disk as ResourceExhaustedError (or another OpError) instead of an OSError.
        import tensorflow as tf

        if isinstance(exc, tf.errors.OpError):
            raise KerasSeqError(
                f"cannot write the {fmt} artifact into {folder} ({type(exc).__name__}: {first_line(exc)[:120]}). "
                "Nothing was exported; free disk space and export again."
            ) from None
        raise


def _model_card(saved, artifacts: dict, parity: dict) -> dict:
    """The export folder's model card, of `saved` (a `runs.run.SavedRun`)."""
    import importlib.metadata

    config, run_dir, model, io = saved.config, saved.path, saved.model, saved.io
    fields = io.card_fields()
    vocabulary = fields.pop("series_vocabulary")
    recorded = {key: config["data"].get(key) for key in ("first_date", "last_date", "rows")}
    metrics_file = run_dir / "metrics.json"
    versions = dict(config.get("versions", {}))
    for package in ("tensorflow", "onnx", "onnxruntime", "tf2onnx"):
        try:
            versions[f"export_{package}"] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    from keras_seq.data.calendar import calendar_description

    calendar = calendar_description(io.data.calendar)
    future = {f"{name}+{step}": f"{name} {step} step(s) after the row's date (known in advance)"
              for name in io.data.future_features or () for step in range(1, io.horizon + 1)}
    return {
        "format": "keras-seq model card 1",
        "arch": model.arch,
        "model": config["model"],
        **fields,
        **({"calendar_inputs": calendar} if calendar else {}),
        **({"future_inputs": future} if future else {}),
        **({"series_input": SERIES_INPUT, "series_vocabulary": vocabulary} if vocabulary is not None else {}),
        **({"quantile_output": _quantile_output(io.quantiles, config.get("conformal"), model.distribution)}
           if io.quantiles else {}),
        "scaling": config["scaling"],
        "data": {**fields["data"], **recorded},
        "split_dates": config.get("split_dates"),
        "test_metrics": json.loads(read_text_bounded(metrics_file)) if metrics_file.is_file() else None,
        "training_backend": config.get("backend"),
        "versions": versions,
        "run": str(run_dir.name),
        **({"parent": {key: config["parent"].get(key) for key in ("run", "manifest_sha256", "last_date", "scaling")},
            "lineage": config.get("lineage", [])} if isinstance(config.get("parent"), dict) else {}),
        "parity": parity,
        "artifacts": artifacts,
    }
