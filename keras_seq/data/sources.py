"""Load a time series from the embedded data, a CSV file or an online source.

Every loader returns a DataFrame with an ascending, duplicate-free
DatetimeIndex named `Date` and float64 columns. Sources are named by a string:

- `dji`: ^DJI daily Open, High, Low, Close, Volume shipped with keras-seq
  (see `DJI_SOURCE.md` beside this file).
- `stooq:SYMBOL`, for example `stooq:^DJI`: stooq's daily CSV download.
- `fred:SERIES`, for example `fred:DJIA`: FRED, through pandas-datareader.
- anything else: a path to a CSV file with a date column.

Online sources are downloaded once, in full, and cached on disk; later loads
read the cache (pass `refresh=True` to download again).
"""

from __future__ import annotations

import os
import urllib.error
import urllib.parse
import urllib.request
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from keras_seq.config.options import get_option, spec_of
from keras_seq.errors import DataWarning, KerasSeqError, first_line

EMBEDDED_DJI = Path(__file__).with_name("dji_daily.csv.gz")
# The tutorial's range: 1258 trading days.
DJI_DEFAULT_START = "2018-02-13"
DJI_DEFAULT_END = "2023-02-10"
# The file's last row was captured during the trading day: never a close.
DJI_INTRADAY_DATE = "2023-02-13"

STOOQ_URL = "https://stooq.com/q/d/l/"
FRED_URL = "https://fred.stlouisfed.org/graph/fredgraph.csv"
DATE_COLUMN_NAMES = ("date", "datetime", "timestamp", "time", "day", "observation_date", "year")
# A header with more columns than this is refused before the rest of the file is parsed.
MAX_COLUMNS = 10_000
MAX_HEADER_BYTES = 4 << 20
# Integer dates in this range are read as years (statsmodels' sunspots: YEAR 1700..2008), or as YYYYMMDD.
YEARS = (1000, 2999)
# Calendar features a model can read (`DataSpec.calendar`): name -> (what it is, its value from 0, its period).
CALENDAR = {
    "dow": ("the day of the week (Monday 0)", lambda d: d.dayofweek, 7),
    "month": ("the month (January 0)", lambda d: d.month - 1, 12),
    "day": ("the day of the month (the 1st 0)", lambda d: d.day - 1, 31),
    "doy": ("the day of the year (January 1st 0)", lambda d: d.dayofyear - 1, 366),
    "hour": ("the hour of the day", lambda d: d.hour, 24),
}
# A wide table's series are read as a long frame of these two columns (`DataSpec.targets`).
WIDE_SERIES, WIDE_VALUE = "series", "value"
MAX_NAME = 200  # characters in a column or series name
MAX_NAMES = 10_000  # columns or series named in one option
OFFLINE_HINT = "If you are offline, use the embedded data (`source` dji) or a CSV file (`source` path.csv)."


@spec_of("data")
class DataSpec:
    """Which series to load and which of its columns the model uses (the options are `keras_seq.config.options`'
    `data` section)."""

    def __post_init__(self):
        self._check_name_sizes()
        self._check_future()
        self._check_targets()
        if self.calendar is not None:
            names = tuple(self.calendar)
            unknown = [n for n in names if n not in CALENDAR]
            if unknown or not names or len(set(names)) != len(names):
                raise KerasSeqError(f"`calendar` names calendar features once each, of {', '.join(CALENDAR)}. "
                                    f"Received: calendar={list(names)}")
            object.__setattr__(self, "calendar", names)
            made = [f for f in self.features or () if f in calendar_columns(names)]
            if made:
                raise KerasSeqError(f"`features` names '{made[0]}', a column `calendar` makes from the dates: "
                                    "leave it out of `features`.")
        if isinstance(self.series, (list, tuple)):
            names = tuple(str(n) for n in self.series)
            if not names or len(set(names)) != len(names):
                raise KerasSeqError(f"`series` must name each series once. Received: series={list(names)}")
            object.__setattr__(self, "series", names[0] if len(names) == 1 else names)
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
            object.__setattr__(self, "features", features)

    def _check_name_sizes(self) -> None:
        """Refuse a column or series name longer than `MAX_NAME` characters, or more than `MAX_NAMES` of them: every
        name is drawn, written and quoted later, and a recipe or run folder may hold any."""
        for key in ("target", "features", "targets", "future_features", "series", "series_column", "date_column"):
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
        object.__setattr__(self, "future_features", names)

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
            object.__setattr__(self, "target", targets[0])
            object.__setattr__(self, "targets", None)
            return
        object.__setattr__(self, "target", WIDE_VALUE)
        object.__setattr__(self, "targets", targets)

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
                                       targets=self.targets, date_column=self.date_column, fill=self.fill,
                                       cache_dir=self.cache_dir, refresh=refresh)
            if self.series_column is not None:
                return load_long_table(self.source, self.start, self.end, columns=self.columns,
                                       date_column=self.date_column, fill=self.fill, series_column=self.series_column,
                                       series=self.series)
            return load_series(self.source, self.start, self.end, columns=self.columns, date_column=self.date_column,
                               fill=self.fill, cache_dir=self.cache_dir, refresh=refresh)

        path = csv_path(self.source)
        frame = read() if quote or path is None or not path.is_file() else _unquoted(self.source, read)
        return add_calendar(frame, self.calendar) if self.calendar else frame


