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

from keras_seq.errors import KerasSeqError

TARGET_KINDS = ("next", "sequence")
SUPERVISIONS = ("last", "every")
SPLIT_NAMES = ("train", "validation", "test")


@dataclasses.dataclass(frozen=True)
class WindowSpec:
    """How a series is cut into windows.

    Args:
        window: int. Input steps per window. Defaults to `16`.
        horizon: int. Values forecast after each window (`next` only).
            Defaults to `1`.
        target_kind: str. `"next"` or `"sequence"`. Defaults to `"next"`.
        splits: tuple of 3 floats. Train, validation and test fractions of
            the rows, in time order; they sum to 1. Defaults to
            `(0.7, 0.15, 0.15)`.
        sequence_stride: int. Steps between the starts of consecutive
            windows. Defaults to `1`.
        supervision: str. What training scores for target kind `next`: the
            forecast from the window's last step (`"last"`), or from every
            step, each predicting the `horizon` values after it (`"every"`,
            teacher forcing, causal archs only). Evaluation and export read
            the last step either way. Defaults to `"last"`.
    """

    window: int = 16
    horizon: int = 1
    target_kind: str = "next"
    splits: tuple[float, float, float] = (0.7, 0.15, 0.15)
    sequence_stride: int = 1
    supervision: str = "last"

    def __post_init__(self):
        object.__setattr__(self, "splits", tuple(float(s) for s in self.splits))
        check_window_options(self.window, self.horizon, self.target_kind, self.splits, self.sequence_stride)
        if self.supervision not in SUPERVISIONS:
            raise KerasSeqError(
                f"`supervision` must be one of {', '.join(SUPERVISIONS)}. Received: supervision={self.supervision!r}"
            )
        if self.supervision == "every" and self.target_kind != "next":
            raise KerasSeqError(
                "supervision 'every' is for target kind 'next' (target kind 'sequence' already scores every step). "
                "Use --target-kind next with it."
            )


