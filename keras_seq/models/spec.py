"""What a model is, without building it (this module does not import Keras)."""

from __future__ import annotations

import dataclasses

from keras_seq.errors import KerasSeqError
from keras_seq.models.registry import BUILTIN_ARCHS, get_arch

# The built-in archs; `keras_seq.models.registry.arch_names()` adds the registered ones.
ARCHS = BUILTIN_ARCHS
# The tutorial's four, compared by default.
CLASSIC_ARCHS = ("drnn", "brnn", "lstm", "gru")
CELLS = ("rnn", "lstm", "gru", "dtrnn", "dtsrnn", "dotrnn")
SCALER_NAMES = ("window", "zscore", "series")
TRANSFORMS = ("none", "diff", "logdiff")
DISTRIBUTION_LEVELS = (0.025, 0.1, 0.5, 0.9, 0.975)  # a distribution head's output levels unless --quantiles says


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """The architecture and size of a model.

    Args:
        arch: str. One of `drnn`, `brnn`, `lstm`, `gru` or the deep-transition
            archs `dtrnn`, `dtsrnn` (with shortcut) and `dotrnn` (with deep
            output), or an arch added with `register_arch`. Defaults to
            `"lstm"`.
        units: int. Hidden units per recurrent layer (per direction for
            `brnn`). Defaults to `64`.
        layers: int. Stacked recurrent layers. Defaults to `2`.
        dropout: float. Input dropout of each recurrent layer, in [0, 1).
            Defaults to `0.0`.
        cell: str. Recurrent cell inside `brnn`'s Bidirectional wrapper:
            `rnn`, `lstm`, `gru`, `dtrnn`, `dtsrnn` or `dotrnn`. Defaults to
            `"rnn"`.
        allow_future_leak: bool. Permit `brnn` with target kind `sequence`,
            whose backward pass reads the values it predicts (kept only to
            demonstrate the tutorial's flaw). Defaults to `False`.
        transition_layers: int. Layers of the deep transition MLP (`dtrnn`,
            `dtsrnn`, `dotrnn`). Defaults to `2`.
        output_layers: int. Layers of `dotrnn`'s deep output, counting the
            affine map that reads it. Defaults to `2`.
        scaler: str. How the model scales its inputs: `"window"` (each
            window by its own mean and standard deviation, so the forecast
            follows the series into any range) or `"zscore"` (the training
            split's statistics, keras-seq's only scaling before 0.2).
            Defaults to `"window"`.
        transform: str. What the network forecasts: the target's levels
            (`"none"`), its changes (`"diff"`) or its log-changes
            (`"logdiff"`, log-returns of a price; positive values only).
            The model maps them back to levels itself. Defaults to `"none"`.
        residual: bool. Forecast the last observed value plus what the
            network outputs, the head starting at 0: an untrained model is
            exactly persistence. Defaults to `True`.
        series_embedding: int. Width of a learned vector per series known at
            training time, read beside the inputs at every step (selected by
            the series index input; a series not seen in training reads the
            mean of the learned vectors). `0`: none. Defaults to `0`.
        quantiles: tuple of float. Levels in (0, 1) of a quantile head,
            trained on the pinball loss: the model returns `(batch, horizon,
            levels)`, the quantiles in increasing order (they never cross:
            the head outputs the median and positive gaps). The median is
            always among them (added when missing) and is the point
            forecast. Empty: a point head. Defaults to `()`.
        distribution: str. `"none"`, or a registered distribution
            (`models.distributions`: `"normal"`, `"student-t"` with 5
            degrees of freedom, or one of your own): a head that outputs the forecast distribution's
            location and scale for every step, trained on its negative
            log-likelihood; the model returns that distribution's quantiles
            at `quantiles` (default 0.025, 0.1, 0.5, 0.9, 0.975), the median
            the point forecast. Defaults to `"none"`.
        conformal: tuple of float. Coverages in (0, 1) of intervals,
            calibrated after training on the validation windows (split
            conformal, per step ahead, each error divided by the window's
            own scale so the width follows the series): around the point
            forecast, or with `quantiles` or `distribution` the head's own
            interval of each coverage, widened or narrowed (conformalized
            quantile regression; the head learns exactly those bounds and
            the median, and `quantiles` may only name some of them). The
            model then returns `(batch, horizon, levels)`: the median and
            each interval's bounds (`output_levels`), the offsets stored in
            it. Empty: none. Defaults to `()`.
    """

    arch: str = "lstm"
    units: int = 64
    layers: int = 2
    dropout: float = 0.0
    cell: str = "rnn"
    allow_future_leak: bool = False
    transition_layers: int = 2
    output_layers: int = 2
    scaler: str = "window"
    transform: str = "none"
    residual: bool = True
    series_embedding: int = 0
    quantiles: tuple[float, ...] = ()
    distribution: str = "none"
    conformal: tuple[float, ...] = ()

    def __post_init__(self):
        if self.distribution != "none":
            from keras_seq.models.distributions import get_distribution

            get_distribution(self.distribution)  # refuses an unregistered one
        object.__setattr__(self, "conformal", checked_coverages(self.conformal))
        object.__setattr__(self, "quantiles", head_levels(self.quantiles, self.distribution, self.conformal))
        check_model_options(self.arch, self.units, self.layers, self.dropout, self.cell,
                            self.transition_layers, self.output_layers)
        check_scaling_options(self.scaler, self.transform, self.residual)
        value = self.series_embedding
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 1024:
            raise KerasSeqError(f"`series_embedding` must be an integer from 0 (none) to 1024. Received: "
                                f"series_embedding={value!r}")

    @property
    def output_levels(self) -> tuple[float, ...]:
        """The levels along the output's last axis (empty for a point forecast): see `output_levels`."""
        return output_levels(self.quantiles, self.conformal)

    @property
    def reads_series(self) -> bool:
        """True where the model takes a series index as its second input (per-series statistics or an embedding)."""
        return self.scaler == "series" or self.series_embedding > 0

    @property
    def reads_target(self) -> bool:
        """True where the model needs the target's own past among its inputs (every option but plain z-scores)."""
        return self.scaler != "zscore" or self.transform != "none" or self.residual


