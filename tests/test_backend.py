"""keras_seq/backend.py: the default backend, and a choice made before Keras loads."""

from __future__ import annotations

import os
import subprocess
import sys

import keras
import pytest

from keras_seq.backend import DEFAULT_BACKEND, use_backend
from keras_seq.errors import KerasSeqError


def python(code: str, **env) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**base, **env}, timeout=300)


def test_the_default_backend_is_jax_and_env_overrides_it():
    assert DEFAULT_BACKEND == "jax"
    code = "from keras_seq.backend import use_backend, import_keras; use_backend(); print(import_keras().backend.backend())"
    assert python(code).stdout.split() == ["jax"]
    assert python(code, KERAS_BACKEND="tensorflow").stdout.split() == ["tensorflow"]


def test_without_a_choice_an_already_imported_keras_is_kept(monkeypatch):
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    assert use_backend() == keras.backend.backend()


def test_switching_after_keras_loaded_is_one_clear_error():
    other = "tensorflow" if keras.backend.backend() != "tensorflow" else "jax"
    with pytest.raises(KerasSeqError, match=f"already imported with backend '{keras.backend.backend()}'"):
        use_backend(other)
