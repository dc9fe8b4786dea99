"""Trust, round 3: what a hostile or careless resumed run, worker, recipe, cache or artifact can no longer do.

Each test builds its hostile input itself, small, and checks the one-line
message and exit code, and that nothing outside the expected place changed
(a listing with sizes and hashes before and after). SECURITY.md says what
these guarantee.
"""

from __future__ import annotations

import datetime
import json
import shutil
import time
from pathlib import Path

import pytest

from test_safety import hashes_under, killed_run, one_line_error, run_dir  # noqa: F401 - fixtures

# === 1. fit --resume publishes under the run's own name, never over another folder ===


def _resume_into(partial: Path, tmp_path: Path, name: str) -> Path:
    moved = tmp_path / name
    shutil.move(partial, moved)
    return moved


def test_a_resumed_partial_never_replaces_the_folder_its_name_points_at(killed_run, tmp_path, run_cli):
    from keras_seq.rundir import run_name

    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "thesis.tex").write_text("work")
    partial = _resume_into(killed_run, tmp_path, ".victim.abcd.partial")
    before = hashes_under(victim)
    code, _, err = run_cli("fit", "--resume", partial, "-q")
    assert code == 0, err
    assert hashes_under(victim) == before
    landed = [p for p in tmp_path.iterdir() if p.name.startswith("gru-")]
    created = json.loads((landed[0] / "config.json").read_text())["created"]
    assert len(landed) == 1 and landed[0].name == run_name("gru", datetime.datetime.fromisoformat(created))
    assert (landed[0] / "manifest.json").is_file() and not partial.exists()


def test_a_resumed_partial_lands_beside_a_complete_run_of_the_same_second(killed_run, tmp_path, run_cli):
    from keras_seq.rundir import run_name

    created = json.loads((killed_run / "config.json").read_text())["created"]
    complete = tmp_path / run_name("gru", datetime.datetime.fromisoformat(created))
    (complete / "export").mkdir(parents=True)
    (complete / "export" / "model.onnx").write_bytes(b"the other run's export")
    before = hashes_under(complete)
    code, _, err = run_cli("fit", "--resume", killed_run, "-q")
    assert code == 0, err
    assert hashes_under(complete) == before
    assert (tmp_path / f"{complete.name}-2" / "manifest.json").is_file()


def test_resuming_an_interrupted_folder_refuses_to_lose_files_its_manifest_does_not_list(killed_run, run_dir,
                                                                                         tmp_path, run_cli):
    from keras_seq.rundir import write_manifest

    folder = tmp_path / "gru-interrupted"
    shutil.copytree(killed_run, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "status": "interrupted", "result": {"epochs_run": 2}}))
    shutil.copy(run_dir / "model.keras", folder / "model.keras")
    write_manifest(folder)
    (folder / "thesis.tex").write_text("work")
    before = hashes_under(tmp_path)
    code, _, err = run_cli("fit", "--resume", folder, "-q")
    one_line_error(code, err, "holds 'thesis.tex', which its manifest.json does not list")
    assert hashes_under(tmp_path) == before


# === 2, 5, 11. A dask worker's result is keras-seq's own bytes, checked like a hostile folder ===

HOSTILE_WORKER = '''
"""A dask worker preload: keras-seq's fit replaced by what the file named in $HOSTILE_MODE asks for."""
import io, json, os, pathlib

import numpy as np


class Payload:
    def __reduce__(self):  # what unpickling it on the client would run
        return (pathlib.Path(os.environ["HOSTILE_MARKER"]).write_text, ("code ran on the client",))


def hostile(frame, task):
    mode = pathlib.Path(os.environ["HOSTILE_MODE"]).read_text()
    if mode == "die":
        os._exit(1)
    if mode == "pickle":
        return Payload()
    meta = {"name": "/../../" + os.environ["HOSTILE_VICTIM"], "record": {}, "shown": None, "files": ["thesis.tex"]}
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.frombuffer(json.dumps(meta).encode(), dtype="uint8"),
             f_0=np.frombuffer(b"overwritten", dtype="uint8"))
    return buffer.getvalue()


def dask_setup(worker):
    import keras_seq.compare

    keras_seq.compare.fit_one_as_bytes = hostile
'''