def _fractions(values, name: str, what: str, example: str, most: int) -> list[float]:
    """`values` as distinct floats strictly between 0 and 1, at most `most` of them (none: `[]`), or
    `KerasSeqError` naming the option `name`."""
    if values is None or (isinstance(values, (list, tuple)) and not values):
        return []
    try:
        numbers = [float(v) for v in values]
    except (TypeError, ValueError):
        numbers = []
    if not numbers or any(isinstance(v, bool) for v in values) or not all(0 < v < 1 for v in numbers) \
            or len(set(numbers)) != len(numbers) or len(numbers) > most:
        raise KerasSeqError(f"`{name}` must be distinct {what} strictly between 0 and 1, e.g. {example}. "
                            f"Received: {name}={values!r}")
    return numbers


def checked_quantiles(levels) -> tuple[float, ...]:
    """Quantile levels in increasing order with the median among them (none: a point head), or `KerasSeqError`."""
    values = _fractions(levels, "quantiles", "levels", "0.1,0.5,0.9", 99)
    return tuple(sorted({*values, 0.5})) if values else ()


def checked_coverages(values) -> tuple[float, ...]:
    """Conformal coverages in increasing order (none: no calibration), or `KerasSeqError`."""
    return tuple(sorted(_fractions(values, "conformal", "coverages", "0.8,0.95", 20)))


def head_levels(quantiles, distribution: str = "none", conformal=()) -> tuple[float, ...]:
    """The levels a head learns: `quantiles` checked (`checked_quantiles`), a distribution's default levels where
    none are given; with conformal coverages, the bounds and median of the conformal intervals (`output_levels`),
    which the head learns and calibration then widens or narrows (conformalized quantile regression).

    Raises:
        KerasSeqError: a level is not in (0, 1), or with conformal coverages, a level is not one of their bounds.

    Example:
    >>> head_levels((0.1, 0.9), conformal=(0.8, 0.95))
    (0.025, 0.1, 0.5, 0.9, 0.975)
    """
    levels = checked_quantiles(quantiles)
    if not conformal:
        return levels or (DISTRIBUTION_LEVELS if distribution != "none" else ())
    if not levels and distribution == "none":
        return ()  # a point forecast, its intervals calibrated around it
    bounds = output_levels(conformal=conformal)
    extra = [v for v in levels if round(v, 12) not in bounds]
    if extra:
        raise KerasSeqError(
            f"with --conformal, a quantile or distribution head learns the bounds of each conformal interval, and "
            f"calibration adjusts them: its levels must be among {', '.join(f'{v:g}' for v in bounds)}. Received "
            f"quantiles {', '.join(f'{v:g}' for v in extra)} besides. Drop them, or add the coverage they bound."
        )
    return bounds


def output_levels(quantiles=(), conformal=()) -> tuple[float, ...]:
    """A model's output levels: its quantile head's, or for conformal coverages c the bounds (1 - c) / 2 and
    (1 + c) / 2 of each interval around the median 0.5; empty for a point forecast.

    Example:
    >>> output_levels(conformal=(0.8,))
    (0.1, 0.5, 0.9)
    """
    if conformal:
        bounds = {round((1 - c) / 2, 12) for c in conformal} | {round((1 + c) / 2, 12) for c in conformal}
        return tuple(sorted(bounds | {0.5}))
    return tuple(quantiles)


