"""`keras-seq tune` processes: two workers on one journal file, and a study on SQLite interrupted and resumed."""

from __future__ import annotations

import os
import signal
import time

from optuna.trial import TrialState
import pytest

from test_tuning import RECIPE, console, study_of


def lr_search(tmp_path, epochs: int):
    """test_tuning's recipe searching the learning rate alone: every trial has the same shapes, so the workers
    compile each step once between them (the run's shared JAX cache) and the test time is their coordination."""
    path = tmp_path / "lr.toml"
    path.write_text(RECIPE.replace("epochs = 1", f"epochs = {epochs}").replace("[tune.model]\nunits = [4, 8]\n", ""),
                    encoding="utf-8")
    return path


@pytest.mark.slow
def test_two_workers_share_one_journal_and_lose_or_repeat_no_trial(tmp_path):
    process = console("--recipe", lr_search(tmp_path, 1), "--trials", "3", "--workers", "2", "--study", "two",
                      "--out", tmp_path, "--no-refit", "-q")
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err
    study = study_of(tmp_path / "two")
    assert sorted(t.number for t in study.trials) == [0, 1, 2]  # quotas of 2 and 1: exactly --trials
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.trials)
    workers = {t.user_attrs["worker"] for t in study.trials}
    assert len(workers) == 2  # both processes ran trials
    params = [tuple(sorted(t.params.items())) for t in study.trials]
    assert len(set(params)) == 3  # each worker its own suggestions: no trial run twice
    assert not (tmp_path / "two" / "best").exists() and "3 trials counted" in out


@pytest.mark.slow
def test_an_interrupted_study_on_sqlite_resumes_its_cut_trial_and_ends_with_every_trial(tmp_path):
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    # 300 epochs: its steps are compiled already (the run's shared JAX cache), so 100 epochs could end before the
    # test's SIGINT on a busy machine; the signal is sent at the first reported epoch
    args = ["--recipe", lr_search(tmp_path, 300), "--trials", "1", "--storage", storage, "--study", "cut",
            "--out", tmp_path, "--no-refit", "-q"]
    process = console(*args)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        try:
            running = [t for t in study_of(tmp_path / "cut", storage).trials
                       if t.state == TrialState.RUNNING and len(t.intermediate_values) >= 1]
        except KeyError:  # the study is not created yet
            running = []
        if running:
            break
        time.sleep(0.05)
    assert process.poll() is None, "the trial ended before the test could interrupt it"
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 130 and len(err.strip().splitlines()) == 1, err
    assert "interrupted; the study in" in err and "run again when you give the same command" in err
    (cut,) = study_of(tmp_path / "cut", storage).trials
    assert cut.state == TrialState.FAIL and cut.user_attrs["interrupted"] is True

    resumed = console(*args)
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err
    trials = study_of(tmp_path / "cut", storage).trials
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE]
    assert trials[1].user_attrs["retry_of"] == 0 and trials[1].params == cut.params  # the cut trial, again
    assert len(trials[1].intermediate_values) == 300 and "1 trial counted" in out


def _children(pid: int) -> list[int]:
    from pathlib import Path

    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(pid):
            found.append(int(status.parent.name))
    return found


def _running(pid: int) -> bool:
    from pathlib import Path

    try:
        state = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("State:"))
    except (OSError, StopIteration):
        return False
    return "Z" not in state.split()[1]


@pytest.mark.slow
def test_tune_workers_end_when_their_parent_is_killed(tmp_path):
    process = console("--recipe", lr_search(tmp_path, 5000), "--trials", "2", "--workers", "2", "--study", "orphans",
                      "--out", tmp_path, "--no-refit", "-q")
    deadline = time.monotonic() + 300
    workers = []
    while time.monotonic() < deadline and process.poll() is None and len(workers) < 2:
        workers = _children(process.pid)
        time.sleep(0.1)
    assert len(workers) == 2, "the workers did not start"
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    deadline = time.monotonic() + 30  # a trial of 5000 epochs runs for minutes: only the parent's death ends it
    while time.monotonic() < deadline and any(map(_running, workers)):
        time.sleep(0.2)
    left = [pid for pid in workers if _running(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left
