"""keras-seq: recurrent sequence models for time series in Keras 3.

The package reads as the path data takes: `data` (load a series, split,
window) -> `models` (build a Keras model) -> `training` (fit, run folder)
-> `evaluation` (metrics, baselines, plots) -> `runs` (fit and evaluate a
run folder) -> `cli`.

Importing `keras_seq` imports neither Keras nor pandas; the public functions
below load their modules on first use, so a backend chosen with
`KERAS_BACKEND` (or `keras_seq.backend.use_backend`) still takes effect.
"""

__version__ = "0.1.0"

_LAZY = {
    "load_series": "keras_seq.data.sources",
    "DataSpec": "keras_seq.data.sources",
    "make_windows": "keras_seq.data.windows",
    "WindowSpec": "keras_seq.data.windows",
    "build_model": "keras_seq.models.builders",
    "ModelSpec": "keras_seq.models.spec",
    "KerasSeqError": "keras_seq.errors",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'keras_seq' has no attribute {name!r}")
