"""keras_seq/safety.py and its callers: hostile artifacts, run folders and outputs are refused, nothing is lost.

Each test builds its hostile input itself, small, and checks the one-line
message, the exit code where the CLI is involved, and that nothing outside the
expected place changed (a listing with sizes and hashes before and after).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from keras_seq.data.sources import DataSpec
from keras_seq.data.windows import WindowSpec
from keras_seq.errors import KerasSeqError
from keras_seq.artifacts.export import CARD_FILE, artifact_sha256, export_run
from keras_seq.models import ModelSpec
from keras_seq.runs.folder import MANIFEST_FILE, read_run_config, write_manifest
from keras_seq.workflows.fit import fit_run
from keras_seq.safety import (CHECKPOINT_OPS, COMPUTE_OPS, FORBIDDEN_OP_WORDS, check_onnx, check_zip_members,
                              folder_lock, plain_name, savedmodel_ops)
from keras_seq.training.loop import TrainSpec


def hashes_under(folder: Path) -> dict:
    """Every entry under `folder`: files with their size and sha256, symlinks with their target."""
    listing = {}
    for path in sorted(folder.rglob("*")):
        name = str(path.relative_to(folder))
        if path.is_symlink():
            listing[name] = ("symlink", str(path.readlink()))
        elif path.is_file():
            listing[name] = (path.stat().st_size, hashlib.sha256(path.read_bytes()).hexdigest())
        else:
            listing[name] = "folder"
    return listing


def one_line_error(code: int, err: str, words: str, status: int = 1) -> None:
    lines = err.strip().splitlines()
    assert code == status, err
    assert len(lines) == 1 and lines[0].startswith("Error: ") and words in lines[0], err
    assert "Traceback" not in err


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A real trained run (gru, 4 units, 1 epoch) and its ONNX and .keras export; tests work on copies."""
    out = tmp_path_factory.mktemp("safety")
    path = fit_run(DataSpec(), WindowSpec(window=8), ModelSpec(arch="gru", units=4, layers=1),
                   TrainSpec(epochs=1, batch_size=64), out=out, backend="tensorflow", verbose=0).path
    export_run(path, "onnx,keras")
    return path


@pytest.fixture
def run_copy(run_dir, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    return copy


def write_card(folder: Path, kind: str, artifact: Path, template: Path) -> None:
    """A model card listing `artifact` with its true sha256, as whoever sends an artifact can write."""
    card = json.loads(template.read_text())
    card["artifacts"] = {kind: {"path": artifact.relative_to(folder).as_posix(), "sha256": artifact_sha256(artifact)}}
    (folder / CARD_FILE).write_text(json.dumps(card))


# === 1. SavedModels run only allowlisted ops; ONNX has no external data or custom domain; .keras in safe mode ===


def test_the_compute_allowlist_holds_no_file_python_or_print_op():
    assert not [op for op in COMPUTE_OPS if any(word in op for word in FORBIDDEN_OP_WORDS)]
    assert {"SaveV2", "RestoreV2", "MergeV2Checkpoints", "StringJoin"} <= CHECKPOINT_OPS
    assert not COMPUTE_OPS & {"ReadFile", "WriteFile", "PyFunc", "EagerPyFunc", "PrintV2", "MatchingFiles"}


def test_a_savedmodel_with_file_ops_is_refused_before_it_runs(run_dir, tmp_path, run_cli):
    import tensorflow as tf

    stolen = tmp_path / "stolen.txt"

    class Hostile(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 8, 1], tf.float32, name="window")])
        def serve(self, window):
            tf.io.write_file(str(stolen), tf.io.read_file("/etc/hostname"))
            return {"output_0": window[:, -1, :]}

    export = tmp_path / "export"
    module = Hostile()
    tf.saved_model.save(module, str(export / "savedmodel" / "gru" / "1"), signatures={"serving_default": module.serve})
    write_card(export, "savedmodel", export / "savedmodel" / "gru" / "1", run_dir / "export" / CARD_FILE)
    assert {"ReadFile", "WriteFile"} <= savedmodel_ops(export / "savedmodel" / "gru" / "1")["compute"]
    before = hashes_under(tmp_path)
    code, _, err = run_cli("predict", export / "savedmodel" / "gru" / "1")
    one_line_error(code, err, "holds the TensorFlow op ReadFile (and 1 more")
    assert "Refusing to run it" in err and not stolen.exists() and hashes_under(tmp_path) == before


