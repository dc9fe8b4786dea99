"""Shared fixtures: small real series, a local HTTP server, and the CLI."""

from __future__ import annotations

import http.server
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Keep every test away from the user's cache of online data.
os.environ.pop("KERAS_SEQ_CACHE", None)
# JAX's persistent compilation cache, shared by this run's workers and the processes they start (each new
# process otherwise compiles the same tiny models again: a 1-epoch `keras-seq fit` took 12.6 s cold and 7-9 s
# warm). The first process of a run (xdist's controller) makes the folder, the workers inherit it through the
# environment, and the controller removes it when the run ends. A cache folder the user set is left alone.
MADE_JAX_CACHE = "JAX_COMPILATION_CACHE_DIR" not in os.environ
if MADE_JAX_CACHE:
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="keras-seq-tests-jax-cache-")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")

REPO = Path(__file__).resolve().parents[1]

# The tests run in-process on tensorflow unless KERAS_BACKEND names another backend (`make test`'s jax and torch
# passes), whichever test module imports Keras first. The variable is not left set: the processes tests start
# get keras-seq's own default, as a user's would.
if not os.environ.get("KERAS_BACKEND"):
    os.environ["KERAS_BACKEND"] = "tensorflow"
    from keras_seq.backend import import_keras

    import_keras()  # TensorFlow's start-up notices kept off the terminal, as keras-seq keeps them
    del os.environ["KERAS_BACKEND"]


def on_other_backends(values, chosen):
    """`values` as parameters, those in `chosen` marked `backend`: the jax and torch passes run those, and the
    tensorflow pass runs every one (a per-arch check repeated for every arch on three backends cost minutes)."""
    return [pytest.param(value, marks=pytest.mark.backend) if value in chosen else value for value in values]


# The files that take longest (`make test --durations`), started first: with two workers each taking whole files
# (`--dist loadfile`), a long file collected last kept one worker busy minutes after the other had finished.
LONGEST_FIRST = ("test_fanout", "test_distributed", "test_export", "test_tuning_workers", "test_interrupt_commands",
                 "test_tuning", "test_recipes", "test_benchmarks", "test_bad_inputs", "test_interrupt", "test_compare",
                 "test_cells", "test_trust", "test_cli", "test_backend", "test_trust_outside", "test_serving")


def pytest_collection_modifyitems(session, config, items):
    rank = {name: index for index, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.stem, len(rank)))  # stable: each file's own order is kept


def pytest_sessionfinish(session, exitstatus):
    if MADE_JAX_CACHE and not hasattr(session.config, "workerinput"):  # the first process, after every worker
        shutil.rmtree(os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)


@pytest.fixture
def price_frame():
    """A synthetic daily 'price' with two extra columns: 300 business days."""
    rng = np.random.default_rng(0)
    dates = pd.bdate_range("2020-01-01", periods=300)
    close = 100 + np.cumsum(rng.normal(0, 1, size=len(dates)))
    return pd.DataFrame(
        {"Close": close, "Volume": rng.uniform(1e6, 2e6, size=len(dates)), "Open": close + rng.normal(0, 0.5, size=len(dates))},
        index=pd.DatetimeIndex(dates, name="Date"),
    )


@pytest.fixture
def write_csv(tmp_path):
    """Write text to a CSV file in tmp_path and return its path."""

    def write(text: str, name: str = "data.csv", mode: str = "w") -> Path:
        path = tmp_path / name
        if mode == "wb":
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path

    return write


class LocalServer:
    """An HTTP server on 127.0.0.1 that answers each path from `routes`."""

    def __init__(self):
        self.routes: dict[str, tuple[int, str]] = {}
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                server.requests.append(self.path)
                path = self.path.split("?")[0]
                status, body = server.routes.get(path, (404, "not found"))
                payload = body.encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "text/csv")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def local_server():
    server = LocalServer()
    yield server
    server.close()


@pytest.fixture
def closed_port_url():
    """A URL on 127.0.0.1 where nothing listens."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def run_cli(capsys):
    """Run `keras-seq ARGS` in this process through its real entry point.

    Returns (exit code, stdout, stderr).
    """
    from keras_seq.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = 0
        try:
            main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def fit_tiny(run_cli, tmp_path):
    """`keras-seq fit FLAGS` of a tiny model (8-step windows, 4 units, one epoch) on ^DJI since 2022; returns the
    run folder."""

    def fit(*flags: str) -> Path:
        code, _, err = run_cli("fit", "--window", "8", "--units", "4", "--layers", "1", "--epochs", "1", "--start",
                               "2022-01-01", *flags, "--out", tmp_path / "runs", "-q")
        assert code == 0, err
        (run,) = (tmp_path / "runs").iterdir()
        return run

    return fit


def run_console(*args: str, env: dict | None = None, cwd: Path | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run the installed `keras-seq` console script in a new process."""
    script = Path(sys.executable).with_name("keras-seq")
    return subprocess.run(
        [str(script), *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=timeout,
    )


def files_under(folder: Path) -> dict:
    """Every file under `folder` with its size and modification time."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


@pytest.fixture(scope="session")
def chromium():
    """Debian's headless Chromium, installed with apt-get where it is missing (as root, as CI runs)."""
    found = shutil.which("chromium")
    if found is None:
        for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
            done = subprocess.run(command, capture_output=True, text=True, timeout=600,
                                  env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
            assert done.returncode == 0, f"{' '.join(command)} failed: {done.stderr[-1000:]}"
        found = shutil.which("chromium")
    assert found, "chromium is not installed and apt-get did not install it"
    return found


def open_page(chromium, page, *flags, fragment=""):
    """What headless Chromium prints for `page` (`--dump-dom`: the document after its scripts ran)."""
    done = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--virtual-time-budget=8000", *flags, page.as_uri() + fragment],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout
