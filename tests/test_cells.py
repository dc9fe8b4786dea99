"""keras_seq/models/cells.py: DT-RNN, DT(S)-RNN and DOT-RNN follow the paper's equations, train, save and export."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from keras_seq.data.sources import DataSpec
from keras_seq.data.windows import WindowSpec
from keras_seq.errors import KerasSeqError
from keras_seq.artifacts.export import export_run
from keras_seq.models import DeepTransitionCell, ModelSpec, build_model, cell_parameters, load_model
from keras_seq.workflows.fit import fit_run
from keras_seq.training.loop import TrainSpec

from conftest import run_console

# Tests marked `backend` run again under jax and torch (`make test`); the parameter counts and
# option checks do not depend on the backend.

VARIANTS = {
    "plain step (L=1)": dict(transition_layers=1),
    "dtrnn L=3": dict(transition_layers=3),
    "dtsrnn L=2": dict(transition_layers=2, shortcut=True),
    "dtsrnn L=4": dict(transition_layers=4, shortcut=True),
    "dotrnn L=2 K=3": dict(transition_layers=2, output_layers=3),
    "dots L=3 K=2": dict(transition_layers=3, shortcut=True, output_layers=2),
}


def numpy_step(cell: DeepTransitionCell, x, h):
    """One step of the paper's equations, in float64 numpy, from the cell's own weights."""
    w = {v.path.split("/")[-1]: np.asarray(keras.ops.convert_to_numpy(v), dtype="float64") for v in cell.weights}
    L, K = cell.transition_layers, cell.output_layers
    pre = x @ w["input_kernel"] + h @ w["recurrent_kernel"] + w["transition_bias_1"]
    if L == 1:
        state = np.tanh(pre)
    else:
        z = np.tanh(pre)
        for k in range(2, L):
            z = np.tanh(z @ w[f"transition_kernel_{k}"] + w[f"transition_bias_{k}"])
        last = z @ w[f"transition_kernel_{L}"] + w[f"transition_bias_{L}"]
        if cell.shortcut:
            last = last + x @ w["shortcut_input_kernel"] + h @ w["shortcut_recurrent_kernel"]
        state = np.tanh(last)
    out = state
    for k in range(1, K):
        out = np.tanh(out @ w[f"output_kernel_{k}"] + w[f"output_bias_{k}"])
    return out, state


@pytest.mark.backend
@pytest.mark.parametrize("options", VARIANTS.values(), ids=VARIANTS.keys())
def test_one_step_matches_the_equations(options):
    rng = np.random.default_rng(1)
    cell = DeepTransitionCell(5, bias_initializer="random_normal", **options)
    cell.build((None, 3))
    x = rng.normal(size=(4, 3)).astype("float32")
    h = rng.normal(size=(4, 5)).astype("float32")
    out, (state,) = cell(x, [h])
    expected_out, expected_state = numpy_step(cell, x.astype("float64"), h.astype("float64"))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(state), expected_state, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out), expected_out, rtol=1e-5, atol=1e-5)
    if options.get("output_layers", 1) > 1:
        assert not np.allclose(expected_out, expected_state)  # the deep output is a real extra map


@pytest.mark.backend
def test_a_sequence_is_the_step_applied_in_order():
    rng = np.random.default_rng(2)
    cell = DeepTransitionCell(4, transition_layers=2, shortcut=True, output_layers=2)
    layer = keras.layers.RNN(cell, return_sequences=True)
    x = rng.normal(size=(2, 6, 3)).astype("float32")
    outputs = keras.ops.convert_to_numpy(layer(x))
    h = np.zeros((2, 4))
    for t in range(6):
        out, h = numpy_step(cell, x[:, t].astype("float64"), h)
        np.testing.assert_allclose(outputs[:, t], out, rtol=1e-5, atol=1e-5)


def gradients(model, x):
    """d mean(model(x)[:, -1]) / d (every trainable weight, the input), on the active backend."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_mean(model(x))
        grads = tape.gradient(loss, [*model.trainable_variables, x])
        return [g.numpy() for g in grads[:-1]], grads[-1].numpy()
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        trainable = [v.value for v in model.trainable_variables]
        fixed = [v.value for v in model.non_trainable_variables]

        def loss(weights, inputs):
            out, _ = model.stateless_call(weights, fixed, inputs)
            return jnp.mean(out)

        grad_w, grad_x = jax.grad(loss, argnums=(0, 1))(trainable, jnp.asarray(x))
        return [np.asarray(g) for g in grad_w], np.asarray(grad_x)
    assert backend == "torch", backend
    import torch

    inputs = torch.tensor(x, requires_grad=True)
    loss = torch.mean(model(inputs))
    grads = torch.autograd.grad(loss, [v.value for v in model.trainable_variables] + [inputs])
    return [g.detach().cpu().numpy() for g in grads[:-1]], grads[-1].detach().cpu().numpy()


@pytest.mark.backend
@pytest.mark.parametrize("arch", ["dtrnn", "dtsrnn", "dotrnn"])
def test_gradients_through_64_steps_are_finite_and_reach_every_weight(arch):
    keras.utils.set_random_seed(0)
    network = build_model(arch, window=64, n_features=2, units=8, layers=2, transition_layers=3,
                          output_layers=3, residual=False).get_layer("network")  # residual: a head that starts at 0
    x = np.random.default_rng(0).normal(size=(4, 64, 2)).astype("float32")
    grads, grad_x = gradients(network, x)
    assert len(grads) == len(network.trainable_variables)
    for variable, grad in zip(network.trainable_variables, grads):
        assert np.all(np.isfinite(grad)), variable.path
        assert np.any(grad != 0), f"no gradient reaches {variable.path}"
    # ... and through time: the first of 64 steps still moves the forecast.
    assert np.all(np.isfinite(grad_x)) and np.any(grad_x[:, 0] != 0)


