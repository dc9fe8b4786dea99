"""Accuracy: keras-seq's classic archs under each scaling configuration, against the baselines and an ETS,
on real series that ship with packages (no downloads), on identical rows.

    python benchmarks/accuracy.py                            # every series, arch and config; 3 seeds
    python benchmarks/accuracy.py --series dji,co2 --archs lstm --seeds 1 --json out.json

The series (each read by keras-seq from a CSV written here, as a user's file would be):

| name | frequency | rows | from |
|---|---|---|---|
| dji | business days | 1258 | keras-seq's embedded ^DJI closes, the default range 2018-02-13..2023-02-10 |
| dji-2008 | business days | 1511 | the same file, 2008-01-02..2013-12-31 (the crash and the recovery) |
| co2 | weekly | 2284 | statsmodels.datasets.co2 (Mauna Loa CO2, ppm, 1958-2001; gaps forward-filled) |
| elnino | monthly | 732 | statsmodels.datasets.elnino (sea surface temperature, degrees C, 1950-2010) |
| realgdp | quarterly | 203 | statsmodels.datasets.macrodata (US real GDP, 1959-2009) |
| sunspots | yearly | 309 | statsmodels.datasets.sunspots (yearly sunspot activity, 1700-2008; season 11, its cycle) |
| nile | yearly | 100 | statsmodels.datasets.nile (Nile flow at Aswan, 10^8 m^3, 1871-1970) |

Every model: window 16, 64 units x 2 layers, batch 16, Adam 1e-3, 20 epochs, the
best validation epoch's weights, 70/15/15 chronological splits; only the scaling
options change between configurations (`CONFIGS`). Each fit runs in its own
process (`--jobs` at a time; `--jobs 1` runs them in this one), scored on the test split's windows against
persistence, seasonal naive, drift and the training mean (keras-seq's own report)
and an ETS (statsmodels' ETSModel: additive error, trend none/additive/damped and
an additive season where the series has one, chosen by AIC on the rows before the
test split, its state then updated every step: one-step-ahead forecasts with
parameters fitted once, not refitted daily).

With `--eval-dji-2010`, the `dji` runs are also evaluated on 2010-01-04..2015-12-31,
closes far below the training period's, against persistence there.

Printed (and written with `--json`/`--markdown`): per series, each arch and config's
test MAE and MASE (mean ± std over seeds) and skill against persistence and against
the best baseline; then, per config, the mean skill over series and the number of
series where it beats persistence and where its MASE is below seasonal naive's.
Needs statsmodels (`pip install 'keras-seq[bench]'`).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import multiprocessing
import statistics
import sys
import tempfile
from pathlib import Path

ARCHS = ("drnn", "brnn", "lstm", "gru")
# name -> (model options, window options). "old" is keras-seq 0.1's only scaling.
CONFIGS = {
    "old": ({"scaler": "zscore", "transform": "none", "residual": False}, {"supervision": "last"}),
    "window-residual": ({"scaler": "window", "transform": "none", "residual": True}, {"supervision": "last"}),
    "window-residual-every": ({"scaler": "window", "transform": "none", "residual": True}, {"supervision": "every"}),
    "window-diff-every": ({"scaler": "window", "transform": "diff", "residual": True}, {"supervision": "every"}),
}
DEFAULT_CONFIGS = ("old", "window-residual", "window-residual-every")
# name -> (CSV writer name, DataSpec options beyond source, season given or None)
SERIES = {
    "dji": ("dji", {"target": "Close"}, None),
    "dji-2008": ("dji", {"target": "Close", "start": "2008-01-02", "end": "2013-12-31"}, None),
    "co2": ("co2", {"target": "co2", "fill": "ffill"}, None),
    "elnino": ("elnino", {"target": "temperature"}, None),
    "realgdp": ("realgdp", {"target": "realgdp"}, None),
    "sunspots": ("sunspots", {"target": "activity"}, 11),
    "nile": ("nile", {"target": "volume"}, None),
}


# === The series, as CSV files a user would have ===


def write_csv(name: str, folder: Path) -> str:
    """The source keras-seq reads `name` from: `dji` (embedded) or a CSV written into `folder`."""
    import pandas as pd

    if name == "dji":
        return "dji"
    import statsmodels.datasets as datasets

    if name == "co2":
        data = datasets.co2.load_pandas().data
        frame = pd.DataFrame({"date": data.index.strftime("%Y-%m-%d"), "co2": data["co2"].to_numpy()})
    elif name == "elnino":
        wide = datasets.elnino.load_pandas().data
        months = wide.columns[1:]
        frame = wide.melt(id_vars="YEAR", value_vars=list(months), var_name="month", value_name="temperature")
        frame["date"] = pd.to_datetime(frame["YEAR"].astype(int).astype(str) + "-" + frame["month"], format="%Y-%b")
        frame = frame.sort_values("date")[["date", "temperature"]]
        frame["date"] = frame["date"].dt.strftime("%Y-%m-%d")
    elif name == "realgdp":
        data = datasets.macrodata.load_pandas().data
        dates = pd.PeriodIndex.from_fields(year=data["year"].astype(int), quarter=data["quarter"].astype(int), freq="Q")
        frame = pd.DataFrame({"date": dates.to_timestamp().strftime("%Y-%m-%d"), "realgdp": data["realgdp"]})
    elif name == "sunspots":
        data = datasets.sunspots.load_pandas().data
        frame = pd.DataFrame({"year": data["YEAR"].astype(int), "activity": data["SUNACTIVITY"]})
    elif name == "nile":
        data = datasets.nile.load_pandas().data
        frame = pd.DataFrame({"year": data["year"].astype(int), "volume": data["volume"]})
    else:
        raise SystemExit(f"unknown series {name!r}; expected some of {', '.join(SERIES)}")
    path = folder / f"{name}.csv"
    frame.to_csv(path, index=False)
    return str(path)


# === One fit, in its own process ===


def fit_one(job: dict) -> dict:
    """Fit one arch, config and seed on one series; its test report (and the 2010-2015 evaluation if asked)."""
    import os

    os.environ.setdefault("KERAS_BACKEND", "jax")
    import warnings

    warnings.simplefilter("ignore")
    import keras_seq
    from keras_seq.data.sources import DataSpec
    from keras_seq.data.windows import WindowSpec
    from keras_seq.models.spec import ModelSpec
    from keras_seq.training.loop import TrainSpec

    model_options, window_options = CONFIGS[job["config"]]
    result = keras_seq.fit(DataSpec(source=job["source"], season=job["season"], **job["data"]),
                           WindowSpec(window=16, **window_options),
                           ModelSpec(arch=job["arch"], units=64, layers=2, **model_options),
                           TrainSpec(epochs=job["epochs"], batch_size=16, lr=1e-3, seed=job["seed"]),
                           out=job["out"], verbose=0)
    report = result.report.to_dict()
    record = {key: job[key] for key in ("series", "arch", "config", "seed")}
    record.update(mae=report["model"]["mae"], mase=report["model"].get("mase"), skill=report["skill"],
                  skill_vs_best=report["skill_vs_best"], best_baseline=report["best_baseline"],
                  baselines={k: {"mae": v["mae"], "mase": v.get("mase")} for k, v in report["baselines"].items()},
                  windows=report["windows"], first=report["first_date"], last=report["last_date"])
    if job.get("eval_2010"):
        other = keras_seq.evaluate(result.path, start="2010-01-04", end="2015-12-31").report
        record["dji_2010"] = {"mae": other.model["mae"], "persistence": other.persistence["mae"]}
    return record


def skipped(job: dict) -> str | None:
    """Why keras-seq refuses a job (brnn reads the future when every step is trained), or None."""
    from keras_seq.errors import KerasSeqError
    from keras_seq.models.spec import check_future_leak

    try:
        check_future_leak(job["arch"], "next", False, CONFIGS[job["config"]][1]["supervision"])
    except KerasSeqError as exc:
        return str(exc)
    return None


# === ETS on the same rows ===


def ets_forecast(source: str, data: dict, season: int | None) -> dict:
    """One-step-ahead MAE of an AIC-chosen additive ETS on the test windows' target rows."""
    import warnings

    import numpy as np
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    from keras_seq.data.sources import DataSpec
    from keras_seq.data.windows import make_windows
    from keras_seq.evaluation.report import infer_season

    frame = DataSpec(source=source, **data).load()
    windows = make_windows(frame, target=data["target"], window=16, shuffle=False)
    values = windows.target_values
    test_first = windows.split_rows["test"][0]
    season = season or infer_season(frame.index[: windows.split_rows["train"][1]])[0]
    candidates = [dict(trend=None), dict(trend="add"), dict(trend="add", damped_trend=True)]
    if 1 < season <= test_first // 2 and season <= 60:
        candidates += [dict(c, seasonal="add", seasonal_periods=season) for c in candidates]
    best = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for options in candidates:
            try:
                fitted = ETSModel(values[:test_first], error="add", **options).fit(disp=False, maxiter=200)
            except (ValueError, np.linalg.LinAlgError):
                continue
            if np.isfinite(fitted.aic) and (best is None or fitted.aic < best[0]):
                best = (fitted.aic, options, fitted.params)
        if best is None:
            return {"mae": float("nan"), "model": "none converged"}
        full = ETSModel(values, error="add", **best[1]).smooth(best[2])
    predictions = np.asarray(full.fittedvalues)  # one step ahead, the state updated by every value before
    rows = windows.target_positions("test")[:, 0]
    model = "ETS(A," + ("Ad" if best[1].get("damped_trend") else "A" if best[1].get("trend") else "N") + "," + \
            ("A" if best[1].get("seasonal") else "N") + ")"
    return {"mae": float(np.mean(np.abs(predictions[rows] - values[rows]))), "model": model}


