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
from keras_seq.errors import KerasSeqError, RunInterrupted
from keras_seq.evaluation.metrics import metrics
from keras_seq.evaluation.report import PERSISTENCE
from keras_seq.present.plots import plot_comparison
from keras_seq.present.tables import comparison_markdown
from keras_seq.models.registry import check_arch_list
from keras_seq.models.spec import ModelSpec, check_model_for_windows
from keras_seq.runs.fits import (INTERRUPTED_FILE, FitTask, decode_outcome, fit_one, fit_one_as_bytes, interrupted_record,
                                 outcome_limit, write_fit_folder)


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
    if windows.split_dates is not None or windows.split_steps is not None:
        raise KerasSeqError("`backtest` cuts its folds by `splits` fractions: leave `split_dates` and `split_steps` "
                            "out with it.")
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
    return _report(folder, [finished[task.name] for task in tasks], tasks, specs, spec, settings, title)


def _report(folder: Path, outcomes: list, tasks: list, specs, spec: CompareSpec, settings: dict,
            title) -> tuple[dict, str]:
    """A finished comparison's report files from its fits' outcomes; what a stopped run kept for them is removed."""
    from keras_seq.runs.folder import write_json

    runs, shown = _collect(outcomes, tasks, spec)
    scored = ("backtest",) if spec.backtest else spec.on
    summary = summarize(runs, spec, scored)
    summary["settings"] = settings
    summary["runs"] = runs
    markdown = comparison_markdown(summary, specs, spec, title=title)
    plot_comparison(folder, shown, summary, specs, spec, scored[0])
    write_json(folder / "comparison.json", summary)
    (folder / "comparison.md").write_text(markdown, encoding="utf-8")
    (folder / INTERRUPTED_FILE).unlink(missing_ok=True)
    if (folder / "fits").is_dir() and not (folder / "fits").is_symlink():  # a stopped run's arrays, read back now
        shutil.rmtree(folder / "fits")
    return json.loads(json.dumps(summary, default=str)), markdown


# What finishing a comparison writes into its folder (`runs/` and `fits/` are folders of a stopped one's fits).
WRITTEN_ON_RESUME = ("runs", "fits", "comparison.json", "comparison.md", "compare_loss.png", "compare_forecast.png",
                     "compare_mae.png")


def fit_tasks(specs, spec: CompareSpec, seeds: list, folds: list, digest: str, verbose) -> list[FitTask]:
    """Every fit of a comparison, in the order a serial run trains them."""
    from keras_seq.training.tensorboard import tensorboard_folder

    tasks = []
    board = tensorboard_folder()
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
                    verbose=verbose, label=f"[{len(tasks) + 1}/{total}] {arch}, seed {seed}{where}",
                    tensorboard=None if board is None else str(board.resolve())))
    return tasks


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


