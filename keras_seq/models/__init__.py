"""Keras models of the recurrent architectures.

`ModelSpec`, `ARCHS` and `CELLS` are available without importing Keras; the
builders and layers import Keras on first use.
"""

from keras_seq.models.registry import Arch, arch_names, get_arch, register_arch, unregister_arch
from keras_seq.config.options import CELLS
from keras_seq.models.spec import ARCHS, ModelSpec, check_future_leak

_KERAS = {
    "build_model": "keras_seq.models.builders",
    "build_forecaster": "keras_seq.models.builders",
    "network_of": "keras_seq.models.builders",
    "describe_weights": "keras_seq.models.builders",
    "load_model": "keras_seq.models.builders",
    "set_scaling": "keras_seq.models.builders",
    "Standardize": "keras_seq.models.layers",
    "Destandardize": "keras_seq.models.layers",
    "DeepTransitionCell": "keras_seq.models.cells",
    "cell_parameters": "keras_seq.models.cells",
}

__all__ = ["ARCHS", "CELLS", "Arch", "ModelSpec", "arch_names", "check_future_leak", "get_arch",
           "register_arch", "unregister_arch", *_KERAS]


def __getattr__(name: str):
    if name in _KERAS:
        import importlib

        return getattr(importlib.import_module(_KERAS[name]), name)
    raise AttributeError(f"module 'keras_seq.models' has no attribute {name!r}")
