"""SimpleRNN and LSTM layers whose input projection is one matmul over all steps.

Keras's generic recurrent loop multiplies each step's input by the kernel
inside the loop: `window` small matmuls, each paid for again in the backward
pass. These layers compute `x @ kernel + bias` for the whole window first
(one large matmul) and scan only the recurrence over it, as Keras's own jax
GRU does:

    z[t] = x[t] @ W + b                       for every t at once
    SimpleRNN: h[t] = act(z[t] + h[t-1] @ U)
    LSTM:      i, f, g, o = split(z[t] + h[t-1] @ U)
               c[t] = sig(f) * c[t-1] + sig(i) * act(g);  h[t] = sig(o) * act(c[t])

The weights, their names, the config and the outputs are those of
`keras.layers.SimpleRNN` and `keras.layers.LSTM`. The fast path is taken on
the jax backend when there is no mask, no active dropout and no `unroll`;
everywhere else, including TensorFlow exports, the layers run Keras's own
loop unchanged. On a GPU the scan runs 8 steps per loop iteration.
"""

from __future__ import annotations

import keras
from keras import ops


def _fast_path(layer, mask, training) -> bool:
    if keras.backend.backend() != "jax" or mask is not None or layer.unroll:
        return False
    return not (training and (layer.dropout or layer.recurrent_dropout))


def _scan_projected(layer, z, initial_state, step):
    """Scan `step` over the projected inputs `z` (batch, window, k); Keras's (last, outputs, states)."""
    z = ops.transpose(z, (1, 0, 2))  # (window, batch, k): scan runs over the leading axis
    if layer.go_backwards:
        z = ops.flip(z, axis=0)
    # On a GPU every loop iteration costs a few kernel launches and a trip through the loop's
    # control flow: 8 steps per iteration ran SimpleRNN 1.5x faster at the large job on an H200
    # (benchmarks/RESULTS.md). On CPU it did not help.
    unroll = layer.scan_unroll or (8 if _has_gpu() else 1)
    states, outputs = ops.scan(step, tuple(initial_state), z, unroll=unroll)
    outputs = ops.transpose(outputs, (1, 0, 2))  # (batch, window, units), in processing order
    return states[0], outputs, list(states)


@keras.saving.register_keras_serializable(package="keras_seq")
class SimpleRNN(keras.layers.SimpleRNN):
    """`keras.layers.SimpleRNN` with the input projection hoisted out of the loop."""

    scan_unroll = None  # steps per scan iteration; None: 8 on a GPU, 1 on CPU (a benchmark knob, not saved)

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if not _fast_path(self, mask, training):
            return super().inner_loop(sequences, initial_state, mask, training=training)
        cell = self.cell
        z = ops.matmul(sequences, cell.kernel)  # (batch, window, units)
        if cell.bias is not None:
            z = z + cell.bias
        activation = cell.activation or (lambda v: v)

        def step(states, z_t):
            (h,) = states
            h = activation(z_t + ops.matmul(h, cell.recurrent_kernel))
            return (h,), h

        if not isinstance(initial_state, (list, tuple)):
            initial_state = [initial_state]
        return _scan_projected(self, z, initial_state, step)


@keras.saving.register_keras_serializable(package="keras_seq")
class LSTM(keras.layers.LSTM):
    """`keras.layers.LSTM` with the input projection hoisted out of the loop.

    On jax this replaces Keras's cuDNN path on a GPU too: the scan unrolled by
    8 trained 3.0x faster at the tutorial's shapes and 1.07x at the large job
    on an H200 (benchmarks/RESULTS.md).
    """

    scan_unroll = None

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if not _fast_path(self, mask, training):
            return super().inner_loop(sequences, initial_state, mask, training=training)
        cell = self.cell
        z = ops.matmul(sequences, cell.kernel)  # (batch, window, 4 * units): gates i, f, c, o
        if cell.bias is not None:
            z = z + cell.bias
        activation, gate = cell.activation, cell.recurrent_activation

        def step(states, z_t):
            h, c = states
            i, f, g, o = ops.split(z_t + ops.matmul(h, cell.recurrent_kernel), 4, axis=-1)
            c = gate(f) * c + gate(i) * activation(g)
            h = gate(o) * activation(c)
            return (h, c), h

        return _scan_projected(self, z, initial_state, step)


def _has_gpu() -> bool:
    """True where jax runs on a GPU."""
    import jax

    return jax.default_backend() == "gpu"
