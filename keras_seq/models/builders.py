"""Build the recurrent models: DRNN, BRNN, LSTM, GRU, DT-RNN, DT(S)-RNN and DOT-RNN.

Every model has the same outer shape:

    raw window (batch, window, features)
      -> Standardize            (training-split statistics, non-trainable)
      -> network                (a nested keras.Model on z-scores: the RNN stack and a Dense head)
      -> Destandardize          (back to the target's units)
      -> raw forecast (batch, horizon) for `next`, (batch, window, 1) for `sequence`

Training fits the nested `network` on normalized windows; the outer model is
what is saved and exported, so it takes and returns prices.
"""

from __future__ import annotations

import keras

from keras_seq import speed
from keras_seq.data.windows import Scaling, check_window_options
from keras_seq.errors import KerasSeqError, first_line
from keras_seq.models.cells import TRANSITION_ARCHS, DeepTransitionCell
from keras_seq.models.layers import Destandardize, Standardize
from keras_seq.models.recurrent import LSTM, SimpleRNN
from keras_seq.models.spec import check_future_leak, check_model_options

# keras-seq's SimpleRNN and LSTM are Keras's, with the input projection out of the loop on jax.
_RECURRENT = {"rnn": SimpleRNN, "lstm": LSTM, "gru": keras.layers.GRU}
_KERAS_RECURRENT = {"rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}


def build_model(
    arch: str,
    *,
    window: int,
    n_features: int,
    horizon: int = 1,
    target_kind: str = "next",
    units: int = 64,
    layers: int = 2,
    dropout: float = 0.0,
    cell: str = "rnn",
    allow_future_leak: bool = False,
    scaling: Scaling | None = None,
    transition_layers: int = 2,
    output_layers: int = 2,
) -> keras.Model:
    """Build a recurrent forecaster that takes and returns raw values.

    Args:
        arch: str. `drnn` (stacked SimpleRNN), `brnn` (stacked Bidirectional
            RNN), `lstm`, `gru`, `dtrnn` (deep transition), `dtsrnn` (deep
            transition with shortcut) or `dotrnn` (deep transition and deep
            output); see `keras_seq.models.cells`.
        window: int. Input steps.
        n_features: int. Input columns.
        horizon: int. Forecast steps for target kind `next`. Defaults to `1`.
        target_kind: str. `"next"` (a Dense head on the last step) or
            `"sequence"` (a Dense head on every step). Defaults to `"next"`.
        units: int. Hidden units per layer (per direction for `brnn`).
            Defaults to `64`.
        layers: int. Stacked recurrent layers. Defaults to `2`.
        dropout: float. Input dropout of each recurrent layer (per step for
            the deep-transition archs). Defaults to `0.0`.
        cell: str. Cell inside `brnn`: `rnn`, `lstm`, `gru`, `dtrnn`,
            `dtsrnn` or `dotrnn`. Defaults to `"rnn"`.
        allow_future_leak: bool. Permit `brnn` with `sequence`. Defaults to
            `False`.
        scaling: Scaling or None. Statistics of the training split. Defaults
            to identity scaling (set later with `set_scaling`).
        transition_layers: int. Layers of the deep transition. Defaults to `2`.
        output_layers: int. Layers of `dotrnn`'s deep output, counting the
            head (or the next layer's input map). Defaults to `2`.

    Returns:
        A `keras.Model` named `keras_seq_<arch>`, with a nested model named
        `network` that works on z-scores.

    Raises:
        KerasSeqError: an option is out of range, or `brnn` with target kind
            `sequence` without `allow_future_leak`.

    Example:
    >>> model = build_model("gru", window=16, n_features=1, units=8, layers=1)
    >>> tuple(model.output.shape)
    (None, 1)
    """
    check_model_options(arch, units, layers, dropout, cell, transition_layers, output_layers)
    depth = {"transition_layers": transition_layers, "output_layers": output_layers}
    check_window_options(window, horizon, target_kind, (1.0, 0.0, 0.0), 1)
    if not isinstance(n_features, int) or n_features < 1:
        raise KerasSeqError(f"`n_features` must be an integer of at least 1. Received: n_features={n_features}")
    check_future_leak(arch, target_kind, allow_future_leak)

    # === Network: z-scores in, z-scores out ===
    normalized = keras.Input(shape=(window, n_features), name="normalized_window")
    x = normalized  # (batch, window, features)
    for index in range(layers):
        return_sequences = target_kind == "sequence" or index < layers - 1
        if dropout and (arch in TRANSITION_ARCHS or (arch == "brnn" and cell in TRANSITION_ARCHS)):
            # keras.layers.RNN has no input dropout of its own: drop inputs per step instead.
            x = keras.layers.Dropout(dropout, name=f"{arch}_{index + 1}_dropout")(x)
        x = _recurrent_layer(arch, cell, units, dropout, return_sequences, f"{arch}_{index + 1}", depth)(x)
    # (batch, units) for `next`, (batch, window, units) for `sequence`; x2 units for brnn
    head = keras.layers.Dense(horizon if target_kind == "next" else 1, name="head")(x)
    network = keras.Model(normalized, head, name="network")

    # === Functional Model: raw values in, raw values out ===
    inputs = keras.Input(shape=(window, n_features), name="window")
    x = Standardize(name="standardize")(inputs)
    x = network(x)
    outputs = Destandardize(name="destandardize")(x)
    model = keras.Model(inputs, outputs, name=f"keras_seq_{arch}")
    if scaling is not None:
        set_scaling(model, scaling)
    return model


def _recurrent_layer(arch: str, cell: str, units: int, dropout: float, return_sequences: bool, name: str, depth: dict):
    if arch == "brnn":
        inner = _recurrent_layer(cell, cell, units, dropout, return_sequences, f"{name}_{cell}", depth)
        return keras.layers.Bidirectional(inner, name=name)
    if arch in TRANSITION_ARCHS:
        shortcut, deep_output = TRANSITION_ARCHS[arch]
        rnn_cell = DeepTransitionCell(units, transition_layers=depth["transition_layers"], shortcut=shortcut,
                                      output_layers=depth["output_layers"] if deep_output else 1, name=f"{name}_cell")
        return keras.layers.RNN(rnn_cell, return_sequences=return_sequences, name=name)
    kind = {"drnn": "rnn", "rnn": "rnn", "lstm": "lstm", "gru": "gru"}[arch]
    layers = _KERAS_RECURRENT if speed.current().keras_layers else _RECURRENT
    return layers[kind](units, dropout=dropout, return_sequences=return_sequences, name=name)


def set_scaling(model: keras.Model, scaling: Scaling) -> None:
    """Store `scaling` in a keras-seq model's Standardize and Destandardize layers."""
    n_features = model.get_layer("standardize").mean_weight.shape[0]
    if len(scaling.feature_mean) != n_features:
        raise KerasSeqError(
            f"the scaling has {len(scaling.feature_mean)} features but the model takes {n_features}."
        )
    model.get_layer("standardize").set_statistics(scaling.feature_mean, scaling.feature_std)
    model.get_layer("destandardize").set_statistics([scaling.target_mean], [scaling.target_std])


def describe_weights(model: keras.Model) -> list[tuple[str, tuple[int, ...], bool]]:
    """Every weight of `model` as `(path, shape, trainable)`, in layer order."""
    return [(w.path, tuple(int(d) for d in w.shape), bool(w.trainable)) for w in model.weights]


def model_summary(spec, windows, n_features: int) -> str:
    """What `keras-seq summary` prints: the model of `spec` and `windows`, every weight and the parameter count.

    Args:
        spec: ModelSpec. The arch and its size.
        windows: WindowSpec. Window, horizon and target kind.
        n_features: int. Input columns.

    Example:
    >>> from keras_seq.data.windows import WindowSpec
    >>> from keras_seq.models.spec import ModelSpec
    >>> model_summary(ModelSpec(arch="gru", units=2, layers=1), WindowSpec(window=4), 1).splitlines()[-1]
    'parameters: 37 (33 trainable, 4 scaling)'
    """
    import math

    model = build_model(spec.arch, window=windows.window, n_features=n_features, horizon=windows.horizon,
                        target_kind=windows.target_kind, units=spec.units, layers=spec.layers, dropout=spec.dropout,
                        cell=spec.cell, allow_future_leak=spec.allow_future_leak,
                        transition_layers=spec.transition_layers, output_layers=spec.output_layers)
    weights = describe_weights(model)
    width = max(len(path) for path, _, _ in weights)
    lines = [f"{model.name}: window {windows.window}, {n_features} feature(s), target kind {windows.target_kind}"]
    lines += [f"  {path:<{width}}  {list(shape)}{'' if trainable else '  (scaling, not trained)'}"
              for path, shape, trainable in weights]
    trainable = sum(math.prod(shape) for _, shape, t in weights if t)
    total = sum(math.prod(shape) for _, shape, _ in weights)
    lines.append(f"parameters: {total} ({trainable} trainable, {total - trainable} scaling)")
    return "\n".join(lines)


KERAS_MEMBERS = ("metadata.json", "config.json", "model.weights.h5")  # what Keras writes into a .keras archive


def load_model(path) -> keras.Model:
    """Load a saved keras-seq model (`.keras`) with Keras's safe mode on.

    Before Keras reads it, the archive's directory is checked: only the
    members Keras writes, and uncompressed sizes within bounds (a small file
    that inflates to gigabytes is refused). Safe mode refuses Lambda layers
    and other code in the config.

    Raises:
        KerasSeqError: the file is missing, not a `.keras` archive, too large
            once inflated, damaged, or holds code.
    """
    from keras_seq.safety import check_zip_members

    check_zip_members(path, small=KERAS_MEMBERS[:2],
                      allowed=lambda name: name in KERAS_MEMBERS or name.startswith("assets/"))
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except Exception as exc:  # a hostile or damaged config raises whatever Keras meets first
        raise KerasSeqError(
            f"{path} is not a readable .keras model ({type(exc).__name__}: {first_line(exc)[:160]}). Restore the "
            "file or write it again (`keras-seq fit`, `keras-seq export`)."
        ) from None
