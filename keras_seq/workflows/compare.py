"""`keras-seq compare`: train and score several archs on identical data, splits, seeds and budget.

The comparison itself (its tasks, folds, pooled metrics, tables and plots) is
`runs.comparison`; this verb opens the pool and the stop signals,
stages the folder, and publishes it, or what finished of it
(`resume_comparison` finishes a stopped one).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from keras_seq.backend import start_keras, use_backend
from keras_seq.config.options import from_record
from keras_seq.data.sources import DataSpec, frame_sha256
from keras_seq.data.windows import WindowSpec
from keras_seq.errors import KerasSeqError
from keras_seq.runs.comparison import (WRITTEN_ON_RESUME, CompareSpec, backtest_folds, check_backtest, check_comparison,
                                       check_fanout, compare_into, comparison_settings, date_count, fit_tasks)
from keras_seq.runs.fits import INTERRUPTED_FILE, kept_fits, outcome_limit
from keras_seq.models.spec import ModelSpec


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
        data, windows, train: as for `workflows.fit.fit_run`; shared by every arch.
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
        jobs.pool.Stopped: a signal or a fit's error stopped it after some fits
            finished: they are published with `interrupted.json`, and
            `resume_comparison` finishes the comparison.
    """
    backend = use_backend(backend)
    check_comparison(windows, model, spec, data)
    frame = data.load()
    check_backtest(date_count(frame), windows, spec.backtest)
    from keras_seq.jobs.pool import Stopped, open_pool
    from keras_seq.runs.run import RunSpecs
    from keras_seq.training.loop import TrainSpec

    train = train or TrainSpec()
    check_fanout(spec.fanout, train)
    start_keras(train.devices)
    from keras_seq.jobs.stop import stop_signals
    from keras_seq.runs.folder import staged_folder, utc_stamp

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
    from keras_seq.jobs.pool import Fanout, Stopped, open_pool
    from keras_seq.safety import folder_lock, refuse_symlink
    from keras_seq.jobs.stop import stop_signals

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
    from keras_seq.runs.run import RunSpecs
    from keras_seq.runs.folder import read_json, specs_from_config
    from keras_seq.safety import refuse_symlink

    for name in (INTERRUPTED_FILE, *WRITTEN_ON_RESUME):  # nothing read or written through a link the folder holds
        refuse_symlink(folder / name)
    record = read_json(folder / INTERRUPTED_FILE)
    settings = record.get("settings") if isinstance(record, dict) else None
    where = folder / INTERRUPTED_FILE
    try:
        spec = from_record("evaluate", settings["compare"])
        backend = use_backend(settings["backend"])
    except (KeyError, TypeError, AttributeError):
        raise KerasSeqError(f"{where} is not a keras-seq comparison record. Start the comparison again.") from None
    data, windows, model, train = specs_from_config(settings, None)
    model = dataclasses.replace(model, arch=spec.archs[0])  # the record's `model` holds no arch (each fit has its own)
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
    if json.loads(json.dumps(comparison_settings(frame, specs, spec, digest, seeds, folds), default=str)) != settings:
        raise KerasSeqError(f"{where} records settings this keras-seq would not write. The folder may have been "
                            "changed; start the comparison again.")
    return frame, specs, spec, kept_fits(folder, record, fit_tasks(specs, spec, seeds, folds, digest, 0),
                                         outcome_limit(frame, windows))


