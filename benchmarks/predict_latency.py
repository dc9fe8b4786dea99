"""Inference latency and throughput of keras-seq models: Keras vs SavedModel vs onnxruntime.

For each arch (default size: window 16, 1 feature, 64 units, 2 layers), prints
single-window latency (p50 and p99, milliseconds) and 1024-window throughput
(windows per second) for:
- Keras `model.predict` (what `model.predict(x)` costs a user),
- a direct Keras call `model(x, training=False)`,
- the exported SavedModel's `serving_default` signature,
- the exported ONNX model in onnxruntime.

Weights are random (latency does not depend on their values). `--heads` picks
the output: `point` (one value per step), `quantile` (a quantile head at 0.1,
0.5, 0.9), `normal` (a normal distribution head returning those quantiles) or
`conformal` (80% conformal intervals around the point forecast: 3 values).
Run:
    python benchmarks/predict_latency.py [--archs lstm,gru] [--repeats 200] [--json out.json]
    python benchmarks/predict_latency.py --archs lstm --heads point,quantile,normal,conformal --runtimes onnxruntime
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")


HEADS = {"point": {}, "quantile": {"quantiles": (0.1, 0.5, 0.9)},
         "normal": {"distribution": "normal", "quantiles": (0.1, 0.5, 0.9)}, "conformal": {"conformal": (0.8,)}}


def timings(run, x, repeats: int) -> list[float]:
    for _ in range(5):  # warm-up: tracing, allocation
        run(x)
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(x)
        samples.append(time.perf_counter() - start)
    return samples


def percentile(samples, q) -> float:
    import numpy as np

    return float(np.percentile(samples, q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", default="drnn,brnn,lstm,gru")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--heads", default="point", help="some of: " + ", ".join(HEADS))
    parser.add_argument("--runtimes", default="keras.predict,keras call,savedmodel,onnxruntime")
    parser.add_argument("--json", default=None, help="Also write the figures to this JSON file.")
    args = parser.parse_args()

    from keras_seq.backend import import_keras, use_backend

    use_backend("tensorflow")
    keras = import_keras()
    import numpy as np

    from keras_seq.data.windows import Scaling
    from keras_seq.artifacts.export import write_artifact
    from keras_seq.models import build_model

    scaling = Scaling(("Close",), (27378.6,), (3249.0,), "Close", 27378.6, 3249.0)
    rng = np.random.default_rng(0)
    one = (27000 + 3000 * rng.normal(size=(1, 16, 1))).astype("float32")
    many = (27000 + 3000 * rng.normal(size=(1024, 16, 1))).astype("float32")
    results = []
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus; "
          f"keras {keras.__version__}, repeats {args.repeats}")
    header = f"{'arch':<6} {'head':<10} {'runtime':<14} {'p50 ms':>8} {'p99 ms':>8} {'1024-window windows/s':>22}"
    print(header)
    print("-" * len(header))
    wanted = args.runtimes.split(",")
    for arch, head in ((a, h) for a in args.archs.split(",") for h in args.heads.split(",")):
        keras.utils.set_random_seed(0)
        model = build_model(arch, window=16, n_features=1, scaling=scaling, **HEADS[head])
        with tempfile.TemporaryDirectory() as folder:
            runners = {
                "keras.predict": lambda x: model.predict(x, verbose=0),
                "keras call": lambda x: model(x, training=False),
            }
            for fmt, label in (("savedmodel", "savedmodel"), ("onnx", "onnxruntime")):
                if label in wanted:
                    _, runner, _ = write_artifact(fmt, model, Path(folder))
                    runners[label] = runner
            for label, run in ((k, v) for k, v in runners.items() if k in wanted):
                single = timings(run, one, args.repeats)
                batch = timings(run, many, max(5, args.repeats // 20))
                row = {
                    "arch": arch, "head": head, "runtime": label,
                    "p50_ms": 1e3 * percentile(single, 50), "p99_ms": 1e3 * percentile(single, 99),
                    "windows_per_s": 1024 / percentile(batch, 50),
                }
                results.append(row)
                print(f"{arch:<6} {head:<10} {label:<14} {row['p50_ms']:>8.3f} {row['p99_ms']:>8.3f} {row['windows_per_s']:>22,.0f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
