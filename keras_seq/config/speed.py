"""Speed options of keras-seq's fast paths, set for a block of code rather than patched from outside.

The defaults are what `keras-seq fit` runs. `benchmarks/train_speed.py` turns
each fast path off in turn to measure what it buys, with

>>> from keras_seq.config.speed import speed_options, current
>>> with speed_options(looped_steps=False):
...     current().looped_steps
False
>>> current().looped_steps
True

The options are read where the models are built, compiled and first traced,
so the block must hold building and training. They are never saved with a
model: a model trained under any of them is the same model.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses

from keras_seq.errors import KerasSeqError


@dataclasses.dataclass(frozen=True)
class SpeedOptions:
    """Which of keras-seq's fast paths run.

    Args:
        looped_steps: bool. On jax on a CPU, run an execution's batches in
            one compiled loop (`training._looped_train_function`). `False`:
            Keras's own train function, one compiled call per batch.
            Defaults to `True`.
        scan_unroll: int or None. Steps per iteration of keras-seq's
            SimpleRNN and LSTM scans on jax. Defaults to `None` (8 on a GPU,
            1 on a CPU).
        lstm_gradient: bool. keras-seq's hand-written LSTM gradient on jax.
            `False`: jax differentiates the scan. Defaults to `True`.
        keras_layers: bool. Build with Keras's own SimpleRNN and LSTM, whose
            input projection stays inside the loop. Defaults to `False`.
    """

    looped_steps: bool = True
    scan_unroll: int | None = None
    lstm_gradient: bool = True
    keras_layers: bool = False

    def __post_init__(self):
        for name in ("looped_steps", "lstm_gradient", "keras_layers"):
            if not isinstance(getattr(self, name), bool):
                raise KerasSeqError(f"`{name}` must be true or false. Received: {name}={getattr(self, name)!r}")
        unroll = self.scan_unroll
        if unroll is not None and (not isinstance(unroll, int) or isinstance(unroll, bool) or unroll < 1):
            raise KerasSeqError(f"`scan_unroll` must be an integer of at least 1, or None. Received: scan_unroll={unroll!r}")


_CURRENT = contextvars.ContextVar("keras_seq_speed_options", default=SpeedOptions())


def current() -> SpeedOptions:
    """The speed options in force here."""
    return _CURRENT.get()


@contextlib.contextmanager
def speed_options(**changes):
    """Run a block with some speed options changed (see `SpeedOptions`); they are restored after it.

    Raises:
        KerasSeqError: an unknown option or a value out of range.
    """
    unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(SpeedOptions)})
    if unknown:
        raise KerasSeqError(f"unknown speed option '{unknown[0]}'. Expected some of: "
                            f"{', '.join(f.name for f in dataclasses.fields(SpeedOptions))}.")
    token = _CURRENT.set(dataclasses.replace(current(), **changes))
    try:
        yield current()
    finally:
        _CURRENT.reset(token)