@pytest.mark.parametrize("arch, cell, kind, horizon, dropout", [
    ("dotrnn", "rnn", "sequence", 1, 0.1), ("brnn", "dtsrnn", "next", 2, 0.0), ("gru", "rnn", "next", 3, 0.2),
])
def test_exports_of_every_arch_need_only_allowlisted_ops(tmp_path, arch, cell, kind, horizon, dropout):
    """With tests/test_export.py's six archs, every arch and head; `write_artifact` refuses an op off the list."""
    from keras_seq.artifacts.export import write_artifact
    from keras_seq.models.builders import build_model

    model = build_model(arch, window=8, n_features=2, horizon=horizon, target_kind=kind, units=4, layers=2,
                        dropout=dropout, cell=cell)
    path, _, _ = write_artifact("savedmodel", model, tmp_path, arch)
    ops = savedmodel_ops(path)
    assert ops["compute"] <= COMPUTE_OPS and ops["checkpoint"] <= COMPUTE_OPS | CHECKPOINT_OPS
    assert {"SaveV2", "RestoreV2"} <= ops["checkpoint"] and "While" in ops["compute"]


def tiny_onnx(path: Path, **changes) -> Path:
    """A one-node ONNX model (window -> mean over time), with `changes` applied before saving."""
    import onnx
    from onnx import TensorProto, helper

    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    scale = helper.make_tensor("scale", TensorProto.FLOAT, [1, 1], np.ones((1, 1), "float32").tobytes(), raw=True)
    nodes = [helper.make_node("ReduceMean", ["window", "axes"], ["mean"], keepdims=0),
             helper.make_node("Mul", ["mean", "scale"], ["output_0"], domain=changes.get("node_domain", ""))]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("window", TensorProto.FLOAT, [None, 8, 1])],
                              [helper.make_tensor_value_info("output_0", TensorProto.FLOAT, [None, 1])],
                              initializer=[axes, scale])
    opsets = [helper.make_opsetid("", changes.get("opset", 18))] + changes.get("extra_opsets", [])
    model = helper.make_model(graph, opset_imports=opsets)
    if changes.get("external"):
        onnx.save_model(model, str(path), save_as_external_data=True, location="weights.bin", size_threshold=0)
    else:
        onnx.save_model(model, str(path))
    return path


@pytest.mark.parametrize("changes, words", [
    ({"external": True}, "in external data, which would be read from another file"),
    ({"node_domain": "com.example.evil", "extra_opsets": [("com.example.evil", 1)]}, "imports the ONNX domain 'com.example.evil'"),
    ({"opset": 7}, "uses ONNX opset 7; keras-seq writes opsets 13..23"),
])
def test_onnx_with_external_data_custom_domains_or_other_opsets_is_refused(tmp_path, changes, words):
    from onnx import helper

    changes = {**changes, "extra_opsets": [helper.make_opsetid(*o) for o in changes.get("extra_opsets", [])]}
    with pytest.raises(KerasSeqError, match=words):
        check_onnx(tiny_onnx(tmp_path / "model.onnx", **changes))


def test_a_plain_onnx_passes_and_external_data_is_refused_through_predict(run_dir, tmp_path, run_cli):
    check_onnx(tiny_onnx(tmp_path / "plain.onnx"))
    export = tmp_path / "export"
    export.mkdir()
    tiny_onnx(export / "model.onnx", external=True)
    write_card(export, "onnx", export / "model.onnx", run_dir / "export" / CARD_FILE)
    code, _, err = run_cli("predict", export / "model.onnx")
    one_line_error(code, err, "in external data, which would be read from another file")


