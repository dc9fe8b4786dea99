"""The fits of a comparison: each one's task, its training and scoring, and its outcome carried as checked bytes.

A comparison (`runs.comparison`) is a list of `FitTask`s that share nothing
but their rows. `fit_one` trains and scores one, here or on a worker
(`jobs.pool`), and returns a `FitOutcome`: its comparison.json record, its
run folder's files and what the report draws. From a worker it travels as
bytes (`fit_one_as_bytes`, `decode_outcome`); a stopped comparison keeps the
finished ones in its folder (`interrupted_record`, `kept_fits`). Everything
read back, from a worker or a folder, is checked against the task that asked
for it (`check_record`) before it is written or reported.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from keras_seq.data.windows import WindowSpec
from keras_seq.errors import KerasSeqError, RunInterrupted, has_control_characters
from keras_seq.evaluation.metrics import metric_names
from keras_seq.evaluation.report import PERSISTENCE

INTERRUPTED_FILE = "interrupted.json"  # a stopped comparison's record of the fits it kept


@dataclasses.dataclass(frozen=True)
class FitTask:
    """One fit of a comparison: an arch, a seed and a fold (`fold=None`: the whole frame), and what to keep of it."""

    name: str  # its run folder under runs/
    specs: object  # runs.run.RunSpecs with this fit's arch and seed
    fold: tuple | None  # backtest_folds' (validation start, test start, test end)
    index: int  # the fold's number, from 1
    splits: tuple[str, ...]
    digest: str | None  # the frame's sha256, recorded in the run's config (not for a fold's rows)
    shown: bool  # the plots draw its losses and forecasts
    span: bool  # ... and every fold's test block (a backtest)
    verbose: object
    label: str  # `[3/12] gru, seed 43, fold 1 of 4`
    tensorboard: str | None = None  # write its epochs' losses under this folder (`training.tensorboard`)


@dataclasses.dataclass
class FitOutcome:
    """What a fit sends back from wherever it ran: its record, its run folder's files, and what the report needs."""

    name: str
    record: dict  # its entry in comparison.json's runs
    files: dict  # file name -> bytes of its run folder
    pooled: dict | None  # of a backtest fold: actual, model, persistence (test targets and forecasts), drawn
    shown: dict | None  # of a fit the plots draw: history, split, drawn, actual, ylabel


def fit_one(frame, task: FitTask) -> FitOutcome:
    """Train and score one model of a comparison, here or on a worker; its run folder comes back as bytes."""
    from keras_seq.jobs.pool import in_worker

    with in_worker(task.specs.backend):
        import keras

        from keras_seq.evaluation.report import persistence_forecast
        from keras_seq.runs.run import Run, train_and_evaluate
        from keras_seq.jobs.stop import STOP
        from keras_seq.training.tensorboard import tensorboard, tensorboard_for

        fold_frame, fold_windows = fold_data(frame, task.specs.windows, task.fold)
        if task.verbose != 0:  # Keras's epoch lines follow: say whose they are
            print(task.label, flush=True)
        keras.backend.clear_session()
        STOP.check("the comparison")
        run = Run.of(dataclasses.replace(task.specs, windows=fold_windows), fold_frame, task.digest)
        with tensorboard(task.tensorboard), tensorboard_for(task.name):
            fitted = train_and_evaluate(run, splits=task.splits, verbose=task.verbose)
        STOP.check("the comparison")  # a signal during training stopped it after a batch
        pooled = shown = None
        if task.fold is not None:
            pooled = {"actual": fitted.raw.targets("test"), "model": fitted.predictions["test"],
                      "persistence": persistence_forecast(fitted.raw, "test"),
                      "drawn": _first_series_points(fitted.raw, "test", fitted.predictions["test"])}
        if task.shown:
            shown = _shown_parts(fitted, task)
        record = _run_record(fitted, task.specs.model.arch, task.specs.train.seed,
                             task.index if task.fold is not None else None, f"runs/{task.name}")
        return FitOutcome(task.name, record, _run_files(fitted), pooled, shown)


