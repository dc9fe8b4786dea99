"""Fit a keras-seq model: the training loop, its checkpoints, Ctrl-C, and the fast path on jax.

Keras is imported inside the functions that need it, so `TrainSpec` can be
built (and checked) before a backend is chosen.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import itertools
import json
import os
import platform
import sys
import threading
from pathlib import Path

import numpy as np

from keras_seq.config import speed
from keras_seq.config.options import spec_of
from keras_seq.data.windows import Windows
from keras_seq.training.distributed import check_devices, current_parallel
from keras_seq.errors import KerasSeqError, first_line
from keras_seq.safety import write_file_atomically


@spec_of("train")
class TrainSpec:
    """How a model is trained (the options are `keras_seq.config.options`' `train` section).

    `steps_per_execution`'s default, 32, was measured by `benchmarks/train_speed.py`; on jax on a CPU one compiled
    loop runs those steps. `devices` above 1 trains with `keras.distribution.DataParallel` (see
    `keras_seq.training.distributed`); on a CPU, keras-seq asks XLA for that many host devices before jax is imported.
    """

    def __post_init__(self):
        if self.jit_compile not in (True, False, "auto"):
            raise KerasSeqError(f"`jit_compile` must be true, false or \"auto\". Received: {self.jit_compile!r}")
        check_devices(self.devices)


def train_model(
    model,
    windows: Windows,
    spec: TrainSpec,
    verbose: str | int = "auto",
    *,
    checkpoint: str | os.PathLike | None = None,
    resume: dict | None = None,
) -> dict:
    """Fit a keras-seq model on raw windows, its loss in the target's normalized units.

    The trainer shares the model's weights (see `compile_trainer`); the best validation epoch's are restored.

    Args:
        model: keras.Model. Built by `build_model`.
        windows: Windows. From `make_windows(...)` (raw values, the train
            split shuffled), with a validation split.
        spec: TrainSpec. Epochs, learning rate and patience.
        verbose: "auto", 0, 1 or 2. Keras's progress output. Defaults to
            `"auto"`.
        checkpoint: path or None. Write the training state here after every
            epoch (atomically: a temporary file, then a rename), and stop
            after the current batch on Ctrl-C instead of raising. Defaults to
            `None`.
        resume: dict or None. A checkpoint read by `read_checkpoint`: training
            continues after its last epoch, with its weights, optimizer state,
            best epoch and history. Defaults to `None`.

    Returns:
        The history: `{"loss": [...], "val_loss": [...]}`, one value per
        epoch, in normalized units (mean squared error of the scaled target), and
        `"interrupted": True` if Ctrl-C stopped training early.
    """
    import keras

    if windows.normalized:
        raise ValueError("train_model needs raw windows (the model scales them itself): "
                         "make_windows(...) without normalize=True.")
    if windows.count("validation") == 0:
        raise KerasSeqError("training needs a validation split. Give `splits` a validation fraction above 0.")
    trainer = compile_trainer(model, spec)
    first_epoch, previous = (resume["epochs_done"], resume["history"]) if resume is not None else (0, {})
    if resume is not None:
        _restore_trainer(trainer, resume)
    if verbose == "auto":  # a live bar on a terminal, one line per epoch in logs
        verbose = 1 if sys.stdout.isatty() else 2
    interrupt = _Interrupt(current_parallel())
    guard, best, saver, together = _callbacks(keras, spec, resume, checkpoint, previous, interrupt)
    watchers = [_epoch_watcher(keras, watch, model) for watch in _EPOCH_WATCHERS.get()]
    with interrupt.catching(trainer):
        history = trainer.fit(fit_data(windows, "train", first_epoch), validation_data=fit_data(windows, "validation"),
                              epochs=spec.epochs, initial_epoch=first_epoch, verbose=verbose,
                              callbacks=[c for c in (guard, best, saver, *watchers, together) if c is not None],
                              shuffle=False)  # the training pipeline shuffles itself
    guard.check(spec.lr, model)
    if interrupt.requested:  # the epochs in the last checkpoint; one cut short is not kept: resuming repeats it
        return {**(saver.history if saver is not None else {}), "interrupted": True}
    done = {key: [float(v) for v in values] for key, values in history.history.items()}
    return {key: list(previous.get(key, [])) + done.get(key, []) for key in dict.fromkeys([*previous, *done])}


# Functions called as `watch(epoch, logs, model)` after every epoch of the fits inside `watching_epochs` (logs
# hold the epoch's losses, model is the model being trained: raw values in and out); an exception one raises ends
# training there and leaves `train_model` (keras-seq tune's pruner).
_EPOCH_WATCHERS = contextvars.ContextVar("keras_seq_epoch_watchers", default=())


@contextlib.contextmanager
def watching_epochs(watch):
    """Call `watch(epoch, logs, model)` after every epoch of each model trained inside this block."""
    token = _EPOCH_WATCHERS.set((*_EPOCH_WATCHERS.get(), watch))
    try:
        yield
    finally:
        _EPOCH_WATCHERS.reset(token)


def _epoch_watcher(keras, watch, model):
    class EpochWatcher(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            watch(epoch, dict(logs or {}), model)

    return EpochWatcher()


def _callbacks(keras, spec: TrainSpec, resume, checkpoint, previous: dict, interrupt):
    """The divergence guard, the best-epoch keeper, (with a checkpoint path) the per-epoch checkpoint writer and (in
    a multi-process job) the processes' shared stop, in the order they run after an epoch; None where not used."""
    best = _early_stopping(keras, spec, resume)
    saver = None if checkpoint is None else _epoch_checkpoint(keras, Path(checkpoint), best, previous, interrupt)
    together = _stop_together(keras, interrupt) if interrupt.shared else None
    return _stop_on_non_finite_loss(keras), best, saver, together


class _Interrupt:
    """SIGINT or SIGTERM during training: stop after the current batch (a second signal stops at once).

    In a multi-process job (`shared`) a process alone cannot stop: the
    others would wait on it in the next batch's collectives. A signal there
    is `pending` until the epoch's end, where `_stop_together` asks every
    process and all of them stop after that epoch.
    """

    def __init__(self, parallel=None):
        self.requested = False
        self.pending = False
        self.shared = parallel is not None and parallel.process_count > 1

    @contextlib.contextmanager
    def catching(self, trainer):
        from keras_seq.jobs.stop import stop_signals

        def stop():
            if self.shared:
                self.pending = True
                return
            self.requested = True
            trainer.stop_training = True

        with stop_signals(on_stop=stop) as request:
            if request.requested:  # a signal that came before training began
                stop()
            yield


def _stop_together(keras, interrupt: _Interrupt):
    """The processes of a job share their stop requests at each epoch's end: if one has a signal, all stop there."""
    from jax.experimental import multihost_utils

    class StopTogether(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            asked = multihost_utils.process_allgather(np.array([interrupt.pending], dtype="int32"))
            if np.any(asked):  # the epoch is whole: its checkpoint was written just before
                interrupt.requested = True
                self.model.stop_training = True

    return StopTogether()


def _early_stopping(keras, spec: TrainSpec, resume: dict | None):
    """EarlyStopping that restores the best weights, and carries a checkpoint's best epoch over."""

    class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
        def on_train_begin(self, logs=None):
            super().on_train_begin(logs)
            if resume is not None and resume["best"] is not None:
                self.best, self.best_epoch, self.wait = resume["best"], resume["best_epoch"], resume["wait"]
                self.best_weights = resume["best_weights"]

    return ResumableEarlyStopping(monitor="val_loss", patience=spec.patience or spec.epochs, restore_best_weights=True)


def _epoch_checkpoint(keras, path: Path, best, previous: dict, interrupt: _Interrupt):
    class EpochCheckpoint(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.history = {key: list(values) for key, values in previous.items()}

        def on_epoch_end(self, epoch, logs=None):
            if interrupt.requested:  # a part of an epoch is not a checkpoint
                return
            for key, value in (logs or {}).items():
                self.history.setdefault(key, []).append(float(value))
            write_checkpoint(path, self.model, best, epoch + 1, self.history)

    return EpochCheckpoint()


def write_checkpoint(path: Path, trainer, best, epochs_done: int, history: dict) -> None:
    """The training state after `epochs_done` epochs, in one .npz written atomically."""
    weights = trainer.get_weights()
    arrays = {f"weight_{i}": np.asarray(w) for i, w in enumerate(weights)}
    arrays |= {f"optimizer_{i}": np.asarray(v) for i, v in enumerate(trainer.optimizer.variables)}
    best_weights = best.best_weights or []
    arrays |= {f"best_{i}": np.asarray(w) for i, w in enumerate(best_weights)}
    meta = {
        "epochs_done": epochs_done,
        "history": history,
        "best": None if best.best is None else float(best.best),
        "best_epoch": int(best.best_epoch),
        "wait": int(best.wait),
        "counts": [len(weights), len(trainer.optimizer.variables), len(best_weights)],
    }
    arrays["meta"] = np.array(json.dumps(meta))
    write_file_atomically(path, lambda stream: np.savez(stream, **arrays), binary=True)


def read_checkpoint(path: Path, limit: int = 8 << 30) -> dict:
    """A checkpoint written by `write_checkpoint`, as `train_model(resume=...)` takes it.

    Its arrays are read by `safety.read_npz`: at most `limit` bytes in all (`checkpoint_limit` of the run's
    options), nothing unpickled, no header claiming more than its member holds. Weights are floats, the
    counters and history numbers.

    Raises:
        KerasSeqError: one line, for anything else.
    """
    from keras_seq.safety import read_npz

    arrays = read_npz(path, limit, str(path))
    try:
        meta = json.loads(str(arrays.pop("meta")))
        counts = meta["counts"]
        if (not isinstance(counts, list) or len(counts) != 3
                or not all(isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= len(arrays) for n in counts)):
            raise ValueError("its array counts are not three small integers")
        parts = {kind: [arrays[f"{kind}_{i}"] for i in range(n)]
                 for kind, n in zip(("weight", "optimizer", "best"), counts)}
        if any(a.dtype.kind not in "fiu" for arrays_of in parts.values() for a in arrays_of):
            raise ValueError("it holds weights that are not numbers")
        history = meta.get("history")
        if not isinstance(history, dict) or not all(isinstance(v, list) and all(
                isinstance(x, (int, float)) and not isinstance(x, bool) for x in v) for v in history.values()):
            raise ValueError("its history is not lists of numbers")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise KerasSeqError(f"{path} is not a readable keras-seq checkpoint ({first_line(exc)[:120]}). "
                            "Start the run again.") from None
    return meta | {"weights": parts["weight"], "optimizer": parts["optimizer"], "best_weights": parts["best"] or None}


def keep_optimizer_state(checkpoint: Path, path: Path) -> None:
    """Write the optimizer state of a finished run's last `checkpoint` (this process's own file) to `path`: what
    `keras-seq update` continues from."""
    with np.load(checkpoint, allow_pickle=False) as arrays:
        state = {name: arrays[name] for name in arrays.files if name.startswith("optimizer_")}
    write_file_atomically(path, lambda stream: np.savez(stream, **state), binary=True)


def read_optimizer_state(path: Path, limit: int) -> list:
    """The optimizer state `keep_optimizer_state` wrote, read as `read_checkpoint` reads a checkpoint.

    Raises:
        KerasSeqError: one line, for a file that is not one.
    """
    from keras_seq.safety import read_npz

    arrays = read_npz(path, limit, str(path))
    names = [f"optimizer_{i}" for i in range(len(arrays))]
    if sorted(arrays) != sorted(names) or any(arrays[n].dtype.kind not in "fiu" for n in names):
        raise KerasSeqError(f"{path} is not a keras-seq optimizer state (arrays optimizer_0.. of numbers). "
                            "Update without it: remove the file and its line from manifest.json, or re-run the fit.")
    return [arrays[n] for n in names]


def checkpoint_limit(model, windows, n_features: int) -> int:
    """The most bytes a checkpoint of this run may hold: its weights, best weights and optimizer state (twice the
    weights for Adam), as float64, of the largest model these options can build, with room to spare."""
    width = model.units * 2 + n_features + model.series_embedding + max(windows.horizon, 1) * (len(model.quantiles or ()) + 3)
    layers = model.layers + model.transition_layers + model.output_layers + 2
    return 5 * 8 * 16 * layers * (width + 2) ** 2 * model.ensemble + (16 << 20)


def _restore_trainer(trainer, state: dict) -> None:
    """Put a checkpoint's weights and optimizer state into `trainer`, refusing any that do not fit it.

    A warm start (`state["warm"]`, an `update` of a trained run) brings the optimizer state alone (its weights are in
    the model already), and may be for fewer series: a per-series table's first rows are restored, the rest kept."""
    trainer.optimizer.build(trainer.trainable_variables)
    warm = bool(state.get("warm"))
    parts = [("optimizer state", trainer.optimizer.variables, state["optimizer"])]
    if not warm:
        parts = [("weights", trainer.weights, state["weights"]), *parts,
                 ("best weights", trainer.weights, state["best_weights"] or trainer.get_weights())]
    for what, variables, values in parts:
        fitted = fitted_values(variables, values, grow=warm)
        if isinstance(fitted, int):
            raise KerasSeqError(
                f"the checkpoint's {what} do not fit this model ({len(values)} arrays for {len(variables)}; the first "
                f"that differs is #{fitted}), so it belongs to another arch or size. Refusing to resume; start the run "
                "again with `keras-seq fit`."
            )
    if not warm:
        trainer.set_weights(state["weights"])
    for variable, value in zip(trainer.optimizer.variables, fitted_values(trainer.optimizer.variables,
                                                                          state["optimizer"], grow=warm)):
        variable.assign(value)


def fitted_values(variables, values, grow: bool = False):
    """`values` for `variables`, shape by shape; with `grow`, a value of fewer rows (a per-series table of fewer
    series) fills a variable's first rows and its other rows keep theirs. The position of the first value that does
    not fit, where one does not."""
    if len(variables) != len(values):
        return min(len(variables), len(values))
    result = []
    for at, (variable, value) in enumerate(zip(variables, values)):
        need, given = tuple(variable.shape), tuple(np.shape(value))
        if need == given:
            result.append(value)
        elif grow and len(need) == len(given) >= 1 and need[1:] == given[1:] and given[0] < need[0]:
            import keras

            current = np.asarray(keras.ops.convert_to_numpy(variable))
            result.append(np.concatenate([np.asarray(value, dtype=current.dtype), current[given[0]:]]))
        else:
            return at
    return result


def fit_data(windows: Windows, split: str, first_epoch: int = 0):
    """What `fit` reads for `split`: `WindowBatches`, numpy batches gathered from the series.

    On jax and torch Keras would pull each batch of a tf.data pipeline
    through TensorFlow's eager iterator, about a millisecond a batch on a
    2-core CPU: more than a small model's whole training step. Gathering
    with numpy removes that (benchmarks/RESULTS.md); on tensorflow it trains
    as fast as tf.data did. The order is fixed by the seed and the epoch on
    every backend, so a run resumed at `first_epoch` sees the batches an
    uninterrupted run would.
    """
    import keras

    return _window_batches_class(keras)(windows, split, first_epoch)


@functools.cache
def _window_batches_class(keras):
    """`WindowBatches`, defined once Keras is imported (a `keras.utils.PyDataset`)."""

    class WindowBatches(keras.utils.PyDataset):
        """One split's windows in batches, gathered with numpy; the train split in a new order each epoch."""

        def __init__(self, windows: Windows, split: str, first_epoch: int = 0):
            super().__init__(workers=1, use_multiprocessing=False)
            self.windows, self.split = windows, split
            self.epoch = first_epoch  # on_epoch_begin counts epochs from first_epoch
            self.began = False
            self.order = None  # drawn when the epoch's first batch is asked for: one index held at a time
            self.lock = threading.Lock()
            self.count = windows.count(split)  # the same every epoch: counted once
            # data-parallel: each batch a multiple of the device count, this process fed its share of it
            self.parallel = current_parallel()
            # `missing` mask: a window whose target is missing weighs 0 (every batch then carries weights)
            self.weighted = bool(np.isnan(windows.target_values).any())

        @property
        def num_batches(self):
            size = self.windows.batch_size
            if self.parallel is None:
                return -(-self.count // size)
            return self.count // size + (self.parallel.usable(self.count % size) > 0)

        def on_epoch_begin(self):
            with self.lock:
                self.epoch += self.began  # the first call begins first_epoch itself
                self.began, self.order = True, None

        def __getitem__(self, index):
            size = self.windows.batch_size
            with self.lock:
                if self.order is None:
                    self.order = self.windows.epoch_order(self.split, self.epoch)
                order = self.order
            rows = order[index * size : (index + 1) * size]
            if self.parallel is not None:
                rows = rows[: self.parallel.usable(len(rows))]
            batch = self.windows.gather(rows)
            batch = weighted(batch) if self.weighted else batch
            return batch if self.parallel is None else self.parallel.share(batch)

    return WindowBatches


def weighted(batch: tuple) -> tuple:
    """`(inputs, targets, weights)`: a window whose targets hold a missing value (NaN) weighs 0, so it is left out
    of the loss, and its targets read a finite value of the batch (a loss multiplied by 0 must be finite: a
    log-change of 0 is not, so not 0 but a positive target's value where the batch has one)."""
    inputs, targets = batch
    missing = np.isnan(targets)
    whole = missing.reshape(len(targets), -1).any(axis=1)
    finite = targets[~missing]
    stand_in = float(np.median(finite)) if finite.size else 1.0
    return inputs, np.where(missing, stand_in, targets).astype(targets.dtype), (~whole).astype("float32")


def _stop_on_non_finite_loss(keras):
    """A callback that stops training at the first NaN or infinite batch loss, and remembers where."""

    class StopOnNonFiniteLoss(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epoch = 0
            self.diverged = None  # (epoch counted from 1, loss)

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch + 1

        def on_train_batch_end(self, batch, logs=None):
            loss = (logs or {}).get("loss")
            if loss is not None and not np.isfinite(float(loss)) and self.diverged is None:
                self.diverged = (self.epoch, float(loss))
                self.model.stop_training = True

        def check(self, lr: float, model) -> None:
            """Raise if training diverged (of an ensemble: the mean of its members' losses did)."""
            from keras_seq.models.builders import ensemble_members

            if self.diverged:
                epoch, loss = self.diverged
                members = len(ensemble_members(model))
                whose = f" (the mean of the {members} ensemble members' losses: one member diverging is enough)"
                raise KerasSeqError(
                    f"training diverged: the loss became {loss} in epoch {epoch}{whose if members > 1 else ''}, so "
                    "no model was saved. "
                    f"Try a smaller learning rate (now {lr:g}) or check the data for extreme values."
                )

    return StopOnNonFiniteLoss()


def compile_trainer(model, spec: TrainSpec):
    """The compiled Keras model that `train_model` fits: `model`'s `prepare` layer and network, on raw windows.

    It returns the network's output with the target's `(last, center,
    scale)` appended, and the head's loss scores that against the raw target
    transformed and scaled the same way, so the loss is in normalized units
    whatever the scaler. A wrapper is compiled, not the model itself: a
    compiled model would carry its backend's optimizer class into
    model.keras, and a model trained on jax or torch could then not be
    loaded where that backend is missing.
    """
    import keras

    from keras_seq.models.builders import network_of, reads_series, window_shape
    from keras_seq.models.heads import model_head
    from keras_seq.models.layers import CombineMembers, each_member

    if "prepare" not in [layer.name for layer in model.layers]:
        raise KerasSeqError("this model has no `prepare` layer: it was built by keras-seq before 0.2, which trained "
                            "another way. It still evaluates, exports and predicts; to train, start a new run.")
    prepare, network = model.get_layer("prepare"), network_of(model)
    window = window_shape(model)
    inputs = keras.Input(shape=window, name="window")
    series = keras.Input(shape=(), dtype="int32", name="series") if reads_series(model) else None
    prepared, stats = prepare([inputs, series] if prepare.scaled_by.takes_series else inputs)
    if "series_embedding" in [layer.name for layer in model.layers]:
        prepared = model.get_layer("series_embedding")([prepared, series])
    outputs = network(prepared)
    pack = keras.layers.Concatenate(axis=-1, name="packed")
    packed = [pack([output, stats]) for output in (outputs if isinstance(outputs, (list, tuple)) else [outputs])]
    loss = model_head(model).loss(prepare.transform, prepare.warmup_steps(window[0]))
    if len(packed) > 1:  # an ensemble: each member's output packed, stacked on a last axis, each scored alone
        packed, loss = CombineMembers("stack", name="members")(packed), each_member(loss)
    else:
        packed = packed[0]
    trainer = keras.Model([inputs, series] if series is not None else inputs, packed, name="trainer")
    # Keras's torch trainer runs one step per call (it refuses steps_per_execution > 1).
    steps = 1 if keras.backend.backend() == "torch" else spec.steps_per_execution
    trainer.compile(
        optimizer=keras.optimizers.Adam(learning_rate=spec.lr),
        loss=loss,
        steps_per_execution=steps,
        jit_compile=spec.jit_compile,
    )
    # Under a distribution Keras's own train function places each batch and the state by its shardings.
    looped = speed.current().looped_steps and current_parallel() is None
    if keras.backend.backend() == "jax" and trainer.jit_compile and steps > 1 and looped and _jax_on_cpu():
        trainer.train_function = _looped_train_function(trainer)  # fit() keeps a train_function it finds
    return trainer


def _jax_on_cpu() -> bool:
    """True where jax computes on the CPU. On a GPU, Keras's asynchronous dispatch already hides the
    per-batch round trip, and stacking batches there was slower at the large job (benchmarks/RESULTS.md)."""
    import jax

    return jax.default_backend() == "cpu"


def _looped_train_function(trainer):
    """Keras's jax train function, but an execution's batches run in one compiled loop.

    Keras's jax trainer calls its compiled step once per batch from Python,
    passing the whole training state each time. Here up to
    `steps_per_execution` batches of one shape are stacked and a `fori_loop`
    inside one compiled call runs `train_step` over them, in the same order:
    the same updates, as many compilations as before (one loop for the full
    batches, one step for a last, smaller batch). At the tutorial's shapes on
    a 2-core CPU, epochs ran 1.18-1.29x faster (benchmarks/RESULTS.md).
    """
    import jax

    def run_batches(state, batches, count):
        # batches: (steps_per_execution, batch, ...) arrays; the first `count` are this execution's
        def one(i, carry):
            batch = jax.tree.map(lambda b: jax.lax.dynamic_index_in_dim(b, i, keepdims=False), batches)
            return trainer.train_step(carry[1], batch)

        logs_shape = jax.eval_shape(trainer.train_step, state, jax.tree.map(lambda b: b[0], batches))[0]
        no_logs = jax.tree.map(lambda v: jax.numpy.zeros(v.shape, v.dtype), logs_shape)
        return jax.lax.fori_loop(0, count, one, (no_logs, state))

    run_batches = jax.jit(run_batches, donate_argnums=0)
    run_one = jax.jit(trainer.train_step, donate_argnums=0)
    looped_shapes = set()

    def train_function(state, iterator):
        batches = list(itertools.islice(iterator, trainer.steps_per_execution))
        logs = None
        for shape, group in itertools.groupby(batches, key=_batch_shape):
            group = list(group)
            if len(group) == 1 and shape not in looped_shapes:  # a last, smaller batch: no loop to compile
                logs, state = run_one(state, group[0])
                continue
            looped_shapes.add(shape)
            padded = group + [group[-1]] * (trainer.steps_per_execution - len(group))  # one compiled size
            stacked = jax.tree.map(lambda *parts: np.stack(parts), *padded)  # numpy batches, on the CPU
            logs, state = run_batches(state, stacked, len(group))
        if logs is None:
            raise StopIteration
        return logs, state

    return train_function


def _batch_shape(batch) -> tuple:
    import jax

    return tuple(np.shape(leaf) for leaf in jax.tree.leaves(batch))


def versions() -> dict:
    """Versions of Python, keras-seq, Keras, the active backend and the data stack."""
    import importlib.metadata

    import keras

    import keras_seq

    backend = keras.backend.backend()
    result = {
        "python": platform.python_version(),
        "keras_seq": keras_seq.__version__,
        "keras": keras.__version__,
        "backend": backend,
    }
    for package in dict.fromkeys([backend, "tensorflow", "numpy", "pandas"]):
        try:
            result[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            result[package] = None
    return result
