"""Load a time series from the embedded data, a CSV file or an online source.

Every loader returns a DataFrame with an ascending, duplicate-free
DatetimeIndex named `Date` and float64 columns. Sources are named by a string:

- `dji`: ^DJI daily Open, High, Low, Close, Volume shipped with keras-seq
  (see `DJI_SOURCE.md` beside this file).
- `stooq:SYMBOL`, for example `stooq:^DJI`: stooq's daily CSV download.
- `fred:SERIES`, for example `fred:DJIA`: FRED, through pandas-datareader.
- anything else: a path to a CSV file with a date column.

Online sources are downloaded once, in full, and cached on disk; later loads
read the cache (pass `refresh=True` to download again; `data.download`).
A CSV file is read and cleaned by `data.reading`; calendar inputs are made by
`data.calendar`. This module holds `DataSpec`, the registry of sources, and
the long and wide tables of many series built from what they read.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from keras_seq.config.options import get_option, options, settle, spec_of
from keras_seq.data.calendar import CALENDAR, add_calendar, calendar_columns, lead_columns
from keras_seq.data.download import load_fred, load_stooq
from keras_seq.data.reading import (checked_columns, column_list, excerpt, is_steps, label_of, read_csv_frame,
                                    sorted_unique, to_float_if_numeric)
from keras_seq.errors import DataWarning, KerasSeqError

EMBEDDED_DJI = Path(__file__).with_name("dji_daily.csv.gz")
# The tutorial's range: 1258 trading days.
MASKED = "mask"  # the loaders' `fill` that keeps missing values (NaN): `DataSpec.missing` mask
DJI_DEFAULT_START = "2018-02-13"
DJI_DEFAULT_END = "2023-02-10"
# The file's last row was captured during the trading day: never a close.
DJI_INTRADAY_DATE = "2023-02-13"

WIDE_SERIES, WIDE_VALUE = "series", "value"
MAX_NAME = 200  # characters in a column or series name
MAX_NAMES = 10_000  # columns or series named in one option
@spec_of("data")
class DataSpec:
    """Which series to load and which of its columns the model uses (the options are `keras_seq.config.options`'
    `data` section)."""

    def __post_init__(self):
        self._check_name_sizes()
        if self.fill is not None and self.missing == "mask":
            raise KerasSeqError("`fill` ffill fills missing values and `missing` mask trains through them: give one.")
        self._check_future()
        self._check_targets()
        if self.calendar is not None:
            names = tuple(self.calendar)
            unknown = [n for n in names if n not in CALENDAR]
            if unknown or not names or len(set(names)) != len(names):
                raise KerasSeqError(f"`calendar` names calendar features once each, of {', '.join(CALENDAR)}. "
                                    f"Received: calendar={list(names)}")
            settle(self, calendar=names)
            made = [f for f in self.features or () if f in calendar_columns(names)]
            if made:
                raise KerasSeqError(f"`features` names '{made[0]}', a column `calendar` makes from the dates: "
                                    "leave it out of `features`.")
        if isinstance(self.series, (list, tuple)):
            names = tuple(str(n) for n in self.series)
            if not names or len(set(names)) != len(names):
                raise KerasSeqError(f"`series` must name each series once. Received: series={list(names)}")
            settle(self, series=names[0] if len(names) == 1 else names)
        if self.series is None and self.series_column is not None and self.targets is None:
            settle(self, series="all")  # a long table's column given: every series, as `series` all reads them
        if self.series is not None and self.series_column is None:
            raise KerasSeqError(f"`series` ({self.series!r}) needs `series_column`: the column of the long table that "
                                "names each row's series. Give `series_column`.")
        if self.features is not None:
            features = tuple(self.features)
            if not features:
                raise KerasSeqError("`features` must name at least one column. Received: features=()")
            import collections

            duplicates = sorted(f for f, n in collections.Counter(features).items() if n > 1)
            if duplicates:
                raise KerasSeqError(
                    f"`features` names a column twice: {', '.join(duplicates)}. Name each column once."
                )
            settle(self, features=features)

    def _check_name_sizes(self) -> None:
        """Refuse a column or series name longer than `MAX_NAME` characters, or more than `MAX_NAMES` of them: every
        name is drawn, written and quoted later, and a recipe or run folder may hold any."""
        for key in (option.name for option in options("data") if option.names):
            value = getattr(self, key)
            names = [value] if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) else []
            if len(names) > MAX_NAMES:
                raise KerasSeqError(f"`{key}` names {len(names):,} columns or series; keras-seq takes at most "
                                    f"{MAX_NAMES:,}.")
            long = next((str(n) for n in names if len(str(n)) > MAX_NAME), None)
            if long is not None:
                raise KerasSeqError(f"`{key}` names one of {len(long):,} characters ({long[:40]!r}...); keras-seq takes "
                                    f"names of at most {MAX_NAME} characters.")

    def _check_future(self) -> None:
        if self.future_features is None:
            return
        names = tuple(self.future_features)
        if not names or len(set(names)) != len(names):
            raise KerasSeqError(f"`future_features` must name each column once. Received: {list(names)}")
        if self.target in names:
            raise KerasSeqError(f"`future_features` names the target '{self.target}': its future is what is forecast, "
                                "so it cannot be an input known in advance. Leave it out.")
        settle(self, future_features=names)

    @property
    def kept(self) -> str | None:
        """What the loaders do with a missing value: `fill`'s forward fill, keep it (`MASKED`: `missing` mask), or
        refuse it (None)."""
        return self.fill or (MASKED if self.missing == "mask" else None)

    def _check_targets(self) -> None:
        """`targets`: a tuple of names, or "all"; one name becomes `target` (unless `target` is already the wide
        table's value column, as in a wide run's config: a panel of one)."""
        targets = self.targets
        if targets is None:
            return
        if isinstance(targets, str) and targets != "all":
            targets = tuple(name.strip() for name in targets.split(","))
        if isinstance(targets, (list, tuple)):
            targets = tuple(str(name) for name in targets)
            if not targets or len(set(targets)) != len(targets) or not all(targets):
                raise KerasSeqError(f"`targets` must name each column once. Received: targets={list(targets)}")
        if self.series_column is not None:
            raise KerasSeqError("`targets` reads the series of a wide table (one column each) and `series_column` those "
                                "of a long one (a column of names): give one of them.")
        if self.target not in (type(self).target, WIDE_VALUE):  # the default, or a wide run's recorded value
            raise KerasSeqError(f"`targets` names the columns to forecast, so `target` ({self.target!r}) has no "
                                "place beside it: leave `target` out.")
        if isinstance(targets, tuple) and len(targets) == 1 and self.target != WIDE_VALUE:  # 'value': a wide run's
            settle(self, target=targets[0], targets=None)
            return
        settle(self, target=WIDE_VALUE, targets=targets)

    @property
    def panel_column(self) -> str | None:
        """The series column of a spec that reads several series (None for one series)."""
        if self.targets is not None:
            return WIDE_SERIES
        return self.series_column if reads_several(self.series) else None

    @property
    def series_name(self) -> str:
        """What the series of a one-series spec is called: its name in a long table, else its target's."""
        return str(self.series) if self.series_column and isinstance(self.series, str) else self.target

    @property
    def feature_columns(self) -> tuple[str, ...]:
        """Input columns in order (the target alone unless `features` is set), then the calendar's."""
        return (*(self.features or (self.target,)), *calendar_columns(self.calendar))

    def input_columns(self, horizon: int) -> tuple[str, ...]:
        """The model's input columns for a `horizon`: `feature_columns`, then the future features' leads."""
        return (*self.feature_columns, *lead_columns(self.future_features, horizon))

    @property
    def columns(self) -> list[str]:
        """Every column read from the data: the features, the target and the future features (not the calendar's,
        made from dates)."""
        return list(dict.fromkeys([*(self.features or (self.target,)), self.target, *(self.future_features or ())]))

    def load(self, refresh: bool = False, quote: bool = True) -> pd.DataFrame:
        """Load this spec's series: its feature and target columns only.

        `quote=False` when the source was read from a run folder rather than
        given on the command line: errors then say what failed but quote
        nothing of the file (a crafted config.json must not turn keras-seq
        into a reader of other files).
        """
        def read():
            if self.targets is not None:
                features = [f for f in self.features or () if f != WIDE_VALUE]  # 'value' is the series itself
                return load_wide_table(self.source, self.start, self.end, features=features,
                                       targets=self.targets, date_column=self.date_column, fill=self.kept,
                                       cache_dir=self.cache_dir, refresh=refresh)
            if self.series_column is not None:
                return load_long_table(self.source, self.start, self.end, columns=self.columns,
                                       date_column=self.date_column, fill=self.kept, series_column=self.series_column,
                                       series=self.series)
            return load_series(self.source, self.start, self.end, columns=self.columns, date_column=self.date_column,
                               fill=self.kept, cache_dir=self.cache_dir, refresh=refresh)

        path = csv_path(self.source)
        if quote and path is not None and path.is_file():
            self._settle_target(path)
        frame = read() if quote or path is None or not path.is_file() else _unquoted(self.source, read)
        return add_calendar(frame, self.calendar) if self.calendar else frame

    def _settle_target(self, path) -> None:
        """A CSV of dates and one numeric column needs no `target`: where `target` is left at its default and the
        file has no such column, that column becomes the target (a file the reader refuses is left to it)."""
        if self.target != type(self).target or self.features or self.targets or self.series_column:
            return
        try:
            head = pd.read_csv(path, nrows=200)
        except Exception:  # noqa: BLE001 - the reader says what is wrong with the file
            return
        numeric = [c for c in head.select_dtypes("number").columns if c != self.date_column]
        if self.target not in head.columns and len(numeric) == 1:
            settle(self, target=str(numeric[0]))