def _shown_parts(fitted, task: FitTask) -> dict:
    """What the comparison's plots draw of one fit: its losses, forecasts and the actual values around them."""
    split = "test" if "test" in fitted.predictions else task.splits[0]
    raw = fitted.raw
    rows = raw.series_splits[0]  # of a panel, its first series
    lo, hi = (rows["train"][0], rows["test"][1]) if task.span else rows[split]
    return {"history": fitted.history, "split": split,
            "drawn": _first_series_points(raw, split, fitted.predictions[split]),
            "actual": (raw.dates[lo:hi].to_numpy(), np.asarray(raw.target_values[lo:hi], dtype="float64")),
            "ylabel": raw.scaling.target_name if len(raw.series_ids) == 1 else f"{raw.series_ids[0]} (the first series)"}


def _run_files(fitted) -> dict:
    """A run folder's files (without plots) for `fitted`, as bytes: written to a temporary folder and read back."""
    import tempfile

    from keras_seq.runs.run import write_run

    with tempfile.TemporaryDirectory(prefix="keras-seq-fit-") as folder:
        write_run(Path(folder), fitted, plots=False)
        return {path.name: path.read_bytes() for path in sorted(Path(folder).iterdir()) if path.is_file()}


def write_fit_folder(folder: Path, outcome: FitOutcome) -> None:
    """Write a fit's run folder under `folder/runs/` from its bytes: staged, then renamed into place."""
    from keras_seq.runs.folder import staged_folder
    from keras_seq.safety import is_folder_name
    from keras_seq.safety import refuse_symlink

    runs = folder / "runs"
    refuse_symlink(runs)
    if not is_folder_name(outcome.name):
        raise KerasSeqError(f"a worker's fit is named {outcome.name[:60]!r}, not a plain folder name: refusing to write it.")
    with staged_folder(runs, outcome.name, replace=True) as stage:
        for name, content in outcome.files.items():
            if not _plain_file_name(name):
                raise KerasSeqError(f"a worker sent a run folder file named {name[:60]!r}: refusing to write it.")
            (stage.path / name).write_bytes(content)


def _plain_file_name(name) -> bool:
    """A run folder file's name as keras-seq writes them: letters, digits, '-', '_' and one '.'."""
    return (isinstance(name, str) and 0 < len(name) <= 64 and name.count(".") == 1 and not name.startswith(".")
            and name.replace(".", "").replace("-", "").replace("_", "").isalnum())


_ARRAYS = {"pooled": ("actual", "model", "persistence"), "pairs": (("pooled", "drawn"), ("shown", "drawn"),
                                                                    ("shown", "actual"))}


def outcome_arrays(outcome: FitOutcome) -> dict:
    """A fit's arrays (pooled forecasts, what the plots draw) by flat names, as `fits/<name>.npz` keeps them."""
    arrays = {}
    if outcome.pooled is not None:
        arrays |= {f"pooled_{key}": np.asarray(outcome.pooled[key]) for key in _ARRAYS["pooled"]}
    for part, key in _ARRAYS["pairs"]:
        source = outcome.pooled if part == "pooled" else outcome.shown
        if source is not None:
            arrays[f"{part}_{key}_dates"], arrays[f"{part}_{key}_values"] = map(np.asarray, source[key])
    return arrays


def outcome_entry(outcome: FitOutcome) -> dict:
    """A fit's record and what the plots show of it, without arrays: its entry in `interrupted.json`."""
    shown = None if outcome.shown is None else {k: outcome.shown[k] for k in ("history", "split", "ylabel")}
    return {"record": outcome.record, "shown": shown}


