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

On a shared 2-core machine one process can run 40% slower than the next for
its whole life, whatever it runs. So every worker runs `--repeats` times, the
workers taking turns (PyTorch, tensorflow, jax, ..., then again), and each
figure is the median over those processes.
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


# Variants of keras-seq's fit path, for comparison (each a separate worker process):
#   keras-seq       the defaults (`keras-seq fit`);
#   keras-defaults  tensorflow with compile()'s defaults (steps_per_execution=1);
#   keras-layers    Keras's own SimpleRNN and LSTM, whose input projection stays inside the loop;
#   scan-unroll-1   keras-seq's scan with 1 step per iteration (the CPU default);
#   scan-unroll-8   keras-seq's scan with 8 steps per iteration (the GPU default);
#   jax-gradient    keras-seq's LSTM scan differentiated by jax, not by its hand-written gradient;
#   keras-loop      Keras's own jax train function: one compiled call per batch, not one per execution.
# On a GPU, keras-layers' LSTM is Keras's cuDNN path.
VARIANTS = ("keras-seq", "keras-defaults", "keras-layers", "scan-unroll-1", "scan-unroll-8", "jax-gradient", "keras-loop")


def keras_worker(backend: str, archs, shape: dict, epochs: int, started: float, settings: str) -> dict:
    """keras-seq's fit path: make_windows -> build_model -> compile_trainer -> fit(fit_data(...)).

    Where TensorFlow is not installed (a GPU machine with jax alone), tf.data is
    not there either: the same windows are then fed to `fit` as arrays.
    """
    os.environ["KERAS_BACKEND"] = backend
    from keras_seq.backend import use_backend

    use_backend(backend)
    has_tf = importlib.util.find_spec("tensorflow") is not None
    if has_tf:
        from keras_seq.backend import import_keras

        keras = import_keras()
    else:
        import keras
    import pandas as pd

    from keras_seq.models import builders
    from keras_seq.config.speed import speed_options
    from keras_seq.training.loop import TrainSpec, compile_trainer, fit_data

    spec = TrainSpec(batch_size=shape["batch"], seed=0)
    if settings == "keras-defaults":  # what a plain compile() does
        spec = TrainSpec(batch_size=shape["batch"], seed=0, steps_per_execution=1, jit_compile="auto")
    options = {"keras-layers": {"keras_layers": True}, "jax-gradient": {"lstm_gradient": False},
               "keras-loop": {"looped_steps": False}}.get(settings, {})
    if settings.startswith("scan-unroll-"):
        options = {"scan_unroll": int(settings.rsplit("-", 1)[1])}
    with speed_options(**options):  # the fast paths this variant turns off, for its fits only
        values = series(shape)
        if has_tf:
            from keras_seq.data.windows import make_windows

            frame = pd.DataFrame(values, columns=[f"f{i}" for i in range(values.shape[1])],
                                 index=pd.bdate_range("1990-01-01", periods=len(values)))
            columns = list(frame.columns)
            windows = make_windows(frame, target=columns[0], features=columns, window=shape["window"],
                                   target_kind="sequence", splits=(1.0, 0.0, 0.0), batch_size=shape["batch"], seed=0)
            data, fit_args = fit_data(windows, "train"), {}  # what train_model fits on
            source = "WindowBatches (make_windows)"
        else:
            x, y = sequence_windows(values, shape["window"])
            data, fit_args, source = x, {"y": y, "batch_size": shape["batch"], "shuffle": True}, "arrays (no tensorflow)"
        results = {}
        for arch in archs:
            keras.utils.set_random_seed(0)
            model = builders.build_model(arch, window=shape["window"], n_features=shape["features"],
                                         target_kind="sequence", units=shape["units"], layers=shape["layers"],
                                         allow_future_leak=True)
            trainer = compile_trainer(model, spec)
            timer = EpochTimer(started)
            trainer.fit(data, epochs=epochs, verbose=0, callbacks=[timer.keras_callback(keras)], **fit_args)
            results[arch] = timer.summary(shape["windows"])
            started = None  # only the first arch measures start-up
        return {"backend": backend, "settings": settings, "archs": results, "data": source, "device": _keras_device(backend),
                "steps_per_execution": spec.steps_per_execution, "jit_compile": str(spec.jit_compile)}