def reads_several(series) -> bool:
    """Whether a `series` selection (None, a name, names or "all") reads several series: a panel."""
    return series == "all" or isinstance(series, (list, tuple))


def load_series(source: str = "dji", start: str | None = None, end: str | None = None, *,
                columns: list[str] | None = None, date_column: str | None = None, fill: str | None = None,
                cache_dir: str | os.PathLike | None = None, refresh: bool = False) -> pd.DataFrame:
    """Load a time series as a DataFrame indexed by ascending dates.

    For `dji`, leaving both `start` and `end` out selects the tutorial's
    range, 2018-02-13..2023-02-10 (1258 rows); giving one leaves the other
    end open. Its last row (2023-02-13, captured during the trading day) is
    never used.

    Args:
        source: str. `dji`, `stooq:SYMBOL`, `fred:SERIES` or a CSV path.
            Defaults to `"dji"`.
        start: str or None. First date kept, inclusive. Defaults to `None`.
        end: str or None. Last date kept, inclusive. Defaults to `None`.
        columns: list of str or None. Columns to return; each is checked to
            be numeric and free of missing values. Defaults to every column,
            unchecked.
        date_column: str or None. The CSV's date column. Defaults to the
            first column named like a date, else the first column.
        fill: str or None. `"ffill"` forward-fills missing values in
            `columns`. Defaults to `None` (missing values are an error).
        cache_dir: path or None. Cache folder for online sources.
        refresh: bool. Download online sources again. Defaults to `False`.

    Returns:
        A DataFrame with a DatetimeIndex named `Date`, sorted ascending,
        without duplicate dates.

    Raises:
        KerasSeqError: the source cannot be read, a column is unknown, not
            numeric or has missing values, or the date range is empty.

    Example:
    >>> frame = load_series("dji")
    >>> frame.shape, str(frame.index[0].date()), str(frame.index[-1].date())
    ((1258, 5), '2018-02-13', '2023-02-10')
    """
    if fill != MASKED:
        get_option("fill").checked(fill)
    start_ts, end_ts = _parse_range(start, end)
    reader = source_for(source)
    if start_ts is None and end_ts is None and getattr(reader, "default_range", None):
        start_ts, end_ts = (pd.Timestamp(day) for day in reader.default_range)
    frame = reader.read(source, date_column=date_column, cache_dir=cache_dir, refresh=refresh)
    return _finish(sorted_unique(frame, source), start_ts, end_ts, source, columns, fill)


