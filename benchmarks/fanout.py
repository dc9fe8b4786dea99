"""A comparison's fits one after another, on `--jobs` local workers, and on a dask LocalCluster, side by side.

    python benchmarks/fanout.py                        # 4 archs x 2 seeds of the default ^DJI fit, 20 epochs
    python benchmarks/fanout.py --archs drnn,gru --repeats 1 --epochs 5 --turns 1

Each way is a real `keras-seq compare` process, in turns (`--turns` rounds,
medians printed), so every row pays its own imports and compilation. The
table gives the wall time, its ratio to the serial run, and whether every
figure training decides (comparison.json's runs, seconds aside) equals the
serial run's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def compare_command(out: Path, args, extra: list[str]) -> list[str]:
    script = Path(sys.executable).with_name("keras-seq")
    return [str(script), "compare", "--archs", args.archs, "--repeats", str(args.repeats), "--epochs",
            str(args.epochs), "--out", str(out), "-q", *extra]


def figures(out: Path) -> list:
    (folder,) = out.iterdir()
    runs = json.loads((folder / "comparison.json").read_text())["runs"]
    return [{k: v for k, v in run.items() if k != "train_seconds"} for run in runs]


def one(way: str, args, scheduler: str | None) -> tuple[float, list]:
    extra = {"serial": [], "jobs": ["--jobs", str(args.jobs)], "dask": ["--scheduler", scheduler or ""]}[way]
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        done = subprocess.run(compare_command(Path(tmp), args, extra), capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            sys.exit(f"{way}: keras-seq compare failed: {done.stderr.strip()[-400:]}")
        return seconds, figures(Path(tmp))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", default="drnn,brnn,lstm,gru")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--json", default=None, help="Also write the table's figures to this file.")
    args = parser.parse_args()

    from distributed import LocalCluster

    seconds, numbers = {"serial": [], "jobs": [], "dask": []}, {}
    with LocalCluster(n_workers=args.jobs, threads_per_worker=1, host="127.0.0.1", dashboard_address=None) as cluster:
        for _ in range(args.turns):
            for way in seconds:
                wall, numbers[way] = one(way, args, cluster.scheduler_address)
                seconds[way].append(wall)
    serial = statistics.median(seconds["serial"])
    fits = len(numbers["serial"])
    print(f"{args.archs} x {args.repeats} seeds, {args.epochs} epochs ({fits} runs), medians of {args.turns}")
    print("| way | wall s | vs serial | same figures as serial |")
    print("|---|---:|---:|---|")
    rows = {}
    for way, walls in seconds.items():
        label = {"serial": "one after another", "jobs": f"--jobs {args.jobs}",
                 "dask": f"dask LocalCluster, {args.jobs} workers"}[way]
        rows[way] = {"wall_s": statistics.median(walls), "same": numbers[way] == numbers["serial"]}
        print(f"| {label} | {rows[way]['wall_s']:.1f} | {serial / rows[way]['wall_s']:.2f}x | "
              f"{'yes' if rows[way]['same'] else 'NO'} |")
    print("(the dask workers are started once, before the first turn; each local --jobs run starts its own)")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
