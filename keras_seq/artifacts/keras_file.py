"""A copy of the Keras model (`model.keras`), loaded with keras-seq's checked loader (safe mode on)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from keras_seq.artifacts import Loaded, declared_window


class KerasFile:
    name = "keras"
    entry = "model.keras"
    card_levels = 3  # a version 2.. lies in <format>/<name>/<version>/, three folders below the card
    uses_backend = True  # loading imports Keras/TensorFlow, so `--backend` applies

    def write(self, model, folder: Path, name: str, version: int) -> Path:
        path = folder / self.entry
        model.save(path)
        return path

    def detect(self, path: Path) -> bool:
        return path.is_file() and path.suffix == ".keras"

    def load(self, path: Path) -> Loaded:
        from keras_seq.backend import import_keras

        import_keras()
        from keras_seq.models.builders import load_model

        model = load_model(path)
        series = "series" if len(model.inputs) > 1 else None

        def run(x, index=None):
            return model.predict(x if series is None else [x, np.asarray(index, dtype="int32")], verbose=0)

        return Loaded(run, "window", "output_0", series, model,
                      window_shape=declared_window(tuple(model.inputs[0].shape)[1:]))

    def signature_extra(self, path: Path) -> dict:
        return {}


FORMAT = KerasFile()
