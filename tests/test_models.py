"""keras_seq/models: shapes, parameter counts, in-model scaling, save/load."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import on_other_backends

from keras_seq.data.windows import Scaling
from keras_seq.errors import KerasSeqError
from keras_seq.models import (ARCHS, Destandardize, ModelSpec, Standardize, build_model, describe_weights, get_arch,
                              load_model)

# The archs that take a window alone (esrnn also reads each window's series: tests/test_esrnn.py).
RECURRENT = tuple(arch for arch in ARCHS if not get_arch(arch).scaler)

# Tests marked `backend` run again under jax and torch (`make test`); the parameter counts and
# option checks do not depend on the backend.

SCALING = Scaling(("Close", "Volume"), (30000.0, 5e8), (3000.0, 1e8), "Close", 30000.0, 3000.0)


def cell_params(cell: str, d: int, u: int) -> int:
    """Keras's weight count of one recurrent layer with input width d and u units."""
    return {"rnn": u * (d + u + 1), "lstm": 4 * u * (d + u + 1), "gru": 3 * u * (d + u + 2)}[cell]


def expected_params(arch, *, n_features, units, layers, horizon, target_kind, cell="rnn", scaler="window") -> tuple[int, int]:
    """(trainable, non-trainable) from the closed-form formula (zscore keeps 2 statistics per input and the target's)."""
    kind = {"drnn": "rnn", "brnn": cell, "lstm": "lstm", "gru": "gru"}[arch]
    directions = 2 if arch == "brnn" else 1
    total, width = 0, n_features
    for _ in range(layers):
        total += directions * cell_params(kind, width, units)
        width = directions * units
    outputs = horizon if target_kind == "next" else 1
    total += width * outputs + outputs
    return total, 2 * n_features + 2 if scaler == "zscore" else 0


# On jax and torch: Bidirectional around keras-seq's SimpleRNN, its LSTM, Keras's GRU and a deep-transition cell.
@pytest.mark.parametrize("arch", on_other_backends(RECURRENT, ("brnn", "lstm", "gru", "dtsrnn")))
@pytest.mark.parametrize("target_kind", ["next", "sequence"])
def test_output_shapes(arch, target_kind):
    horizon = 3 if target_kind == "next" else 1
    model = build_model(arch, window=10, n_features=2, horizon=horizon, target_kind=target_kind, units=4,
                        allow_future_leak=True)
    out = model(np.zeros((5, 10, 2), dtype="float32"))
    assert tuple(out.shape) == ((5, 3) if target_kind == "next" else (5, 10, 1))
    assert model.name == f"keras_seq_{arch}"
    assert [layer.name for layer in model.layers] == ["window", "prepare", "network", "restore"]


@pytest.mark.parametrize(
    "arch, cell, n_features, units, layers, horizon, target_kind, scaler",
    [
        ("drnn", "rnn", 1, 64, 2, 1, "next", "window"),
        ("brnn", "rnn", 1, 64, 2, 1, "next", "zscore"),
        ("brnn", "lstm", 3, 16, 3, 2, "next", "window"),
        ("brnn", "gru", 2, 8, 1, 1, "sequence", "zscore"),
        ("lstm", "rnn", 1, 64, 2, 1, "next", "zscore"),
        ("lstm", "rnn", 4, 32, 1, 5, "next", "window"),
        ("gru", "rnn", 1, 64, 2, 1, "next", "window"),
        ("gru", "rnn", 2, 10, 3, 1, "sequence", "window"),
    ],
)
def test_parameter_counts_match_the_closed_form(arch, cell, n_features, units, layers, horizon, target_kind, scaler):
    model = build_model(arch, window=16, n_features=n_features, horizon=horizon, target_kind=target_kind,
                        units=units, layers=layers, cell=cell, allow_future_leak=True, scaler=scaler)
    trainable, scaling = expected_params(arch, n_features=n_features, units=units, layers=layers,
                                         horizon=horizon, target_kind=target_kind, cell=cell, scaler=scaler)
    weights = describe_weights(model)
    assert sum(int(np.prod(s)) for _, s, t in weights if t) == trainable
    assert sum(int(np.prod(s)) for _, s, t in weights if not t) == scaling
    assert model.count_params() == trainable + scaling


def test_tutorial_shapes_of_the_lstm_and_gru_weights():
    shapes = dict((path, shape) for path, shape, _ in describe_weights(build_model("lstm", window=16, n_features=16)))
    assert shapes["lstm_1/lstm_cell/kernel"] == (16, 256)  # PyTorch weight_ih_l0 [256, 16], transposed
    assert shapes["lstm_1/lstm_cell/recurrent_kernel"] == (64, 256)
    shapes = dict((path, shape) for path, shape, _ in describe_weights(build_model("gru", window=16, n_features=16)))
    assert shapes["gru_1/gru_cell/kernel"] == (16, 192) and shapes["gru_1/gru_cell/bias"] == (2, 192)


