"""A global model's windows at scale: 1,000 to 100,000 synthetic series of 1,000 steps.

    python benchmarks/panel_scale.py                          # 1,000, 10,000 and 100,000 series
    python benchmarks/panel_scale.py --series 1000,10000 --steps 1000 --json out.json

Each size runs in a fresh process (so its peak RSS is its own), on the jax
backend that `keras-seq fit` uses by default:

1. generate a seeded panel as one long frame (a date index, a categorical
   series column, a float32 value): each series its own start date, level,
   trend, weekly and yearly season and noise scale, so the scales differ by
   orders of magnitude;
2. `make_windows(..., series_column="series")` (window 16, next value,
   splits 70/15/15 by date), then the first training batch as `fit` reads
   it (`training.fit_data`): the time to first batch counts both;
3. read `--batches` training batches as `fit` reads them (numpy gathers from
   the one float32 column, in the shuffled order): windows/s;
4. train a small GRU (16 units, window scaler) for two epochs of
   `--train-steps` steps: windows/s of the second epoch's steps, timed from
   the end of its first call into the compiled step to the end of its last
   (a whole epoch's one-off shuffle of the index is not in this figure; it
   is in the time to first batch).

A single series of `--single-rows` rows runs the same steps first: the
reference the panels' windows/s are compared with (same window and batch).
Prints one table; peak RSS is the process's maximum resident memory, data
generation included.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

WINDOW, BATCH = 16, 256


def panel_frame(n_series: int, steps: int, seed: int = 0):
    """`n_series` x `steps` rows: trends, two seasons and noise of different scales, stacked series by series."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows = n_series * steps
    values = np.empty(rows, dtype="float32")
    days = np.empty(rows, dtype="int64")
    t = np.arange(steps, dtype="float32")
    starts = rng.integers(0, 365, size=n_series)
    level = 10.0 ** rng.uniform(0, 4, size=n_series)  # 1 .. 10,000
    chunk = 1000
    for first in range(0, n_series, chunk):  # float32 blocks: no float64 copy of the whole panel
        k = np.arange(first, min(first + chunk, n_series))
        lv = level[k, None].astype("float32")
        trend = lv * rng.normal(0, 2e-4, size=(len(k), 1)).astype("float32") * t
        weekly = lv * rng.uniform(0, 0.05, size=(len(k), 1)).astype("float32") * np.sin(2 * np.pi * t / 7)
        yearly = lv * rng.uniform(0, 0.2, size=(len(k), 1)).astype("float32") * np.sin(2 * np.pi * t / 365.25)
        noise = lv * rng.uniform(0.005, 0.05, size=(len(k), 1)).astype("float32") * rng.standard_normal(
            (len(k), steps), dtype="float32")
        values[first * steps : (k[-1] + 1) * steps] = (lv + trend + weekly + yearly + noise).ravel()
        days[first * steps : (k[-1] + 1) * steps] = (starts[k, None] + np.arange(steps)[None, :]).ravel()
    days *= 86_400_000_000_000  # in place: nanoseconds since 2000-01-01
    days += np.datetime64("2000-01-01", "ns").astype("int64")
    dates = pd.DatetimeIndex(days.view("datetime64[ns]"), name="Date", copy=False)
    codes = np.repeat(np.arange(n_series, dtype="int32"), steps)
    names = pd.Index([f"s{k:06d}" for k in range(n_series)])
    series = pd.Categorical.from_codes(codes, categories=names)
    return pd.DataFrame({"series": series, "value": values}, index=dates, copy=False)


def single_frame(rows: int, seed: int = 0):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    values = (1000 + np.cumsum(rng.normal(size=rows))).astype("float32")
    return pd.DataFrame({"value": values}, index=pd.date_range("1900-01-01", periods=rows, freq="min", name="Date"))