def _keras_device(backend: str) -> str:
    if backend == "jax":
        import jax

        return str(jax.devices()[0].device_kind)
    return "cpu"


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


def torch_worker(archs, shape: dict, epochs: int, started: float, feed: str) -> dict:
    """The tutorial's loop: nn.RNN / nn.LSTM / nn.GRU, a per-step Linear head, Adam, shuffled batches.

    `feed` "loader" is the tutorial's DataLoader over a TensorDataset (batch 16,
    shuffle=True); "tensors" slices batches from the whole tensors with one
    permutation per epoch, PyTorch's fastest plain feed. On a GPU the windows
    live on the device (cuDNN's fused kernels) and only "tensors" is used.
    """
    import torch
    from torch import nn

    torch.manual_seed(0)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    x, y = sequence_windows(series(shape), shape["window"])
    x, y = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
    batch = shape["batch"]

    def batches():
        if feed == "loader":
            yield from torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=batch, shuffle=True)
            return
        order = torch.randperm(len(x), device=device)
        for first in range(0, len(x), batch):
            index = order[first:first + batch]
            yield x[index], y[index]

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
        model = Net(arch).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        criterion = nn.MSELoss()
        timer = EpochTimer(started)
        for _ in range(epochs):
            timer.begin_epoch()
            for inputs, targets in batches():
                timer.begin_step()
                optimizer.zero_grad()
                loss = criterion(model(inputs), targets)
                loss.backward()
                optimizer.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            timer.end_epoch()
        results[arch] = timer.summary(len(x))
        started = None
    kind = f"cuDNN on {torch.cuda.get_device_name()}" if device.type == "cuda" else "eager, CPU"
    how = "DataLoader" if feed == "loader" else "sliced tensors"
    return {"backend": "pytorch-loop", "settings": f"torch {torch.__version__}, {kind}, {how}", "archs": results,
            "device": device.type, "feed": feed}


# === Orchestration ===


