"""A CSV file to a clean dated frame: its header checked before it is read, its date column found (or given) and
parsed (days, times, UTC offsets, integer years), its rows sorted and de-duplicated, its columns checked as numbers.
Every problem is one line naming the file, the column and the rows.

A series without a calendar is numbered by integer steps (1, 2, 3, ...): a numeric column named like a step
(`STEP_COLUMN_NAMES`), or any integer column that is neither years nor YYYYMMDD, indexes the rows by its steps (an
integer index named `step`), and every series' steps must then be consecutive."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from keras_seq.errors import DataWarning, KerasSeqError, first_line


DATE_COLUMN_NAMES = ("date", "datetime", "timestamp", "time", "day", "observation_date", "year")
# Columns of integer steps by their name: always read as steps, never as years.
STEP_COLUMN_NAMES = ("step", "t", "period")
STEP = "step"  # the index name of a series numbered by steps
# A header with more columns than this is refused before the rest of the file is parsed.
MAX_COLUMNS = 10_000
MAX_HEADER_BYTES = 4 << 20
# Integer dates in this range are read as years (statsmodels' sunspots: YEAR 1700..2008), or as YYYYMMDD.
YEARS = (1000, 2999)
# Calendar features a model can read (`DataSpec.calendar`): name -> (what it is, its value from 0, its period).
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
    steps = _steps_of(raw[column])
    if steps is None:
        dates = _dates_of(raw, column, name)
        if getattr(dates.dt, "tz", None) is not None:
            dates = dates.dt.tz_localize(None)
    frame = raw.drop(columns=[column])
    if frame.columns.empty:
        raise KerasSeqError(
            f"data file {name} has no columns besides its dates ('{column}'). "
            "Expected comma-separated values with a date column and value columns."
        )
    frame.index = pd.Index(steps, name=STEP) if steps is not None else pd.DatetimeIndex(dates, name="Date")
    return frame


def is_steps(index) -> bool:
    """Whether rows are numbered by integer steps (no calendar) rather than dated."""
    return not isinstance(index, pd.DatetimeIndex)


def label_of(point) -> str:
    """How a row's date or step is written in messages and records: `2020-01-31`, or `17` for a step."""
    return str(point.date()) if isinstance(point, pd.Timestamp) else str(int(point))


def _steps_of(values: pd.Series) -> np.ndarray | None:
    """A column's integer steps (int64), or None where it holds dates: text, integer years or YYYYMMDD (unless the
    column is named like a step). A number that is not a whole one is neither: `_dates_of` refuses it."""
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return None
    numbers = values.to_numpy(dtype="float64")
    if not (np.isfinite(numbers).all() and (numbers == np.round(numbers)).all() and (np.abs(numbers) < 2**53).all()):
        return None
    if str(values.name).lower() not in STEP_COLUMN_NAMES and _numeric_dates(values).notna().all():
        return None  # years (1700) or days (20200131)
    return numbers.astype("int64")


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
            f"column '{column}' of {name} holds numbers that are neither dates nor whole steps (integer steps, years "
            f"{YEARS[0]}..{YEARS[1]} or YYYYMMDD would be read): {_describe_rows(raw.index[bad], raw[column][bad])}. "
            "Name the date or step column with `date_column`."
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
                f"date column {excerpt(date_column)} not found in {name}. Available columns: {column_list(raw.columns)}."
            )
        return date_column
    for column in raw.columns:
        if column.lower() in DATE_COLUMN_NAMES or column.lower() in STEP_COLUMN_NAMES:
            return column
    first = raw.columns[0]
    if not pd.api.types.is_numeric_dtype(raw[first]):
        parsed, _ = _parse_dates(raw[first])  # pandas' warnings are reported once the column is read
        if parsed.notna().mean() > 0.9:
            return first
    raise KerasSeqError(
        f"no date column found in {name} (columns: {column_list(raw.columns)}). Name it with `date_column`."
    )