def check_window_options(window, horizon, target_kind, splits, sequence_stride) -> None:
    """Raise `KerasSeqError` for the first window option out of range."""
    if not isinstance(window, (int, np.integer)) or window < 2:
        raise KerasSeqError(f"`window` must be an integer of at least 2. Received: window={window}")
    if not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise KerasSeqError(f"`horizon` must be an integer of at least 1. Received: horizon={horizon}")
    if target_kind not in TARGET_KINDS:
        raise KerasSeqError(
            f"`target_kind` must be one of {', '.join(TARGET_KINDS)}. Received: target_kind={target_kind!r}"
        )
    if target_kind == "sequence" and horizon != 1:
        raise KerasSeqError(
            f"target kind 'sequence' predicts one step ahead at every step, so `horizon` must be 1. "
            f"Received: horizon={horizon}. Use target kind 'next' for longer horizons."
        )
    if not isinstance(sequence_stride, (int, np.integer)) or sequence_stride < 1:
        raise KerasSeqError(f"`sequence_stride` must be an integer of at least 1. Received: sequence_stride={sequence_stride}")
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
    shuffled. Positions below are row numbers of `dates`.

    The rows are a panel: one or more series stacked one after another
    (`series_ids`, and per series the rows of each split in `series_splits`),
    each in time order. Windows never cross from one series into the next,
    and every series is cut at the same dates (`split_by_dates`). A single
    series is a panel of one, and `split_rows` is its `series_splits[0]`.
    """

    train: object
    validation: object
    test: object
    scaling: Scaling
    dates: pd.DatetimeIndex
    target_values: np.ndarray  # (rows,) raw target column
    series_splits: tuple  # per series of the panel: split name -> (first row, end row), end exclusive
    window: int
    horizon: int
    target_kind: str
    sequence_stride: int
    normalized: bool
    shuffled: bool = False  # the train split is reshuffled every epoch
    series: np.ndarray | None = None  # (rows, features + 1) float32 the pipelines gather from: inputs, then target
    batch_size: int = 16
    shuffle_seed: int = 0  # with the epoch, fixes the order of the training windows (`epoch_starts`)
    series_ids: tuple = ()  # one name per series of the panel, in order (one series: its target's name)
    supervision: str = "last"  # "every": the pipelines yield (batch, window, horizon) targets, one row per step

    @property
    def split_rows(self) -> dict:
        """The first series' rows of each split: split name -> (first row, end row), end exclusive."""
        return self.series_splits[0]

    @property
    def n_features(self) -> int:
        return len(self.scaling.feature_names)

    def dataset(self, split: str):
        return {"train": self.train, "validation": self.validation, "test": self.test}[split]

    def starts(self, split: str) -> np.ndarray:
        """Row of each window's first input step: series by series, each in time order.

        A window's inputs may reach back into the series' earlier splits,
        never into the series before it.
        """
        ranges = [_start_range(*rows[split], self.window, self.horizon, self.target_kind, floor=rows["train"][0])
                  for rows in self.series_splits]
        return np.concatenate([np.arange(first, last + 1, self.sequence_stride, dtype=np.int64)
                               for first, last in ranges])

    def epoch_starts(self, split: str, epoch: int) -> np.ndarray:
        """`starts(split)` in the order of `epoch` (counted from 0): a permutation for a shuffled train split.

        The order is a function of `shuffle_seed` and `epoch` alone, so an
        epoch can be replayed on its own (a resumed run).
        """
        starts = self.starts(split)
        if split == "train" and self.shuffled:
            return np.random.default_rng([self.shuffle_seed, epoch]).permutation(starts)
        return starts

    def gather(self, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`(inputs, targets)` of the windows that begin at rows `starts`, as the pipelines yield them.

        Inputs are `(n, window, features)`; targets `(n, horizon)` for `next`
        and `(n, window, 1)` for `sequence`.
        """
        first_offset, span = _target_offsets(self.window, self.horizon, self.target_kind)
        spans = self.series[np.asarray(starts)[:, None] + np.arange(span)[None, :]]  # (n, span, features + 1)
        n_features = self.n_features
        inputs = spans[:, : self.window, :n_features]
        if self.supervision == "every":  # step t's targets are the horizon values after it
            return inputs, spans[:, _every_step_offsets(self.window, self.horizon), n_features]
        if self.target_kind == "next":
            return inputs, spans[:, self.window :, n_features]
        return inputs, spans[:, first_offset:, n_features:]

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
                "windows": int(len(self.starts(name))),
                "first": str(self.dates[lo].date()) if hi > lo else None,
                "last": str(self.dates[hi - 1].date()) if hi > lo else None,
            }
        return result


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


def split_by_dates(dates: pd.DatetimeIndex, bounds: list[tuple[int, int]], splits) -> list[dict]:
    """The rows of each split, per series, cut at the same dates for every series.

    `dates` holds the stacked rows of every series; series k is rows
    `bounds[k] = (first, end)`, in time order. The split fractions are taken
    of the union of all dates (as `split_rows` takes them of one series' rows),
    so the validation and test periods begin on the same date in every series:
    no series' test period is seen while another trains.

    Example:
    >>> dates = pd.DatetimeIndex(pd.date_range("2020-01-01", periods=10).append(pd.date_range("2020-01-05", periods=4)))
    >>> split_by_dates(dates, [(0, 10), (10, 14)], (0.6, 0.2, 0.2))[1]  # the 2nd series ends before the test period
    {'train': (10, 12), 'validation': (12, 14), 'test': (14, 14)}
    """
    union = dates.unique().sort_values()
    cuts = split_rows(len(union), splits)
    starts = [union[cuts[name][0]] if cuts[name][0] < len(union) else None for name in ("validation", "test")]
    result = []
    for first, end in bounds:
        own = dates[first:end]
        lo_validation, lo_test = (first + int(own.searchsorted(day) if day is not None else len(own)) for day in starts)
        result.append({"train": (first, lo_validation), "validation": (lo_validation, lo_test), "test": (lo_test, end)})
    return result


def fit_scaling(frame: pd.DataFrame, features: list[str], target: str, rows: tuple[int, int]) -> Scaling:
    """Mean and standard deviation of each column over `rows` (the training split)."""
    train = frame.iloc[rows[0] : rows[1]]
    stats = {}
    for column in dict.fromkeys([*features, target]):
        values = train[column].to_numpy(dtype="float64")
        mean, std = float(values.mean()), float(values.std())
        if not np.isfinite(std) or std <= 1e-12 * max(1.0, abs(mean)):
            raise KerasSeqError(
                f"column '{column}' is constant over the training split ({train.index[0].date()}.."
                f"{train.index[-1].date()}, value {mean:g}), so it cannot be standardized. "
                "Choose a date range where it varies, or leave it out of --features."
            )
        stats[column] = (mean, std)
    return Scaling(
        feature_names=tuple(features),
        feature_mean=tuple(stats[f][0] for f in features),
        feature_std=tuple(stats[f][1] for f in features),
        target_name=target,
        target_mean=stats[target][0],
        target_std=stats[target][1],
    )


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
            `target_kind`, `splits`, `sequence_stride`, `supervision`), its
            defaults too; and `series_column`, a long frame's column naming
            each row's series: a panel, every series cut at the same dates,
            a series too short for one window left out with a warning.

    Returns:
        A `Windows` (see the module docstring for an example).

    Raises:
        KerasSeqError: an option is out of range, or a split is too short for
            a single window.
    """
    series_column = options.pop("series_column", None)
    spec = _window_spec(options)
    features = list(features) if features else [target]
    frame, series_splits, ids = _layout(frame, series_column, spec, target)
    _check_batch_and_columns(frame, features, target, batch_size)
    train = _training_rows(frame, series_splits)
    scaling = _checked_scaling(train, features, target, {"train": (0, len(train))}, spec.splits, scaling)
    values = frame[[*features, target]].to_numpy(dtype="float64", copy=True)  # (rows, features + 1)
    if normalize:  # in place: a long series is copied as few times as possible
        values -= np.array([*scaling.feature_mean, scaling.target_mean])
        values /= np.array([*scaling.feature_std, scaling.target_std])
    windows = Windows(
        train=None, validation=None, test=None, scaling=scaling, dates=frame.index,
        target_values=frame[target].to_numpy(dtype="float64"), series_splits=series_splits, series_ids=tuple(ids),
        window=spec.window, horizon=spec.horizon, target_kind=spec.target_kind, sequence_stride=spec.sequence_stride,
        normalized=normalize, shuffled=bool(shuffle),
        series=values.astype("float32"),  # (rows, features + 1), what the pipelines and `Windows.gather` cut
        batch_size=int(batch_size), supervision=spec.supervision,
        shuffle_seed=int(seed) % 2**32 if seed is not None else int(np.random.SeedSequence().entropy % 2**32),
    )
    return dataclasses.replace(windows, **_pipelines(windows, spec.splits, seed))


def _layout(frame: pd.DataFrame, series_column: str | None, spec: WindowSpec, target: str):
    """(the frame's rows stacked series by series, each series' split rows, the series' names)."""
    if series_column is None:
        (rows,) = split_by_dates(frame.index, [(0, len(frame))], spec.splits)  # one series: the same cut as by rows
        _check_split_lengths(len(frame), rows, spec)
        return frame, (rows,), (target,)
    frame, bounds, ids = _panel(frame, series_column, spec)
    return frame, tuple(split_by_dates(frame.index, bounds, spec.splits)), ids


def _training_rows(frame: pd.DataFrame, series_splits) -> pd.DataFrame:
    """Every series' training rows: for one series a slice of `frame`, not a copy of its rows."""
    parts = [frame.iloc[slice(*rows["train"])] for rows in series_splits]
    return parts[0] if len(parts) == 1 else pd.concat(parts)


def _panel(frame: pd.DataFrame, column: str, spec: WindowSpec) -> tuple[pd.DataFrame, list, list]:
    """A long frame's series stacked in order: (the frame without `column`, each series' rows, their names).

    A series shorter than one window's span is left out, with a warning that names it.
    """
    import warnings

    from keras_seq.errors import DataWarning

    if column not in frame.columns:
        raise KerasSeqError(f"series column '{column}' not in the data. Available columns: {', '.join(map(str, frame.columns))}.")
    span = _target_offsets(spec.window, spec.horizon, spec.target_kind)[1]
    ids = frame[column].to_numpy()
    names = list(dict.fromkeys(ids))
    lengths = {name: int((ids == name).sum()) for name in names}
    short = [name for name in names if lengths[name] < span]
    kept = [name for name in names if name not in short]
    if short:
        warnings.warn(f"{len(short)} of {len(names)} series are shorter than one window's {span} steps and were left "
                      f"out: {', '.join(f'{n} ({lengths[n]} rows)' for n in short[:10])}.", DataWarning, stacklevel=3)
    if not kept:
        raise KerasSeqError(f"every series is shorter than one window's {span} steps (window={spec.window}, "
                            f"horizon={spec.horizon}). Use a smaller --window or longer series.")
    parts = [frame[ids == name].drop(columns=[column]) for name in kept]
    ends = np.cumsum([len(part) for part in parts])
    return pd.concat(parts), [(int(end - len(part)), int(end)) for end, part in zip(ends, parts)], kept


def _check_batch_and_columns(frame, features: list, target: str, batch_size) -> None:
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise KerasSeqError(f"`batch_size` must be an integer of at least 1. Received: batch_size={batch_size}")
    missing = [c for c in dict.fromkeys([*features, target]) if c not in frame.columns]
    if missing:
        raise KerasSeqError(f"column '{missing[0]}' not in the data. Available columns: {', '.join(map(str, frame.columns))}.")


def _window_spec(options: dict) -> WindowSpec:
    """`make_windows`' window options as a (checked) `WindowSpec`."""
    unknown = sorted(set(options) - {f.name for f in dataclasses.fields(WindowSpec)})
    if unknown:
        raise KerasSeqError(
            f"unknown window option '{unknown[0]}'. Expected some of: "
            f"{', '.join(f.name for f in dataclasses.fields(WindowSpec))}."
        )
    return WindowSpec(**options)


def _check_split_lengths(n_rows: int, rows: dict, spec: WindowSpec) -> None:
    """Refuse a split with rows (a fraction above 0) but too few of them for one window."""
    for name, fraction in zip(SPLIT_NAMES, spec.splits):
        lo, hi = rows[name]
        first, last = _start_range(lo, hi, spec.window, spec.horizon, spec.target_kind)
        if fraction > 0 and last < first:
            span = _target_offsets(spec.window, spec.horizon, spec.target_kind)[1]
            raise KerasSeqError(
                f"the series is too short: {n_rows} rows split {_percent(spec.splits)} leave the {name} split "
                f"{hi - lo} rows, not enough for one window of {span} steps (window={spec.window}, "
                f"horizon={spec.horizon}). Use a longer date range, a smaller --window or other --splits."
            )


def _checked_scaling(frame, features: list, target: str, rows: dict, splits, scaling: Scaling | None) -> Scaling:
    """`scaling` if it is for these columns, else the training split's (refused where there are no training rows)."""
    if scaling is None:
        if splits[0] == 0:
            raise KerasSeqError("`splits` leave no training rows to fit the scaling on. Give a train fraction above 0.")
        return fit_scaling(frame, features, target, rows["train"])
    if list(scaling.feature_names) != features or scaling.target_name != target:
        raise KerasSeqError(
            f"the scaling is for features {list(scaling.feature_names)} and target '{scaling.target_name}', "
            f"not features {features} and target '{target}'."
        )
    return scaling


def _pipelines(windows: Windows, splits, seed: int | None) -> dict:
    """A tf.data pipeline of `(inputs, targets)` batches per split, cut at `windows.starts(split)` (None if empty)."""
    from keras_seq.backend import import_tensorflow

    tf = import_tensorflow()
    series = tf.constant(windows.series)
    first_offset, span = _target_offsets(windows.window, windows.horizon, windows.target_kind)
    n_features, window = windows.n_features, windows.window
    every = tf.constant(_every_step_offsets(window, windows.horizon))

    def to_pairs(starts):  # starts: (batch,)
        steps = starts[:, None] + tf.range(span, dtype=tf.int64)[None, :]  # (batch, span)
        spans = tf.gather(series, steps)  # (batch, span, features + 1)
        inputs = spans[:, :window, :n_features]
        if windows.supervision == "every":
            return inputs, tf.gather(spans[:, :, n_features], every, axis=1)  # (batch, window, horizon)
        if windows.target_kind == "next":
            return inputs, spans[:, window:, n_features]  # (batch, horizon)
        return inputs, spans[:, first_offset:, n_features:]  # (batch, window, 1)

    datasets = {}
    for name, fraction in zip(SPLIT_NAMES, splits):
        starts = windows.starts(name)
        if fraction == 0 or not len(starts):
            datasets[name] = None
            continue
        starts = tf.constant(starts, dtype=tf.int64)  # one small tensor, never per-element
        if name == "train" and windows.shuffled:
            batches = _shuffled_batches(tf, starts, windows.batch_size, seed)
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
