"""What a model is, without building it (this module does not import Keras)."""

from __future__ import annotations

import dataclasses

from keras_seq.errors import KerasSeqError
from keras_seq.models.registry import BUILTIN_ARCHS, get_arch

# The built-in archs; `keras_seq.models.registry.arch_names()` adds the registered ones.
ARCHS = BUILTIN_ARCHS
# The tutorial's four, compared by default.
CLASSIC_ARCHS = ("drnn", "brnn", "lstm", "gru")
CELLS = ("rnn", "lstm", "gru", "dtrnn", "dtsrnn", "dotrnn")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """The architecture and size of a model.

    Args:
        arch: str. One of `drnn`, `brnn`, `lstm`, `gru` or the deep-transition
            archs `dtrnn`, `dtsrnn` (with shortcut) and `dotrnn` (with deep
            output), or an arch added with `register_arch`. Defaults to
            `"lstm"`.
        units: int. Hidden units per recurrent layer (per direction for
            `brnn`). Defaults to `64`.
        layers: int. Stacked recurrent layers. Defaults to `2`.
        dropout: float. Input dropout of each recurrent layer, in [0, 1).
            Defaults to `0.0`.
        cell: str. Recurrent cell inside `brnn`'s Bidirectional wrapper:
            `rnn`, `lstm`, `gru`, `dtrnn`, `dtsrnn` or `dotrnn`. Defaults to
            `"rnn"`.
        allow_future_leak: bool. Permit `brnn` with target kind `sequence`,
            whose backward pass reads the values it predicts (kept only to
            demonstrate the tutorial's flaw). Defaults to `False`.
        transition_layers: int. Layers of the deep transition MLP (`dtrnn`,
            `dtsrnn`, `dotrnn`). Defaults to `2`.
        output_layers: int. Layers of `dotrnn`'s deep output, counting the
            affine map that reads it. Defaults to `2`.
    """

    arch: str = "lstm"
    units: int = 64
    layers: int = 2
    dropout: float = 0.0
    cell: str = "rnn"
    allow_future_leak: bool = False
    transition_layers: int = 2
    output_layers: int = 2

    def __post_init__(self):
        check_model_options(self.arch, self.units, self.layers, self.dropout, self.cell,
                            self.transition_layers, self.output_layers)


def check_model_options(arch, units, layers, dropout, cell, transition_layers=2, output_layers=2) -> None:
    """Raise `KerasSeqError` for the first model option out of range."""
    get_arch(arch)  # refuses an unknown one
    if not isinstance(units, int) or units < 1:
        raise KerasSeqError(f"`units` must be an integer of at least 1. Received: units={units}")
    if not isinstance(layers, int) or layers < 1:
        raise KerasSeqError(f"`layers` must be an integer of at least 1. Received: layers={layers}")
    if not 0.0 <= float(dropout) < 1.0:
        raise KerasSeqError(f"`dropout` must be in [0, 1). Received: dropout={dropout}")
    if cell not in CELLS:
        raise KerasSeqError(f"unknown cell '{cell}'. Expected one of: {', '.join(CELLS)}.")
    for name, value in (("transition_layers", transition_layers), ("output_layers", output_layers)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise KerasSeqError(f"`{name}` must be an integer of at least 1. Received: {name}={value}")


def check_future_leak(arch: str, target_kind: str, allow_future_leak: bool) -> None:
    """Refuse an arch that reads later steps (brnn's backward pass) trained to predict values it can read."""
    if target_kind == "sequence" and not allow_future_leak and not get_arch(arch).causal:
        raise KerasSeqError(
            f"arch '{arch}' with target kind 'sequence' reads the future: its backward pass at step t has "
            "seen x[t+1], the very value it must predict. Use target kind 'next', a causal arch, or "
            "--allow-future-leak to reproduce the tutorial's flaw on purpose."
        )
