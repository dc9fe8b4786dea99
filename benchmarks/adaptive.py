"""Adaptive conformal intervals against split conformal, on the series of `benchmarks/intervals.py`, identical rows.

    python benchmarks/adaptive.py                                  # every series, 3 seeds
    python benchmarks/adaptive.py --series dji --seeds 1 --rates 0.05

For each series and seed, one gru with intervals.py's `conformal` options
(window 16, 64 units x 2 layers, batch 16, Adam 1e-3, 20 epochs, 70/15/15
splits, `--conformal 0.8,0.95`, offsets calibrated on the validation
windows) is fitted once. Its test windows are then scored twice from the
same forecasts: with the split-conformal offsets fixed, and with the
offsets tracked window by window through the test actuals at each rate
(`keras_seq.evaluation.adaptive`: quantile tracking, each window's
interval from the offsets before its own actual value). Prints each
interval's coverage and mean width, mean ± std over seeds. Needs
statsmodels for the series other than dji (`pip install 'keras-seq[bench]'`).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from accuracy import SERIES, mean_std, write_csv  # noqa: E402  (the same series, written the same way)
from intervals import run_jobs  # noqa: E402  (fitted the same way)

RATES = (0.02, 0.05, 0.1)
NAMES = ("80%", "95%")


def fit_one(job: dict) -> dict:
    """Fit one seed on one series; the coverage and width of its test intervals, fixed and tracked at each rate."""
    import os

    os.environ.setdefault("KERAS_BACKEND", "jax")
    import warnings

    warnings.simplefilter("ignore")
    import keras_seq
    from keras_seq.data.sources import DataSpec
    from keras_seq.data.windows import WindowSpec
    from keras_seq.errors import KerasSeqError
    from keras_seq.evaluation.adaptive import adaptive_forecast
    from keras_seq.evaluation.intervals import quantile_scores
    from keras_seq.models.spec import ModelSpec
    from keras_seq.runs.run import SavedRun
    from keras_seq.training.loop import TrainSpec

    try:
        result = keras_seq.fit(DataSpec(source=job["source"], season=job["season"], **job["data"]),
                               WindowSpec(window=16), ModelSpec(arch="gru", units=64, layers=2, conformal=(0.8, 0.95)),
                               TrainSpec(epochs=job["epochs"], batch_size=16, lr=1e-3, seed=job["seed"]),
                               out=job["out"], verbose=0)
    except KerasSeqError as exc:  # a validation split too short to calibrate a 95% interval
        return {key: job[key] for key in ("series", "seed")} | {"skipped": str(exc)}
    run = SavedRun.read(result.path)
    model, windows = run.load_model(), run.scored_windows(run.data.load())
    levels = list(model.get_layer("conformal").levels)
    actual = windows.targets("test")
    scores = {"split conformal": result.report.to_dict()["intervals"]["model"]["intervals"]}
    for rate in job["rates"]:
        forecast, _, _ = adaptive_forecast(model, windows, "test", rate)
        scores[f"adaptive {rate:g}"] = quantile_scores(actual, forecast, levels)["intervals"]
    return {"series": job["series"], "seed": job["seed"], "windows": int(len(actual)), "scores": scores}


def table(records: list, names: list, ways: list) -> list[str]:
    lines = ["| series | test windows | intervals | 80% cover | 95% cover | 80% width | 95% width |",
             "|---|---:|---|---:|---:|---:|---:|"]
    for name in names:
        mine = [r for r in records if r["series"] == name and "skipped" not in r]
        for way in ways if mine else ():
            def cell(key, interval, scale=1.0, digits=2):
                mean, std = mean_std([r["scores"][way][interval][key] * scale for r in mine])
                return f"{mean:.{digits}f} ± {std:.{digits}f}"

            lines.append(f"| {name} | {mine[0]['windows']} | {way} | {cell('coverage', '80%', 100, 1)} | "
                         f"{cell('coverage', '95%', 100, 1)} | {cell('width', '80%')} | {cell('width', '95%')} |")
    return lines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", default=",".join(SERIES))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--rates", default=",".join(f"{r:g}" for r in RATES))
    parser.add_argument("--jobs", type=int, default=2, help="fits at a time, each in its own process (1: in this one)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    names, rates = args.series.split(","), [float(r) for r in args.rates.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        sources = {name: write_csv(SERIES[name][0], Path(folder)) for name in names}
        jobs = [{"series": name, "seed": seed, "source": sources[name], "data": SERIES[name][1], "rates": rates,
                 "season": SERIES[name][2], "epochs": args.epochs, "out": str(Path(folder) / "runs")}
                for name in names for seed in range(1, args.seeds + 1)]
        records = run_jobs(fit_one, jobs, args.jobs)
    print(f"\ngru, {args.epochs} epochs, seeds 1..{args.seeds}, conformal 0.8,0.95; coverage in % of test windows; "
          "widths in each series' units; mean ± std over seeds\n")
    print("\n".join(table(records, names, ["split conformal", *(f"adaptive {r:g}" for r in rates)])))
    for reason in dict.fromkeys(f"{r['series']}: {r['skipped']}" for r in records if "skipped" in r):
        print(f"\nnot fitted: {reason}")
    if args.json:
        args.json.write_text(json.dumps(records, indent=2))


if __name__ == "__main__":
    main()