# === Sources: each recognises its names and reads them ===


class EmbeddedDJI:
    """`dji`: the ^DJI daily prices shipped inside keras-seq (its tutorial's range unless a date is given)."""

    name, local = "dji", False
    default_range = (DJI_DEFAULT_START, DJI_DEFAULT_END)

    def recognises(self, source: str) -> bool:
        return source == "dji"

    def read(self, source: str, **options) -> pd.DataFrame:
        frame = read_csv_frame(EMBEDDED_DJI, "dji", date_column="Date")
        return frame[frame.index <= pd.Timestamp(DJI_INTRADAY_DATE) - pd.Timedelta(days=1)]  # the last row is intraday


class Download:
    """`NAME:SYMBOL`: a series downloaded once from an online source (`load(symbol, cache_dir, refresh)`) and
    cached."""

    local = False

    def __init__(self, name: str, load):
        self.name, self.load = name, load

    def recognises(self, source: str) -> bool:
        return source.startswith(f"{self.name}:")

    def read(self, source: str, *, cache_dir=None, refresh=False, **options) -> pd.DataFrame:
        return self.load(_symbol(source), cache_dir, refresh)


class CsvFile:
    """Any other name: a local CSV file, its date column given or found."""

    name, local = "csv", True

    def recognises(self, source: str) -> bool:
        return True

    def read(self, source: str, *, date_column=None, **options) -> pd.DataFrame:
        path = Path(source).expanduser()
        if not path.is_file():
            what = "is a folder, not a file" if path.is_dir() else "not found"
            raise KerasSeqError(f"data file {what}: {source}. Expected a CSV file, 'dji' (embedded), 'stooq:SYMBOL' "
                                "or 'fred:SERIES' (or a source registered with register_source).")
        return read_csv_frame(path, source, date_column)


