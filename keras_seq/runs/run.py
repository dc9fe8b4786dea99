"""A run: its specs, and the engine every workflow shares to build its windows, train its model, evaluate it
and write its run folder (`fit`, `compare`, `tune` and `run` call it; none of them imports another)."""

from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path

from keras_seq.backend import seeded_build, set_random_seed, tensorflow_left_unloaded
from keras_seq.config.options import values_of
from keras_seq.data.reading import label_of
from keras_seq.data.sources import DataSpec
from keras_seq.data.windows import WindowSpec
from keras_seq.errors import KerasSeqError, RunInterrupted
from keras_seq.models.spec import ModelSpec, check_model_for_windows
from keras_seq.models.transforms import get_transform
from keras_seq.runs.folder import (CHECKPOINT_FILE, CONFIG_FILE, MODEL_FILE, OPTIMIZER_FILE, ModelIO, quantiles_of,
                                   read_json, read_run_config, scaling_from_config, series_vocabulary_of,
                                   specs_from_config, staged_folder, write_history, write_json, write_manifest)


@dataclasses.dataclass
class RunResult:
    """Where a run or evaluation was written, and its test report."""

    path: Path
    report: object  # keras_seq.evaluation.report.Report
    history: dict | None = None


@dataclasses.dataclass(frozen=True)
class RunSpecs:
    """Everything one fit is asked to do: the options of `config.json`'s data, windows, model and train sections."""

    data: DataSpec
    windows: WindowSpec
    model: ModelSpec
    train: object  # keras_seq.training.loop.TrainSpec
    backend: str

    @property
    def target_index(self) -> int | None:
        """The target's column among the model's inputs (None where it is not one)."""
        columns = list(self.data.feature_columns)
        return columns.index(self.data.target) if self.data.target in columns else None

    @property
    def input_columns(self) -> tuple[str, ...]:
        """The model's input columns in order: the data's feature columns, then the future features' leads."""
        return self.data.input_columns(self.windows.horizon)

    @property
    def unscaled_columns(self) -> tuple[int, ...]:
        """The inputs on a fixed scale already (the calendar's sines and cosines), which the scaler passes through."""
        from keras_seq.data.calendar import calendar_columns

        columns = list(self.data.feature_columns)
        return tuple(columns.index(c) for c in calendar_columns(self.data.calendar))

    def check(self) -> None:
        """Refuse a model that cannot be trained on these windows and columns, before any data is read."""
        check_model_for_windows(self.model, self.windows.target_kind, self.windows.supervision,
                                self.data.feature_columns, self.data.target)

    def data_record(self, frame, digest: str) -> dict:
        """The data options and what was loaded: rows, first and last date, sha256 (`frame_sha256`)."""
        return {**dataclasses.asdict(self.data), "rows": len(frame), "first_date": label_of(frame.index.min()),
                "last_date": label_of(frame.index.max()), "sha256": digest}

    def options_config(self, status: str, started: datetime.datetime, frame, digest: str) -> dict:
        """What the run was asked to do: the start of its `config.json`, and all of it while it trains."""
        return {
            "status": status,
            "created": started.isoformat(timespec="seconds"),
            "data": self.data_record(frame, digest),
            "windows": values_of(self.windows),
            "model": values_of(self.model),
            "train": values_of(self.train),
            "backend": self.backend,
        }


@dataclasses.dataclass(frozen=True)
class Run:
    """One run: what it is asked to do (`specs`), the rows it reads, their sha256 (`data.sources.frame_sha256`:
    of the whole data where a backtest fold reads part of it) and when it started. Its windows, model, training,
    evaluation and folder are made from these once, by `train_and_evaluate` and `train_into_folder`."""

    specs: RunSpecs
    frame: object  # pandas.DataFrame
    digest: str
    started: datetime.datetime
    start: object = None  # runs.lineage.Start: the trained run an update starts from (None: a new model)

    @classmethod
    def of(cls, specs: RunSpecs, frame, digest: str | None = None, started: datetime.datetime | None = None,
           start=None) -> Run:
        """A run starting now (or at `started`) on `frame`, its digest computed unless given."""
        from keras_seq.data.sources import frame_sha256

        return cls(specs, frame, digest or frame_sha256(frame),
                   started or datetime.datetime.now(datetime.timezone.utc), start)

    def options_config(self, status: str) -> dict:
        """The start of the run's `config.json` (all of it while it trains)."""
        config = self.specs.options_config(status, self.started, self.frame, self.digest)
        return config if self.start is None else {**config, **self.start.config_entries()}


