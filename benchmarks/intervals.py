"""Uncertainty: conformal intervals and a quantile head against the random-walk interval, on the real series of
`benchmarks/accuracy.py`, on identical rows.

    python benchmarks/intervals.py                                  # every series, 3 seeds
    python benchmarks/intervals.py --series dji,co2 --seeds 1 --json out.json

For each series and seed, two gru models with accuracy.py's options (window 16,
64 units x 2 layers, batch 16, Adam 1e-3, 20 epochs, the best validation
epoch's weights, 70/15/15 chronological splits, the default window scaler and
residual head):
- `conformal`: the point model with `--conformal 0.8,0.95`, calibrated on the
  validation windows after training;
- `quantile`: a quantile head at levels 0.05, 0.1, 0.2, ..., 0.9, 0.95
  (pinball loss);
- `cqr`: a quantile head at 0.025, 0.1, 0.5, 0.9, 0.975 whose 80% and 95%
  intervals are conformalized on the validation windows (`--quantiles 0.5
  --conformal 0.8,0.95`).
Both are scored on the test windows against the random-walk interval (the
last value plus the empirical quantiles of the training split's one-step
changes): empirical coverage and mean width of the 80% and 95% intervals
(the quantile head has no 95% one: its widest is 90%), and the CRPS from
the levels, the quantile head's at its 11 levels, the conformal and cqr
models' at their 5 (the CRPS skill of each is against the random walk at
the same levels). Prints mean ± std over seeds. Each fit runs in its own process
(`--jobs` at a time). Needs statsmodels (`pip install 'keras-seq[bench]'`).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import multiprocessing
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from accuracy import SERIES, mean_std, write_csv  # noqa: E402  (the same series, written the same way)

LEVELS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
KINDS = {"conformal": {"conformal": (0.8, 0.95)}, "quantile": {"quantiles": LEVELS},
         "cqr": {"quantiles": (0.5,), "conformal": (0.8, 0.95)}}


def fit_one(job: dict) -> dict:
    """Fit one kind and seed on one series: its test report's interval scores."""
    import os

    os.environ.setdefault("KERAS_BACKEND", "jax")
    import warnings

    warnings.simplefilter("ignore")
    import keras_seq
    from keras_seq.data.sources import DataSpec
    from keras_seq.data.windows import WindowSpec
    from keras_seq.models.spec import ModelSpec
    from keras_seq.training.loop import TrainSpec

    from keras_seq.errors import KerasSeqError

    try:
        result = keras_seq.fit(DataSpec(source=job["source"], season=job["season"], **job["data"]),
                               WindowSpec(window=16), ModelSpec(arch="gru", units=64, layers=2, **KINDS[job["kind"]]),
                               TrainSpec(epochs=job["epochs"], batch_size=16, lr=1e-3, seed=job["seed"]),
                               out=job["out"], verbose=0)
    except KerasSeqError as exc:  # a validation split too short to calibrate a 95% interval
        return {key: job[key] for key in ("series", "kind", "seed")} | {"skipped": str(exc)}
    report = result.report.to_dict()
    return {key: job[key] for key in ("series", "kind", "seed")} | {
        "windows": report["windows"], "mae": report["model"]["mae"], "intervals": report["intervals"]}


def cell(records: list, series: str, kind: str, get, digits: int = 2, scale: float = 1.0) -> str:
    values = [get(r) * scale for r in records if r["series"] == series and r["kind"] == kind and "skipped" not in r]
    if not values:
        return "-"
    mean, std = mean_std(values)
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def table(records: list, names) -> list[str]:
    def coverage(who, name):
        return lambda r: r["intervals"][who]["intervals"][name]["coverage"]

    def width(who, name):
        return lambda r: r["intervals"][who]["intervals"][name]["width"]

    lines = ["| series | test windows | conformal 80% cover | conformal 95% cover | random walk 80% / 95% cover | "
             "quantile 80% cover | conformal 80% width | random walk 80% width | CRPS quantile head | "
             "CRPS random walk | CRPS skill | CRPS conformal | cqr 80% / 95% cover | cqr CRPS skill |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name in names:
        mine = [r for r in records if r["series"] == name and "skipped" not in r]
        if not mine:
            continue
        walks = [r["intervals"]["random walk"]["intervals"] for r in mine if r["kind"] == "conformal"]
        quantile_walk = [r for r in mine if r["kind"] == "quantile"]
        walk_cover = (f"{100 * walks[0]['80%']['coverage']:.1f} / {100 * walks[0]['95%']['coverage']:.1f}"
                      if walks else "-")
        lines.append(
            f"| {name} | {mine[0]['windows']} | {cell(records, name, 'conformal', coverage('model', '80%'), 1, 100)} | "
            f"{cell(records, name, 'conformal', coverage('model', '95%'), 1, 100)} | {walk_cover} | "
            f"{cell(records, name, 'quantile', coverage('model', '80%'), 1, 100)} | "
            f"{cell(records, name, 'conformal', width('model', '80%'))} | "
            + (f"{walks[0]['80%']['width']:.2f}" if walks else "-") + " | "
            f"{cell(records, name, 'quantile', lambda r: r['intervals']['model']['crps'], 3)} | "
            + (f"{quantile_walk[0]['intervals']['random walk']['crps']:.3f}" if quantile_walk else "-") + " | "
            f"{cell(records, name, 'quantile', lambda r: r['intervals']['crps_skill'], 3)} | "
            f"{cell(records, name, 'conformal', lambda r: r['intervals']['model']['crps'], 3)} | "
            f"{cell(records, name, 'cqr', coverage('model', '80%'), 1, 100)} / "
            f"{cell(records, name, 'cqr', coverage('model', '95%'), 1, 100)} | "
            f"{cell(records, name, 'cqr', lambda r: r['intervals']['crps_skill'], 3)} |")
    return lines


def run_jobs(fit, jobs: list, workers: int) -> list:
    """`fit(job)` of every job, in order: here (`workers` 1) or each in its own spawned process, `workers` at a time."""
    if workers == 1:
        return [fit(job) for job in jobs]
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        return list(pool.map(fit, jobs))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", default=",".join(SERIES))
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=2, help="fits at a time, each in its own process (1: in this one)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    names = args.series.split(",")
    with tempfile.TemporaryDirectory() as folder:
        sources = {name: write_csv(SERIES[name][0], Path(folder)) for name in names}
        jobs = [{"series": name, "kind": kind, "seed": seed, "source": sources[name], "data": SERIES[name][1],
                 "season": SERIES[name][2], "epochs": args.epochs, "out": str(Path(folder) / "runs")}
                for name in names for kind in args.kinds.split(",") for seed in range(1, args.seeds + 1)]
        records = run_jobs(fit_one, jobs, args.jobs)
    print(f"\ngru, {args.epochs} epochs, seeds 1..{args.seeds}; coverage in % of test windows; widths and CRPS in "
          "each series' units; mean ± std over seeds\n")
    print("\n".join(table(records, names)))
    for reason in dict.fromkeys(f"{r['series']} {r['kind']}: {r['skipped']}" for r in records if "skipped" in r):
        print(f"\nnot fitted: {reason}")
    if args.json:
        args.json.write_text(json.dumps(records, indent=2))


if __name__ == "__main__":
    main()