@pytest.mark.slow
def test_a_hostile_dask_worker_can_neither_name_the_folder_nor_run_code_and_a_dead_one_is_said(tmp_path, monkeypatch):
    import dask
    from distributed import LocalCluster

    from keras_seq import fanout
    from keras_seq.compare import CompareSpec, compare_models
    from keras_seq.data.sources import DataSpec
    from keras_seq.data.windows import WindowSpec
    from keras_seq.errors import KerasSeqError
    from keras_seq.models import ModelSpec
    from keras_seq.training import TrainSpec

    victim, mode, marker = tmp_path / "victim", tmp_path / "mode", tmp_path / "marker"
    victim.mkdir()
    (victim / "thesis.tex").write_text("work")
    (tmp_path / "hostile_worker.py").write_text(HOSTILE_WORKER)
    for key, value in {"HOSTILE_MODE": mode, "HOSTILE_MARKER": marker, "HOSTILE_VICTIM": victim.relative_to("/")}.items():
        monkeypatch.setenv(key, str(value))
    monkeypatch.setattr(fanout, "RESULT_SECONDS", 5)
    before = hashes_under(tmp_path)
    options = dict(data=DataSpec(start="2022-01-01"), windows=WindowSpec(window=8), model=ModelSpec(units=2, layers=1),
                   train=TrainSpec(epochs=1, batch_size=64), out=tmp_path / "out")
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None,
            preload=[str(tmp_path / "hostile_worker.py")]) as cluster:
        spec = CompareSpec(archs=("drnn",), scheduler=cluster.scheduler_address)
        for kind, words in (("name", "names another fit or a file outside its run folder ('/../../"),
                            ("pickle", "a dask worker sent back something other than keras-seq's result bytes"),
                            ("die", "a dask worker died or crashed during a fit")):
            mode.write_text(kind)
            started = time.monotonic()
            with pytest.raises(KerasSeqError) as caught:
                compare_models(**options, spec=spec)
            assert words in str(caught.value) and "\n" not in str(caught.value)
            assert time.monotonic() - started < 60
    assert not marker.exists() and not (tmp_path / "out").exists()
    assert {k: v for k, v in hashes_under(tmp_path).items() if k not in ("mode",)} == \
        {k: v for k, v in before.items() if k != "mode"}


# === 3, 4. No output inside an export or run folder; `latest` and the JAX cache never follow a link ===


@pytest.fixture
def run_copy(run_dir, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    return copy


@pytest.mark.parametrize("artifact, output", [("export/model.onnx", "export/model_card.json"),
                                              ("export/model.keras", "export/model.onnx"),
                                              ("export/model.onnx", "forecast.csv")])
def test_predict_never_writes_inside_an_export_or_run_folder(run_copy, run_cli, artifact, output):
    before = hashes_under(run_copy)
    code, _, err = run_cli("predict", run_copy / artifact, "--csv", run_copy / output)
    one_line_error(code, err, "lies inside the keras-seq export or run folder")
    assert hashes_under(run_copy) == before


def test_latest_never_follows_a_link(run_copy, tmp_path, run_cli):
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    shutil.copytree(run_copy, elsewhere)
    out.mkdir()
    shutil.move(run_copy, out / "gru-run")
    shutil.rmtree(out / "gru-run" / "export")
    (out / "latest").symlink_to(elsewhere)
    before = hashes_under(elsewhere)
    code, out_text, err = run_cli("export", out / "latest", "--format", "keras")
    assert code == 0, err
    assert hashes_under(elsewhere) == before and (out / "gru-run" / "export" / "model.keras").is_file()


def test_the_jax_cache_is_used_only_in_a_folder_of_ones_own(tmp_path):
    from keras_seq.backend import private_folder
    from keras_seq.errors import RunWarning

    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "cache" / "keras-seq").mkdir(parents=True)
    (tmp_path / "cache" / "keras-seq" / "jax").symlink_to(tmp_path / "elsewhere")
    with pytest.warns(RunWarning, match="is a link, not a folder, or not yours"):
        assert private_folder(tmp_path / "cache" / "keras-seq" / "jax") is None
    assert private_folder(tmp_path / "own" / "keras-seq" / "jax") == tmp_path / "own" / "keras-seq" / "jax"
    assert (tmp_path / "own" / "keras-seq" / "jax").stat().st_mode & 0o077 == 0


# === 6, 7, 11. A recipe holds options, not addresses; no secret is printed; --set is one line ===

RECIPE = """description = "a recipe from someone else"
[data]
source = "{source}"
[model]
archs = ["gru"]
units = 2
layers = 1
[train]
epochs = 1
"""