@pytest.mark.parametrize(
    "arch, units, n_features, layers, transition, output",
    [("dtrnn", 64, 1, 2, 2, 2), ("dtrnn", 7, 3, 1, 4, 2), ("dtsrnn", 64, 1, 2, 2, 2), ("dtsrnn", 5, 2, 3, 1, 2),
     ("dotrnn", 64, 1, 2, 2, 2), ("dotrnn", 6, 4, 2, 3, 4)],
)
def test_parameter_counts_match_the_closed_form(arch, units, n_features, layers, transition, output):
    network = build_model(arch, window=8, n_features=n_features, units=units, layers=layers,
                          transition_layers=transition, output_layers=output).get_layer("network")
    shortcut, deep = arch == "dtsrnn", arch == "dotrnn"
    expected, inputs = 0, n_features
    for _ in range(layers):
        expected += cell_parameters(units, inputs, transition, shortcut, output if deep else 1)
        inputs = units
    assert network.count_params() == expected + units + 1  # + the Dense head


def test_closed_form_reduces_to_simple_rnn():
    network = build_model("drnn", window=8, n_features=3, units=9, layers=1).get_layer("network")
    assert network.count_params() == cell_parameters(9, 3, 1, False, 1) + 9 + 1


@pytest.mark.backend
def test_bidirectional_stack_of_deep_transitions():
    model = build_model("brnn", window=8, n_features=1, units=4, layers=2, cell="dtsrnn", transition_layers=2)
    network = model.get_layer("network")
    expected = 2 * cell_parameters(4, 1, 2, True, 1) + 2 * cell_parameters(4, 8, 2, True, 1) + 8 + 1
    assert network.count_params() == expected
    assert isinstance(network.get_layer("brnn_1"), keras.layers.Bidirectional)


@pytest.mark.backend
@pytest.mark.parametrize("arch", ["dtrnn", "dtsrnn", "dotrnn"])
def test_save_and_load_round_trip(tmp_path, arch):
    model = build_model(arch, window=10, n_features=2, units=5, layers=2, transition_layers=3, output_layers=3,
                        dropout=0.1)
    x = np.random.default_rng(3).normal(size=(3, 10, 2)).astype("float32")
    model.save(tmp_path / "m.keras")
    loaded = load_model(tmp_path / "m.keras")  # safe_mode=True
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6, atol=1e-6)
    cell = loaded.get_layer("network").get_layer(f"{arch}_1").cell
    assert (cell.transition_layers, cell.output_layers, cell.shortcut) == (
        3, 3 if arch == "dotrnn" else 1, arch == "dtsrnn")


@pytest.mark.parametrize("options, words", [
    (dict(transition_layers=0), "`transition_layers` must be an integer of at least 1"),
    (dict(output_layers=-1), "`output_layers` must be an integer of at least 1"),
    (dict(cell="dtx"), "unknown cell 'dtx'"),
])
def test_bad_depth_options_are_refused(options, words):
    with pytest.raises(KerasSeqError, match=words):
        ModelSpec(arch="dotrnn", **options)


@pytest.fixture(scope="module")
def deep_runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("deep")
    return {arch: fit_run(DataSpec(start="2021-06-01"), WindowSpec(window=8),
                          ModelSpec(arch=arch, units=4, layers=1, transition_layers=3, output_layers=3),
                          TrainSpec(epochs=2, batch_size=64), out=out, verbose=0)
            for arch in ("dtrnn", "dtsrnn", "dotrnn")}


@pytest.mark.backend
@pytest.mark.parametrize("arch", ["dtrnn", "dtsrnn", "dotrnn"])
def test_deep_archs_train_and_export_with_parity(deep_runs, arch):
    run = deep_runs[arch]
    history = run.history
    assert len(history["loss"]) == 2 and all(np.isfinite(history["loss"]))
    config = json.loads((run.path / "config.json").read_text())
    assert config["model"]["transition_layers"] == 3 and config["model"]["arch"] == arch
    if keras.backend.backend() == "tensorflow":
        if arch == "dtrnn":  # its parts are in the other two (dtsrnn adds the shortcut, dotrnn the output layers)
            return
        parity = export_run(run.path, "savedmodel,onnx").parity
    elif arch != "dotrnn" or keras.backend.backend() == "jax":
        # on torch, the deep arch with the most parts exports (~10 s); test_export exports a jax-trained model
        return
    else:  # trained on another backend: export in a tensorflow process, as users do
        done = run_console("export", run.path, "--format", "savedmodel,onnx", env={"KERAS_BACKEND": "tensorflow"})
        assert done.returncode == 0, done.stderr
        parity = json.loads((run.path / "export" / "model_card.json").read_text())["parity"]
    for fmt in ("savedmodel", "onnx"):
        assert parity[fmt]["relative_diff"] <= 1e-5


@pytest.mark.backend
def test_cli_fit_and_summary_know_the_deep_archs(run_cli, tmp_path):
    code, out, err = run_cli("summary", "--arch", "dtsrnn", "--units", "4", "--layers", "1", "--transition-layers", "3")
    assert code == 0, err
    assert "shortcut_recurrent_kernel" in out and "transition_kernel_3" in out
    assert f"parameters: {cell_parameters(4, 1, 3, True, 1) + 5}" in out  # + head (scaler window keeps no statistics)
    code, out, err = run_cli("fit", "--arch", "dtrnn", "--transition-layers", "0", "--out", tmp_path)
    assert code == 1 and "--transition-layers must be an integer of at least 1" in err
    assert len(err.strip().splitlines()) == 1 and not any(tmp_path.iterdir())
