"""Choose the Keras backend before Keras is imported.

Keras reads `KERAS_BACKEND` once, when it is first imported (and importing
TensorFlow imports Keras), so the choice must be made before any of
`keras_seq.models`, `keras_seq.data.windows` or TensorFlow is loaded.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import sys
from pathlib import Path

from keras_seq.errors import KerasSeqError

# Chosen by benchmarks/train_speed.py: with XLA and steps_per_execution, jax
# trains these small recurrent models several times faster than tensorflow on
# CPU (benchmarks/RESULTS.md). tensorflow is the fallback if jax is missing.
DEFAULT_BACKEND = "jax"
FALLBACK_BACKEND = "tensorflow"
HOST_DEVICES_FLAG = "--xla_force_host_platform_device_count"  # XLA's CPU device count, read when jax loads
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
    """Import Keras with the chosen backend, and return `keras`.

    Where no backend was chosen, it is `use_backend()`'s default.
    TensorFlow is imported with it only on the tensorflow backend: on jax
    and torch, training, evaluation and ONNX serving read numpy batches, and
    TensorFlow (about 6 s and 470 MiB on a 2-core CPU) loads only when
    something needs it (`import_tensorflow`: SavedModel files, tf.data
    pipelines).
    """
    if "keras" in sys.modules and ("tensorflow" in sys.modules
                                   or sys.modules["keras"].backend.backend() != "tensorflow"):
        return sys.modules["keras"]
    use_backend()
    with _native_start_up_quiet():
        import keras

        if keras.backend.backend() == "tensorflow":
            _load_tensorflow()
    if keras.backend.backend() == "jax":
        use_jax_compilation_cache()
    return keras


def request_host_devices(devices) -> None:
    """Ask XLA for `devices` CPU devices, before jax is imported (nothing where jax is loaded or one is asked).

    A count already in `XLA_FLAGS` is kept. "all" asks nothing: it takes the
    devices there are.
    """
    if not isinstance(devices, int) or devices < 2 or "jax" in sys.modules:
        return
    flags = os.environ.get("XLA_FLAGS", "")
    if HOST_DEVICES_FLAG not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {HOST_DEVICES_FLAG}={devices}".strip()


def start_keras(devices, cluster=None) -> None:
    """Import Keras, asking XLA for `devices` host devices first, and join `cluster` (a
    `training.distributed.Cluster`) if given.

    Only `fit` joins a multi-process job: a comparison or a recipe run writes from every process.
    """
    request_host_devices(devices)
    import_keras()
    if cluster is not None:
        cluster.join()


def jax_cache_folder() -> Path:
    """Where keras-seq keeps JAX's persistent compilation cache: `$XDG_CACHE_HOME/keras-seq/jax`
    (`~/.cache/keras-seq/jax`)."""
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "keras-seq" / "jax"


def use_jax_compilation_cache() -> None:
    """Turn on JAX's persistent compilation cache, so a second run of the same shapes does not compile.

    A first `keras-seq fit` of the default LSTM spends about 4 s of a 2-core
    CPU compiling (benchmarks/RESULTS.md); each step compiles in well under
    JAX's default one-second threshold, so every compilation is kept. A
    cache folder chosen by the user (`JAX_COMPILATION_CACHE_DIR` or
    `jax.config`) is kept as it is; `KERAS_SEQ_JAX_CACHE=0` turns the
    cache off.
    """
    import jax

    if os.environ.get("KERAS_SEQ_JAX_CACHE", "1") == "0" or jax.config.jax_compilation_cache_dir:
        return
    folder = private_folder(jax_cache_folder())
    if folder is None:
        return
    jax.config.update("jax_compilation_cache_dir", str(folder))
    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)


def private_folder(folder: Path) -> Path | None:
    """`folder` (made if missing, private to the user), or None with a warning where it or its parent is a link
    or belongs to another user: compiled programs are loaded from it, so it must be the user's own."""
    import stat
    import warnings

    from keras_seq.errors import RunWarning

    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        for part in (folder.parent, folder):
            info = os.lstat(part)
            if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
                raise PermissionError(f"{part} is a link, not a folder, or not yours")
    except OSError as exc:
        warnings.warn(f"JAX's compilation cache is off for this run: {exc}. keras-seq loads compiled programs only "
                      "from a folder of your own (or set JAX_COMPILATION_CACHE_DIR).", RunWarning, stacklevel=3)
        return None
    return folder