def test_a_recipe_that_names_a_scheduler_is_refused_before_anything_connects(tmp_path, run_cli):
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.5)
        recipe = tmp_path / "innocent.toml"
        recipe.write_text(RECIPE.format(source="dji") + f"[evaluate]\nscheduler = \"tcp://127.0.0.1:{listener.getsockname()[1]}\"\n")
        code, _, err = run_cli("run", recipe, "--out", tmp_path / "out")
        one_line_error(code, err, "'evaluate.scheduler' names a cluster to send the data to", status=1)
        with pytest.raises(socket.timeout):
            listener.accept()
    assert not (tmp_path / "out").exists()


def test_no_secret_is_printed_from_a_recipe_a_cache_link_or_a_storage_url(tmp_path, run_cli, monkeypatch,
                                                                          closed_port_url):
    from keras_seq.data.sources import _cache_file

    secret = tmp_path / ".env"
    secret.write_text("STRIPE_SECRET_KEY=sk_live_0123456789\n")
    recipe = tmp_path / "r.toml"
    recipe.write_text(RECIPE.format(source=secret))
    code, _, err = run_cli("run", recipe, "--out", tmp_path / "out")
    assert code != 0 and "sk_live" not in err and "STRIPE" not in err and len(err.strip().splitlines()) == 1
    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv("KERAS_SEQ_CACHE", str(cache))
    monkeypatch.setenv("KERAS_SEQ_STOOQ_URL", closed_port_url)  # never the internet, whatever happens
    _cache_file(None, "stooq", "^DJI").symlink_to(secret)
    code, _, err = run_cli("fit", "--data", "stooq:^DJI", "--epochs", "1", "--out", tmp_path / "out")
    one_line_error(code, err, "is a link or not a regular file; keras-seq reads its download cache only")
    assert "sk_live" not in err
    code, _, err = run_cli("tune", "--storage", "postgresql://alice:PASSWORD123@127.0.0.1:1/db", "--trials", "1",
                           "--out", tmp_path / "tune")
    assert code != 0 and "PASSWORD123" not in err and "alice:***@" in err, err


def test_set_values_with_control_characters_are_refused(tmp_path, run_cli):
    recipe = tmp_path / "r.toml"
    recipe.write_text(RECIPE.format(source="dji"))
    code, _, err = run_cli("run", recipe, "--set", "train.epochs=1\n[evil]", "--out", tmp_path / "out")
    one_line_error(code, err, "holds a control character", status=1)
    assert not (tmp_path / "out").exists()


# === 8, 9, 10. An artifact's program is bounded in memory and time, checked against its card, and fails in one line ===


def crafted_onnx(folder: Path, nodes: list, initializers: list = (), window: tuple = (8, 1)) -> Path:
    """An ONNX model taking keras-seq's window input and returning `out`, listed in the export's card."""
    import onnx
    from onnx import TensorProto, helper

    from test_safety import write_card

    graph = helper.make_graph(nodes, "crafted", [helper.make_tensor_value_info("window", TensorProto.FLOAT, [None, *window])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)], list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = folder / "model.onnx"
    onnx.save(model, str(path))
    write_card(folder, "onnx", path, folder / "model_card.json")
    return path


def _int64(name: str, values) -> object:
    from onnx import numpy_helper
    import numpy as np

    return numpy_helper.from_array(np.asarray(values, dtype="int64"), name)


def test_an_onnx_asking_for_a_huge_tensor_or_endless_loop_is_refused_before_it_runs(run_copy, run_cli):
    from onnx import helper

    export = run_copy / "export"
    crafted_onnx(export, [helper.make_node("ConstantOfShape", ["shape"], ["big"]),
                          helper.make_node("ReduceSum", ["big"], ["out"])], [_int64("shape", [30000, 30000])])
    code, _, err = run_cli("predict", export / "model.onnx")
    one_line_error(code, err, "makes a tensor 'big' of 900,000,000 values")
    body = helper.make_graph([helper.make_node("Identity", ["cond_in"], ["cond_out"])], "body",
                             [helper.make_tensor_value_info(n, t, s) for n, t, s in (("i", 7, []), ("cond_in", 9, []))],
                             [helper.make_tensor_value_info("cond_out", 9, [])])
    crafted_onnx(export, [helper.make_node("Loop", ["trips", ""], [], body=body),
                          helper.make_node("ReduceSum", ["window"], ["out"])], [_int64("trips", 2**63 - 1)])
    code, _, err = run_cli("predict", export / "model.onnx")
    one_line_error(code, err, "has a Loop of 9,223,372,036,854,775,807 trips")