def check_positive_target(frame, specs: RunSpecs) -> None:
    """Refuse a transform of logarithms (`logdiff`), or a scaler that divides by the target (`es`), on a target
    that is not positive everywhere (one line)."""
    from keras_seq.models.scalers import get_scaler

    log, divided = get_transform(specs.model.transform).positive, get_scaler(specs.model.scaler).positive
    values = frame[specs.data.target]
    if (log or divided) and (values <= 0).any():
        day = values.index[int((values <= 0).to_numpy().argmax())]
        what, fix = ((f"transform {specs.model.transform!r} takes the log of", "log-changes need positive values). "
                      "Use `transform` diff or none.") if log else
                     (f"arch {specs.model.arch!r} divides by", "its multiplicative smoothing needs positive values). "
                      "Shift the series above 0, or choose another arch."))
        raise KerasSeqError(f"{what} '{specs.data.target}', but it is {values[day]:g} on {label_of(day)} ({fix}")


def check_only_manifest_files(run_dir: Path) -> None:
    """Refuse to replace a run folder that holds a file its manifest does not list (someone else's work)."""
    from keras_seq.runs.folder import MANIFEST_FILE

    listed = set(read_json(run_dir / MANIFEST_FILE)["sha256"])
    for path in sorted(run_dir.rglob("*")):
        name = path.relative_to(run_dir).as_posix()
        if name != MANIFEST_FILE and (path.is_symlink() or path.is_file()) and name not in listed:
            raise KerasSeqError(
                f"{run_dir} holds {name[:80]!r}, which its {MANIFEST_FILE} does not list: resuming replaces the folder "
                "and would lose it. Move it out of the folder, then resume."
            )


def check_checkpoint(state: dict, config: dict, train, run_dir: Path) -> None:
    """Refuse a checkpoint that does not belong to this config: epochs, history and best epoch must agree.

    (Weight and optimizer shapes are checked against the built model when they are restored.)
    """
    done = state.get("epochs_done")
    history = state.get("history")
    result = config.get("result") if isinstance(config.get("result"), dict) else {}
    problem = None
    if not isinstance(done, int) or isinstance(done, bool) or not 1 <= done <= train.epochs:
        problem = f"it claims {done!r} epochs done, but the run trains {train.epochs}"
    elif not isinstance(history, dict) or not {"loss", "val_loss"} <= set(history):
        problem = "it has no loss history"
    elif any(not isinstance(v, list) or len(v) != done for v in history.values()):
        problem = f"its history does not hold one value per epoch for its {done} epochs"
    elif not isinstance(state.get("best_epoch"), int) or not 0 <= state["best_epoch"] < done:
        problem = f"its best epoch {state.get('best_epoch')!r} is not one of its {done} epochs"
    elif config.get("status") == "interrupted" and result.get("epochs_run") != done:
        problem = f"it holds {done} epochs but {CONFIG_FILE} says {result.get('epochs_run')!r} ran"
    if problem:
        raise KerasSeqError(
            f"the checkpoint in {run_dir} does not match its {CONFIG_FILE}: {problem}. Refusing to resume; "
            "start the run again with `keras-seq fit`."
        )


