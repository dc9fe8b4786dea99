"""Scale-free forecasting inside the model: residual output, per-window scaling, target transforms, and training
from every step (keras_seq.models.layers.PrepareWindow / RestoreForecast, keras_seq.training.loop.compile_trainer)."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import pytest

from keras_seq.data.windows import make_windows
from keras_seq.errors import KerasSeqError
from keras_seq.models import build_model
from keras_seq.models.transforms import get_transform
from keras_seq.training.loop import TrainSpec, compile_trainer, train_model

pytestmark = pytest.mark.backend


def prices(n=3, window=8, features=2, seed=0):
    """Positive random-walk windows (n, window, features); column 0 is the target."""
    rng = np.random.default_rng(seed)
    return (100.0 * np.exp(np.cumsum(rng.normal(0, 0.02, size=(n, window, features)), axis=1))).astype("float32")


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def randomize(model, seed=1):
    """Give every trainable weight (the zero-started head too) random values."""
    rng = np.random.default_rng(seed)
    for weight in model.trainable_weights:
        weight.assign(rng.normal(0, 0.3, size=weight.shape).astype("float32"))


@pytest.mark.parametrize("arch, scaler, transform", [
    ("drnn", "window", "none"), ("brnn", "window", "diff"), ("lstm", "window", "logdiff"), ("gru", "zscore", "none"),
    ("dotrnn", "window", "none"), ("gru", "window", "diff"),
])
def test_an_untrained_residual_model_is_exactly_persistence(arch, scaler, transform):
    model = build_model(arch, window=8, n_features=2, horizon=3, units=4, scaler=scaler, transform=transform,
                        residual=True)
    x = prices()
    np.testing.assert_array_equal(numpy(model(x)), np.repeat(x[:, -1, :1], 3, axis=1))


@pytest.mark.parametrize("transform, residual", [("none", True), ("none", False), ("diff", True), ("logdiff", False)])
def test_window_scaling_makes_the_forecast_move_with_the_input(transform, residual):
    model = build_model("gru", window=8, n_features=2, horizon=2, units=4, transform=transform, residual=residual)
    randomize(model)
    x = prices()
    forecast = numpy(model(x))
    assert not np.allclose(forecast, x[:, -1:, 0])  # the network does contribute
    np.testing.assert_allclose(numpy(model(10 * x)), 10 * forecast, rtol=2e-5)


def test_zscore_scaling_does_not_follow_the_input():
    """The contrast that motivates scaler `window`: fixed statistics make the forecast ignore the input's scale."""
    model = build_model("gru", window=8, n_features=2, units=4, scaler="zscore", residual=False)
    randomize(model)
    x = prices()
    assert not np.allclose(numpy(model(10 * x)), 10 * numpy(model(x)), rtol=1e-2)


@pytest.mark.parametrize("transform", ["none", "diff", "logdiff"])
def test_transforms_invert_exactly(transform):
    rng = np.random.default_rng(2)
    values = (50 + rng.uniform(1, 5, size=(4, 6)).cumsum(axis=1)).astype("float32")  # what a model computes in
    last = values[:, :1] - 1.0
    tensor, last_tensor = keras.ops.convert_to_tensor(values), keras.ops.convert_to_tensor(last)
    steps = get_transform(transform).forward(tensor, last_tensor)
    np.testing.assert_allclose(numpy(get_transform(transform).inverse(steps, last_tensor)), values, rtol=1e-6)
    wide = values.astype("float64")
    expected = {"none": wide, "diff": np.diff(wide, axis=1, prepend=last),
                "logdiff": np.diff(np.log(wide), axis=1, prepend=np.log(last))}[transform]
    np.testing.assert_allclose(numpy(steps), expected, rtol=2e-5, atol=1e-6)