_SOURCES: list = []  # the built-in ones are registered at the end of this module
_FALLBACK = CsvFile()


def register_source(source) -> None:
    """Make a data source available: an object with `name`, `local` (whether it reads a local file, which
    keras-seq then never writes over), `recognises(source) -> bool` and `read(source, *, date_column,
    cache_dir, refresh) -> DataFrame` (rows indexed by their dates, in any order). The sources registered
    last are asked first; a name none recognises is a CSV file."""
    _SOURCES[:] = [s for s in _SOURCES if s.name != source.name] + [source]


def source_for(source: str):
    """The registered source that reads `source` (the CSV reader when no other recognises it)."""
    return next((reader for reader in reversed(_SOURCES) if reader.recognises(source)), _FALLBACK)


def load_long_table(source: str, start: str | None = None, end: str | None = None, *, columns: list[str] | None = None,
                    date_column: str | None = None, fill: str | None = None, series_column: str,
                    series: str | tuple[str, ...] | None) -> pd.DataFrame:
    """Load series of a long CSV table (a date, a series column and value columns).

    One name in `series` returns that series as `load_series` would a file of
    its own. Several names, or `"all"`, return one long frame: the series
    column first, each series' rows in date order, one series after another
    (a series with no rows in the date range is left out, with a warning).

    Raises:
        KerasSeqError: the source is not a CSV file, the column is missing, or
            a series is not in it (the error lists them).
    """
    path = csv_path(source)
    if path is None:
        raise KerasSeqError(f"`series_column` reads a long table from a CSV file, and {source} is not one. "
                            "Give `source` path.csv, or leave `series_column` out.")
    if not path.is_file():
        return load_series(source, start, end, columns=columns)  # the missing-file error, worded as for any file
    start_ts, end_ts = _parse_range(start, end)
    raw = read_csv_frame(path, source, date_column)
    start_ts, end_ts = bounds_of(raw.index, start_ts, end_ts, source)  # steps or dates, as the file's rows are
    several = reads_several(series)
    quick = _quick_panel(raw, series_column, series, start_ts, end_ts, columns) if several else None
    if quick is not None:  # a clean table of many series: checked in a few passes, not series by series
        return quick
    read = long_table_series(raw, source, series_column, series)  # an unknown column or series: its error
    if not several:
        return _finish(read, start_ts, end_ts, source, columns, fill)
    return _finish_panel(read, start_ts, end_ts, source, columns, fill, series_column)


