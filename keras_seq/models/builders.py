"""Assemble a Forecaster from its parts: scaler -> backbone -> head, raw values in and raw values out.

Every model has the same outer shape:

    raw window (batch, window, features)
      -> `prepare`              (`keras_seq.models.scalers`: the target's transform, then per-window or
                                 training-split scaling; also returns the target's (last, center, scale))
      -> network                (a nested keras.Model on normalized values: the arch's backbone from
                                 `keras_seq.models.registry`, then the head's layers)
      -> `restore`              (`keras_seq.models.heads`: center + scale * output, then back to levels)
      -> `combine`              (an ensemble's: the network holds `ensemble` members, `member_1`.., each its
                                 backbone and head; each member's output is restored, then their median or mean)
      -> raw forecast (batch, horizon) for `next`, (batch, window, 1) for `sequence`

Training fits a wrapper of `prepare` and `network` whose loss compares the
network's output with the raw target transformed and scaled the same way
(`keras_seq.training.loop.compile_trainer`); the outer model is what is saved and
exported, so it takes and returns raw values.
"""

from __future__ import annotations

import dataclasses

from keras_seq.backend import import_keras, tensorflow_left_unloaded
from keras_seq.data.windows import Scaling, WindowSpec
from keras_seq.errors import KerasSeqError, first_line
from keras_seq.models import archs  # noqa: F401  (registers keras-seq's layers and cells, which load_model reads)
from keras_seq.models.heads import head_of
from keras_seq.models.registry import get_arch
from keras_seq.models.scalers import get_scaler
from keras_seq.models.layers import CombineMembers, ConformalIntervals, LastStep, PrepareWindow, SeriesEmbedding
from keras_seq.models.spec import ModelSpec, check_model_for_windows
from keras_seq.models.transforms import get_transform

keras = import_keras()  # quietly, with keras-seq's default backend where none was chosen


def build_model(
    arch: str | ModelSpec = "lstm",
    *,
    window: int,
    n_features: int = 1,
    horizon: int = 1,
    target_kind: str = "next",
    supervision: str = "last",
    scaling: Scaling | None = None,
    target_index: int | None = 0,
    **options,
) -> keras.Model:
    """Build a forecaster that takes and returns raw values.

    Args:
        arch: str or ModelSpec. A registered arch (`drnn`, `brnn`, `lstm`,
            `gru`, `dtrnn`, `dtsrnn`, `dotrnn` or one added with
            `keras_seq.models.registry.register_arch`), or a whole
            `ModelSpec`. Defaults to `"lstm"`.
        window: int. Input steps.
        n_features: int. Input columns. Defaults to `1`.
        horizon: int. Forecast steps for target kind `next`. Defaults to `1`.
        target_kind: str. `"next"` (the head reads the last step) or
            `"sequence"` (the head reads every step). Defaults to `"next"`.
        supervision: str. `"last"` or `"every"` (trained from every step;
            see `WindowSpec`). Defaults to `"last"`.
        scaling: Scaling or None. Statistics of the training split (used by
            scaler `zscore`). Defaults to identity scaling (set later with
            `set_scaling`).
        target_index: int or None. The target's column among the inputs.
            Defaults to `0`.
        **options: the other `ModelSpec` fields (`units`, `layers`,
            `dropout`, `cell`, `allow_future_leak`, `transition_layers`,
            `output_layers`, `scaler`, `transform`, `residual`), when `arch`
            is a name.

    Returns:
        A `keras.Model` named `keras_seq_<arch>`, with a nested model named
        `network` that works on normalized values.

    Raises:
        KerasSeqError: an option is out of range, or an arch that reads the
            future (`brnn`) with target kind `sequence` without
            `allow_future_leak`.

    Example:
    >>> model = build_model("gru", window=16, n_features=1, units=8, layers=1)
    >>> tuple(model.output.shape)
    (None, 1)
    """
    if isinstance(arch, ModelSpec):
        if options:
            raise KerasSeqError(f"give the model options in the ModelSpec or as keywords, not both. Received: {sorted(options)}")
        spec = arch
    else:
        spec = ModelSpec(arch=arch, **options)
    windows = WindowSpec(window=window, horizon=horizon, target_kind=target_kind, supervision=supervision)
    return build_forecaster(spec, windows, n_features, scaling=scaling, target_index=target_index)


