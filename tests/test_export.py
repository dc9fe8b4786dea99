"""keras_seq/artifacts/export.py: artifacts for every arch, parity, atomic writes, any training backend."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys

import pytest

from conftest import files_under
from keras_seq.data.sources import DataSpec
from keras_seq.data.windows import WindowSpec
from keras_seq.errors import KerasSeqError
from keras_seq.artifacts.export import FORMATS, artifact_sha256, export_run, parse_formats
from keras_seq.models import ModelSpec
from keras_seq.workflows.fit import fit_run
from keras_seq.training.loop import TrainSpec

# The Bidirectional wrapper once (around SimpleRNN, drnn's layer, in both directions), and the GRU layer as an
# ensemble of two, the second reading the window's last 5 steps, their median inside the model (the median of three
# and four: test_ensemble.py; three members
# of two layers took this fixture 44 s instead of 15). (The LSTM's ONNX and SavedModel exports are checked by the
# dji-lstm-export recipe's run in test_recipes.py, a masked model's export, NaN in, in test_competition.py.)
ARCH_CELLS = [("brnn", "rnn", 1), ("gru", "rnn", 2)]


def tiny_run(out, arch="lstm", cell="rnn", ensemble=1, **window):
    return fit_run(DataSpec(), WindowSpec(window=8, **window),
                   ModelSpec(arch=arch, cell=cell, units=4, layers=2, ensemble=ensemble,
                             ensemble_windows=(8, 5) if ensemble > 1 else ()),
                   TrainSpec(epochs=1, batch_size=64), out=out, verbose=0).path


@pytest.fixture(scope="module", params=ARCH_CELLS, ids=[f"{a}-{c}" + (f"-ensemble{n}" if n > 1 else "")
                                                         for a, c, n in ARCH_CELLS])
def exported(request, tmp_path_factory):
    arch, cell, members = request.param
    run_dir = tiny_run(tmp_path_factory.mktemp(f"{arch}-{cell}"), arch, cell, members)
    return run_dir, export_run(run_dir, "all")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny gru run folder; `trained(tmp_path)` gives each test its own copy of it."""
    source = tiny_run(tmp_path_factory.mktemp("trained"), "gru")
    return lambda into: shutil.copytree(source, into / source.name)


def test_every_arch_exports_every_format_with_parity(exported):
    run_dir, result = exported
    assert result.path == run_dir / "export"
    assert set(result.parity) == set(FORMATS)
    for fmt, check in result.parity.items():
        assert check["relative_diff"] <= 1e-5 and check["windows"] == 188
    card = json.loads((result.path / "model_card.json").read_text())
    assert card == result.card
    assert card["window"] == 8 and card["horizon"] == 1 and card["target_kind"] == "next"
    assert card["features"] == ["Close"] and card["scaling"]["target_name"] == "Close"
    assert card["data"]["source"] == "dji" and card["data"]["last_date"] == "2023-02-10"
    assert card["test_metrics"]["model"]["mae"] > 0 and card["training_backend"] == "tensorflow"
    assert card["artifacts"]["savedmodel"]["path"] == f"savedmodel/{card['arch']}/1"
    assert card["artifacts"]["onnx"]["inputs"][0]["shape"] == [None, 8, 1] and card["artifacts"]["onnx"]["opset"] >= 13
    assert card["artifacts"]["savedmodel"]["signature"] == "serving_default"
    assert card["model"]["ensemble"] == {"brnn": 1, "gru": 2}[card["arch"]]
    assert card["model"]["ensemble_windows"] == {"brnn": [], "gru": [8, 5]}[card["arch"]]
    for fmt, entry in card["artifacts"].items():
        assert artifact_sha256(result.path / entry["path"]) == entry["sha256"]
    assert not [p for p in run_dir.iterdir() if p.name.startswith(".")]  # no staging folder left
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(result.path.stat().st_mode) == 0o777 & ~umask  # as readable as any folder the user makes


def test_a_failed_parity_check_leaves_nothing(tmp_path, trained):
    run_dir = trained(tmp_path)
    before = files_under(run_dir)
    with pytest.raises(KerasSeqError, match="savedmodel artifact differs from the Keras model .* nothing was exported"):
        export_run(run_dir, "savedmodel", tolerance=-1.0)
    assert files_under(run_dir) == before


def test_an_existing_export_is_replaced_only_with_overwrite(tmp_path, trained):
    run_dir = trained(tmp_path)
    export_run(run_dir, "keras")
    with pytest.raises(KerasSeqError, match="export folder .*export already exists. Pass `overwrite`"):
        export_run(run_dir, "onnx")
    result = export_run(run_dir, "onnx", overwrite=True)
    assert sorted(p.name for p in result.path.iterdir()) == ["model.onnx", "model_card.json"]