def train_into_folder(run: Run, folder: Path, *, verbose, resume=None, replace: bool = False) -> RunResult:
    """Train in a staged folder that holds the options and each epoch's checkpoint; publish it as `folder` when done.

    With `replace`, the run replaces `folder` (an interrupted run it continues); otherwise a folder of that name
    is never touched, and the run takes the next free name (`-2`, ...). In a
    multi-process job only process 0 does; the others train alongside it and
    write nothing.
    """
    from keras_seq.training.distributed import process_writes

    if not process_writes():
        fitted = train_and_evaluate(run, splits=(), verbose=0, resume=resume)
        if fitted.config["status"] != "complete":
            import jax

            raise RunInterrupted(f"process {jax.process_index()} of {jax.process_count()}: the job stopped on a "
                                 "signal after a whole epoch; process 0 keeps the run folder and says how to resume.")
        return RunResult(None, None, fitted.history)
    from keras_seq.training.loop import keep_optimizer_state
    from keras_seq.training.tensorboard import tensorboard_for

    with staged_folder(folder.parent, folder.name, replace=replace) as stage:
        write_json(stage.path / CONFIG_FILE, run.options_config("running"))
        with tensorboard_for(folder.name):
            fitted = train_and_evaluate(run, verbose=verbose, checkpoint=stage.path / CHECKPOINT_FILE, resume=resume)
        if fitted.config["status"] == "complete":
            if (stage.path / CHECKPOINT_FILE).is_file():
                keep_optimizer_state(stage.path / CHECKPOINT_FILE, stage.path / OPTIMIZER_FILE)
            (stage.path / CHECKPOINT_FILE).unlink(missing_ok=True)
        write_run(stage.path, fitted)
    if fitted.config["status"] != "complete":
        done, total = fitted.config["result"]["epochs_run"], run.specs.train.epochs
        hint = (f"Resume with: keras-seq fit --resume {stage.final}" if done
                else "No epoch finished, so there is nothing to resume: run `keras-seq fit` again.")
        raise RunInterrupted(
            f"interrupted after epoch {done} of {total}; the best weights so far are in {stage.final} "
            f"(marked interrupted in {CONFIG_FILE}). {hint}"
        )
    return RunResult(stage.final, fitted.reports[scored_split(fitted.reports)], fitted.history)


def scored_split(reports: dict) -> str:
    """The split a run's result and metrics.json report: the test split, or the validation split of a run fitted
    on every row (no test rows)."""
    return "test" if "test" in reports else next(iter(reports))


@dataclasses.dataclass
class Fitted:
    """A trained model, its history and reports, and everything its run folder records."""

    model: object  # keras.Model
    history: dict
    reports: dict  # split -> evaluation.Report
    predictions: dict  # split -> raw forecasts, shaped like raw.targets(split)
    raw: object  # data.windows.Windows, raw values, unshuffled
    config: dict
    seconds: float  # wall time of training alone
    started: datetime.datetime
    specs: RunSpecs | None = None  # the run's options
    quantiles: dict = dataclasses.field(default_factory=dict)  # split -> a quantile model's (n, horizon, levels), or None


def train_and_evaluate(run: Run, *, splits: tuple[str, ...] = ("test",), verbose: str | int = "auto",
                       checkpoint: Path | None = None, resume: dict | None = None) -> Fitted:
    """Window the run's rows, build and train its model, and evaluate it on `splits`.

    Keras must already be imported with `run.specs.backend`. Nothing is
    written but `checkpoint` (see `train_model`). If Ctrl-C stops training,
    nothing is evaluated and the config's `status` is `interrupted`.
    """
    from keras_seq.evaluation.conformal import calibrate
    from keras_seq.training.loop import versions

    specs = run.specs
    check_positive_target(run.frame, specs)
    training, raw = run_windows(run.frame, specs, run.start)
    _warn_few_test_windows(raw, splits)
    net, vocabulary, history, seconds = _built_and_trained(specs, training, verbose, checkpoint, resume, run.start)
    interrupted = bool(history.pop("interrupted", False))
    calibration = calibrate(net, raw) if specs.model.conformal and not interrupted else None
    reports, predictions, quantiles = _evaluate_splits(net, raw, specs, () if interrupted else splits, calibration)
    if calibration is not None and specs.model.conformal_rate and reports:
        _adapt_offsets(net, raw, specs.model.conformal_rate, reports, quantiles, calibration)
    if run.start is not None and run.start.parent_dir is not None:
        _score_parent(run.start, raw, specs, reports)
    config = {
        **run.options_config("interrupted" if interrupted else "complete"),
        "split_dates": raw.split_dates(),
        "scaling": training.scaling.to_dict(),
        "parameters": int(net.count_params()),
        **({"series_vocabulary": [str(name) for name in vocabulary]} if vocabulary is not None else {}),
        **({"conformal": calibration} if calibration is not None else {}),
        "result": _training_result(history, seconds),
    }
    return Fitted(net, history, reports, predictions, raw, {**config, "versions": versions()}, seconds, run.started,
                  run.specs, quantiles)


FEW_TEST_WINDOWS = 30  # fewer, and a test split's MAE moves by a few percent with the dates it happens to hold


