"""The bad-input corpus (tests/bad_inputs/cases.toml), through the real console script.

Every case runs `keras-seq` in a new process, in an empty working folder (where
`saved_models/` would appear), and must exit non-zero with one line on stderr
that holds the expected words, no traceback, and no file created or changed:
not in its working folder, not in the artifacts it was given, not in the
corpus's own files. The cases run two at a time.
"""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import tomllib
from pathlib import Path

import pytest

from conftest import files_under, run_console

CORPUS = Path(__file__).parent / "bad_inputs"
CASES = tomllib.loads((CORPUS / "cases.toml").read_text(encoding="utf-8"))["case"]
COMMANDS = ("fit", "evaluate", "compare", "run", "export", "predict", "summary")


def test_the_corpus_is_large_and_covers_every_command():
    names = [case["name"] for case in CASES]
    assert len(names) == len(set(names)) and len(CASES) >= 40
    assert {case["args"][0] for case in CASES} == set(COMMANDS)


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _cut_in_half(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> dict:
    """A real trained run and export, and damaged copies of them."""
    root = tmp_path_factory.mktemp("artifacts")
    done = run_console("fit", "--arch", "gru", "--units", "4", "--layers", "1", "--epochs", "1",
                       "--out", root / "runs", "--quiet", timeout=600)
    assert done.returncode == 0, done.stderr
    (run,) = (root / "runs").iterdir()
    done = run_console("export", run, "--format", "onnx,keras", "--out", root / "export", timeout=600)
    assert done.returncode == 0, done.stderr
    places = {"files": CORPUS / "files", "run": run, "export": root / "export"}
    for name, source in (("tampered_run", run), ("truncated_run", run), ("tampered_export", root / "export"),
                         ("uncarded_export", root / "export")):
        places[name] = root / name
        shutil.copytree(source, places[name])
    _flip_a_byte(places["tampered_run"] / "model.keras")
    _cut_in_half(places["truncated_run"] / "model.keras")
    (places["truncated_run"] / "manifest.json").unlink()
    _flip_a_byte(places["tampered_export"] / "model.onnx")
    _cut_in_half(places["uncarded_export"] / "model.onnx")
    for card in places["uncarded_export"].glob("*.json"):
        card.unlink()
    places["root"] = root
    return places


@pytest.fixture(scope="module")
def outcomes(artifacts, tmp_path_factory) -> dict:
    """Run every case (two at a time); name -> (process, files left in its working folder)."""
    watched = [artifacts["root"], CORPUS]
    before = {str(folder): files_under(folder) for folder in watched}
    work = tmp_path_factory.mktemp("cases")
    env = {key: value for key, value in os.environ.items() if key != "KERAS_BACKEND"}  # the CLI's default backend

    def run(case):
        cwd = work / case["name"]
        cwd.mkdir()
        args = [arg.format(**{k: v for k, v in artifacts.items() if k != "root"}) for arg in case["args"]]
        done = run_console(*args, cwd=cwd, env=env, timeout=600)
        return case["name"], (done, files_under(cwd))

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(pool.map(run, CASES))
    after = {str(folder): files_under(folder) for folder in watched}
    return {"cases": results, "unchanged": before == after, "before": before, "after": after}


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_bad_input_gets_one_clear_line_and_changes_nothing(case, outcomes):
    done, left = outcomes["cases"][case["name"]]
    lines = done.stderr.strip().splitlines()
    assert done.returncode == case.get("status", 1), done.stderr
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("Error: ") and case["words"] in lines[0], lines[0]
    assert "Traceback" not in done.stdout + done.stderr
    assert left == {}, f"files written: {sorted(left)}"


@pytest.mark.slow
def test_no_case_touched_the_artifacts_or_the_corpus(outcomes):
    for folder, files in outcomes["before"].items():
        changed = {name for name in files.keys() | outcomes["after"][folder].keys()
                   if files.get(name) != outcomes["after"][folder].get(name)}
        assert not changed, f"changed under {folder}: {sorted(changed)}"
