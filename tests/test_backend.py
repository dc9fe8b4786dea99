"""keras_seq/backend.py: the default backend, and a choice made before Keras loads."""

from __future__ import annotations

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_seq.backend import DEFAULT_BACKEND, use_backend
from keras_seq.errors import KerasSeqError


def python(code: str, **env) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**base, **env}, timeout=300)


def test_the_environment_overrides_the_default_backend():
    """(That the default is jax, a process without a choice shows in the cache test below.)"""
    assert DEFAULT_BACKEND == "jax"
    code = "from keras_seq.backend import use_backend, import_keras; use_backend(); print(import_keras().backend.backend())"
    assert python(code, KERAS_BACKEND="tensorflow").stdout.split() == ["tensorflow"]


def test_without_a_choice_an_already_imported_keras_is_kept(monkeypatch):
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    assert use_backend() == keras.backend.backend()


def test_switching_after_keras_loaded_is_one_clear_error():
    other = "tensorflow" if keras.backend.backend() != "tensorflow" else "jax"
    with pytest.raises(KerasSeqError, match=f"already imported with backend '{keras.backend.backend()}'"):
        use_backend(other)


@pytest.mark.backend
def test_weights_do_not_depend_on_what_other_code_draws_from_pythons_random():
    """A layer built without a seed draws one; another thread drawing from Python's `random` between keras-seq's
    seeding and the build (a dask worker's event loop did) must not change the weights."""
    import random

    from keras_seq.backend import seeded_build

    def kernel(seed: int, draws_between: int):
        with seeded_build(seed):
            for _ in range(draws_between):
                random.random()
            layer = keras.layers.Dense(3)
            layer.build((None, 2))
        return keras.ops.convert_to_numpy(layer.kernel)

    np.testing.assert_array_equal(kernel(5, 3), kernel(5, 0))
    assert not np.array_equal(kernel(6, 0), kernel(5, 0))
    from keras.src.random import seed_generator

    assert seed_generator.python_random is random  # Keras's own is back, for code outside a keras-seq build

@pytest.mark.backend
def test_seeding_without_tensorflow_draws_what_keras_seeding_draws():
    """keras-seq seeds like `keras.utils.set_random_seed` where TensorFlow is not loaded (jax, torch)."""
    import random

    from keras_seq.backend import _seed_without_tensorflow

    def draws():
        layer = keras.layers.Dense(3)  # no seed of its own: the global SeedGenerator
        layer.build((None, 2))
        return (keras.ops.convert_to_numpy(layer.kernel), keras.ops.convert_to_numpy(keras.random.normal((4,))),
                np.random.rand(2), random.random())

    keras.utils.set_random_seed(11)
    expected = draws()
    draws()  # the generators move on ...
    _seed_without_tensorflow(keras, 11)  # ... and are put back where Keras's seeding puts them
    for got, want in zip(draws(), expected):
        np.testing.assert_array_equal(got, want)


def test_jax_keeps_its_compiled_functions_in_keras_seqs_cache_for_the_next_process(tmp_path):
    """JAX's persistent compilation cache, under `$XDG_CACHE_HOME/keras-seq/jax` unless the user chose a folder:
    a second process compiling the same function finds it there and adds nothing."""
    code = ("from keras_seq.backend import import_keras; print(import_keras().backend.backend()); import jax, "
            "jax.numpy as jnp; print(float(jax.jit(lambda x: jnp.tanh(x) * 3)(jnp.ones(4)).sum()))")
    base = {k: v for k, v in os.environ.items() if not k.startswith("JAX_") and k != "KERAS_BACKEND"}
    env = {**base, "XDG_CACHE_HOME": str(tmp_path)}  # no backend chosen: the default, jax
    cache = tmp_path / "keras-seq" / "jax"
    entries = []
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout.split()[0] == "jax"
        assert float(done.stdout.split()[-1]) == pytest.approx(np.tanh(1.0) * 12, rel=1e-6)  # float32 on jax
        entries.append(sorted(p.name for p in cache.iterdir()))
    assert entries[0] and entries[1] == entries[0]
    off = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**env, "XDG_CACHE_HOME": str(tmp_path / "off"), "KERAS_SEQ_JAX_CACHE": "0"})
    assert off.returncode == 0 and not (tmp_path / "off" / "keras-seq").exists()


def test_a_bidirectional_model_trains_saves_and_loads_on_jax_without_tensorflow(tmp_path):
    """`make demo` trains a brnn on jax: Keras's Bidirectional serializes its inner layer as it is built, whose
    check for a TensorFlow shape imported TensorFlow (issue 35's first hour: twice the memory of the LSTM's run)."""
    code = ("import sys, keras_seq as ks\n"
            "r = ks.fit(ks.DataSpec(start='2022-06-01'), ks.WindowSpec(window=8), ks.ModelSpec(arch='brnn', units=4, "
            f"layers=1), ks.TrainSpec(epochs=1), out={str(tmp_path)!r}, verbose=0)\n"
            "ks.load_model(str(r.path / 'model.keras'))\n"
            "print('tensorflow' in sys.modules)\n")
    done = python(code, KERAS_BACKEND="jax")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["False"]
