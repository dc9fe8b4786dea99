"""Trust, round 3: what a resumed run, an artifact, a card, a cache or `latest` can no longer do (the cases from
outside a run folder, workers, recipes, servers and studies, are in test_trust_outside.py).

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
    from keras_seq.runs.folder import run_name

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
    from keras_seq.runs.folder import run_name

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
    from keras_seq.runs.folder import write_manifest

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

    from keras_seq.artifacts import onnx as onnx_format

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
    result = run_console("predict", path, "--csv", run_copy.parent / "f.csv", env={"KERAS_SEQ_PREDICT_SECONDS": "10"},
                         timeout=120)
    one_line_error(result.returncode, result.stderr, "the forecast ran longer than 10 s and was stopped")
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


def test_a_card_with_a_huge_target_name_gives_a_short_line(run_copy, run_cli):
    from test_safety import write_card

    export = run_copy / "export"
    card = json.loads((export / "model_card.json").read_text())
    (export / "model_card.json").write_text(json.dumps({**card, "target": "y" * (15 << 20)}))
    write_card(export, "onnx", export / "model.onnx", export / "model_card.json")
    code, _, err = run_cli("predict", export / "model.onnx")
    one_line_error(code, err, "does not describe the model's inputs and outputs")
    assert len(err) < 1200
