"""keras_seq/config/speed.py: the fast paths' options hold for a block only, and reach what they govern."""

from __future__ import annotations

import keras
import pytest

from keras_seq.errors import KerasSeqError
from keras_seq.models.builders import build_model
from keras_seq.models.recurrent import LSTM, SimpleRNN
from keras_seq.config.speed import SpeedOptions, current, speed_options


def _recurrent_classes(model) -> list[type]:
    return [type(layer) for layer in model.get_layer("network").layers if isinstance(layer, keras.layers.RNN)]


def test_keras_layers_option_builds_with_keras_own_layers_inside_the_block_only():
    assert _recurrent_classes(build_model("drnn", window=4, n_features=1, units=2, layers=1)) == [SimpleRNN]
    with speed_options(keras_layers=True):
        assert _recurrent_classes(build_model("lstm", window=4, n_features=1, units=2, layers=1)) == [keras.layers.LSTM]
        with speed_options(scan_unroll=4):  # nested blocks change only what they name
            assert current() == SpeedOptions(keras_layers=True, scan_unroll=4)
        assert current().scan_unroll is None
    assert _recurrent_classes(build_model("lstm", window=4, n_features=1, units=2, layers=1)) == [LSTM]
    assert current() == SpeedOptions()


@pytest.mark.backend
def test_the_training_loop_option_reaches_compile_trainer():
    from keras_seq.training.loop import TrainSpec, compile_trainer

    model = build_model("gru", window=4, n_features=1, units=2, layers=1)
    default = compile_trainer(model, TrainSpec()).train_function
    with speed_options(looped_steps=False):
        assert compile_trainer(model, TrainSpec()).train_function is None  # Keras's own, made at fit time
    assert (default is not None) == (keras.backend.backend() == "jax")  # the loop: jax on a CPU only


@pytest.mark.parametrize("changes, words", [
    ({"unroll": 2}, "unknown speed option 'unroll'"),
    ({"scan_unroll": 0}, "`scan_unroll` must be an integer of at least 1, or None"),
    ({"looped_steps": "no"}, "`looped_steps` must be true or false"),
])
def test_bad_speed_options(changes, words):
    with pytest.raises(KerasSeqError, match=words):
        with speed_options(**changes):
            pass
    assert current() == SpeedOptions()