def measure(n_series: int, steps: int, single_rows: int, batches: int, train_steps: int) -> dict:
    """One size, in this process: build, first batch, gather and training throughput, peak RSS."""
    from keras_seq.backend import import_keras, use_backend

    use_backend("jax")
    keras = import_keras()
    from keras_seq.data.windows import make_windows
    from keras_seq.models.builders import build_model
    from keras_seq.training.loop import TrainSpec, compile_trainer, fit_data

    began = time.perf_counter()
    frame = panel_frame(n_series, steps) if n_series else single_frame(single_rows)
    generate = time.perf_counter() - began
    began = time.perf_counter()
    windows = make_windows(frame, target="value", window=WINDOW, batch_size=BATCH, seed=0,
                           series_column="series" if n_series else None)
    built = time.perf_counter() - began
    data = fit_data(windows, "train")
    data[0]
    first_batch = time.perf_counter() - began
    n = min(batches, data.num_batches)
    began = time.perf_counter()
    for index in range(n):
        data[index]
    gather_rate = n * BATCH / (time.perf_counter() - began)

    keras.utils.set_random_seed(0)
    model = build_model("gru", window=WINDOW, units=16, layers=1, scaling=windows.scaling)
    trainer = compile_trainer(model, TrainSpec(epochs=1, batch_size=BATCH, steps_per_execution=32))
    ticks = []  # (epoch, batch, time) at the end of every call into the compiled step (32 batches)

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            ticks.append((self.epoch, batch, time.perf_counter()))

    trainer.fit(data, epochs=2, steps_per_epoch=train_steps, verbose=0, shuffle=False, callbacks=[Clock()])
    timed = [(batch, at) for epoch, batch, at in ticks if epoch == 1]  # the 2nd epoch: compiled, order drawn
    train_rate = (timed[-1][0] - timed[0][0]) * BATCH / (timed[-1][1] - timed[0][1])
    return {
        "series": n_series, "rows": len(frame), "train_windows": windows.count("train"),
        "generate_s": generate, "build_s": built, "first_batch_s": first_batch, "gather_windows_s": gather_rate,
        "train_windows_s": train_rate,
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", default="1000,10000,100000", help="panel sizes, comma-separated")
    parser.add_argument("--steps", type=int, default=1000, help="steps per series")
    parser.add_argument("--single-rows", type=int, default=1_000_000, help="rows of the single-series reference")
    parser.add_argument("--batches", type=int, default=2000, help="training batches read for windows/s")
    parser.add_argument("--train-steps", type=int, default=320, help="training steps per epoch (2 epochs, the 2nd timed)")
    parser.add_argument("--json", default=None)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(measure(args.child, args.steps, args.single_rows, args.batches, args.train_steps)))
        return
    results = []
    for size in [0, *(int(v) for v in args.series.split(","))]:
        command = [sys.executable, __file__, "--child", str(size), "--steps", str(args.steps), "--single-rows",
                   str(args.single_rows), "--batches", str(args.batches), "--train-steps", str(args.train_steps)]
        env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3")
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            print(f"{size} series failed (exit {done.returncode}):\n{done.stderr[-2000:]}", file=sys.stderr)
            sys.exit(1)
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"done: {results[-1]['series'] or 'single series'}", file=sys.stderr, flush=True)
    reference = results[0]
    print(f"window {WINDOW}, batch {BATCH}, {args.steps} steps per series; jax on {os.cpu_count()} cores")
    print(f"{'series':>8} {'rows':>12} {'train windows':>14} {'peak RSS GiB':>13} {'build s':>8} "
          f"{'1st batch s':>11} {'read win/s':>11} {'x single':>8} {'train win/s':>11} {'x single':>8}")
    for r in results:
        label = "single" if not r["series"] else f"{r['series']:,}"
        print(f"{label:>8} {r['rows']:>12,} {r['train_windows']:>14,} {r['peak_rss_gib']:>13.2f} {r['build_s']:>8.2f} "
              f"{r['first_batch_s']:>11.2f} {r['gather_windows_s']:>11,.0f} "
              f"{r['gather_windows_s'] / reference['gather_windows_s']:>8.2f} {r['train_windows_s']:>11,.0f} "
              f"{r['train_windows_s'] / reference['train_windows_s']:>8.2f}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