def _warn_few_test_windows(raw, splits: tuple[str, ...]) -> None:
    count = raw.count("test") if "test" in splits else 0
    if 0 < count < FEW_TEST_WINDOWS:
        import warnings

        from keras_seq.errors import DataWarning

        warnings.warn(f"the test split holds only {count} window{'s' * (count > 1)}: its figures, and a model's win "
                      f"or loss against a baseline, can turn on a few dates. Give more rows, a larger test fraction "
                      "of `splits`, or score several folds with `compare --backtest`.", DataWarning, stacklevel=3)


def _built_and_trained(specs: RunSpecs, training, verbose, checkpoint, resume, start=None):
    """The run's model built and trained (data-parallel where `train.devices` asks), its vocabulary, history and
    training seconds. A data-parallel model comes back as a copy on this process's default device. An update
    (`start`) begins from its parent's weights and optimizer state, unless a checkpoint (`resume`) brings them."""
    import time

    from keras_seq.training.distributed import data_parallel
    from keras_seq.training.loop import train_model

    with data_parallel(specs.train.devices, specs.train.batch_size) as parallel:
        net, vocabulary = _run_model(specs, training, start)
        if start is not None and resume is None:
            resume = _warm_start(net, specs, training, start)
        clock = time.perf_counter()
        history = train_model(net, training, specs.train, verbose=verbose, checkpoint=checkpoint, resume=resume)
        seconds = time.perf_counter() - clock
    if parallel is not None:  # evaluated, calibrated and saved like any model: its weights in a local copy
        weights = net.get_weights()
        net, _ = _run_model(specs, training, start)
        net.set_weights(weights)
    return net, vocabulary, history, seconds


def _evaluate_splits(net, raw, specs: RunSpecs, splits, calibration: dict | None):
    """Each split's report, point forecasts and quantiles (None for a point model) of a trained model."""
    from keras_seq.evaluation.report import evaluate_forecast, losing_note

    reports, predictions, quantiles = {}, {}, {}
    if "test" in splits and not raw.count("test") and raw.count("validation"):  # fitted on every row
        splits = tuple(dict.fromkeys(["validation" if s == "test" else s for s in splits]))
    for split in splits:
        reports[split], predictions[split], quantiles[split] = evaluate_forecast(net, raw, split, name=specs.model.arch,
                                                                                 season=specs.data.season)
        reports[split].note = losing_note(reports[split], specs.model, specs.windows.supervision,
                                          window=specs.windows.window)
        if calibration is not None:
            reports[split].intervals["calibration"] = calibration_summary(calibration)
    return reports, predictions, quantiles


def _adapt_offsets(net, raw, rate: float, reports: dict, quantiles: dict, calibration: dict) -> None:
    """Track the conformal offsets through the scored split's actual values (`evaluation.adaptive`): its report
    scores the tracked intervals (beside split conformal's coverage), and the model keeps the offsets after the
    last actual value, where its next forecasts begin."""
    from keras_seq.evaluation.adaptive import adaptive_forecast
    from keras_seq.evaluation.intervals import score_quantiles

    split = scored_split(reports)
    report = reports[split]
    forecast, offsets, _ = adaptive_forecast(net, raw, split, rate)
    levels = list(net.get_layer("conformal").levels)
    fixed = {name: figures["coverage"] for name, figures in report.intervals["model"]["intervals"].items()}
    report.intervals = {**score_quantiles(raw, split, forecast, levels), "calibration": report.intervals["calibration"],
                        "adaptive": {"rate": rate, "split": split, "split_conformal_coverage": fixed}}
    quantiles[split] = forecast
    net.get_layer("conformal").offsets.assign(offsets.astype("float32"))
    dates = raw.dates[raw.target_positions(split).ravel()]
    calibration["adaptive"] = {"rate": rate, "split": split, "windows": int(len(forecast)),
                               "through": label_of(dates.max()), "offsets": offsets.tolist()}


def calibration_summary(calibration: dict) -> dict:
    """What a report says of its conformal calibration (the config's record without the offsets)."""
    return {key: calibration.get(key) for key in ("split", "around", "windows", "first_date", "last_date")}


def _run_model(specs: RunSpecs, training, start=None):
    """The untrained model of a run, seeded, its statistics stored; and the series it knows (None: windows alone)."""
    from keras_seq.models.builders import build_forecaster
    from keras_seq.models.scalers import get_scaler

    vocabulary = run_vocabulary(training, specs, start)
    with seeded_build(specs.train.seed):  # weights depend on nothing drawn before, nor by other threads
        net = build_forecaster(specs.model, specs.windows, len(specs.input_columns), scaling=training.scaling,
                               target_index=specs.target_index, unscaled=specs.unscaled_columns,
                               masked=specs.data.missing == "mask",
                               series_count=len(vocabulary or ()))
    get_scaler(specs.model.scaler).fit_statistics(net, training)
    return net, vocabulary


