"""The built-in backbones: the recurrent stacks of drnn, brnn, lstm, gru, dtrnn, dtsrnn and dotrnn.

Each is registered in `keras_seq.models.registry` under its arch name and
built by `recurrent(spec, x, sequences)`: `spec.layers` recurrent layers of
`spec.units` units on the normalized window, the last one returning every
step only when `sequences` is true.
"""

from __future__ import annotations

from keras_seq.config import speed
from keras_seq.backend import import_keras
from keras_seq.models.cells import TRANSITION_ARCHS, DeepTransitionCell
from keras_seq.models.recurrent import LSTM, SimpleRNN

keras = import_keras()  # quietly, with keras-seq's default backend where none was chosen

# keras-seq's SimpleRNN and LSTM are Keras's, with the input projection out of the loop on jax.
_RECURRENT = {"rnn": SimpleRNN, "lstm": LSTM, "gru": keras.layers.GRU}
_KERAS_RECURRENT = {"rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}


def recurrent(spec, x, sequences: bool):
    """`spec.layers` recurrent layers of `spec.arch` over `x` (batch, window, features)."""
    arch = spec.arch
    for index in range(spec.layers):
        return_sequences = sequences or index < spec.layers - 1
        if spec.dropout and (arch in TRANSITION_ARCHS or (arch == "brnn" and spec.cell in TRANSITION_ARCHS)):
            # keras.layers.RNN has no input dropout of its own: drop inputs per step instead.
            x = keras.layers.Dropout(spec.dropout, name=f"{arch}_{index + 1}_dropout")(x)
        x = _recurrent_layer(spec, arch, return_sequences, f"{arch}_{index + 1}")(x)
    return x  # (batch, units) or (batch, window, units); x2 units for brnn


def _recurrent_layer(spec, arch: str, return_sequences: bool, name: str):
    if arch == "brnn":
        inner = _recurrent_layer(spec, spec.cell, return_sequences, f"{name}_{spec.cell}")
        return keras.layers.Bidirectional(inner, name=name)
    if arch in TRANSITION_ARCHS:
        shortcut, deep_output = TRANSITION_ARCHS[arch]
        cell = DeepTransitionCell(spec.units, transition_layers=spec.transition_layers, shortcut=shortcut,
                                  output_layers=spec.output_layers if deep_output else 1, name=f"{name}_cell")
        return keras.layers.RNN(cell, return_sequences=return_sequences, name=name)
    kind = {"drnn": "rnn", "rnn": "rnn", "lstm": "lstm", "gru": "gru"}[arch]
    layers = _KERAS_RECURRENT if speed.current().keras_layers else _RECURRENT
    return layers[kind](spec.units, dropout=spec.dropout, return_sequences=return_sequences, name=name)