def sorted_unique(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """Sort by date; drop repeated rows; refuse a date given two different rows, a date in the future, or steps that
    are not consecutive."""
    today = pd.Timestamp.now(tz="UTC").tz_localize(None).normalize()
    future = np.zeros(len(frame), bool) if is_steps(frame.index) else frame.index > today + pd.Timedelta(days=1)
    if future.any():  # a day's grace for time zones
        rows = ", ".join(str(d.date()) for d in frame.index[future][:3])
        raise KerasSeqError(
            f"data file {name} has {int(future.sum())} rows dated after today (first: {rows}). "
            "A series cannot hold the future: check the date format (day and month swapped?) or remove those rows."
        )
    sharing = frame[frame.index.duplicated(keep=False)]  # every row whose date appears more than once
    conflicting = [date for date, group in sharing.groupby(level=0) if len(group.drop_duplicates()) > 1]
    if conflicting:
        column = series_like_column(frame)
        hint = (f". Column '{column}' looks like a series id ({frame[column].nunique()} values): this is a long table of "
                f"several series; read one with `series_column` {column} `series` NAME" if column is not None
                else ". Keep one row per date")
        raise KerasSeqError(
            f"data file {name}: {label_of(conflicting[0])} appears twice with different values"
            + (f" ({len(conflicting)} such dates)" if len(conflicting) > 1 else "") + hint + "."
        )
    if not frame.index.is_monotonic_increasing:
        what = "steps" if is_steps(frame.index) else "dates"
        warnings.warn(f"{what} in {name} were not in ascending order; sorted them.", DataWarning, stacklevel=3)
        frame = frame.sort_index(kind="stable")
    duplicated = frame.index.duplicated(keep="last")
    if duplicated.any():
        dates = ", ".join(label_of(d) for d in frame.index[duplicated][:3])
        warnings.warn(
            f"{int(duplicated.sum())} repeated rows in {name} (first: {dates}); kept one of each.",
            DataWarning,
            stacklevel=3,
        )
        frame = frame[~duplicated]
    if is_steps(frame.index):
        check_consecutive(frame.index, name)
    return frame


def check_consecutive(steps, name: str) -> None:
    """Refuse a series' sorted steps that skip a number: the first gap in one line."""
    values = np.asarray(steps, dtype="int64")
    gaps = np.flatnonzero(np.diff(values) != 1)
    if len(gaps):
        k = gaps[0]
        raise KerasSeqError(f"steps in {name} are not consecutive: step {values[k]} is followed by {values[k + 1]} "
                            f"({len(gaps)} such gap{'s' if len(gaps) > 1 else ''}). Expected one row per integer "
                            "step: give the missing rows, or name a date column with `date_column`.")


def to_float_if_numeric(column: pd.Series) -> pd.Series:
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


def column_list(columns, limit: int = 8) -> str:
    """The first few column names of a file, quoted and cut: 'Date', 'Close' … and 3 more."""
    names = [excerpt(str(c)) for c in list(columns)[:limit]]
    more = len(columns) - limit
    return ", ".join(names) + (f" … and {more} more" if more > 0 else "")


def _describe_rows(labels, values, limit: int = 3) -> str:
    """'2020-01-03 'abc', 2020-01-06 'n/a'' for the first few offending rows: labelled by date, by step (an index
    named `step`), else by their line in the file."""
    parts, steps = [], getattr(labels, "name", None) == STEP
    for label, value in list(zip(labels, values))[:limit]:
        where = (label_of(label) if isinstance(label, pd.Timestamp) else f"step {int(label)}" if steps
                 else f"row {int(label) + 2}")
        parts.append(f"{where} {excerpt(value)}" if value is not None else where)
    more = len(labels) - limit
    return ", ".join(parts) + (f" and {more} more" if more > 0 else "")


def checked_columns(frame: pd.DataFrame, columns: list[str], fill: str | None, name: str) -> pd.DataFrame:
    unknown = [c for c in columns if c not in frame.columns]
    if unknown:
        raise KerasSeqError(
            f"column '{unknown[0]}' not found in {name}. Available columns: {column_list(frame.columns)}."
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
        if numeric.isna().any() and fill != "mask":  # `missing` mask keeps them: the model masks them
            missing = numeric.index[numeric.isna()]
            if fill == "ffill":
                first_value = numeric.first_valid_index()
                if first_value != numeric.index[0]:
                    leading = numeric.index[numeric.index < first_value]
                    raise KerasSeqError(
                        f"column '{column}' of {name} starts with missing values ({_describe_rows(leading, [None] * len(leading))}) "
                        f"that forward-fill cannot fill. Use `start` {label_of(first_value)} or later."
                    )
                numeric = numeric.ffill()
            else:
                raise KerasSeqError(
                    f"column '{column}' of {name} has {len(missing)} missing values (first: "
                    f"{_describe_rows(missing, [None] * len(missing))}). Use `missing` mask to train through "
                    "them, `fill` ffill to forward-fill them, or `start`/`end` to leave them out."
                )
        result[column] = numeric
    return pd.DataFrame(result, index=frame.index)


def series_like_column(frame: pd.DataFrame) -> str | None:
    """A text column under which every date appears once: what names each row's series in a long table."""
    for column in frame.columns:
        values = frame[column]
        if pd.to_numeric(values, errors="coerce").notna().any() or values.nunique() < 2:
            continue
        if not pd.MultiIndex.from_arrays([frame.index, values]).duplicated().any():
            return column
    return None
