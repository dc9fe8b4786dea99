"""TF SavedModel in TF Serving's layout: `savedmodel/<name>/<version>/`, signature `serving_default`.

Its graph is checked against keras-seq's op allowlist (`safety.check_savedmodel`)
before TensorFlow loads it: by export, right after writing it, and by predict.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from keras_seq.errors import KerasSeqError
from keras_seq.artifacts import Loaded, declared_window
from keras_seq.safety import check_savedmodel


class SavedModel:
    name = "savedmodel"
    entry = "savedmodel"
    card_levels = 3  # savedmodel/<name>/<version>/ lies three folders below the card
    uses_backend = True  # loading imports Keras/TensorFlow, so `--backend` applies

    def write(self, model, folder: Path, name: str, version: int) -> Path:
        path = folder / self.entry / name / str(version)
        path.parent.mkdir(parents=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.export(str(path), format="tf_saved_model", verbose=False)
        return path  # checked by `load`, which export runs on it next: an export that needs an op off the list fails

    def detect(self, path: Path) -> bool:
        return path.is_dir() and (path / "saved_model.pb").is_file()

    def load(self, path: Path) -> Loaded:
        from keras_seq.backend import import_tensorflow

        tf = import_tensorflow()  # with its start-up notices kept off the terminal
        check_savedmodel(path)  # before TensorFlow runs any of it
        serve = tf.saved_model.load(str(path)).signatures["serving_default"]
        specs = serve.structured_input_signature[1]
        window = next((n for n, spec in specs.items() if spec.dtype == tf.float32), None)
        series = next((n for n, spec in specs.items() if spec.dtype == tf.int32), None)
        (output_name,) = serve.structured_outputs
        if window is None or len(specs) != 1 + (series is not None):
            raise KerasSeqError(f"{path} does not take a keras-seq model's inputs (a float32 window, and an int32 "
                                "series index or nothing). Export the run again.")

        def run(x, index=None):
            feed = {window: tf.constant(x)} | ({series: tf.constant(index, dtype=tf.int32)} if series else {})
            return serve(**feed)[output_name].numpy()

        return Loaded(run, window, output_name, series, window_shape=declared_window(tuple(specs[window].shape)[1:]))

    def signature_extra(self, path: Path) -> dict:
        return {"signature": "serving_default"}


FORMAT = SavedModel()
