"""`keras-seq tune`: a hyperparameter search with Optuna, its study kept in storage that outlives the process.

A study searches a space of options (`Param`s: the arch, sizes, window,
learning rate, dropout, the scaling and head options) around a base fit.
Each trial trains one model with `runs.run.train_and_evaluate` and is scored
on the validation split only: its MASE (`val_mase`, the default: in the
target's units, so trials with other scalings, transforms, heads or
windows compare fairly) or its validation loss (`val_loss`, in normalized
units: only for spaces that leave those units alone). Optuna's pruner reads
that score after every epoch and stops trials that trail the others. The
test split is read once, by the best trial's refit, a normal run folder.

The study lives in `<out>/<study>/study.journal` (Optuna's
`JournalFileBackend`, the storage Optuna recommends for several processes
on one machine; SQLite is not) or in any SQLAlchemy URL (`storage`
sqlite:///study.db, postgresql://... for workers on many machines);
`workers` N runs N processes on it. A study stopped by Ctrl-C, a kill or
a crash resumes with the same command: interrupted trials are run again
with their parameters, finished ones are kept.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import socket
import warnings
from pathlib import Path

from keras_seq.config.options import values_of
from keras_seq.config.search import TuneSpec, check_space, trial_specs
from keras_seq.errors import KerasSeqError, RunInterrupted
from keras_seq.evaluation.metrics import get_metric
from keras_seq.present.plots import plot_history, plot_importances
from keras_seq.safety import write_file_atomically

JOURNAL_FILE = "study.journal"
TUNE_FILE = "tune.json"


class TrialRefused(KerasSeqError):
    """A trial's options cannot be trained (or its training failed): the trial fails, the study goes on."""


def setup_digest(base, spec: TuneSpec, data_sha256: str) -> str:
    """What a study's trials share: the rows, the base options, the space and the objective (`setup_record`)."""
    record = {"data": data_sha256, "options": {k: values_of(getattr(base, k)) for k in
                                               ("data", "windows", "model", "train")},
              "backend": base.backend, "space": [dataclasses.asdict(p) for p in spec.space],
              "objective": spec.objective, "pruner": spec.pruner}
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()


def setup_record(base, spec: TuneSpec, data_sha256: str) -> dict:
    """The setup as flat `name: value` text (a study keeps it beside its digest), so that a study refused for other
    options can say which differ."""
    record = {"the data's sha256": data_sha256, "backend": base.backend, "objective": spec.objective,
              "pruner": spec.pruner, "the search space": json.dumps([dataclasses.asdict(p) for p in spec.space],
                                                                    default=str)}
    for section in ("data", "windows", "model", "train"):
        record |= {f"{section}.{name}": json.dumps(value, default=str)
                   for name, value in values_of(getattr(base, section)).items()}
    return {key: str(value) for key, value in record.items()}


def setup_difference(started: dict | None, now: dict) -> str:
    """Which of a study's setup differ from `now`, in words (up to three), or "" where the study kept no record."""
    if not isinstance(started, dict):
        return ""
    keys = [key for key in dict.fromkeys([*now, *started]) if started.get(key) != now.get(key)]
    shown = [f"{key}: {str(started.get(key, 'absent'))[:60]} then, {str(now.get(key, 'absent'))[:60]} now"
             for key in keys[:3]]
    return " (" + "; ".join(shown) + (f"; and {len(keys) - 3} more" if len(keys) > 3 else "") + ")" if keys else ""


# === The study: storage, recovery, workers ===