def build_forecaster(spec: ModelSpec, windows: WindowSpec, n_features: int, *, scaling: Scaling | None = None,
                     target_index: int | None = 0, unscaled=(), series_count: int = 0,
                     masked: bool = False) -> keras.Model:
    """The Forecaster of `spec` for `windows`: `spec.scaler`, then the arch's backbone and head (a point forecast,
    or the quantiles of `spec.quantiles`; module docstring).

    `target_index` is the target's column among the `n_features` inputs
    (None where the target is not an input); `unscaled` the columns already
    on a fixed scale (calendar features), which the scaler passes through.
    A model that reads the series (`spec.reads_series`) takes a second
    input, `series`: int32 `(batch,)`, 1..`series_count` for the series
    known at training time and 0 for any other. `masked` (the data's
    `missing` mask), like `windows.pad`, makes a model that reads a missing
    value (NaN) as masked.
    """
    masked = bool(masked or windows.pad)
    if not isinstance(n_features, int) or isinstance(n_features, bool) or n_features < 1:
        raise KerasSeqError(f"`n_features` must be an integer of at least 1. Received: n_features={n_features}")
    if spec.reads_series and (not isinstance(series_count, int) or series_count < 1):
        raise KerasSeqError(f"scaler {spec.scaler!r} with series_embedding {spec.series_embedding} needs the series "
                            f"known at training time: `series_count` of at least 1. Received: {series_count!r}")
    names = [f"f{i}" for i in range(n_features)]
    check_model_for_windows(spec, windows.target_kind, windows.supervision, names,
                            names[target_index] if target_index is not None else "the target")
    the_head, the_scaler = head_of(spec), get_scaler(spec.scaler)
    if spec.quantiles and not get_transform(spec.transform).of_levels and windows.horizon > 1:
        raise KerasSeqError(f"quantiles of a {windows.horizon}-step horizon need `transform` none: the running sum of "
                            f"the quantiles of each step's change ({spec.transform}) is not a quantile of the level.")
    every = windows.supervision == "every"
    season = spec.seasonality if the_scaler.seasonal else 1
    _check_member_windows(spec, windows, season)

    network = _network(spec, windows, n_features, the_head, masked)

    # === Functional Model: raw values (and the series index) in, raw values out ===
    inputs = keras.Input(shape=(windows.window, n_features), name="window")
    series = keras.Input(shape=(), dtype="int32", name="series") if spec.reads_series else None
    prepare = PrepareWindow(scaler=spec.scaler, transform=spec.transform, residual=spec.residual, target_index=target_index,
                            per_step=windows.target_kind == "sequence" or every, unscaled=unscaled, name="prepare",
                            series_count=series_count if the_scaler.takes_series else 0, mask=masked,
                            season=season)
    prepared, stats = prepare([inputs, series] if the_scaler.takes_series else inputs)
    if spec.series_embedding:
        prepared = SeriesEmbedding(series_count, spec.series_embedding, name="series_embedding")([prepared, series])
    outputs = network(prepared)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    if every:  # trained from every step; forecasts from the last
        last = LastStep(name="last_step")
        outputs, stats = [last(output) for output in outputs], LastStep(name="last_stats")(stats)
    restore = the_head.restore(spec.transform)
    forecasts = [restore([output, stats]) for output in outputs]
    forecast = forecasts[0] if len(forecasts) == 1 else CombineMembers(spec.combine, name="combine")(forecasts)
    if spec.conformal:  # intervals around the forecast or the head's own, their offsets set after training (calibrate)
        forecast = ConformalIntervals(spec.conformal, windows.horizon, name="conformal")([forecast, stats])
    model = keras.Model([inputs, series] if series is not None else inputs, forecast, name=f"keras_seq_{spec.arch}")
    if scaling is not None:
        the_scaler.set_statistics(model, scaling)
    return model


def _check_member_windows(spec: ModelSpec, windows: WindowSpec, season: int) -> None:
    """Refuse a window too short for the smoothing's seasons, or ensemble windows the window cannot give."""
    if windows.window < 2 * season:
        raise KerasSeqError(f"arch {spec.arch} with seasonality {season} needs a window of two seasons or more (its "
                            f"smoothing starts from the first): window {windows.window} is shorter than "
                            f"{2 * season}. Use a longer window, or a shorter seasonality.")
    cropped = [w for w in spec.member_windows(windows.window) if w != windows.window]
    if cropped and (max(cropped) > windows.window or windows.target_kind != "next" or windows.supervision == "every"):
        raise KerasSeqError(
            f"`ensemble_windows` {','.join(map(str, spec.ensemble_windows))}: each member's window is the last steps "
            f"of the window, so each must be at most `window` ({windows.window}) and the forecast must come from the "
            f"window's last step (`target_kind` next, `supervision` last; received {windows.target_kind}, "
            f"{windows.supervision}). Change them, or drop `ensemble_windows`.")
    if min(spec.member_windows(windows.window)) < season:
        raise KerasSeqError(f"arch {spec.arch} with seasonality {season} needs every member's window to hold a season "
                            f"(its forecast's seasonal factors are the last season's): `ensemble_windows` "
                            f"{','.join(map(str, spec.ensemble_windows))} has one shorter than {season}. Use longer "
                            f"windows, or a shorter seasonality.")


