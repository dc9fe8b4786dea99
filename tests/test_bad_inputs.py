"""The bad-input corpus (tests/bad_inputs/cases.toml), through the CLI's real entry point.

Every case runs `keras-seq` in an empty working folder (where `saved_models/`
would appear), and must exit non-zero with one line on stderr that holds the
expected words, no traceback, and no file created or changed: not in its
working folder, not in the artifacts it was given, not in the corpus's own
files. Every case runs in this process through `keras_seq.cli.main`; the
first case of each command also runs as the installed console script in a
new process (two at a time), where the same line must be all that reaches
stderr: nothing from TensorFlow's start-up, no warning, no traceback.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import io
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
    from keras_seq import DataSpec, ModelSpec, TrainSpec, WindowSpec, export, fit

    root = tmp_path_factory.mktemp("artifacts")
    # In this process (two fewer Keras start-ups); the cases run the console script too.
    run = fit(DataSpec(), WindowSpec(), ModelSpec(arch="gru", units=4, layers=1), TrainSpec(epochs=1),
              out=root / "runs", verbose=0).path
    export(run, "onnx,keras", out=root / "export")
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


def _in_process(args: list[str], cwd: Path):
    """`keras-seq ARGS` through `keras_seq.cli.main` in `cwd`: (exit code, stdout, stderr)."""
    from keras_seq.cli import main

    out, err, code = io.StringIO(), io.StringIO(), 0
    before = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main(args)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        os.chdir(before)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def outcomes(artifacts, tmp_path_factory) -> dict:
    """Run every case in this process, and each command's first case as a console script too.

    name -> {"in_process": (code, stdout, stderr), "console": CompletedProcess or None, "left": files left}.
    """
    watched = [artifacts["root"], CORPUS]
    before = {str(folder): files_under(folder) for folder in watched}
    work = tmp_path_factory.mktemp("cases")
    env = {key: value for key, value in os.environ.items() if key != "KERAS_BACKEND"}  # the CLI's default backend
    firsts = {case["args"][0]: case["name"] for case in reversed(CASES)}  # command -> its first case
    results = {}

    def arguments(case):
        return [arg.format(**{k: v for k, v in artifacts.items() if k != "root"}) for arg in case["args"]]

    def console(case):
        cwd = work / "console" / case["name"]
        cwd.mkdir(parents=True)
        return case["name"], (run_console(*arguments(case), cwd=cwd, env=env, timeout=600), files_under(cwd))

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        consoles = dict(pool.map(console, [case for case in CASES if case["name"] in firsts.values()]))
    for case in CASES:
        cwd = work / case["name"]
        cwd.mkdir()
        results[case["name"]] = {"in_process": _in_process(arguments(case), cwd), "left": files_under(cwd),
                                 "console": consoles.get(case["name"])}
    after = {str(folder): files_under(folder) for folder in watched}
    return {"cases": results, "unchanged": before == after, "before": before, "after": after}


def _check_one_line(case, code: int, out: str, err: str) -> None:
    lines = err.strip().splitlines()
    assert code == case.get("status", 1), err
    assert len(lines) == 1, err
    assert lines[0].startswith("Error: ") and case["words"] in lines[0], lines[0]
    assert "Traceback" not in out + err


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_bad_input_gets_one_clear_line_and_changes_nothing(case, outcomes):
    result = outcomes["cases"][case["name"]]
    _check_one_line(case, *result["in_process"])
    assert result["left"] == {}, f"files written: {sorted(result['left'])}"
    if result["console"] is not None:  # the first case of its command, as the console script in a new process
        done, left = result["console"]
        _check_one_line(case, done.returncode, done.stdout, done.stderr)
        assert left == {}, f"files written by the console script: {sorted(left)}"


@pytest.mark.slow
def test_every_command_runs_as_a_console_script_in_the_corpus(outcomes):
    console = {name for name, result in outcomes["cases"].items() if result["console"] is not None}
    assert {case["args"][0] for case in CASES if case["name"] in console} == set(COMMANDS)


@pytest.mark.slow
def test_no_case_touched_the_artifacts_or_the_corpus(outcomes):
    for folder, files in outcomes["before"].items():
        changed = {name for name in files.keys() | outcomes["after"][folder].keys()
                   if files.get(name) != outcomes["after"][folder].get(name)}
        assert not changed, f"changed under {folder}: {sorted(changed)}"
