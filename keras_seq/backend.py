"""Choose the Keras backend before Keras is imported.

Keras reads `KERAS_BACKEND` once, when it is first imported (and importing
TensorFlow imports Keras), so the choice must be made before any of
`keras_seq.models`, `keras_seq.data.windows` or TensorFlow is loaded.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys

from keras_seq.errors import KerasSeqError

# Chosen by benchmarks/train_speed.py: with XLA and steps_per_execution, jax
# trains these small recurrent models several times faster than tensorflow on
# CPU (benchmarks/RESULTS.md). tensorflow is the fallback if jax is missing.
DEFAULT_BACKEND = "jax"
FALLBACK_BACKEND = "tensorflow"
# backend name -> (module that must be importable, pip extra that installs it)
BACKENDS = {
    "tensorflow": ("tensorflow", None),
    "jax": ("jax", "jax"),
    "torch": ("torch", "torch"),
}


def use_backend(name: str | None = None) -> str:
    """Select the Keras backend for this process and return its name.

    Args:
        name: str or None. "tensorflow", "jax" or "torch". Defaults to the
            `KERAS_BACKEND` environment variable, else the backend of an
            already imported Keras, else `DEFAULT_BACKEND`.

    Returns:
        The backend name now in force.

    Raises:
        KerasSeqError: the name is unknown, its package is not installed, or
            Keras was already imported with another backend.

    Example:
    >>> use_backend("tensorflow")
    'tensorflow'
    """
    if name is None and not os.environ.get("KERAS_BACKEND") and "keras" in sys.modules:
        return sys.modules["keras"].backend.backend()  # no choice made: keep the one already loaded
    name = name or os.environ.get("KERAS_BACKEND") or _default_backend()
    if name not in BACKENDS:
        raise KerasSeqError(
            f"unknown backend '{name}'. Expected one of: {', '.join(BACKENDS)}."
        )
    module, extra = BACKENDS[name]
    if importlib.util.find_spec(module) is None:
        hint = f"pip install 'keras-seq[{extra}]'" if extra else f"pip install {module}"
        raise KerasSeqError(
            f"backend '{name}' is not installed (no module '{module}'). "
            f"Install it with: {hint}"
        )
    if "keras" in sys.modules:
        current = sys.modules["keras"].backend.backend()
        if current != name:
            raise KerasSeqError(
                f"Keras is already imported with backend '{current}', cannot switch to "
                f"'{name}' in this process. Set KERAS_BACKEND={name} before importing "
                "keras, or run keras-seq in a new process."
            )
        return name
    os.environ["KERAS_BACKEND"] = name
    # TensorFlow's C++ start-up chatter would bury keras-seq's own messages.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return name


def _default_backend() -> str:
    if importlib.util.find_spec(BACKENDS[DEFAULT_BACKEND][0]) is None:
        return FALLBACK_BACKEND
    return DEFAULT_BACKEND


def default_to_keras_seq_backend() -> None:
    """Make keras-seq's default backend Keras's too, where no backend was chosen and Keras is not loaded yet.

    Called when `keras_seq` is imported, so that Python code and the CLI
    train on the same backend (jax) unless `KERAS_BACKEND` says otherwise;
    a Keras imported before keras-seq keeps its backend. Nothing is imported.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "keras" not in sys.modules and not os.environ.get("KERAS_BACKEND"):
        os.environ["KERAS_BACKEND"] = _default_backend()


def import_keras():
    """Import Keras (and TensorFlow) with the chosen backend, and return `keras`.

    Where no backend was chosen, it is `use_backend()`'s default.
    TensorFlow's native libraries print start-up notices straight to file
    descriptor 2 before its logging is configured (`TF_CPP_MIN_LOG_LEVEL`
    cannot silence them). They are captured here and shown only if the
    import fails.
    """
    if "keras" in sys.modules and "tensorflow" in sys.modules:
        return sys.modules["keras"]
    import tempfile

    use_backend()

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        failed = True
        try:
            import keras
            import tensorflow  # noqa: F401  (tf.data; loads its native libraries now)

            # Retracing notices when many models are trained in one process (compare) are noise.
            logging.getLogger("tensorflow").setLevel(logging.ERROR)
            failed = False
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            if failed:
                captured.seek(0)
                sys.stderr.write(captured.read().decode("utf-8", errors="replace"))
    return keras


def import_tensorflow():
    """`tensorflow`, imported as `import_keras` imports it (quietly, after the backend is chosen)."""
    import_keras()
    import tensorflow

    return tensorflow