def reads_several(series) -> bool:
    """Whether a `series` selection (None, a name, names or "all") reads several series: a panel."""
    return series == "all" or isinstance(series, (list, tuple))


def lead_columns(names, horizon: int) -> list[str]:
    """The input columns of future features `names` for a `horizon`: `<name>+1` .. `<name>+<horizon>` each."""
    return [f"{name}+{step}" for name in names or () for step in range(1, horizon + 1)]


def calendar_columns(names) -> list[str]:
    """The input columns of calendar features `names`: `<name>_sin`, `<name>_cos` each."""
    return [f"{name}_{part}" for name in names or () for part in ("sin", "cos")]


def add_calendar(frame: pd.DataFrame, names) -> pd.DataFrame:
    """`frame` with the calendar columns of `names` computed from its dates (see `DataSpec.calendar`).

    Example:
    >>> frame = add_calendar(pd.DataFrame({"y": [1.0, 2.0]}, index=pd.DatetimeIndex(["2024-01-01", "2024-01-03"])), ["dow"])
    >>> frame.round(3).to_dict("list")
    {'y': [1.0, 2.0], 'dow_sin': [0.0, 0.975], 'dow_cos': [1.0, -0.223]}
    """
    clash = [c for c in calendar_columns(names) if c in frame.columns]
    if clash:
        raise KerasSeqError(f"the data already has a column '{clash[0]}', the name of a calendar feature. Rename it, "
                            "or leave that feature out of `calendar`.")
    dates = pd.DatetimeIndex(frame.index)
    columns = {}
    for name in names:
        _, value, period = CALENDAR[name]
        angle = 2 * np.pi * np.asarray(value(dates), dtype="float64") / period
        columns[f"{name}_sin"], columns[f"{name}_cos"] = np.sin(angle), np.cos(angle)
    return frame.assign(**columns)


