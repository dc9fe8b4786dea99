"""ONNX (`model.onnx`): fixed window length, dynamic batch, run on onnxruntime.

Checked by `safety.check_onnx` (opset, no external data, no custom domains)
before onnxruntime loads it: by export, right after writing it, and by predict.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from keras_seq.errors import KerasSeqError
from keras_seq.artifacts import Loaded, declared_window
from keras_seq.safety import check_onnx


class Onnx:
    name = "onnx"
    entry = "model.onnx"
    card_levels = 3  # a version 2.. lies in <format>/<name>/<version>/, three folders below the card
    uses_backend = False  # onnxruntime alone: `--backend` does not apply

    def write(self, model, folder: Path, name: str, version: int) -> Path:
        path = folder / self.entry
        window = np.zeros((1, *model.inputs[0].shape[1:]), dtype="float32")
        model([window, np.zeros(1, dtype="int32")] if len(model.inputs) > 1 else window)  # Keras exports a called model
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.export(str(path), format="onnx", verbose=False)
        return path  # checked by `load`, which export runs on it next

    def detect(self, path: Path) -> bool:
        return path.is_file() and path.suffix == ".onnx"

    def load(self, path: Path) -> Loaded:
        import onnxruntime

        check_onnx(path)
        try:
            session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for a bad file
            raise KerasSeqError(f"{path} is not a loadable ONNX model ({' '.join(str(exc).split())[:120]}).") from None
        inputs, (output_meta,) = session.get_inputs(), session.get_outputs()
        window = next((i.name for i in inputs if i.type == "tensor(float)"), None)
        series = next((i.name for i in inputs if i.type == "tensor(int32)"), None)
        if window is None or len(inputs) != 1 + (series is not None):
            raise KerasSeqError(f"{path} does not take a keras-seq model's inputs (a float32 window, and an int32 "
                                f"series index or nothing). Export the run again.")

        def run(x, index=None):
            feed = {window: x} if series is None else {window: x, series: np.asarray(index, dtype="int32")}
            return run_bounded(session, output_meta.name, feed, path)

        shape = next(i.shape for i in inputs if i.name == window)
        return Loaded(run, window, output_meta.name, series, window_shape=declared_window(shape[1:]))

    def signature_extra(self, path: Path) -> dict:
        import onnx

        return {"opset": max(op.version for op in onnx.load(str(path)).opset_import if op.domain in ("", "ai.onnx"))}


FORMAT = Onnx()


FORECAST_SECONDS = 300  # one call of an ONNX model; keras-seq's exports answer a 10,000-series batch in seconds


def run_bounded(session, output: str, feed: dict, path: Path):
    """`session.run`, stopped after `FORECAST_SECONDS` (onnxruntime's terminate flag), every failure one line."""
    import threading

    import onnxruntime

    options = onnxruntime.RunOptions()
    timer = threading.Timer(FORECAST_SECONDS, lambda: setattr(options, "terminate", True))
    timer.daemon = True
    timer.start()
    try:
        return session.run([output], feed, options)[0]
    except Exception as exc:  # onnxruntime's own types: a kernel that fails on these inputs, or the terminate flag
        if options.terminate:
            raise KerasSeqError(f"{path} ran longer than {FORECAST_SECONDS} s on one batch and was stopped: a "
                                "keras-seq export answers in seconds. Refusing it.") from None
        raise KerasSeqError(f"{path} failed while forecasting ({' '.join(str(exc).split())[:160]}). "
                            "Export the run again.") from None
    finally:
        timer.cancel()
