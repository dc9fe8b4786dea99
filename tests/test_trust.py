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
