"""The `fit` verb: fit a model into a run folder, or resume one (the format is `keras_seq.runs.folder`'s).

A run folder `<out>/<arch>-<UTC timestamp>/` holds:
- `model.keras`: the model (raw values in, raw values out);
- `config.json`: every option, the data source and range, the split dates,
  the scaling statistics and the package versions;
- `history.csv`, `loss.png`: loss per epoch;
- `metrics.json`, `forecast.png`: test metrics of the model and of the
  baselines, in the target's units;
- `optimizer.npz`: Adam's state after the last epoch, where `keras-seq update`
  goes on from;
- `manifest.json`: the sha256 of every file above, checked before the run
  folder is loaded again (files added later, such as `export/`, are not in it).

It is written under a temporary name (`.<name>.XXXX.partial`) and renamed
when complete. While `fit` trains, that folder holds `config.json` (status
`running`) and `checkpoint.npz`, the training state after the last completed
epoch, replaced atomically each epoch: a run killed outright can be resumed
from it with `keras-seq fit --resume`. Ctrl-C stops training after the current
batch and publishes the folder with status `interrupted`, the best weights so
far and the checkpoint; the loaders refuse any folder whose status is not
`complete`.
"""

from __future__ import annotations

import datetime
import shutil
from pathlib import Path

from keras_seq.backend import start_keras, use_backend
from keras_seq.data.sources import DataSpec
from keras_seq.data.windows import WindowSpec
from keras_seq.errors import KerasSeqError
from keras_seq.models.spec import ModelSpec
from keras_seq.runs.lineage import Start
from keras_seq.runs.folder import CHECKPOINT_FILE, CONFIG_FILE, check_manifest, read_json, run_name, specs_from_config
from keras_seq.runs.run import (Run, RunResult, RunSpecs, check_checkpoint, check_only_manifest_files,
                                train_into_folder)


def fit_run(
    data: DataSpec = DataSpec(),
    windows: WindowSpec = WindowSpec(),
    model: ModelSpec = ModelSpec(),
    train=None,
    *,
    out: str | Path = "saved_models",
    backend: str | None = None,
    verbose: str | int = "auto",
    cluster=None,
) -> RunResult:
    """Load data, window it, build, train and evaluate a model; write a run folder.

    Args:
        data: DataSpec. The series and its columns. Defaults to DJI Close.
        windows: WindowSpec. Window, horizon, target kind and splits.
        model: ModelSpec. Arch and size. Defaults to a 2-layer LSTM of 64 units.
        train: TrainSpec or None. Epochs, batch size, learning rate, seed,
            patience. Defaults to `TrainSpec()`.
        out: path. Folder that receives the run folder. Defaults to
            `"saved_models"`.
        backend: str or None. Keras backend; must be chosen before Keras is
            imported. Defaults to `$KERAS_BACKEND`, else jax.
        verbose: "auto", 0, 1 or 2. Keras's progress output while training.
        cluster: `distributed.Cluster` or None. The multi-process job this
            process joins (with `train.devices`); None: the one in the
            `KERAS_DISTRIBUTION_*` environment variables, if any. Only
            process 0 writes; the others return a `RunResult` whose path
            and report are None.

    Returns:
        A `RunResult` with the run folder's path and the test report.

    Raises:
        KerasSeqError: bad data or options; nothing is written.
    """
    backend = use_backend(backend)
    from keras_seq.training.loop import TrainSpec

    specs = RunSpecs(data, windows, model, train or TrainSpec(), backend)
    specs.check()
    frame = data.load()
    from keras_seq.training.distributed import Cluster

    start_keras(specs.train.devices, cluster or Cluster.from_environment())
    run = Run.of(specs, frame)
    return train_into_folder(run, Path(out) / run_name(model.arch, run.started), verbose=verbose)


