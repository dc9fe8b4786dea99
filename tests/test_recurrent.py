"""keras_seq/models/recurrent.py: keras-seq's SimpleRNN and LSTM compute what Keras's do."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_seq.models import recurrent
from keras_seq.models.recurrent import LSTM, SimpleRNN

PAIRS = [(SimpleRNN, keras.layers.SimpleRNN), (LSTM, keras.layers.LSTM)]


def twin_layers(ours, theirs, wrap, x, **kwargs):
    """Keras's layer and keras-seq's, built on `x` with the same weights."""
    reference, layer = wrap(theirs(5, **kwargs)), wrap(ours(5, **kwargs))
    reference(x)
    layer(x)
    layer.set_weights(reference.get_weights())
    return reference, layer


# On jax and torch: every step's output, and the Bidirectional wrapper (both directions), of each layer.
@pytest.mark.parametrize("ours, theirs", PAIRS, ids=["simple_rnn", "lstm"])
@pytest.mark.parametrize(
    "wrap, kwargs",
    [
        pytest.param(lambda layer: layer, {"return_sequences": True}, id="sequences", marks=pytest.mark.backend),
        pytest.param(lambda layer: layer, {"return_sequences": False, "go_backwards": True}, id="last_backwards"),
        pytest.param(lambda layer: layer, {"return_sequences": True, "use_bias": False, "activation": "relu"},
                     id="no_bias_relu"),
        pytest.param(lambda layer: layer, {"return_sequences": True, "use_bias": False}, id="no_bias"),
        pytest.param(keras.layers.Bidirectional, {"return_sequences": False}, id="bidirectional",
                     marks=pytest.mark.backend),
    ],
)
def test_outputs_and_gradients_match_keras(ours, theirs, wrap, kwargs):
    x = np.random.default_rng(0).normal(size=(4, 11, 3)).astype("float32")
    reference, layer = twin_layers(ours, theirs, wrap, x, **kwargs)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)), keras.ops.convert_to_numpy(reference(x)), atol=1e-5)
    model_a = keras.Sequential([keras.Input((11, 3)), reference, keras.layers.Dense(1)])
    model_b = keras.Sequential([keras.Input((11, 3)), layer, keras.layers.Dense(1)])
    model_b.set_weights(model_a.get_weights())
    y = np.ones((4, 11, 1) if kwargs["return_sequences"] else (4, 1), "float32")
    for model in (model_a, model_b):
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        model.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0)  # equal gradients keep the weights equal
    for a, b in zip(model_a.get_weights(), model_b.get_weights()):
        np.testing.assert_allclose(b, a, atol=1e-5)


@pytest.mark.backend
def test_lstm_gradients_through_initial_and_final_states_match_keras():
    """The hand-written LSTM gradient (jax) carries dh and dc into the initial states and from the last c,
    and reaches the weights before the LSTM through its inputs."""
    rng = np.random.default_rng(3)
    x, context = rng.normal(size=(4, 9, 3)).astype("float32"), rng.normal(size=(4, 2)).astype("float32")
    y = rng.normal(size=(4, 1)).astype("float32")
    recurrent._lstm.cache_clear()

    def model(kind):
        inputs, extra = keras.Input((9, 3)), keras.Input((2,))
        h0, c0 = keras.layers.Dense(5, name="h0")(extra), keras.layers.Dense(5, name="c0")(extra)
        mapped = keras.layers.Dense(3, name="inputs_map")(inputs)  # trained only through the LSTM's input gradient
        sequence, h, c = kind(5, return_sequences=True, return_state=True)(mapped, initial_state=[h0, c0])
        features = keras.layers.Concatenate()([keras.layers.Flatten()(sequence[:, ::4]), h, c])
        return keras.Model([inputs, extra], keras.layers.Dense(1)(features))

    model_a, model_b = model(keras.layers.LSTM), model(LSTM)
    model_b.set_weights(model_a.get_weights())
    for trained in (model_a, model_b):
        trained.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        trained.fit([x, context], y, epochs=2, batch_size=4, shuffle=False, verbose=0)
    for a, b in zip(model_a.get_weights(), model_b.get_weights()):
        np.testing.assert_allclose(b, a, atol=1e-5)
    if keras.backend.backend() == "jax":  # the hand-written gradient ran, not jax's own
        assert recurrent._lstm.cache_info().currsize == 1


@pytest.mark.backend
@pytest.mark.parametrize("ours, theirs", PAIRS, ids=["simple_rnn", "lstm"])
def test_a_mask_falls_back_to_keras_loop(ours, theirs):
    x = np.random.default_rng(1).normal(size=(3, 6, 2)).astype("float32")
    x[0, 4:] = 0.0
    inputs = keras.Input((6, 2))
    masked = keras.layers.Masking(0.0)(inputs)
    models = [keras.Model(inputs, kind(4)(masked)) for kind in (theirs, ours)]
    models[1].set_weights(models[0].get_weights())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(models[1](x)), keras.ops.convert_to_numpy(models[0](x)), atol=1e-5)


@pytest.mark.parametrize("ours", [SimpleRNN, LSTM], ids=["simple_rnn", "lstm"])
def test_round_trip_through_a_keras_file_in_safe_mode(ours, tmp_path):
    x = np.random.default_rng(2).normal(size=(2, 7, 3)).astype("float32")
    model = keras.Sequential([keras.Input((7, 3)), keras.layers.Bidirectional(ours(4, return_sequences=True)),
                              ours(3, dropout=0.1)])
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert type(loaded.layers[1]) is ours and type(loaded.layers[0].forward_layer) is ours
    assert loaded.layers[1].get_config() == model.layers[1].get_config()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(model(x)), atol=1e-6)