@pytest.mark.parametrize("arch", on_other_backends(RECURRENT, ("drnn", "gru")))
def test_zscore_scaling_lives_inside_the_model(arch):
    model = build_model(arch, window=8, n_features=2, units=4, scaling=SCALING, scaler="zscore", residual=False)
    raw = np.stack([np.full((8,), 31000.0), np.full((8,), 6e8)], axis=-1)[None].astype("float32")
    normalized = (raw - np.array(SCALING.feature_mean, dtype="float32")) / np.array(SCALING.feature_std, dtype="float32")
    inner = keras.ops.convert_to_numpy(model.get_layer("network")(normalized))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(raw)), inner * 3000.0 + 30000.0, rtol=1e-5)


@pytest.mark.parametrize("arch", on_other_backends(RECURRENT, ("brnn", "lstm", "dotrnn")))
def test_save_and_load_give_identical_outputs(arch, tmp_path):
    model = build_model(arch, window=8, n_features=2, horizon=2, units=4, scaling=SCALING, scaler="zscore")
    x = np.random.default_rng(0).normal([30000, 5e8], [3000, 1e8], size=(6, 8, 2)).astype("float32")
    path = tmp_path / f"{arch}.keras"
    model.save(path)
    loaded = load_model(path)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(model(x)))
    assert loaded.get_layer("prepare").mean == list(SCALING.feature_mean)


def test_bidirectional_sequence_model_is_refused_unless_the_leak_is_allowed():
    with pytest.raises(KerasSeqError, match="reads the future: its backward pass at step t has seen x\\[t\\+1\\].*`allow_future_leak`"):
        build_model("brnn", window=8, n_features=1, target_kind="sequence")
    assert build_model("brnn", window=8, n_features=1, target_kind="sequence", units=2, allow_future_leak=True)


@pytest.mark.backend
@pytest.mark.parametrize("arch, scaler", [("drnn", "window"), ("lstm", "zscore"), ("gru", "window")])
def test_causal_sequence_models_do_not_read_the_future(arch, scaler):
    # Not residual (whose head starts at 0): the network's own output must not move. Scaler window scales
    # step t by the statistics of steps 0..t.
    model = build_model(arch, window=8, n_features=1, target_kind="sequence", units=4, scaler=scaler, residual=False)
    x = np.random.default_rng(1).normal(size=(1, 8, 1)).astype("float32")
    changed = x.copy()
    changed[0, 5:, 0] += 10.0  # change the future of step 4
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x))[0, :5], keras.ops.convert_to_numpy(model(changed))[0, :5], rtol=1e-6)


@pytest.mark.backend
def test_a_bidirectional_sequence_model_does_read_the_future():
    model = build_model("brnn", window=8, n_features=1, target_kind="sequence", units=4, allow_future_leak=True,
                        residual=False)
    x = np.random.default_rng(1).normal(size=(1, 8, 1)).astype("float32")
    changed = x.copy()
    changed[0, 5, 0] += 10.0
    assert not np.allclose(keras.ops.convert_to_numpy(model(x))[0, 4], keras.ops.convert_to_numpy(model(changed))[0, 4])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(arch="cnn"), "unknown arch 'cnn'. Expected one of: drnn, brnn, lstm, gru"),
        (dict(units=0), "`units` must be an integer of at least 1. Received: units=0"),
        (dict(layers=0), "`layers` must be an integer of at least 1"),
        (dict(dropout=1.0), r"`dropout` must be in \[0, 1\)"),
        (dict(cell="tcn"), "unknown cell 'tcn'"),
    ],
)
def test_bad_model_options(kwargs, message):
    with pytest.raises(KerasSeqError, match=message):
        ModelSpec(**kwargs)
    arch = kwargs.pop("arch", "lstm")
    with pytest.raises(KerasSeqError, match=message):
        build_model(arch, window=8, n_features=1, **kwargs)


@pytest.mark.backend
@pytest.mark.parametrize("layer_class", [Standardize, Destandardize])
def test_scaling_layers_round_trip_their_config(layer_class, tmp_path):
    layer = layer_class(mean=[2.0], std=[4.0], name="s")
    inputs = keras.Input((3, 1))
    model = keras.Model(inputs, layer(inputs))
    model.save(tmp_path / "m.keras")
    loaded = load_model(tmp_path / "m.keras")
    restored = loaded.get_layer("s")
    assert type(restored) is layer_class and restored.get_config()["mean"] == [2.0] and restored.std == [4.0]
    x = np.array([[[6.0], [2.0], [-2.0]]], dtype="float32")
    expected = (x - 2.0) / 4.0 if layer_class is Standardize else x * 4.0 + 2.0
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)), expected)
