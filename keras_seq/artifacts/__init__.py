"""Export formats: each is one module that says how to write, recognize and load its artifact.

A format is an object with:
- `name` (what `--format` calls it) and `entry` (the file or folder it writes
  in an export folder);
- `card_levels`: how many folders above the artifact its `model_card.json` lies;
- `uses_backend`: whether loading it imports Keras (so a chosen backend applies);
- `write(model, folder, name, version) -> path`: write the artifact of a
  keras-seq model (tensorflow backend) into an existing folder;
- `detect(path) -> bool`: whether `path` is such an artifact;
- `load(path) -> Loaded`: check what the artifact may run, then load it in
  its own runtime, as a function of a float32 `(batch, window, features)` array
  (and, for a model that reads the series, an int32 `(batch,)` series index);
- `signature_extra(path) -> dict`: format-specific fields of the model card.

`keras_seq.artifacts.export` writes every format and proves each equal to the Keras
model through its own `load`; `keras_seq.workflows.predict` loads whichever format it
is given through the same `load`. A new format is one module calling
`register_format`. Nothing here imports Keras or TensorFlow.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

from keras_seq.plugins import Registry

CARD_FILE = "model_card.json"  # an export folder's description of its artifacts (`keras_seq.artifacts.export`)


@dataclasses.dataclass(frozen=True)
class Loaded:
    """An artifact loaded in its own runtime: `run(x)` (or `run(x, series)`) maps raw windows to raw forecasts.

    `series_name` is the name of the series index input, None where the model reads windows alone.
    """

    run: Callable
    input_name: str
    output_name: str
    series_name: str | None = None
    model: object = None  # the Keras model, where the artifact is one (MC dropout runs it with dropout on)
    window_shape: tuple | None = None  # (window, features) as the artifact's graph declares them (None: unknown)


def declared_window(dims) -> tuple | None:
    """The (window, features) an artifact's window input declares after its batch axis, where both are fixed."""
    dims = tuple(dims)
    return dims if len(dims) == 2 and all(isinstance(d, int) for d in dims) else None


_FORMATS = Registry("export format", unique=True)  # `all` exports them in registration order
register_format = _FORMATS.register
format_names = _FORMATS.names
get_format = _FORMATS.lookup


def detect_format(path: Path):
    """The format whose artifact `path` is, or None."""
    return next((fmt for fmt in _FORMATS.values() if fmt.detect(Path(path))), None)


def io_signature(model, loaded: Loaded, **extra) -> dict:
    """Names, dtypes and shapes of an artifact's input and output, plus format-specific `extra` fields."""
    window, features = (int(d) for d in model.inputs[0].shape[1:])
    series = [{"name": loaded.series_name, "dtype": "int32", "shape": [None]}] if loaded.series_name else []
    return {
        "inputs": [{"name": loaded.input_name, "dtype": "float32", "shape": [None, window, features]}, *series],
        "outputs": [{"name": loaded.output_name, "dtype": "float32", "shape": [None, *model.output_shape[1:]]}],
        **extra,
    }


def _register_builtin() -> None:
    from keras_seq.artifacts import keras_file, onnx, savedmodel

    for module in (savedmodel, onnx, keras_file):
        register_format(module.FORMAT)


_register_builtin()
