"""One global model against one model per series, on a real panel: US quarterly macro series.

    python benchmarks/panel_accuracy.py                       # gru and lstm, 3 seeds
    python benchmarks/panel_accuracy.py --archs gru --seeds 42 --epochs 5 --json out.json
    python benchmarks/panel_accuracy.py --archs gru --globals window,series,embedding4   # three global models
    python benchmarks/panel_accuracy.py --write-csv macrodata.csv   # only write the panel, as a wide CSV

The panel is statsmodels' `macrodata` (in the `bench` and `dev` extras):
US quarterly series 1959Q1..2009Q3 compiled from FRED (Federal Reserve Bank
of St. Louis) and the Bureau of Labor Statistics, public domain. The eight
level series are read as a wide table (`--targets`): real GDP, consumption,
investment, government spending and disposable income, CPI, M1 and
population; their levels run from 28.98 to 13,415 and their growth differs.

For each arch and seed, with the same options throughout (window 8,
splits 70/15/15 by date, the residual head):
- global models over all eight series (`--targets all`), their reports
  per series, one for each of `--globals`: `window` (the default window
  scaler), `series` (`--scaler series`: each series by its own training
  statistics, stored in the model) and `embeddingN` (the window scaler and
  `--series-embedding N`); `series+embeddingN` combines both;
- eight models, each trained on one series alone (`--target NAME`, the
  window scaler).
Both are scored on the same test rows of every series. MASE divides by each
series' own in-sample seasonal naive error (season 4). Prints per-series
MASE (mean ± std over seeds), the mean over series, and the baselines'.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import warnings
from pathlib import Path

SERIES = ("realgdp", "realcons", "realinv", "realgovt", "realdpi", "cpi", "m1", "pop")


def write_macro_csv(path: Path) -> Path:
    """statsmodels' macrodata as a wide CSV: a quarter-start date and the eight level series."""
    import pandas as pd
    from statsmodels.datasets import macrodata

    data = macrodata.load_pandas().data
    dates = pd.PeriodIndex.from_fields(year=data["year"].astype(int), quarter=data["quarter"].astype(int), freq="Q")
    frame = data[list(SERIES)].set_axis(dates.to_timestamp(), axis=0).rename_axis("date")
    frame.to_csv(path)
    return path


def model_options(variant: str) -> dict:
    """`ModelSpec` options of a global model variant: window, series, embeddingN or series+embeddingN."""
    options = {}
    for part in variant.split("+"):
        if part in ("window", "series"):
            options["scaler"] = part
        elif part.startswith("embedding") and part[len("embedding"):].isdigit():
            options["series_embedding"] = int(part[len("embedding"):])
        else:
            raise SystemExit(f"unknown global variant {variant!r}: expected window, series, embeddingN or a+b")
    return options


def fit(data, arch: str, seed: int, epochs: int, variant: str = "window"):
    """The test report of one fit (nothing written)."""
    from keras_seq.data.windows import WindowSpec
    from keras_seq.runs.run import Run, RunSpecs, train_and_evaluate
    from keras_seq.models.spec import ModelSpec
    from keras_seq.training.loop import TrainSpec

    specs = RunSpecs(data, WindowSpec(window=8), ModelSpec(arch=arch, units=32, layers=1, **model_options(variant)),
                     TrainSpec(epochs=epochs, batch_size=16, seed=seed), "jax")
    return train_and_evaluate(Run.of(specs, data.load()), verbose=0).reports["test"]


def mean_std(values) -> str:
    import numpy as np

    values = np.asarray(values, dtype="float64")
    return f"{values.mean():.3f} ± {values.std(ddof=1) if len(values) > 1 else 0.0:.3f}"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archs", default="gru,lstm")
    parser.add_argument("--seeds", default="42,43,44")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--globals", default="window", help="global model variants, comma-separated (see above)")
    parser.add_argument("--json", default=None)
    parser.add_argument("--write-csv", default=None, metavar="PATH", help="write the panel as a wide CSV and stop")
    args = parser.parse_args(argv)
    if args.write_csv:
        print(f"wrote {write_macro_csv(Path(args.write_csv))}")
        return
    os.environ.setdefault("KERAS_BACKEND", "jax")
    warnings.simplefilter("ignore")
    from keras_seq.backend import import_keras, use_backend

    use_backend(os.environ["KERAS_BACKEND"])
    import_keras()
    import numpy as np

    from keras_seq.data.sources import DataSpec

    archs, seeds = args.archs.split(","), [int(s) for s in args.seeds.split(",")]
    variants = args.globals.split(",")
    for variant in variants:
        model_options(variant)  # refuses an unknown one before any fit
    kinds = [f"global {v}" if len(variants) > 1 or v != "window" else "global" for v in variants] + ["per-series"]
    records = []  # (arch, seed, kind, series, mase)
    baselines = {}
    with tempfile.TemporaryDirectory() as folder:
        path = str(write_macro_csv(Path(folder) / "macrodata.csv"))
        for arch in archs:
            for seed in seeds:
                for variant, kind in zip(variants, kinds):
                    report = fit(DataSpec(source=path, targets="all"), arch, seed, args.epochs, variant)
                    records += [(arch, seed, kind, name, m["mase"]) for name, m in report.per_series.items()]
                for name in SERIES:
                    one = fit(DataSpec(source=path, target=name), arch, seed, args.epochs)
                    records.append((arch, seed, "per-series", name, one.model["mase"]))
                    baselines[name] = {who: m["mase"] for who, m in one.baselines.items()}
                print(f"done: {arch}, seed {seed}", flush=True)
    print(f"\nmacrodata, 8 US quarterly series; test 2002Q1..2009Q3 (30 quarters each); MASE (season 4), "
          f"mean ± std over seeds {', '.join(map(str, seeds))}; {args.epochs} epochs, 32 units\n")
    columns = [f"{arch} {kind}" for arch in archs for kind in kinds]
    print(f"| series | {' | '.join(columns)} | persistence | seasonal naive | drift |")
    print("|---|" + "---|" * (len(columns) + 3))

    def cell(arch, kind, name=None):
        by_seed = {}
        for a, seed, k, series, mase in records:
            if a == arch and k == kind and (name is None or series == name):
                by_seed.setdefault(seed, []).append(mase)
        return mean_std([np.mean(v) for v in by_seed.values()])

    for name in SERIES:
        row = [cell(arch, kind, name) for arch in archs for kind in kinds]
        b = baselines[name]
        print(f"| {name} | {' | '.join(row)} | {b['persistence']:.3f} | {b['seasonal naive']:.3f} | {b['drift']:.3f} |")
    means = [cell(arch, kind) for arch in archs for kind in kinds]
    base = {who: np.mean([baselines[n][who] for n in SERIES]) for who in ("persistence", "seasonal naive", "drift")}
    print(f"| **mean over series** | {' | '.join(means)} | {base['persistence']:.3f} | "
          f"{base['seasonal naive']:.3f} | {base['drift']:.3f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"records": records, "baselines": baselines}, indent=2))


if __name__ == "__main__":
    main()