def open_storage(spec: TuneSpec, folder: Path):
    """The study's storage: an SQLAlchemy URL as given (with a heartbeat, so a killed worker's trial is failed and
    retried), else the journal file in `folder` (its own file, never a link)."""
    import optuna

    if spec.storage:
        engine = {"connect_args": {"timeout": 60}} if spec.storage.startswith("sqlite") else {}
        try:
            with warnings.catch_warnings():  # the heartbeat is marked experimental: a notice on every start
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(spec.storage, engine_kwargs=engine, heartbeat_interval=10,
                                                  grace_period=60)
        except Exception as exc:  # a driver that is missing, a server that does not answer, a bad URL
            from keras_seq.errors import mask_credentials

            raise KerasSeqError(mask_credentials(f"`storage` {spec.storage}: cannot open it ({type(exc).__name__}: "
                                f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}).")) from None
    journal = folder / JOURNAL_FILE
    if journal.is_symlink() or (journal.exists() and not journal.is_file()):
        raise KerasSeqError(f"{journal} is not a plain file (a link or a folder): refusing to use it as a study journal.")
    from optuna.storages.journal import JournalFileBackend

    return optuna.storages.JournalStorage(JournalFileBackend(str(journal)))


def load_study(spec: TuneSpec, folder: Path, setup: tuple, seed: int, worker: int = 0):
    """Open the study's storage (`open_storage`) and create the study, or join it; refuse one that was started
    with other options or by another tool, and a storage whose records Optuna cannot read (a damaged or crafted
    journal), in one line."""
    try:
        return _load_study(spec, open_storage(spec, folder), setup, seed, worker)
    except KerasSeqError:
        raise
    except Exception as exc:  # noqa: BLE001 - Optuna's own errors (AssertionError, KeyError, ...) for a bad record
        from keras_seq.errors import mask_credentials

        raise KerasSeqError(mask_credentials(
            f"study '{spec.study}' cannot be read from its storage ({type(exc).__name__}: {str(exc)[:120]}): it was "
            "damaged, or written by something other than Optuna. Give another `study` or `out`.")) from None


def _load_study(spec: TuneSpec, storage, setup: tuple, seed: int, worker: int):
    import optuna

    digest, record = setup  # setup_digest's and setup_record's
    # Optuna logs each failed trial with its traceback; keras-seq's trials.csv and tune.json say why each failed.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    pruner = (optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2) if spec.pruner == "median"
              else optuna.pruners.NopPruner())
    try:  # read first: a study started with other options is refused before anything is written to it
        study = optuna.load_study(study_name=spec.study, storage=storage, pruner=pruner)
    except KeyError:
        study = optuna.create_study(study_name=spec.study, storage=storage, direction="minimize", pruner=pruner,
                                    load_if_exists=True)
    # Each worker, and each resume, its own stream of suggestions: a sampler seeded as before would repeat the
    # random start-up trials already run.
    known = len(study.get_trials(deepcopy=False))
    study.sampler = optuna.samplers.TPESampler(seed=seed + 7919 * worker + known)
    found = study.user_attrs.get("setup")
    if found is None and (known or study.direction != optuna.study.StudyDirection.MINIMIZE):
        raise KerasSeqError(
            f"study '{spec.study}' in this storage was not started by keras-seq tune (it has {known} trials and no "
            "record of keras-seq's options). Give another `study`, or another `storage`.")
    if found is None:
        study.set_user_attr("setup", digest)
        study.set_user_attr("setup_record", record)
        study.set_user_attr("objective", spec.objective)
    elif found != digest:
        raise KerasSeqError(
            f"study '{spec.study}' in this storage was started with other data, options or search space"
            f"{setup_difference(study.user_attrs.get('setup_record'), record)}; its trials would not compare with "
            "these. Give another `study`, or the options it was started with.")
    return study


def _finished(trial) -> bool:
    """Counts toward `trials`: complete, pruned, or failed for its own options (never for an interruption)."""
    from optuna.trial import TrialState

    return trial.state in (TrialState.COMPLETE, TrialState.PRUNED) or (
        trial.state == TrialState.FAIL and "error" in trial.user_attrs)