def outcome_from(entry, arrays: dict, task: FitTask, where: str, files: dict | None = None) -> FitOutcome:
    """A `FitOutcome` from its entry and arrays, read from a folder or a worker: refused unless it is the one
    `task` makes (its record, what it shows, and arrays where the report reads them)."""
    if not isinstance(entry, dict):
        raise KerasSeqError(f"{where} holds no record of the fit '{task.name}'. Start the comparison again.")
    check_record(entry.get("record"), task, where)
    shown = entry.get("shown")
    wanted = [f"pooled_{key}" for key in _ARRAYS["pooled"]] if task.fold is not None else []
    wanted += [f"{part}_{key}_{end}" for part, key in _ARRAYS["pairs"] for end in ("dates", "values")
               if (part == "pooled" and task.fold is not None) or (part == "shown" and task.shown)]
    problem = _shown_problem(shown, task) or next((f"no array '{key}'" for key in wanted if key not in arrays), None)
    if problem is None and any(arrays[key].dtype.kind not in "fiuM" for key in wanted):
        problem = "arrays that are not numbers or dates"
    if problem:
        raise KerasSeqError(f"{where}: the fit '{task.name}' has {problem}. The folder or worker result may have "
                            "been changed; start the comparison again.")
    pooled = ({key: arrays[f"pooled_{key}"] for key in _ARRAYS["pooled"]} if task.fold is not None else None)
    if pooled is not None:
        pooled["drawn"] = (arrays["pooled_drawn_dates"], arrays["pooled_drawn_values"])
    if shown is not None:
        shown = dict(shown, drawn=(arrays["shown_drawn_dates"], arrays["shown_drawn_values"]),
                     actual=(arrays["shown_actual_dates"], arrays["shown_actual_values"]))
    return FitOutcome(task.name, entry["record"], files or {}, pooled, shown)


def _shown_problem(shown, task: FitTask) -> str | None:
    """What is wrong with what a fit says its plots show (None: nothing)."""
    if (shown is None) != (not task.shown):
        return "a plot record where none belongs" if shown is not None else "no plot record"
    if shown is None:
        return None
    history = shown.get("history") if isinstance(shown, dict) else None
    if (not isinstance(history, dict) or set(history) - {"loss", "val_loss"}
            or not all(isinstance(v, list) and len(v) <= task.specs.train.epochs and all(_is_number(x) for x in v)
                       for v in history.values())):
        return "a loss history that is not one number per epoch"
    if shown.get("split") not in task.splits or not _short_text(shown.get("ylabel")):
        return "a plot record that names no split of it, or a label that is not short text"
    return None


def check_record(record, task: FitTask, where: str) -> None:
    """Refuse a fit's `comparison.json` record that is not the one `task` makes: its arch, seed, fold and run,
    numbers where the report reads numbers, short text without control characters, one report per split.

    Raises:
        KerasSeqError: naming the first problem, before anything is trained or written.
    """
    expected = {"arch": task.specs.model.arch, "seed": task.specs.train.seed,
                "fold": task.index if task.fold is not None else None, "run": f"runs/{task.name}"}
    problem = None
    if not isinstance(record, dict) or len(json.dumps(record, default=str)) > MAX_RECORD_CHARS:
        problem = "a record that is not a small JSON object"
    elif any(record.get(key) != value for key, value in expected.items()):
        problem = f"a record of another fit ({', '.join(f'{k}={str(record.get(k))[:40]!r}' for k in expected)})"
    elif not all(_is_number(record.get(key)) for key in ("parameters", "train_seconds", "epochs_run")):
        problem = "a parameter count, training time or epoch count that is not a number"
    elif not _is_number(record.get("best_val_loss"), none=True):
        problem = "a best validation loss that is not a number"
    elif not isinstance(record.get("splits"), dict) or set(record["splits"]) != set(task.splits):
        problem = f"reports of other splits than {', '.join(task.splits)}"
    else:
        problem = next(filter(None, (_report_problem(record["splits"][split]) for split in task.splits)), None)
    if problem:
        raise KerasSeqError(f"{where}: the fit '{task.name}' has {problem}. The folder or worker result may have "
                            "been changed; start the comparison again.")


MAX_RECORD_CHARS = 1 << 20


