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
loop unchanged. On a GPU the scan runs 8 steps per loop iteration
(`keras_seq.config.speed` changes that, and turns each fast path off, for benchmarks).

The LSTM with its default activations (tanh, sigmoid) also has its own
gradient (`_lstm`): the backward loop holds only what depends on the
step before it, and everything that can be computed for all steps at once is.
"""

from __future__ import annotations

import functools

from keras_seq.config import speed
from keras_seq.backend import import_keras

keras = import_keras()  # quietly, with keras-seq's default backend where none was chosen
ops = keras.ops


def _fast_path(layer, mask, training) -> bool:
    if keras.backend.backend() != "jax" or mask is not None or layer.unroll:
        return False
    return not (training and (layer.dropout or layer.recurrent_dropout))


def _time_major(layer, sequences):
    """The inputs (batch, window, k) as (window, batch, k) in processing order, and the scan's unroll."""
    x = ops.transpose(sequences, (1, 0, 2))  # scan runs over the leading axis
    if layer.go_backwards:
        x = ops.flip(x, axis=0)
    # On a GPU every loop iteration costs a few kernel launches and a trip through the loop's
    # control flow: 8 steps per iteration ran SimpleRNN 1.5x faster at the large job on an H200
    # (benchmarks/RESULTS.md). On CPU it did not help.
    return x, speed.current().scan_unroll or (8 if _has_gpu() else 1)


def _projected(layer, sequences):
    """`x @ kernel + bias` for every step, time-major (window, batch, k) in processing order, and the scan's unroll.

    The inputs are made time-major before the projection, not after it: the
    projection is up to 4x wider than the inputs, and in a stack XLA cancels
    one layer's transpose of its outputs against the next layer's of its inputs.
    """
    x, unroll = _time_major(layer, sequences)
    z = ops.matmul(x, layer.cell.kernel)
    if layer.cell.bias is not None:
        z = z + layer.cell.bias
    return z, unroll


def _scan_projected(z, unroll, initial_state, step):
    """Scan `step` over the time-major projected inputs `z`; Keras's (last, outputs, states)."""
    states, outputs = ops.scan(step, tuple(initial_state), z, unroll=unroll)
    outputs = ops.transpose(outputs, (1, 0, 2))  # (batch, window, units), in processing order
    return states[0], outputs, list(states)


@keras.saving.register_keras_serializable(package="keras_seq")
class SimpleRNN(keras.layers.SimpleRNN):
    """`keras.layers.SimpleRNN` with the input projection hoisted out of the loop."""

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if not _fast_path(self, mask, training):
            return super().inner_loop(sequences, initial_state, mask, training=training)
        cell = self.cell
        z, unroll = _projected(self, sequences)  # (window, batch, units)
        activation = cell.activation or (lambda v: v)

        def step(states, z_t):
            (h,) = states
            h = activation(z_t + ops.matmul(h, cell.recurrent_kernel))
            return (h,), h

        if not isinstance(initial_state, (list, tuple)):
            initial_state = [initial_state]
        return _scan_projected(z, unroll, initial_state, step)


@keras.saving.register_keras_serializable(package="keras_seq")
class LSTM(keras.layers.LSTM):
    """`keras.layers.LSTM` with the input projection hoisted out of the loop.

    On jax this replaces Keras's cuDNN path on a GPU too: the scan unrolled by
    8 trained 3.0x faster at the tutorial's shapes and 1.07x at the large job
    on an H200 (benchmarks/RESULTS.md).
    """

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if not _fast_path(self, mask, training):
            return super().inner_loop(sequences, initial_state, mask, training=training)
        cell = self.cell
        activation, gate = cell.activation, cell.recurrent_activation
        if speed.current().lstm_gradient and activation is keras.activations.tanh and gate is keras.activations.sigmoid:
            x, unroll = _time_major(self, sequences)
            bias = cell.bias if cell.bias is not None else ops.zeros((4 * self.units,), x.dtype)
            h, c = initial_state
            outputs, c = _lstm(unroll)(x, *(ops.convert_to_tensor(w) for w in (cell.kernel, bias, cell.recurrent_kernel)), h, c)
            return outputs[-1], ops.transpose(outputs, (1, 0, 2)), [outputs[-1], c]
        z, unroll = _projected(self, sequences)  # (window, batch, 4 * units): gates i, f, c, o

        def step(states, z_t):
            h, c = states
            i, f, g, o = ops.split(z_t + ops.matmul(h, cell.recurrent_kernel), 4, axis=-1)
            c = gate(f) * c + gate(i) * activation(g)
            h = gate(o) * activation(c)
            return (h, c), h

        return _scan_projected(z, unroll, initial_state, step)


def _has_gpu() -> bool:
    """True where jax runs on a GPU."""
    import jax

    return jax.default_backend() == "gpu"