def test_an_onnx_that_runs_too_long_or_fails_at_run_time_is_one_line(run_copy, run_cli, monkeypatch):
    import onnx
    from onnx import helper

    from keras_seq.formats import onnx as onnx_format

    export = run_copy / "export"
    monkeypatch.setattr(onnx_format, "FORECAST_SECONDS", 2)
    body = helper.make_graph([helper.make_node("Identity", ["cond_in"], ["cond_out"]),
                              helper.make_node("Add", ["acc_in", "one"], ["acc_out"])], "body",
                             [helper.make_tensor_value_info(n, t, s) for n, t, s in
                              (("i", 7, []), ("cond_in", 9, []), ("acc_in", 1, []))],
                             [helper.make_tensor_value_info(n, t, []) for n, t in (("cond_out", 9), ("acc_out", 1))],
                             [onnx.numpy_helper.from_array(__import__("numpy").float32(1), "one")])
    crafted_onnx(export, [helper.make_node("ReduceSum", ["window"], ["total"], keepdims=0),  # trips from the data
                          helper.make_node("Abs", ["total"], ["size"]),
                          helper.make_node("Cast", ["size"], ["trips"], to=7),
                          helper.make_node("Add", ["trips", "many"], ["count"]),
                          helper.make_node("Loop", ["count", "", "zero"], ["out"], body=body)],
                 [_int64("many", 2**40), onnx.numpy_helper.from_array(__import__("numpy").float32(0), "zero")])
    started = time.monotonic()
    code, _, err = run_cli("predict", export / "model.onnx")
    one_line_error(code, err, "ran longer than 2 s on one batch and was stopped")
    assert time.monotonic() - started < 30
    crafted_onnx(export, [helper.make_node("Reshape", ["window", "shape"], ["out"])], [_int64("shape", [7])])
    code, _, err = run_cli("predict", export / "model.onnx")
    one_line_error(code, err, "failed while forecasting")


def test_a_card_that_disagrees_with_the_graphs_inputs_is_refused(run_copy, run_cli):
    from onnx import helper

    export = run_copy / "export"
    crafted_onnx(export, [helper.make_node("ReduceSum", ["window"], ["out"])], window=(5, 3))
    code, _, err = run_cli("predict", export / "model.onnx")
    one_line_error(code, err, "takes windows of 5 steps and 3 features, but its model_card.json says 8 and 1")


@pytest.mark.slow
def test_a_savedmodel_that_never_ends_is_stopped_by_predicts_time_limit(run_copy):
    import tensorflow as tf

    from conftest import run_console
    from test_safety import write_card

    class Endless(tf.Module):  # allowlisted ops alone: a While of 2**31 trips that reads a variable
        def __init__(self):
            self.step = tf.Variable(1.0)

        @tf.function(input_signature=[tf.TensorSpec([None, 8, 1], tf.float32, name="window")])
        def serve(self, window):
            steps = tf.while_loop(lambda i: tf.less(i, 2**31 - 1), lambda i: i + tf.cast(self.step, tf.int32),
                                  [tf.constant(0)], parallel_iterations=1)[0]
            return {"output_0": tf.reduce_max(window, axis=1) * self.step + tf.cast(steps, tf.float32)}

    module = Endless()
    path = run_copy / "export" / "savedmodel" / "gru" / "1"
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    write_card(run_copy / "export", "savedmodel", path, run_copy / "export" / "model_card.json")
    started = time.monotonic()
    result = run_console("predict", path, "--csv", run_copy.parent / "f.csv", env={"KERAS_SEQ_PREDICT_SECONDS": "6"},
                         timeout=120)
    one_line_error(result.returncode, result.stderr, "the forecast ran longer than 6 s and was stopped")
    assert time.monotonic() - started < 60 and not (run_copy.parent / "f.csv").exists()


