"""Generated CSVs: `load_series` and `keras-seq fit` either work or say what is wrong, never crash.

Hypothesis writes CSVs with random column names and orders, missing values,
several date formats, thousands separators and extra whitespace.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from keras_seq.data.sources import load_series
from keras_seq.errors import KerasSeqError

DATE_FORMATS = ["%Y-%m-%d", "%m/%d/%Y", "%d.%m.%Y", "%Y%m%d", "%b %d, %Y", "%Y-%m-%d %H:%M:%S"]
NAMES = st.text(st.characters(codec="utf-8", exclude_characters=',"\n\r'), min_size=1, max_size=8)


@st.composite
def csv_texts(draw, min_rows=0, max_rows=60):
    """(CSV text, the date column's name, the value columns' names)."""
    n_rows = draw(st.integers(min_rows, max_rows))
    date_format = draw(st.sampled_from(DATE_FORMATS))
    date_name = draw(st.sampled_from(["Date", "date", "DATE", "timestamp", "day"]) | NAMES)
    value_names = draw(st.lists(NAMES, min_size=1, max_size=3, unique=True).filter(lambda ns: date_name not in ns))
    thousands = draw(st.booleans())
    space = draw(st.sampled_from(["", " ", "  "]))
    missing = draw(st.floats(0, 0.3))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    dates = pd.bdate_range(draw(st.dates(pd.Timestamp("1990-01-01").date(), pd.Timestamp("2020-01-01").date())),
                           periods=n_rows)
    if draw(st.booleans()):  # out of order, or with a repeated row
        dates = dates[rng.permutation(n_rows)] if n_rows else dates
    columns = {date_name: [d.strftime(date_format) for d in dates]}
    for name in value_names:
        values = 1000 + np.cumsum(rng.normal(size=n_rows)) * 50
        cells = [f'"{v:,.2f}"' if thousands else f"{v:.4f}" for v in values]
        columns[name] = ["" if rng.random() < missing else cell for cell in cells]
    order = draw(st.permutations(list(columns)))
    lines = [",".join(f"{space}{name}{space}" for name in order)]
    lines += [",".join(f"{space}{columns[name][i]}{space}" for name in order) for i in range(n_rows)]
    return "\n".join(lines) + "\n", date_name, value_names


def _load(text: str, **kwargs):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data.csv"
        path.write_text(text, encoding="utf-8")
        return load_series(str(path), **kwargs)


@pytest.mark.filterwarnings("ignore::keras_seq.errors.DataWarning")
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(csv=csv_texts(), fill=st.sampled_from([None, "ffill"]), pick=st.booleans())
def test_load_series_returns_a_clean_frame_or_a_clear_error(csv, fill, pick):
    text, _, value_names = csv
    try:
        frame = _load(text, columns=[value_names[0].strip()] if pick else None, fill=fill)
    except KerasSeqError as exc:
        assert str(exc) and "\n" not in str(exc)
        event("refused: " + re.sub(r"'[^']*'|/\S+", "_", str(exc))[:60])
        return
    event("loaded")
    assert isinstance(frame.index, pd.DatetimeIndex) and frame.index.name == "Date"
    assert frame.index.is_monotonic_increasing and frame.index.is_unique and len(frame) > 0
    if pick:
        assert frame.dtypes.eq("float64").all() and np.isfinite(frame.to_numpy()).all()


@pytest.mark.filterwarnings("ignore::keras_seq.errors.DataWarning")
@settings(max_examples=2, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(csv=csv_texts(min_rows=30, max_rows=80))
def test_fit_on_a_generated_csv_runs_or_fails_cleanly(csv, run_cli, tmp_path):
    text, _, value_names = csv
    example = Path(tempfile.mkdtemp(dir=tmp_path))  # tmp_path is shared by every example
    path = example / "data.csv"
    path.write_text(text, encoding="utf-8")
    out = example / "runs"
    code, stdout, stderr = run_cli("fit", "--data", path, "--target", value_names[0].strip(), "--window", "3",
                                   "--epochs", "1", "--units", "2", "--layers", "1", "--out", out, "--quiet")
    assert "Traceback" not in stdout + stderr
    if code == 0:
        assert "run written to" in stdout and len(list(out.iterdir())) == 1
    else:
        assert code in (1, 2)
        errors = [line for line in stderr.strip().splitlines() if not line.startswith("Warning: ")]
        assert len(errors) == 1 and errors[0].startswith("Error: "), stderr
        assert not out.exists() or not any(out.iterdir())