def _keras_with(source: Path, target: Path, config=None, members: dict | None = None,
                compression=zipfile.ZIP_STORED) -> Path:
    """A copy of a real .keras archive with its config replaced and members added."""
    with zipfile.ZipFile(source) as original:
        parts = {info.filename: original.read(info) for info in original.infolist()}
    if config is not None:
        parts["config.json"] = json.dumps(config).encode()
    parts.update(members or {})
    with zipfile.ZipFile(target, "w", compression=compression) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    return target


def _config(run_dir: Path) -> dict:
    with zipfile.ZipFile(run_dir / "model.keras") as archive:
        return json.loads(archive.read("config.json"))


def _payloads(run_dir: Path, marker: Path) -> dict:
    """Configs that would run code, import modules or break Keras's loader, if loaded without safe mode."""
    base = _config(run_dir)
    command = f"touch {marker}"

    def with_layer(layer):
        """The model's second layer, as it was wired, but of `layer`'s module and class."""
        config = json.loads(json.dumps(base))
        wired = config["config"]["layers"][1]
        wired.update({k: v for k, v in layer.items() if k != "config"}, registered_name=layer.get("registered_name"))
        wired["config"] = {**wired["config"], **layer["config"]}
        return config

    def replace_everywhere(config, key, value):
        text = json.dumps(config).replace(json.dumps(key), json.dumps(value))
        return json.loads(text)

    lambda_code = {"class_name": "__lambda__", "config": {"code": "YQ==", "defaults": None, "closure": None}}
    return {
        "lambda-layer": with_layer({"module": "keras.layers", "class_name": "Lambda", "name": "evil",
                                    "config": {"name": "evil", "function": lambda_code}}),
        "lambda-activation": replace_everywhere(base, "tanh", lambda_code),
        "os-system-function": replace_everywhere(base, "tanh", {"module": "os", "class_name": "function",
                                                                 "config": "system", "registered_name": "function"}),
        "builtins-eval": replace_everywhere(base, "tanh", {"module": "builtins", "class_name": "function",
                                                            "config": "eval", "registered_name": "function"}),
        "subprocess-class": with_layer({"module": "subprocess", "class_name": "Popen", "config": {"args": command}}),
        "os-module-class": with_layer({"module": "os", "class_name": "system", "config": {"command": command}}),
        "registered-unknown": with_layer({"module": None, "class_name": "Evil", "registered_name": "evil>Evil",
                                          "config": {}}),
        "nested-string-config": replace_everywhere(base, "float32", "x"),
        "dtype-policy-string": replace_everywhere(base, {"module": "keras", "class_name": "DTypePolicy",
                                                         "config": {"name": "float32"}, "registered_name": None},
                                                  {"module": "keras", "class_name": "DTypePolicy",
                                                   "config": "float32", "registered_name": None}),
        "config-not-an-object": [1, 2, 3],
        "empty-config": {},
        "unknown-keras-class": with_layer({"module": "keras.layers", "class_name": "NoSuchLayer", "config": {}}),
        "shell-in-name": replace_everywhere(base, "keras_seq_gru", f"$({command})"),
        "keras-seq-cli-function": replace_everywhere(base, "tanh", {"module": "keras_seq.cli", "class_name": "function",
                                                                     "config": "main", "registered_name": "function"}),
        "lambda-initializer": replace_everywhere(base, "GlorotUniform", "__lambda__"),
        "numpy-object-array": replace_everywhere(base, "tanh", {"class_name": "__numpy__",
                                                                 "config": {"value": [command], "dtype": "object"}}),
    }


def test_keras_payloads_are_refused_in_one_line_and_run_nothing(run_dir, tmp_path, run_cli):
    from keras_seq.models.builders import load_model

    marker = tmp_path / "ran"
    payloads = _payloads(run_dir, marker)
    assert len(payloads) >= 16
    export = tmp_path / "export"
    export.mkdir()
    _keras_with(run_dir / "model.keras", export / "model.keras", payloads["lambda-layer"])
    write_card(export, "keras", export / "model.keras", run_dir / "export" / CARD_FILE)
    code, _, err = run_cli("predict", export / "model.keras")
    one_line_error(code, err, "is not a readable .keras model")
    for name, config in payloads.items():
        path = _keras_with(run_dir / "model.keras", tmp_path / f"{name}.keras", config)
        try:
            load_model(path)
        except KerasSeqError as exc:
            assert "\n" not in str(exc) and str(path) in str(exc), name
        else:
            assert name == "shell-in-name", f"{name} loaded"  # a name is only a string
        assert not marker.exists(), name


