"""Online sources' downloads (stooq, FRED): bounded in bytes and time, cached on disk once, read from the cache
only through regular files."""

from __future__ import annotations

import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pandas as pd

from keras_seq.data.reading import read_csv_frame
from keras_seq.errors import KerasSeqError


STOOQ_URL = "https://stooq.com/q/d/l/"
FRED_URL = "https://fred.stlouisfed.org/graph/fredgraph.csv"
OFFLINE_HINT = "If you are offline, use the embedded data (`source` dji) or a CSV file (`source` path.csv)."


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


def cache_file(cache_dir, kind: str, symbol: str) -> Path:
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


def load_stooq(symbol: str, cache_dir, refresh: bool) -> pd.DataFrame:
    source = f"stooq:{symbol}"
    path = cache_file(cache_dir, "stooq", symbol)
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


def load_fred(series: str, cache_dir, refresh: bool) -> pd.DataFrame:
    source = f"fred:{series}"
    path = cache_file(cache_dir, "fred", series)
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
