"""What a model is, without building it (this module does not import Keras)."""

from __future__ import annotations


from keras_seq.config.options import get_option, settle, spec_of
from keras_seq.errors import KerasSeqError
from keras_seq.models.registry import BUILTIN_ARCHS, arch_names, check_arch_list, get_arch
from keras_seq.models.scalers import get_scaler
from keras_seq.models.transforms import get_transform

# The built-in archs; `keras_seq.models.registry.arch_names()` adds the registered ones.
ARCHS = BUILTIN_ARCHS
# The tutorial's four, compared by default.
DISTRIBUTION_LEVELS = (0.025, 0.1, 0.5, 0.9, 0.975)  # a distribution head's output levels unless `quantiles` says


@spec_of("model")
class ModelSpec:
    """The architecture and size of a model (the options are `keras_seq.config.options`' `model` section).

    `arch` is one of `drnn`, `brnn`, `lstm`, `gru` or the deep-transition archs `dtrnn`, `dtsrnn` (with shortcut)
    and `dotrnn` (with deep output), or an arch added with `register_arch`. A `distribution` head outputs the
    forecast distribution's parameters for every step, trained on its negative log-likelihood, and the model
    returns its quantiles at `quantiles`; with `conformal` coverages, a quantile or distribution head learns each
    interval's bounds and the median, which calibration widens or narrows (conformalized quantile regression).
    """

    def __post_init__(self):
        conformal = checked_coverages(self.conformal)
        settle(self, conformal=conformal, quantiles=head_levels(self.quantiles, self.distribution, conformal))
        if self.conformal_rate and not conformal:
            raise KerasSeqError(f"`conformal_rate` {self.conformal_rate:g} adapts conformal intervals, and `conformal` "
                                "names none. Give `conformal` coverages, e.g. 0.8,0.95, or drop `conformal_rate`.")
        settle(self, ensemble_archs=check_arch_list(self.ensemble_archs, "among `ensemble_archs`", repeats=True)
               if self.ensemble_archs else ())
        for name in (get_option("ensemble_archs").name, get_option("ensemble_windows").name):
            if getattr(self, name) and self.ensemble < 2:
                raise KerasSeqError(f"`{name}` names what an ensemble's members differ in, and `ensemble` is "
                                    f"{self.ensemble}. Give `ensemble` 2 or more, or drop `{name}`.")
        settle(self, scaler=arch_scaler(self))
        check_scaling_options(self.scaler, self.transform)

    @property
    def member_archs(self) -> tuple[str, ...]:
        """Each ensemble member's arch, in order: `ensemble_archs` in turn, else `arch` for every member."""
        return _in_turn(self.ensemble_archs or (self.arch,), self.ensemble)

    def member_windows(self, window: int) -> tuple[int, ...]:
        """Each ensemble member's window, in order: `ensemble_windows` in turn, else `window` for every member."""
        return _in_turn(self.ensemble_windows or (window,), self.ensemble)

    @property
    def output_levels(self) -> tuple[float, ...]:
        """The levels along the output's last axis (empty for a point forecast): see `output_levels`."""
        return output_levels(self.quantiles, self.conformal)

    @property
    def loss_name(self) -> str:
        """What training minimizes, in words: the negative log-likelihood of a distribution head, the pinball loss
        of a quantile head, else the MSE of a point forecast."""
        if self.distribution != "none":
            return "negative log-likelihood"
        return "pinball loss" if self.quantiles else "MSE"

    @property
    def reads_series(self) -> bool:
        """True where the model takes a series index as its second input (per-series statistics or an embedding)."""
        return get_scaler(self.scaler).takes_series or self.series_embedding > 0

    @property
    def reads_target(self) -> bool:
        """True where the model needs the target's own past among its inputs (every option but plain z-scores)."""
        return get_scaler(self.scaler).reads_target or not get_transform(self.transform).of_levels or self.residual


def _in_turn(values: tuple, count: int) -> tuple:
    """`count` of `values`, taken in turn from the first again after the last."""
    return tuple(values[k % len(values)] for k in range(count))


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
            f"with `conformal`, a quantile or distribution head learns the bounds of each conformal interval, and "
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


