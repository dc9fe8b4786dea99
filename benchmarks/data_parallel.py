"""Data-parallel training on jax: seconds per epoch on 1 and on N devices, and the losses they reach.

    python benchmarks/data_parallel.py                  # the default ^DJI LSTM, 1 and 2 devices
    python benchmarks/data_parallel.py --devices 1,2,4 --batch-size 64 --json out.json

One process on the jax backend; keras-seq asks XLA for the largest device
count as host devices before jax loads (on a GPU host the GPUs are used).
Configurations run in turns, `--repeats` times each, in the same process:

- `1 device`: the default fit (keras-seq's compiled multi-step loop on a CPU);
- `1 device, Keras loop`: the same with `speed_options(looped_steps=False)`,
  Keras's own train function, which the data-parallel fits use;
- `N devices`: `TrainSpec(devices=N)`, `keras.distribution.DataParallel`.

Seconds per epoch are `(t(E2) - t(E1)) / (E2 - E1)` from the training wall
times of an E1- and an E2-epoch fit (compilation cancels out); medians over
the repeats, and the ratio to one device. The last column is the largest
difference of the E2-epoch fit's losses from the 1-device fit's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", default="1,2", help="Device counts, comma-separated (default 1,2).")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--epochs", default="2,6", help="E1,E2 (default 2,6).")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.devices.split(",")]
    short, long = (int(e) for e in args.epochs.split(","))

    from keras_seq.backend import request_host_devices, start_keras, use_backend

    use_backend("jax")
    request_host_devices(max(counts))
    from keras_seq.data.sources import DataSpec
    from keras_seq.data.windows import WindowSpec
    from keras_seq.runs.run import Run, RunSpecs, train_and_evaluate
    from keras_seq.models.spec import ModelSpec
    from keras_seq.config.speed import speed_options
    from keras_seq.training.loop import TrainSpec

    start_keras(max(counts))
    import jax

    frame = DataSpec().load()
    configs = [("1 device", 1, True), ("1 device, Keras loop", 1, False)] + [
        (f"{n} devices", n, True) for n in counts if n > 1]
    seconds = {name: [] for name, _, _ in configs}
    losses = {}
    for _ in range(args.repeats):
        for name, devices, looped in configs:
            times = {}
            for epochs in (short, long):
                train = TrainSpec(epochs=epochs, batch_size=args.batch_size, devices=devices)
                with speed_options(looped_steps=looped):
                    run = Run.of(RunSpecs(DataSpec(), WindowSpec(), ModelSpec(), train, "jax"), frame)
                    fitted = train_and_evaluate(run, splits=(), verbose=0)
                times[epochs] = fitted.seconds
            seconds[name].append((times[long] - times[short]) / (long - short))
            losses[name] = fitted.history["loss"]
    print(f"jax {jax.__version__}, {jax.device_count()} devices ({jax.devices()[0].platform}), default ^DJI LSTM, "
          f"batch {args.batch_size}, median of {args.repeats}")
    print(f"{'configuration':<24} {'s/epoch':>8} {'vs 1 device':>12} {'max |loss diff|':>16}")
    base = statistics.median(seconds["1 device"])
    rows = []
    for name, _, _ in configs:
        median = statistics.median(seconds[name])
        diff = max(abs(a - b) for a, b in zip(losses[name], losses["1 device"]))
        rows.append({"configuration": name, "seconds_per_epoch": median, "ratio": median / base, "loss_diff": diff})
        print(f"{name:<24} {median:>8.3f} {median / base:>11.2f}x {diff:>16.2e}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as stream:
            json.dump({"rows": rows, "seconds": seconds}, stream, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
