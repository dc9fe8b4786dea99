"""MC dropout: the spread of a point model's forecasts with its dropout left on, as quantiles.

A model trained with ``dropout`` is run `samples` times on the same windows
with dropout active (each run a different mask; every call draws new ones); the
empirical quantiles of those forecasts at `levels` become a quantile
forecast `(windows, horizon, levels)`, scored and written like a quantile
head's. The samples are drawn in one batch: every window repeated
`samples` times. Dropout is not part of an exported graph, so MC dropout
runs from a run folder or a `.keras` file.
"""

from __future__ import annotations

import numpy as np

from keras_seq.errors import KerasSeqError

MC_LEVELS = (0.025, 0.1, 0.5, 0.9, 0.975)
CHUNK = 16384  # windows per call into the model


def model_dropout(model) -> float:
    """The largest dropout rate anywhere in a keras-seq model's network (0: none)."""
    from keras_seq.models.builders import ensemble_members, network_of

    rates = [0.0]
    for layer in [*network_of(model).layers, *(part for member in ensemble_members(model) for part in member.layers)]:
        for part in (layer, getattr(layer, "forward_layer", None), getattr(layer, "backward_layer", None)):
            rates += [float(getattr(part, name, 0) or 0) for name in ("dropout", "rate") if part is not None]
    return max(rates)


def check_mc(samples, model=None, kind: str = "run") -> None:
    """Refuse `samples` that are not a count of at least 2, an exported artifact, or a model that is not a point
    model with dropout."""
    from keras_seq.models.heads import output_levels

    if not isinstance(samples, int) or isinstance(samples, bool) or samples < 2:
        raise KerasSeqError(f"`mc_samples` must be an integer of at least 2. Received: mc_samples={samples!r}")
    if kind not in ("run", "keras"):
        raise KerasSeqError(f"MC dropout runs the Keras model with its dropout on, which a {kind} artifact does not "
                            "hold. Predict from the run folder or its model.keras.")
    if model is None:
        return
    if output_levels(model):
        raise KerasSeqError("MC dropout samples a point forecast, and this model already returns quantiles. Drop "
                            "`mc_samples`.")
    if not model_dropout(model):
        raise KerasSeqError("MC dropout needs a model trained with dropout (this one has `dropout` 0). Fit with "
                            "`dropout` 0.1, say, or use `quantiles` or `conformal` for intervals.")


def mc_quantiles(model, inputs, samples: int, levels=MC_LEVELS) -> np.ndarray:
    """`(n, horizon, levels)` quantiles of `samples` forecasts of `inputs` with dropout on.

    `inputs` is what the model reads: windows `(n, window, features)`, or
    the pair of those and their series indices.
    """
    pair = isinstance(inputs, tuple)
    windows = inputs[0] if pair else inputs
    n = len(windows)
    repeated = [np.repeat(part, samples, axis=0) for part in (inputs if pair else (inputs,))]
    outputs = []
    for lo in range(0, n * samples, CHUNK):
        chunk = [part[lo : lo + CHUNK] for part in repeated]
        outputs.append(np.asarray(model(chunk if pair else chunk[0], training=True), dtype="float64"))
    draws = np.concatenate(outputs).reshape(n, samples, -1)  # (n, samples, horizon)
    return np.moveaxis(np.quantile(draws, levels, axis=1), 0, -1)
