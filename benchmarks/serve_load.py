"""An MLflow export served by `keras-seq serve` (mlflow models serve) under load, beside in-process onnxruntime.

    python benchmarks/serve_load.py                                  # 2,000 requests from 16 clients per model
    python benchmarks/serve_load.py --requests 200 --clients 4 --epochs 1

Needs the mlflow extra. For the default LSTM and a quantile model (0.1, 0.5,
0.9) of the default ^DJI fit (`--epochs` short: the model's size, not its
skill, is what serving costs), it fits, exports `--format mlflow`, serves
the export on 127.0.0.1 with `--server-workers` workers, and sends
`--requests` POSTs of one window each to /invocations from `--clients`
concurrent clients. Every answer is checked against the same window's
forecast from the export's own loader in this process: a request without an
answer is lost, one whose figures differ (beyond 1e-6 relative) is wrong. The
same windows then run in this process through the loader (onnxruntime), on
as many threads. The table gives requests, lost, wrong, p50 and p99 latency
and requests per second.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np


def keras_seq(*args: str) -> str:
    done = subprocess.run([str(Path(sys.executable).with_name("keras-seq")), *args], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"keras-seq {args[0]} failed: {done.stderr.strip()[-600:]}")
    return done.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, process, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"the server at {url} did not start")
            time.sleep(0.3)


def post(url: str, body: bytes) -> tuple[float, list | None]:
    started = time.perf_counter()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.loads(response.read())["predictions"]
    except (OSError, ValueError, KeyError):
        answer = None
    return time.perf_counter() - started, answer


def figures(records: list, columns: list) -> np.ndarray:
    return np.asarray([[row[c] for c in columns] for row in records], dtype="float64")


def row(label: str, latencies: list, wall: float, lost: int, wrong: int) -> dict:
    ms = sorted(1000 * s for s in latencies)
    p99 = ms[min(len(ms) - 1, int(round(0.99 * (len(ms) - 1))))] if ms else float("nan")
    return {"way": label, "requests": len(latencies), "lost": lost, "wrong": wrong,
            "p50_ms": statistics.median(ms) if ms else float("nan"), "p99_ms": p99,
            "per_second": len(latencies) / wall}


def load_one(name: str, export: Path, args, windows: np.ndarray) -> list[dict]:
    """The served model and the in-process loader, on the same windows."""
    import pandas as pd

    sys.path.insert(0, str(export / "mlflow" / "code"))
    import keras_seq_onnx_forecaster as loader

    (data,) = [p for p in (export / "mlflow" / "data").rglob("model_card.json")]
    forecaster = loader.Forecaster(str(data.parent))
    columns = loader.window_columns(forecaster.features, forecaster.window)
    frames = [pd.DataFrame([w], columns=columns) for w in windows]
    expected = [forecaster.predict(frame) for frame in frames]
    answer_columns = [c for c in expected[0].columns if c not in ("row", "series", "step")]
    picks = [k % len(frames) for k in range(args.requests)]

    port = free_port()
    server = subprocess.Popen([str(Path(sys.executable).with_name("keras-seq")), "serve", str(export), "--port",
                               str(port), "--server-workers", str(args.server_workers)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(f"http://127.0.0.1:{port}/ping", server)
        url = f"http://127.0.0.1:{port}/invocations"
        bodies = [json.dumps({"dataframe_split": frame.to_dict(orient="split", index=False)}).encode()
                  for frame in frames]
        post(url, bodies[0])  # the first request loads nothing more, but warms the connection path
        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(args.clients) as pool:
            results = list(pool.map(lambda k: post(url, bodies[k]), picks))
        wall = time.perf_counter() - started
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    lost = sum(answer is None for _, answer in results)
    wrong = sum(answer is not None and not np.allclose(figures(answer, answer_columns),
                                                        expected[k][answer_columns].to_numpy(), rtol=1e-6)
                for k, (_, answer) in zip(picks, results))
    served = row(f"{name}: keras-seq serve ({args.server_workers} worker{'s' * (args.server_workers > 1)})",
                 [s for s, _ in results], wall, lost, wrong)

    def local(k):
        begun = time.perf_counter()
        out = forecaster.predict(frames[k])
        return time.perf_counter() - begun, out

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(args.clients) as pool:
        answers = list(pool.map(local, picks))
    wall = time.perf_counter() - started
    wrong = sum(not np.allclose(out[answer_columns].to_numpy(), expected[k][answer_columns].to_numpy(), rtol=1e-6)
                for k, (_, out) in zip(picks, answers))
    in_process = row(f"{name}: in-process loader (onnxruntime)", [s for s, _ in answers], wall, 0, wrong)
    sys.path.remove(str(export / "mlflow" / "code"))
    sys.modules.pop("keras_seq_onnx_forecaster", None)
    return [served, in_process]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--server-workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--windows", type=int, default=200, help="Distinct windows the requests cycle through.")
    parser.add_argument("--json", default=None, help="Also write the table's figures to this file.")
    args = parser.parse_args()

    from keras_seq.data.sources import DataSpec

    close = DataSpec().load(quote=False)["Close"].to_numpy()
    rows = []
    with tempfile.TemporaryDirectory(prefix="keras-seq-serve-load-") as tmp:
        for name, flags in (("lstm", []), ("lstm, quantiles 0.1,0.5,0.9", ["--quantiles", "0.1,0.5,0.9"])):
            out = Path(tmp) / str(len(rows))
            keras_seq("fit", "--epochs", str(args.epochs), *flags, "--out", str(out / "runs"), "-q")
            (run,) = (out / "runs").iterdir()
            keras_seq("export", str(run), "--format", "mlflow", "--out", str(out / "export"))
            window = json.loads((out / "export" / "model_card.json").read_text())["window"]
            starts = np.linspace(0, len(close) - window, args.windows).astype(int)
            windows = np.stack([close[s:s + window] for s in starts])
            rows += load_one(name, out / "export", args, windows)
    print(f"{args.requests} requests of one window each from {args.clients} concurrent clients, per model "
          f"({os.cpu_count()} cores)")
    print("| model: way | requests | lost | wrong | p50 ms | p99 ms | requests/s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['way']} | {r['requests']} | {r['lost']} | {r['wrong']} | {r['p50_ms']:.1f} | "
              f"{r['p99_ms']:.1f} | {r['per_second']:.0f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