@functools.cache
def _lstm(unroll: int):
    """The LSTM over time-major inputs, projection included, with a hand-written gradient (jax only).

    `run(x, kernel, bias, U, h0, c0) -> (h for every step, last c)`, x:
    (window, batch, features) in processing order; the gates are in Keras's
    order i, f, c, o.

    jax's own gradient of a scan does two small matmuls in every backward
    step: one for dh, one to accumulate dU. Here the forward loop keeps the
    activated gates and the cell state; the gates' derivatives are formed for
    all steps at once; the backward loop does one matmul per step; dU and
    dkernel are one matmul over all steps after it ([h[t-1], x[t]] against
    the gates' gradient). The four gates go through one tanh: sigmoid(v) =
    tanh(v / 2) / 2 + 1/2. Every per-step array is (batch, 4 * units) or
    (batch, units), the gates column blocks of it: XLA's CPU loops ran twice
    as slow on (batch, 4, units) views with a broadcast mask.
    tests/test_recurrent.py checks it against Keras's LSTM; the speed-ups
    are in benchmarks/RESULTS.md.
    """
    import jax

    @jax.custom_vjp
    def run(x, kernel, bias, u, h0, c0):
        hs, cs, _ = _lstm_forward(x, kernel, bias, u, h0, c0, unroll)
        return hs, cs[-1]

    def run_forward(x, kernel, bias, u, h0, c0):
        hs, cs, gates = _lstm_forward(x, kernel, bias, u, h0, c0, unroll)
        return (hs, cs[-1]), (x, kernel, u, h0, c0, hs, cs, gates)

    run.defvjp(run_forward, functools.partial(_lstm_backward, unroll))
    return run


def _lstm_forward(x, kernel, bias, u, h0, c0, unroll: int):
    """The forward scan: h and c of every step, and the activated gates (window, batch, 4 * units)."""
    import jax
    import jax.numpy as jnp

    units = h0.shape[-1]
    # (4 * units,): i, f, o are sigmoids (scale and shift 1/2), c is a tanh (1, 0)
    scale = jnp.repeat(jnp.array([0.5, 0.5, 1.0, 0.5], x.dtype), units)
    shift = jnp.repeat(jnp.array([0.5, 0.5, 0.0, 0.5], x.dtype), units)
    z = jnp.einsum("tbf,fk->tbk", x, kernel) + bias  # (window, batch, 4 * units), every step at once

    def step(states, z_t):
        h, c = states
        a = jnp.tanh((z_t + h @ u) * scale) * scale + shift  # (batch, 4 * units): i, f, c, o activated
        c = a[:, units:2 * units] * c + a[:, :units] * a[:, 2 * units:3 * units]
        h = a[:, 3 * units:] * jnp.tanh(c)
        return (h, c), (h, c, a)

    _, (hs, cs, gates) = jax.lax.scan(step, (h0, c0), z, unroll=unroll)
    return hs, cs, gates


def _lstm_backward(unroll: int, saved, cotangents):
    """The gradient of `_lstm`'s run: one matmul per backward step, dU and dkernel in one after the loop."""
    import jax
    import jax.numpy as jnp

    x, kernel, u, h0, c0, hs, cs, gates = saved
    d_hs, d_c_last = cotangents
    window, batch, features = x.shape
    units = h0.shape[-1]
    c_before = jnp.concatenate([c0[None], cs[:-1]])  # (window, batch, units): c[t-1]
    h_before = jnp.concatenate([h0[None], hs[:-1]])
    i, f, g, o = (gates[..., k * units:(k + 1) * units] for k in range(4))
    tanh_c = jnp.tanh(cs)
    # d(pre-activation gates) = [dc, dc, dc, dh] * factors, the factors for every step at once
    factors = jnp.concatenate([g * i * (1 - i), c_before * f * (1 - f), i * (1 - g * g), tanh_c * o * (1 - o)], axis=-1)
    dc_from_h = o * (1 - tanh_c * tanh_c)
    u_t = u.T

    def step(carry, per_step):
        dh_next, dc_next = carry
        dh_t, factors_t, dc_from_h_t, f_t = per_step
        dh = dh_t + dh_next
        dc = dh * dc_from_h_t + dc_next
        dz = jnp.concatenate([dc, dc, dc, dh], axis=-1) * factors_t
        return (dz @ u_t, dc * f_t), dz

    (dh0, dc0), dz = jax.lax.scan(
        step, (jnp.zeros_like(h0), d_c_last), (d_hs, factors, dc_from_h, f), reverse=True, unroll=unroll
    )
    dz_all = dz.reshape(window * batch, 4 * units)
    hx = jnp.concatenate([h_before, x], axis=-1).reshape(window * batch, units + features)
    d_u_kernel = hx.T @ dz_all  # dU and dkernel in one matmul
    dx = jnp.einsum("tbk,fk->tbf", dz, kernel)
    return dx, d_u_kernel[units:], dz_all.sum(axis=0), d_u_kernel[:units], dh0, dc0