# === Tables ===


def mean_std(values) -> tuple[float, float]:
    values = [v for v in values if v is not None]
    if not values:
        return float("nan"), float("nan")
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def figure(values, digits: int = 2, sign: bool = False) -> str:
    mean, std = mean_std(values)
    text = f"{mean:+.{digits}f}" if sign else f"{mean:.{digits}f}"
    return text + (f" ± {std:.{digits}f}" if len([v for v in values if v is not None]) > 1 else "")


def series_table(name: str, records: list, ets: dict, configs, archs) -> list[str]:
    first = records[0]
    lines = [f"### {name}: test {first['first']}..{first['last']}, {first['windows']} windows", "",
             "| model | config | test MAE | MASE | skill vs persistence | skill vs best baseline |", "|---|---|---|---|---|---|"]
    for config in configs:
        for arch in archs:
            runs = [r for r in records if r["arch"] == arch and r["config"] == config]
            if not runs:
                continue
            lines.append(f"| {arch} | {config} | {figure([r['mae'] for r in runs])} | "
                         f"{figure([r['mase'] for r in runs], 3)} | {figure([r['skill'] for r in runs], 3, True)} | "
                         f"{figure([r['skill_vs_best'] for r in runs], 3, True)} |")
    for baseline, scores in first["baselines"].items():
        mase = f"{scores['mase']:.3f}" if scores["mase"] is not None else "undefined"
        lines.append(f"| {baseline} | baseline | {scores['mae']:.2f} | {mase} | | |")
    lines.append(f"| {ets['model']} | statsmodels | {ets['mae']:.2f} | | | |")
    lines.append(f"\nbest baseline: {first['best_baseline']}\n")
    return lines