def import_tensorflow():
    """`tensorflow`, imported quietly after the backend is chosen (on any backend)."""
    import_keras()
    if "tensorflow" not in sys.modules:
        with _native_start_up_quiet():
            _load_tensorflow()
    return sys.modules["tensorflow"]


def _load_tensorflow() -> None:
    import tensorflow  # noqa: F401  (loads its native libraries now)

    # Retracing notices when many models are trained in one process (compare) are noise.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


@contextlib.contextmanager
def _native_start_up_quiet():
    """Capture file descriptor 2 while native libraries load, and show what they printed only on failure.

    TensorFlow's native libraries print start-up notices straight to file
    descriptor 2 before its logging is configured (`TF_CPP_MIN_LOG_LEVEL`
    cannot silence them).
    """
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        failed = True
        try:
            yield
            failed = False
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            if failed:
                captured.seek(0)
                sys.stderr.write(captured.read().decode("utf-8", errors="replace"))


def set_random_seed(seed: int) -> None:
    """`keras.utils.set_random_seed`, without importing TensorFlow where it is not loaded.

    Keras's function imports TensorFlow whenever it is installed, to seed
    tf.data. keras-seq's batches are numpy on every backend (their order
    comes from the seed and the epoch), so TensorFlow is seeded only when
    it is already loaded. The rest is what Keras's function does: Python's
    and numpy's generators, torch's on torch, the global seed Keras's
    distribution reads and a fresh global `SeedGenerator` (weights drawn
    with no seed of their own come from it).
    """
    keras = import_keras()
    if "tensorflow" in sys.modules:
        keras.utils.set_random_seed(seed)
    else:
        _seed_without_tensorflow(keras, seed)


@contextlib.contextmanager
def seeded_build(seed: int):
    """Seed like `set_random_seed`, and give the layers built inside a generator of default seeds of their own.

    Every layer built without a seed (weights, dropout) draws one from
    Python's global `random`, which any thread of the process may draw from
    too: a dask worker's event loop did, mid-build, so a fit on a cluster
    got other weights than the same fit alone. Inside, Keras draws from a
    `random.Random(seed)`, which gives what the seeded global generator
    gives a single thread; Keras's own is put back on leaving. Keras reads
    it through a module attribute (`keras.src.random.seed_generator.
    python_random`); where a Keras version lacks it, only the seeding is done.
    """
    import random

    set_random_seed(seed)
    try:
        from keras.src.random import seed_generator
    except ImportError:
        seed_generator = None
    if seed_generator is None or getattr(seed_generator, "python_random", None) is not random:
        yield
        return
    seed_generator.python_random = random.Random(seed)
    try:
        yield
    finally:
        seed_generator.python_random = random


def _seed_without_tensorflow(keras, seed: int) -> None:
    import random

    import numpy as np
    from keras.src.backend.common import global_state
    from keras.src.random.seed_generator import GLOBAL_SEED_GENERATOR
    from keras.src.utils.rng_utils import GLOBAL_RANDOM_SEED

    global_state.set_global_attribute(GLOBAL_RANDOM_SEED, seed)
    global_state.set_global_attribute(GLOBAL_SEED_GENERATOR, None)
    random.seed(seed)
    np.random.seed(seed)
    if keras.backend.backend() == "torch":
        import torch

        torch.manual_seed(seed)


@contextlib.contextmanager
def tensorflow_left_unloaded():
    """Keep Keras from importing TensorFlow where TensorFlow is not loaded: a `.keras` save, joining a job.

    Keras's serializer imports TensorFlow whenever it is installed
    (`module_utils.tensorflow.available`), only to ask whether a value is
    a `tf.TensorShape`, `tf.DType` or `tf.TypeSpec`. Where TensorFlow was
    never imported no value can be one, so for the save the answer is "not
    available": the file is the same, without TensorFlow's 6 s and 470 MiB.
    `keras.distribution.initialize` asks too, to seed TensorFlow's generator,
    which nothing on jax reads. With TensorFlow loaded, or a Keras without
    that probe, nothing changes.
    """
    probe = None
    if "tensorflow" not in sys.modules:
        from keras.src.utils import module_utils

        probe = getattr(module_utils, "tensorflow", None)
    if probe is None or getattr(probe, "_available", True) is not None:
        yield
        return
    probe._available = False
    try:
        yield
    finally:
        probe._available = None