def test_archive_members_are_bounded_before_anything_is_extracted(run_dir, tmp_path, run_cli):
    from keras_seq.models.builders import load_model

    export = tmp_path / "export"
    export.mkdir()
    bomb = _keras_with(run_dir / "model.keras", export / "model.keras",
                       members={"config.json": b" " * (40 << 20)}, compression=zipfile.ZIP_DEFLATED)
    assert bomb.stat().st_size < 1 << 20
    write_card(export, "keras", bomb, run_dir / "export" / CARD_FILE)
    code, _, err = run_cli("predict", bomb)
    one_line_error(code, err, "would inflate 'config.json' to 41,943,040 bytes")
    assert "refusing an archive that large" in err
    sneaky = _keras_with(run_dir / "model.keras", tmp_path / "sneaky.keras", members={"../../evil.py": b"x"})
    with pytest.raises(KerasSeqError, match=r"holds an unexpected member '../../evil.py'"):
        load_model(sneaky)
    extra = _keras_with(run_dir / "model.keras", tmp_path / "extra.keras", members={"payload.so": b"x"})
    with pytest.raises(KerasSeqError, match=r"holds an unexpected member 'payload.so'"):
        check_zip_members(extra, allowed=lambda name: name.endswith(".json") or name.endswith(".h5"))
    assert not (tmp_path.parent / "evil.py").exists()


# === 2. A run folder needs its manifest, whose names stay inside the folder ===


def test_a_run_folder_without_a_manifest_is_refused(run_dir, run_copy, run_cli):
    (run_copy / MANIFEST_FILE).unlink()
    shutil.copy(run_dir / "export" / "model.keras", run_copy / "model.keras")  # another model dropped in
    code, _, err = run_cli("evaluate", run_copy)
    one_line_error(code, err, "has no manifest.json, so its files cannot be checked: the folder may have been changed")


@pytest.mark.parametrize("name", ["../../../../etc/passwd", "/etc/passwd", "evaluations/../../x", "a\\b"])
def test_manifest_names_outside_the_folder_are_refused_unread(run_copy, name, run_cli, tmp_path):
    manifest = json.loads((run_copy / MANIFEST_FILE).read_text())
    manifest["sha256"][name] = "0" * 64
    (run_copy / MANIFEST_FILE).write_text(json.dumps(manifest))
    before = hashes_under(tmp_path)
    code, _, err = run_cli("evaluate", run_copy)
    one_line_error(code, err, "outside the folder. Refusing to read it")
    assert hashes_under(tmp_path) == before


def test_a_manifest_must_vouch_for_the_model(run_dir, run_copy):
    manifest = json.loads((run_copy / MANIFEST_FILE).read_text())
    del manifest["sha256"]["model.keras"]
    (run_copy / MANIFEST_FILE).write_text(json.dumps(manifest))
    shutil.copy(run_dir / "export" / "model.keras", run_copy / "model.keras")
    with pytest.raises(KerasSeqError, match="does not list model.keras, so it cannot vouch for it"):
        read_run_config(run_copy)


# === 3. No write, and no read, follows a symlink inside a run or export folder ===


def test_writes_never_follow_a_symlink_out_of_the_run_folder(run_copy, tmp_path, run_cli):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (run_copy / "evaluations").symlink_to(elsewhere)
    shutil.rmtree(run_copy / "export")
    (run_copy / "export").symlink_to(elsewhere)
    before = hashes_under(tmp_path)
    code, _, err = run_cli("evaluate", run_copy)
    one_line_error(code, err, "evaluations is a symlink; keras-seq neither reads nor writes through symlinks")
    code, _, err = run_cli("export", run_copy, "--overwrite", "--format", "keras")
    one_line_error(code, err, "export is a symlink")
    assert hashes_under(tmp_path) == before


