"""The default `keras-seq fit`, whole process: wall time and peak RSS, without and with JAX's compilation cache.

    python benchmarks/fit_end_to_end.py                   # 3 rounds, the default ^DJI LSTM, 20 epochs
    python benchmarks/fit_end_to_end.py --rounds 5 --json out.json
    python benchmarks/fit_end_to_end.py --darts-python /tmp/darts-venv/bin/python   # darts in a venv of its own

Each round runs, in turns, as new processes:

- `no cache`: `KERAS_SEQ_JAX_CACHE=0`, every step compiled (a first run);
- `cache`: the persistent cache in a folder of this benchmark, filled by a
  warm-up run first (every later run of the same shapes);
- `darts RNNModel` where darts is installed (here, or in the venv of
  `--darts-python`): its LSTM on the same ^DJI closes, read from keras-seq's
  shipped CSV, 20 epochs, the same window and size (otherwise left out, said
  so).

Medians over the rounds, and each row's ratio to `cache`. Peak RSS is the
child's `ru_maxrss` (`resource.getrusage(RUSAGE_CHILDREN)` read per child
through `os.wait4`).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DARTS = """
import sys
import pandas as pd
from darts import TimeSeries
from darts.models import RNNModel
frame = pd.read_csv(sys.argv[1], index_col="Date", parse_dates=True).loc["2018-02-13":"2023-02-10"]  # fit's rows
series = TimeSeries.from_values(frame["Close"].to_numpy("float32"))
train, rest = series.split_after(0.7)
model = RNNModel(model="LSTM", input_chunk_length=16, training_length=17, hidden_dim=64, n_rnn_layers=2,
                 n_epochs=20, batch_size=16, random_state=42, pl_trainer_kwargs={"enable_progress_bar": False,
                 "accelerator": "cpu"})
model.fit(train, verbose=False)
model.historical_forecasts(series, start=0.85, forecast_horizon=1, retrain=False, verbose=False)
"""
DATA = Path(__file__).resolve().parents[1] / "keras_seq" / "data" / "dji_daily.csv.gz"


def timed(command: list[str], env: dict) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of one child process."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(command[:3])} failed: {process.stderr.read().decode()[-2000:]}")
    return seconds, usage.ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", default=None)
    parser.add_argument("--darts-python", default=None,
                        help="Python of another venv with darts (and torch) installed, for the darts row.")
    args = parser.parse_args()
    script = str(Path(sys.executable).with_name("keras-seq"))
    base = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")} | {"KERAS_BACKEND": "jax"}
    with tempfile.TemporaryDirectory() as folder:
        fit = [script, "fit", "--out", str(Path(folder) / "runs"), "-q"]
        rows = {"no cache": (fit, base | {"KERAS_SEQ_JAX_CACHE": "0"}),
                "cache": (fit, base | {"XDG_CACHE_HOME": str(Path(folder) / "cache")})}
        darts = args.darts_python or (sys.executable if importlib.util.find_spec("darts") is not None else None)
        if darts is not None:
            rows["darts RNNModel"] = ([darts, "-c", DARTS, str(DATA)], base)
        else:
            print("darts is not installed here: its row is left out (pip install darts, with torch==2.13.0 first, "
                  "or give --darts-python, the interpreter of a venv that has it)")
        timed(*rows["cache"])  # fills the cache
        found = {name: [] for name in rows}
        for _ in range(args.rounds):
            for name, (command, env) in rows.items():
                found[name].append(timed(command, env))
    medians = {name: (statistics.median(s for s, _ in runs), statistics.median(m for _, m in runs))
               for name, runs in found.items()}
    print(f"\nthe default `keras-seq fit` (^DJI LSTM, 20 epochs), {args.rounds} rounds in turns, {os.cpu_count()} CPUs")
    print("\n| run | wall s (median) | peak RSS MiB (median) | wall / cache |\n|---|---|---|---|")
    for name, (seconds, mib) in medians.items():
        print(f"| {name} | {seconds:.1f} | {mib:.0f} | {seconds / medians['cache'][0]:.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": found, "medians": medians}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
