"""Training speed: keras-seq's own fit path on every installed backend against
the tutorial's PyTorch training loop, measured side by side in one run.

    python benchmarks/train_speed.py                       # the tutorial's shapes, every arch
    python benchmarks/train_speed.py --large               # 65,536 windows of 64 x 5, hidden 256, batch 512
    python benchmarks/train_speed.py --archs lstm --epochs 5 --json out.json

The tutorial's shapes: ^DJI closes 2018-02-13..2023-02-10 cut into 1242
windows of 16 (target: the window shifted by one step), batch 16, hidden 64,
2 layers, Adam 1e-3. Both sides train on the same windows in the same
batches. Each backend runs in its own process (Keras fixes its backend at
import); every figure is the median over the timed epochs, after one warm-up
epoch. PyTorch is a benchmark-only dependency: `pip install torch==2.13.0`
(a CPU build on the project's machines).

Printed and written as JSON: seconds per epoch, windows per second, the ratio
PyTorch time / keras-seq time (above 1: keras-seq is faster), the time from
process start to the first training step, and the peak memory of a default
`keras-seq fit`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ARCHS = ("drnn", "brnn", "lstm", "gru")
BACKENDS = ("tensorflow", "jax", "torch")
TUTORIAL = dict(windows=1242, window=16, features=1, units=64, layers=2, batch=16)
LARGE = dict(windows=65536, window=64, features=5, units=256, layers=2, batch=512)


# === Data: the same windows for both sides ===


def series(shape: dict):
    """(values (rows, features) float64, target column index). DJI closes, or a synthetic random walk."""
    import numpy as np

    rows = shape["windows"] + shape["window"]
    if shape == TUTORIAL or (shape["features"] == 1 and rows == 1258):
        from keras_seq.data.sources import DataSpec

        return DataSpec().load()[["Close"]].to_numpy(dtype="float64")
    rng = np.random.default_rng(0)
    return np.cumsum(rng.normal(size=(rows, shape["features"])), axis=0) + 100.0


def sequence_windows(values, window: int):
    """Inputs (n, window, features) and targets (n, window, 1): the window shifted by one step, z-scored."""
    import numpy as np

    values = (values - values.mean(axis=0)) / values.std(axis=0)
    n = len(values) - window
    index = np.arange(n)[:, None] + np.arange(window)[None, :]
    return values[index].astype("float32"), values[index + 1, :1].astype("float32")


# === Workers: each runs in its own process and prints one JSON line ===


def keras_worker(backend: str, archs, shape: dict, epochs: int, started: float, settings: str) -> dict:
    """keras-seq's fit path: make_windows -> build_model -> compile_trainer -> fit."""
    os.environ["KERAS_BACKEND"] = backend
    from keras_seq.backend import import_keras, use_backend

    use_backend(backend)
    keras = import_keras()
    import pandas as pd

    from keras_seq.data.windows import make_windows
    from keras_seq.models.builders import build_model
    from keras_seq.training import TrainSpec, compile_trainer

    values = series(shape)
    frame = pd.DataFrame(values, columns=[f"f{i}" for i in range(values.shape[1])],
                         index=pd.bdate_range("1990-01-01", periods=len(values)))
    columns = list(frame.columns)
    spec = TrainSpec(batch_size=shape["batch"], seed=0)
    if settings == "keras-defaults":  # what a plain compile() does
        spec = TrainSpec(batch_size=shape["batch"], seed=0, steps_per_execution=1, jit_compile="auto")
    windows = make_windows(frame, target=columns[0], features=columns, window=shape["window"], target_kind="sequence",
                           splits=(1.0, 0.0, 0.0), batch_size=shape["batch"], seed=0)
    results = {}
    for arch in archs:
        keras.utils.set_random_seed(0)
        model = build_model(arch, window=shape["window"], n_features=shape["features"], target_kind="sequence",
                            units=shape["units"], layers=shape["layers"], allow_future_leak=True)
        trainer = compile_trainer(model, spec)
        timer = EpochTimer(started)
        trainer.fit(windows.train, epochs=epochs, verbose=0, callbacks=[timer.keras_callback(keras)])
        results[arch] = timer.summary(shape["windows"])
        started = None  # only the first arch measures start-up
    return {"backend": backend, "settings": settings, "archs": results,
            "steps_per_execution": spec.steps_per_execution, "jit_compile": str(spec.jit_compile)}


