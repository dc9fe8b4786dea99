"""Window pipeline speed and memory: `make_windows` on a long synthetic series.

    python benchmarks/pipeline_speed.py                  # 10 million rows
    python benchmarks/pipeline_speed.py --rows 1000000 --batch 256 --json out.json

Builds the tf.data pipeline of a 10-million-row random walk (window 16,
next-value target, splits 70/15/15), then reads the whole training split
once, through tf.data and as the numpy batches `fit` reads on jax and torch.
Prints windows per second and the peak resident memory above the
memory held before the series existed, next to what materialising every
training window at once would take: windows must stream, not be copied.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path


def rss_mib() -> float:
    """Current resident memory of this process, MiB (Linux /proc)."""
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--window", type=int, default=16)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    from keras_seq.backend import import_keras, use_backend

    use_backend("tensorflow")
    import_keras()
    import numpy as np
    import pandas as pd

    from keras_seq.data.windows import make_windows

    baseline = rss_mib()
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"Close": 100 + np.cumsum(rng.normal(size=args.rows))},
                         index=pd.date_range("1900-01-01", periods=args.rows, freq="min"))
    series_mib = rss_mib() - baseline

    began = time.perf_counter()
    windows = make_windows(frame, target="Close", window=args.window, batch_size=args.batch, seed=0)
    build_seconds = time.perf_counter() - began
    n_train = len(windows.starts("train"))

    began = time.perf_counter()
    seen = 0
    for x, y in windows.train:
        seen += int(x.shape[0])
    read_seconds = time.perf_counter() - began
    assert seen == n_train, (seen, n_train)

    # What `fit` reads on jax and torch: the same windows gathered with numpy (training.fit_data).
    began = time.perf_counter()
    order, seen = windows.epoch_starts("train", 0), 0
    for first in range(0, n_train, args.batch):
        x, y = windows.gather(order[first : first + args.batch])
        seen += len(x)
    array_seconds = time.perf_counter() - began
    assert seen == n_train, (seen, n_train)

    materialised = n_train * args.window * 4 / 2**20  # float32 inputs alone
    result = {
        "rows": args.rows,
        "window": args.window,
        "batch": args.batch,
        "train_windows": n_train,
        "build_seconds": build_seconds,
        "read_seconds": read_seconds,
        "windows_per_second": n_train / read_seconds,
        "array_batches_seconds": array_seconds,
        "array_batches_windows_per_second": n_train / array_seconds,
        "series_mib": series_mib,
        "peak_above_start_mib": peak_mib() - baseline,
        "materialised_inputs_mib": materialised,
    }
    print(f"{args.rows:,} rows, window {args.window}, batch {args.batch}: {n_train:,} training windows")
    print(f"pipeline built in {build_seconds:.2f} s; read once in {read_seconds:.1f} s = "
          f"{result['windows_per_second'] / 1e6:.2f} M windows/s")
    print(f"array batches (fit on jax and torch): read once in {array_seconds:.1f} s = "
          f"{result['array_batches_windows_per_second'] / 1e6:.2f} M windows/s")
    print(f"memory: series {series_mib:.0f} MiB; peak {result['peak_above_start_mib']:.0f} MiB above the start, "
          f"against {materialised:.0f} MiB for the training inputs materialised at once "
          "(the pipeline's memory grows with the rows, not with rows x window)")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
