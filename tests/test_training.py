"""keras_seq/training/loop.py: training restores the best epoch, stops cleanly, and checkpoints."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import pytest

from keras_seq.data.windows import make_windows
from keras_seq.errors import KerasSeqError
from keras_seq.models import build_model
from keras_seq.training.loop import TrainSpec, fit_data, train_model


@pytest.mark.backend
def test_training_learns_and_keeps_the_best_validation_epoch():
    t = np.arange(400, dtype="float64")
    frame = pd.DataFrame({"y": 50 + 10 * np.sin(t / 6)}, index=pd.date_range("2020-01-01", periods=400, name="Date"))
    windows = make_windows(frame, target="y", window=12, batch_size=16, seed=0)
    keras.utils.set_random_seed(0)
    model = build_model("gru", window=12, n_features=1, units=8, layers=1, scaling=windows.scaling)
    history = train_model(model, windows, TrainSpec(epochs=6, lr=0.01), verbose=0)
    assert len(history["loss"]) == len(history["val_loss"]) == 6
    assert history["loss"][-1] < history["loss"][0] / 4
    # The restored weights' validation loss, computed here from the model's own forecast: the scaled error.
    forecast = keras.ops.convert_to_numpy(model.predict(windows.validation, verbose=0))
    x, y = windows.gather(windows.starts("validation"))
    last = x[:, -1, :1]
    scale = x.std(axis=1) + 1e-3 * np.abs(x).mean(axis=1) + 1e-6  # the window scaler's spread of the target
    restored = float(np.mean(((forecast - last) / scale - (y - last) / scale) ** 2))
    assert restored == pytest.approx(min(history["val_loss"]), rel=1e-3)


@pytest.mark.backend
def test_fit_reads_every_training_window_once_per_epoch_in_a_new_order():
    frame = pd.DataFrame({"y": np.arange(300.0)}, index=pd.date_range("2020-01-01", periods=300, name="Date"))
    windows = make_windows(frame, target="y", window=6, batch_size=16, seed=3)
    data = fit_data(windows, "train")
    n_train = len(windows.starts("train"))
    epochs = []
    for _ in range(2):
        data.on_epoch_begin()
        batches = [data[i] for i in range(data.num_batches)]
        data.on_epoch_end()
        x = np.concatenate([b[0] for b in batches])
        assert len(x) == n_train and all(len(b[0]) == 16 for b in batches[:-1])
        epochs.append(x[:, 0, 0])
    first_rows = np.sort(windows.gather(windows.starts("train"))[0][:, 0, 0])
    for firsts in epochs:
        np.testing.assert_array_equal(np.sort(firsts), first_rows)
    assert not np.array_equal(epochs[0], epochs[1])
    validation = fit_data(windows, "validation")
    x, y = validation[0]
    np.testing.assert_array_equal(x, windows.gather(windows.starts("validation")[:16])[0])


@pytest.mark.backend
def test_batches_in_one_compiled_loop_train_as_one_call_per_batch():
    """On jax an execution's batches run in one compiled loop: the same updates as Keras's loop over them."""
    from keras_seq.training import loop as training
    from keras_seq.config.speed import speed_options

    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(75, 6, 2)).astype("float32"), rng.normal(size=(75, 6, 1)).astype("float32")
    spec = TrainSpec(batch_size=4, steps_per_execution=8)  # 18 full batches and one of 3: executions 8, 8, 2 + 1
    results = []
    for looped in (True, False):
        with speed_options(looped_steps=looped):
            keras.utils.set_random_seed(0)
            model = build_model("lstm", window=6, n_features=2, target_kind="sequence", units=5, layers=2,
                                allow_future_leak=True)
            trainer = training.compile_trainer(model, spec)
            replaced = trainer.train_function is not None
            history = trainer.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
            results.append((replaced, history.history["loss"], trainer.get_weights()))
    (replaced, loss, weights), (_, keras_loss, keras_weights) = results
    assert replaced == (keras.backend.backend() == "jax")
    np.testing.assert_allclose(loss, keras_loss, rtol=1e-6)
    for ours, theirs in zip(weights, keras_weights):
        np.testing.assert_allclose(ours, theirs, atol=1e-6)


@pytest.mark.backend
def test_a_trained_model_saves_without_its_backends_optimizer(tmp_path):
    """model.keras must load on any backend: no optimizer class of the training backend inside."""
    import zipfile

    frame = pd.DataFrame({"y": np.sin(np.arange(200) / 5)}, index=pd.date_range("2020-01-01", periods=200, name="Date"))
    windows = make_windows(frame, target="y", window=8, batch_size=32)
    model = build_model("lstm", window=8, n_features=1, units=4, layers=1, scaling=windows.scaling)
    train_model(model, windows, TrainSpec(epochs=1), verbose=0)
    model.save(tmp_path / "m.keras")
    config = zipfile.ZipFile(tmp_path / "m.keras").read("config.json").decode()
    assert "optimizer" not in config and "Adam" not in config


@pytest.mark.backend
def test_patience_stops_early():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"y": rng.normal(size=300)}, index=pd.date_range("2020-01-01", periods=300, name="Date"))
    windows = make_windows(frame, target="y", window=8, batch_size=32, seed=0)
    model = build_model("drnn", window=8, n_features=1, units=16, layers=1, scaling=windows.scaling)
    history = train_model(model, windows, TrainSpec(epochs=40, lr=0.05, patience=2), verbose=0)
    assert len(history["loss"]) < 40


@pytest.mark.backend
def test_a_diverging_loss_stops_training_with_a_clear_error(tmp_path, run_cli):
    frame = pd.DataFrame({"y": np.sin(np.arange(300) / 5)}, index=pd.date_range("2020-01-01", periods=300, name="Date"))
    windows = make_windows(frame, target="y", window=8, batch_size=8, seed=0)
    model = build_model("drnn", window=8, n_features=1, units=8, layers=1, scaling=windows.scaling)
    with pytest.raises(KerasSeqError, match=r"training diverged: the loss became (nan|inf) in epoch 1"):
        train_model(model, windows, TrainSpec(epochs=5, lr=1e35, steps_per_execution=1), verbose=0)
    # an ensemble: the mean of its members' losses diverges with any one of them
    code, out, err = run_cli("fit", "--arch", "drnn", "--units", "8", "--lr", "1e35", "--epochs", "3", "--ensemble", "2",
                             "--out", tmp_path, "-q")
    assert code == 1 and "training diverged" in err and "2 ensemble members" in err
    assert len(err.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())  # no broken model saved


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(epochs=0), "`epochs` must be an integer of at least 1. Received: epochs=0"),
        (dict(batch_size=-4), "`batch_size` must be an integer of at least 1"),
        (dict(lr=0.0), "`lr` must be a positive number"),
        (dict(seed=-1), "`seed` must be an integer of at least 0"),
        (dict(seed=2**32), "`seed` must be at most 4294967295. Received: seed=4294967296"),
        (dict(patience=0), "`patience` must be an integer of at least 1"),
        (dict(steps_per_execution=0), "`steps_per_execution` must be an integer of at least 1"),
        (dict(jit_compile="yes"), "`jit_compile` must be true, false or"),
    ],
)
def test_bad_training_options(kwargs, message):
    with pytest.raises(KerasSeqError, match=message):
        TrainSpec(**kwargs)


@pytest.mark.backend
def test_sigterm_stops_training_after_the_current_batch(monkeypatch):
    """A real SIGTERM to this process while it trains: the handler asks Keras to stop, nothing raises mid-step."""
    import os
    import signal

    from keras_seq.data.windows import Windows

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"y": rng.normal(size=400)}, index=pd.date_range("2020-01-01", periods=400, name="Date"))
    windows = make_windows(frame, target="y", window=8, batch_size=16, seed=0)
    model = build_model("drnn", window=8, n_features=1, units=4, layers=1, scaling=windows.scaling)
    gathered = []
    gather = Windows.gather

    def gather_and_signal(self, starts):  # only called inside train_model, where the handler is installed
        gathered.append(len(starts))
        if len(gathered) == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return gather(self, starts)

    monkeypatch.setattr(Windows, "gather", gather_and_signal)
    previous = signal.getsignal(signal.SIGTERM)
    history = train_model(model, windows, TrainSpec(epochs=50, steps_per_execution=1), verbose=0)
    assert history["interrupted"] is True
    # 17 training batches an epoch, 50 epochs: it stopped in the first (tensorflow gathers a few batches ahead)
    assert len(gathered) < 17
    assert signal.getsignal(signal.SIGTERM) == previous  # the process's own handler is back