def config_summary(records: list, configs, archs) -> list[str]:
    lines = ["### Across series (each arch's mean over seeds, then the mean over archs and series)", "",
             "| config | mean skill vs persistence | series where every arch beats persistence | "
             "arch-series pairs beating persistence | arch-series pairs with MASE below seasonal naive's |",
             "|---|---|---|---|---|"]
    series_names = list(dict.fromkeys(r["series"] for r in records))
    for config in configs:
        skills, beats, below, every = [], 0, 0, 0
        pairs = 0
        for name in series_names:
            arch_skills = []
            for arch in archs:
                runs = [r for r in records if r["series"] == name and r["arch"] == arch and r["config"] == config]
                if not runs:
                    continue
                pairs += 1
                skill = mean_std([r["skill"] for r in runs])[0]
                mase = mean_std([r["mase"] for r in runs])[0]
                seasonal = runs[0]["baselines"]["seasonal naive"]["mase"]
                arch_skills.append(skill)
                beats += skill > 0
                below += seasonal is not None and mase < seasonal
            skills += arch_skills
            every += bool(arch_skills) and all(s > 0 for s in arch_skills)
        if pairs:
            lines.append(f"| {config} | {statistics.fmean(skills):+.3f} | {every} of {len(series_names)} | "
                         f"{beats} of {pairs} | {below} of {pairs} |")
    return lines