def run_worker(args: list[str], timeout: float | None = None) -> dict | None:
    command = [sys.executable, __file__, "--worker", *args]
    env = {**os.environ, "BENCH_STARTED": repr(time.time()), "TF_CPP_MIN_LOG_LEVEL": "3"}
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"  failed: {' '.join(args)}: over {timeout:.0f} s")
        return None
    if done.returncode != 0:
        print(f"  failed: {' '.join(args)}: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else '?'}")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def median_run(results: list[dict]) -> dict:
    """One worker's processes as one run: each arch's figures are the medians over the processes."""
    run = dict(results[0])
    run["archs"] = {}
    for arch in results[0]["archs"]:
        per_process = [r["archs"][arch] for r in results]
        seconds = statistics.median(m["seconds_per_epoch"] for m in per_process)
        n_windows = per_process[0]["windows_per_second"] * per_process[0]["seconds_per_epoch"]
        firsts = [m["start_to_first_step"] for m in per_process if m["start_to_first_step"] is not None]
        run["archs"][arch] = {**per_process[0], "seconds_per_epoch": seconds,
                              "windows_per_second": n_windows / seconds,  # from the median epoch, as each process's
                              "start_to_first_step": statistics.median(firsts) if firsts else None,
                              "per_process": [round(m["seconds_per_epoch"], 4) for m in per_process],
                              "epochs": [m["epochs"] for m in per_process]}
    return run


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
    parser.add_argument("--repeats", type=int, default=3,
                        help="Processes per worker, run in turns; figures are their median (default 3).")
    parser.add_argument("--large", action="store_true", help="The large job: 65,536 windows of 64 x 5, hidden 256, batch 512.")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="Keras backends to try, if installed.")
    parser.add_argument("--keras-defaults", action="store_true",
                        help="Also time the tensorflow backend with Keras's compile() defaults (steps_per_execution=1).")
    parser.add_argument("--variants", default="",
                        help="Also time these variants on jax, comma-separated: keras-layers (Keras's own SimpleRNN "
                             "and LSTM), scan-unroll-1, scan-unroll-8, jax-gradient (the LSTM's scan differentiated by jax), keras-loop (one "
                             "compiled call per batch).")
    parser.add_argument("--no-fit-memory", action="store_true", help="Skip the default `keras-seq fit` memory run.")
    parser.add_argument("--no-reference", action="store_true", help="Skip the PyTorch loop (no ratios).")
    parser.add_argument("--json", default=None, help="Also write the results here.")
    parser.add_argument("--worker-timeout", type=float, default=None, help="Give up on a worker after this many seconds.")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    shape = LARGE if args.large else TUTORIAL
    archs = [a.strip() for a in args.archs.split(",") if a.strip()]
    unknown = [v for v in args.variants.split(",") if v.strip() and v.strip() not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant {unknown[0]!r}; expected one of: {', '.join(VARIANTS[2:])}")

    if args.worker:
        started = float(os.environ["BENCH_STARTED"])
        kind = args.worker[0]
        if kind == "pytorch-loop":
            result = torch_worker(archs, shape, args.epochs, started, args.worker[1])
        else:
            result = keras_worker(kind, archs, shape, args.epochs, started, args.worker[1])
        print(json.dumps(result))
        return

    from keras_seq.backend import DEFAULT_BACKEND

    print(f"shapes: {shape}; {args.epochs} epochs per model, the first a warm-up; {os.cpu_count()} CPUs; "
          f"{args.repeats} processes per worker, in turns")
    workers = []  # (label, worker arguments)
    if args.no_reference:
        pass
    elif importlib.util.find_spec("torch"):
        import torch  # which feeds: the tutorial's DataLoader on CPU (the reference), sliced tensors too

        for feed in ("tensors",) if torch.cuda.is_available() else ("loader", "tensors"):
            workers.append((f"PyTorch loop ({feed})", ["pytorch-loop", feed]))
    else:
        print("PyTorch not installed (pip install torch==2.13.0): no ratios.")
    for backend in [b.strip() for b in args.backends.split(",")]:
        if backend == "torch" and not importlib.util.find_spec("torch") or not importlib.util.find_spec(backend):
            continue
        variants = ["keras-seq"] + (["keras-defaults"] if args.keras_defaults and backend == "tensorflow" else [])
        if backend == "jax":
            variants += [v.strip() for v in args.variants.split(",") if v.strip()]
        workers += [(f"keras-seq on {backend} ({settings})", [backend, settings]) for settings in variants]
    shared = ["--archs", args.archs, "--epochs", str(args.epochs)] + (["--large"] if args.large else [])
    repeats = {label: [] for label, _ in workers}
    for turn in range(args.repeats):
        for label, worker in workers:
            print(f"{label}, process {turn + 1} of {args.repeats} ...", flush=True)
            result = run_worker([*worker, *shared], args.worker_timeout)
            if result:
                repeats[label].append(result)
    runs = [median_run(results) for results in repeats.values() if results]
    reference = next((r for r in runs if r["backend"] == "pytorch-loop"), None)

    print()
    header = f"{'arch':<6}" + "".join(f"{_label(r):>28}" for r in runs)
    print("seconds per epoch (windows per second)"
          + (f", ratio = {_label(reference)} s / keras-seq s (above 1: keras-seq is faster)" if reference else ""))
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
    fastest_torch = next((r for r in runs if r.get("feed") == "tensors"), None)
    if fastest_torch and fastest_torch is not reference:
        for r in runs:
            if r["backend"] != "pytorch-loop" and r["settings"] == "keras-seq":
                print(f"{_label(r)} against PyTorch (sliced tensors): " + ", ".join(
                    f"{arch} x{fastest_torch['archs'][arch]['seconds_per_epoch'] / r['archs'][arch]['seconds_per_epoch']:.2f}"
                    for arch in archs))
    for r in runs:
        print(f"{_label(r)}: {r['settings']}" + (f", data {r['data']}, device {r['device']}" if "data" in r else ""))
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
        return "PyTorch loop" + (" (tensors)" if run.get("feed") == "tensors" and run["device"] == "cpu" else "")
    return run["backend"] + ("" if run["settings"] == "keras-seq" else f" {run['settings']}")


if __name__ == "__main__":
    main()