def test_the_training_loss_is_zero_at_the_forecast_it_trains_towards():
    """The trainer's loss compares the network's output with the raw target transformed and scaled as
    RestoreForecast undoes it: a model whose forecast equals the target has loss 0 (and not otherwise)."""
    model = build_model("gru", window=8, n_features=2, horizon=2, units=4, transform="logdiff")
    randomize(model)
    trainer = compile_trainer(model, TrainSpec(steps_per_execution=1))
    x = prices()
    forecast = numpy(model(x))
    assert float(trainer.evaluate(x, forecast, verbose=0)) == pytest.approx(0.0, abs=1e-9)
    assert float(trainer.evaluate(x, forecast * 1.01, verbose=0)) > 1e-3


@pytest.mark.parametrize("arch, scaler", [("gru", "window"), ("lstm", "zscore"), ("dtsrnn", "window")])
def test_training_from_every_step_never_reads_beyond_the_step_it_predicts(arch, scaler):
    """Supervision `every`: the trainer's output at step t (and the statistics it is scaled by) is the same
    whatever the inputs after step t are."""
    model = build_model(arch, window=8, n_features=2, horizon=2, units=4, supervision="every", scaler=scaler,
                        residual=False)
    randomize(model)
    trainer = compile_trainer(model, TrainSpec(steps_per_execution=1))
    x = prices(n=2)
    packed = numpy(trainer(x))
    assert packed.shape == (2, 8, 2 + 3)  # every step: its horizon outputs, then (last, center, scale)
    for t in range(7):
        changed = x.copy()
        changed[:, t + 1 :, :] *= 1.5
        np.testing.assert_allclose(numpy(trainer(changed))[:, : t + 1], packed[:, : t + 1], rtol=1e-5)
        assert not np.allclose(numpy(trainer(changed))[:, t + 1 :], packed[:, t + 1 :])
    np.testing.assert_allclose(numpy(model(x)), numpy(model.get_layer("restore")(  # the forecast is the last step's
        [packed[:, -1, :2], packed[:, -1, 2:]])), rtol=1e-6)


def test_every_step_targets_are_the_values_after_each_step():
    frame = pd.DataFrame({"y": np.arange(200.0)}, index=pd.date_range("2020-01-01", periods=200, name="Date"))
    windows = make_windows(frame, target="y", window=5, horizon=3, supervision="every", seed=0)
    starts = windows.starts("train")[:4]
    x, y = windows.gather(starts)
    assert y.shape == (4, 5, 3)
    np.testing.assert_array_equal(y, starts[:, None, None] + 1 + np.arange(5)[None, :, None] + np.arange(3)[None, None, :])
    assert y.max() == windows.target_positions("train")[:4].max()  # no target beyond the window's own last one
    tf_x, tf_y = next(iter(make_windows(frame, target="y", window=5, horizon=3, supervision="every",
                                        shuffle=False).train))
    np.testing.assert_array_equal(tf_y.numpy()[:4], windows.gather(windows.starts("train")[:4])[1])


def test_a_residual_model_trained_from_every_step_learns():
    t = np.arange(300, dtype="float64")
    frame = pd.DataFrame({"y": 50 + 10 * np.sin(t / 5)}, index=pd.date_range("2020-01-01", periods=300, name="Date"))
    windows = make_windows(frame, target="y", window=12, horizon=2, supervision="every", batch_size=16, seed=0)
    keras.utils.set_random_seed(0)
    model = build_model("gru", window=12, horizon=2, units=8, layers=1, supervision="every")
    history = train_model(model, windows, TrainSpec(epochs=4, lr=0.01), verbose=0)
    assert history["loss"][-1] < 0.75 * history["loss"][0]  # residual: epoch 1 starts from persistence


@pytest.mark.parametrize("options, words", [
    (dict(arch="brnn", supervision="every"), "arch 'brnn' with supervision 'every' reads the future"),
    (dict(arch="gru", scaler="zscore", transform="diff"), "transform 'diff' needs scaler 'window'"),
    (dict(arch="gru", scaler="minmax"), "unknown scaler 'minmax'"),
    (dict(arch="gru", transform="log"), "unknown transform 'log'"),
])
def test_options_that_cannot_work_are_refused(options, words):
    supervision = options.pop("supervision", "last")
    with pytest.raises(KerasSeqError, match=words):
        build_model(window=8, supervision=supervision, **options)
