"""The built-in backbones: the recurrent stacks of drnn, brnn, lstm, gru, dtrnn, dtsrnn and dotrnn, and ES-RNN's.

Each is registered in `keras_seq.models.registry` under its arch name and
built by `recurrent(spec, x, sequences)`: `spec.layers` recurrent layers of
`spec.units` units on the normalized window, the last one returning every
step only when `sequences` is true. `esrnn` is `dilated(spec, x, sequences)`
on the window its scaler (`es`) smoothed, and `reseasonalise` after its head.
"""

from __future__ import annotations

from keras_seq.config import speed
from keras_seq.backend import import_keras, tensorflow_left_unloaded
from keras_seq.models.cells import TRANSITION_ARCHS, DeepTransitionCell
from keras_seq.models.layers import Dilate, LastStep, Reseasonalise, Undilate
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
        with tensorflow_left_unloaded():  # Keras serializes the inner layer here, which would import TensorFlow
            return keras.layers.Bidirectional(inner, name=name)
    if arch in TRANSITION_ARCHS:
        shortcut, deep_output = TRANSITION_ARCHS[arch]
        cell = DeepTransitionCell(spec.units, transition_layers=spec.transition_layers, shortcut=shortcut,
                                  output_layers=spec.output_layers if deep_output else 1, name=f"{name}_cell")
        return keras.layers.RNN(cell, return_sequences=return_sequences, name=name)
    kind = {"drnn": "rnn", "rnn": "rnn", "lstm": "lstm", "gru": "gru"}[arch]
    layers = _KERAS_RECURRENT if speed.current().keras_layers else _RECURRENT
    return layers[kind](spec.units, dropout=spec.dropout, return_sequences=return_sequences, name=name)


def dilated(spec, x, sequences: bool):
    """ES-RNN's stack (Smyl, 2020): `spec.layers` LSTM layers of `spec.units`, layer k (from 0) stepping back
    `spec.dilation ** k` steps (a dilated LSTM: `layers.Dilate`), each after the first added to its input (a
    residual connection); the last step's features out. `sequences` is never true (`esrnn` forecasts from the
    window's last step)."""
    steps = x.shape[1]
    for index in range(spec.layers):
        dilation = spec.dilation ** index
        name = f"esrnn_{index + 1}"
        y = Dilate(dilation, name=f"{name}_dilate")(x) if dilation > 1 else x
        y = LSTM(spec.units, dropout=spec.dropout, return_sequences=True, name=name)(y)
        y = Undilate(dilation, steps, name=f"{name}_undilate")(y) if dilation > 1 else y
        x = keras.layers.Add(name=f"{name}_residual")([x, y]) if index else y
    return LastStep(name="esrnn_last")(x)


def reseasonalise(spec, x, output):
    """ES-RNN's forecast from its head's output: `exp(sd * output)` times the seasonal factor the `es` scaler left
    for each step (its two channels, before the series embedding), in units of the last level."""
    return Reseasonalise(spec.seasonality, -2 - spec.series_embedding, name="reseasonalise")([output, x])