@pytest.mark.parametrize("value, expected", [("all", FORMATS), ("onnx", ("onnx",)), ("keras,onnx", ("keras", "onnx"))])
def test_formats(value, expected):
    assert parse_formats(value) == expected


def test_unknown_format():
    with pytest.raises(KerasSeqError, match="unknown export format 'pt'. Expected one of: savedmodel, onnx, keras, mlflow, all"):
        parse_formats("onnx,pt")


@pytest.mark.slow
def test_a_model_trained_on_jax_exports_with_parity(tmp_path):
    """Python code on jax trains, then exports: the export runs in a tensorflow process (keras_seq.jobs.processes),
    and its refusal comes back as one line."""
    code = ("import keras, keras_seq as ks\nassert keras.backend.backend() == 'jax'\n"
            "run = ks.fit(ks.DataSpec(), ks.WindowSpec(window=8), ks.ModelSpec(arch='gru', units=4), ks.TrainSpec(epochs=1), "
            f"out={str(tmp_path)!r}, verbose=0)\n"
            "print(max(c['relative_diff'] for c in ks.export(run.path, 'onnx,savedmodel').parity.values()))\n"
            "try:\n    ks.export(run.path, 'onnx')\nexcept ks.KerasSeqError as exc:\n    print(exc)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "KERAS_BACKEND": "jax"})
    assert done.returncode == 0, done.stderr
    largest, refused = done.stdout.strip().splitlines()[-2:]
    assert float(largest) <= 1e-5 and "already exists. Pass `overwrite`" in refused
    (run_dir,) = list(tmp_path.iterdir())
    assert json.loads((run_dir / "export" / "model_card.json").read_text())["training_backend"] == "jax"


def test_export_cli_prints_parity_and_refuses_bad_input(tmp_path, run_cli, trained):
    run_dir = trained(tmp_path)
    code, out, err = run_cli("export", run_dir, "--format", "onnx")
    assert code == 0, err
    assert "onnx" in out and "parity: max |diff|" in out and "of the target's std over 188 test windows" in out
    for args, words in [
        (["export", run_dir, "--format", "pt"], "unknown export format 'pt'"),
        (["export", run_dir, "--format", "onnx"], "already exists. Pass --overwrite"),
        (["export", tmp_path / "nothing"], "run folder not found"),
    ]:
        code, _, err = run_cli(*args)
        assert code == 1 and err.strip().count("\n") == 0 and words in err
    shutil.copytree(run_dir, tmp_path / "broken")
    (tmp_path / "broken" / "model.keras").unlink()
    code, _, err = run_cli("export", tmp_path / "broken")
    assert code == 1 and "has no model.keras" in err


def test_each_format_is_one_registered_module_that_export_and_predict_share(tmp_path):
    from keras_seq.errors import KerasSeqError
    from keras_seq.artifacts.export import EXPORT_ENTRIES
    from keras_seq.artifacts import detect_format, format_names, get_format, register_format

    assert format_names() == FORMATS == ("savedmodel", "onnx", "keras")
    assert set(EXPORT_ENTRIES) == {"model_card.json", "savedmodel", "model.onnx", "model.keras", "mlflow",
                                   "onnx", "keras", "cards"}  # versions 2.. of an updated run
    with pytest.raises(KerasSeqError, match="already registered"):
        register_format(get_format("onnx"))
    (tmp_path / "sm").mkdir()
    (tmp_path / "sm" / "saved_model.pb").write_bytes(b"")
    for name in ("model.onnx", "model.keras"):
        (tmp_path / name).write_bytes(b"")
    assert [getattr(detect_format(tmp_path / p), "name", None) for p in ("sm", "model.onnx", "model.keras", "x.csv")] == [
        "savedmodel", "onnx", "keras", None]


@pytest.mark.parametrize("model, windows, formats", [
    (dict(scaler="window", transform="logdiff", residual=True), dict(supervision="every", horizon=3), ("onnx",)),
    (dict(scaler="zscore", transform="none", residual=False), dict(horizon=2), ("savedmodel",)),
], ids=["window-logdiff-every", "zscore"])
def test_every_scaling_exports_raw_in_raw_out_with_parity(tmp_path, model, windows, formats):
    """The transform, the per-window or z-score scaling and the last-step read all live in the artifact.

    One format each: both are traced from the same Keras model, and every arch checks every format above."""
    run_dir = fit_run(DataSpec(start="2021-06-01"), WindowSpec(window=8, **windows),
                      ModelSpec(arch="gru", units=4, layers=1, **model), TrainSpec(epochs=1, batch_size=64),
                      out=tmp_path, verbose=0).path
    result = export_run(run_dir, ",".join(formats))
    assert set(result.parity) == set(formats)
    for fmt in formats:
        assert result.parity[fmt]["relative_diff"] <= 1e-5 and result.parity[fmt]["windows"] > 0
        assert result.card["artifacts"][fmt]["outputs"][0]["shape"][-1] == windows["horizon"]