def load_wide_table(source: str, start: str | None = None, end: str | None = None, *, features=(), targets,
                    fill: str | None = None, **read) -> pd.DataFrame:
    """Load several columns of a wide table (one series per column) as one long frame.

    The frame has a `series` column (the column's name), then the features
    and a `value` column, each series' rows in date order, one series after
    another: what `load_long_table` returns for a long table. Each series
    runs from its first to its last value, so series may start and end on
    different dates; a missing value inside that span is an error (or
    forward-filled with `fill`), and a column with no value in the date
    range is left out with a warning.

    Args:
        targets: tuple of str or `"all"`: the columns to read, or every
            numeric column that is not among `features`.
        **read: `load_series`' `date_column`, `cache_dir` and `refresh`.

    Raises:
        KerasSeqError: a column is unknown or not numeric, or no series has a
            value in the date range.
    """
    frame = load_series(source, start, end, **read)
    features = list(features)
    clash = [name for name in (WIDE_SERIES, WIDE_VALUE) if name in frame.columns]
    if clash:
        raise KerasSeqError(f"{source} has a column '{clash[0]}', and `targets` reads a wide table's series as "
                            f"columns '{WIDE_SERIES}' and '{WIDE_VALUE}'. Rename that column.")
    unknown = [c for c in features if c not in frame.columns]
    if unknown:
        raise KerasSeqError(f"column '{unknown[0]}' not found in {source}. Available columns: {column_list(frame.columns)}.")
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c]) and c not in features]
    if targets == "all":
        chosen = numeric
        if not chosen:
            raise KerasSeqError(f"`targets` all found no numeric column in {source} besides the features. "
                                f"Available columns: {column_list(frame.columns)}.")
    else:
        chosen = list(targets)
        missing = [c for c in chosen if c not in frame.columns]
        if missing:
            raise KerasSeqError(f"`targets` names column {excerpt(missing[0])}, which is not in {source}. Numeric "
                                f"columns: {column_list(numeric)}; give several with `targets` A,B or every one "
                                "with `targets` all.")
    parts = []
    for name in chosen:
        values = pd.to_numeric(frame[name], errors="coerce")
        first, last = values.first_valid_index(), values.last_valid_index()
        rows = frame.iloc[:0] if first is None else frame.loc[first:last]
        parts.append((name, rows[[*features, name]].rename(columns={name: WIDE_VALUE})))
    return _finish_panel(parts, None, None, source, [*features, WIDE_VALUE], fill, WIDE_SERIES)


def _finish(frame, start_ts, end_ts, source, columns, fill) -> pd.DataFrame:
    frame = _select_range(frame, start_ts, end_ts, source)
    if columns is None:
        return frame.apply(to_float_if_numeric)
    return checked_columns(frame, list(columns), fill, source)


