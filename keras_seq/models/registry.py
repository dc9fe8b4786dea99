"""The arch registry: every arch keras-seq can build, by name (this module does not import Keras).

An arch is a backbone: a function `backbone(spec, x, sequences)` that takes
the normalized window `x` (a Keras tensor, `(batch, window, features)`) and
the `ModelSpec`, and returns the features the head reads: `(batch, k)`
when `sequences` is false, `(batch, window, k)` when it is true (target
kind `sequence`). Scaling before it and the head after it are the
Forecaster's other parts (`keras_seq.models.builders`).

A new arch is one call, from any module, before it is used:

    register_arch("myarch", my_backbone, help="what it is")

after which `ModelSpec(arch="myarch")`, `keras-seq fit --arch myarch`,
`compare`, recipes, `summary`, `export` and `predict` all know it. The
built-in archs are registered below by the dotted name of their backbone,
so that nothing here imports Keras.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Callable

from keras_seq.config.options import (CELLS, INT, OPTIONS, TEXT, Option, reads_options, register_option,
                                      unregister_option)
from keras_seq.errors import KerasSeqError


@dataclasses.dataclass(frozen=True)
class Arch:
    """A registered arch.

    Args:
        name: str. What `--arch` and `ModelSpec.arch` call it.
        backbone: callable or str. `backbone(spec, x, sequences)` (see the
            module docstring), or `"module:function"` to import on first use.
        causal: bool. False where the output at step t reads later steps
            (`brnn`): such an arch is refused for target kind `sequence`.
            Defaults to `True`.
        help: str. One line for `--help` and error messages.
        options: tuple of str. The options the arch reads beyond units,
            layers and dropout (e.g. `("cell",)`), for `summary` and
            `compare`'s table. Given to `register_arch`, an entry may be a new
            `keras_seq.config.options.Option` of section `model`: the arch's
            own hyperparameter, added to the option table (`spec.<name>` in
            the backbone; a flag, a recipe key, a config.json entry and a
            `tune` range like any other).
        finish: callable, str or None. `finish(spec, x, output)`: maps the
            head's output (`(batch, horizon)`) to the network's, given the
            normalized window `x` (`esrnn` multiplies the seasonal factors
            back). Only for a point forecast after the window's last step.
            Defaults to none.
        scaler: str. The scaler the arch is built for (`es` for `esrnn`):
            `ModelSpec` takes it in place of the default `window`, and
            refuses any other. Defaults to any scaler.
    """

    name: str
    backbone: Callable | str
    causal: bool = True
    help: str = ""
    options: tuple[str, ...] = ()
    finish: Callable | str | None = None
    scaler: str = ""

    def build(self, spec, x, sequences: bool):
        """The backbone's output for the normalized window `x`."""
        return _loaded(self.backbone)(spec, x, sequences)

    def finished(self, spec, x, output):
        """The network's output from the head's `output` (the arch's `finish`, if any)."""
        return _loaded(self.finish)(spec, x, output) if self.finish else output


def _loaded(function):
    """`function`, or the function a `"module:function"` string names (imported on first use)."""
    if isinstance(function, str):
        module, name = function.split(":")
        function = getattr(importlib.import_module(module), name)
    return function


_REGISTRY: dict[str, Arch] = {}


def register_arch(name: str, backbone: Callable | str, *, causal: bool = True, help: str = "",
                  options: tuple = (), replace: bool = False, finish: Callable | str | None = None,
                  scaler: str = "") -> Arch:
    """Register an arch under `name` and return it; see `Arch` for the arguments.

    Raises:
        KerasSeqError: `name` is not a lowercase word, or is taken and
            `replace` is false.

    Example:
    >>> arch = register_arch("doc_mlp", "keras_seq.models.archs:recurrent", help="an example")
    >>> "doc_mlp" in arch_names()
    True
    >>> unregister_arch("doc_mlp")
    """
    if not (isinstance(name, str) and name.replace("_", "").isalnum() and name == name.lower() and name[:1].isalpha()):
        raise KerasSeqError(f"an arch name must be a lowercase word (letters, digits, _). Received: {name!r}")
    if name in _REGISTRY and not replace:
        raise KerasSeqError(f"arch '{name}' is already registered. Choose another name, or pass replace=True.")
    names = []
    for option in options:
        if not isinstance(option, str):
            option = register_option(option).name
        names.append(option)
    arch = Arch(name, backbone, causal=causal, help=help, options=tuple(names), finish=finish, scaler=scaler)
    _REGISTRY[name] = arch
    reads_options(name, arch.options)
    return arch