def resume_run(run_dir: str | Path, *, verbose: str | int = "auto", cluster=None) -> RunResult:
    """Continue an interrupted or killed `fit` from its last completed epoch.

    `run_dir` is a folder that Ctrl-C left with status `interrupted`, or the
    `.<name>.XXXX.partial` folder of a run killed outright. Training goes on
    with the run's own options, data split, scaling, weights, optimizer state
    and best epoch, and the same batches in the same order, so it ends where
    the uninterrupted run would have. The finished run
    replaces `run_dir` under the run's name.

    Raises:
        KerasSeqError: `run_dir` is not an unfinished run, has no checkpoint,
            or its data changed since it started.
    """
    from keras_seq.training.distributed import Cluster
    from keras_seq.safety import folder_lock

    run_dir = Path(run_dir)
    if not (run_dir / CONFIG_FILE).is_file():
        raise KerasSeqError(f"{run_dir} is not a run folder: it has no {CONFIG_FILE}. Give the folder of an unfinished fit.")
    cluster = cluster or Cluster.from_environment()
    if cluster is not None and cluster.process_id != 0:  # it reads the folder; process 0 holds it and writes
        return _resume_locked(run_dir, verbose, cluster)
    with folder_lock(run_dir, f"fit --resume {run_dir}"):
        return _resume_locked(run_dir, verbose, cluster)


def _resume_locked(run_dir: Path, verbose, cluster) -> RunResult:
    from keras_seq.data.sources import frame_sha256
    from keras_seq.safety import refuse_symlink
    from keras_seq.training.loop import checkpoint_limit, read_checkpoint

    for name in (CONFIG_FILE, CHECKPOINT_FILE):
        refuse_symlink(run_dir / name)
    config = read_json(run_dir / CONFIG_FILE)
    status = config.get("status", "complete") if isinstance(config, dict) else None
    if status not in ("running", "interrupted", "complete"):
        raise KerasSeqError(f"{run_dir / CONFIG_FILE} is not a keras-seq run config. Give the folder of an unfinished fit.")
    if status != "running":  # a killed run never got to write its manifest; every other folder has one
        check_manifest(run_dir)
    if status == "complete":
        raise KerasSeqError(f"{run_dir} is a complete run: there is nothing to resume. Use `keras-seq evaluate` on it.")
    if not (run_dir / CHECKPOINT_FILE).is_file():
        raise KerasSeqError(
            f"{run_dir} has no {CHECKPOINT_FILE}: it stopped before its first epoch ended. Start it again with `keras-seq fit`."
        )
    data, windows, model, train = specs_from_config(config, run_dir)
    state = read_checkpoint(run_dir / CHECKPOINT_FILE, checkpoint_limit(model, windows, len(data.input_columns(windows.horizon))))
    check_checkpoint(state, config, train, run_dir)
    backend = use_backend(config.get("backend"))
    frame = data.load(quote=False)
    digest = frame_sha256(frame)
    if digest != config["data"].get("sha256"):
        raise KerasSeqError(
            f"the data of {run_dir} changed since the run started (its sha256 differs from config.json). "
            "Resume with the same data, or start again with `keras-seq fit`."
        )
    start_keras(train.devices, cluster)
    try:
        started = datetime.datetime.fromisoformat(config["created"])
    except (KeyError, TypeError, ValueError):
        raise KerasSeqError(f"{run_dir / CONFIG_FILE} has no valid 'created' time. Start the run again with `keras-seq fit`.") from None
    # A killed run never published: it lands under the name its own record gives (never the staged folder's
    # name, which anyone can choose), and beside a folder of that name rather than over it. An interrupted
    # run published itself: it replaces that folder, which must hold nothing but what its manifest lists.
    killed = status == "running"
    if not killed:
        check_only_manifest_files(run_dir)
    target = run_dir.parent / run_name(model.arch, started) if killed else run_dir
    run = Run(RunSpecs(data, windows, model, train, backend), frame, digest, started, Start.of_config(config, run_dir))
    result = train_into_folder(run, target, verbose=verbose, resume=state, replace=not killed)
    if killed and result.path is not None:
        shutil.rmtree(run_dir, ignore_errors=True)
    return result
