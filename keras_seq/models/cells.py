"""Deep transition and deep output cells (Pascanu, Gulcehre, Cho and Bengio,
"How to Construct Deep Recurrent Neural Networks", ICLR 2014).

One cell covers the paper's three variants, for use inside
`keras.layers.RNN` (and `Bidirectional`):

    deep transition (DT-RNN), L = transition_layers:
        z_1 = phi(W_1 h[t-1] + U x[t] + b_1)
        z_k = phi(W_k z_{k-1} + b_k)                      k = 2 .. L-1
        h[t] = phi_h(W_L z_{L-1} + b_L)
    with the shortcut (DT(S)-RNN), the last pre-activation also gets
        ... + S_h h[t-1] + S_x x[t]
    deep output (DOT-RNN), K = output_layers:
        o_1 = h[t];  o_{k+1} = psi(V_k o_k + c_k)        k = 1 .. K-1
        the cell outputs o_K; the final affine map of the deep output is the
        layer that reads the cell's output (the model's Dense head, or the
        next recurrent layer's input map).

With L = 1 the transition is a plain RNN step, `phi_h(W_1 h[t-1] + U x[t] + b_1)`,
and with K = 1 the output is h[t]. Every hidden layer has `units` units, so
the trainable parameters of one cell, for `d` inputs and `n` units, are

    n(n + d + 1) + (L - 1) n(n + 1) + [shortcut] n(n + d) + (K - 1) n(n + 1).

Choices the paper leaves open, each an argument: intermediate and output
activations (tanh, as the state's, so every layer stays bounded), the
initialization (Glorot uniform for input and transition kernels, orthogonal
for the recurrent kernel W_1 and the shortcut S_h, zero biases).
"""

from __future__ import annotations

from keras_seq.backend import import_keras

keras = import_keras()  # quietly, with keras-seq's default backend where none was chosen
ops = keras.ops


TRANSITION_ARCHS = {
    # arch -> (shortcut, deep output)
    "dtrnn": (False, False),
    "dtsrnn": (True, False),
    "dotrnn": (False, True),
}


def cell_parameters(units: int, n_inputs: int, transition_layers: int, shortcut: bool, output_layers: int) -> int:
    """Trainable parameters of one `DeepTransitionCell` (the closed form in the module docstring).

    Example:
    >>> cell_parameters(64, 1, 1, False, 1)  # a SimpleRNN cell
    4224
    """
    n, d = units, n_inputs
    return (n * (n + d + 1) + (transition_layers - 1) * n * (n + 1) + (n * (n + d) if shortcut else 0)
            + (output_layers - 1) * n * (n + 1))


