"""Compare archs on identical data, splits, seeds and budget, on held-out data.

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

from keras_seq.config.options import values_of
from keras_seq.backend import use_backend
from keras_seq.data.sources import DataSpec, frame_sha256
from keras_seq.data.windows import SPLIT_NAMES, WindowSpec, split_rows
from keras_seq.errors import KerasSeqError, RunInterrupted, has_control_characters
from keras_seq.metrics import metric_names, metrics
from keras_seq.models.registry import check_arch_list, get_arch
from keras_seq.models.spec import CLASSIC_ARCHS, ModelSpec, check_model_for_windows

PERSISTENCE = "persistence"


@dataclasses.dataclass(frozen=True)
class CompareSpec:
    """Which archs to compare, and how.

    Args:
        archs: tuple of str. Archs to train, in report order. Defaults to
            drnn, brnn, lstm, gru.
        repeats: int. Seeds per arch: `seed`, `seed + 1`, ... Defaults to `1`.
        backtest: int. Walk-forward folds over the test rows; `0` scores the
            single held-out test split. Defaults to `0`.
        on: tuple of str. Splits to score (`train`, `validation`, `test`).
            Scoring `train` shows how far training error flatters a model.
            Defaults to `("test",)`.
        jobs: int. Fits trained side by side on local worker processes;
            `1` trains them one after another in this process. The numbers
            are the same either way. Defaults to `1`.
        scheduler: str or None. A dask.distributed scheduler's address
            (`tcp://host:8786`) to send the fits to instead (`jobs` is then
            ignored; needs `pip install 'keras-seq[dask]'`). Defaults to None.
    """

    archs: tuple[str, ...] = CLASSIC_ARCHS
    repeats: int = 1
    backtest: int = 0
    on: tuple[str, ...] = ("test",)
    jobs: int = 1
    scheduler: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "archs", check_arch_list(self.archs))
        object.__setattr__(self, "on", (self.on,) if isinstance(self.on, str) else tuple(self.on))
        if not isinstance(self.repeats, int) or isinstance(self.repeats, bool) or self.repeats < 1:
            raise KerasSeqError(f"`repeats` must be an integer of at least 1. Received: repeats={self.repeats}")
        if not isinstance(self.backtest, int) or isinstance(self.backtest, bool) or self.backtest < 0:
            raise KerasSeqError(
                f"`backtest` must be a number of folds (0 for none, or at least 1). Received: backtest={self.backtest}"
            )
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
        """Where the fits run: a `fanout.Fanout` of `jobs` and `scheduler`."""
        from keras_seq.fanout import Fanout

        return Fanout(self.jobs, self.scheduler)

    def settings(self) -> dict:
        """What comparison.json records: everything but where the fits ran, which changes no number."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in ("jobs", "scheduler")}


@dataclasses.dataclass
class Comparison:
    """A finished comparison: where it was written, its summary and its table."""

    path: Path
    summary: dict  # as in comparison.json
    markdown: str


