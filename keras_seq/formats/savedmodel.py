"""TF SavedModel in TF Serving's layout: `savedmodel/<name>/<version>/`, signature `serving_default`.

Its graph is checked against keras-seq's op allowlist (`safety.check_savedmodel`)
before TensorFlow loads it: by export, right after writing it, and by predict.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from keras_seq.formats import Loaded
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
        (input_name,) = serve.structured_input_signature[1]
        (output_name,) = serve.structured_outputs
        return Loaded(lambda x: serve(**{input_name: tf.constant(x)})[output_name].numpy(), input_name, output_name)

    def signature_extra(self, path: Path) -> dict:
        return {"signature": "serving_default"}


FORMAT = SavedModel()