def _unquoted(source: str, read):
    """`read()`, with its errors and data warnings replaced by lines that quote nothing of the file."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            frame = read()
        except KerasSeqError:
            raise KerasSeqError(
                f"the data file {source} named in the run's config.json cannot be read as the run's data. keras-seq "
                "quotes nothing from a file named by a run folder; give it with `source` to see what is wrong."
            ) from None
    repaired = [w for w in caught if issubclass(w.category, DataWarning)]
    for warning in caught:
        if warning not in repaired:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    if repaired:
        warnings.warn(f"the data file {source} named in the run's config.json was repaired while reading "
                      f"({len(repaired)} warnings); give it with `source` to see them.", DataWarning, stacklevel=3)
    return frame


def csv_path(source: str | None) -> Path | None:
    """The local file a source names (`~` expanded), or None for `dji`, `stooq:...` and `fred:...`.

    Example:
    >>> csv_path("dji"), csv_path("stooq:^DJI"), csv_path("prices.csv")
    (None, None, PosixPath('prices.csv'))
    """
    if source is None or not source_for(source).local:
        return None
    return Path(source).expanduser()


def frame_sha256(frame: pd.DataFrame) -> str:
    """sha256 of a loaded series: its dates, column names and values, exactly.

    Two runs that report the same hash trained on the same numbers.
    """
    import hashlib

    text = frame.to_csv(date_format="%Y-%m-%d", float_format="%.17g", lineterminator="\n")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _symbol(source: str) -> str:
    kind, _, symbol = source.partition(":")
    if not symbol.strip():
        raise KerasSeqError(f"data source '{source}' names no series. Expected e.g. '{kind}:{'^DJI' if kind == 'stooq' else 'DJIA'}'.")
    return symbol.strip()


def _parse_range(start: str | None, end: str | None) -> tuple:
    """`start` and `end` as dates (`pd.Timestamp`), or as steps (int) where written as whole numbers; a whole
    number bounds dated rows as a year (`bounds_of` decides once the rows are read)."""
    bounds = []
    for name, value in (("start", start), ("end", end)):
        if value is None or value == "":
            bounds.append(None)
            continue
        text = str(value).strip()
        if text.lstrip("-").isdigit() and len(text) <= 18:
            bounds.append(int(text))
            continue
        try:
            bounds.append(pd.Timestamp(value))
        except (ValueError, TypeError):
            raise KerasSeqError(f"`{name}` is not a date. Received: {name}={value!r}. Expected YYYY-MM-DD "
                                "(or a step number, for data numbered by steps).") from None
    if None not in bounds and type(bounds[0]) is type(bounds[1]) and bounds[0] > bounds[1]:
        raise KerasSeqError(f"`start` is after `end`. Received: start={start}, end={end}. Give start <= end.")
    return bounds[0], bounds[1]


def bounds_of(index, start, end, source: str) -> tuple:
    """`_parse_range`'s bounds for rows indexed by `index`: steps bound steps; dates and years bound dates."""
    if is_steps(index):
        dated = next((b for b in (start, end) if isinstance(b, pd.Timestamp)), None)
        if dated is not None:
            raise KerasSeqError(f"{source} is numbered by steps, not dates, and `start`/`end` {dated.date()} is a "
                                "date. Give step numbers (e.g. `start` 10).")
        return start, end
    bounds = [pd.Timestamp(str(b)) if isinstance(b, int) else b for b in (start, end)]
    if None not in bounds and bounds[0] > bounds[1]:
        raise KerasSeqError(f"`start` is after `end`. Received: start={start}, end={end}. Give start <= end.")
    return bounds[0], bounds[1]


def _select_range(frame: pd.DataFrame, start, end, source: str) -> pd.DataFrame:
    start, end = bounds_of(frame.index, start, end, source)
    selected = frame.loc[start:end]
    if len(selected.index) == 0:
        covers = f"{label_of(frame.index[0])}..{label_of(frame.index[-1])}" if len(frame) else "no rows"
        asked = f"{label_of(start) if start is not None else '...'}..{label_of(end) if end is not None else '...'}"
        raise KerasSeqError(f"no rows of {source} in the range {asked}; the data covers {covers}. Choose `start`/`end` inside it.")
    return selected


def long_table_series(frame: pd.DataFrame, name: str, column: str, wanted):
    """A long table's wanted series (`_series_parts`), each sorted and without repeats: the one series' rows for a
    single name, else a list of `(name, rows)`."""
    parts = _series_parts(frame, name, column, wanted)
    if not reads_several(wanted):
        return sorted_unique(parts[0][1], name)
    return [(sid, sorted_unique(part, f"{name} (series {sid})")) for sid, part in parts]


