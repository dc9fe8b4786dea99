"""keras_seq/data/sources.py: the embedded data, CSV files and online sources."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from keras_seq.data.sources import DataSpec, load_series
from keras_seq.errors import DataWarning, KerasSeqError

# === Embedded ^DJI ===


def test_dji_default_range_is_the_tutorials():
    frame = load_series("dji")
    assert frame.shape == (1258, 5)
    assert list(frame.columns) == ["Open", "High", "Low", "Close", "Volume"]
    assert all(dtype == np.float64 for dtype in frame.dtypes)
    assert isinstance(frame.index, pd.DatetimeIndex) and frame.index.is_monotonic_increasing
    assert frame.index[0] == pd.Timestamp("2018-02-13") and frame.index[-1] == pd.Timestamp("2023-02-10")
    assert frame.loc["2018-02-14", "Close"] == 24893.49
    assert frame.loc["2023-02-09", "Close"] == 33699.88
    assert frame.isna().sum().sum() == 0


@pytest.mark.parametrize("start, end", [("2023-01-01", None), ("2023-01-01", "2023-02-13"), (None, "2030-01-01")])
def test_dji_never_uses_the_intraday_last_row(start, end):
    frame = load_series("dji", start, end)
    assert frame.index[-1] == pd.Timestamp("2023-02-10")


def test_dji_any_range_and_open_ends():
    frame = load_series("dji", "1990-01-01", "1990-12-31")
    assert frame.index[0].year == 1990 and frame.index[-1].year == 1990
    assert 240 < len(frame) < 260
    assert load_series("dji", end="1896-06-30").index[0] == pd.Timestamp("1896-05-27")


def test_dji_missing_volume_is_refused_then_forward_filled_where_possible():
    with pytest.raises(KerasSeqError, match=r"column 'Volume' of dji has \d+ missing values .*`fill` ffill"):
        load_series("dji", "1929-01-01", "1931-12-31", columns=["Volume"])
    with pytest.raises(KerasSeqError, match="starts with missing values.*`start` 1930-02-03 or later"):
        load_series("dji", "1929-01-01", "1931-12-31", columns=["Volume"], fill="ffill")


# === CSV files ===


def test_csv_date_column_is_detected_and_columns_selected(write_csv):
    path = write_csv("Symbol,timestamp,a,y\nX,2021-01-04,1,10\nX,2021-01-05,2,11\nX,2021-01-06,3,12\n")
    frame = DataSpec(source=str(path), target="y", features=("a", "y")).load()
    assert list(frame.columns) == ["a", "y"]
    assert list(frame.index.strftime("%Y-%m-%d")) == ["2021-01-04", "2021-01-05", "2021-01-06"]
    assert frame["y"].tolist() == [10.0, 11.0, 12.0]


def test_csv_first_column_dates_without_a_date_name(write_csv):
    path = write_csv("when,value\n2021-01-04,1.5\n2021-01-05,2.5\n")
    frame = load_series(str(path), columns=["value"])
    assert frame.index[1] == pd.Timestamp("2021-01-05")


def test_csv_explicit_date_column(write_csv):
    path = write_csv("x,obs\n1.0,2021-03-01\n2.0,2021-03-02\n")
    assert load_series(str(path), date_column="obs", columns=["x"])["x"].tolist() == [1.0, 2.0]
    with pytest.raises(KerasSeqError, match="date column 'nope' not found .* Available columns: 'x', 'obs'"):
        load_series(str(path), date_column="nope")


def test_unsorted_dates_and_repeated_rows_are_repaired_with_warnings(write_csv):
    path = write_csv("Date,Close\n2021-01-06,3\n2021-01-04,1\n2021-01-05,2\n2021-01-05,2\n")
    with pytest.warns(DataWarning) as caught:
        frame = load_series(str(path), columns=["Close"])
    messages = " ".join(str(w.message) for w in caught)
    assert "not in ascending order" in messages and "1 repeated rows" in messages and "2021-01-05" in messages
    assert frame["Close"].tolist() == [1.0, 2.0, 3.0]
    assert frame.index.is_monotonic_increasing and frame.index.is_unique


def test_pandas_date_warnings_become_one_line_data_warnings(write_csv):
    """pandas' own warnings about how it read the dates reach the user as keras-seq's one-line DataWarnings."""
    import warnings

    path = write_csv("Date,Close\n" + "".join(f"{day:02d}.01.2020,{100 + day}\n" for day in range(13, 29)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = load_series(str(path))
    assert [(w.category, str(w.message)) for w in caught] == [
        (DataWarning, f"dates in {path} were read day first, the format of its first row ('13.01.2020' is 2020-01-13).")
    ]
    assert frame.index[0] == pd.Timestamp("2020-01-13") and frame.index[-1] == pd.Timestamp("2020-01-28")
    # an ambiguous first row (01.01.2020) is read month first until a row only fits day first
    path = write_csv("Date,Close\n" + "".join(f"{day:02d}.01.2020,{100 + day}\n" for day in range(1, 20)), name="dmy.csv")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = load_series(str(path))
    assert [(w.category, str(w.message)) for w in caught] == [
        (DataWarning, f"dates in {path} were read day first: month first, '13.01.2020' is not a date.")
    ]
    assert list(frame.index[:2]) == [pd.Timestamp("2020-01-01"), pd.Timestamp("2020-01-02")] and len(frame) == 19
    path = write_csv("Date,Close\n01.02.2020,1\n13.02.2020,2\n2020-02-14,3\n", name="mixed.csv")
    with pytest.raises(KerasSeqError, match="not dates in the format of its first row: row 3 '13.02.2020', row 4 '2020-02-14'"):
        load_series(str(path))
    path = write_csv("Date,Close\n" + "".join(f"{hour:02d}:00,{100 + hour}\n" for hour in range(5)), name="times.csv")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_series(str(path))
    assert [w.category for w in caught] == [DataWarning]
    assert "not in one format that pandas recognises" in str(caught[0].message)


def test_a_date_with_two_different_rows_is_refused(write_csv):
    path = write_csv("Date,Close,Open\n2021-01-04,1,1\n2021-01-05,2,2\n2021-01-05,2,2.5\n2021-01-06,3,3\n")
    with pytest.raises(KerasSeqError, match="2021-01-05 appears twice with different values. Keep one row per date."):
        load_series(str(path))


def test_rows_dated_after_today_are_refused(write_csv):
    tomorrow_but_one = (pd.Timestamp.now() + pd.Timedelta(days=3)).date()
    path = write_csv(f"Date,Close\n2021-01-04,1\n{tomorrow_but_one},2\n")
    with pytest.raises(KerasSeqError, match=f"1 rows dated after today \\(first: {tomorrow_but_one}\\)"):
        load_series(str(path))
    assert len(load_series(str(write_csv(f"Date,Close\n2021-01-04,1\n{pd.Timestamp.now().date()},2\n")))) == 2


@pytest.mark.parametrize(
    "text, columns, fill, message",
    [
        ("Date,Close\n2021-01-04,1\n", ["Price"], None, "column 'Price' not found in .*Available columns: 'Close'"),
        ("Date,Close\n2021-01-04,1\n2021-01-05,abc\n2021-01-06,--\n", ["Close"], None,
         "column 'Close' .* non-numeric values: 2021-01-05 'abc', 2021-01-06 '--'"),
        ("Date,Close\n2021-01-04,1\n2021-01-05,\n2021-01-06,3\n", ["Close"], None,
         "column 'Close' .* 1 missing values \\(first: 2021-01-05\\).*`fill` ffill"),
        ("Date,Close\n2021-01-04,1\n05/01/2021,2\n", ["Close"], None, "column 'Date' .* not dates .* row 3 '05/01/2021'"),
        ("Date,Close\n", ["Close"], None, "has a header but no rows"),
        ("", ["Close"], None, "is empty"),
        ("a;b;c\n1;2;3\n", ["Close"], None, "has no columns besides its dates"),
        ("a,b\n1,2\n", ["Close"], None, "no date column found"),
    ],
)
def test_bad_csv_gets_one_clear_line(write_csv, text, columns, fill, message):
    path = write_csv(text)
    with pytest.raises(KerasSeqError, match=message) as caught:
        load_series(str(path), columns=columns, fill=fill)
    assert "\n" not in str(caught.value)


def test_missing_values_are_forward_filled_on_request(write_csv):
    path = write_csv("Date,Close\n2021-01-04,1\n2021-01-05,\n2021-01-06,3\n")
    assert load_series(str(path), columns=["Close"], fill="ffill")["Close"].tolist() == [1.0, 1.0, 3.0]


def test_binary_file_is_refused(write_csv):
    path = write_csv(bytes(range(256)) * 4, name="model.bin", mode="wb")
    with pytest.raises(KerasSeqError, match="model.bin is not (UTF-8 text|a readable CSV)"):
        load_series(str(path))


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(KerasSeqError, match="data file not found: .*nope.csv. Expected a CSV file, 'dji'"):
        load_series(str(tmp_path / "nope.csv"))
    with pytest.raises(KerasSeqError, match="is a folder"):
        load_series(str(tmp_path))


@pytest.mark.parametrize(
    "start, end, message",
    [
        ("2022-01-01", "2021-01-01", "`start` is after `end`"),
        ("yesterday-ish", None, "`start` is not a date"),
        ("2030-01-01", "2031-01-01", "no rows of dji in the range 2030-01-01..2031-01-01; the data covers 1896-05-27..2023-02-10"),
    ],
)
def test_bad_date_ranges(start, end, message):
    with pytest.raises(KerasSeqError, match=message):
        load_series("dji", start, end)


def test_dataspec_checks_its_options():
    with pytest.raises(KerasSeqError, match="names a column twice: Close"):
        DataSpec(features=("Close", "Close"))
    with pytest.raises(KerasSeqError, match="unknown fill .*Expected one of: ffill"):
        DataSpec(fill="bfill")
    assert DataSpec(features=("Volume",)).columns == ["Volume", "Close"]
    assert DataSpec().columns == ["Close"]


# === Online sources, against a local server ===

STOOQ_CSV = "Date,Open,High,Low,Close,Volume\r\n2021-01-04,30627.47,30674.28,29881.82,30223.89,475742500\r\n" \
            "2021-01-05,30204.25,30504.89,30141.78,30391.6,351250000\r\n2021-01-06,30362.78,31022.65,30313.07,30829.4,500001300\r\n"
FRED_CSV = "observation_date,DJIA\n2021-01-01,\n2021-01-04,30223.89\n2021-01-05,30391.60\n2021-01-06,30829.40\n"


def test_stooq_downloads_once_then_reads_its_cache(local_server, monkeypatch, tmp_path, closed_port_url):
    local_server.routes["/q/d/l/"] = (200, STOOQ_CSV)
    monkeypatch.setenv("KERAS_SEQ_STOOQ_URL", local_server.url + "/q/d/l/")
    frame = load_series("stooq:^DJI", cache_dir=tmp_path, columns=["Close"])
    assert frame["Close"].tolist() == [30223.89, 30391.6, 30829.4]
    assert local_server.requests == ["/q/d/l/?s=%5Edji&i=d"]
    # Offline now: the cache answers.
    monkeypatch.setenv("KERAS_SEQ_STOOQ_URL", closed_port_url + "/q/d/l/")
    again = load_series("stooq:^DJI", cache_dir=tmp_path, start="2021-01-05")
    assert again.index[0] == pd.Timestamp("2021-01-05") and len(local_server.requests) == 1
    with pytest.raises(KerasSeqError, match=r"could not download stooq:\^DJI from .*: .*offline, use the embedded data \(`source` dji\)"):
        load_series("stooq:^DJI", cache_dir=tmp_path, refresh=True)


def test_stooq_without_data_or_failing_is_one_line(local_server, monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_SEQ_STOOQ_URL", local_server.url + "/q/d/l/")
    local_server.routes["/q/d/l/"] = (200, "No data")
    with pytest.raises(KerasSeqError, match=r"stooq returned no price data for \^NOPE \(its answer began: 'No data'\)"):
        load_series("stooq:^NOPE", cache_dir=tmp_path)
    local_server.routes["/q/d/l/"] = (503, "busy")
    with pytest.raises(KerasSeqError, match=r"could not download stooq:\^DJI .*HTTP 503"):
        load_series("stooq:^DJI", cache_dir=tmp_path)
    assert not list(tmp_path.iterdir())  # nothing cached from failures


def test_fred_drops_holidays_and_caches(local_server, monkeypatch, tmp_path, closed_port_url):
    local_server.routes["/graph/fredgraph.csv"] = (200, FRED_CSV)
    monkeypatch.setenv("KERAS_SEQ_FRED_URL", local_server.url + "/graph/fredgraph.csv")
    frame = load_series("fred:DJIA", cache_dir=tmp_path, columns=["DJIA"])
    assert frame["DJIA"].tolist() == [30223.89, 30391.6, 30829.4]
    assert local_server.requests == ["/graph/fredgraph.csv?id=DJIA"]
    monkeypatch.setenv("KERAS_SEQ_FRED_URL", closed_port_url + "/graph/fredgraph.csv")
    assert len(load_series("fred:DJIA", cache_dir=tmp_path)) == 3
    with pytest.raises(KerasSeqError, match="could not download fred:DJIA from .*offline, use the embedded data") as caught:
        load_series("fred:DJIA", cache_dir=tmp_path, refresh=True)
    assert "\n" not in str(caught.value)


def test_online_source_without_a_name():
    with pytest.raises(KerasSeqError, match="names no series. Expected e.g. 'fred:DJIA'"):
        load_series("fred:")


# === Hostile or unusual files (issue 14) ===


def test_a_csv_with_too_many_columns_is_refused_from_its_header(write_csv, run_cli, tmp_path):
    from keras_seq.data.reading import MAX_COLUMNS

    header = "Date," + ",".join(f"c{i}" for i in range(MAX_COLUMNS + 1))
    path = write_csv(header + "\n" + "2020-01-01," + ",".join("1" for _ in range(MAX_COLUMNS + 1)) + "\n")
    code, _, err = run_cli("fit", "--data", path, "--target", "c1", "--out", tmp_path / "runs")
    assert code == 1 and err.count("\n") == 1, err
    assert f"has {MAX_COLUMNS + 2:,} columns; keras-seq reads at most {MAX_COLUMNS:,}" in err
    assert not (tmp_path / "runs").exists()
    endless = write_csv("a," * (3 << 20), name="endless.csv")  # one 6 MiB header line: never parsed
    with pytest.raises(KerasSeqError, match="has a header row longer than 4 MiB"):
        load_series(str(endless))


def test_mixed_utc_offsets_are_read_in_utc_with_a_warning(write_csv):
    path = write_csv("Date,Close\n2024-03-30T00:00:00+01:00,1\n2024-03-31T00:00:00+02:00,2\n2024-04-01T00:00:00+02:00,3\n")
    with pytest.warns(DataWarning, match="have mixed UTC offsets; they were converted to UTC"):
        frame = load_series(str(path), columns=["Close"])
    assert list(frame.index) == [pd.Timestamp("2024-03-29 23:00"), pd.Timestamp("2024-03-30 22:00"),
                                 pd.Timestamp("2024-03-31 22:00")]


def test_integer_years_are_years_and_a_year_column_is_found(write_csv):
    rows = "".join(f"{year},{year % 11}.0\n" for year in range(1700, 2009))
    frame = load_series(str(write_csv("YEAR,SUNACTIVITY\n" + rows)), columns=["SUNACTIVITY"])
    assert frame.index[0] == pd.Timestamp("1700-01-01") and frame.index[-1] == pd.Timestamp("2008-01-01")
    assert len(frame) == 309
    compact = load_series(str(write_csv("date,v\n20200130,1\n20200131,2\n20200203,3\n", name="compact.csv")))
    assert list(compact.index) == list(pd.to_datetime(["2020-01-30", "2020-01-31", "2020-02-03"]))


def test_a_numeric_column_named_as_the_date_column_is_not_dates(write_csv):
    path = write_csv("Date,Close\n2020-01-01,101.5\n2020-01-02,101.5\n2020-01-03,99.25\n")
    with pytest.raises(KerasSeqError, match="column 'Close' of .* neither dates nor whole steps .*101.5.*`date_column`"):
        load_series(str(path), date_column="Close")


# === Series without a calendar: integer steps (issue 34) ===


def test_an_integer_step_column_numbers_the_rows_found_by_name_or_given(write_csv):
    with pytest.warns(DataWarning, match="steps in .* were not in ascending order; sorted them"):
        found = load_series(str(write_csv("t,y\n3,1.5\n1,0.5\n2,1.0\n")), columns=["y"])
    assert found.index.name == "step" and found.index.tolist() == [1, 2, 3] and found["y"].tolist() == [0.5, 1.0, 1.5]
    # A column named like a step is steps even where its numbers could be years; a given one of other numbers too.
    years = load_series(str(write_csv("step,y\n1999,1\n2000,2\n", name="s.csv")), columns=["y"])
    assert years.index.tolist() == [1999, 2000]
    given = load_series(str(write_csv("n,y\n7,1\n8,2\n9,3\n", name="n.csv")), columns=["y"], date_column="n",
                        start="8")
    assert given.index.tolist() == [8, 9]
    with pytest.raises(KerasSeqError, match="numbered by steps, not dates, and `start`/`end` 2020-01-01 is a date"):
        load_series(str(write_csv("n,y\n7,1\n8,2\n", name="n2.csv")), date_column="n", start="2020-01-01")


def test_steps_must_be_consecutive_in_every_series(write_csv):
    with pytest.raises(KerasSeqError, match=r"steps in .*gap.csv are not consecutive: step 2 is followed by 4 \(1 such gap\)"):
        load_series(str(write_csv("t,y\n1,1\n2,2\n4,3\n", name="gap.csv")), columns=["y"])
    table = write_csv("id,t,y\nA,1,1\nA,2,2\nB,1,3\nB,2,4\nB,5,5\nB,6,6\n", name="long.csv")
    with pytest.raises(KerasSeqError, match=r"long.csv \(series B\) are not consecutive: step 2 is followed by 5"):
        DataSpec(source=str(table), target="y", series_column="id", series="all").load()


def test_steps_carry_no_calendar_and_are_forecast_by_number(write_csv):
    from keras_seq.evaluation.report import infer_season
    from keras_seq.workflows.predict import future_dates

    path = write_csv("t,y\n1,1\n2,2\n3,4\n")
    with pytest.raises(KerasSeqError, match="`calendar` makes inputs from dates, and the data is numbered by steps"):
        DataSpec(source=str(path), target="y", calendar=("month",)).load()
    frame = DataSpec(source=str(path), target="y").load()
    assert infer_season(frame.index)[0] == 1 and "give `season`" in infer_season(frame.index)[1]
    assert future_dates(frame.index, 2).tolist() == [4, 5] and future_dates(frame.index, 2).name == "step"



def test_one_series_of_a_long_table_is_read_by_its_name():
    from conftest import REPO

    path = REPO / "tests" / "bad_inputs" / "files" / "long_table.csv"
    raw = pd.read_csv(path, parse_dates=["date"])
    frame = DataSpec(source=str(path), target="price", features=("price", "volume"), series_column="symbol",
                     series="MSFT").load()
    msft = raw[raw["symbol"] == "MSFT"].set_index("date")
    assert list(frame.columns) == ["price", "volume"] and len(frame) == 120
    np.testing.assert_array_equal(frame["price"].to_numpy(), msft["price"].to_numpy())
    assert (frame.index == msft.index).all()
    with pytest.raises(KerasSeqError, match="`series` \\('MSFT'\\) needs `series_column`"):
        DataSpec(source=str(path), series="MSFT")
    # the series column alone reads every series (as `series` all)
    every = DataSpec(source=str(path), target="price", series_column="symbol")
    assert every.series == "all" and every.panel_column == "symbol"
    assert sorted(every.load()["symbol"].unique()) == ["AAPL", "IBM", "MSFT"]


# === A source is a plug-in: it recognises its names and reads them (issue 33) ===


class JsonLines:
    """A data source written outside keras-seq: `.jsonl` files of {"date": ..., column: value} records."""

    name, local = "jsonl", True

    def recognises(self, source):
        return source.endswith(".jsonl")

    def read(self, source, **options):
        frame = pd.read_json(source, lines=True, convert_dates=["date"])
        return frame.set_index(pd.DatetimeIndex(frame.pop("date"), name="Date"))


def test_a_new_source_is_read_by_fit_and_predict(tmp_path, run_cli, monkeypatch):
    from keras_seq.data import sources

    monkeypatch.setattr(sources, "_SOURCES", list(sources._SOURCES))
    sources.register_source(JsonLines())
    rows = load_series("dji", start="2022-01-01")[["Close"]].reset_index()
    rows.rename(columns={"Date": "date"}).to_json(tmp_path / "dji.jsonl", orient="records", lines=True, date_format="iso")
    code, out, err = run_cli("fit", "--data", tmp_path / "dji.jsonl", "--window", "8", "--units", "2", "--layers", "1",
                             "--epochs", "1", "--out", tmp_path / "runs")
    assert code == 0, err
    (run,) = (tmp_path / "runs").iterdir()
    assert json.loads((run / "config.json").read_text())["data"]["rows"] == len(rows)
    code, out, err = run_cli("predict", run, "--data", tmp_path / "dji.jsonl", "--csv", tmp_path / "f.csv")
    assert code == 0, err
    assert pd.read_csv(tmp_path / "f.csv")["date"].iloc[0] > str(rows["Date"].iloc[-1].date())
    assert sources.csv_path(str(tmp_path / "dji.jsonl")) is not None  # a local file: never written over


def test_a_csv_of_dates_and_one_numeric_column_needs_no_target(run_cli, write_csv, tmp_path):
    """Monthly sales in one column: `fit --data` trains on it without `--target` (issue 35: it failed on the default
    target, Close); a file with several numeric columns still needs one."""
    sales = 100 + 20 * np.sin(np.arange(72) * np.pi / 6) + np.arange(72)
    path = write_csv("date,sales\n" + "".join(f"{d:%Y-%m-%d},{v:.2f}\n" for d, v in
                                             zip(pd.date_range("2015-01-01", periods=72, freq="MS"), sales)))
    code, out, err = run_cli("fit", "--data", path, "--window", "8", "--units", "4", "--layers", "1", "--epochs",
                             "1", "--out", tmp_path / "runs", "-q")
    assert code == 0, err
    (run,) = (tmp_path / "runs").iterdir()
    assert json.loads((run / "config.json").read_text())["data"]["target"] == "sales" and "sales's units" in out
    two = write_csv("date,sales,price\n2015-01-01,1,2\n2015-02-01,2,3\n", name="two.csv")
    code, _, err = run_cli("fit", "--data", two, "--out", tmp_path / "runs2", "-q")
    assert code != 0 and "Close" in err and not (tmp_path / "runs2").exists()