def calendar_description(names) -> dict:
    """What each calendar input column of `names` holds, for a model card."""
    return {f"{name}_{part}": f"{part}(2 pi x {CALENDAR[name][0]} / {CALENDAR[name][2]}) of the row's date"
            for name in names or () for part in ("sin", "cos")}


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
        raise KerasSeqError(f"column '{unknown[0]}' not found in {source}. Available columns: {_column_list(frame.columns)}.")
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c]) and c not in features]
    if targets == "all":
        chosen = numeric
        if not chosen:
            raise KerasSeqError(f"`targets` all found no numeric column in {source} besides the features. "
                                f"Available columns: {_column_list(frame.columns)}.")
    else:
        chosen = list(targets)
        missing = [c for c in chosen if c not in frame.columns]
        if missing:
            raise KerasSeqError(f"`targets` names column {excerpt(missing[0])}, which is not in {source}. Numeric "
                                f"columns: {_column_list(numeric)}; give several with `targets` A,B or every one "
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
        return frame.apply(_to_float_if_numeric)
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


def _parse_range(start: str | None, end: str | None) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    stamps = []
    for name, value in (("start", start), ("end", end)):
        if value is None or value == "":
            stamps.append(None)
            continue
        try:
            stamps.append(pd.Timestamp(value))
        except (ValueError, TypeError):
            raise KerasSeqError(f"`{name}` is not a date. Received: {name}={value!r}. Expected YYYY-MM-DD.") from None
    if stamps[0] is not None and stamps[1] is not None and stamps[0] > stamps[1]:
        raise KerasSeqError(f"`start` is after `end`. Received: start={start}, end={end}. Give start <= end.")
    return stamps[0], stamps[1]


def _select_range(frame: pd.DataFrame, start, end, source: str) -> pd.DataFrame:
    selected = frame.loc[start:end]
    if len(selected.index) == 0:
        covers = f"{frame.index[0].date()}..{frame.index[-1].date()}" if len(frame) else "no rows"
        asked = f"{start.date() if start is not None else '...'}..{end.date() if end is not None else '...'}"
        raise KerasSeqError(f"no rows of {source} in the range {asked}; the data covers {covers}. Choose `start`/`end` inside it.")
    return selected


def long_table_series(frame: pd.DataFrame, name: str, column: str, wanted):
    """A long table's wanted series (`_series_parts`), each sorted and without repeats: the one series' rows for a
    single name, else a list of `(name, rows)`."""
    parts = _series_parts(frame, name, column, wanted)
    if not reads_several(wanted):
        return sorted_unique(parts[0][1], name)
    return [(sid, sorted_unique(part, f"{name} (series {sid})")) for sid, part in parts]


def read_csv_frame(path_or_buffer, name: str, date_column: str | None) -> pd.DataFrame:
    """A CSV's rows indexed by its date column, as they are in the file (not sorted, not checked for repeats)."""
    if isinstance(path_or_buffer, (str, os.PathLike)):
        _check_header(Path(path_or_buffer), name)
    try:
        with warnings.catch_warnings():
            # Rows longer than the header: pandas would silently turn the extra leading fields into an index.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            raw = pd.read_csv(path_or_buffer, skipinitialspace=True, index_col=False)
    except pd.errors.ParserWarning:
        raise KerasSeqError(
            f"data file {name} has rows with more fields than its header, so it is not a well-formed CSV. "
            "Quote values that hold a comma "
            "(a date like \"Jan 03, 2000\", a number like \"1,006.29\")."
        ) from None
    except pd.errors.EmptyDataError:
        raise KerasSeqError(f"data file {name} is empty. Expected a CSV with a header row and a date column.") from None
    except UnicodeDecodeError:
        raise KerasSeqError(f"data file {name} is not UTF-8 text. Expected a CSV file; re-save it as UTF-8.") from None
    except (pd.errors.ParserError, ValueError) as exc:
        raise KerasSeqError(f"data file {name} is not a readable CSV ({first_line(exc)[:120]}). Expected comma-separated values with a header row.") from None
    raw.columns = [str(c).strip() for c in raw.columns]
    if raw.empty:
        raise KerasSeqError(f"data file {name} has a header but no rows. Expected at least one row of data.")
    column = _find_date_column(raw, name, date_column)
    dates = _dates_of(raw, column, name)
    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_localize(None)
    frame = raw.drop(columns=[column])
    if frame.columns.empty:
        raise KerasSeqError(
            f"data file {name} has no columns besides its dates ('{column}'). "
            "Expected comma-separated values with a date column and value columns."
        )
    frame.index = pd.DatetimeIndex(dates, name="Date")
    return frame


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
    stamps, same = dates.asi8, ranks[1:] == ranks[:-1]
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
                            f"{_column_list(frame.columns)}.")
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


def _series_like_column(frame: pd.DataFrame) -> str | None:
    """A text column under which every date appears once: what names each row's series in a long table."""
    for column in frame.columns:
        values = frame[column]
        if pd.to_numeric(values, errors="coerce").notna().any() or values.nunique() < 2:
            continue
        if not pd.MultiIndex.from_arrays([frame.index, values]).duplicated().any():
            return column
    return None