def compare_models(
    data: DataSpec = DataSpec(),
    windows: WindowSpec = WindowSpec(),
    model: ModelSpec = ModelSpec(),
    train=None,
    spec: CompareSpec = CompareSpec(),
    *,
    out: str | Path = "saved_models",
    backend: str | None = None,
    verbose: str | int = 0,
) -> Comparison:
    """Train and score every arch of `spec`; write a `compare-<UTC>` folder under `out`.

    Args:
        data, windows, train: as for `fitting.fit_run`; shared by every arch.
        model: ModelSpec. Size options shared by every arch (its `arch` is
            replaced by each of `spec.archs`).
        spec: CompareSpec. Archs, repeats, backtest folds, scored splits.
        out: path. Folder that receives the comparison folder.
        backend: str or None. Keras backend. Defaults to `$KERAS_BACKEND`,
            else jax.
        verbose: "auto", 0, 1 or 2. Keras's progress output per model (one
            line per finished fit where they run on workers).

    Returns:
        A `Comparison`.

    Raises:
        KerasSeqError: bad data or options; nothing is written.
        fanout.Stopped: a signal or a fit's error stopped it after some fits
            finished: they are published with `interrupted.json`, and
            `resume_comparison` finishes the comparison.
    """
    backend = use_backend(backend)
    check_comparison(windows, model, spec, data)
    frame = data.load()
    check_backtest(date_count(frame), windows, spec.backtest)
    from keras_seq.fanout import Stopped, open_pool
    from keras_seq.runs.run import RunSpecs, start_keras
    from keras_seq.training import TrainSpec

    train = train or TrainSpec()
    check_fanout(spec.fanout, train)
    start_keras(train.devices)
    from keras_seq.safety import stop_signals
    from keras_seq.rundir import staged_folder, utc_stamp

    specs = RunSpecs(data, windows, model, train, backend)
    kept = None
    with stop_signals(), open_pool(spec.fanout, backend) as pool, staged_folder(out, f"compare-{utc_stamp()}") as stage:
        try:
            summary, markdown = compare_into(stage.path, frame, specs, spec, verbose=verbose, pool=pool)
        except Stopped as exc:
            if not exc.outcomes:
                raise  # nothing finished: nothing is published
            kept = exc  # the fits that finished are published, with interrupted.json
    if kept is not None:
        raise kept.kept_in(stage.final)
    return Comparison(stage.final, summary, markdown)


def check_fanout(fanout, train) -> None:
    """Refuse a fan-out of data-parallel fits (each worker would claim every device)."""
    if not fanout.serial and train.devices != 1:
        raise KerasSeqError("`jobs` and `scheduler` run many one-device fits side by side: leave `devices` at 1 with "
                            "them (or drop `jobs` to train one data-parallel model at a time).")


def resume_comparison(folder: str | Path, *, jobs: int = 1, scheduler: str | None = None,
                      verbose: str | int = 0) -> Comparison:
    """Finish a comparison that a signal or a fit's error stopped, in its folder, with its own options.

    The fits it kept (listed in `interrupted.json`) are not trained again;
    the rest are, with the same seeds, so the report is the one an
    uninterrupted run writes. `jobs` and `scheduler` are as in
    `CompareSpec`: where the remaining fits run.

    Raises:
        KerasSeqError: `folder` is not an interrupted comparison, it was
            changed, or its data changed since it started.
    """
    from keras_seq.fanout import Fanout, Stopped, open_pool
    from keras_seq.safety import folder_lock, refuse_symlink, stop_signals

    folder, fanout = Path(folder), Fanout(jobs, scheduler)
    refuse_symlink(folder)
    if not (folder / INTERRUPTED_FILE).is_file():
        raise KerasSeqError(f"{folder} is not an interrupted comparison: it has no {INTERRUPTED_FILE}. Give a folder "
                            "that a stopped `keras-seq compare` kept.")
    with folder_lock(folder, f"compare --resume {folder}"):
        frame, specs, spec, finished = _kept_comparison(folder, fanout)
        with stop_signals(), open_pool(fanout, specs.backend) as pool:
            try:
                summary, markdown = compare_into(folder, frame, specs, spec, verbose=verbose, pool=pool,
                                                 finished=finished)
            except Stopped as exc:
                raise exc.kept_in(folder) from None
    return Comparison(folder, summary, markdown)