def recover(study) -> list[int]:
    """Queue again, with their parameters, the trials an interruption or a dead worker of this machine left
    unfinished (each once); return their numbers."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs["retry_of"] for t in trials if "retry_of" in t.user_attrs}
    again = []
    for trial in trials:
        if trial.state == TrialState.RUNNING and _dead_here(trial.user_attrs.get("worker")):
            study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)  # its process is gone
        elif not (trial.state == TrialState.FAIL and "error" not in trial.user_attrs):
            continue
        if trial.number not in retried:
            study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number}, skip_if_exists=False)
            again.append(trial.number)
    return again


def _dead_here(worker: str | None) -> bool:
    """Whether `worker` ("host:pid") is a process of this machine that no longer runs."""
    if not worker or worker.rpartition(":")[0] != socket.gethostname():
        return False
    try:
        os.kill(int(worker.rpartition(":")[2]), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, ValueError):
        return False
    return False


def quotas(study, trials: int, workers: int) -> list[int]:
    """Trials each worker runs so that the study ends with `trials` counted ones (running ones elsewhere included)."""
    from optuna.trial import TrialState

    done = study.get_trials(deepcopy=False)
    remaining = trials - sum(_finished(t) for t in done) - sum(t.state == TrialState.RUNNING for t in done)
    remaining = max(remaining, 0)
    return [q for q in (remaining // workers + (k < remaining % workers) for k in range(workers)) if q]


@dataclasses.dataclass
class Job:
    """What every worker of one tune needs: the rows, the base options, the search and where its study is."""

    frame: object  # pandas.DataFrame
    digest: str  # frame_sha256(frame)
    base: object  # runs.run.RunSpecs
    spec: TuneSpec
    folder: Path
    setup: str  # setup_digest(...)
    created: Path | None = None  # the first folder this tune made (the study folder or one above it)
    record: dict = dataclasses.field(default_factory=dict)  # setup_record(...)
    say_trials: bool = False  # print one line per finished trial: its score and the best so far


def run_worker(job: Job, quota: int, worker: int = 0) -> None:
    """Run `quota` trials of the study, then return; a signal ends the current trial as interrupted."""
    from keras_seq.jobs.stop import STOP

    study = load_study(job.spec, job.folder, (job.setup, job.record), job.base.train.seed, worker)

    def stop_on_signal(study, trial):
        if STOP.requested:
            study.stop()

    said = [trial_line(job)] if job.say_trials else []
    study.optimize(lambda trial: objective(job, trial), n_trials=quota, catch=(TrialRefused,),
                   callbacks=[stop_on_signal, *said], gc_after_trial=True)


def trial_line(job: Job):
    """An Optuna callback that prints one line per finished trial: its state and score, and the best so far."""
    from optuna.trial import TrialState

    def say(study, trial):
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        best = min(complete, key=lambda t: t.value) if complete else None
        if trial.state == TrialState.COMPLETE:
            what = f"{job.spec.objective} {trial.value:.4g}"
        elif trial.state == TrialState.PRUNED:
            what = f"pruned after epoch {len(trial.intermediate_values)}"
        else:
            what = f"{trial.state.name.lower()}: {str(trial.user_attrs.get('error', ''))[:120]}"
        shown = f"; best {best.value:.4g} (trial {best.number})" if best is not None else ""
        print(f"trial {trial.number}: {what}{shown}", flush=True)

    return say


def objective(job: Job, trial) -> float:
    """Train one trial's model and score it on the validation split; Optuna's pruner reads every epoch's score."""
    import optuna

    from keras_seq.runs.run import Run, run_windows, train_and_evaluate
    from keras_seq.training.tensorboard import tensorboard_for
    from keras_seq.training.loop import watching_epochs

    trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
    values = {param.name: param.suggest(trial) for param in job.spec.space}
    try:
        specs = trial_specs(job.base, values)
        raw = run_windows(job.frame, specs)[1] if job.spec.objective != "val_loss" else None

        def watch(epoch, logs, model):
            trial.report(_score(job.spec.objective, logs, model, raw, specs), epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned after epoch {epoch + 1}")

        with watching_epochs(watch), tensorboard_for(f"{job.spec.study}-trial{trial.number}"):
            fitted = train_and_evaluate(Run.of(specs, job.frame, job.digest),
                                        splits=("validation",) if raw is not None else (), verbose=0)
    except (RunInterrupted, optuna.TrialPruned):
        raise
    except Exception as exc:  # options no fit takes, a diverged loss, or a failure of this trial's model alone
        message = " ".join(str(exc).split()) if isinstance(exc, KerasSeqError) else f"{type(exc).__name__}: {exc}"
        trial.set_user_attr("error", message[:500])
        raise TrialRefused(message) from None
    if fitted.config["status"] != "complete":
        trial.set_user_attr("interrupted", True)
        raise RunInterrupted(f"trial {trial.number} was interrupted")
    trial.set_user_attr("epochs_run", fitted.config["result"]["epochs_run"])
    value = (fitted.reports["validation"].model[_metric_of(job.spec.objective)] if raw is not None
             else fitted.config["result"]["best_val_loss"])
    if value is None or value != value:
        trial.set_user_attr("error", f"its {job.spec.objective} is not a number")
        raise TrialRefused(f"trial {trial.number}: {job.spec.objective} is not a number")
    return float(value)


def _metric_of(objective_name: str) -> str:
    """The metric an objective `val_<name>` minimizes."""
    return objective_name.removeprefix("val_")


def _score(objective_name: str, logs: dict, model, raw, specs) -> float:
    """An epoch's validation score: the loss Keras computed, or the objective's metric of the raw forecasts."""
    if objective_name == "val_loss":
        return float(logs["val_loss"])
    from keras_seq.evaluation.report import evaluate_forecast

    value = evaluate_forecast(model, raw, "validation", season=specs.data.season)[0].model[_metric_of(objective_name)]
    return float("inf") if value is None or value != value else float(value)


# === A tune from start to end ===


def tune(data=None, windows=None, model=None, train=None, spec: TuneSpec = TuneSpec(), *, out="saved_models",
         backend: str | None = None, verbose: int | str = "auto"):
    """Search `spec.space` around a base fit; write the study's tables and plots, and refit the best trial.

    The base options are those of `fit` (DataSpec, WindowSpec, ModelSpec,
    TrainSpec; the defaults where None). Every trial trains with the base
    seed. Returns the summary also written to `<out>/<study>/tune.json`.

    Raises:
        KerasSeqError: bad options, a space no fit can take, a study started
            with other options, or missing Optuna; nothing is written then.
        RunInterrupted: Ctrl-C or SIGTERM; the study keeps every finished
            trial and resumes with the same call.
    """
    job = dataclasses.replace(prepare_job(data, windows, model, train, spec, out=out, backend=backend),
                              say_trials=bool(verbose))
    try:
        study = load_study(spec, job.folder, (job.setup, job.record), job.base.train.seed)
    except KerasSeqError:
        if job.created is not None:  # nothing is left of a study that could not start
            shutil.rmtree(job.created, ignore_errors=True)
        raise
    retried = recover(study)
    if retried and verbose:
        print(f"trials {', '.join(map(str, retried))} were cut short: running them again with their parameters")
    shares = quotas(study, spec.trials, spec.workers)
    from keras_seq.jobs.stop import STOP

    try:
        if shares and spec.workers == 1:
            run_worker(job, shares[0])
        elif shares:
            run_workers(job, shares)
    except RunInterrupted:
        raise RunInterrupted(_interrupted_line(job)) from None
    if STOP.requested:  # between two trials
        raise RunInterrupted(_interrupted_line(job))
    summary = summarize_study(study, job)
    if spec.refit and summary["best"] is not None:
        summary["refit"] = refit_best(job, summary, verbose)
    write_tune_json(job.folder / TUNE_FILE, summary)
    return summary


def write_tune_json(path: Path, summary: dict) -> None:
    text = json.dumps(summary, indent=2, default=str, allow_nan=False) + "\n"
    write_file_atomically(path, lambda stream: stream.write(text))


def _read_previous(path: Path) -> dict | None:
    """The refit record of an earlier tune.json of this study, if it reads as one."""
    from keras_seq.runs.folder import read_json

    if path.is_symlink() or not path.is_file():
        return None
    try:
        refit = read_json(path).get("refit")
    except KerasSeqError:
        return None
    return refit if isinstance(refit, dict) and isinstance(refit.get("run"), str) else None


def prepare_job(data, windows, model, train, spec: TuneSpec, *, out, backend) -> Job:
    """Check everything a trial will need, load the rows, and make the study folder (the only thing written)."""
    from keras_seq.backend import use_backend
    from keras_seq.data.sources import DataSpec, frame_sha256
    from keras_seq.data.windows import WindowSpec
    from keras_seq.backend import start_keras
    from keras_seq.runs.run import RunSpecs
    from keras_seq.models import ModelSpec
    from keras_seq.training.loop import TrainSpec

    require_optuna()
    base = RunSpecs(data or DataSpec(), windows or WindowSpec(), model or ModelSpec(), train or TrainSpec(),
                    use_backend(backend))
    base.check()
    if base.train.devices != 1:
        raise KerasSeqError("tune trains each trial on one device (give `workers` for parallel trials); drop `devices`.")
    check_space(base, spec)
    frame = base.data.load()
    digest = frame_sha256(frame)
    folder = Path(out) / spec.study
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise KerasSeqError(f"{folder} is not a folder (a link or a file): refusing to write a study there.")
    created = None if folder.exists() else folder
    while created is not None and not created.parent.exists():
        created = created.parent  # the first folder this tune makes: removed if the study cannot start
    folder.mkdir(parents=True, exist_ok=True)
    start_keras(1)
    return Job(frame, digest, base, spec, folder, setup_digest(base, spec, digest), created,
               record=setup_record(base, spec, digest))


def require_optuna():
    import importlib.util

    if importlib.util.find_spec("optuna") is None:
        raise KerasSeqError("keras-seq tune needs Optuna, which is not installed. Install it with: "
                            "pip install 'keras-seq[tune]'")


def summarize_study(study, job: Job) -> dict:
    """The study's table (trials.csv), plots (history.png, importance.png) and summary: best trial, counts."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = min(complete, key=lambda t: t.value) if complete else None
    table = study.trials_dataframe(attrs=("number", "state", "value", "datetime_start", "duration", "params",
                                          "user_attrs"))
    write_file_atomically(job.folder / "trials.csv", lambda stream: table.to_csv(stream, index=False))
    importances = parameter_importances(study, complete)
    objective = job.spec.objective
    plot_history(job.folder / "history.png", trials,
                 "loss" if objective == "val_loss" else get_metric(_metric_of(objective)).label)
    if importances:
        plot_importances(job.folder / "importance.png", importances, job.spec.objective)
    counts = {state.name.lower(): sum(t.state == state for t in trials) for state in TrialState}
    return {
        "study": job.spec.study, "objective": job.spec.objective, "pruner": job.spec.pruner,
        "storage": _shown_storage(job.spec.storage) if job.spec.storage else str(job.folder / JOURNAL_FILE),
        "trials_asked": job.spec.trials, "trials_counted": sum(_finished(t) for t in trials),
        "states": {k: v for k, v in counts.items() if v},
        "space": [p.describe() for p in job.spec.space],
        "best": None if best is None else {"number": best.number, "value": best.value, "params": best.params,
                                           "epochs_run": best.user_attrs.get("epochs_run")},
        "importance": importances,
        "base": {k: dataclasses.asdict(getattr(job.base, k)) for k in ("data", "windows", "model", "train")},
    }


def _shown_storage(url: str) -> str:
    """A storage URL as tune.json shows it: its password, if any, masked."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy reads (it was refused when opened): shown without what follows '@'
        return url.split("@")[-1]


def parameter_importances(study, complete: list) -> dict:
    """Optuna's PED-ANOVA importances over the complete trials: how much each option matters for reaching the
    best tenth of scores (no scikit-learn, which fANOVA needs). Empty with fewer than four complete trials of
    more than one score, where there is nothing to rank."""
    import warnings

    import optuna

    if len(complete) < 4 or len({t.value for t in complete}) < 2:
        return {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = optuna.importance.get_param_importances(
                study, evaluator=optuna.importance.PedAnovaImportanceEvaluator())
    except (RuntimeError, ValueError, ZeroDivisionError):  # every param the same in every trial
        return {}
    return {name: float(value) for name, value in found.items()}


def _kept_refit(folder: Path, run: str) -> bool:
    """Whether `run` (from tune.json) names a run folder of `folder`'s best/ that is there."""
    from keras_seq.safety import is_folder_name

    parts = Path(run).parts
    return (len(parts) == 2 and parts[0] == "best" and is_folder_name(parts[1].replace(".", "_"))
            and (folder / run).is_dir() and not (folder / run).is_symlink())


def decoded_params(space: tuple, params: dict) -> dict:
    """A trial's Optuna params as option values (a list choice is stored as its JSON text)."""
    params_of = {p.name: p for p in space}
    return {name: params_of[name].decode(value) for name, value in params.items()}


def refit_best(job: Job, summary: dict, verbose) -> dict:
    """The best trial trained again as a normal run folder under `<study>/best/`, evaluated on the test split once.

    A refit already written for the same trial is kept.
    """
    from keras_seq.runs.run import Run, train_into_folder
    from keras_seq.runs.folder import run_name

    best = summary["best"]
    previous = _read_previous(job.folder / TUNE_FILE)
    if previous and previous.get("trial") == best["number"] and _kept_refit(job.folder, previous["run"]):
        return previous
    specs = trial_specs(job.base, decoded_params(job.spec.space, best["params"]))
    if (job.folder / "best").is_symlink():
        raise KerasSeqError(f"{job.folder / 'best'} is a link: refusing to write the refit through it.")
    run = Run.of(specs, job.frame, job.digest)
    result = train_into_folder(run, job.folder / "best" / run_name(specs.model.arch, run.started), verbose=verbose)
    if verbose:
        print(result.report.table())
    return {"trial": best["number"], "run": str(result.path.relative_to(job.folder)),
            "test": {key: result.report.model.get(key) for key in ("mae", "rmse", "mase")}}


def run_workers(job: Job, shares: list[int]) -> None:
    """One process per share, each on the same study (`jobs.processes`), each in its own session: a Ctrl-C at the
    terminal reaches them through this process, once, and each ends its trial as interrupted."""
    from keras_seq.jobs import processes
    from keras_seq.training.tensorboard import tensorboard_folder

    board = tensorboard_folder()
    workers = [processes.start(work_share, (job, share, index, board and str(board.resolve())), job.base.backend,
                               own_session=True, watch_parent=True)
               for index, share in enumerate(shares)]
    failed = next(filter(None, processes.wait(workers)), None)
    if failed:
        raise KerasSeqError(f"a tune worker failed: {failed}")


def work_share(job: Job, quota: int, worker: int, board: str | None = None) -> None:
    """A worker process's share of the study, run by `jobs.processes` on the study's backend (its trials' epochs
    written under `board` for TensorBoard, if given)."""
    from keras_seq.backend import start_keras
    from keras_seq.training.tensorboard import tensorboard

    start_keras(1)
    with tensorboard(board):
        run_worker(job, quota, worker)


def _interrupted_line(job: Job) -> str:
    return (f"interrupted; the study in {job.folder} keeps every finished trial, and the ones cut short run again "
            "when you give the same command.")
