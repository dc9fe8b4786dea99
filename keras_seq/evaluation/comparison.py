"""A comparison of archs on identical data, splits, seeds and budget, on held-out data (`keras-seq compare`
and a recipe's experiments run it).

This is the tutorial's four-model experiment done honestly: every model gets
its own optimizer, the same windows, the same seeds and the same number of
epochs, and is scored in the target's units on data it never trained on, next to
the persistence baseline.

A comparison folder holds:
- `comparison.md`, `comparison.json`: per arch the parameter count, training
  seconds, epochs run, best validation loss, MAE, RMSE, MAPE and skill
  against persistence (mean and standard deviation over seeds);
- `compare_loss.png`, `compare_forecast.png`, `compare_mae.png`;
- `runs/<arch>-seed<seed>[-fold<k>]/`: every trained model as a run folder.

With `backtest=N` the test rows are cut into N consecutive blocks; fold k
trains on every row before its validation block (an expanding window),
validates on the rows just before block k and tests on block k. Metrics are
given per fold and pooled over all test blocks.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np

from keras_seq.config.options import compared_values, options, settle, spec_of, values_of
from keras_seq.data.sources import frame_sha256
from keras_seq.data.windows import SPLIT_NAMES, WindowSpec, split_rows
from keras_seq.errors import KerasSeqError, RunInterrupted, has_control_characters
from keras_seq.evaluation.metrics import metric_names, metrics
from keras_seq.evaluation.report import PERSISTENCE
from keras_seq.present.plots import plot_comparison
from keras_seq.present.tables import comparison_markdown
from keras_seq.models.registry import check_arch_list
from keras_seq.models.spec import ModelSpec, check_model_for_windows


@spec_of("evaluate")
class CompareSpec:
    """Which archs to compare, and how: the option table's `evaluate` section (`keras_seq.config.options`).

    `jobs` and `scheduler` say where the fits run (local worker processes, or
    a dask.distributed scheduler's address, `jobs` then ignored); the numbers
    are the same either way.
    """

    def __post_init__(self):
        settle(self, archs=check_arch_list(self.archs))
        bad = [split for split in self.on if split not in SPLIT_NAMES]
        if not self.on or bad:
            raise KerasSeqError(
                f"unknown split '{bad[0] if bad else ''}' to score. Expected some of: {', '.join(SPLIT_NAMES)}."
            )
        if self.backtest and self.on != ("test",):
            raise KerasSeqError("a backtest scores its test folds only: leave `on` at test when `backtest` is set.")
        self.fanout  # checks jobs and scheduler

    @property
    def fanout(self):
        """Where the fits run: a `jobs.pool.Fanout` of `jobs` and `scheduler`."""
        from keras_seq.jobs.pool import Fanout

        return Fanout(self.jobs, self.scheduler)

    def settings(self) -> dict:
        """What comparison.json records: everything but where the fits ran, which changes no number."""
        placed = {o.name for o in options("evaluate") if o.placement}
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in placed}


def check_fanout(fanout, train) -> None:
    """Refuse a fan-out of data-parallel fits (each worker would claim every device)."""
    if not fanout.serial and train.devices != 1:
        raise KerasSeqError("`jobs` and `scheduler` run many one-device fits side by side: leave `devices` at 1 with "
                            "them (or drop `jobs` to train one data-parallel model at a time).")


def check_comparison(windows: WindowSpec, model: ModelSpec, spec: CompareSpec, data=None) -> None:
    """Refuse, before any work, an arch that cannot be built with these options (and columns, given `data`)."""
    features, target = (data.feature_columns, data.target) if data is not None else (None, None)
    for arch in spec.archs:
        check_model_for_windows(dataclasses.replace(model, arch=arch), windows.target_kind, windows.supervision,
                                features, target)


def date_count(frame) -> int:
    """The distinct dates of a loaded frame: its rows for one series, the union of its series' dates for a panel."""
    return len(frame.index.unique())


def backtest_folds(n_rows: int, windows: WindowSpec, folds: int) -> list[tuple[int, int, int]]:
    """`(validation start, test start, test end)` rows of each walk-forward fold.

    The rows are the distinct dates (`date_count`): of a panel, positions in
    the union of its series' dates, so every series' folds begin on the same
    dates.

    The held-out test rows of `windows.splits` are cut into `folds`
    consecutive blocks; each fold's validation block is the rows just before
    its test block, and it trains on every row before that.

    Example:
    >>> backtest_folds(100, WindowSpec(splits=(0.6, 0.2, 0.2)), 2)
    [(60, 80, 90), (70, 90, 100)]
    """
    rows = split_rows(n_rows, windows.splits)
    (val_lo, test_lo), (_, test_hi) = rows["validation"], rows["test"]
    edges = np.linspace(test_lo, test_hi, folds + 1).round().astype(int)
    n_val = test_lo - val_lo
    return [(int(lo) - n_val, int(lo), int(hi)) for lo, hi in zip(edges[:-1], edges[1:])]


def check_backtest(n_rows: int, windows: WindowSpec, folds: int) -> None:
    """Refuse folds whose test block cannot hold the targets of one window."""
    if not folds:
        return
    if windows.split_dates is not None:
        raise KerasSeqError("`backtest` cuts its folds by `splits` fractions: leave `split_dates` out with it.")
    if windows.splits[2] <= 0 or windows.splits[1] <= 0:
        raise KerasSeqError("a backtest needs validation and test fractions above 0 in `splits`.")
    need = windows.horizon if windows.target_kind == "next" else windows.window
    smallest = min(hi - lo for _, lo, hi in backtest_folds(n_rows, windows, folds))
    if smallest < need:
        test_rows = split_rows(n_rows, windows.splits)["test"]
        raise KerasSeqError(
            f"`backtest` {folds} cuts the {test_rows[1] - test_rows[0]} test rows into blocks as small as {smallest} "
            f"rows, but a fold needs at least {need} for one window's targets. Use fewer folds or a larger test fraction."
        )


def compare_into(folder: Path, frame, specs, spec: CompareSpec, *, verbose="auto", title=None, pool=None,
                 finished=None) -> tuple[dict, str]:
    """Run a comparison on a loaded `frame` and write its files into `folder`.

    `specs` (a `runs.run.RunSpecs`) holds the options every model shares; its
    arch and seed are replaced by each of `spec.archs` and seeds. Keras must
    already be imported with `specs.backend`. `pool` (from
    `jobs.pool.open_pool`) runs the fits on workers; None runs them here, one
    after another. `finished` maps the names of fits an interrupted
    comparison kept to their `FitOutcome`s: they are not trained again.

    Returns:
        `(summary, markdown)`: the contents of comparison.json and comparison.md.

    Raises:
        jobs.pool.Stopped: a signal or a fit's error ended it early. Every fit
            that finished has its run folder, and `interrupted.json` lists them.
    """
    from keras_seq.jobs.pool import Stopped, run_tasks
    from keras_seq.runs.folder import write_json

    seeds = [specs.train.seed + k for k in range(spec.repeats)]
    folds = backtest_folds(date_count(frame), specs.windows, spec.backtest) if spec.backtest else [None]
    digest = frame_sha256(frame)  # the frame hashed once
    settings = comparison_settings(frame, specs, spec, digest, seeds, folds)
    tasks = fit_tasks(specs, spec, seeds, folds, digest, verbose if pool is None else 0)
    finished = dict(finished or {})
    todo = [task for task in tasks if task.name not in finished]

    def done(task, outcome):
        write_fit_folder(folder, outcome)
        finished[task.name] = outcome
        if pool is not None and verbose != 0:
            print(f"[{len(finished)}/{len(tasks)}] {task.name} done in {outcome.record['train_seconds']:.1f} s",
                  flush=True)

    limit = outcome_limit(frame, specs.windows)
    try:
        run_tasks(fit_one if pool is None else fit_one_as_bytes, frame, todo, pool, done,
                  decode=lambda data, task: decode_outcome(data, task, limit))
        from keras_seq.jobs.stop import STOP

        STOP.check("the comparison")  # a signal after the last fit: the report is left for --resume
    except KerasSeqError as exc:
        write_json(folder / INTERRUPTED_FILE, interrupted_record(folder, settings, tasks, finished))
        interrupted = getattr(exc, "interrupted", isinstance(exc, RunInterrupted))
        raise Stopped(str(exc), [finished[t.name] for t in tasks if t.name in finished], interrupted,
                      len(tasks)) from None
    return _report(folder, [finished[task.name] for task in tasks], tasks, (specs, spec), settings, title)


def _report(folder: Path, outcomes: list, tasks: list, compared: tuple, settings: dict, title) -> tuple[dict, str]:
    """A finished comparison's report files from its fits' outcomes; what a stopped run kept for them is removed."""
    from keras_seq.runs.folder import write_json

    specs, spec = compared  # the run's options and the comparison's
    runs, shown = _collect(outcomes, tasks, spec)
    scored = ("backtest",) if spec.backtest else spec.on
    summary = summarize(runs, spec, scored)
    summary["settings"] = settings
    summary["runs"] = runs
    markdown = comparison_markdown(summary, specs, spec, title=title)
    plot_comparison(folder, shown, summary, (specs, spec), scored[0])
    write_json(folder / "comparison.json", summary)
    (folder / "comparison.md").write_text(markdown, encoding="utf-8")
    (folder / INTERRUPTED_FILE).unlink(missing_ok=True)
    if (folder / "fits").is_dir() and not (folder / "fits").is_symlink():  # a stopped run's arrays, read back now
        shutil.rmtree(folder / "fits")
    return json.loads(json.dumps(summary, default=str)), markdown


INTERRUPTED_FILE = "interrupted.json"
# What finishing a comparison writes into its folder (`runs/` and `fits/` are folders of a stopped one's fits).
WRITTEN_ON_RESUME = ("runs", "fits", "comparison.json", "comparison.md", "compare_loss.png", "compare_forecast.png",
                     "compare_mae.png")


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


@dataclasses.dataclass
class FitOutcome:
    """What a fit sends back from wherever it ran: its record, its run folder's files, and what the report needs."""

    name: str
    record: dict  # its entry in comparison.json's runs
    files: dict  # file name -> bytes of its run folder
    pooled: dict | None  # of a backtest fold: actual, model, persistence (test targets and forecasts), drawn
    shown: dict | None  # of a fit the plots draw: history, split, drawn, actual, ylabel


def fit_tasks(specs, spec: CompareSpec, seeds: list, folds: list, digest: str, verbose) -> list[FitTask]:
    """Every fit of a comparison, in the order a serial run trains them."""
    tasks = []
    total = len(spec.archs) * len(seeds) * len(folds)
    for arch in spec.archs:
        for seed in seeds:
            mine = dataclasses.replace(specs, model=dataclasses.replace(specs.model, arch=arch),
                                       train=dataclasses.replace(specs.train, seed=seed))
            for index, fold in enumerate(folds, start=1):
                name = f"{arch}-seed{seed}" + (f"-fold{index}" if fold is not None else "")
                where = f", fold {index} of {len(folds)}" if fold is not None else ""
                tasks.append(FitTask(
                    name=name, specs=mine, fold=fold, index=index,
                    splits=("test",) if fold is not None else spec.on, digest=digest if fold is None else None,
                    shown=seed == seeds[0] and (fold is None or index == len(folds)), span=fold is not None,
                    verbose=verbose, label=f"[{len(tasks) + 1}/{total}] {arch}, seed {seed}{where}"))
    return tasks


def fit_one(frame, task: FitTask) -> FitOutcome:
    """Train and score one model of a comparison, here or on a worker; its run folder comes back as bytes."""
    from keras_seq.jobs.pool import in_worker

    with in_worker(task.specs.backend):
        import keras

        from keras_seq.evaluation.report import persistence_forecast
        from keras_seq.runs.run import Run, train_and_evaluate
        from keras_seq.jobs.stop import STOP

        fold_frame, fold_windows = fold_data(frame, task.specs.windows, task.fold)
        if task.verbose != 0:  # Keras's epoch lines follow: say whose they are
            print(task.label, flush=True)
        keras.backend.clear_session()
        STOP.check("the comparison")
        run = Run.of(dataclasses.replace(task.specs, windows=fold_windows), fold_frame, task.digest)
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
    from keras_seq.runs.folder import is_folder_name, staged_folder
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


# === Keeping the fits of an interrupted comparison ===

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


# === A fit's outcome as bytes, from a worker ===


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


def _collect(outcomes: list, tasks: list, spec: CompareSpec) -> tuple[list, dict]:
    """comparison.json's runs (fold records, then each arch and seed's pooled record) and what the plots draw."""
    runs, shown, pooled = [], {}, {}
    for task, outcome in zip(tasks, outcomes):
        arch, seed = task.specs.model.arch, task.specs.train.seed
        runs.append(outcome.record)
        if outcome.pooled is not None:
            parts = pooled.setdefault((arch, seed), {"actual": [], "model": [], "persistence": [], "drawn": []})
            for key, values in outcome.pooled.items():
                parts[key].append(values)
        if outcome.shown is not None:
            shown[arch] = dict(outcome.shown)
        if spec.backtest and task.index == spec.backtest:  # the last fold of this arch and seed
            record_pooled(runs, arch, seed, pooled[(arch, seed)])
            if task.shown:  # the plots show every fold's test block
                dates, values = zip(*pooled[(arch, seed)]["drawn"])
                shown[arch].update(drawn=(np.concatenate(dates), np.concatenate(values)), span=True)
    return runs, shown


def comparison_settings(frame, specs, spec: CompareSpec, digest: str, seeds: list, folds: list) -> dict:
    """What every model of a comparison shared: comparison.json's `settings`."""
    return {
        "data": specs.data_record(frame, digest),
        "windows": values_of(specs.windows),
        "model": compared_values(specs.model, spec.archs),
        "train": values_of(specs.train),
        "compare": spec.settings(),
        "seeds": seeds,
        "backend": specs.backend,
        "folds": [dict(zip(("validation_start", "test_start", "test_end"), f)) for f in folds] if spec.backtest else None,
    }


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


def record_pooled(runs: list, arch: str, seed: int, pooled: dict) -> None:
    """Attach the metrics pooled over every fold to the fold records of one arch and seed."""
    from keras_seq.evaluation.report import forecast_metrics, skill

    actual = np.concatenate(pooled["actual"])
    model = forecast_metrics(actual, np.concatenate(pooled["model"]))
    baseline = forecast_metrics(actual, np.concatenate(pooled["persistence"]))
    folds = [r for r in runs if r["arch"] == arch and r["seed"] == seed]
    for name, figures in (("model", model), ("persistence", baseline)):
        figures.update(_pooled_mase([r["splits"]["test"] for r in folds], name))
    entry = {
        "arch": arch,
        "seed": seed,
        "fold": "pooled",
        "parameters": folds[0]["parameters"],
        "train_seconds": sum(r["train_seconds"] for r in folds),
        "epochs_run": float(np.mean([r["epochs_run"] for r in folds])),
        "best_val_loss": float(np.mean([r["best_val_loss"] for r in folds])),
        "splits": {
            "backtest": {
                "name": arch,
                "split": f"{len(folds)} walk-forward test folds, pooled",
                "windows": int(len(actual)),
                "first_date": folds[0]["splits"]["test"]["first_date"],
                "last_date": folds[-1]["splits"]["test"]["last_date"],
                "model": model,
                "persistence": baseline,
                "skill": skill(model["mae"], baseline["mae"]),
            }
        },
    }
    runs.append(entry)


def _pooled_mase(reports: list, name: str) -> dict:
    """MASE over every fold's windows: each fold scales its errors by its own training split's naive error, so the
    pooled figure is the folds' MASE weighted by their windows (empty where a fold has none)."""
    mases = [report[name].get("mase") for report in reports]
    if any(m is None for m in mases):
        return {}
    return {"mase": float(np.average(mases, weights=[report["windows"] for report in reports]))}


def _mean_std(values) -> dict:
    values = np.asarray([np.nan if v is None else v for v in values], dtype="float64")
    std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return {"mean": float(values.mean()), "std": std, "n": int(len(values))}


def _interval_summary(reports: list) -> dict:
    """Of quantile models' reports (every seed's): mean ± std of the CRPS, its skill against the random walk and
    each interval's coverage; nothing for point models."""
    if not all(rep.get("intervals") for rep in reports):
        return {}
    scores = [rep["intervals"] for rep in reports]
    return {"crps": _mean_std([s["model"]["crps"] for s in scores]),
            "crps_skill": _mean_std([s["crps_skill"] for s in scores]),
            "coverage": {name: _mean_std([s["model"]["intervals"][name]["coverage"] for s in scores])
                         for name in scores[0]["model"]["intervals"]}}


def summarize(runs: list, spec: CompareSpec, scored: tuple[str, ...]) -> dict:
    """Mean and standard deviation over seeds of every figure, per arch and scored split."""
    per_seed = [r for r in runs if r["fold"] in (None, "pooled")]
    archs = {}
    for arch in spec.archs:
        mine = [r for r in per_seed if r["arch"] == arch]
        entry = {
            "parameters": mine[0]["parameters"],
            "train_seconds": _mean_std([r["train_seconds"] for r in mine]),
            "epochs_run": _mean_std([r["epochs_run"] for r in mine]),
            "best_val_loss": _mean_std([r["best_val_loss"] for r in mine]),
            "splits": {},
        }
        for split in scored:
            reports = [r["splits"][split] for r in mine]
            entry["splits"][split] = {
                **{m.name: _mean_std([rep["model"].get(m.name) for rep in reports]) for m in metrics()},
                "skill": _mean_std([rep["skill"] for rep in reports]),
                **_interval_summary(reports),
            }
        if spec.backtest:
            entry["folds"] = {
                str(fold): _mean_std([r["splits"]["test"]["model"]["mae"] for r in runs
                                      if r["arch"] == arch and r["fold"] == fold])
                for fold in range(1, spec.backtest + 1)
            }
        archs[arch] = entry
    first = [r for r in per_seed if r["arch"] == spec.archs[0] and r["seed"] == per_seed[0]["seed"]][0]
    splits = {}
    for split in scored:
        report = first["splits"][split]
        splits[split] = {key: report[key] for key in ("split", "windows", "first_date", "last_date")}
        splits[split][PERSISTENCE] = report["persistence"]
        splits[split]["baselines"] = report.get("baselines") or {PERSISTENCE: report["persistence"]}
        splits[split]["best_baseline"] = report.get("best_baseline", PERSISTENCE)
    result = {"archs": archs, "splits": splits}
    if spec.backtest:
        fold_runs = [r for r in runs if r["arch"] == spec.archs[0] and r["seed"] == first["seed"]
                     and isinstance(r["fold"], int)]
        result["folds"] = {str(r["fold"]): {"first_date": r["splits"]["test"]["first_date"],
                                            "last_date": r["splits"]["test"]["last_date"],
                                            "windows": r["splits"]["test"]["windows"],
                                            "persistence_mae": r["splits"]["test"]["persistence"]["mae"]}
                           for r in fold_runs}
    return result


# === Report ===