def _kept_comparison(folder: Path, fanout):
    """The loaded rows, options and kept fits of an interrupted comparison, each checked against its record."""
    from keras_seq.runs.run import RunSpecs, start_keras
    from keras_seq.rundir import read_json, specs_from_config
    from keras_seq.safety import refuse_symlink

    for name in (INTERRUPTED_FILE, *WRITTEN_ON_RESUME):  # nothing read or written through a link the folder holds
        refuse_symlink(folder / name)
    record = read_json(folder / INTERRUPTED_FILE)
    settings = record.get("settings") if isinstance(record, dict) else None
    where = folder / INTERRUPTED_FILE
    try:
        spec = CompareSpec(**{**settings["compare"], "archs": tuple(settings["compare"]["archs"]),
                              "on": tuple(settings["compare"]["on"])})
        config = {**settings, "model": {**settings["model"], "arch": spec.archs[0]}}
        backend = use_backend(settings["backend"])
    except (KeyError, TypeError, AttributeError):
        raise KerasSeqError(f"{where} is not a keras-seq comparison record. Start the comparison again.") from None
    data, windows, model, train = specs_from_config(config, None)
    check_fanout(fanout, train)
    frame = data.load()
    digest = frame_sha256(frame)
    if digest != settings["data"].get("sha256"):
        raise KerasSeqError(f"the data of {folder} changed since the comparison started (sha256 {digest[:12]}, "
                            f"recorded {str(settings['data'].get('sha256'))[:12]}). Start the comparison again.")
    start_keras(train.devices)
    specs = RunSpecs(data, windows, model, train, backend)
    seeds = [train.seed + k for k in range(spec.repeats)]
    folds = backtest_folds(date_count(frame), windows, spec.backtest) if spec.backtest else [None]
    if json.loads(json.dumps(_settings(frame, specs, spec, digest, seeds, folds), default=str)) != settings:
        raise KerasSeqError(f"{where} records settings this keras-seq would not write. The folder may have been "
                            "changed; start the comparison again.")
    return frame, specs, spec, kept_fits(folder, record, fit_tasks(specs, spec, seeds, folds, digest, 0),
                                         outcome_limit(frame, windows))


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
    `fanout.open_pool`) runs the fits on workers; None runs them here, one
    after another. `finished` maps the names of fits an interrupted
    comparison kept to their `FitOutcome`s: they are not trained again.

    Returns:
        `(summary, markdown)`: the contents of comparison.json and comparison.md.

    Raises:
        fanout.Stopped: a signal or a fit's error ended it early. Every fit
            that finished has its run folder, and `interrupted.json` lists them.
    """
    from keras_seq.fanout import Stopped, run_tasks
    from keras_seq.rundir import write_json

    seeds = [specs.train.seed + k for k in range(spec.repeats)]
    folds = backtest_folds(date_count(frame), specs.windows, spec.backtest) if spec.backtest else [None]
    digest = frame_sha256(frame)  # the frame hashed once
    settings = _settings(frame, specs, spec, digest, seeds, folds)
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
        from keras_seq.safety import STOP

        STOP.check("the comparison")  # a signal after the last fit: the report is left for --resume
    except KerasSeqError as exc:
        write_json(folder / INTERRUPTED_FILE, interrupted_record(folder, settings, tasks, finished))
        interrupted = getattr(exc, "interrupted", isinstance(exc, RunInterrupted))
        raise Stopped(str(exc), [finished[t.name] for t in tasks if t.name in finished], interrupted,
                      len(tasks)) from None
    return _report(folder, [finished[task.name] for task in tasks], tasks, spec, settings, title)


def _report(folder: Path, outcomes: list, tasks: list, spec: CompareSpec, settings: dict, title) -> tuple[dict, str]:
    """A finished comparison's report files from its fits' outcomes; what a stopped run kept for them is removed."""
    from keras_seq.rundir import write_json

    runs, shown = _collect(outcomes, tasks, spec)
    scored = ("backtest",) if spec.backtest else spec.on
    summary = summarize(runs, spec, scored)
    summary["settings"] = settings
    summary["runs"] = runs
    markdown = comparison_markdown(summary, title=title)
    plot_comparison(folder, shown, summary, scored[0])
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
    from keras_seq.fanout import in_worker

    with in_worker(task.specs.backend):
        import keras

        from keras_seq.evaluation import persistence_forecast
        from keras_seq.runs.run import train_and_evaluate
        from keras_seq.safety import STOP

        fold_frame, fold_windows = fold_data(frame, task.specs.windows, task.fold)
        if task.verbose != 0:  # Keras's epoch lines follow: say whose they are
            print(task.label, flush=True)
        keras.backend.clear_session()
        STOP.check("the comparison")
        fitted = train_and_evaluate(fold_frame, dataclasses.replace(task.specs, windows=fold_windows),
                                    splits=task.splits, verbose=task.verbose, data_sha256=task.digest)
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
    from keras_seq.rundir import is_folder_name, staged_folder
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
    from keras_seq.rundir import check_manifest
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


def _settings(frame, specs, spec: CompareSpec, digest: str, seeds: list, folds: list) -> dict:
    """What every model of a comparison shared: comparison.json's `settings`."""
    return {
        "data": specs.data_record(frame, digest),
        "windows": values_of(specs.windows),
        "model": {k: v for k, v in values_of(specs.model, spec.archs).items() if k != "arch"},
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
    from keras_seq.evaluation import forecast_metrics, skill

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


def _figure(stats: dict, digits: int, repeats: int) -> str:
    if repeats > 1:
        return f"{stats['mean']:.{digits}f} ± {stats['std']:.{digits}f}"
    return f"{stats['mean']:.{digits}f}"


def _deep_sizes(model: dict, archs) -> str:
    """The deep-transition and deep-output sizes, where an arch's backbone reads them (the arch registry says)."""
    read = {option for arch in archs for option in get_arch(arch).options}
    if "transition_layers" not in read:
        return ""
    return (f", deep transition {model['transition_layers']} layers"
            + (f", deep output {model['output_layers']} layers" if "output_layers" in read else ""))


def comparison_markdown(summary: dict, title: str | None = None) -> str:
    """`comparison.md`: settings, one table per scored split, folds, and the leak note."""
    settings = summary["settings"]
    data, win, train, compare = settings["data"], settings["windows"], settings["train"], settings["compare"]
    repeats, archs, seeds = compare["repeats"], summary["archs"], settings["seeds"]
    lines = [
        f"# {title or 'Comparison: ' + ', '.join(archs)}",
        "",
        f"- data: `{data['source']}`, target {data['target']}, inputs {', '.join(data['features'] or [data['target']])}, "
        f"{data['first_date']}..{data['last_date']} ({data['rows']} rows, sha256 `{data['sha256'][:12]}`)",
        f"- windows: {win['window']} steps, target kind `{win['target_kind']}`, horizon {win['horizon']}, "
        f"splits {'/'.join(f'{100 * s:g}' for s in win['splits'])} in time order",
        f"- model: {settings['model']['units']} units, {settings['model']['layers']} layers, "
        f"dropout {settings['model']['dropout']:g}{_deep_sizes(settings['model'], archs)}"
        + f"; each arch with its own Adam (lr {train['lr']:g}), "
        f"batch {train['batch_size']}, {train['epochs']} epoch{'s' if train['epochs'] != 1 else ''}"
        + (f", early stopping after {train['patience']}" if train["patience"] else "")
        + ", best validation weights restored",
        f"- seeds: {', '.join(map(str, seeds))}" + (" (figures are mean ± std over seeds)" if repeats > 1 else "")
        + f"; backend {settings['backend']}",
        "",
    ]
    for split, info in summary["splits"].items():
        scope = info["split"] if split == "backtest" else f"{split} split"
        lines += [
            f"## {scope}: {info['first_date']}..{info['last_date']}, {info['windows']} windows, errors in "
            f"{data['target']}'s units",
            "",
            "| arch | parameters | train s | epochs | best val loss | "
            + " | ".join(m.label for m in metrics()) + " | skill |",
            "|---|---:|---:|---:|---:|" + "---:|" * (len(metrics()) + 1),
        ]
        missing = {"mean": float("nan"), "std": 0.0}
        for arch, entry in archs.items():
            m = entry["splits"][split]
            lines.append(
                f"| {arch} | {entry['parameters']:,} | {_figure(entry['train_seconds'], 1, repeats)} | "
                f"{_figure(entry['epochs_run'], 0 if not compare['backtest'] else 1, 1)} | "
                f"{_figure(entry['best_val_loss'], 4, repeats)} | "
                + " | ".join(_figure(m.get(metric.name, missing), metric.digits, repeats) for metric in metrics())
                + f" | {m['skill']['mean']:+.3f}" + (f" ± {m['skill']['std']:.3f}" if repeats > 1 else "") + " |"
            )
        lines += [*_baseline_rows(info), "", f"best baseline: {info.get('best_baseline', PERSISTENCE)}", "",
                  *_crps_ranking(archs, split, repeats)]
    lines.append(SKILL_NOTE)
    if compare["backtest"]:
        lines += ["", "## test MAE per walk-forward fold", "",
                  "| fold | test dates | windows | persistence | " + " | ".join(archs) + " |",
                  "|---|---|---:|---:|" + "---:|" * len(archs)]
        for fold, info in summary["folds"].items():
            cells = [_figure(archs[a]["folds"][fold], 2, repeats) for a in archs]
            lines.append(f"| {fold} | {info['first_date']}..{info['last_date']} | {info['windows']} | "
                         f"{info['persistence_mae']:.2f} | " + " | ".join(cells) + " |")
    leak = leak_note(summary)
    if leak:
        lines += ["", leak]
    return "\n".join(lines) + "\n"


def _crps_ranking(archs: dict, split: str, repeats: int) -> list[str]:
    """comparison.md's ranking of quantile models by CRPS on one split (nothing unless every arch has one)."""
    scored = {arch: entry["splits"][split] for arch, entry in archs.items() if "crps" in entry["splits"][split]}
    if not scored or len(scored) != len(archs):
        return []
    names = list(next(iter(scored.values()))["coverage"])
    lines = ["Ranked by CRPS (from the quantile levels; lower is better; skill against the random-walk interval):", "",
             "| rank | arch | CRPS | CRPS skill | " + " | ".join(f"{n} coverage" for n in names) + " |",
             "|---:|---|---:|---:|" + "---:|" * len(names)]
    for rank, (arch, m) in enumerate(sorted(scored.items(), key=lambda item: item[1]["crps"]["mean"]), start=1):
        cover = " | ".join(f"{100 * m['coverage'][n]['mean']:.1f}%" for n in names)
        lines.append(f"| {rank} | {arch} | {_figure(m['crps'], 2, repeats)} | {_figure(m['crps_skill'], 3, repeats)} | "
                     f"{cover} |")
    return lines + [""]


SKILL_NOTE = ("skill = 1 - MAE / MAE of persistence (tomorrow = today); above 0 beats persistence. MASE: MAE over the "
              "training split's in-sample seasonal naive MAE.")


def _baseline_rows(info: dict) -> list[str]:
    """comparison.md's rows of the baselines on one scored split (persistence alone for pooled backtests)."""
    rows = []
    for name, b in info.get("baselines", {PERSISTENCE: info[PERSISTENCE]}).items():
        mape, mase = b.get("mape"), b.get("mase")
        rows.append(f"| {name} | 0 | | | | {b['mae']:.2f} | {b['rmse']:.2f} | {'' if mape is None else format(mape, '.3f')} | "
                    f"{'' if mase is None else format(mase, '.3f')} | {1 - b['mae'] / info[PERSISTENCE]['mae']:+.3f} |")
    return rows


def leak_note(summary: dict) -> str | None:
    """A paragraph on BRNN's future leak, when it was allowed in this comparison."""
    settings = summary["settings"]
    archs = summary["archs"]
    if not ("brnn" in archs and settings["windows"]["target_kind"] == "sequence"
            and settings["model"]["allow_future_leak"]):
        return None
    causal = [a for a in archs if a != "brnn"]
    lines = ["## Future leak", "",
             "brnn is trained with target kind `sequence` and the leak allowed: at step t its backward "
             "direction has already read x[t+1], the value it must predict."]
    for split in summary["splits"]:
        brnn = archs["brnn"]["splits"][split]["mae"]["mean"]
        if causal:
            best = min(causal, key=lambda a: archs[a]["splits"][split]["mae"]["mean"])
            other = archs[best]["splits"][split]["mae"]["mean"]
            if brnn < other:
                lines.append(f"On the {split} split its MAE is {brnn:.2f}, {other / brnn:.1f}x lower than the best "
                             f"causal arch ({best}, {other:.2f}) on the same windows. That gap is leakage, not skill.")
            else:
                lines.append(f"On the {split} split its MAE is {brnn:.2f}, not below the best causal arch "
                             f"({best}, {other:.2f}): with this training budget the leak did not pay off.")
    return "\n".join(lines)


def plot_comparison(folder: Path, shown: dict, summary: dict, split: str) -> None:
    """`compare_loss.png`, `compare_forecast.png` and `compare_mae.png`."""
    from keras_seq.evaluation import pyplot, save_figure
    from keras_seq.models.spec import loss_name

    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    backtest = summary["settings"]["compare"]["backtest"]

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for i, (arch, item) in enumerate(shown.items()):
        color = colors[i % len(colors)]
        history = item["history"]
        ax.plot(range(1, len(history["val_loss"]) + 1), history["val_loss"], color=color, label=f"{arch} validation")
        ax.plot(range(1, len(history["loss"]) + 1), history["loss"], color=color, linestyle="--", alpha=0.6,
                label=f"{arch} train")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    losses = [v for item in shown.values() for key in ("loss", "val_loss") for v in item["history"].get(key, ())]
    if losses and min(losses) > 0:  # a log-likelihood can be negative
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"{loss_name(summary['settings']['model'])} (normalized units)")
    ax.set_title("loss per epoch" + (" (last backtest fold)" if backtest else "") + ", first seed")
    ax.legend(fontsize=8, ncol=2)
    save_figure(plt, fig, folder / "compare_loss.png")

    first = next(iter(shown.values()))
    dates = first["drawn"][0]
    actual_dates, actual_values = first["actual"]
    fig, ax = plt.subplots(figsize=(11, 5))
    if len(dates):
        inside = (actual_dates >= dates.min()) & (actual_dates <= dates.max())
        ax.plot(actual_dates[inside], actual_values[inside], color="black", linewidth=1.4, label="actual")
    for i, (arch, item) in enumerate(shown.items()):
        ax.plot(*item["drawn"], linewidth=0.9, color=colors[i % len(colors)], label=arch)
    ax.set_ylabel(first["ylabel"])
    scope = f"{backtest} walk-forward folds" if backtest else f"{first['split']} split"
    ax.set_title(f"one-step-ahead forecasts, {scope}, first seed")
    ax.legend(fontsize=8)
    fig.autofmt_xdate()
    save_figure(plt, fig, folder / "compare_forecast.png")

    archs = summary["archs"]
    means = [archs[a]["splits"][split]["mae"]["mean"] for a in archs]
    stds = [archs[a]["splits"][split]["mae"]["std"] for a in archs]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.bar(list(archs), means, yerr=stds if summary["settings"]["compare"]["repeats"] > 1 else None, capsize=4,
           color=[colors[i % len(colors)] for i in range(len(archs))])
    baseline = summary["splits"][split][PERSISTENCE]["mae"]
    ax.axhline(baseline, color="black", linestyle="--", label=f"persistence {baseline:.2f}")
    ax.set_ylabel(f"MAE ({summary['settings']['data']['target']}'s units)")
    ax.set_title(f"MAE, {summary['splits'][split]['split'] if split == 'backtest' else split + ' split'}")
    ax.legend()
    save_figure(plt, fig, folder / "compare_mae.png")