@keras.saving.register_keras_serializable(package="keras_seq")
class DeepTransitionCell(keras.layers.Layer):
    """A recurrent cell whose transition (and optionally output) is an MLP.

    Args:
        units: int. Size of the state and of every hidden layer.
        transition_layers: int. Layers L of the transition MLP from
            (h[t-1], x[t]) to h[t]; `1` is a plain RNN step. Defaults to `2`.
        shortcut: bool. Add affine maps of h[t-1] and x[t] to the last
            transition layer's pre-activation (DT(S)-RNN). Defaults to `False`.
        output_layers: int. Layers K of the deep output counted with the
            affine map that reads the cell's output; the cell applies the
            first K - 1. `1` outputs h[t]. Defaults to `1`.
        activation: str. phi_h, the state's activation. Defaults to `"tanh"`.
        transition_activation: str. phi, of the intermediate transition
            layers. Defaults to `"tanh"`.
        output_activation: str. psi, of the deep output's hidden layers.
            Defaults to `"tanh"`.
        kernel_initializer: str. Input, transition, shortcut-input and output
            kernels. Defaults to `"glorot_uniform"`.
        recurrent_initializer: str. W_1 and the shortcut's S_h. Defaults to
            `"orthogonal"`.
        bias_initializer: str. Every bias. Defaults to `"zeros"`.

    Example:
    >>> layer = keras.layers.RNN(DeepTransitionCell(8, transition_layers=3))
    >>> tuple(layer(ops.zeros((2, 5, 3))).shape)
    (2, 8)
    """

    def __init__(
        self,
        units: int,
        transition_layers: int = 2,
        shortcut: bool = False,
        output_layers: int = 1,
        activation: str = "tanh",
        transition_activation: str = "tanh",
        output_activation: str = "tanh",
        kernel_initializer: str = "glorot_uniform",
        recurrent_initializer: str = "orthogonal",
        bias_initializer: str = "zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (("units", units), ("transition_layers", transition_layers), ("output_layers", output_layers)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"`{name}` must be an integer of at least 1. Received: {name}={value}")
        self.units = units
        self.transition_layers = transition_layers
        self.shortcut = bool(shortcut)
        self.output_layers = output_layers
        self.activation = keras.activations.get(activation)
        self.transition_activation = keras.activations.get(transition_activation)
        self.output_activation = keras.activations.get(output_activation)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.state_size = units
        self.output_size = units

    def build(self, input_shape):
        n, d = self.units, input_shape[-1]

        def weight(shape, name, initializer):
            return self.add_weight(shape=shape, name=name, initializer=initializer)

        # Layer 1 reads x[t] and h[t-1]; layers 2..L read the layer below.
        self.input_kernel = weight((d, n), "input_kernel", self.kernel_initializer)  # U
        self.recurrent_kernel = weight((n, n), "recurrent_kernel", self.recurrent_initializer)  # W_1
        self.transition_kernels = [weight((n, n), f"transition_kernel_{k}", self.kernel_initializer)
                                   for k in range(2, self.transition_layers + 1)]  # W_2 .. W_L
        self.transition_biases = [weight((n,), f"transition_bias_{k}", self.bias_initializer)
                                  for k in range(1, self.transition_layers + 1)]  # b_1 .. b_L
        if self.shortcut:
            self.shortcut_input_kernel = weight((d, n), "shortcut_input_kernel", self.kernel_initializer)  # S_x
            self.shortcut_recurrent_kernel = weight((n, n), "shortcut_recurrent_kernel", self.recurrent_initializer)
        self.output_kernels = [weight((n, n), f"output_kernel_{k}", self.kernel_initializer)
                               for k in range(1, self.output_layers)]  # V_1 .. V_{K-1}
        self.output_biases = [weight((n,), f"output_bias_{k}", self.bias_initializer)
                              for k in range(1, self.output_layers)]
        self.built = True

    def call(self, inputs, states, training=False):
        previous = states[0] if isinstance(states, (list, tuple)) else states  # (batch, units)
        first = ops.matmul(inputs, self.input_kernel) + ops.matmul(previous, self.recurrent_kernel)
        first = first + self.transition_biases[0]
        if self.transition_layers == 1:
            state = self.activation(first)
        else:
            z = self.transition_activation(first)
            for kernel, bias in zip(self.transition_kernels[:-1], self.transition_biases[1:-1]):
                z = self.transition_activation(ops.matmul(z, kernel) + bias)
            last = ops.matmul(z, self.transition_kernels[-1]) + self.transition_biases[-1]
            if self.shortcut:
                last = last + ops.matmul(inputs, self.shortcut_input_kernel)
                last = last + ops.matmul(previous, self.shortcut_recurrent_kernel)
            state = self.activation(last)
        output = state
        for kernel, bias in zip(self.output_kernels, self.output_biases):
            output = self.output_activation(ops.matmul(output, kernel) + bias)
        return output, [state]

    def get_initial_state(self, batch_size=None):
        return [ops.zeros((batch_size, self.units), dtype=self.compute_dtype)]

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "transition_layers": self.transition_layers,
            "shortcut": self.shortcut,
            "output_layers": self.output_layers,
            "activation": keras.activations.serialize(self.activation),
            "transition_activation": keras.activations.serialize(self.transition_activation),
            "output_activation": keras.activations.serialize(self.output_activation),
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
        }
