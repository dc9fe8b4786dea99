"""Split a series by time and cut it into normalized windows with tf.data.

The rows are split chronologically into train, validation and test
(default 70/15/15). A window belongs to the split that holds all of its
target values; its inputs may reach back into an earlier split (the past is
known when a forecast is made) but never forward. Training windows lie wholly
inside the training rows, and the z-score statistics come from the training
rows alone, so no validation or test value reaches training.

Two target kinds:
- `next`: inputs are `window` steps, the target is the next `horizon`
  values of the target column: `(batch, window, features) -> (batch, horizon)`.
- `sequence` (the tutorial's task): the target is the window shifted by one
  step, a prediction at every step: `(batch, window, features) ->
  (batch, window, 1)`.

Example:
>>> import numpy as np, pandas as pd
>>> frame = pd.DataFrame({"Close": np.arange(100.0)},
...                      index=pd.date_range("2020-01-01", periods=100))
>>> w = make_windows(frame, target="Close", window=4, batch_size=8)
>>> x, y = next(iter(w.test))
>>> tuple(x.shape), tuple(y.shape)
((8, 4, 1), (8, 1))
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from keras_seq.data.calendar import lead_columns
from keras_seq.data.reading import is_steps, label_of
from keras_seq.config.options import settle, spec_of
from keras_seq.errors import KerasSeqError

SPLIT_NAMES = ("train", "validation", "test")


@spec_of("windows")
class WindowSpec:
    """How a series is cut into windows (the options are `keras_seq.config.options`' `windows` section)."""

    def __post_init__(self):
        if self.split_dates is not None:
            settle(self, split_dates=_checked_split_dates(self.split_dates))
        if self.split_steps is not None:
            if self.split_dates is not None:
                raise KerasSeqError("`split_steps` cuts each series' own last steps and `split_dates` every series at "
                                    "the same dates: give one of them.")
            steps = tuple(self.split_steps)
            if len(steps) != 2 or not all(isinstance(n, (int, np.integer)) and n >= 0 for n in steps):
                raise KerasSeqError(f"`split_steps` must be two whole numbers of steps, the validation's and the "
                                    f"test's, e.g. 18,18. Received: split_steps={list(steps)}")
            if steps[0] < 1:
                raise KerasSeqError(f"`split_steps` {steps[0]},{steps[1]} leaves nothing to validate on: training "
                                    "keeps its best epoch on the validation split. Give VAL of at least the horizon, "
                                    "e.g. 18,18.")
            settle(self, split_steps=tuple(int(n) for n in steps))
        check_window_options(self.horizon, self.target_kind, self.splits)
        if self.pad and (self.target_kind != "next" or self.supervision != "last"):
            raise KerasSeqError("`pad` masks the missing start of a window that is forecast from its last step: use it "
                                "with `target_kind` next and `supervision` last.")
        if self.supervision == "every" and self.target_kind != "next":
            raise KerasSeqError(
                "supervision 'every' is for target kind 'next' (target kind 'sequence' already scores every step). "
                "Use `target_kind` next with it."
            )


def _checked_split_dates(values) -> tuple[str, str]:
    """Two dates in order, as ISO strings (validation's first day, then test's)."""
    try:
        days = [pd.Timestamp(v) for v in values]
    except (TypeError, ValueError):
        days = []
    if len(days) != 2 or any(pd.isna(d) for d in days) or days[0] > days[1]:
        raise KerasSeqError(f"`split_dates` must be two dates in order, the first day of the validation split and of "
                            f"the test split, e.g. 2015-01-01,2018-01-01. Received: split_dates={list(values)}")
    return tuple(str(d.date()) if d == d.normalize() else d.isoformat() for d in days)


def check_window_options(horizon, target_kind, splits) -> None:
    """Raise `KerasSeqError` for window options that do not combine, or splits that do not sum to 1 (the option
    table checks each one's kind and range)."""
    if target_kind == "sequence" and horizon != 1:
        raise KerasSeqError(
            f"target kind 'sequence' predicts one step ahead at every step, so `horizon` must be 1. "
            f"Received: horizon={horizon}. Use target kind 'next' for longer horizons."
        )
    if len(splits) != 3 or any(not np.isfinite(s) or s < 0 for s in splits) or abs(sum(splits) - 1) > 1e-6:
        raise KerasSeqError(
            f"`splits` must be three non-negative fractions (train, validation, test) that sum to 1. "
            f"Received: splits={tuple(splits)}"
        )


@dataclasses.dataclass(frozen=True)
class Scaling:
    """Z-score statistics, computed on the training rows only.

    The model applies them itself (it takes and returns raw values); they are
    recorded in every run folder and model card.
    """

    feature_names: tuple[str, ...]
    feature_mean: tuple[float, ...]
    feature_std: tuple[float, ...]
    target_name: str
    target_mean: float
    target_std: float

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, config: dict) -> "Scaling":
        return cls(
            feature_names=tuple(config["feature_names"]),
            feature_mean=tuple(float(v) for v in config["feature_mean"]),
            feature_std=tuple(float(v) for v in config["feature_std"]),
            target_name=str(config["target_name"]),
            target_mean=float(config["target_mean"]),
            target_std=float(config["target_std"]),
        )