def _dates_of(raw: pd.DataFrame, column: str, name: str) -> pd.Series:
    """`raw[column]` parsed as dates (month first, else day first where that fits every row), or a clear error."""
    dates, caught = _parse_dates(raw[column])
    bad = dates.isna()
    if bad.any():  # an ambiguous first row (01.02.2020) was read month first; day first may fit every row
        day_first, caught_day_first = _parse_dates(raw[column], dayfirst=True)
        if day_first.notna().all():
            dates, caught = day_first, [w for w in caught_day_first if "dayfirst" not in str(w.message)]
            warnings.warn(
                f"dates in {name} were read day first: month first, {excerpt(raw[column][bad].iloc[0])} is not a date.",
                DataWarning,
                stacklevel=4,
            )
            bad = dates.isna()
    if bad.any() and pd.api.types.is_numeric_dtype(raw[column]):
        raise KerasSeqError(
            f"column '{column}' of {name} holds numbers, not dates (integer years {YEARS[0]}..{YEARS[1]} or YYYYMMDD "
            f"would be read as dates): {_describe_rows(raw.index[bad], raw[column][bad])}. Name the date column with "
            "`date_column`."
        )
    if bad.any():
        rows = _describe_rows(raw.index[bad], raw[column][bad])
        raise KerasSeqError(
            f"column '{column}' of {name} has values that are not dates in the format of its first row: {rows}. "
            "Use one date format (e.g. YYYY-MM-DD) throughout."
        )
    for warning in caught:
        _date_warning(warning, name, raw[column].iloc[0], dates.iloc[0])
    return dates


def _check_header(path: Path, name: str) -> None:
    """Refuse, from its first line alone, a CSV with more columns than `MAX_COLUMNS` (pandas would take minutes)."""
    import csv
    import gzip

    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as stream:
        head = b""
        while b"\n" not in head and len(head) <= MAX_HEADER_BYTES:
            block = stream.read(1 << 16)
            if not block:
                break
            head += block
    line = head.split(b"\n", 1)[0]
    if len(line) > MAX_HEADER_BYTES:
        raise KerasSeqError(
            f"data file {name} has a header row longer than {MAX_HEADER_BYTES >> 20} MiB, far more columns than "
            f"keras-seq reads (at most {MAX_COLUMNS:,}). Keep only the columns you need."
        )
    try:
        fields = next(csv.reader([line.decode("utf-8", errors="replace")]), [])
    except csv.Error:
        return  # pandas reports it
    if len(fields) > MAX_COLUMNS:
        raise KerasSeqError(
            f"data file {name} has {len(fields):,} columns; keras-seq reads at most {MAX_COLUMNS:,}. "
            "Keep only the columns you need."
        )


def _parse_dates(values: pd.Series, dayfirst: bool = False) -> tuple[pd.Series, list]:
    """pandas' dates in the format of the first value (NaT where a value does not fit), and pandas' warnings."""
    if pd.api.types.is_numeric_dtype(values):
        return _numeric_dates(values), []
    with warnings.catch_warnings(record=True) as caught:  # pandas' own, as keras-seq's one-line warnings later
        warnings.simplefilter("always")
        try:
            dates = pd.to_datetime(values, errors="coerce", dayfirst=dayfirst)
        except ValueError as exc:
            if "timezone" not in str(exc).lower():  # no other failure is expected with errors="coerce": not dates
                return pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]"), list(caught)
            # mixed UTC offsets (+01:00 and +02:00 across a DST change): compare them in UTC
            dates = pd.to_datetime(values, errors="coerce", dayfirst=dayfirst, utc=True)
            caught.append(warnings.WarningMessage(MIXED_OFFSETS, UserWarning, __file__, 0))
    return dates, caught


MIXED_OFFSETS = "mixed UTC offsets"


def _numeric_dates(values: pd.Series) -> pd.Series:
    """Integer years (1700) as January 1st, or YYYYMMDD integers (20200131) as that day; NaT for any other number."""
    numbers = pd.to_numeric(values, errors="coerce").astype("float64")
    whole = numbers.notna() & (numbers == numbers.round())
    low, high = YEARS
    if (whole & numbers.between(low * 10000 + 101, high * 10000 + 1231)).all():
        fmt = "%Y%m%d"
    else:
        fmt, whole = "%Y", whole & numbers.between(low, high)
    text = numbers.where(whole).map(lambda v: f"{int(v):04d}" if v == v else None)
    return pd.to_datetime(text, format=fmt, errors="coerce")