def _report_problem(report) -> str | None:
    """What is wrong with one split's report in a fit's record, where the comparison's report reads it."""
    if not isinstance(report, dict) or not all(isinstance(report.get(k), dict) for k in ("model", PERSISTENCE)):
        return "a split report without model and persistence figures"
    figures = [report["model"], report[PERSISTENCE], *_values(report.get("baselines"))]
    if not all(isinstance(f, dict) and all(_is_number(f.get(k), none=True) for k in metric_names()) for f in figures):
        return "error figures that are not numbers"
    if not _is_number(report.get("skill"), none=True) or not isinstance(report.get("windows"), int):
        return "a skill or window count that is not a number"
    if not all(_short_text(report.get(k)) for k in ("split", "first_date", "last_date")):
        return "a split name or date that is not short text"
    if not _short_text(report.get("best_baseline", PERSISTENCE)) or not all(map(_short_text, report.get("baselines") or {})):
        return "a baseline name that is not short text"
    intervals = report.get("intervals")
    if intervals is not None:
        model = intervals.get("model") if isinstance(intervals, dict) else None
        coverages = model.get("intervals") if isinstance(model, dict) else None
        if (not isinstance(coverages, dict) or not _is_number(model.get("crps"), none=True)
                or not _is_number(intervals.get("crps_skill"), none=True)
                or not all(_short_text(k) and isinstance(v, dict) and _is_number(v.get("coverage"), none=True)
                           for k, v in coverages.items())):
            return "interval scores that are not numbers"
    return None


def _values(mapping) -> list:
    return list(mapping.values()) if isinstance(mapping, dict) else [] if mapping is None else [None]


def _is_number(value, none: bool = False) -> bool:
    return (value is None and none) or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _short_text(value, limit: int = 200) -> bool:
    return isinstance(value, str) and len(value) <= limit and not has_control_characters(value)


def outcome_limit(frame, windows: WindowSpec) -> int:
    """The most bytes one fit's arrays and files may take, from the rows and horizon it is trained on: its
    test targets and forecasts (a few per row and step), the plotted points, and its run folder's files."""
    return 64 * 8 * len(frame) * max(windows.horizon, 1) + (64 << 20)


def interrupted_record(folder: Path, settings: dict, tasks: list, finished: dict) -> dict:
    """`interrupted.json` of a comparison that stopped early (each kept fit's arrays in `fits/<name>.npz`)."""
    from keras_seq.safety import refuse_symlink

    fits = folder / "fits"
    refuse_symlink(fits)
    fits.mkdir(exist_ok=True)
    for name, outcome in finished.items():
        np.savez(fits / f"{name}.npz", **outcome_arrays(outcome))
    return {"kind": "interrupted keras-seq comparison", "settings": settings,
            "finished": {name: outcome_entry(outcome) for name, outcome in finished.items()},
            "pending": [task.name for task in tasks if task.name not in finished]}


def kept_fits(folder: Path, record: dict, tasks: list, limit: int) -> dict:
    """The `FitOutcome`s an interrupted comparison kept, read back (only names among `tasks`, each checked)."""
    from keras_seq.runs.folder import check_manifest
    from keras_seq.safety import read_npz, refuse_symlink

    by_name = {task.name: task for task in tasks}
    where = folder / INTERRUPTED_FILE
    finished = record.get("finished")
    if not isinstance(finished, dict):
        raise KerasSeqError(f"{where} lists no finished fits. The folder may have been changed; start the comparison again.")
    outcomes = {}
    for name, entry in finished.items():
        if name not in by_name:
            raise KerasSeqError(f"{where} lists a fit {name[:60]!r} this comparison does not have. "
                                "The folder may have been changed; start the comparison again.")
        for path in (folder / "runs" / name, folder / "fits" / f"{name}.npz"):
            refuse_symlink(path)
        check_manifest(folder / "runs" / name)
        arrays = read_npz(folder / "fits" / f"{name}.npz", limit, f"{folder / 'fits' / name}.npz")
        outcomes[name] = outcome_from(entry, arrays, by_name[name], str(where))
    return outcomes


def fit_one_as_bytes(frame, task: FitTask) -> bytes:
    """`fit_one` on a worker, its outcome (or its one-line error) as keras-seq's own bytes: an `.npz` of plain
    arrays and one JSON text, so the caller never unpickles what a worker sends."""
    import io

    try:
        outcome = fit_one(frame, task)
        arrays = {f"a_{key}": value for key, value in outcome_arrays(outcome).items()}
        arrays |= {f"f_{i}": np.frombuffer(content, dtype="uint8") for i, content in enumerate(outcome.files.values())}
        meta = {"name": outcome.name, **outcome_entry(outcome), "files": list(outcome.files)}
    except KerasSeqError as exc:
        arrays, meta = {}, {"error": str(exc), "interrupted": isinstance(exc, RunInterrupted)}
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.frombuffer(json.dumps(meta, default=str).encode(), dtype="uint8"), **arrays)
    return buffer.getvalue()