def loss_name(model: dict) -> str:
    """What training minimizes, in words, for a run's `model` options: the negative log-likelihood of a
    distribution head, the pinball loss of a quantile head, else the MSE of a point forecast."""
    if model.get("distribution", "none") != "none":
        return "negative log-likelihood"
    return "pinball loss" if model.get("quantiles") else "MSE"


def check_scaling_options(scaler, transform, residual) -> None:
    """Raise `KerasSeqError` for a scaler, transform or residual option that is unknown or does not combine."""
    if scaler not in SCALER_NAMES:
        raise KerasSeqError(f"unknown scaler {scaler!r}. Expected one of: {', '.join(SCALER_NAMES)}.")
    if transform not in TRANSFORMS:
        raise KerasSeqError(f"unknown transform {transform!r}. Expected one of: {', '.join(TRANSFORMS)}.")
    if not isinstance(residual, bool):
        raise KerasSeqError(f"`residual` must be true or false. Received: residual={residual!r}")
    if scaler in ("zscore", "series") and transform != "none":
        raise KerasSeqError(
            f"transform {transform!r} needs scaler 'window': the {scaler} statistics are of the levels, not of their "
            f"changes. Use --scaler window with it, or --transform none with --scaler {scaler}."
        )


def check_model_for_windows(spec: ModelSpec, target_kind: str, supervision: str, features, target: str) -> None:
    """Refuse a model that cannot be trained on these windows and columns (each reason in one line)."""
    check_future_leak(spec.arch, target_kind, spec.allow_future_leak, supervision)
    if spec.quantiles and (target_kind != "next" or supervision != "last"):
        option = "--quantiles" if spec.distribution == "none" else "--distribution"
        raise KerasSeqError(f"a {'quantile' if spec.distribution == 'none' else 'distribution'} head forecasts from the "
                            f"window's last step: it needs --target-kind next and --supervision last (received "
                            f"{target_kind}, {supervision}). Drop {option}, or use those.")
    if spec.conformal and target_kind != "next":
        raise KerasSeqError("conformal intervals are for the forecast after a window: they need --target-kind next. "
                            "Drop --conformal, or use --target-kind next.")
    if spec.reads_target and target is not None and target not in list(features or [target]):
        raise KerasSeqError(
            f"the model reads the target's own past (scaler {spec.scaler!r}, transform {spec.transform!r}, residual "
            f"{str(spec.residual).lower()}), but the target '{target}' is not among the features "
            f"{list(features)}. Add it to --features, or use --scaler zscore --transform none --no-residual."
        )


MAX_UNITS = 4096  # a recurrent layer of 4096 units holds 67 M weights (LSTM): sizes beyond are typing mistakes
MAX_LAYERS = 64


def check_model_options(arch, units, layers, dropout, cell, transition_layers=2, output_layers=2) -> None:
    """Raise `KerasSeqError` for the first model option out of range."""
    get_arch(arch)  # refuses an unknown one
    for name, value, most in (("units", units, MAX_UNITS), ("layers", layers, MAX_LAYERS)):
        _check_size(name, value, most)
    if not 0.0 <= float(dropout) < 1.0:
        raise KerasSeqError(f"`dropout` must be in [0, 1). Received: dropout={dropout}")
    if cell not in CELLS:
        raise KerasSeqError(f"unknown cell '{cell}'. Expected one of: {', '.join(CELLS)}.")
    for name, value in (("transition_layers", transition_layers), ("output_layers", output_layers)):
        _check_size(name, value, MAX_LAYERS)


def _check_size(name: str, value, most: int) -> None:
    """Refuse a size that is not an integer from 1 to `most` (a typing mistake would exhaust memory)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise KerasSeqError(f"`{name}` must be an integer of at least 1. Received: {name}={str(value)[:40]}")
    if value > most:
        raise KerasSeqError(f"`{name}` must be at most {most}. Received: {name}={value}")


def check_future_leak(arch: str, target_kind: str, allow_future_leak: bool, supervision: str = "last") -> None:
    """Refuse an arch that reads later steps (brnn's backward pass) trained to predict values it can read."""
    if supervision == "every" and not get_arch(arch).causal:
        raise KerasSeqError(
            f"arch '{arch}' with supervision 'every' reads the future: its backward pass at step t has seen "
            "x[t+1], the very value step t is trained to predict. Use --supervision last, or a causal arch."
        )
    if target_kind == "sequence" and not allow_future_leak and not get_arch(arch).causal:
        raise KerasSeqError(
            f"arch '{arch}' with target kind 'sequence' reads the future: its backward pass at step t has "
            "seen x[t+1], the very value it must predict. Use target kind 'next', a causal arch, or "
            "--allow-future-leak to reproduce the tutorial's flaw on purpose."
        )