def _quick_panel(frame: pd.DataFrame, column: str, wanted, start_ts, end_ts, columns) -> pd.DataFrame | None:
    """What `_finish_panel` returns for a clean long table, in a few passes over all rows rather than a few pandas
    calls per series; None when anything needs the per-series path (and its warnings or errors): an unknown series
    or column, rows out of date order or repeated, a date in the future, a missing or non-numeric value, a series
    with no rows in the range.
    """
    if columns is None or column not in frame.columns or any(c not in frame.columns or c == column for c in columns):
        return None
    ids = frame[column].astype(str).str.strip().to_numpy()
    names = sorted(set(ids))
    chosen = names if wanted == "all" else [wanted] if isinstance(wanted, str) else list(wanted)
    if not chosen or not set(chosen) <= set(names):
        return None
    today = pd.Timestamp.now(tz="UTC").tz_localize(None).normalize()
    ranks = pd.Categorical(ids, categories=chosen).codes.astype(np.int64)  # -1: a series not chosen
    order = np.flatnonzero(ranks >= 0)
    order = order[np.argsort(ranks[order], kind="stable")]  # series by series, each in the file's order
    dates, ranks = frame.index[order], ranks[order]
    same = ranks[1:] == ranks[:-1]
    if is_steps(dates):  # a series' steps out of order, repeated or with a gap: the careful path names it
        stamps = np.asarray(dates, dtype="int64")
        if (same & (stamps[1:] != stamps[:-1] + 1)).any():
            return None
    else:
        stamps = dates.asi8
        if (dates > today + pd.Timedelta(days=1)).any() or (same & (stamps[1:] <= stamps[:-1])).any():
            return None  # a date in the future, or a series out of order or with a date twice: the careful path
    inside = np.ones(len(order), dtype=bool) if start_ts is None else dates >= start_ts
    if end_ts is not None:
        inside &= dates <= end_ts
    order, ranks = order[inside], ranks[inside]
    if len(np.unique(ranks)) != len(chosen):
        return None  # a series without rows in the range: named in a warning by the per-series path
    rows = frame.iloc[order]
    if not all(pd.api.types.is_numeric_dtype(rows[c]) and not pd.api.types.is_bool_dtype(rows[c]) for c in columns):
        return None
    values = rows[list(columns)].to_numpy(dtype="float64")
    if not np.isfinite(values).all():
        return None
    result = pd.DataFrame(values, index=rows.index, columns=list(columns))
    result.insert(0, column, np.asarray(chosen, dtype=object)[ranks])
    return result


def _series_parts(frame: pd.DataFrame, name: str, column: str, wanted) -> list[tuple[str, pd.DataFrame]]:
    """`(name, rows)` of each wanted series (one name, several, or "all") of a long table's `column`, without it."""
    if column not in frame.columns:
        raise KerasSeqError(f"series column {excerpt(column)} not found in {name}. Available columns: "
                            f"{column_list(frame.columns)}.")
    ids = frame[column].astype(str).str.strip()
    names = sorted(ids.unique())
    listed = ", ".join(excerpt(n, 20) for n in names[:8]) + (f", ... ({len(names)} in all)" if len(names) > 8 else "")
    chosen = names if wanted == "all" else [wanted] if isinstance(wanted, str) else list(wanted or [])
    unknown = [n for n in chosen if n not in names]
    if not chosen or unknown:
        what = "choose" if not chosen else f"there is no series {excerpt(unknown[0])}; choose"
        raise KerasSeqError(f"{name} is a long table of {len(names)} series in column '{column}' ({listed}): {what} "
                            "one with `series` NAME, several with `series` A,B, or every one with `series` all.")
    rows = ids.groupby(ids.to_numpy(), sort=False).indices  # name -> its row positions: one pass, not one per series
    values = frame.drop(columns=[column])
    return [(n, values.iloc[rows[n]]) for n in chosen]


def _finish_panel(parts, start_ts, end_ts, source, columns, fill, column: str) -> pd.DataFrame:
    """Several series as one long frame: the series column first, each series' rows in date order, one after another.

    A series without rows in the date range is left out with a warning that names it.
    """
    finished, empty = [], []
    for name, part in parts:
        if not len(part.loc[start_ts:end_ts]):
            empty.append(name)
            continue
        rows = _finish(part, start_ts, end_ts, f"{source} (series {name})", columns, fill)
        finished.append(rows.assign(**{column: name})[[column, *rows.columns]])
    if empty:
        warnings.warn(f"{len(empty)} series of {source} have no rows in the date range and were left out: "
                      f"{', '.join(map(str, empty[:10]))}.", DataWarning, stacklevel=4)
    if not finished:
        raise KerasSeqError(f"no series of {source} has rows in the date range. Choose `start`/`end` inside the data.")
    return pd.concat(finished)


for _source in (EmbeddedDJI(), Download("stooq", load_stooq), Download("fred", load_fred)):
    register_source(_source)