def _network(spec: ModelSpec, windows: WindowSpec, n_features: int, the_head, masked: bool) -> keras.Model:
    """The network: normalized values (an observed flag per column where `masked`, a scaler's extra channels, then
    a series' vector) in, the normalized forecast out; of an ensemble, a list of its members' (each a nested model of
    one network's layers)."""
    width = n_features * (2 if masked else 1) + get_scaler(spec.scaler).extra_channels + spec.series_embedding
    normalized = keras.Input(shape=(windows.window, width), name="normalized_window")
    if spec.ensemble == 1:
        return keras.Model(normalized, _member_output(spec, windows, the_head, normalized), name="network")
    members = []
    for index, (arch, steps) in enumerate(zip(spec.member_archs, spec.member_windows(windows.window))):
        member_input = keras.Input(shape=(windows.window, width), name="normalized_window")
        read = member_input
        if steps < windows.window:  # the member reads the window's last `steps` steps
            read = keras.layers.Cropping1D((windows.window - steps, 0), name="last_steps")(member_input)
        output = _member_output(dataclasses.replace(spec, arch=arch), windows, the_head, read)
        members.append(keras.Model(member_input, output, name=f"member_{index + 1}"))
    return keras.Model(normalized, [member(normalized) for member in members], name="network")


def _member_output(spec: ModelSpec, windows: WindowSpec, the_head, normalized):
    """The arch's backbone and the head's layers on `normalized`: the network's output (one ensemble member's)."""
    sequences = windows.target_kind == "sequence" or windows.supervision == "every"
    arch = get_arch(spec.arch)
    output = the_head.outputs(arch.build(spec, normalized, sequences), windows, zero=spec.residual)
    return arch.finished(spec, normalized, output)


def ensemble_members(model: keras.Model) -> list:
    """An ensemble's member networks, in order (a model of one member: `[]`)."""
    return [layer for layer in network_of(model).layers if layer.name.startswith("member_")]


def member_forecasts(model: keras.Model, inputs) -> list:
    """Each member's raw forecast of `inputs` (what the model's `combine` layer combines), as numpy arrays; a
    model of one member gives its own forecast."""
    if "combine" not in [layer.name for layer in model.layers]:
        return [keras.ops.convert_to_numpy(model(inputs))]
    parts = keras.Model(model.inputs if reads_series(model) else model.inputs[0], model.get_layer("combine").input)
    return [keras.ops.convert_to_numpy(part) for part in parts(inputs)]


def window_shape(model: keras.Model) -> tuple[int, int]:
    """`(window, features)` of a keras-seq model's raw window, its first input (a second is the series index)."""
    return tuple(int(d) for d in model.inputs[0].shape[1:])


def reads_series(model: keras.Model) -> bool:
    """True where `model` takes the series index as a second input (`ModelSpec.reads_series`)."""
    return len(model.inputs) > 1


def network_of(model: keras.Model) -> keras.Model:
    """The nested model of a Forecaster that training fits (normalized values in and out)."""
    return model.get_layer("network")


def set_scaling(model: keras.Model, scaling: Scaling) -> None:
    """Store `scaling` in a keras-seq model (where its scaler uses the training split's statistics)."""
    get_scaler(model.get_layer("prepare").scaler).set_statistics(model, scaling)


def describe_weights(model: keras.Model) -> list[tuple[str, tuple[int, ...], bool]]:
    """Every weight of `model` as `(path, shape, trainable)`, in layer order."""
    return [(w.path, tuple(int(d) for d in w.shape), bool(w.trainable)) for w in model.weights]


KERAS_MEMBERS = ("metadata.json", "config.json", "model.weights.h5")  # what Keras writes into a .keras archive


def load_model(path) -> keras.Model:
    """Load a saved keras-seq model (`.keras`) with Keras's safe mode on.

    Before Keras reads it, the archive's directory is checked: only the
    members Keras writes, and uncompressed sizes within bounds (a small file
    that inflates to gigabytes is refused). Safe mode refuses Lambda layers
    and other code in the config.

    Raises:
        KerasSeqError: the file is missing, not a `.keras` archive, too large
            once inflated, damaged, or holds code.
    """
    from keras_seq.safety import check_zip_members

    check_zip_members(path, small=KERAS_MEMBERS[:2],
                      allowed=lambda name: name in KERAS_MEMBERS or name.startswith("assets/"))
    try:
        with tensorflow_left_unloaded():  # a Bidirectional layer serializes its inner layer as it is built
            return keras.saving.load_model(path, safe_mode=True)
    except Exception as exc:  # a hostile or damaged config raises whatever Keras meets first
        raise KerasSeqError(
            f"{path} is not a readable .keras model ({type(exc).__name__}: {first_line(exc)[:160]}). Restore the "
            "file or write it again (`keras-seq fit`, `keras-seq export`)."
        ) from None