def test_a_symlinked_model_or_manifest_entry_is_refused(run_copy, tmp_path):
    secret = tmp_path / "secret.keras"
    shutil.move(run_copy / "model.keras", secret)
    (run_copy / "model.keras").symlink_to(secret)
    with pytest.raises(KerasSeqError, match="model.keras is a symlink"):
        read_run_config(run_copy)


# === 4. A crafted config.json cannot make keras-seq quote another file ===


def test_a_data_path_from_config_json_is_read_but_never_quoted(run_copy, tmp_path, run_cli):
    secret = tmp_path / ".env"
    secret.write_text("API_KEY=sk-live-1234567890\nOTHER=1\n")
    config = json.loads((run_copy / "config.json").read_text())
    config["data"]["source"] = str(secret)
    (run_copy / "config.json").write_text(json.dumps(config))
    write_manifest(run_copy)  # whoever crafts a folder can write a matching manifest
    for command in (["evaluate", run_copy], ["predict", run_copy], ["export", run_copy, "--out", tmp_path / "x"]):
        code, out, err = run_cli(*command)
        one_line_error(code, err, "named in the run's config.json cannot be read as the run's data")
        assert "sk-live" not in out + err and "API_KEY" not in out + err


def test_errors_about_a_given_file_quote_short_marked_excerpts(write_csv):
    from keras_seq.data.sources import load_series

    path = write_csv("When," + ",".join(f"column_{'x' * 60}_{i}" for i in range(30)) + "\n" + "abc," * 30 + "1\n")
    with pytest.raises(KerasSeqError) as caught:
        load_series(str(path), columns=["Close"])
    message = str(caught.value)
    assert len(message) < 600 and "… and 23 more" in message and "x" * 60 not in message


# === 5 (zip bombs) is above. 6. --overwrite replaces only an export folder ===


@pytest.mark.parametrize("target", ["run", "parent", "other"])
def test_overwrite_never_deletes_a_run_its_parent_or_another_folder(run_copy, tmp_path, run_cli, target):
    other = tmp_path / "notes"
    other.mkdir()
    (other / "thesis.tex").write_text("years of work")
    out = {"run": run_copy, "parent": tmp_path, "other": other}[target]
    before = hashes_under(tmp_path)
    code, _, err = run_cli("export", run_copy, "--out", out, "--overwrite", "--format", "keras")
    words = "is not one: it holds thesis.tex. Nothing was deleted" if target == "other" else "is the run folder or a folder above it"
    one_line_error(code, err, words)
    assert hashes_under(tmp_path) == before


def test_overwrite_replaces_an_export_folder(run_copy, run_cli):
    code, out, err = run_cli("export", run_copy, "--overwrite", "--format", "keras")
    assert code == 0, err
    assert sorted(p.name for p in (run_copy / "export").iterdir()) == ["model.keras", "model_card.json"]


# === 7. predict --csv never writes over its inputs, and writes whole files or none ===


def test_predict_refuses_to_write_over_its_inputs(run_dir, tmp_path, run_cli, monkeypatch):
    data = tmp_path / "mydata.csv"
    frame = DataSpec().load()
    frame.to_csv(data)
    before = hashes_under(tmp_path)
    code, _, err = run_cli("predict", run_dir, "--data", data, "--csv", data)
    one_line_error(code, err, f"--csv {data} would overwrite what the forecast reads")
    code, _, err = run_cli("predict", run_dir / "export" / "model.onnx", "--csv", run_dir / "export" / "model.onnx")
    one_line_error(code, err, "would overwrite what the forecast reads")
    monkeypatch.setenv("HOME", str(tmp_path))  # a data path with ~ is the file it expands to
    code, _, err = run_cli("predict", run_dir, "--data", "~/mydata.csv", "--csv", data)
    one_line_error(code, err, f"would overwrite what the forecast reads ({data})")
    assert hashes_under(tmp_path) == before


