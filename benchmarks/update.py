"""`keras-seq update` against a refit from scratch: accuracy on the same newest test rows, and wall time.

    python benchmarks/update.py                 # 3 seeds
    python benchmarks/update.py --seeds 1 --arch gru

For each seed, the default LSTM (window 16, 64 units x 2 layers, 20 epochs,
70/15/15 splits) is fitted on ^DJI 2018-02-13..2022-06-30 (the parent).
Then, on ^DJI up to 2023-02-10:
- update: `update_run(parent, end=2023-02-10, epochs=5)`: the parent's
  weights, optimizer state and scaling, validation and test spans moved to
  the newest rows;
- refit: a new fit on the same rows with the same spans (`split_steps` of
  the update) and options, 20 epochs.
Both are scored on the same test rows, beside the stale parent on them and
persistence. Prints MAE mean ± std over seeds and the median wall seconds of
each way (the update's and the refit's whole call, data to folder).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from accuracy import mean_std  # noqa: E402


def one_seed(seed: int, arch: str, epochs: int, update_epochs: int, folder: Path) -> dict:
    import keras_seq
    from keras_seq.data.sources import DataSpec
    from keras_seq.data.windows import WindowSpec
    from keras_seq.models.spec import ModelSpec
    from keras_seq.training.loop import TrainSpec
    from keras_seq.runs.update import update_run

    model, train = ModelSpec(arch=arch), TrainSpec(epochs=epochs, seed=seed)
    parent = keras_seq.fit(DataSpec(start="2018-02-13", end="2022-06-30"), WindowSpec(), model, train,
                           out=folder / f"parents-{seed}", verbose=0)
    clock = time.perf_counter()
    child = update_run(parent.path, end="2023-02-10", epochs=update_epochs, verbose=0)
    update_seconds = time.perf_counter() - clock
    steps = json.loads((child.path / "config.json").read_text())["windows"]["split_steps"]
    clock = time.perf_counter()
    refit = keras_seq.fit(DataSpec(start="2018-02-13", end="2023-02-10"), WindowSpec(split_steps=tuple(steps)), model,
                          train, out=folder / f"refits-{seed}", verbose=0)
    refit_seconds = time.perf_counter() - clock
    ours, theirs = child.report.to_dict(), refit.report.to_dict()
    assert (ours["first_date"], ours["last_date"], ours["windows"]) == (
        theirs["first_date"], theirs["last_date"], theirs["windows"]), "the two ways scored different rows"
    (stale,) = ours["others"].values()
    return {"seed": seed, "rows": f"{ours['first_date']}..{ours['last_date']} ({ours['windows']} windows)",
            "mae": {"parent, not updated": stale["mae"], "update": ours["model"]["mae"],
                    "refit": theirs["model"]["mae"], "persistence": ours["persistence"]["mae"]},
            "seconds": {"update": update_seconds, "refit": refit_seconds}}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--arch", default="lstm")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--update-epochs", type=int, default=5)
    args = parser.parse_args(argv)
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import warnings

    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as folder:
        records = [one_seed(seed, args.arch, args.epochs, args.update_epochs, Path(folder))
                   for seed in range(1, args.seeds + 1)]
    print(f"\n{args.arch}, parent {args.epochs} epochs on ^DJI 2018-02-13..2022-06-30; update {args.update_epochs} "
          f"epochs vs refit {args.epochs} epochs to 2023-02-10; test rows {records[0]['rows']}; seeds "
          f"1..{args.seeds}\n")
    print("| way | test MAE (mean ± std) | wall s (median) |\n|---|---:|---:|")
    for way in records[0]["mae"]:
        mean, std = mean_std([r["mae"][way] for r in records])
        seconds = [r["seconds"][way] for r in records if way in r["seconds"]]
        print(f"| {way} | {mean:.2f} ± {std:.2f} | {statistics.median(seconds):.1f} |" if seconds else
              f"| {way} | {mean:.2f} ± {std:.2f} | - |")


if __name__ == "__main__":
    main()
