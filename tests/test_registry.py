"""The arch registry: a new arch, defined in this file, works everywhere an arch does, without touching keras_seq/."""

from __future__ import annotations

import json

import keras
import numpy as np
import pandas as pd
import pytest

import keras_seq
from keras_seq.config.options import INT, Option
from keras_seq.errors import KerasSeqError
from keras_seq.models import arch_names, build_model, get_arch, load_model, network_of, register_arch, unregister_arch
from keras_seq.workflows.recipe import load_recipe
from keras_seq.runs.folder import specs_from_config


# === The toy arch: all of it ===
def mlp_backbone(spec, x, sequences):
    """An MLP over the flattened window; it has no per-step output, so only target kind `next`."""
    if sequences:
        raise KerasSeqError("arch 'toymlp' forecasts after the window only. Use target kind 'next'.")
    x = keras.layers.Flatten(name="toymlp_flatten")(x)
    for index in range(spec.layers):
        x = keras.layers.Dropout(spec.dropout, name=f"toymlp_{index + 1}_dropout")(x)
        x = keras.layers.Dense(spec.units, activation="tanh", name=f"toymlp_{index + 1}")(x)
    return x


@pytest.fixture(scope="module")
def toy_arch():
    register_arch("toymlp", mlp_backbone, help="an MLP over the window")
    yield "toymlp"
    unregister_arch("toymlp")
# === end of the toy arch ===


def test_a_registered_arch_fits_evaluates_exports_and_predicts_from_python(toy_arch, tmp_path):
    run = keras_seq.fit(keras_seq.DataSpec(), keras_seq.WindowSpec(window=8),
                        keras_seq.ModelSpec(arch=toy_arch, units=8, layers=2), keras_seq.TrainSpec(epochs=1),
                        out=tmp_path, verbose=0, backend=keras.backend.backend())
    assert run.path.name.startswith("toymlp-") and run.report.name == toy_arch
    assert np.isfinite(run.report.model["mae"]) and run.report.persistence["mae"] > 0
    again = keras_seq.evaluate(run.path)
    assert again.report.model == pytest.approx(run.report.model, rel=1e-5)

    exported = keras_seq.export(run.path, "onnx,savedmodel")
    assert set(exported.parity) == {"onnx", "savedmodel"}
    assert all(check["relative_diff"] <= 1e-5 for check in exported.parity.values())
    forecasts = [keras_seq.predict(artifact)["Close"].to_numpy()
                 for artifact in (exported.path / "model.onnx", exported.path / "savedmodel" / toy_arch / "1", run.path)]
    assert len(forecasts[0]) == 1 and np.isfinite(forecasts[0]).all()
    np.testing.assert_allclose(forecasts[0], forecasts[1], rtol=1e-5)
    np.testing.assert_allclose(forecasts[0], forecasts[2], rtol=1e-5)


def test_a_registered_arch_is_an_arch_of_the_cli(toy_arch, tmp_path, run_cli):
    code, out, err = run_cli("fit", "--arch", toy_arch, "--window", "8", "--units", "4", "--layers", "1",
                             "--epochs", "1", "--out", tmp_path, "-q")
    assert code == 0, err
    run_dir = next(tmp_path.glob("toymlp-*"))
    code, out, err = run_cli("predict", run_dir)
    assert code == 0, err
    assert "Close" in out
    code, out, err = run_cli("summary", "--arch", toy_arch, "--window", "8", "--units", "4", "--layers", "1")
    assert code == 0, err
    assert "toymlp_1/kernel" in out and "[8, 4]" in out
    code, out, err = run_cli("compare", "--archs", f"gru,{toy_arch}", "--epochs", "0")
    assert code == 1 and "--epochs must be" in err  # the arch list was accepted; the bad epoch count was not
    code, out, err = run_cli("fit", "--arch", toy_arch, "--target-kind", "sequence", "--out", tmp_path / "seq")
    assert code == 1 and "arch 'toymlp' forecasts after the window only" in err
    assert not (tmp_path / "seq").exists() or not any((tmp_path / "seq").iterdir())