def dji_2010_table(records: list, configs) -> list[str]:
    lines = ["### The dji runs evaluated on 2010-01-04..2015-12-31", "",
             "| arch | config | MAE | persistence MAE | ratio |", "|---|---|---|---|---|"]
    for config in configs:
        for arch in ARCHS:
            runs = [r for r in records if r["arch"] == arch and r["config"] == config and "dji_2010" in r]
            if runs:
                ratios = [r["dji_2010"]["mae"] / r["dji_2010"]["persistence"] for r in runs]
                lines.append(f"| {arch} | {config} | {figure([r['dji_2010']['mae'] for r in runs])} | "
                             f"{runs[0]['dji_2010']['persistence']:.2f} | {figure(ratios)} |")
    return lines


# === Main ===


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", default=",".join(SERIES))
    parser.add_argument("--archs", default=",".join(ARCHS))
    parser.add_argument("--configs", default=",".join(DEFAULT_CONFIGS), help=f"some of {', '.join(CONFIGS)}")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=2, help="fits at a time, each in its own process (1: in this one)")
    parser.add_argument("--eval-dji-2010", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    names, archs, configs = (getattr(args, k).split(",") for k in ("series", "archs", "configs"))
    unknown = [c for c in configs if c not in CONFIGS] + [n for n in names if n not in SERIES]
    if unknown:
        raise SystemExit(f"unknown config or series: {', '.join(unknown)}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sources = {name: write_csv(SERIES[name][0], folder) for name in names}
        jobs = [{"series": name, "source": sources[name], "data": SERIES[name][1], "season": SERIES[name][2],
                 "arch": arch, "config": config, "seed": 42 + k, "epochs": args.epochs, "out": str(folder / "runs"),
                 "eval_2010": args.eval_dji_2010 and name == "dji"}
                for name in names for config in configs for arch in archs for k in range(args.seeds)]
        jobs = [j for j in jobs if not skipped(j)]
        records = []
        if args.jobs == 1:  # in this process, one after another
            results = map(fit_one, jobs)
        else:
            pool = concurrent.futures.ProcessPoolExecutor(max_workers=args.jobs,
                                                          mp_context=multiprocessing.get_context("spawn"))
            results = pool.map(fit_one, jobs)
        for done, record in enumerate(results, start=1):
            records.append(record)
            print(f"[{done}/{len(jobs)}] {record['series']} {record['arch']} {record['config']} seed "
                  f"{record['seed']}: MAE {record['mae']:.3f}", file=sys.stderr, flush=True)
        if args.jobs != 1:
            pool.shutdown()
        ets = {name: ets_forecast(sources[name], SERIES[name][1] | ({"fill": "ffill"} if name == "co2" else {}),
                                  SERIES[name][2]) for name in names}
    lines = [f"## Accuracy: {args.seeds} seeds, {args.epochs} epochs, window 16, 64 units x 2 layers", ""]
    for name in names:
        lines += series_table(name, [r for r in records if r["series"] == name], ets[name], configs, archs)
    lines += config_summary(records, configs, archs)
    if args.eval_dji_2010:
        lines += [""] + dji_2010_table(records, configs)
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    if args.json:
        args.json.write_text(json.dumps({"records": records, "ets": ets, "configs": {k: CONFIGS[k] for k in configs}},
                                        indent=2))


if __name__ == "__main__":
    main()