@dataclasses.dataclass
class Windows:
    """The three splits of one series as tf.data pipelines, and their layout.

    `train`, `validation` and `test` are `tf.data.Dataset`s of
    `(window, target)` batches (None for an empty split); only `train` is
    shuffled. They are built on first use: `fit` reads numpy batches
    (`gather`) on every backend, so training a model never holds the
    series a second time inside TensorFlow. Positions below are row numbers
    of `dates`.

    The rows are a panel: one or more series stacked one after another
    (`series_ids`, and per series the rows of each split in `series_splits`),
    each in time order. Windows never cross from one series into the next,
    and every series is cut at the same dates (`split_by_dates`). A single
    series is a panel of one, and `split_rows` is its `series_splits[0]`.

    With a `series_index` (`with_series_index`, for a model that reads the
    series), the pipelines and `gather` yield `((windows, series index),
    targets)`: each window's series index as the model's second input.
    """

    scaling: Scaling
    dates: pd.DatetimeIndex
    target_values: np.ndarray  # (rows,) raw target column, in its own float dtype (float64 from a CSV)
    series_splits: tuple  # per series of the panel: split name -> (first row, end row), end exclusive
    window: int
    horizon: int
    target_kind: str
    sequence_stride: int
    normalized: bool
    shuffled: bool = False  # the train split is reshuffled every epoch
    series: np.ndarray | None = None  # (rows, columns) float32 the pipelines gather from: each column once
    batch_size: int = 16
    shuffle_seed: int = 0  # with the epoch, fixes the order of the training windows (`epoch_starts`)
    series_ids: tuple = ()  # one name per series of the panel, in order (one series: its target's name)
    supervision: str = "last"  # "every": the pipelines yield (batch, window, horizon) targets, one row per step
    input_columns: tuple = ()  # `series` column of each input feature, in order (default: the first n_features)
    target_column: int = -1  # `series` column of the target
    series_index: np.ndarray | None = None  # per series: the model's series input (0: unseen); None: windows alone
    padding: int = 0  # missing rows (NaN) before every series' first row (`pad`): a window may begin among them
    _datasets: dict | None = dataclasses.field(default=None, init=False, repr=False, compare=False)
    _firsts: np.ndarray | None = dataclasses.field(default=None, init=False, repr=False, compare=False)

    @property
    def train(self):
        return self.dataset("train")

    @property
    def validation(self):
        return self.dataset("validation")

    @property
    def test(self):
        return self.dataset("test")

    @property
    def split_rows(self) -> dict:
        """The first series' rows of each split: split name -> (first row, end row), end exclusive."""
        return self.series_splits[0]

    @property
    def n_features(self) -> int:
        return len(self.scaling.feature_names)

    def dataset(self, split: str):
        """The tf.data pipeline of `split` (None when it has no window), every split's built on first use."""
        if self._datasets is None:
            self._datasets = _pipelines(self)
        return self._datasets[split]

    @property
    def columns(self) -> tuple[tuple, int]:
        """(the `series` columns of the inputs, the target's column)."""
        inputs = self.input_columns or tuple(range(self.n_features))
        return inputs, self.target_column % self.series.shape[1]

    def starts(self, split: str) -> np.ndarray:
        """Row of each window's first input step: series by series, each in time order.

        A window's inputs may reach back into the series' earlier splits,
        never into the series before it.
        """
        return self._starts_of(*self._start_counts(split))

    def _starts_of(self, firsts: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """The window starts of per-series first starts and counts (`_start_counts`)."""
        dtype = np.int32 if len(self.dates) < 2**31 - 1 else np.int64  # half the index of a large panel
        if len(firsts) == 1:
            return np.arange(firsts[0], firsts[0] + counts[0] * self.sequence_stride, self.sequence_stride, dtype=dtype)
        # start i of series k is firsts[k] + stride * (i - offsets[k]): built in place, no list of per-series arrays
        offsets = np.cumsum(counts) - counts
        starts = np.arange(int(counts.sum()), dtype=dtype)
        if self.sequence_stride != 1:
            starts *= self.sequence_stride
        starts += np.repeat((firsts - self.sequence_stride * offsets).astype(dtype), counts)
        return starts

    @property
    def first_rows(self) -> np.ndarray:
        """The first row of each series of the panel, int64 (computed once)."""
        if self._firsts is None:
            self._firsts = np.array([rows["train"][0] - self.padding for rows in self.series_splits], dtype=np.int64)
        return self._firsts

    def series_of(self, rows: np.ndarray) -> np.ndarray:
        """The panel position of the series each row (a window start, a target's row) lies in."""
        return np.searchsorted(self.first_rows, np.asarray(rows), side="right") - 1

    def inputs_of(self, starts: np.ndarray, windows: np.ndarray):
        """What the model reads for `windows` beginning at `starts`: the windows, and with a `series_index` the
        int32 index of each one's series beside them."""
        if self.series_index is None:
            return windows
        return windows, self.series_index[self.series_of(starts)].astype(np.int32)

    def model_inputs(self, split: str):
        """Every window of `split` as the model reads it (`inputs_of`), in order."""
        starts = self.starts(split)
        return self.inputs_of(starts, self.gather(starts, indexed=False)[0])

    def count(self, split: str) -> int:
        """The number of windows of `split` (`len(starts(split))`, without building them)."""
        return int(self._start_counts(split)[1].sum())

    def _start_counts(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """Per series: the first window start of `split` and how many windows it has there."""
        ranges = np.array([_start_range(*rows[split], self.window, self.horizon, self.target_kind,
                                        floor=rows["train"][0] - self.padding) for rows in self.series_splits],
                          dtype=np.int64)
        firsts, lasts = ranges[:, 0], ranges[:, 1]
        counts = np.where(lasts >= firsts, (lasts - firsts) // self.sequence_stride + 1, 0)
        return firsts, counts

    def epoch_starts(self, split: str, epoch: int) -> np.ndarray:
        """`starts(split)` in the order of `epoch` (counted from 0): a permutation for a shuffled train split.

        The order is a function of `shuffle_seed` and `epoch` alone, so an
        epoch can be replayed on its own (a resumed run).
        """
        order = self.epoch_order(split, epoch)
        if isinstance(order, np.ndarray):
            return order
        return order[: len(order)]

    def epoch_order(self, split: str, epoch: int):
        """What `fit` reads `split` in: `epoch_starts(split, epoch)`, or for a train split of more than
        `KEYED_ORDER_WINDOWS` windows a `KeyedOrder` that computes any slice of it on demand.

        Shuffling tens of millions of starts takes seconds and a second index
        of them; the keyed order holds neither, so a large panel's first
        batch comes at once.
        """
        if not (split == "train" and self.shuffled):
            return self.starts(split)
        firsts, counts = self._start_counts(split)
        if counts.sum() > KEYED_ORDER_WINDOWS:
            return KeyedOrder(firsts, counts, self.sequence_stride, [self.shuffle_seed, epoch])
        starts = self._starts_of(firsts, counts)
        np.random.default_rng([self.shuffle_seed, epoch]).shuffle(starts)  # in place (as `permutation` orders)
        return starts

    def gather(self, starts: np.ndarray, indexed: bool = True) -> tuple:
        """`(inputs, targets)` of the windows that begin at rows `starts`, as the pipelines yield them.

        Inputs are `(n, window, features)` (with a `series_index` and
        `indexed`, the pair of those and each window's series index);
        targets `(n, horizon)` for `next` and `(n, window, 1)` for `sequence`.
        """
        first_offset, span = _target_offsets(self.window, self.horizon, self.target_kind)
        spans = self.series[np.asarray(starts)[:, None] + np.arange(span)[None, :]]  # (n, span, columns)
        columns, target = self.columns
        inputs = spans[:, : self.window]
        inputs = inputs[:, :, columns[0] : columns[-1] + 1] if _consecutive(columns) else inputs[:, :, list(columns)]
        if self.supervision == "every":  # step t's targets are the horizon values after it
            targets = spans[:, _every_step_offsets(self.window, self.horizon), target]
        elif self.target_kind == "next":
            targets = spans[:, self.window :, target]
        else:
            targets = spans[:, first_offset:, target : target + 1]
        return (self.inputs_of(starts, inputs) if indexed else inputs), targets

    def target_positions(self, split: str) -> np.ndarray:
        """Rows of the target values: `(n, horizon)` for `next`, `(n, window)` for `sequence`."""
        first_offset, _ = _target_offsets(self.window, self.horizon, self.target_kind)
        width = self.horizon if self.target_kind == "next" else self.window
        return self.starts(split)[:, None] + first_offset + np.arange(width)[None, :]

    def observed_positions(self, split: str) -> np.ndarray:
        """For each target value, the row of the last target value known when it is forecast."""
        positions = self.target_positions(split)
        if self.target_kind == "next":
            return np.broadcast_to(self.starts(split)[:, None] + self.window - 1, positions.shape)
        return positions - 1

    def targets(self, split: str) -> np.ndarray:
        """Raw target values, shaped like `target_positions(split)`."""
        return self.target_values[self.target_positions(split)]

    def split_dates(self) -> dict:
        """First and last date and counts of rows and windows per split."""
        result = {}
        for name, (lo, hi) in self.split_rows.items():
            result[name] = {
                "rows": hi - lo,
                "windows": self.count(name),
                "first": label_of(self.dates[lo]) if hi > lo else None,
                "last": label_of(self.dates[hi - 1]) if hi > lo else None,
            }
        return result


# Above this many training windows an epoch's order is computed batch by batch (`KeyedOrder`), not shuffled whole.
KEYED_ORDER_WINDOWS = 1 << 24


class KeyedOrder:
    """A random order of a split's window starts, computed for any slice on demand.

    Position p of the epoch maps to window `perm(p)` through a keyed
    bijection of [0, 2**bits), the smallest power of two above n: rounds of
    adding a key, multiplying by an odd constant and xor-shifting, each
    invertible modulo 2**bits; values that land at n or above walk on
    through it until they fall inside (cycle-walking, so the result is a
    bijection of [0, n)). Window i of series k starts at
    `firsts[k] + stride * (i - offsets[k])`. It holds one small array per
    series, never an index of every window.
    """

    MULTIPLIERS = np.array([0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB, 0xD6E8FEB86659FD93],
                           dtype=np.uint64)
    BLOCK = 1 << 15  # positions computed at a time: numpy's per-call cost spread over many batches

    def __init__(self, firsts: np.ndarray, counts: np.ndarray, stride: int, key):
        import threading

        self.firsts, self.stride = np.asarray(firsts, dtype=np.int64), int(stride)
        self.offsets = np.cumsum(counts) - counts
        self.n = int(np.sum(counts))
        self.bits = max(2, (self.n - 1).bit_length())
        self.mask = np.uint64((1 << self.bits) - 1)
        self.shift = np.uint64(self.bits // 2 + 1)
        self.keys = np.random.default_rng(key).integers(0, 2**63, size=len(self.MULTIPLIERS), dtype=np.uint64)
        self.cached, self.block = -1, None  # the block of BLOCK positions last computed, and its starts
        self.lock = threading.Lock()

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: slice) -> np.ndarray:
        first, end, step = index.indices(self.n)
        if step == 1 and end > first and first // self.BLOCK == (end - 1) // self.BLOCK:  # a batch: from its block
            number = first // self.BLOCK
            with self.lock:
                if self.cached != number:
                    lo = number * self.BLOCK
                    self.block, self.cached = self.starts_at(np.arange(lo, min(lo + self.BLOCK, self.n))), number
                block = self.block
            return block[first - number * self.BLOCK : end - number * self.BLOCK]
        return self.starts_at(np.arange(first, end, step))

    def starts_at(self, positions: np.ndarray) -> np.ndarray:
        """The window starts at epoch `positions`."""
        windows = self.permute(positions.astype(np.uint64)).astype(np.int64)
        series = np.searchsorted(self.offsets, windows, side="right") - 1
        return self.firsts[series] + self.stride * (windows - self.offsets[series])

    def permute(self, positions: np.ndarray) -> np.ndarray:
        """The window numbers at `positions` (uint64): a bijection of [0, n)."""
        values = self._mix(positions)
        outside = np.flatnonzero(values >= self.n)
        while len(outside):
            values[outside] = self._mix(values[outside])
            outside = outside[values[outside] >= self.n]
        return values

    def _mix(self, values: np.ndarray) -> np.ndarray:
        values = values.copy()
        for key, multiplier in zip(self.keys, self.MULTIPLIERS):
            values += key
            values *= multiplier  # odd: invertible modulo 2**bits (uint64 wraps modulo 2**64)
            values &= self.mask
            values ^= values >> self.shift
        return values


def add_leads(frame: pd.DataFrame, names, horizon: int, series_column: str | None = None) -> pd.DataFrame:
    """`frame` with each future feature's values 1 .. `horizon` steps after every row (within its series).

    The last rows of a series have no value that far ahead: their leads are
    missing (NaN), and they are never a window's inputs.

    Example:
    >>> frame = pd.DataFrame({"y": [1.0, 2, 3], "h": [0.0, 1, 0]}, index=pd.date_range("2024-01-01", periods=3))
    >>> add_leads(frame, ["h"], 2)["h+1"].tolist(), add_leads(frame, ["h"], 2)["h+2"].tolist()
    ([1.0, 0.0, nan], [0.0, nan, nan])
    """
    clash = [c for c in lead_columns(names, horizon) if c in frame.columns]
    if clash:
        raise KerasSeqError(f"the data already has a column '{clash[0]}', the name of a future feature's lead. "
                            "Rename that column.")
    source = frame.groupby(series_column, sort=False)[list(names)] if series_column else frame[list(names)]
    leads = {f"{name}+{step}": shifted[name] for step in range(1, horizon + 1)
             for shifted in [source.shift(-step)] for name in names}
    return frame.assign(**{column: leads[column] for column in lead_columns(names, horizon)})


def _consecutive(columns) -> bool:
    return list(columns) == list(range(columns[0], columns[0] + len(columns)))


def _every_step_offsets(window: int, horizon: int) -> np.ndarray:
    """(window, horizon) offsets into a window's span: step t's targets are steps t+1 .. t+horizon."""
    return 1 + np.arange(window)[:, None] + np.arange(horizon)[None, :]


def _target_offsets(window: int, horizon: int, target_kind: str) -> tuple[int, int]:
    """(offset of the first target in a window's span, span length)."""
    if target_kind == "next":
        return window, window + horizon
    return 1, window + 1


def _start_range(lo: int, hi: int, window: int, horizon: int, target_kind: str, floor: int = 0) -> tuple[int, int]:
    """First and last (inclusive) window start whose targets all lie in rows [lo, hi), its inputs from row `floor` on."""
    first_offset, span = _target_offsets(window, horizon, target_kind)
    return max(lo - first_offset, floor), hi - span


def split_rows(n_rows: int, splits: tuple[float, float, float]) -> dict:
    """Chronological split of `n_rows` rows: name -> (first row, end row)."""
    n_train = int(round(n_rows * splits[0]))
    n_validation = min(int(round(n_rows * splits[1])), n_rows - n_train)
    bounds = [0, n_train, n_train + n_validation, n_rows]
    return {name: (bounds[i], bounds[i + 1]) for i, name in enumerate(SPLIT_NAMES)}


def split_by_dates(dates: pd.DatetimeIndex, bounds: list[tuple[int, int]], splits, cut_dates=None) -> list[dict]:
    """The rows of each split, per series, cut at the same dates for every series.

    `dates` holds the stacked rows of every series; series k is rows
    `bounds[k] = (first, end)`, in time order. The split fractions are taken
    of the union of all dates (as `split_rows` takes them of one series' rows),
    so the validation and test periods begin on the same date in every series:
    no series' test period is seen while another trains. `cut_dates` (the
    first day of validation and of test) replace the fractions.

    Example:
    >>> dates = pd.DatetimeIndex(pd.date_range("2020-01-01", periods=10).append(pd.date_range("2020-01-05", periods=4)))
    >>> split_by_dates(dates, [(0, 10), (10, 14)], (0.6, 0.2, 0.2))[1]  # the 2nd series ends before the test period
    {'train': (10, 12), 'validation': (12, 14), 'test': (14, 14)}
    """
    stamps = dates.asi8 if not is_steps(dates) else np.asarray(dates, dtype="int64")  # a view: slices cost nothing
    if cut_dates is not None:  # given: the first day of validation and of test
        if is_steps(dates):
            raise KerasSeqError("`split_dates` cuts dated rows, and the data is numbered by steps. Use `split_steps` "
                                "VAL,TEST (each series' last steps) or `splits`.")
        starts = [int(np.datetime64(pd.Timestamp(day), dates.unit).astype("int64")) for day in cut_dates]
    else:
        union = np.sort(pd.unique(stamps))
        cuts = split_rows(len(union), splits)
        starts = [union[cuts[name][0]] if cuts[name][0] < len(union) else None for name in ("validation", "test")]
    result = []
    for first, end in bounds:
        own = stamps[first:end]
        lo_validation, lo_test = (first + int(np.searchsorted(own, day) if day is not None else len(own)) for day in starts)
        result.append({"train": (first, lo_validation), "validation": (lo_validation, lo_test), "test": (lo_test, end)})
    return result


def split_by_steps(bounds: list[tuple[int, int]], validation: int, test: int) -> tuple[list[dict], list[int]]:
    """The rows of each split, per series, counted from each series' own end (the M competitions' holdout).

    Series k (rows `bounds[k]`) holds its last `test` rows as its test split
    and the `validation` rows before them as its validation split; the rest
    trains. A series of `validation + test` rows or fewer keeps its last
    `test` rows (what it has of them) as its test split and nothing to train
    or validate on (its earlier rows are a test window's inputs only): such
    series are listed, by position, in the second value.

    Example:
    >>> split_by_steps([(0, 10), (10, 14)], 2, 3)
    ([{'train': (0, 5), 'validation': (5, 7), 'test': (7, 10)}, {'train': (10, 10), 'validation': (10, 10), 'test': (11, 14)}], [1])
    """
    result, short = [], []
    for k, (first, end) in enumerate(bounds):
        lo_test, lo_validation = max(end - test, first), end - test - validation
        if lo_validation <= first:  # its rows before the test split are inputs only
            short.append(k)
            result.append({"train": (first, first), "validation": (first, first), "test": (lo_test, end)})
            continue
        result.append({"train": (first, lo_validation), "validation": (lo_validation, lo_test), "test": (lo_test, end)})
    return result, short


def fit_scaling(frame: pd.DataFrame, features: list[str], target: str, rows: tuple[int, int]) -> Scaling:
    """Mean and standard deviation of each column over `rows` (the training split)."""
    train = frame.iloc[rows[0] : rows[1]]
    stats = {}
    for column in dict.fromkeys([*features, target]):
        values = train[column].to_numpy(dtype="float64")
        if np.isnan(values).any():  # a future feature's leads are missing after a series' last rows
            values = values[~np.isnan(values)]
        mean, std = float(values.mean()), float(values.std())
        if not np.isfinite(std) or std <= 1e-12 * max(1.0, abs(mean)):
            raise KerasSeqError(
                f"column '{column}' is constant over the training split ({label_of(train.index[0])}.."
                f"{label_of(train.index[-1])}, value {mean:g}), so it cannot be standardized. "
                "Choose a date range where it varies, or leave it out of `features`."
            )
        stats[column] = (mean, std)
    return _scaling_of(stats, features, target)


def _scaling_of(stats: dict, features: list, target: str) -> Scaling:
    """A `Scaling` from each column's `(mean, std)`."""
    return Scaling(
        feature_names=tuple(features),
        feature_mean=tuple(stats[f][0] for f in features),
        feature_std=tuple(stats[f][1] for f in features),
        target_name=target,
        target_mean=stats[target][0],
        target_std=stats[target][1],
    )


def _fit_panel_scaling(frame: pd.DataFrame, features: list, target: str, ranges: list) -> Scaling:
    """`fit_scaling` over the training rows of every series of a panel, slice by slice (no copy of those rows)."""
    stats = {}
    for column in dict.fromkeys([*features, target]):
        values = frame[column].to_numpy()
        parts = [values[lo:hi].astype("float64") for lo, hi in ranges if hi > lo]
        parts = [part[~np.isnan(part)] for part in parts]  # a future feature's leads end before their series
        count = sum(len(part) for part in parts)
        mean = sum(float(part.sum()) for part in parts) / count
        std = float(np.sqrt(sum(float(np.square(part - mean).sum()) for part in parts) / count))
        if not np.isfinite(std) or std <= 1e-12 * max(1.0, abs(mean)):
            raise KerasSeqError(f"column '{column}' is constant over the training split of every series (value "
                                f"{mean:g}), so it cannot be standardized. Leave it out of `features`.")
        stats[column] = (mean, std)
    return _scaling_of(stats, features, target)


def _series_names(windows: Windows, name) -> tuple:
    """The series' names, a single series called `name` where given (`DataSpec.series_name`)."""
    return (name,) if name is not None and len(windows.series_ids) == 1 else windows.series_ids


def series_vocabulary(windows: Windows, name: str | None = None) -> list:
    """The names of the series with a training window, in panel order: the series a model knows (index k+1).

    `name` is what a single series is called (`DataSpec.series_name`: one series of a long table by its own name).
    """
    names = _series_names(windows, name)
    return [str(names[k]) for k in np.flatnonzero(windows._start_counts("train")[1] > 0)]


def with_series_index(windows: Windows, vocabulary, name: str | None = None) -> Windows:
    """`windows` whose batches carry each window's series index: k+1 for `vocabulary[k]`, 0 for a series not in it
    (`windows` itself for a vocabulary of None: a model that reads windows alone). `name` as `series_vocabulary`'s."""
    if vocabulary is None:
        return windows
    return dataclasses.replace(windows, series_index=series_indices(_series_names(windows, name), vocabulary))


def series_indices(names, vocabulary) -> np.ndarray:
    """The series input of a model that knows `vocabulary`: int32, k+1 for each name that is `vocabulary[k]`, 0 for
    a series it never saw."""
    numbers = {str(name): k + 1 for k, name in enumerate(vocabulary)}
    return np.array([numbers.get(str(name), 0) for name in names], dtype=np.int32)


def series_statistics(windows: Windows) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each input column over each known series' training rows, `(known, inputs)`.

    The known series are those of `series_vocabulary`, in its order. A
    column constant over one series' training rows takes the pooled standard
    deviation of every series (`windows.scaling`), so a value it has never
    had stays finite.
    """
    columns = list(windows.columns[0])
    counts = windows._start_counts("train")[1]
    means, stds = [], []
    for k in np.flatnonzero(counts > 0):
        lo, hi = windows.series_splits[k]["train"]
        rows = windows.series[lo:hi, columns].astype("float64")
        mean, std = np.nanmean(rows, axis=0), np.nanstd(rows, axis=0)
        means.append(mean)
        stds.append(np.where(std > 1e-12 * np.maximum(1.0, np.abs(mean)), std, windows.scaling.feature_std))
    return np.array(means), np.array(stds)


def make_windows(frame: pd.DataFrame, *, target: str, features: list[str] | tuple[str, ...] | None = None,
                 batch_size: int = 16, seed: int | None = None, normalize: bool = False, scaling: Scaling | None = None,
                 shuffle: bool = True, **options) -> Windows:
    """Split `frame` by time and build a tf.data pipeline of windows per split.

    Windows are gathered batch by batch from the series inside tf.data: no
    Python loop over windows and no copy of every window in memory. The
    pipelines cut the windows that `Windows.starts` lists, the one index that
    `Windows.gather` (the numpy path of jax and torch training) reads too.

    Args:
        frame: DataFrame. Rows in time order, with the feature and target
            columns (as returned by `load_series`).
        target: str. Column to forecast.
        features: list of str or None. Input columns in order. Defaults to
            the target alone.
        batch_size: int. Windows per batch. Defaults to `16`.
        seed: int or None. Seed of the training shuffle. Defaults to `None`.
        normalize: bool. Yield z-scored windows and targets, not the raw
            values a keras-seq model takes. Defaults to `False`.
        scaling: Scaling or None. Statistics to use instead of fitting them on
            the training split (for a trained model's data). Defaults to
            `None`.
        shuffle: bool. Shuffle the training split every epoch; `False`
            keeps it in time order (to evaluate the train split). The other
            splits are always in time order. Defaults to `True`.
        **options: `WindowSpec`'s fields (`window`, `horizon`,
            `target_kind`, `splits`, `stride`, `supervision`), its
            defaults too; and `series_column`, a long frame's column naming
            each row's series: a panel, every series cut at the same dates,
            a series too short for one window left out with a warning; and
            `future_features`, columns known in advance (`add_leads`).

    Returns:
        A `Windows` (see the module docstring for an example).

    Raises:
        KerasSeqError: an option is out of range, or a split is too short for
            a single window.
    """
    series_column = options.pop("series_column", None)
    future = tuple(options.pop("future_features", None) or ())
    spec = WindowSpec(**options)  # unknown keywords and values refused there
    features = list(features) if features else [target]
    if future:  # each one's values 1 .. horizon steps ahead, as input columns after the others
        frame = add_leads(frame, future, spec.horizon, series_column)
        features += lead_columns(future, spec.horizon)
    frame, series_splits, ids, padding = _layout(frame, series_column, spec, target)
    _check_batch_and_columns(frame, features, target, batch_size)
    scaling = _checked_scaling(frame, features, target, series_splits, spec, scaling)
    columns = list(dict.fromkeys([*features, target]))  # each column once: a univariate series is held once
    return Windows(
        scaling=scaling, dates=frame.index, target_values=_float_values(frame[target]), series_splits=series_splits,
        series_ids=tuple(ids), window=spec.window, horizon=spec.horizon, target_kind=spec.target_kind,
        sequence_stride=spec.stride, normalized=normalize, shuffled=bool(shuffle),
        series=_series_array(frame, columns, scaling if normalize else None),  # what the pipelines and `gather` cut
        input_columns=tuple(columns.index(f) for f in features), target_column=columns.index(target),
        batch_size=int(batch_size), supervision=spec.supervision, padding=padding,
        shuffle_seed=int(seed) % 2**32 if seed is not None else int(np.random.SeedSequence().entropy % 2**32),
    )


PAD_OBSERVED = 0.5


def padding_rows(spec: WindowSpec) -> int:
    """The missing rows `pad` puts before every series: a window of training data reads at least half a window
    of observed values (`PAD_OBSERVED`; windows of fewer read mostly padding, and their scale is too uncertain to
    learn from). A forecast reads any number of them."""
    return spec.window - max(1, int(np.ceil(spec.window * PAD_OBSERVED))) if spec.pad else 0


def _padded(frame: pd.DataFrame, series_splits: tuple, padding: int) -> tuple[pd.DataFrame, tuple]:
    """`frame` with `padding` missing rows (NaN) before every series, and each series' split rows moved with it.

    A padding row is dated NaT (numbered on backwards from the series' first
    step, for data numbered by steps); it belongs to no split, so it is never
    a target nor a training statistic, only the start of a window.
    """
    firsts = np.array([rows["train"][0] for rows in series_splits], dtype=np.int64)
    sizes = np.array([rows["test"][1] for rows in series_splits], dtype=np.int64) - firsts + padding
    own_first = np.repeat(firsts, sizes)  # per padded row: its series' first row
    positions = own_first - padding + np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    missing = positions < own_first
    rows = frame.iloc[np.maximum(positions, own_first)]  # a padding row copies its series' first row, then NaN
    values = rows.to_numpy(dtype="float64", copy=True)
    values[missing] = np.nan
    if is_steps(frame.index):
        index = pd.Index(np.asarray(rows.index, dtype="int64") + np.minimum(positions - own_first, 0),
                         name=frame.index.name)
    else:
        index = pd.DatetimeIndex(np.where(missing, np.datetime64("NaT"), rows.index.to_numpy()), name=frame.index.name)
    moved = tuple({name: (lo + (k + 1) * padding, hi + (k + 1) * padding) for name, (lo, hi) in rows_k.items()}
                  for k, rows_k in enumerate(series_splits))
    return pd.DataFrame(values, index=index, columns=frame.columns), moved


def _float_values(column: pd.Series) -> np.ndarray:
    """A column's values as a float array: its own float dtype without a copy, else float64."""
    if pd.api.types.is_float_dtype(column.dtype) and isinstance(column.dtype, np.dtype):
        return column.to_numpy()
    return column.to_numpy(dtype="float64")


def _series_array(frame: pd.DataFrame, columns: list, scaling: Scaling | None) -> np.ndarray:
    """`(rows, columns)` float32, filled column by column (no float64 copy of the whole frame); z-scored with `scaling`."""
    values = np.empty((len(frame), len(columns)), dtype="float32")
    if scaling is not None:
        stats = dict(zip([*scaling.feature_names, scaling.target_name],
                         zip([*scaling.feature_mean, scaling.target_mean], [*scaling.feature_std, scaling.target_std])))
    for k, column in enumerate(columns):
        raw = frame[column].to_numpy(dtype="float64" if scaling is not None else None)
        values[:, k] = (raw - stats[column][0]) / stats[column][1] if scaling is not None else raw
    return values


def _layout(frame: pd.DataFrame, series_column: str | None, spec: WindowSpec, target: str):
    """(the frame's rows stacked series by series, each series' split rows, the series' names, the missing rows
    before each series: `pad`'s)."""
    if series_column is None:  # one series: the same cut as by rows
        frame, bounds, ids = frame, [(0, len(frame))], (target,)
    else:
        frame, bounds, ids = _panel(frame, series_column, spec)
    if spec.split_steps is None:
        series_splits = tuple(split_by_dates(frame.index, bounds, spec.splits, spec.split_dates))
    else:
        series_splits, short = split_by_steps(bounds, *spec.split_steps)
        series_splits = tuple(series_splits)
        if short and len(short) < len(bounds):
            import warnings

            from keras_seq.errors import DataWarning

            named = ", ".join(f"{ids[k]} ({bounds[k][1] - bounds[k][0]} rows)" for k in short[:10])
            warnings.warn(f"{len(short)} of {len(bounds)} series have no more rows than `split_steps` "
                          f"{spec.split_steps[0]},{spec.split_steps[1]} holds out: they are left out of training and "
                          f"validation, and still forecast from what they have: {named}"
                          f"{' ...' if len(short) > 10 else ''}.", DataWarning, stacklevel=3)
    _check_split_lengths(frame, series_splits, spec)
    padding = padding_rows(spec)
    if padding:
        frame, series_splits = _padded(frame, series_splits, padding)
    return frame, series_splits, ids, padding


def _panel(frame: pd.DataFrame, column: str, spec: WindowSpec) -> tuple[pd.DataFrame, list, list]:
    """A long frame's series stacked in order: (the frame without `column`, each series' rows, their names).

    A series shorter than one window's span is left out, with a warning that names it.
    """
    import warnings

    from keras_seq.errors import DataWarning

    if column not in frame.columns:
        raise KerasSeqError(f"series column '{column}' not in the data. Available columns: {', '.join(map(str, frame.columns))}.")
    span = _target_offsets(spec.window, spec.horizon, spec.target_kind)[1]
    if spec.pad:  # a padded window needs its least observed values to read and the horizon's to forecast
        span = spec.horizon + spec.window - padding_rows(spec)
    names, lengths, codes = _series_blocks(frame[column])
    keep = lengths >= span
    if not keep.all():
        short = [f"{names[k]} ({lengths[k]} rows)" for k in np.flatnonzero(~keep)[:10]]
        hint = "" if spec.pad else " (`pad` keeps every series of more than `horizon` rows)"
        warnings.warn(f"{int((~keep).sum())} of {len(names)} series are shorter than one window's {span} steps and "
                      f"were left out{hint}: {', '.join(short)}.", DataWarning, stacklevel=3)
    if not keep.any():
        raise KerasSeqError(f"every series is shorter than one window's {span} steps (window={spec.window}, "
                            f"horizon={spec.horizon}). Use a smaller `window` or longer series.")
    if codes is None:  # already stacked series by series (a loaded panel): no reordering
        stacked = frame if keep.all() else frame[np.repeat(keep, lengths)]
    else:
        order = np.argsort(codes, kind="stable")
        stacked = frame.take(order[keep[codes[order]]])
    ends = np.cumsum(lengths[keep])
    bounds = [(int(end - n), int(end)) for end, n in zip(ends, lengths[keep])]
    return stacked.drop(columns=[column]), bounds, [names[k] for k in np.flatnonzero(keep)]


def _series_blocks(ids: pd.Series) -> tuple[list, np.ndarray, np.ndarray | None]:
    """(series names in order of first appearance, their row counts, each row's series number or None).

    The row numbers are None when every series is one run of consecutive
    rows (the panel is stacked already): found from the runs alone, without
    hashing every row (a categorical column is compared by its codes).
    """
    values = ids.array.codes if isinstance(ids.dtype, pd.CategoricalDtype) else ids.to_numpy()
    if len(values):
        starts = np.flatnonzero(np.concatenate([[True], values[1:] != values[:-1]]))
        runs = ids.iloc[starts].tolist()
        if len(set(runs)) == len(runs):
            return runs, np.diff(np.append(starts, len(values))), None
    codes, uniques = pd.factorize(ids, sort=False)  # interleaved rows: numbered by first appearance, O(rows)
    return list(uniques), np.bincount(codes, minlength=len(uniques)), codes


def _check_batch_and_columns(frame, features: list, target: str, batch_size) -> None:
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise KerasSeqError(f"`batch_size` must be an integer of at least 1. Received: batch_size={batch_size}")
    missing = [c for c in dict.fromkeys([*features, target]) if c not in frame.columns]
    if missing:
        raise KerasSeqError(f"column '{missing[0]}' not in the data. Available columns: {', '.join(map(str, frame.columns))}.")


def _check_split_lengths(frame: pd.DataFrame, series_splits: tuple, spec: WindowSpec) -> None:
    """Refuse a split that is asked for (a fraction above 0, or `split_dates`) but holds no window of any series."""
    asked = spec.splits if spec.split_steps is None else (1, *spec.split_steps)
    floor = padding_rows(spec)  # padded: a window may begin before its series' first row
    for name, fraction in zip(SPLIT_NAMES, asked):
        ranges = [_start_range(*rows[name], spec.window, spec.horizon, spec.target_kind, floor=rows["train"][0] - floor)
                  for rows in series_splits]
        if (fraction == 0 and spec.split_dates is None) or any(last >= first for first, last in ranges):
            continue
        if spec.split_steps is not None:
            raise KerasSeqError(
                f"no series has a window in the {name} split (`split_steps` {spec.split_steps[0]},"
                f"{spec.split_steps[1]}, window={spec.window}, horizon={spec.horizon}): each series needs "
                f"{_target_offsets(spec.window, spec.horizon, spec.target_kind)[1] - floor} rows before its split "
                "ends. Use "
                "a smaller `window`, fewer held-out steps, or longer series.")
        option = "`splits`" if spec.split_dates is None else "`split_dates`"
        if len(series_splits) > 1:
            given = _percent(spec.splits) if spec.split_dates is None else ",".join(spec.split_dates)
            raise KerasSeqError(f"no series has a window in the {name} split ({option} {given}, dates "
                                f"{label_of(frame.index.min())}..{label_of(frame.index.max())}). Use other {option}, "
                                "a smaller `window` or a longer date range.")
        how = (f"split {_percent(spec.splits)}" if spec.split_dates is None else
               f"cut at {spec.split_dates[0]} and {spec.split_dates[1]}")
        lo, hi = series_splits[0][name]
        span = _target_offsets(spec.window, spec.horizon, spec.target_kind)[1]
        raise KerasSeqError(
            f"the series is too short: {len(frame)} rows {how} leave the {name} split "
            f"{hi - lo} rows, not enough for one window of {span} steps (window={spec.window}, "
            f"horizon={spec.horizon}). Use a longer date range, a smaller `window` or other {option}."
        )


def _checked_scaling(frame, features: list, target: str, series_splits, spec: WindowSpec,
                     scaling: Scaling | None) -> Scaling:
    """`scaling` if it is for these columns, else the training split's (refused where there are no training rows)."""
    if scaling is None:
        no_fraction = spec.splits[0] == 0 and spec.split_steps is None
        if no_fraction or not any(rows["train"][1] > rows["train"][0] for rows in series_splits):
            raise KerasSeqError("the splits leave no training rows to fit the scaling on. Give a train fraction above "
                                "0, a first `split_dates` date after the data's first date, or `split_steps` that "
                                "leave each series rows to train on.")
        if len(series_splits) == 1:
            return fit_scaling(frame, features, target, series_splits[0]["train"])
        return _fit_panel_scaling(frame, features, target, [rows["train"] for rows in series_splits])
    if list(scaling.feature_names) != features or scaling.target_name != target:
        raise KerasSeqError(
            f"the scaling is for features {list(scaling.feature_names)} and target '{scaling.target_name}', "
            f"not features {features} and target '{target}'."
        )
    return scaling


def _pipelines(windows: Windows) -> dict:
    """A tf.data pipeline of `(inputs, targets)` batches per split, cut at `windows.starts(split)` (None if empty)."""
    from keras_seq.backend import import_tensorflow

    tf = import_tensorflow()
    series = tf.constant(windows.series)
    first_offset, span = _target_offsets(windows.window, windows.horizon, windows.target_kind)
    window = windows.window
    columns, target = windows.columns
    every = tf.constant(_every_step_offsets(window, windows.horizon))
    if windows.series_index is not None:
        firsts, index = tf.constant(windows.first_rows), tf.constant(windows.series_index.astype(np.int32))

    def to_pairs(starts):  # starts: (batch,)
        steps = tf.cast(starts, tf.int64)[:, None] + tf.range(span, dtype=tf.int64)[None, :]  # (batch, span)
        spans = tf.gather(series, steps)  # (batch, span, columns)
        inputs = tf.gather(spans[:, :window], list(columns), axis=2)
        if windows.series_index is not None:  # each window's series index beside it
            inputs = inputs, tf.gather(index, tf.searchsorted(firsts, tf.cast(starts, tf.int64), side="right") - 1)
        if windows.supervision == "every":
            return inputs, tf.gather(spans[:, :, target], every, axis=1)  # (batch, window, horizon)
        if windows.target_kind == "next":
            return inputs, spans[:, window:, target]  # (batch, horizon)
        return inputs, spans[:, first_offset:, target : target + 1]  # (batch, window, 1)

    datasets = {}
    for name in SPLIT_NAMES:
        starts = windows.starts(name)
        if not len(starts):
            datasets[name] = None
            continue
        starts = tf.constant(starts)  # one small tensor, never per-element
        if name == "train" and windows.shuffled:
            batches = _shuffled_batches(tf, starts, windows.batch_size, windows.shuffle_seed)
        else:
            batches = _batches(tf, starts, windows.batch_size)
        datasets[name] = batches.map(to_pairs, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(
            tf.data.AUTOTUNE
        )
    return datasets


def _batches(tf, starts, batch_size: int):
    """Consecutive slices of `starts`, `batch_size` at a time: no per-window tf.data elements."""
    count = int(starts.shape[0])
    n_batches = -(-count // batch_size)
    return tf.data.Dataset.range(n_batches).map(
        lambda i: starts[i * batch_size : tf.minimum((i + 1) * batch_size, count)]
    )


def _shuffled_batches(tf, starts, batch_size: int, seed: int | None):
    """Batches of a fresh permutation of `starts` every epoch (every new iterator).

    Each iteration draws one key from `Dataset.random` (re-randomized per
    iteration, seeded by `seed` and the global seed) and permutes the whole
    index tensor with it: a full shuffle that holds two index tensors, not a
    shuffle buffer of one tf.data element per window.
    """
    count = int(starts.shape[0])
    n_batches = -(-count // batch_size)

    def epoch(key):
        order = tf.random.experimental.stateless_shuffle(starts, seed=tf.stack([key, tf.constant(count, tf.int64)]))
        return _batches(tf, order, batch_size)

    keys = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1)
    return keys.flat_map(epoch).apply(tf.data.experimental.assert_cardinality(n_batches))


def _percent(splits) -> str:
    return "/".join(f"{100 * s:g}" for s in splits)