class EpochTimer:
    """Epoch wall times, and the time from process start to the first training step."""

    def __init__(self, started: float | None):
        self.started = started
        self.first_step = None
        self.times = []
        self._begin = None

    def begin_epoch(self):
        self._begin = time.perf_counter()

    def end_epoch(self):
        self.times.append(time.perf_counter() - self._begin)

    def begin_step(self):
        if self.first_step is None and self.started is not None:
            self.first_step = time.time() - self.started

    def keras_callback(self, keras):
        timer = self

        class Callback(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                timer.begin_epoch()

            def on_epoch_end(self, epoch, logs=None):
                timer.end_epoch()

            def on_train_batch_begin(self, batch, logs=None):
                timer.begin_step()

        return Callback()

    def summary(self, n_windows: int) -> dict:
        timed = self.times[1:] or self.times  # the first epoch compiles
        seconds = statistics.median(timed)
        return {"seconds_per_epoch": seconds, "windows_per_second": n_windows / seconds,
                "epochs": [round(t, 4) for t in self.times], "start_to_first_step": self.first_step}


def torch_worker(archs, shape: dict, epochs: int, started: float) -> dict:
    """The tutorial's loop: nn.RNN / nn.LSTM / nn.GRU, a per-step Linear head, Adam, shuffled batches."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    x, y = sequence_windows(series(shape), shape["window"])
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=shape["batch"], shuffle=True)

    class Net(nn.Module):
        def __init__(self, arch):
            super().__init__()
            kind = {"drnn": nn.RNN, "brnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[arch]
            self.rnn = kind(shape["features"], shape["units"], num_layers=shape["layers"], batch_first=True,
                            bidirectional=arch == "brnn")
            self.head = nn.Linear(shape["units"] * (2 if arch == "brnn" else 1), 1)

        def forward(self, inputs):
            out, _ = self.rnn(inputs)
            return self.head(out)

    results = {}
    for arch in archs:
        model = Net(arch)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        criterion = nn.MSELoss()
        timer = EpochTimer(started)
        for _ in range(epochs):
            timer.begin_epoch()
            for inputs, targets in loader:
                timer.begin_step()
                optimizer.zero_grad()
                loss = criterion(model(inputs), targets)
                loss.backward()
                optimizer.step()
            timer.end_epoch()
        results[arch] = timer.summary(len(x))
        started = None
    return {"backend": "pytorch-loop", "settings": f"torch {torch.__version__}, eager", "archs": results}


# === Orchestration ===


def run_worker(args: list[str]) -> dict | None:
    command = [sys.executable, __file__, "--worker", *args]
    env = {**os.environ, "BENCH_STARTED": repr(time.time()), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        print(f"  failed: {' '.join(args)}: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else '?'}")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def fit_memory() -> dict:
    """Peak resident memory and wall time of a default `keras-seq fit` (DJI, lstm, 20 epochs)."""
    import tempfile

    script = Path(sys.executable).with_name("keras-seq")
    with tempfile.TemporaryDirectory() as out:
        began = time.perf_counter()
        done = subprocess.run([str(script), "fit", "--out", out, "-q"], capture_output=True, text=True)
        seconds = time.perf_counter() - began
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"ok": done.returncode == 0, "peak_rss_mib": peak_kib / 1024, "seconds": seconds,
            "mae": _table_mae(done.stdout)}


def _table_mae(stdout: str):
    for line in stdout.splitlines():
        parts = line.split()
        if parts and parts[0] in ARCHS and len(parts) == 4:
            return float(parts[1])
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archs", default=",".join(ARCHS))
    parser.add_argument("--epochs", type=int, default=4, help="Epochs per model; the first is a warm-up (default 4).")
    parser.add_argument("--large", action="store_true", help="The large job: 65,536 windows of 64 x 5, hidden 256, batch 512.")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="Keras backends to try, if installed.")
    parser.add_argument("--keras-defaults", action="store_true",
                        help="Also time the tensorflow backend with Keras's compile() defaults (steps_per_execution=1).")
    parser.add_argument("--no-fit-memory", action="store_true", help="Skip the default `keras-seq fit` memory run.")
    parser.add_argument("--json", default=None, help="Also write the results here.")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    shape = LARGE if args.large else TUTORIAL
    archs = [a.strip() for a in args.archs.split(",") if a.strip()]

    if args.worker:
        started = float(os.environ["BENCH_STARTED"])
        kind = args.worker[0]
        if kind == "pytorch-loop":
            result = torch_worker(archs, shape, args.epochs, started)
        else:
            result = keras_worker(kind, archs, shape, args.epochs, started, args.worker[1])
        print(json.dumps(result))
        return

    from keras_seq.backend import DEFAULT_BACKEND

    print(f"shapes: {shape}; {args.epochs} epochs per model, the first a warm-up; {os.cpu_count()} CPUs")
    runs = []
    if importlib.util.find_spec("torch"):
        print("PyTorch loop ...", flush=True)
        runs.append(run_worker(["pytorch-loop", "eager", "--archs", args.archs, "--epochs", str(args.epochs)]
                               + (["--large"] if args.large else [])))
    else:
        print("PyTorch not installed (pip install torch==2.13.0): no ratios.")
    for backend in [b.strip() for b in args.backends.split(",")]:
        if backend == "torch" and not importlib.util.find_spec("torch") or not importlib.util.find_spec(backend):
            continue
        variants = ["keras-seq"] + (["keras-defaults"] if args.keras_defaults and backend == "tensorflow" else [])
        for settings in variants:
            print(f"keras-seq on {backend} ({settings}) ...", flush=True)
            runs.append(run_worker([backend, settings, "--archs", args.archs, "--epochs", str(args.epochs)]
                                   + (["--large"] if args.large else [])))
    runs = [r for r in runs if r]
    reference = next((r for r in runs if r["backend"] == "pytorch-loop"), None)

    print()
    header = f"{'arch':<6}" + "".join(f"{_label(r):>28}" for r in runs)
    print("seconds per epoch (windows per second)" + (", ratio = PyTorch s / keras-seq s" if reference else ""))
    print(header)
    for arch in archs:
        cells = []
        for r in runs:
            m = r["archs"].get(arch)
            cell = f"{m['seconds_per_epoch']:.3f} ({m['windows_per_second'] / 1000:.1f}k)"
            if reference and r is not reference:
                cell += f" x{reference['archs'][arch]['seconds_per_epoch'] / m['seconds_per_epoch']:.2f}"
            cells.append(f"{cell:>28}")
        print(f"{arch:<6}" + "".join(cells))
    print("start to first training step, s: " + ", ".join(
        f"{_label(r)} {r['archs'][archs[0]]['start_to_first_step']:.2f}" for r in runs))
    report = {"shape": shape, "epochs": args.epochs, "default_backend": DEFAULT_BACKEND, "runs": runs}
    if not args.no_fit_memory and not args.large:
        memory = fit_memory()
        report["fit_memory"] = memory
        print(f"default `keras-seq fit` ({DEFAULT_BACKEND}): peak RSS {memory['peak_rss_mib']:.0f} MiB, "
              f"{memory['seconds']:.1f} s wall, test MAE {memory['mae']}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        print(f"written to {args.json}")


def _label(run: dict) -> str:
    if run["backend"] == "pytorch-loop":
        return "PyTorch loop"
    return f"{run['backend']}" + (" keras-defaults" if run["settings"] == "keras-defaults" else "")


if __name__ == "__main__":
    main()