def test_registering_checks_the_name_and_refuses_a_second_registration(toy_arch):
    with pytest.raises(KerasSeqError, match="already registered"):
        register_arch(toy_arch, mlp_backbone)
    for bad in ("Toy", "1toy", "to y", "", None):
        with pytest.raises(KerasSeqError, match="lowercase word"):
            register_arch(bad, mlp_backbone)
    with pytest.raises(KerasSeqError, match="built in"):
        unregister_arch("lstm")
    assert arch_names()[:7] == ("drnn", "brnn", "lstm", "gru", "dtrnn", "dtsrnn", "dotrnn")


def test_an_arch_that_reads_the_future_is_refused_for_sequence_targets(toy_arch):
    register_arch("toybidi", lambda spec, x, sequences: keras.layers.Bidirectional(
        keras.layers.SimpleRNN(spec.units, return_sequences=sequences))(x), causal=False)
    try:
        with pytest.raises(KerasSeqError, match="arch 'toybidi' with target kind 'sequence' reads the future"):
            build_model("toybidi", window=4, target_kind="sequence", units=2)
        assert build_model("toybidi", window=4, target_kind="sequence", units=2, allow_future_leak=True).output.shape[1:] == (4, 1)
        assert not get_arch("toybidi").causal and get_arch("lstm").causal
    finally:
        unregister_arch("toybidi")


# === An arch with a hyperparameter of its own: all of it ===
KERNEL = Option("model", "kernel", INT, 3, "Width of toyconv's causal convolution.", low=1, high=16, tune=True)


def conv_backbone(spec, x, sequences):
    """A causal convolution of `spec.kernel` steps; its last step is the forecast's features."""
    x = keras.layers.Conv1D(spec.units, spec.kernel, padding="causal", activation="tanh", name="toyconv")(x)
    return x if sequences else x[:, -1, :]
# === end of the arch ===


def test_an_arch_brings_its_own_option_to_the_cli_a_recipe_config_json_and_tune(tmp_path, run_cli):
    register_arch("toyconv", conv_backbone, help="a causal convolution", options=(KERNEL,))
    try:
        code, out, err = run_cli("fit", "--arch", "toyconv", "--kernel", "5", "--window", "8", "--units", "4",
                                 "--epochs", "1", "--start", "2022-01-01", "--out", tmp_path, "-q")
        assert code == 0, err
        (run_dir,) = tmp_path.glob("toyconv-*")
        config = json.loads((run_dir / "config.json").read_text())
        assert config["model"]["kernel"] == 5 and network_of(load_model(run_dir / "model.keras")).get_layer("toyconv").kernel_size == (5,)
        assert specs_from_config(config, run_dir, ("model",)) == (keras_seq.ModelSpec(arch="toyconv", units=4, kernel=5),)
        recipe = tmp_path / "conv.toml"
        recipe.write_text('description = "x"\n[data]\nstart = 2022-01-01\n[windows]\nwindow = 8\n[model]\narchs = ["toyconv"]\nunits = 4\nkernel = 2\n'
                          '[train]\nepochs = 1\n[tune.model]\nkernel = {low = 2, high = 4}\n')
        assert load_recipe(recipe).experiments[0].model.kernel == 2
        code, out, err = run_cli("tune", "--recipe", recipe, "--trials", "2", "--no-refit", "--out", tmp_path, "-q")
        assert code == 0, err
        assert set(pd.read_csv(tmp_path / "study" / "trials.csv")["params_model.kernel"]) <= {2, 3, 4}
        code, out, err = run_cli("fit", "--arch", "toyconv", "--kernel", "0")
        assert code == 1 and "--kernel must be an integer of at least 1" in err
    finally:
        unregister_arch("toyconv")
    with pytest.raises(KerasSeqError, match="unknown model option 'kernel'"):
        keras_seq.ModelSpec(kernel=3)  # gone with its arch