def _wait_for_a_sigterm_handler(pid: int) -> None:
    """Until the process catches SIGTERM (bit 15 of SigCgt in /proc/PID/status)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
        if int(fields["SigCgt"].strip(), 16) >> 14 & 1:
            return
        time.sleep(0.002)


@pytest.mark.slow
def test_a_signal_during_predict_gives_the_same_one_line_answer_wherever_it_lands(run_copy, tmp_path):
    import signal
    import subprocess
    import sys

    script = Path(sys.executable).with_name("keras-seq")
    for delay in (0.0, 0.3, 0.8, 1.6, 2.4):
        output = tmp_path / f"f{delay}.csv"
        process = subprocess.Popen([str(script), "predict", str(run_copy / "export" / "model.onnx"), "--csv",
                                    str(output)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _wait_for_a_sigterm_handler(process.pid)  # Python's own start-up, before keras-seq's first line, is not ours
        time.sleep(delay)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
        if process.returncode == 0:  # it finished first: its file is whole
            assert output.is_file() and err.strip() == ""
            continue
        assert process.returncode == 130, (delay, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and err.startswith("Error: "), (delay, err)
        assert not output.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


# === 8, 10. Crafted checkpoints and kept comparisons: bounded, checked whole, one line, before any training ===


def _npy_claiming(shape, data: bytes = b"\0" * 64) -> bytes:
    """An .npy file whose header claims `shape` of float64 but holds only `data`."""
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f8", "fortran_order": False, "shape": shape})
    return buffer.getvalue() + data


def _rewrite_npz(path: Path, change) -> None:
    """Rewrite an .npz archive: `change(arrays)` edits the dict of arrays; a bytes value is stored as a raw member."""
    import zipfile

    import numpy as np

    with np.load(path) as stored:
        arrays = {key: stored[key] for key in stored.files}
    change(arrays)
    with zipfile.ZipFile(path, "w") as archive:
        for key, value in arrays.items():
            if isinstance(value, bytes):
                archive.writestr(f"{key}.npy", value)
            else:
                with archive.open(f"{key}.npy", "w", force_zip64=True) as stream:
                    np.lib.format.write_array(stream, np.asanyarray(value), allow_pickle=False)


def _meta(arrays, **changes) -> None:
    import numpy as np

    arrays["meta"] = np.array(json.dumps({**json.loads(str(arrays["meta"])), **changes}))


@pytest.mark.parametrize("change, words", [
    (lambda a: a.update(weight_0=_npy_claiming((2**40,))), "is not a plain array (its header claims (1099511627776,)"),
    (lambda a: a.update(weight_0=__import__("numpy").array(["w"] * 4)), "it holds weights that are not numbers"),
    (lambda a: _meta(a, history={"loss": ["a", "b"], "val_loss": [1, 2]}), "its history is not lists of numbers"),
    (lambda a: _meta(a, counts=["1", "2", "3"]), "its array counts are not three small integers"),
    (lambda a: a.update(weight_0=__import__("numpy").ones(5 << 20)), "would inflate to"),  # 40 MB: beyond a 4-unit gru
])
def test_a_crafted_checkpoint_is_one_line_and_bounded_by_what_its_config_implies(killed_run, run_cli, change, words):
    _rewrite_npz(killed_run / "checkpoint.npz", change)
    before = hashes_under(killed_run.parent)
    code, _, err = run_cli("fit", "--resume", killed_run, "-q")
    one_line_error(code, err, words)
    assert hashes_under(killed_run.parent) == before


@pytest.fixture(scope="module")
def cut_comparison(tmp_path_factory):
    """A comparison of drnn and gru, stopped after drnn's fit: the folder compare --resume reads."""
    from keras_seq import compare
    from keras_seq.data.sources import DataSpec
    from keras_seq.data.windows import WindowSpec
    from keras_seq.errors import RunInterrupted
    from keras_seq.models import ModelSpec
    from keras_seq.training import TrainSpec

    real, out = compare.fit_one, tmp_path_factory.mktemp("cut")

    def first_only(frame, task):
        if task.specs.model.arch == "gru":
            raise RunInterrupted("stopped by the test")
        return real(frame, task)

    compare.fit_one = first_only
    try:
        with pytest.raises(RunInterrupted):
            compare.compare_models(DataSpec(start="2022-01-01"), WindowSpec(window=8), ModelSpec(units=2, layers=1),
                                   TrainSpec(epochs=1, batch_size=64), spec=compare.CompareSpec(archs=("drnn", "gru")),
                                   out=out)
    finally:
        compare.fit_one = real
    (folder,) = out.iterdir()
    return folder


def _edit_record(folder: Path, edit) -> None:
    path = folder / "interrupted.json"
    record = json.loads(path.read_text())
    edit(record["finished"]["drnn-seed42"])
    path.write_text(json.dumps(record))