def run_windows(frame, specs: RunSpecs, start=None):
    """The training windows of a run (raw, shuffled by its seed) and the ones it is evaluated on (raw, in order);
    of a model that reads the series, each window with its series' index. An update (`start`) keeps its parent's
    scaling statistics unless it fits them again."""
    from keras_seq.data.windows import make_windows, with_series_index

    data = specs.data
    # Before the windows are cut: a tf.data pipeline a caller builds from them reads the global seed too.
    set_random_seed(specs.train.seed)
    training = make_windows(frame, target=data.target, features=data.feature_columns, series_column=data.panel_column,
                            future_features=data.future_features, batch_size=specs.train.batch_size,
                            seed=specs.train.seed, scaling=start.scaling if start is not None else None,
                            **dataclasses.asdict(specs.windows))
    vocabulary = run_vocabulary(training, specs, start)
    if start is not None and vocabulary is not None and len(vocabulary) > len(start.known or ()):
        _warn_new_series(vocabulary[len(start.known or ()):], specs)
    raw = scored_windows(frame, data, specs.windows, training.scaling, vocabulary,
                         batch_size=max(specs.train.batch_size, 256))
    return with_series_index(training, vocabulary, data.series_name), raw


def run_vocabulary(training, specs: RunSpecs, start=None) -> list | None:
    """The series a run's model knows (None: it reads windows alone): those with a training window; an update's
    parent's first, in their order, then its new ones."""
    from keras_seq.data.windows import series_vocabulary

    if not specs.model.reads_series:
        return None
    trained = series_vocabulary(training, specs.data.series_name)
    return trained if start is None else start.vocabulary(trained)


def _warn_new_series(names: list, specs: RunSpecs) -> None:
    """Say which series an update's parent never saw, and how the child takes them on."""
    import warnings

    from keras_seq.errors import DataWarning
    from keras_seq.models.scalers import get_scaler

    how = []
    if get_scaler(specs.model.scaler).takes_series:
        how.append("their scaling statistics are fitted on their own training rows (the known series keep theirs)")
    if specs.model.series_embedding:
        how.append("their embedding rows start untrained and learn in this update")
    shown = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
    warnings.warn(f"{len(names)} series the parent never trained on ({shown}): {'; '.join(how) or 'added'}.",
                  DataWarning, stacklevel=3)


def _warm_start(net, specs: RunSpecs, training, start) -> dict | None:
    """Put an update's parent weights into `net` (a per-series table grown for new series keeps its new rows as
    built: their statistics fitted, their embeddings untrained); fit the scaling statistics again where asked. The
    parent's optimizer state, as `train_model(resume=...)` takes it (None where the parent kept none)."""
    from keras_seq.models.scalers import get_scaler
    from keras_seq.training.loop import fitted_values

    values = fitted_values(net.weights, start.weights, grow=True)
    if isinstance(values, int):
        raise KerasSeqError(f"the parent run's weights do not fit the model its options build (weight #{values} "
                            "differs): its model.keras was not written by this keras-seq. Fit a new model instead.")
    net.set_weights(values)
    if start.scaling is None:
        get_scaler(specs.model.scaler).fit_statistics(net, training)
    if start.optimizer is None:
        return None
    return {"warm": True, "epochs_done": 0, "history": {}, "best": None, "best_epoch": 0, "wait": 0,
            "weights": None, "best_weights": None, "optimizer": start.optimizer}


def _score_parent(start, raw, specs: RunSpecs, reports: dict) -> None:
    """Score an update's parent model on the child's rows of each report (the series it never saw as unknown)."""
    from keras_seq.data.windows import with_series_index
    from keras_seq.evaluation.report import evaluate_forecast

    with tensorflow_left_unloaded():
        parent = SavedRun.read(start.parent_dir).load_model()  # its manifest checked again: it may have changed
    windows = with_series_index(raw, list(start.known) if start.known is not None else None, specs.data.series_name)
    for split, report in reports.items():
        scored, _, _ = evaluate_forecast(parent, windows, split, name="parent", season=report.season)
        report.others[f"parent {start.parent_dir.name}"] = scored.model


