"""Trust, round 3, for what comes from outside a run folder: dask workers, recipes, kept comparisons,
servers, sizes and names, and studies (the run-folder and artifact cases are in test_trust.py).

Each test builds its hostile input itself, small, and checks the one-line
message and exit code, and that nothing outside the expected place changed.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from test_safety import hashes_under, one_line_error
from test_trust import _rewrite_npz


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
    import keras_seq.runs.fits

    keras_seq.runs.fits.fit_one_as_bytes = hostile
'''


@pytest.mark.slow
def test_a_hostile_dask_worker_can_neither_name_the_folder_nor_run_code_and_a_dead_one_is_said(tmp_path, monkeypatch):
    import dask
    from distributed import LocalCluster

    from keras_seq.jobs import pool as fanout
    from keras_seq.runs.comparison import CompareSpec
    from keras_seq.workflows.compare import compare_models
    from keras_seq.data.sources import DataSpec
    from keras_seq.data.windows import WindowSpec
    from keras_seq.errors import KerasSeqError
    from keras_seq.models import ModelSpec
    from keras_seq.training.loop import TrainSpec

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
    from keras_seq.data.download import cache_file

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
    cache_file(None, "stooq", "^DJI").symlink_to(secret)
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


@pytest.fixture(scope="module")
def cut_comparison(tmp_path_factory):
    """A comparison of drnn and gru, stopped after drnn's fit: the folder compare --resume reads."""
    from keras_seq.runs import comparison as compare
    from keras_seq.workflows.compare import compare_models
    from keras_seq.data.sources import DataSpec
    from keras_seq.data.windows import WindowSpec
    from keras_seq.errors import RunInterrupted
    from keras_seq.models import ModelSpec
    from keras_seq.training.loop import TrainSpec

    real, out = compare.fit_one, tmp_path_factory.mktemp("cut")

    def first_only(frame, task):
        if task.specs.model.arch == "gru":
            raise RunInterrupted("stopped by the test")
        return real(frame, task)

    compare.fit_one = first_only
    try:
        with pytest.raises(RunInterrupted):
            compare_models(DataSpec(start="2022-01-01"), WindowSpec(window=8), ModelSpec(units=2, layers=1),
                           TrainSpec(epochs=1, batch_size=64), spec=compare.CompareSpec(archs=("drnn", "gru")), out=out)
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

    from keras_seq.workflows.compare import resume_comparison
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
    from keras_seq.data import download, sources
    from keras_seq.errors import KerasSeqError

    server = _Endless(trickle)
    monkeypatch.setenv("KERAS_SEQ_STOOQ_URL", server.url)
    monkeypatch.setattr(download, "MAX_DOWNLOAD_BYTES", 4 << 20)
    monkeypatch.setattr(download, "DOWNLOAD_SECONDS", 2)
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

    from keras_seq.runs.comparison import CompareSpec
    from keras_seq.workflows.compare import compare_models
    from keras_seq.errors import KerasSeqError

    monkeypatch.setattr("keras_seq.jobs.pool.CONNECT_SECONDS", 1)
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
    from keras_seq.jobs.pool import Fanout, open_pool

    with pytest.warns(RunWarning, match=f"jobs=64 is more than this machine's {os.cpu_count()} cores"):
        with open_pool(Fanout(jobs=64), "jax") as pool:
            assert pool.executor._max_workers == os.cpu_count()


@pytest.mark.parametrize("args, words", [
    (("fit", "--units", "200000"), "--units must be at most 4096. Received: units=200000"),
    (("fit", "--layers", "1000"), "--layers must be at most 64"),
    (("predict", "latest", "--steps", "3000000"), "--steps must be at most 10,000"),
    (("predict", "latest", "--steps", "100000000"), "--steps must be at most 10,000"),
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
    one_line_error(code, err, "'data.target' names one of 3,000,000 characters")
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


