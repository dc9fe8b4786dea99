"""Every option of a run, a comparison and a search, declared once.

One `Option` per option holds its section (a run's `data`, `windows`, `model`
and `train`; a comparison's `evaluate`; a search's `tune`), name, kind,
default, range or choices, help, recipe key, whether `tune` may search it and
what a run folder written before it existed meant. The spec dataclasses
(`DataSpec`, `WindowSpec`, `ModelSpec`, `TrainSpec`, `CompareSpec`,
`TuneSpec`) take their fields from this table (`spec_of`), and what reads or
writes an option is generated from
it: the command line's options (`keras_seq.cli`), the recipe schema
(`recipe_schema`), config.json's reader (`from_record`), the search space's
checks (`tunable`, `Option.loss_units`) and the Python API's keyword and value
checks. Library errors name an option as `` `window` ``; the command line
shows it as `--window` (`cli_text`).

This module imports neither numpy nor Keras: `keras-seq --help` reads it.
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import functools
import importlib
import numbers
import re
import textwrap

from keras_seq.errors import KerasSeqError

MISSING = object()
SECTIONS = ("data", "windows", "model", "train")  # a run's sections (config.json); the table also has `evaluate`
# The module that defines each section's spec class (`spec_class` imports it when first asked).
SPEC_MODULES = {"data": "keras_seq.data.sources", "windows": "keras_seq.data.windows",
                "model": "keras_seq.models.spec", "train": "keras_seq.training.loop",
                "evaluate": "keras_seq.runs.comparison", "tune": "keras_seq.config.search"}


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_date(v) -> bool:
    return isinstance(v, (str, datetime.date)) and not isinstance(v, datetime.datetime)


def _is_date_or_step(v) -> bool:
    """A date (text or a TOML date), or the whole number of a step in data numbered by steps."""
    return _is_date(v) or _is_int(v)


def _is_str_list(v) -> bool:
    return isinstance(v, list) and all(isinstance(item, str) for item in v)


@dataclasses.dataclass(frozen=True)
class Kind:
    """What values an option takes.

    Attributes:
        expected: the values in words, for errors ("an integer").
        accepts: whether a recipe's TOML value or a config.json value is of this kind.
        reader: how the command line reads it (`keras_seq.cli` maps each reader to a Click type or callback).
        annotation: the spec field's type, as documentation.
    """

    expected: str
    accepts: object
    reader: str
    annotation: str


INT = Kind("an integer", _is_int, "int", "int")
NUMBER = Kind("a number", _is_number, "float", "float")
TEXT = Kind("a string", lambda v: isinstance(v, str), "text", "str")
PATH = Kind("a string", lambda v: isinstance(v, str), "folder", "str")
BOOL = Kind("true or false", lambda v: isinstance(v, bool), "flag", "bool")
DATE = Kind("a date like 2019-01-01 (or a step number)", _is_date_or_step, "text", "str")
NAMES = Kind("a list of strings", _is_str_list, "list", "tuple[str, ...]")
NAME_OR_NAMES = Kind("a string or a list of strings", lambda v: isinstance(v, str) or _is_str_list(v), "names",
                     "str | tuple[str, ...]")
LEVELS = Kind("a list of numbers like [0.1, 0.5, 0.9]", lambda v: isinstance(v, list) and all(map(_is_number, v)),
              "numbers", "tuple[float, ...]")
SPLITS = Kind("a list of three fractions like [0.7, 0.15, 0.15]",
              lambda v: isinstance(v, list) and len(v) == 3 and all(map(_is_number, v)), "fractions",
              "tuple[float, float, float]")
DATE_PAIR = Kind("two dates like [2015-01-01, 2018-01-01]",
                 lambda v: isinstance(v, list) and len(v) == 2 and all(map(_is_date, v)), "list", "tuple[str, str]")
STEP_PAIR = Kind("two whole numbers of steps like [18, 18]",
                 lambda v: isinstance(v, list) and len(v) == 2 and all(_is_int(x) and x >= 0 for x in v), "steps",
                 "tuple[int, int]")
WINDOWS = Kind("a list of whole numbers of steps like [36, 24]",
               lambda v: isinstance(v, list) and all(_is_int(x) and x >= 1 for x in v), "whole_numbers",
               "tuple[int, ...]")
DEVICES = Kind('a positive integer or "all"', lambda v: v == "all" or (_is_int(v) and v >= 1), "count_or_all", "int | str")
JIT = Kind('true, false or "auto"', lambda v: isinstance(v, bool) or v == "auto", "text", "bool | str")
SEQUENCES = (NAMES, LEVELS, SPLITS, DATE_PAIR, STEP_PAIR, WINDOWS)


def registered(path: str):
    """Choices read from a registry when asked (`"module:function"`), so that one registered later is accepted."""
    module, function = path.split(":")

    def names() -> tuple[str, ...]:
        return tuple(getattr(importlib.import_module(module), function)())

    return names


@dataclasses.dataclass(frozen=True)
class Option:
    """One option of a run (see the module's docstring).

    Attributes:
        section: the recipe section and spec it belongs to: a run's `data`, `windows`, `model` or `train`, a
            comparison's `evaluate`, a search's `tune`.
        name: the spec field, the Python keyword and the recipe key.
        kind: a `Kind`.
        default: its value when not given.
        help: one or two sentences for `--help` and the spec's docstring.
        flag: the command line's flag where it is not `--<name with dashes>`.
        choices: the names it may take, or a function returning them (a registry's).
        low, high: the range of a number (`low_open`, `high_open`: the end itself excluded).
        tune: whether `tune` may search it.
        loss_units: whether changing it changes what the validation loss measures (tune cannot compare trials
            by `val_loss` over it).
        legacy_names: names older config.json files recorded it under.
        legacy_default: what a config.json that does not record it meant (a run written before it existed).
        on_cli: whether the command line offers it.
        in_recipe: whether a recipe may give it (a search's storage and workers come from the command line).
        names: whether it names columns or series of the data (each name, and their number, bounded in size).
        placement: whether it says where the work runs, not what it computes (a comparison's jobs and scheduler):
            a comparison's record leaves it out, and a resumed comparison takes it again from the command line.
        metavar: the command line's placeholder for its value.
        doc: more for the spec's docstring than `--help` says.
    """

    section: str
    name: str
    kind: Kind
    default: object
    help: str
    flag: str | None = None
    choices: object = None
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    tune: bool = False
    loss_units: bool = False
    legacy_names: tuple[str, ...] = ()
    legacy_default: object = MISSING
    on_cli: bool = True
    in_recipe: bool = True
    names: bool = False
    placement: bool = False
    metavar: str | None = None
    doc: str = ""

    @property
    def cli_flag(self) -> str:
        """The command line's flag: `--window`."""
        return "--" + (self.flag or self.name.replace("_", "-"))

    @property
    def optional(self) -> bool:
        """True where `None` is a value (it means "not given": inferred, or none)."""
        return self.default is None

    def choice_names(self) -> tuple[str, ...]:
        return tuple(self.choices() if callable(self.choices) else self.choices or ())

    def checked(self, value):
        """`value` in the spec's form (lists as tuples, numbers as floats, dates as text), or `KerasSeqError`
        naming the option and what it takes."""
        if value is None and self.optional:
            return None
        value = self._normalized(value)
        if self.kind in (INT, NUMBER):
            self._check_range(value)
        elif self.kind is BOOL and not isinstance(value, bool):
            raise KerasSeqError(f"`{self.name}` must be true or false. Received: {self.name}={value!r}")
        elif self.choices is not None and value not in self.choice_names():
            shown = str(value)[:40]
            raise KerasSeqError(f"unknown {self.name.replace('_', ' ')} {shown!r}. Expected one of: "
                                f"{', '.join(self.choice_names())}{' (or none)' if self.optional else ''}.")
        return value

    def _normalized(self, value):
        if self.kind in SEQUENCES or self.kind is NAME_OR_NAMES:
            if isinstance(value, str) and self.kind is not NAME_OR_NAMES:
                value = (value,)  # one name given as a string
            elif isinstance(value, list):
                value = tuple(value)
        if self.kind is DATE and isinstance(value, datetime.date):
            value = value.isoformat()
        if self.kind is DATE and _is_int(value):
            value = str(value)
        if self.kind is NUMBER and _is_number(value):
            value = float(value)
        if self.kind is INT and isinstance(value, numbers.Integral) and not isinstance(value, bool):
            value = int(value)
        return value

    def _check_range(self, value) -> None:
        integer = self.kind is INT
        if not (_is_int(value) if integer else _is_number(value)) or value != value:
            raise KerasSeqError(f"`{self.name}` must be {self._range_text()}. Received: {self.name}={str(value)[:40]}")
        too_low = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        too_high = self.high is not None and (value >= self.high if self.high_open else value > self.high)
        if integer and too_high and not too_low:
            raise KerasSeqError(f"`{self.name}` must be at most {self.high}. Received: {self.name}={value}")
        if too_low or too_high or value in (float("inf"), float("-inf")):
            raise KerasSeqError(f"`{self.name}` must be {self._range_text()}. Received: {self.name}={value}")

    def _range_text(self) -> str:
        if self.kind is INT:
            return "an integer" + (f" of at least {self.low:g}" if self.low is not None else "")
        if self.low == 0 and self.low_open and self.high is None:
            return "a positive number"
        return (f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"
                if self.low is not None and self.high is not None else "a finite number")


CELLS = ("rnn", "lstm", "gru", "dtrnn", "dtsrnn", "dotrnn")
CLASSIC_ARCHS = ("drnn", "brnn", "lstm", "gru")  # the tutorial's four, a comparison's default

OPTIONS = (
    # --- data: which series, and which of its columns the model reads ---
    Option("data", "source", TEXT, "dji", "'dji' (embedded ^DJI daily), 'stooq:SYMBOL', 'fred:SERIES' or a CSV "
           "path (or any registered source).", flag="data", metavar="SOURCE"),
    Option("data", "start", DATE, None, "First date kept, YYYY-MM-DD, or first step (dji default: 2018-02-13).",
           metavar="DATE"),
    Option("data", "end", DATE, None, "Last date kept, YYYY-MM-DD, or last step (dji default: 2023-02-10).",
           metavar="DATE"),
    Option("data", "target", TEXT, "Close", "Column to forecast.", names=True),
    Option("data", "features", NAMES, None, "Input columns, comma-separated (default: the target alone).",
           metavar="COLS", names=True),
    Option("data", "date_column", TEXT, None, "The CSV's date column, or its column of integer steps (default: one "
           "named like a date, or t, step or period).", names=True),
    Option("data", "fill", TEXT, None, "Forward-fill missing values instead of refusing them.", choices=("ffill",)),
    Option("data", "missing", TEXT, "refuse", "A missing value (NaN, an empty cell) inside a series: refuse it (the "
           "first one's series and date are named), or mask it: the model reads an observed flag beside each input "
           "column and the last observed value in place of a missing one, and a window whose target is missing is "
           "left out of the loss, the metrics and the baselines' scores.", choices=("refuse", "mask")),
    Option("data", "cache_dir", PATH, None, "Cache for online sources (default: $KERAS_SEQ_CACHE, else "
           "~/.cache/keras-seq)."),
    Option("data", "series_column", TEXT, None, "A long table's column that names each row's series (with "
           "`series`).", metavar="COL", names=True),
    Option("data", "series", NAME_OR_NAMES, None, "The series of `series_column` to read: one (NAME), several "
           "(A,B) or all (one global model; the default where `series_column` is given).", metavar="NAMES",
           names=True),
    Option("data", "season", INT, None, "Seasonal period in steps for the seasonal naive baseline and MASE (1: none; "
           "default: inferred from the dates, e.g. 5 for business days).", low=1),
    Option("data", "targets", NAME_OR_NAMES, None, "A wide table's columns to forecast with one global model, one "
           "series each: A,B or all (every numeric column but the features).", metavar="COLS",
           doc="Read as a long frame of a `series` and a `value` column (the model's target); each series runs "
               "from its first to its last value.", names=True),
    Option("data", "calendar", NAMES, None, "Calendar inputs made from the dates, comma-separated: dow, month, "
           "day, doy, hour (each as its sine and cosine).", metavar="NAMES",
           doc="Computed from the dates, never read from the file; the scaler passes them to the network "
               "unscaled, and an exported model takes them as inputs its model card describes."),
    Option("data", "future_features", NAMES, None, "Columns known in advance (a holiday flag, a planned price): "
           "the model reads their values for the dates it forecasts; predict takes those from `future`.",
           metavar="COLS", doc="Input columns `<name>+1` .. `<name>+<horizon>`; the target cannot be one.", names=True),
    # --- windows: how the rows are split and cut ---
    Option("windows", "window", INT, 16, "Input steps per window.", low=2, tune=True, loss_units=True),
    Option("windows", "horizon", INT, 1, "Values forecast after each window.", low=1),
    Option("windows", "target_kind", TEXT, "next", "next: forecast the values after the window; sequence: the "
           "window shifted by one step.", choices=("next", "sequence")),
    Option("windows", "splits", SPLITS, (0.7, 0.15, 0.15), "Train, validation and test fractions, in time order."),
    Option("windows", "stride", INT, 1, "Steps between window starts.", low=1, tune=True,
           legacy_names=("sequence_stride",)),
    Option("windows", "supervision", TEXT, "last", "Train on the last step's forecast, or on every step's (causal "
           "archs; evaluated at the last).", choices=("last", "every"), tune=True, loss_units=True),
    Option("windows", "split_dates", DATE_PAIR, None, "The first day of the validation and of the test split, e.g. "
           "2015-01-01,2018-01-01 (every series cut there; replaces `splits`).", metavar="VAL,TEST"),
    Option("windows", "pad", BOOL, False, "Left-pad every series with missing values, masked inside the model: a "
           "series shorter than a window trains (given half a window and the horizon) and is forecast from any "
           "number of values; the model then takes NaN where a series has no value yet."),
    Option("windows", "split_steps", STEP_PAIR, None, "Each series' own holdout, as the M competitions: its last "
           "TEST steps are its test split and the VAL steps before them its validation split, e.g. 18,18 (replaces "
           "`splits`; TEST 0: fit on every row, validate on the last VAL).", metavar="VAL,TEST"),
    # --- model: what the network is ---
    Option("model", "arch", TEXT, "lstm", "The model's arch (see `keras-seq fit --help`).",
           choices=registered("keras_seq.models.registry:arch_names"), tune=True, on_cli=False),
    Option("model", "units", INT, 64, "Hidden units per layer (per direction for brnn).", low=1, high=4096,
           tune=True),
    Option("model", "layers", INT, 2, "Stacked recurrent layers.", low=1, high=64, tune=True),
    Option("model", "dropout", NUMBER, 0.0, "Input dropout of each recurrent layer.", low=0, high=1,
           high_open=True, tune=True),
    Option("model", "allow_future_leak", BOOL, False, "Allow brnn with target kind sequence, which reads the values "
           "it predicts (the tutorial's flaw)."),
    Option("model", "scaler", TEXT, "window", "window: each window scaled by its own mean and std (follows the "
           "series into any range); zscore: the training split's statistics (the scaling before 0.2); series: each "
           "series by its own training statistics, stored in the model (an unseen series by its window's); es: "
           "esrnn's own smoothing, chosen with it (any other arch takes window in its place); or one registered "
           "with keras_seq.models.scalers.register_scaler.",
           choices=registered("keras_seq.models.scalers:scaler_names"), tune=True, loss_units=True,
           legacy_default="zscore"),
    Option("model", "transform", TEXT, "none", "What the network forecasts: levels (none), changes (diff) or "
           "log-changes (logdiff).", choices=registered("keras_seq.models.transforms:transform_names"), tune=True,
           loss_units=True, legacy_default="none"),
    Option("model", "residual", BOOL, True, "Forecast the last value plus the network's output (untrained: "
           "exactly persistence).", tune=True, legacy_default=False),
    Option("model", "series_embedding", INT, 0, "A learned vector of N values per series known in training, read at "
           "every step (0: none). The model then takes the series index as a second input.", low=0, high=1024,
           tune=True, metavar="N"),
    Option("model", "quantiles", LEVELS, (), "A quantile head at these levels, e.g. 0.1,0.5,0.9 (the median is added "
           "if missing and is the point forecast); trained on the pinball loss, scored by coverage, interval width "
           "and CRPS.", tune=True, loss_units=True, metavar="LEVELS",
           doc="The quantiles never cross: the head outputs the median and positive gaps."),
    Option("model", "distribution", TEXT, "none", "A distribution head (normal, student-t with 5 degrees of "
           "freedom, or one registered with keras_seq.models.distributions.register_distribution) trained on the "
           "negative log-likelihood; the model returns its quantiles at `quantiles` (default 0.025, 0.1, 0.5, 0.9, "
           "0.975).", choices=lambda: ("none", *registered("keras_seq.models.distributions:distribution_names")()),
           tune=True, loss_units=True),
    Option("model", "conformal", LEVELS, (), "Intervals of these coverages, e.g. 0.8,0.95, calibrated on the "
           "validation windows after training (split conformal, per step) and stored in the model: around the point "
           "forecast, or with `quantiles` or `distribution` around the head's own intervals (conformalized "
           "quantiles).", metavar="COVERAGES",
           doc="Each error is divided by the window's own scale, so the width follows the series; the model then "
               "returns the median and each interval's bounds (`output_levels`)."),
    Option("model", "conformal_rate", NUMBER, 0.0, "Adaptive conformal intervals: after calibration, each "
           "offset follows the errors of every newer forecast whose actual value is known (the test split's, "
           "`update`'s, `predict --actuals`) at this learning rate, a fraction of its calibrated offset per miss "
           "(0: split conformal alone). 0.05 is a start.", low=0, high=1, metavar="RATE",
           doc="Quantile tracking (Angelopoulos, Candes and Tibshirani 2023), the offset form of adaptive conformal "
               "inference (Gibbs and Candes 2021): the report scores the tracked intervals, and the model stores "
               "the offsets after its data's last actual value."),
    Option("model", "ensemble", INT, 1, "Train N members side by side (each its own weights, drawn from the seed) "
           "and forecast their median (or `combine` mean) inside one model: one file to evaluate, calibrate and "
           "export.", low=1, high=64, tune=True, metavar="N",
           doc="Every member reads the same scaled window; each is trained on its own loss (the training loss is "
               "their mean), and the members' raw forecasts are combined."),
    Option("model", "ensemble_archs", NAMES, (), "The members' archs in turn, e.g. gru,lstm (members 1, 3, .. gru "
           "and 2, 4, .. lstm); none: every member is `arch`.", metavar="A,B,..."),
    Option("model", "ensemble_windows", WINDOWS, (), "The members' windows in turn, e.g. 36,24,18: member k reads "
           "the last steps of the window, each at most `window` (N-BEATS's members differ so); none: every member "
           "reads the whole window.", metavar="W,W,..",
           doc="A member's steps are scaled by the whole window's statistics; a cropped member needs `target_kind` "
               "next and `supervision` last."),
    Option("model", "combine", TEXT, "median", "How an ensemble combines its members' forecasts: median or mean.",
           choices=("median", "mean"), tune=True),
    # --- train: the budget and the optimizer ---
    Option("train", "epochs", INT, 20, "Passes over the training windows.", low=1, tune=True),
    Option("train", "batch_size", INT, 16, "Windows per batch.", low=1, tune=True),
    Option("train", "lr", NUMBER, 1e-3, "Adam's learning rate.", low=0, low_open=True, tune=True),
    Option("train", "seed", INT, 42, "Seeds weights, dropout and the training shuffle.", low=0, high=2**32 - 1),
    Option("train", "patience", INT, None, "Stop after this many epochs without a better validation loss (best "
           "weights are restored either way).", low=1, tune=True),
    Option("train", "steps_per_execution", INT, 32, "Training batches per call into the compiled step (same "
           "updates, less Python overhead; the torch backend always runs 1).", low=1),
    Option("train", "jit_compile", JIT, "auto", 'XLA compilation of the training step; "auto" lets Keras decide '
           "(XLA on jax and tensorflow).", on_cli=False),
    Option("train", "devices", DEVICES, 1, "Train data-parallel over N devices, or all (jax; each batch split over "
           "them; on a CPU, N host devices). With `coordinator`: the devices of every process.", metavar="N|all"),
    # --- evaluate: a comparison of archs (`compare`, a recipe's experiments); not a run's own options ---
    Option("evaluate", "archs", NAMES, CLASSIC_ARCHS, "Archs to compare, in report order, separated by commas.",
           metavar="A,B,..."),
    Option("evaluate", "repeats", INT, 1, "Seeds per arch (seed, seed+1, ...); figures become mean ± std.", low=1),
    Option("evaluate", "backtest", INT, 0, "Walk-forward evaluation over N expanding-window folds of the test rows, "
           "refit per fold (0: the single held-out test split).", low=0, metavar="N"),
    Option("evaluate", "on", NAMES, ("test",), "Splits to score (train, validation, test); scoring train shows how "
           "far training error flatters a model.", on_cli=False),
    Option("evaluate", "jobs", INT, 1, "Train N fits side by side on local worker processes (same seeds, same "
           "numbers).", low=1, metavar="N", placement=True),
    Option("evaluate", "scheduler", TEXT, None, "Send the fits to a dask.distributed scheduler, e.g. "
           "tcp://10.0.0.5:8786 (pip install 'keras-seq[dask]'). The cluster gets the data and runs code you send: "
           "connect only to one you trust as you trust this machine (SECURITY.md).", metavar="ADDRESS",
           placement=True),
    # --- tune: a hyperparameter search (`tune`; a recipe's [tune] table takes trials, objective and pruner) ---
    Option("tune", "trials", INT, 20, "Trials the study ends with (finished, pruned and refused ones), over every "
           "worker and every resume.", low=1),
    Option("tune", "objective", TEXT, "val_mase", "val_mase (validation MASE), val_<metric> for any metric of the "
           "reports, or val_loss (normalized units).",
           choices=registered("keras_seq.evaluation.metrics:objective_names")),
    Option("tune", "pruner", TEXT, "median", "median (Optuna's MedianPruner on each epoch's score) or none.",
           choices=("median", "none")),
    Option("tune", "study", TEXT, "study", "The study's name and its folder under `out`.", in_recipe=False),
    Option("tune", "storage", TEXT, None, "An SQLAlchemy URL (sqlite:///study.db, postgresql://...) shared by "
           "workers on many machines (default: the study folder's journal file, Optuna's).", metavar="URL",
           in_recipe=False),
    Option("tune", "workers", INT, 1, "Local worker processes on the study's storage.", low=1, in_recipe=False),
    Option("tune", "refit", BOOL, True, "Refit the best trial as a run folder, evaluated on the test split.",
           in_recipe=False),
)


_REGISTERED: dict[str, Option] = {}  # options an arch brought (`register_option`)


def register_option(option: Option) -> Option:
    """Add a model option to the table: an arch's own hyperparameter (`register_arch(options=...)`). From then on
    `ModelSpec` takes it as a keyword and as an attribute, the command line as a flag, a recipe as a `[model]` key,
    config.json records it and `tune` may search it, exactly like a built-in option.

    Raises:
        KerasSeqError: not a `model` option, not a lowercase word, or a name another option or a `ModelSpec`
            attribute already has.
    """
    if option.section != "model" or not re.fullmatch(r"[a-z][a-z0-9_]*", option.name):
        raise KerasSeqError(f"an arch's option is a `model` option named by a lowercase word. Received: "
                            f"{option.section}.{option.name}")
    known = _by_name().get(option.name) or _REGISTERED.get(option.name)
    if (known is not None and known != option) or (known is None and hasattr(_SPECS.get("model"), option.name)):
        raise KerasSeqError(f"option {option.name!r} is already declared: give the arch's option another name.")
    _REGISTERED[option.name] = option
    return option


_READ_BY: dict[str, tuple[str, ...]] = {}  # arch -> the registered options it reads (`models.registry` says)


def reads_options(arch: str, names: tuple[str, ...]) -> None:
    """Record which registered options `arch` reads: a spec of that arch records them in config.json."""
    _READ_BY[arch] = tuple(name for name in names if name in _REGISTERED)


def unregister_option(name: str) -> None:
    """Forget an option `register_option` added (a test's or a plugin's)."""
    _REGISTERED.pop(name, None)


@functools.cache
def _by_name() -> dict[str, Option]:
    table = {}
    for option in OPTIONS:
        if option.name in table:
            raise AssertionError(f"option {option.name} is declared twice")
        table[option.name] = option
    return table


def options(*sections: str) -> tuple[Option, ...]:
    """The options of these sections (every section's when none is named), in the table's order."""
    return tuple(o for o in (*OPTIONS, *_REGISTERED.values()) if not sections or o.section in sections)


def get_option(name: str) -> Option:
    """The option called `name` (or `KerasSeqError` naming the closest)."""
    known = {**_by_name(), **_REGISTERED}
    try:
        return known[name]
    except KeyError:
        raise KerasSeqError(f"unknown option {name!r}.{_closest(name, known)}") from None


def _closest(name: str, names) -> str:
    close = difflib.get_close_matches(str(name), list(names), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def spec_class(section: str):
    """The spec dataclass of a section (`DataSpec`, `WindowSpec`, `ModelSpec`, `TrainSpec`)."""
    importlib.import_module(SPEC_MODULES[section])
    return _SPECS[section]


_SPECS: dict[str, type] = {}


ARCH = "arch"  # the model option that chooses the arch: a comparison records archs instead
EXTRA = "arch_options"  # the field of `ModelSpec` that holds the values of registered options, as (name, value)s


def spec_of(section: str):
    """Class decorator: a frozen dataclass whose fields are `section`'s options, checked by the table (kinds,
    ranges, choices, unknown keywords) before the class's own `__post_init__` checks how they combine; its
    docstring gains an `Args:` section from the options' help. The `model` spec also holds the registered options
    (`register_option`) in its `arch_options` field, read as attributes (`spec.kernel`). A field the class declares
    itself (`TuneSpec.space`: not an option of the command line or a recipe key) follows the table's."""

    def make(cls):
        own = tuple(o for o in OPTIONS if o.section == section)  # registered options live in `arch_options`
        declared = dict(cls.__dict__.get("__annotations__", {}))
        cls.__annotations__ = {o.name: o.kind.annotation if not o.optional else f"{o.kind.annotation} | None"
                               for o in own} | declared
        for o in own:
            setattr(cls, o.name, o.default)
        if section == "model":
            cls.__annotations__[EXTRA] = "tuple[tuple[str, object], ...]"
            setattr(cls, EXTRA, ())
            cls.__getattr__ = _registered_value
        cls.__doc__ = (cls.__doc__ or "").rstrip() + "\n\n    Args:\n" + "".join(_arg_doc(o) for o in own)
        own_checks = cls.__dict__.get("__post_init__")

        def __post_init__(self):
            for o in own:
                object.__setattr__(self, o.name, o.checked(getattr(self, o.name)))
            if section == "model":  # a registered option at its default is not held: the spec means the same
                given = dict(self.arch_options)
                held = {name: get_option(name) for name in given}
                checked = ((name, held[name].checked(value)) for name, value in given.items())
                object.__setattr__(self, EXTRA, tuple(sorted((name, value) for name, value in checked
                                                             if value != held[name].default)))
            if own_checks is not None:
                own_checks(self)

        cls.__post_init__ = __post_init__
        cls = dataclasses.dataclass(frozen=True)(cls)
        cls.__init__ = _keyword_checked(cls.__init__, section, own, tuple(declared))
        _SPECS[section] = cls
        return cls

    return make


def _keyword_checked(init, section: str, own: tuple[Option, ...], declared: tuple[str, ...] = ()):
    renamed = {old: o.name for o in own for old in o.legacy_names}

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        kwargs = {renamed.get(key, key): value for key, value in kwargs.items()}  # an older name still works
        names = [o.name for o in options(section)] + list(declared)
        if section == "model":  # registered options travel in `arch_options`
            extra = {**dict(kwargs.pop(EXTRA, ())), **{key: kwargs.pop(key) for key in list(kwargs)
                                                        if key in _REGISTERED}}
            kwargs[EXTRA] = tuple(extra.items())
            names.append(EXTRA)
        unknown = next((key for key in kwargs if key not in names), None)
        if unknown is not None:
            raise KerasSeqError(f"unknown {section} option {unknown!r}.{_closest(unknown, names)} Expected one of: "
                                f"{', '.join(n for n in names if n != EXTRA)}.")
        init(self, *args, **kwargs)

    return __init__


def compared_values(model, archs: tuple[str, ...]) -> dict:
    """A comparison's model options (`values_of(model, archs)`) without the arch: each of its fits has its own."""
    values = values_of(model, archs)
    del values[ARCH]
    return values


def settle(spec, **values) -> None:
    """Set a frozen spec's options to `values`: its `__post_init__` settling what it was given (a list to a
    tuple, one name of several to that name)."""
    for name, value in values.items():
        object.__setattr__(spec, name, value)


def _registered_value(self, name: str):
    """A registered option's value on a `ModelSpec` (its default where not given)."""
    if name in _REGISTERED:
        return dict(object.__getattribute__(self, EXTRA)).get(name, _REGISTERED[name].default)
    raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


def _arg_doc(option: Option) -> str:
    text = f"{option.name}: {option.kind.annotation}. {option.help} {option.doc} Defaults to `{option.default!r}`."
    return textwrap.fill(" ".join(text.split()), width=78, initial_indent=" " * 8, subsequent_indent=" " * 12) + "\n"


def values_of(spec, archs: tuple[str, ...] = ()) -> dict:
    """A spec's options as one flat dict (what config.json and a resolved recipe record): a model's registered
    options beside the built-in ones, each option its arch (and each of `archs`, compared with it) reads at its
    value."""
    values = dataclasses.asdict(spec)
    if EXTRA in values:
        values.update({name: getattr(spec, name) for arch in (spec.arch, *archs) for name in _READ_BY.get(arch, ())})
        values.update(dict(values.pop(EXTRA)))
    return values


def from_record(section: str, record: dict, **given):
    """A section's spec from a config.json table, written by this version or an older one: an option recorded
    under an older name is read under its name now, and one not recorded takes what it meant then. `given`
    values replace the record's.

    Raises:
        KerasSeqError: an option is unknown or out of range (`TypeError` where the record is not a table).
    """
    if not isinstance(record, dict):
        raise TypeError(f"no '{section}' table")
    own = options(section)
    values = dict(record)
    if section == "data":  # it also records what was read (`rows`, the digest): not options
        known = {o.name for o in own} | {old for o in own for old in o.legacy_names}
        values = {key: value for key, value in values.items() if key in known}
    values |= given
    for option in own:  # (an older name is read by the spec's constructor)
        recorded = option.name in values or any(old in values for old in option.legacy_names)
        if not recorded and option.legacy_default is not MISSING:
            values[option.name] = option.legacy_default
    return spec_class(section)(**values)


def specs_from_values(values: dict, sections=SECTIONS, **fixed) -> tuple:
    """One spec per section from flat option values (the command line's, keyed by option name); `fixed` values
    (e.g. `arch`) win. Values not of these sections are ignored."""
    merged = {**values, **fixed}
    return tuple(spec_class(section)(**{o.name: merged[o.name] for o in options(section) if o.name in merged})
                 for section in sections)


def recipe_schema() -> dict[str, dict[str, Kind]]:
    """Each section's recipe keys and their kinds (`arch` is a recipe's `[model] archs`, not a key)."""
    return {section: {o.name: o.kind for o in options(section) if o.name != "arch"} for section in SECTIONS}


def tunable() -> dict[str, tuple[str, ...]]:
    """What a trial may change, per section. The data, the splits, the horizon and the target kind are the task
    itself: trials that changed them would be scored on other rows."""
    return {section: tuple(o.name for o in options(section) if o.tune)
            for section in ("model", "windows", "train")}


_OPTION_NAME = re.compile(r"`([a-z][a-z_]*)`")


def cli_text(message: str, flags: dict[str, str] | None = None) -> str:
    """A library message as the command line says it: each option named `` `window` `` becomes `--window` (also
    the names in `flags`, a command's own parameters)."""
    known = {**(flags or {}), **{o.name: o.cli_flag for o in options()}}
    return _OPTION_NAME.sub(lambda m: known.get(m.group(1), m.group(0)), message)