@pytest.fixture
def small_disk(tmp_path):
    """A real 2 MiB tmpfs (root only), unmounted afterwards."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("mounting a tmpfs needs root")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=True)


def _fill(disk: Path) -> None:
    with open(disk / "filler", "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError:
            pass


def test_a_full_disk_leaves_nothing_half_written_and_says_so_in_one_line(run_copy, small_disk, run_cli):
    (small_disk / "forecast.csv").write_text("date,Close\n2023-02-13,1.0\n")  # the user's earlier forecast
    _fill(small_disk)
    code, _, err = run_cli("predict", run_copy, "--csv", small_disk / "forecast.csv")
    one_line_error(code, err, "the disk is full. Nothing was left half-written")
    assert (small_disk / "forecast.csv").read_text() == "date,Close\n2023-02-13,1.0\n"
    code, _, err = run_cli("evaluate", run_copy, "--out", small_disk / "evaluation")
    one_line_error(code, err, "the disk is full")
    code, _, err = run_cli("export", run_copy, "--out", small_disk / "export", "--format", "savedmodel")
    one_line_error(code, err, "cannot write")
    code, _, err = run_cli("fit", "--arch", "gru", "--units", "2", "--layers", "1", "--epochs", "1", "--out", small_disk)
    one_line_error(code, err, "the disk is full")
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler", "forecast.csv"]


def test_predict_into_a_missing_or_read_only_folder_is_one_line(run_copy, small_disk, run_cli, tmp_path):
    code, _, err = run_cli("predict", run_copy, "--csv", tmp_path / "missing" / "f.csv")
    one_line_error(code, err, "the folder does not exist")
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    code, _, err = run_cli("predict", run_copy, "--csv", small_disk / "f.csv")
    one_line_error(code, err, "the file system is read-only")


# === 8. One writer per run folder ===


def test_a_second_writer_of_a_run_folder_is_refused_while_the_first_holds_it(run_copy, run_cli, tmp_path):
    before = hashes_under(run_copy)
    holder = subprocess.Popen(  # another process, as a second `keras-seq export` would be
        [sys.executable, "-c", "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDONLY); "
         "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)", str(run_copy)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        for command in (["export", run_copy, "--overwrite", "--format", "keras"], ["evaluate", run_copy]):
            code, _, err = run_cli(*command)
            one_line_error(code, err, f"another keras-seq command is writing into {run_copy}")
    finally:
        holder.kill()
        holder.wait()
    assert hashes_under(run_copy) == before
    with folder_lock(run_copy, "export"):  # released with the process: it can be taken again
        pass


def test_export_without_overwrite_never_replaces_a_folder_that_appeared_meanwhile(run_copy):
    from keras_seq.runs.folder import staged_folder

    with pytest.raises(KerasSeqError, match="appeared while keras-seq was writing it"):
        with staged_folder(run_copy, "export", exclusive=True) as stage:
            (stage.path / "new").write_text("new")
    assert sorted(p.name for p in (run_copy / "export").iterdir()) == ["model.keras", "model.onnx", "model_card.json"]
    assert not [p for p in run_copy.iterdir() if p.name.endswith(".partial")]


# === 9. resume refuses a checkpoint that does not match its config ===


@pytest.fixture
def killed_run(run_dir, tmp_path):
    """A run folder as a SIGKILL during epoch 3 of 4 leaves it: config (running) and a real 2-epoch checkpoint."""
    from types import SimpleNamespace

    import keras

    from keras_seq.models.builders import load_model
    from keras_seq.training.loop import compile_trainer, write_checkpoint

    partial = tmp_path / ".gru-20260101T000000Z.abcd.partial"
    partial.mkdir()
    config = json.loads((run_dir / "config.json").read_text())
    config = {key: config[key] for key in ("created", "data", "windows", "model", "train", "backend")}
    config |= {"status": "running", "train": {**config["train"], "epochs": 4}}
    (partial / "config.json").write_text(json.dumps(config))
    trainer = compile_trainer(load_model(run_dir / "model.keras"), TrainSpec())
    trainer.optimizer.build(trainer.trainable_variables)
    best = SimpleNamespace(best_weights=trainer.get_weights(), best=0.5, best_epoch=1, wait=0)
    write_checkpoint(partial / "checkpoint.npz", trainer, best, 2, {"loss": [0.9, 0.7], "val_loss": [0.6, 0.5]})
    assert keras.backend.backend()
    return partial


def _edit_checkpoint(path: Path, **meta) -> None:
    with np.load(path) as stored:
        arrays = {key: stored[key] for key in stored.files}
    arrays["meta"] = np.array(json.dumps({**json.loads(str(arrays["meta"])), **meta}))
    np.savez(path, **arrays)


@pytest.mark.parametrize("edit, words", [
    ({"epochs_done": 999}, "it claims 999 epochs done, but the run trains 4"),
    ({"history": {"loss": [0.9], "val_loss": [0.6, 0.5]}}, "its history does not hold one value per epoch for its 2 epochs"),
    ({"best_epoch": 7}, "its best epoch 7 is not one of its 2 epochs"),
])
def test_resume_refuses_a_checkpoint_that_disagrees_with_its_config(killed_run, run_cli, edit, words):
    _edit_checkpoint(killed_run / "checkpoint.npz", **edit)
    before = hashes_under(killed_run.parent)
    code, _, err = run_cli("fit", "--resume", killed_run, "-q")
    one_line_error(code, err, f"does not match its config.json: {words}. Refusing to resume")
    assert hashes_under(killed_run.parent) == before


def test_resume_refuses_a_config_edited_to_fewer_epochs_and_another_archs_checkpoint(killed_run, run_cli, tmp_path):
    config = json.loads((killed_run / "config.json").read_text())
    (killed_run / "config.json").write_text(json.dumps({**config, "train": {**config["train"], "epochs": 1}}))
    code, _, err = run_cli("fit", "--resume", killed_run, "-q")
    one_line_error(code, err, "it claims 2 epochs done, but the run trains 1")
    lstm = {**config, "model": {**config["model"], "arch": "lstm"}}
    (killed_run / "config.json").write_text(json.dumps(lstm))
    before = hashes_under(tmp_path)
    code, _, err = run_cli("fit", "--resume", killed_run, "-q")
    one_line_error(code, err, "the checkpoint's weights do not fit this model")
    assert hashes_under(tmp_path) == before


def test_names_inside_a_folder(tmp_path):
    assert plain_name("savedmodel/gru/1") and not plain_name("a/../b") and not plain_name("") and not plain_name("./a")


def test_a_killed_commands_leftover_is_named_by_the_next_command(tmp_path):
    from keras_seq.errors import FolderWarning
    from keras_seq.runs.folder import CHECKPOINT_FILE, staged_folder

    killed_compare = tmp_path / ".compare-20260101T000000Z.ab12.partial"
    killed_fit = tmp_path / ".gru-20260101T000000Z.cd34.partial"
    busy = tmp_path / ".lstm-20260101T000000Z.ef56.partial"
    for folder in (killed_compare, killed_fit, busy):
        folder.mkdir()
    (killed_fit / CHECKPOINT_FILE).write_bytes(b"")
    with folder_lock(busy, "fit"), pytest.warns(FolderWarning) as caught:  # busy: a command is writing it now
        with staged_folder(tmp_path, "new"):
            pass
    messages = sorted(str(w.message) for w in caught)
    assert len(messages) == 2
    assert messages[0].startswith(f"{killed_compare} was left by a keras-seq command that was killed; nothing can resume")
    assert messages[1].endswith(f"resume it with `keras-seq fit --resume {killed_fit}`, or delete it.")
    assert killed_compare.exists() and killed_fit.exists() and busy.exists()  # named, never deleted


def test_json_files_in_a_folder_are_bounded_and_a_recorded_cache_folder_is_never_used(run_copy, tmp_path, run_cli):
    from keras_seq.runs.folder import specs_from_config

    config = json.loads((run_copy / "config.json").read_text())
    config["data"] |= {"source": "stooq:^DJI", "cache_dir": str(tmp_path / "elsewhere")}
    data, = specs_from_config(config, run_copy, ("data",))
    assert data.cache_dir is None and data.source == "stooq:^DJI"  # downloads go to the user's own cache
    (run_copy / "config.json").write_text(json.dumps(config) + " " * (17 << 20))
    code, _, err = run_cli("evaluate", run_copy)
    one_line_error(code, err, "config.json holds 17,")
    assert "Refusing to read it" in err and not (tmp_path / "elsewhere").exists()