def _mae(entry, value):
    entry["record"]["splits"]["test"]["model"]["mae"] = value


@pytest.mark.parametrize("edit, words", [
    (lambda e: e.update(record={}), "has a record of another fit"),
    (lambda e: _mae(e, "0.5"), "has error figures that are not numbers"),
    (lambda e: e["record"].update(arch="drnn\nevil"), "has a record of another fit"),
    (lambda e: e["shown"].update(history={"loss": ["x"]}), "a loss history that is not one number per epoch"),
    (lambda e: e["shown"].update(ylabel="y" * 3_000_000), "a label that is not short text"),
    ("strings", "has arrays that are not numbers or dates"),
    ("bomb", "would inflate to 209,7"),
])
def test_a_crafted_kept_comparison_is_refused_whole_before_any_training(cut_comparison, tmp_path, edit, words):
    import zipfile

    import numpy as np

    from keras_seq.compare import resume_comparison
    from keras_seq.errors import KerasSeqError

    folder = tmp_path / "cut"
    shutil.copytree(cut_comparison, folder)
    npz = folder / "fits" / "drnn-seed42.npz"
    if edit == "strings":
        _rewrite_npz(npz, lambda arrays: arrays.update(shown_drawn_values=np.array(["a", "b"])))
    elif edit == "bomb":
        with zipfile.ZipFile(npz, "a", compression=zipfile.ZIP_DEFLATED) as archive, \
                archive.open("zeros.npy", "w", force_zip64=True) as stream:
            for _ in range(200):
                stream.write(b"\0" * (1 << 20))
    else:
        _edit_record(folder, edit)
    before = hashes_under(folder)
    started = time.monotonic()
    with pytest.raises(KerasSeqError) as caught:
        resume_comparison(folder)
    assert words in str(caught.value) and len(str(caught.value)) < 2000
    assert hashes_under(folder) == before and time.monotonic() - started < 30


# === 8, 9. Bounded memory and time for what comes from outside: servers, sizes, names, nesting, workers ===


class _Endless:
    """A 127.0.0.1 HTTP server that answers every GET with an endless body, fast or one byte at a time."""

    def __init__(self, trickle: bool):
        import http.server
        import threading

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                self.send_response(200)
                self.end_headers()
                try:
                    for _ in range(100_000):  # bounded: the server stops by itself
                        self.wfile.write(b"x" if trickle else b"Date,Close\n" * 6000)
                        if trickle:
                            self.wfile.flush()
                            time.sleep(0.2)
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _rss_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096


@pytest.mark.parametrize("trickle, words", [(False, "the answer is larger than 4,194,304 bytes"),
                                            (True, "the answer took longer than 2 s")])
def test_a_download_is_bounded_in_bytes_and_time(tmp_path, monkeypatch, trickle, words):
    from keras_seq.data import sources
    from keras_seq.errors import KerasSeqError

    server = _Endless(trickle)
    monkeypatch.setenv("KERAS_SEQ_STOOQ_URL", server.url)
    monkeypatch.setattr(sources, "MAX_DOWNLOAD_BYTES", 4 << 20)
    monkeypatch.setattr(sources, "DOWNLOAD_SECONDS", 2)
    started, rss = time.monotonic(), _rss_bytes()
    try:
        with pytest.raises(KerasSeqError, match=words):
            sources.DataSpec(source="stooq:^DJI", cache_dir=str(tmp_path / "cache")).load()
    finally:
        server.close()
    assert time.monotonic() - started < 20 and _rss_bytes() - rss < 100 << 20
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_a_silent_scheduler_is_one_line_within_the_connect_time(tmp_path, monkeypatch):
    import socket

    from keras_seq.compare import CompareSpec, compare_models
    from keras_seq.errors import KerasSeqError

    monkeypatch.setattr("keras_seq.fanout.CONNECT_SECONDS", 1)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # accepts, never answers
        started = time.monotonic()
        with pytest.raises(KerasSeqError, match="cannot reach the dask scheduler at tcp://127.0.0.1"):
            compare_models(spec=CompareSpec(archs=("drnn",), scheduler=f"tcp://127.0.0.1:{silent.getsockname()[1]}"),
                           out=tmp_path / "out")
    assert time.monotonic() - started < 30 and not (tmp_path / "out").exists()


