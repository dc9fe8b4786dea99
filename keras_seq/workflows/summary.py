"""The `summary` verb: every weight of a model with its shape, and the parameter count, without training it."""

from __future__ import annotations

import math

from keras_seq.models.builders import build_forecaster, describe_weights


def model_summary(spec, windows, n_features: int) -> str:
    """What `keras-seq summary` prints: the model of `spec` and `windows`, every weight and the parameter count.

    Args:
        spec: ModelSpec. The arch and its size.
        windows: WindowSpec. Window, horizon and target kind.
        n_features: int. Input columns.

    Example:
    >>> from keras_seq.data.windows import WindowSpec
    >>> from keras_seq.models.spec import ModelSpec
    >>> model_summary(ModelSpec(arch="gru", units=2, layers=1), WindowSpec(window=4), 1).splitlines()[-1]
    'parameters: 33 (33 trainable, 0 scaling)'
    """
    model = build_forecaster(spec, windows, n_features, series_count=1 if spec.reads_series else 0)
    weights = describe_weights(model)
    width = max(len(path) for path, _, _ in weights)
    lines = [f"{model.name}: window {windows.window}, {n_features} feature(s), target kind {windows.target_kind}"]
    if spec.reads_series:  # the data, and so the number of series, is not read here
        lines.append("  (shown for 1 series: the per-series tables have 1 + one row per series known in training)")
    lines += [f"  {path:<{width}}  {list(shape)}"
              + ("" if trainable else "  (calibrated after training)" if path.startswith("conformal/") else
                 "  (scaling, not trained)") for path, shape, trainable in weights]
    trainable = sum(math.prod(shape) for _, shape, t in weights if t)
    total = sum(math.prod(shape) for _, shape, _ in weights)
    lines.append(f"parameters: {total} ({trainable} trainable, {total - trainable} scaling)")
    return "\n".join(lines)
