"""Inputs made from each row's date (the sine and cosine of the day of the week, the month, ...) and the names of
the columns of future features' leads."""

from __future__ import annotations

import numpy as np
import pandas as pd

from keras_seq.errors import KerasSeqError


CALENDAR = {
    "dow": ("the day of the week (Monday 0)", lambda d: d.dayofweek, 7),
    "month": ("the month (January 0)", lambda d: d.month - 1, 12),
    "day": ("the day of the month (the 1st 0)", lambda d: d.day - 1, 31),
    "doy": ("the day of the year (January 1st 0)", lambda d: d.dayofyear - 1, 366),
    "hour": ("the hour of the day", lambda d: d.hour, 24),
}
# A wide table's series are read as a long frame of these two columns (`DataSpec.targets`).
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
    if not isinstance(frame.index, pd.DatetimeIndex):
        raise KerasSeqError("`calendar` makes inputs from dates, and the data is numbered by steps, without a "
                            "calendar. Leave `calendar` out (give `season` for a seasonal period in steps).")
    dates = frame.index
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
