"""`keras-seq tune` end to end: 20 trials of the default space on ^DJI with 2 workers, and a killed study resumed.

    python benchmarks/tune.py                          # 20 trials, 2 workers, pruning; then the kill test
    python benchmarks/tune.py --trials 8 --epochs 5 --kill-after 3 --json out.json

Two studies, each in its own temporary folder, each a real `keras-seq tune`
process (journal storage, the default space and pruner, the default fit's
20 epochs unless `--epochs`):

- `whole`: run to the end; its wall time, the trials' states and the best one.
- `killed`: the parent and its workers are killed with SIGKILL once
  `--kill-after` trials have finished, then the same command runs again.
  The table says how many trials it ends with (it should be `--trials`, the
  cut ones run again with their parameters) and whether any parameters ran
  twice outside those retries.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def tune_command(out: Path, args) -> list[str]:
    script = Path(sys.executable).with_name("keras-seq")
    return [str(script), "tune", "--trials", str(args.trials), "--workers", str(args.workers), "--epochs",
            str(args.epochs), "--study", "bench", "--out", str(out), "--no-refit", "-q"]


def load(out: Path):
    import optuna
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    storage = optuna.storages.JournalStorage(JournalFileBackend(str(out / "bench" / "study.journal")))
    return optuna.load_study(study_name="bench", storage=storage)


def states(study) -> dict:
    found = {}
    for trial in study.trials:
        found[trial.state.name.lower()] = found.get(trial.state.name.lower(), 0) + 1
    return found


def whole(args) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        done = subprocess.run(tune_command(Path(folder), args), capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if done.returncode:
            sys.exit(f"tune failed: {done.stderr.strip()[-2000:]}")
        study = load(Path(folder))
        best = study.best_trial
        return {"seconds": seconds, "states": states(study), "best": {"number": best.number, "value": best.value,
                                                                       "params": best.params}}


def killed(args) -> dict:
    """Kill the tune and its workers after `kill_after` finished trials, resume, and count what the study holds."""
    from optuna.trial import TrialState

    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        process = subprocess.Popen(tune_command(out, args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        while process.poll() is None:
            try:
                finished = [t for t in load(out).trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
            except (KeyError, FileNotFoundError):
                finished = []
            if len(finished) >= args.kill_after:
                break
            time.sleep(0.5)
        children = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout.split()
        for pid in [process.pid, *map(int, children)]:
            os.kill(pid, signal.SIGKILL)
        process.wait()
        time.sleep(0.5)
        cut = [t.number for t in load(out).trials if t.state == TrialState.RUNNING]
        resumed = subprocess.run(tune_command(out, args), capture_output=True, text=True)
        if resumed.returncode:
            sys.exit(f"the resumed tune failed: {resumed.stderr.strip()[-2000:]}")
        trials = load(out).trials
        counted = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
                   or (t.state == TrialState.FAIL and "error" in t.user_attrs)]
        retries = {t.user_attrs["retry_of"]: t for t in trials if "retry_of" in t.user_attrs}
        fresh = [tuple(sorted(t.params.items())) for t in counted if "retry_of" not in t.user_attrs]
        return {"cut": cut, "retried": sorted(retries), "retries_kept_params": all(
                    retries[n].params == trials[n].params for n in retries if trials[n].params),
                "counted": len(counted), "duplicated": len(fresh) - len(set(fresh)), "states": states(load(out))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--kill-after", type=int, default=5, help="Finished trials before the kill (0: no kill test).")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    print(f"{args.trials} trials of the default space on ^DJI, {args.workers} workers, {args.epochs} epochs, "
          f"{os.cpu_count()} CPUs")
    report = {"whole": whole(args)}
    w = report["whole"]
    print("\n| study | wall s | states | best trial | best val MASE |\n|---|---|---|---|---|")
    print(f"| whole | {w['seconds']:.0f} | {w['states']} | {w['best']['number']} | {w['best']['value']:.4f} |")
    print(f"\nbest parameters: {w['best']['params']}")
    if args.kill_after:
        report["killed"] = k = killed(args)
        print("\n| killed study | trials cut by the kill | retried | retries kept params | counted at the end "
              "| parameters run twice |\n|---|---|---|---|---|---|")
        print(f"| SIGKILL after {args.kill_after} finished | {k['cut']} | {k['retried']} | {k['retries_kept_params']} "
              f"| {k['counted']} of {args.trials} | {k['duplicated']} |")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