def unregister_arch(name: str) -> None:
    """Forget a registered arch (a test's or a plugin's); built-in archs stay."""
    if name in BUILTIN_ARCHS:
        raise KerasSeqError(f"arch '{name}' is built in and cannot be unregistered.")
    arch = _REGISTRY.pop(name, None)
    reads_options(name, ())

    built_in = {o.name for o in OPTIONS}
    for option in arch.options if arch else ():
        if option not in built_in and not any(option in other.options for other in _REGISTRY.values()):
            unregister_option(option)  # an option no registered arch reads any more


def arch_names() -> tuple[str, ...]:
    """Every registered arch, the built-in ones first."""
    return tuple(_REGISTRY)


def get_arch(name: str) -> Arch:
    """The registered arch called `name`.

    Raises:
        KerasSeqError: no arch has that name.
    """
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise KerasSeqError(f"unknown arch '{name}'. Expected one of: {', '.join(_REGISTRY)}.") from None


def check_arch_list(archs, what: str = "to compare", repeats: bool = False) -> tuple[str, ...]:
    """`archs` (a name or names) as a tuple of registered archs, each once (or as often as given, `repeats`).

    Raises:
        KerasSeqError: none given, an unknown one, or one given twice (without `repeats`).
    """
    archs = (archs,) if isinstance(archs, str) else tuple(archs)
    unknown = [arch for arch in archs if arch not in _REGISTRY]
    if not archs or unknown:
        raise KerasSeqError(
            f"unknown arch '{unknown[0] if unknown else ''}'{' ' + what if what else ''}. "
            f"Expected some of: {', '.join(_REGISTRY)}, separated by commas."
        )
    if len(set(archs)) != len(archs) and not repeats:
        raise KerasSeqError(f"each arch may appear once. Received: {', '.join(archs)}")
    return archs


# The built-in archs' own hyperparameters (options of the table from the moment they are registered).
CELL = Option("model", "cell", TEXT, "rnn", "Cell inside brnn's Bidirectional wrapper.", choices=CELLS, tune=True)
TRANSITION_LAYERS = Option("model", "transition_layers", INT, 2, "Layers of the deep transition MLP (dtrnn, dtsrnn, "
                           "dotrnn).", low=1, high=64, tune=True)
OUTPUT_LAYERS = Option("model", "output_layers", INT, 2, "Layers of dotrnn's deep output, counting the head.", low=1,
                       high=64, tune=True)
_RECURRENT = "keras_seq.models.archs:recurrent"
for _name, _help, _options, _causal in (
    ("drnn", "stacked SimpleRNN", (), True),
    ("brnn", "stacked Bidirectional RNN (its cell: `cell`)", (CELL,), False),
    ("lstm", "stacked LSTM", (), True),
    ("gru", "stacked GRU", (), True),
    ("dtrnn", "deep transition RNN", (TRANSITION_LAYERS,), True),
    ("dtsrnn", "deep transition RNN with shortcut", (TRANSITION_LAYERS,), True),
    ("dotrnn", "deep transition, deep output RNN", (TRANSITION_LAYERS, OUTPUT_LAYERS), True),
):
    register_arch(_name, _RECURRENT, causal=_causal, help=_help, options=_options)
SEASONALITY = Option("model", "seasonality", INT, 1, "esrnn's seasonal period in steps, which its Holt-Winters "
                     "smoothing learns factors for (1: a level only; e.g. 12 for monthly steps). The window must "
                     "hold two seasons.", low=1, high=1000)
DILATION = Option("model", "dilation", INT, 2, "esrnn's dilation: its layer k (from 0) steps back dilation**k "
                  "steps (1: a plain LSTM stack).", low=1, high=64, tune=True)
register_arch("esrnn", "keras_seq.models.archs:dilated", finish="keras_seq.models.archs:reseasonalise", scaler="es",
              help="ES-RNN: per-series Holt-Winters smoothing learned with a dilated LSTM (scaler es)",
              options=(SEASONALITY, DILATION))
BUILTIN_ARCHS = arch_names()