def _date_warning(warning: warnings.WarningMessage, name: str, first_text, first_date) -> None:
    """Say in one line what pandas' warning about parsing `name`'s dates means; other warnings pass on unchanged."""
    text = str(warning.message)
    if "dayfirst" in text:  # the first row only fits day first (13.01.2020), so every row was read that way
        message = f"dates in {name} were read day first, the format of its first row ({excerpt(first_text)} is {first_date.date()})."
    elif text == MIXED_OFFSETS:
        message = f"dates in {name} have mixed UTC offsets; they were converted to UTC, then read without an offset."
    elif "infer format" in text:  # no one format: pandas parsed each value on its own
        message = (f"dates in {name} are not in one format that pandas recognises; each was read on its own, which can "
                   "swap day and month. Use one date format (e.g. YYYY-MM-DD).")
    else:
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
        return
    warnings.warn(message, DataWarning, stacklevel=5)


def _find_date_column(raw: pd.DataFrame, name: str, date_column: str | None) -> str:
    if date_column is not None:
        if date_column not in raw.columns:
            raise KerasSeqError(
                f"date column {excerpt(date_column)} not found in {name}. Available columns: {_column_list(raw.columns)}."
            )
        return date_column
    for column in raw.columns:
        if column.lower() in DATE_COLUMN_NAMES:
            return column
    first = raw.columns[0]
    if not pd.api.types.is_numeric_dtype(raw[first]):
        parsed, _ = _parse_dates(raw[first])  # pandas' warnings are reported once the column is read
        if parsed.notna().mean() > 0.9:
            return first
    raise KerasSeqError(
        f"no date column found in {name} (columns: {_column_list(raw.columns)}). Name it with `date_column`."
    )


