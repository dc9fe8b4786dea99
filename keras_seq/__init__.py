"""keras-seq: recurrent sequence models for time series in Keras 3.

From Python, the CLI's verbs are `keras_seq.fit`, `evaluate`, `export`,
`predict`, `update`, `tune`, `compare_models` and `run_recipe`, with the same honest splits, scaling, run folders and checks
(README.md, "From Python"); `build_model`, `make_windows`, `train_model` and
`evaluate_model` are the parts they are made of.

Importing `keras_seq` imports neither Keras nor pandas; the public functions
below load their modules on first use, so a backend chosen with
`KERAS_BACKEND` (or `keras_seq.backend.use_backend`) still takes effect.
Where none was chosen and Keras is not imported yet, keras-seq's default
backend (jax, as in the CLI) becomes Keras's; TensorFlow's native start-up
notices are kept off the terminal.
"""

from keras_seq.backend import default_to_keras_seq_backend as _default_backend

__version__ = "0.2.0"
_default_backend()

_LAZY = {
    # the verbs, as from the CLI
    "fit": ("keras_seq.workflows.fit", "fit_run"),
    "evaluate": ("keras_seq.workflows.evaluate", "evaluate_run"),
    "export": ("keras_seq.artifacts.export", "export_run"),
    "predict": ("keras_seq.workflows.predict", "predict_artifact"),
    "update": ("keras_seq.runs.update", "update_run"),
    "tune": ("keras_seq.workflows.tune", "tune"),
    "compare_models": ("keras_seq.workflows.compare", "compare_models"),
    "CompareSpec": ("keras_seq.runs.comparison", "CompareSpec"),
    "resume_comparison": ("keras_seq.workflows.compare", "resume_comparison"),
    "load_recipe": ("keras_seq.workflows.recipe", "load_recipe"),
    "run_recipe": ("keras_seq.workflows.recipe", "run_recipe"),
    "TuneSpec": ("keras_seq.config.search", "TuneSpec"),
    "Param": ("keras_seq.config.search", "Param"),
    # what a run is made of
    "DataSpec": ("keras_seq.data.sources", "DataSpec"),
    "WindowSpec": ("keras_seq.data.windows", "WindowSpec"),
    "ModelSpec": ("keras_seq.models.spec", "ModelSpec"),
    "TrainSpec": ("keras_seq.training.loop", "TrainSpec"),
    "register_arch": ("keras_seq.models.registry", "register_arch"),
    # the parts, for code of one's own
    "load_series": ("keras_seq.data.sources", "load_series"),
    "make_windows": ("keras_seq.data.windows", "make_windows"),
    "build_model": ("keras_seq.models.builders", "build_model"),
    "train_model": ("keras_seq.training.loop", "train_model"),
    "evaluate_model": ("keras_seq.evaluation.report", "evaluate_model"),
    "load_model": ("keras_seq.models.builders", "load_model"),
    "KerasSeqError": ("keras_seq.errors", "KerasSeqError"),
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attribute = _LAZY[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'keras_seq' has no attribute {name!r}")