@dataclasses.dataclass(frozen=True)
class SavedRun:
    """A run folder read back (its manifest checked): what `evaluate` and `export` score and export a model by.

    `data`, `windows` and `model` are its options, each checked as a fit
    checks them; `scaling` the training split's statistics; `vocabulary`
    the series its model knows (None: it reads windows alone).
    """

    path: Path
    config: dict
    data: DataSpec
    windows: WindowSpec
    model: ModelSpec
    scaling: object
    vocabulary: list | None

    @classmethod
    def read(cls, run_dir: Path) -> SavedRun:
        """Raises `KerasSeqError` for a folder that is not a complete, unchanged run folder of this keras-seq."""
        config = read_run_config(run_dir)
        data, windows, model = specs_from_config(config, run_dir, ("data", "windows", "model"))
        return cls(Path(run_dir), config, data, windows, model, scaling_from_config(config, run_dir),
                   series_vocabulary_of(config, Path(run_dir) / CONFIG_FILE))

    def scored_windows(self, frame, data: DataSpec | None = None, *, every_row: bool = False, batch_size: int = 256):
        """The windows of `frame` (read as `data`, by default the run's) it is scored on: `scored_windows`."""
        return scored_windows(frame, data or self.data, self.windows, self.scaling, self.vocabulary,
                              every_row=every_row, batch_size=batch_size)

    def load_model(self):
        from keras_seq.models.builders import load_model

        return load_model(self.path / MODEL_FILE)

    @property
    def io(self) -> ModelIO:
        """What its model reads and returns, from the options already read."""
        return ModelIO.of_specs(self.data, self.windows, self.vocabulary,
                                quantiles_of(self.config.get("model"), self.path / CONFIG_FILE))


def scored_windows(frame, data: DataSpec, windows: WindowSpec, scaling, vocabulary=None, *, every_row: bool = False,
                   batch_size: int = 256):
    """The raw windows a run is scored on, however it was trained: each read at its last step, in order, with the
    training split's `scaling`, and each with its series' index where the model knows series (`vocabulary`).
    `every_row`: every window of `frame` is a test window (another source or range than the run's)."""
    from keras_seq.data.windows import make_windows, with_series_index

    options = dataclasses.asdict(windows) | {"supervision": "last"}
    if every_row:
        options.update(splits=(0.0, 0.0, 1.0), split_dates=None, split_steps=None)
    raw = make_windows(frame, target=data.target, features=data.feature_columns, series_column=data.panel_column,
                       future_features=data.future_features, batch_size=batch_size, shuffle=False, scaling=scaling,
                       **options)
    return with_series_index(raw, vocabulary, data.series_name)


def _training_result(history: dict, seconds: float) -> dict:
    val_loss = history.get("val_loss", [])
    return {
        "epochs_run": len(val_loss),
        "best_epoch": int(min(range(len(val_loss)), key=val_loss.__getitem__)) + 1 if val_loss else None,
        "best_val_loss": min(val_loss) if val_loss else None,
        "train_seconds": round(seconds, 3),
    }


def write_run(folder: Path, fitted: Fitted, plots: bool = True) -> None:
    """Write a run folder's files for `fitted` into `folder` (which exists)."""
    from keras_seq.present.plots import plot_calibration, plot_forecast, plot_loss, plot_series_skill
    arch = fitted.specs.model.arch
    with tensorflow_left_unloaded():
        fitted.model.save(folder / MODEL_FILE)
    write_json(folder / CONFIG_FILE, fitted.config)
    write_history(folder / "history.csv", fitted.history)
    if not fitted.reports:  # interrupted: the best weights so far, no evaluation
        write_manifest(folder)
        return
    split = scored_split(fitted.reports)
    write_json(folder / "metrics.json", fitted.reports[split].to_dict())
    if plots:
        plot_loss(fitted.history, folder / "loss.png", title=f"{arch}: loss", loss_name=fitted.specs.model.loss_name)
        plot_forecast(fitted.raw, split, fitted.predictions[split], folder / "forecast.png", name=arch,
                      report=fitted.reports[split], quantiles=fitted.quantiles.get(split))
        if fitted.reports[split].intervals:
            plot_calibration(fitted.reports[split], folder / "calibration.png")
        if fitted.reports[split].per_series:
            plot_series_skill(fitted.reports[split], folder / "series_skill.png")
    write_manifest(folder)