def test_more_jobs_than_cores_are_capped_with_a_warning():
    import os

    from keras_seq.errors import RunWarning
    from keras_seq.fanout import Fanout, open_pool

    with pytest.warns(RunWarning, match=f"jobs=64 is more than this machine's {os.cpu_count()} cores"):
        with open_pool(Fanout(jobs=64), "jax") as pool:
            assert pool.executor._max_workers == os.cpu_count()


@pytest.mark.parametrize("args, words", [
    (("fit", "--units", "200000"), "`units` must be at most 4096. Received: units=200000"),
    (("fit", "--layers", "1000"), "`layers` must be at most 64"),
    (("predict", "latest", "--steps", "3000000"), "`steps` must be at most 10,000"),
    (("predict", "latest", "--steps", "100000000"), "`steps` must be at most 10,000"),
])
def test_sizes_are_range_checked_before_anything_is_built(tmp_path, run_cli, args, words):
    started = time.monotonic()
    code, _, err = run_cli(*args, "--out" if args[0] == "fit" else "--data", tmp_path / "x" if args[0] == "fit" else "dji")
    one_line_error(code, err, words)
    assert time.monotonic() - started < 10 and not (tmp_path / "x").exists()


def test_long_or_many_names_and_deep_recipes_are_refused_at_once(tmp_path, run_cli):
    from keras_seq.data.sources import DataSpec
    from keras_seq.errors import KerasSeqError

    started = time.monotonic()
    recipe = tmp_path / "long.toml"
    recipe.write_text(RECIPE.format(source="dji").replace("[data]\n", f'[data]\ntarget = "{"y" * 3_000_000}"\n'))
    code, _, err = run_cli("run", recipe, "--out", tmp_path / "out")
    one_line_error(code, err, "`target` names one of 3,000,000 characters")
    assert len(err) < 1200
    with pytest.raises(KerasSeqError, match="names 200,000 columns or series; keras-seq takes at most 10,000"):
        DataSpec(features=tuple(f"c{i}" for i in range(200_000)))
    with pytest.raises(KerasSeqError, match="names a column twice: c0"):
        DataSpec(features=tuple(f"c{i}" for i in range(9_999)) + ("c0",))
    deep = tmp_path / "deep.toml"
    deep.write_text('description = "deep"\nx = ' + "[" * 100_000 + "]" * 100_000 + "\n")
    code, _, err = run_cli("run", deep, "--out", tmp_path / "out")
    one_line_error(code, err, "its values are nested too deep to read")
    assert time.monotonic() - started < 30 and not (tmp_path / "out").exists()


def test_tune_refuses_a_damaged_journal_and_a_study_it_did_not_start(tmp_path, run_cli):
    import optuna
    from optuna.storages.journal import JournalFileBackend

    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "study.journal").write_text('{"op_code": 0, "worker_id": "w", "study_name": "damaged", "directions": [1]}\n'
                                           '{"op_code": 5, "worker_id": "w", "study_id": 0, "datetime_start": "x"}\n')
    before = hashes_under(tmp_path)
    code, _, err = run_cli("tune", "--out", tmp_path, "--study", "damaged", "--trials", "1", "--epochs", "1")
    one_line_error(code, err, "study 'damaged' cannot be read from its storage (KeyError")
    assert hashes_under(tmp_path) == before
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    storage = optuna.storages.JournalStorage(JournalFileBackend(str(foreign / "study.journal")))
    optuna.create_study(study_name="foreign", storage=storage).optimize(lambda trial: trial.suggest_float("x", 0, 1),
                                                                        n_trials=1)
    before = hashes_under(tmp_path)
    code, _, err = run_cli("tune", "--out", tmp_path, "--study", "foreign", "--trials", "2", "--epochs", "1")
    one_line_error(code, err, "study 'foreign' in this storage was not started by keras-seq tune (it has 1 trials")
    assert hashes_under(tmp_path) == before


def test_a_card_with_a_huge_target_name_gives_a_short_line(run_copy, run_cli):
    from test_safety import write_card

    export = run_copy / "export"
    card = json.loads((export / "model_card.json").read_text())
    (export / "model_card.json").write_text(json.dumps({**card, "target": "y" * (15 << 20)}))
    write_card(export, "onnx", export / "model.onnx", export / "model_card.json")
    code, _, err = run_cli("predict", export / "model.onnx")
    one_line_error(code, err, "does not describe the model's inputs and outputs")
    assert len(err) < 1200