def decode_outcome(data, task: FitTask, limit: int) -> FitOutcome:
    """A worker's bytes (`fit_one_as_bytes`) as the `FitOutcome` of `task`, checked like a hostile folder.

    Raises:
        KerasSeqError: the bytes are not keras-seq's, name another fit or a file outside its folder, or the
            fit failed on its worker (its one line; `RunInterrupted` where it was stopped).
    """
    import io

    from keras_seq.errors import one_line
    from keras_seq.safety import read_npz

    where = f"the worker result of {task.name}"
    if not isinstance(data, bytes):
        raise KerasSeqError(f"{where} is not keras-seq's result bytes ({type(data).__name__}). Refusing it.")
    arrays = read_npz(io.BytesIO(data), limit, where)
    try:
        meta = json.loads(arrays.pop("meta").tobytes().decode("utf-8"))
    except (KeyError, ValueError, UnicodeDecodeError):
        raise KerasSeqError(f"{where} is not keras-seq's result bytes (no readable record). Refusing it.") from None
    if not isinstance(meta, dict):
        raise KerasSeqError(f"{where} is not keras-seq's result bytes (no readable record). Refusing it.")
    if "error" in meta:
        error = RunInterrupted if meta.get("interrupted") is True else KerasSeqError
        raise error(one_line(str(meta["error"]), 2000))
    names = meta.get("files")
    if meta.get("name") != task.name or not isinstance(names, list) or not all(map(_plain_file_name, names)):
        raise KerasSeqError(f"{where} names another fit or a file outside its run folder "
                            f"({str(meta.get('name'))[:60]!r}). Refusing it.")
    files = {}
    for i, name in enumerate(names):
        content = arrays.get(f"f_{i}")
        if content is None or content.dtype != np.uint8 or content.ndim != 1:
            raise KerasSeqError(f"{where} lacks the file {name}. Refusing it.")
        files[name] = content.tobytes()
    kept = {key[2:]: value for key, value in arrays.items() if key.startswith("a_")}
    return outcome_from(meta, kept, task, where, files)


def _first_series_points(raw, split: str, predictions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(dates, forecasts) of the first series' windows of `split`, one per date (first step ahead, or a sequence's
    last): what compare_forecast.png draws (of a panel, its first series)."""
    column = 0 if raw.target_kind == "next" else -1
    positions = raw.target_positions(split)[:, column]
    rows = raw.series_splits[0]
    mine = (positions >= rows["train"][0]) & (positions < rows["test"][1])
    return raw.dates[positions[mine]].to_numpy(), predictions[mine, column]


def fold_data(frame, windows: WindowSpec, fold: tuple[int, int, int] | None):
    """The rows and split fractions one backtest fold trains and tests on (`fold=None`: all, unchanged)."""
    if fold is None:
        return frame, windows
    val_lo, test_lo, test_hi = fold
    splits = (val_lo / test_hi, (test_lo - val_lo) / test_hi, (test_hi - test_lo) / test_hi)
    dates = np.sort(frame.index.unique())  # of one series, its rows; of a panel, the union of its series' dates
    kept = frame if test_hi >= len(dates) else frame[frame.index < dates[test_hi]]  # every series up to the fold's end
    return kept, dataclasses.replace(windows, splits=splits)


def _run_record(fitted, arch: str, seed: int, fold: int | None, run: str) -> dict:
    """One trained model's entry in comparison.json."""
    return {
        "arch": arch,
        "seed": seed,
        "fold": fold,
        "run": run,
        "parameters": fitted.config["parameters"],
        "train_seconds": fitted.seconds,
        "epochs_run": fitted.config["result"]["epochs_run"],
        "best_val_loss": fitted.config["result"]["best_val_loss"],
        "splits": {split: report.to_dict() for split, report in fitted.reports.items()},
    }