def arch_scaler(spec) -> str:
    """The scaler `spec`'s archs are built with: an arch's own (`Arch.scaler`: `es` for `esrnn`) in place of the
    default `window`; for any other arch, `spec.scaler`, or the default in place of an arch's own scaler (so a
    comparison of esrnn and gru gives gru the default).

    Raises:
        KerasSeqError: another scaler given for such an arch, members that need different scalers, or what such
            an arch cannot do (a change transform, a quantile or distribution head).
    """
    archs = dict.fromkeys(spec.member_archs)
    owners = {get_arch(arch).scaler: arch for arch in archs if get_arch(arch).scaler}
    if owners and len({get_arch(arch).scaler for arch in archs}) > 1:
        raise KerasSeqError(f"arch {next(iter(owners.values()))!r} scales with its own scaler, and an ensemble's "
                            f"members share one: make every member {', '.join(owners.values())}, or none.")
    if not owners:  # an arch's own scaler (a comparison's esrnn settled it) is the default's for any other arch
        owned = any(get_arch(name).scaler == spec.scaler for name in arch_names())
        return get_option("scaler").default if owned else spec.scaler
    (wanted, arch), = owners.items()
    if spec.scaler not in (get_option("scaler").default, wanted):
        raise KerasSeqError(f"arch {arch!r} scales with its own scaler {wanted!r}, not {spec.scaler!r}: drop "
                            f"`scaler`, or choose another arch.")
    if spec.transform != "none" or spec.quantiles or spec.distribution != "none":
        raise KerasSeqError(f"arch {arch!r} forecasts levels as a point (then multiplied by its smoothing's level "
                            f"and seasonality): it takes `transform` none and no `quantiles` or `distribution` "
                            f"(`conformal` gives intervals). Drop them, or choose another arch.")
    return wanted


def check_scaling_options(scaler, transform) -> None:
    """Raise `KerasSeqError` for a scaler and a transform that do not combine."""
    if get_scaler(scaler).of_levels and not get_transform(transform).of_levels:
        raise KerasSeqError(
            f"transform {transform!r} needs scaler 'window': the {scaler} statistics are of the levels, not of their "
            f"changes. Use `scaler` window with it, or `transform` none with `scaler` {scaler}."
        )


def check_model_for_windows(spec: ModelSpec, target_kind: str, supervision: str, features, target: str) -> None:
    """Refuse a model that cannot be trained on these windows and columns (each reason in one line)."""
    for arch in dict.fromkeys(spec.member_archs):
        check_future_leak(arch, target_kind, spec.allow_future_leak, supervision)
        if get_arch(arch).finish and (target_kind != "next" or supervision != "last"):
            raise KerasSeqError(f"arch {arch!r} forecasts from the window's last step: it needs `target_kind` next and "
                                f"`supervision` last (received {target_kind}, {supervision}). Use those, or another "
                                f"arch.")
    if spec.quantiles and (target_kind != "next" or supervision != "last"):
        option = "`quantiles`" if spec.distribution == "none" else "`distribution`"
        raise KerasSeqError(f"a {'quantile' if spec.distribution == 'none' else 'distribution'} head forecasts from the "
                            f"window's last step: it needs `target_kind` next and `supervision` last (received "
                            f"{target_kind}, {supervision}). Drop {option}, or use those.")
    if spec.conformal and target_kind != "next":
        raise KerasSeqError("conformal intervals are for the forecast after a window: they need `target_kind` next. "
                            "Drop `conformal`, or use `target_kind` next.")
    if spec.reads_target and target is not None and target not in list(features or [target]):
        raise KerasSeqError(
            f"the model reads the target's own past (scaler {spec.scaler!r}, transform {spec.transform!r}, residual "
            f"{str(spec.residual).lower()}), but the target '{target}' is not among the features "
            f"{list(features)}. Add it to `features`, or use `scaler` zscore `transform` none --no-residual."
        )


def check_future_leak(arch: str, target_kind: str, allow_future_leak: bool, supervision: str = "last") -> None:
    """Refuse an arch that reads later steps (brnn's backward pass) trained to predict values it can read."""
    if supervision == "every" and not get_arch(arch).causal:
        raise KerasSeqError(
            f"arch '{arch}' with supervision 'every' reads the future: its backward pass at step t has seen "
            "x[t+1], the very value step t is trained to predict. Use `supervision` last, or a causal arch."
        )
    if target_kind == "sequence" and not allow_future_leak and not get_arch(arch).causal:
        raise KerasSeqError(
            f"arch '{arch}' with target kind 'sequence' reads the future: its backward pass at step t has "
            "seen x[t+1], the very value it must predict. Use target kind 'next', a causal arch, or "
            "`allow_future_leak` to reproduce the tutorial's flaw on purpose."
        )
