"""MLflow's `python_function` loader of a keras-seq export: onnxruntime, numpy and pandas, nothing of keras-seq.

`keras-seq export --format mlflow` copies this file into the MLflow model
folder (its `code/`) beside `data/model.onnx` and `data/model_card.json`;
`mlflow.pyfunc.load_model(folder)` calls `_load_pyfunc(data)`, and `predict`
takes a pandas frame of one row per forecast: the last window of raw values
as columns `<feature>[-k]` (k = window .. 1; `[-1]` is the last value), and,
for a model trained on several series, a `series` column of names. It
returns one row per row and step ahead: `row`, `series` (where given),
`step`, the forecast under the target's name and, for a quantile or interval
model, one column `<target>_q<level>` per level. This module must stay
importable without keras-seq: it imports only the standard library, numpy,
pandas and onnxruntime.
"""

import json
import os

import numpy as np
import pandas as pd

MAX_ROWS = 100_000  # rows one call may hold: a served model answers in bounded memory


def window_columns(features, window):
    """The input frame's window columns, oldest first: `Close[-16]` .. `Close[-1]` for each feature in turn."""
    return [f"{feature}[-{k}]" for feature in features for k in range(window, 0, -1)]


def _load_pyfunc(data_path):
    return Forecaster(data_path)


class Forecaster:
    """An exported keras-seq model as MLflow's python_function: `predict(frame)` -> a frame of forecasts."""

    def __init__(self, data_path):
        import onnxruntime

        with open(os.path.join(data_path, "model_card.json"), encoding="utf-8") as stream:
            card = json.load(stream)
        self.window, self.horizon = int(card["window"]), int(card["horizon"])
        self.features, self.target = list(card["features"]), str(card["target"])
        self.vocabulary = card.get("series_vocabulary")
        self.levels = list((card.get("quantile_output") or {}).get("levels") or [])
        self.pad = bool(card.get("pad", False))
        self.columns = window_columns(self.features, self.window)
        self.session = onnxruntime.InferenceSession(os.path.join(data_path, "model.onnx"),
                                                    providers=["CPUExecutionProvider"])
        inputs = self.session.get_inputs()
        self.window_input = next(i.name for i in inputs if i.type == "tensor(float)")
        self.series_input = next((i.name for i in inputs if i.type == "tensor(int32)"), None)
        self.output = self.session.get_outputs()[0].name

    def predict(self, frame, params=None):
        """Forecasts of each row's window."""
        if not isinstance(frame, pd.DataFrame):
            frame = pd.DataFrame(frame)
        x, index = self._inputs(frame)
        feed = {self.window_input: x}
        if self.series_input is not None:
            feed[self.series_input] = index
        output = np.asarray(self.session.run([self.output], feed)[0], dtype="float64")
        return self._table(frame, output)

    def _inputs(self, frame):
        if len(frame) > MAX_ROWS:
            raise ValueError(f"{len(frame)} rows in one request; at most {MAX_ROWS}. Send them in several requests.")
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise ValueError(f"the input has no column {missing[0]!r} ({len(missing)} of the {len(self.columns)} "
                             f"window columns are missing); expected {self.columns[0]!r} .. {self.columns[-1]!r}, "
                             "one row per forecast.")
        try:
            values = frame[self.columns].to_numpy(dtype="float32")
        except (TypeError, ValueError):
            raise ValueError("the window columns must hold numbers.") from None
        if not self.pad and not np.isfinite(values).all():
            raise ValueError("a window holds a missing or infinite value; this model reads whole windows.")
        x = values.reshape(len(frame), len(self.features), self.window).transpose(0, 2, 1).copy()
        index = None
        if self.series_input is not None:
            known = {str(name): k + 1 for k, name in enumerate(self.vocabulary or [])}
            names = frame["series"].astype(str) if "series" in frame.columns else [""] * len(frame)
            index = np.asarray([known.get(name, 0) for name in names], dtype="int32")
        return x, index

    def _table(self, frame, output):
        rows, steps = len(frame), self.horizon
        bands = output.reshape(rows, steps, -1) if self.levels else output.reshape(rows, steps, 1)
        point = bands[..., self.levels.index(0.5)] if self.levels else bands[..., 0]
        table = {"row": np.repeat(np.arange(rows), steps)}
        if "series" in frame.columns:
            table["series"] = np.repeat(frame["series"].astype(str).to_numpy(), steps)
        table["step"] = np.tile(np.arange(1, steps + 1), rows)
        table[self.target] = point.reshape(-1)
        for k, level in enumerate(self.levels):
            table[f"{self.target}_q{level:g}"] = bands[..., k].reshape(-1)
        return pd.DataFrame(table)


def example_frame(x, names=None, features=(), window=0):
    """An input frame of windows `x` (n, window, features) and their series `names`: the model's input example."""
    values = np.asarray(x, dtype="float64").transpose(0, 2, 1).reshape(len(x), -1)
    frame = pd.DataFrame(values, columns=window_columns(features, window))
    if names is not None:
        frame.insert(0, "series", [str(n) for n in names])
    return frame
