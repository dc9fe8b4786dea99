"""Take a trained run on to newer data, and write the result as its child run (`keras-seq update`, a recipe's
`[update]`, `keras_seq.update`; below the workflows, so that the recipe verb can call it).

`keras-seq update RUN` starts from RUN's weights and optimizer state (kept
by `fit` in `optimizer.npz`), reads RUN's source again up to a later end
(`--end`) or another source with newer rows (`--data`), moves the validation
and test spans to the newest rows (each as long as RUN's), trains a few
epochs (`--epochs`, 5 by default) with RUN's other options, and writes a new
run folder beside RUN whose `config.json` names RUN as its parent and lists
the runs before it (`keras_seq.runs.lineage`). Its report scores RUN's model
on the same test rows, beside the child's. The scaling statistics stay as
trained unless `--refit-scaling`. A model that reads the series (`--scaler
series`, `--series-embedding`) takes on series RUN never saw: their table
rows are added, their statistics fitted on their own training rows.

An update is a fit: it trains in a staged folder with a checkpoint each
epoch, and one killed or stopped goes on with `keras-seq fit --resume`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from keras_seq.backend import start_keras, use_backend
from keras_seq.data.reading import label_of
from keras_seq.errors import KerasSeqError
from keras_seq.runs.folder import MANIFEST_FILE, OPTIMIZER_FILE, read_json, run_name, specs_from_config
from keras_seq.runs.lineage import Start
from keras_seq.runs.run import Run, RunResult, RunSpecs, SavedRun, train_into_folder

DEFAULT_EPOCHS = 5


def update_run(run_dir: str | Path, *, source: str | None = None, end: str | None = None,
               epochs: int = DEFAULT_EPOCHS, refit_scaling: bool = False, out: str | Path | None = None,
               backend: str | None = None, verbose: str | int = "auto") -> RunResult:
    """Fine-tune a trained run on newer data; write the child run folder.

    Args:
        run_dir: path. A complete run folder (`fit`'s, or an earlier
            update's).
        source: str or None. Where the newer rows are: a source as `fit`'s
            `source` takes it. Defaults to the run's own source.
        end: str or None. The last date (or step) read. Defaults to the
            source's last row.
        epochs: int. Epochs to train. Defaults to 5.
        refit_scaling: bool. Fit the scaling statistics again on the child's
            training split. Defaults to `False`: the parent's are kept.
        out: path or None. Folder that receives the child run. Defaults to
            the parent's folder.
        backend: str or None. Keras backend. Defaults to the run's.
        verbose: "auto", 0, 1 or 2. Keras's progress output.

    Returns:
        A `RunResult`: the child run folder and its test report (in which
        the parent's model is scored on the same rows).

    Raises:
        KerasSeqError: the run is not complete, the data does not extend it
            or reads other columns; nothing is written.
    """
    from keras_seq.runs.folder import resolve_latest

    parent = SavedRun.read(resolve_latest(run_dir))
    (train,) = specs_from_config(parent.config, parent.path, ("train",))
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise KerasSeqError(f"`epochs` must be a whole number of at least 1. Received: epochs={epochs!r}")
    if out is None and (parent.path.parent.parent / "comparison.json").is_file():
        raise KerasSeqError(f"{parent.path.name} lies in a comparison's runs folder, which only `compare` writes: "
                            "give `out`, the folder for the updated run.")
    backend = use_backend(backend or parent.config.get("backend"))
    data = dataclasses.replace(parent.data, start=parent.data.start or parent.config["data"].get("first_date"), end=end)
    if source is not None:
        data = dataclasses.replace(data, source=source)
    frame = data.load(quote=source is not None)
    _check_extends(parent, data, frame)
    specs = RunSpecs(data, moved_windows(parent), parent.model, dataclasses.replace(train, epochs=epochs), backend)
    specs.check()
    start_keras(train.devices, None)
    run = Run.of(specs, frame, start=_start_of(parent, specs, refit_scaling))
    return train_into_folder(run, Path(out or parent.path.parent) / run_name(parent.model.arch, run.started),
                             verbose=verbose)


def _check_extends(parent: SavedRun, data, frame) -> None:
    """Refuse data that forecasts another target, or ends where the parent's ended or before."""
    if data.target != parent.data.target:
        raise KerasSeqError(f"the data's target is '{data.target}', but {parent.path.name} forecasts "
                            f"'{parent.data.target}': an update reads the columns its parent was trained on. "
                            "Give data with that column, or fit a new model.")
    import pandas as pd

    last, newest = parent.config["data"].get("last_date"), frame.index.max()
    dated = isinstance(frame.index, pd.DatetimeIndex)
    try:
        ahead = newest > (pd.Timestamp(last) if dated else int(last))
    except (TypeError, ValueError):
        raise KerasSeqError(f"{parent.path.name} records its last {'date' if dated else 'step'} as {str(last)[:40]!r}, "
                            "which this data cannot follow: update it with data of the same kind.") from None
    if not ahead:
        raise KerasSeqError(f"the data ends on {label_of(newest)}, not after {parent.path.name}'s last date {last}: "
                            "there is nothing new to train on. Give `end` after it, or `source` with newer rows.")


def moved_windows(parent: SavedRun):
    """The parent's windows with its validation and test spans moved to the newest rows, each as many rows as the
    parent's (its first series', for a panel): `split_steps`."""
    spans = parent.config.get("split_dates")
    rows = [(spans or {}).get(name, {}).get("rows") if isinstance(spans, dict) else None
            for name in ("validation", "test")]
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in rows) or rows[0] < 1:
        raise KerasSeqError(f"{parent.path.name}'s config.json records no validation span to move (its "
                            "'split_dates' rows): it cannot be updated. Fit a new model.")
    return dataclasses.replace(parent.windows, split_dates=None, split_steps=(rows[0], rows[1]))


def _start_of(parent: SavedRun, specs: RunSpecs, refit_scaling: bool) -> Start:
    """The parent's weights and (where it kept them) optimizer state, read and checked."""
    import warnings

    from keras_seq.backend import tensorflow_left_unloaded
    from keras_seq.errors import RunWarning
    from keras_seq.training.loop import checkpoint_limit, read_optimizer_state

    with tensorflow_left_unloaded():
        weights = parent.load_model().get_weights()
    listed = read_json(parent.path / MANIFEST_FILE)["sha256"]
    optimizer = None
    if OPTIMIZER_FILE in listed:  # the manifest check vouched for it
        limit = checkpoint_limit(specs.model, specs.windows, len(specs.input_columns))
        optimizer = read_optimizer_state(parent.path / OPTIMIZER_FILE, limit)
    else:
        warnings.warn(f"{parent.path.name} kept no optimizer state (a comparison's run, or one written before "
                      "keras-seq kept it): the update starts Adam's moments from zero.", RunWarning, stacklevel=2)
    return Start.of_parent(parent, refit_scaling, weights, optimizer)