def sorted_unique(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """Sort by date; drop repeated rows; refuse a date given two different rows, or a date in the future."""
    today = pd.Timestamp.now(tz="UTC").tz_localize(None).normalize()
    future = frame.index > today + pd.Timedelta(days=1)  # a day's grace for time zones
    if future.any():
        rows = ", ".join(str(d.date()) for d in frame.index[future][:3])
        raise KerasSeqError(
            f"data file {name} has {int(future.sum())} rows dated after today (first: {rows}). "
            "A series cannot hold the future: check the date format (day and month swapped?) or remove those rows."
        )
    sharing = frame[frame.index.duplicated(keep=False)]  # every row whose date appears more than once
    conflicting = [date for date, group in sharing.groupby(level=0) if len(group.drop_duplicates()) > 1]
    if conflicting:
        column = _series_like_column(frame)
        hint = (f". Column '{column}' looks like a series id ({frame[column].nunique()} values): this is a long table of "
                f"several series; read one with `series_column` {column} `series` NAME" if column is not None
                else ". Keep one row per date")
        raise KerasSeqError(
            f"data file {name}: {conflicting[0].date()} appears twice with different values"
            + (f" ({len(conflicting)} such dates)" if len(conflicting) > 1 else "") + hint + "."
        )
    if not frame.index.is_monotonic_increasing:
        warnings.warn(f"dates in {name} were not in ascending order; sorted them.", DataWarning, stacklevel=3)
        frame = frame.sort_index(kind="stable")
    duplicated = frame.index.duplicated(keep="last")
    if duplicated.any():
        dates = ", ".join(str(d.date()) for d in frame.index[duplicated][:3])
        warnings.warn(
            f"{int(duplicated.sum())} repeated rows in {name} (first: {dates}); kept one of each.",
            DataWarning,
            stacklevel=3,
        )
        frame = frame[~duplicated]
    return frame


def _to_float_if_numeric(column: pd.Series) -> pd.Series:
    converted = pd.to_numeric(column, errors="coerce")
    if (converted.isna() & column.notna()).any():
        return column
    return converted.astype("float64")


def excerpt(value, limit: int = 40) -> str:
    """`repr(value)`, cut to `limit` characters with a marked ellipsis: how errors quote a file's contents.

    Example:
    >>> excerpt("x" * 50, 12)
    "'xxxxxxxxx'…"
    """
    text = repr(value) if isinstance(value, (str, int, float)) else repr(str(value))
    return text if len(text) <= limit else text[: limit - 2] + text[0] + "…"


def _column_list(columns, limit: int = 8) -> str:
    """The first few column names of a file, quoted and cut: 'Date', 'Close' … and 3 more."""
    names = [excerpt(str(c)) for c in list(columns)[:limit]]
    more = len(columns) - limit
    return ", ".join(names) + (f" … and {more} more" if more > 0 else "")


def _describe_rows(labels, values, limit: int = 3) -> str:
    """'2020-01-03 'abc', 2020-01-06 'n/a'' for the first few offending rows."""
    parts = []
    for label, value in list(zip(labels, values))[:limit]:
        where = str(label.date()) if isinstance(label, pd.Timestamp) else f"row {int(label) + 2}"
        parts.append(f"{where} {excerpt(value)}" if value is not None else where)
    more = len(labels) - limit
    return ", ".join(parts) + (f" and {more} more" if more > 0 else "")


def checked_columns(frame: pd.DataFrame, columns: list[str], fill: str | None, name: str) -> pd.DataFrame:
    unknown = [c for c in columns if c not in frame.columns]
    if unknown:
        raise KerasSeqError(
            f"column '{unknown[0]}' not found in {name}. Available columns: {_column_list(frame.columns)}."
        )
    result = {}
    for column in columns:
        values = frame[column]
        numeric = pd.to_numeric(values, errors="coerce")
        not_numeric = numeric.isna() & values.notna()
        not_finite = numeric.notna() & ~np.isfinite(numeric.astype("float64"))
        if not_numeric.any() or not_finite.any():
            bad = not_numeric | not_finite
            raise KerasSeqError(
                f"column '{column}' of {name} has non-numeric values: {_describe_rows(frame.index[bad], values[bad])}. "
                "Expected numbers only."
            )
        numeric = numeric.astype("float64")
        if numeric.isna().all():
            raise KerasSeqError(f"column '{column}' of {name} has no values in the selected range. Choose another column or range.")
        if numeric.isna().any():
            missing = numeric.index[numeric.isna()]
            if fill == "ffill":
                first_value = numeric.first_valid_index()
                if first_value != numeric.index[0]:
                    leading = numeric.index[numeric.index < first_value]
                    raise KerasSeqError(
                        f"column '{column}' of {name} starts with missing values ({_describe_rows(leading, [None] * len(leading))}) "
                        f"that forward-fill cannot fill. Use `start` {first_value.date()} or later."
                    )
                numeric = numeric.ffill()
            else:
                raise KerasSeqError(
                    f"column '{column}' of {name} has {len(missing)} missing values (first: "
                    f"{_describe_rows(missing, [None] * len(missing))}). Use `fill` ffill to forward-fill them, "
                    "or `start`/`end` to leave them out."
                )
        result[column] = numeric
    return pd.DataFrame(result, index=frame.index)


# === Online sources ===


def cache_folder(cache_dir: str | os.PathLike | None = None) -> Path:
    """The folder that holds downloaded series.

    Args:
        cache_dir: path or None. Defaults to `$KERAS_SEQ_CACHE`, else
            `$XDG_CACHE_HOME/keras-seq`, else `~/.cache/keras-seq`.

    Returns:
        The folder's path (not created).
    """
    if cache_dir:
        return Path(cache_dir).expanduser()
    if os.environ.get("KERAS_SEQ_CACHE"):
        return Path(os.environ["KERAS_SEQ_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "keras-seq"


def _cache_file(cache_dir, kind: str, symbol: str) -> Path:
    return cache_folder(cache_dir) / f"{kind}-{urllib.parse.quote(symbol.lower(), safe='')}.csv"


def _write_cache(path: Path, text: str) -> None:
    """Write atomically, so an interrupted download never leaves half a file."""
    from keras_seq.safety import write_file_atomically

    path.parent.mkdir(parents=True, exist_ok=True)
    write_file_atomically(path, lambda stream: stream.write(text))


MAX_DOWNLOAD_BYTES = 256 << 20  # a daily series since 1896 is about 2 MB
DOWNLOAD_SECONDS = 120  # the whole download, however slowly the server sends it


def _cached(path: Path) -> bool:
    """Whether a cached download is there to read: a regular file, never a link (keras-seq writes no link)."""
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise KerasSeqError(f"{path} is a link or not a regular file; keras-seq reads its download cache only through "
                            "files it wrote. Delete it, then load the series again.")
    return path.is_file()


def _download(url: str, source: str, base: str) -> str:
    """The text at `url`: at most `MAX_DOWNLOAD_BYTES`, within `DOWNLOAD_SECONDS` in all, or one line."""
    import time

    deadline, chunks, size = time.monotonic() + DOWNLOAD_SECONDS, [], 0
    try:
        with urllib.request.urlopen(url, timeout=min(30, DOWNLOAD_SECONDS)) as response:
            while chunk := response.read1(1 << 16):
                size += len(chunk)
                if size > MAX_DOWNLOAD_BYTES:
                    raise _download_error(source, base, f"the answer is larger than {MAX_DOWNLOAD_BYTES:,} bytes")
                if time.monotonic() > deadline:
                    raise _download_error(source, base, f"the answer took longer than {DOWNLOAD_SECONDS} s")
                chunks.append(chunk)
    except urllib.error.HTTPError as exc:
        raise _download_error(source, base, f"HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise _download_error(source, base, getattr(exc, "reason", exc)) from None
    return b"".join(chunks).decode("utf-8", errors="replace")


def _download_error(source: str, url: str, cause: object) -> KerasSeqError:
    reason = " ".join(str(cause).split())[:200] or type(cause).__name__
    return KerasSeqError(f"could not download {source} from {url}: {reason}. {OFFLINE_HINT}")


def _load_stooq(symbol: str, cache_dir, refresh: bool) -> pd.DataFrame:
    source = f"stooq:{symbol}"
    path = _cache_file(cache_dir, "stooq", symbol)
    if refresh or not _cached(path):
        base = os.environ.get("KERAS_SEQ_STOOQ_URL", STOOQ_URL)
        text = _download(f"{base}?{urllib.parse.urlencode({'s': symbol.lower(), 'i': 'd'})}", source, base)
        if not text.lstrip().lower().startswith("date,"):
            answer = " ".join(text.split())[:60] or "an empty page"
            raise KerasSeqError(
                f"stooq returned no price data for {symbol} (its answer began: {answer!r}). "
                f"Check the symbol (e.g. stooq:^DJI). {OFFLINE_HINT}"
            )
        _write_cache(path, text)
    return read_csv_frame(path, source, date_column="Date")  # sorted by `load_series`


def _load_fred(series: str, cache_dir, refresh: bool) -> pd.DataFrame:
    source = f"fred:{series}"
    path = _cache_file(cache_dir, "fred", series)
    if refresh or not _cached(path):
        import io

        base = os.environ.get("KERAS_SEQ_FRED_URL", FRED_URL)
        text = _download(f"{base}?{urllib.parse.urlencode({'id': series})}", source, base)  # bounded, as stooq's
        try:  # FRED's graph CSV: a date column, then the series (pandas-datareader's FredReader reads it the same way)
            frame = pd.read_csv(io.StringIO(text), index_col=0, parse_dates=True, header=None, skiprows=1,
                                names=["Date", series], na_values=".")
            valid = isinstance(frame.index, pd.DatetimeIndex) and pd.api.types.is_numeric_dtype(frame[series])
        except (ValueError, IndexError, pd.errors.ParserError):
            valid = False
        if not valid or frame.empty:
            raise KerasSeqError(f"FRED returned no observations for {series}. Check the series id (e.g. fred:DJIA). {OFFLINE_HINT}")
        frame.index.name = "Date"
        _write_cache(path, frame.to_csv())
    frame = read_csv_frame(path, source, date_column="Date")  # sorted by `load_series`
    # FRED lists market holidays as empty observations: they are not data.
    return frame.dropna(how="all")


for _source in (EmbeddedDJI(), Download("stooq", _load_stooq), Download("fred", _load_fred)):
    register_source(_source)
