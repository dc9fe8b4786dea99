"""Forecast from any keras-seq artifact: a run folder, `.keras`, SavedModel or ONNX.

An artifact is recognized by itself (each format of `keras_seq.artifacts`
detects and loads its own). Exported artifacts are checked against
the sha256 in their `model_card.json` before they are loaded; a mismatch is
refused. ONNX files run on onnxruntime and SavedModels on TensorFlow, without
Keras.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from keras_seq.artifacts import CARD_FILE, detect_format
from keras_seq.data.calendar import calendar_columns, lead_columns
from keras_seq.data.reading import STEP, is_steps, label_of
from keras_seq.errors import KerasSeqError
from keras_seq.safety import artifact_sha256, plain_name, read_text_bounded

@dataclasses.dataclass
class Artifact:
    """A loaded model and what it reads: `run(x)` maps `(batch, window, features)` raw values to raw forecasts."""

    kind: str  # "run", "keras", "savedmodel" or "onnx"
    path: Path
    run: object
    window: int
    horizon: int
    target_kind: str
    features: list
    target: str
    data: object  # the training data's options: a `DataSpec` (or its options as a dict)
    series_vocabulary: list | None = None  # the series known at training time (index k+1); None: windows alone
    quantiles: list = dataclasses.field(default_factory=list)  # a quantile model's output levels; empty: a point model
    pad: bool = False  # takes NaN before a series' first value: a series shorter than the window is forecast
    model: object = None  # the Keras model of a run folder or .keras file

    def __post_init__(self):
        if isinstance(self.data, dict):
            from keras_seq.config.options import from_record

            self.data = from_record("data", self.data, target=self.target, cache_dir=None)

    @property
    def needed_rows(self) -> int:
        """The rows a series needs to be forecast: a window's, or one where the model masks the missing start."""
        return 1 if self.pad else self.window

    def history(self, frame: pd.DataFrame) -> np.ndarray:
        """The window a forecast of `frame`'s rows reads: its last `window` rows of the model's features, float32,
        left-padded with NaN where the series is shorter (a model that masks them)."""
        values = frame[self.features].to_numpy(dtype="float32")[-self.window :]
        if np.isnan(values).all():
            from keras_seq.data.reading import label_of

            raise KerasSeqError(f"the window that ends on {label_of(frame.index[-1])} holds no observed value (its last "
                                f"{len(values)} rows are all missing): there is nothing to forecast from. Give rows "
                                "with values, or `end` before the gap.")
        if len(values) < self.window:
            values = np.concatenate([np.full((self.window - len(values), values.shape[1]), np.nan, "float32"), values])
        return values

    def indices(self, names) -> np.ndarray | None:
        """The series input for `names` (k+1 for the k-th known series, 0 for an unseen one; warned), or None
        for a model that reads windows alone."""
        from keras_seq.data.windows import series_indices
        from keras_seq.errors import DataWarning

        if self.series_vocabulary is None:
            return None
        index = series_indices(names, self.series_vocabulary)
        unseen = [str(name) for name, k in zip(names, index) if k == 0]
        if unseen:
            warnings.warn(f"{len(unseen)} of {len(index)} series were not seen in training ({', '.join(unseen[:10])}): "
                          "they are forecast as a new series (scaled by their window, with the mean series vector).",
                          DataWarning, stacklevel=3)
        return index


def _find_card(path: Path, levels: int) -> tuple[Path | None, dict | None]:
    """The nearest `model_card.json` in the artifact's folder or up to `levels` folders above."""
    start = path.parent if path.is_file() else path
    for folder in [start, *start.parents][: levels + 1]:
        card = folder / CARD_FILE
        if card.is_file():
            try:
                return folder, json.loads(read_text_bounded(card))
            except (ValueError, UnicodeDecodeError):
                raise KerasSeqError(f"{card} is not valid JSON. Export the run again.") from None
    return None, None


def _listed(folder: Path, card: dict, path: Path, kind: str) -> tuple[dict | None, dict]:
    """The card's entry for the artifact at `path`, and the card that describes it: the folder's, or for an
    earlier version of the model (`artifacts.versions`) that version's own card, kept in `cards/`."""
    def entry_of(record):
        artifacts = record.get("artifacts") if isinstance(record, dict) else None
        entry = artifacts.get(kind) if isinstance(artifacts, dict) else None
        ok = isinstance(entry, dict) and plain_name(entry.get("path")) and (folder / entry["path"]).resolve() == path.resolve()
        return entry if ok else None

    if entry_of(card) is not None:
        return entry_of(card), card
    versions = card.get("model_versions") if isinstance(card, dict) else None
    for version in versions if isinstance(versions, list) else []:
        if entry_of(version) is not None and isinstance(version.get("version"), int):
            kept = folder / "cards" / f"{version['version']}.json"
            try:
                return entry_of(version), json.loads(read_text_bounded(kept)) if kept.is_file() else card
            except (ValueError, UnicodeDecodeError):
                raise KerasSeqError(f"{kept} is not valid JSON. Export the run again.") from None
    return None, card


def _checked(path: Path, kind: str, levels: int) -> dict:
    """The model card of an exported artifact, after checking the artifact's sha256."""
    folder, card = _find_card(path, levels)
    if card is None:
        raise KerasSeqError(f"no {CARD_FILE} found beside {path}. Predict from the export folder written by `keras-seq export`.")
    entry, card = _listed(folder, card, path, kind)
    if entry is None:
        raise KerasSeqError(f"{folder / CARD_FILE} does not list {path} as its {kind} artifact. Export the run again.")
    if artifact_sha256(path) != entry["sha256"]:
        raise KerasSeqError(
            f"{path} does not match the sha256 in {folder / CARD_FILE}: it was changed after export and may have "
            "been tampered with. Refusing to load it; export the run again."
        )
    return card


def load_artifact(path: str | Path, backend: str | None = None) -> Artifact:
    """Load a run folder, `.keras` file, SavedModel folder or `.onnx` file for forecasting.

    Raises:
        KerasSeqError: the path is none of these, a file is missing, or an
            exported artifact's sha256 differs from its model card.
    """
    from keras_seq.runs.folder import resolve_latest

    path = resolve_latest(path)
    if not path.exists():
        raise KerasSeqError(f"artifact not found: {path}. Give a run folder, a .keras file, a SavedModel folder or an .onnx file.")
    if path.is_dir() and (path / "config.json").is_file():
        return _run_folder_artifact(path, backend)
    fmt = detect_format(path)
    if fmt is not None:
        card = _checked(path, fmt.name, levels=fmt.card_levels)
        if fmt.uses_backend:
            from keras_seq.backend import use_backend

            use_backend(backend)
        from keras_seq.runs.folder import ModelIO

        return _artifact(fmt.name, path, fmt.load(path), ModelIO.of_card(card, CARD_FILE), CARD_FILE)
    if path.is_dir():
        raise KerasSeqError(f"{path} is not a run folder (no config.json) nor a SavedModel (no saved_model.pb).")
    raise KerasSeqError(f"{path} is not a keras-seq artifact. Expected a run folder, a .keras file, a SavedModel folder or an .onnx file.")


def _run_folder_artifact(path: Path, backend: str | None) -> Artifact:
    from keras_seq.backend import use_backend
    from keras_seq.artifacts import get_format
    from keras_seq.runs.folder import CONFIG_FILE, MODEL_FILE, ModelIO, read_run_config

    io = ModelIO.of_config(read_run_config(path))
    use_backend(backend)
    return _artifact("run", path, get_format("keras").load(path / MODEL_FILE), io, CONFIG_FILE)


def _artifact(kind: str, path: Path, loaded, io, record: str) -> Artifact:
    """An `Artifact` of what `io` (a `runs.folder.ModelIO`) says it reads, refused where the model's inputs and
    its record disagree on the series index or the windows."""
    if (loaded.series_name is None) != (io.series_vocabulary is None):
        has = "takes" if loaded.series_name else "does not take"
        raise KerasSeqError(f"{path} {has} a series index input, but its {record} "
                            f"{'lists no' if loaded.series_name else 'lists a'} series_vocabulary: the two do not "
                            "belong together. Export the run again.")
    declared = (io.window, len(io.features))
    if loaded.window_shape is not None and tuple(loaded.window_shape) != declared:
        raise KerasSeqError(f"{path} takes windows of {loaded.window_shape[0]} steps and {loaded.window_shape[1]} "
                            f"features, but its {record} says {declared[0]} and {declared[1]}: the two do not belong "
                            "together. Export the run again.")
    return Artifact(kind, path, loaded.run, **{field.name: getattr(io, field.name) for field in dataclasses.fields(io)},
                    model=loaded.model)


def forecast(artifact: Artifact, frame: pd.DataFrame, steps: int | None = None, name: str | None = None) -> pd.DataFrame:
    """Forecast the `steps` values after the last window of `frame`.

    With `steps` beyond the model's horizon and a univariate model (its only
    feature is the target), the forecast rolls forward on its own values.

    Args:
        artifact: Artifact. From `load_artifact`.
        frame: DataFrame. Dates in order, with the artifact's feature columns.
        steps: int or None. Values to forecast. Defaults to the horizon.
        name: str or None. The series' name, for a model that reads the
            series (`DataSpec.series_name`). Defaults to the target's.

    Returns:
        A DataFrame with columns `date` and the target's name.
    """
    steps = artifact.horizon if steps is None else _checked_steps(steps)
    if len(frame) < artifact.needed_rows:
        raise KerasSeqError(
            f"the data has {len(frame)} rows, fewer than the model's window of {artifact.window}. Give a longer date range."
        )
    _check_rolling(artifact, steps)
    history = artifact.history(frame)
    dates = future_dates(frame.index, steps)
    index = artifact.indices([name or artifact.target])
    values = _roll(artifact, history[None], steps, _future_rows(artifact, [dates]), index)
    return _table(artifact, {dates.name: dates}, values, steps)


def forecast_panel(artifact: Artifact, frame: pd.DataFrame, column: str, steps: int | None = None) -> pd.DataFrame:
    """Forecast the `steps` values after the last window of every series of a long frame, in one batch.

    A series with fewer rows than the model's window is left out, with a
    warning that names it.

    Args:
        frame: DataFrame. The series `column`, then the artifact's feature
            columns; each series' rows in date order (as `DataSpec.load`
            returns a panel).

    Returns:
        A long DataFrame of `column`, `date` and the target's name: `steps`
        rows per series, in the series' order.
    """
    from keras_seq.errors import DataWarning

    steps = artifact.horizon if steps is None else _checked_steps(steps)
    _check_rolling(artifact, steps)
    parts = [(name, part) for name, part in frame.groupby(column, sort=False)]
    short = [f"{name} ({len(part)} rows)" for name, part in parts if len(part) < artifact.needed_rows]
    kept = [(name, part) for name, part in parts if len(part) >= artifact.needed_rows]
    if short:
        warnings.warn(f"{len(short)} of {len(parts)} series have fewer rows than the model's window of "
                      f"{artifact.window} and are not forecast: {', '.join(short[:10])}.", DataWarning, stacklevel=2)
    if not kept:
        raise KerasSeqError(f"no series has the model's window of {artifact.window} rows. Give a longer date range.")
    histories = np.stack([artifact.history(part) for _, part in kept])
    dates = [future_dates(part.index, steps) for _, part in kept]
    values = _roll(artifact, histories, steps, _future_rows(artifact, dates), artifact.indices([n for n, _ in kept]))
    names = np.repeat([name for name, _ in kept], steps)
    return _table(artifact, {column: names, dates[0].name: np.concatenate(dates)}, values, steps)


def _table(artifact: Artifact, columns: dict, values, steps: int) -> pd.DataFrame:
    """The forecast table: `columns`, then the forecast (a quantile model's median), then each quantile level's
    column `<target>_q<level>` (empty past the model's horizon, with a warning)."""
    from keras_seq.errors import DataWarning

    if not artifact.quantiles:
        return pd.DataFrame({**columns, artifact.target: values.reshape(-1)})
    values, bands = values
    if steps > artifact.horizon:
        warnings.warn(f"the quantiles are the model's for its horizon of {artifact.horizon} step(s); the steps after "
                      "it are the median rolled forward, without quantiles (their columns are left empty).",
                      DataWarning, stacklevel=3)
    table = {**columns, artifact.target: values.reshape(-1)}
    table |= {f"{artifact.target}_q{level:g}": bands[..., k].reshape(-1) for k, level in enumerate(artifact.quantiles)}
    return pd.DataFrame(table)


def _calendar_of(artifact: Artifact) -> list:
    return calendar_columns(artifact.data.calendar)


def _check_rolling(artifact: Artifact, steps: int) -> None:
    """Refuse steps beyond the horizon unless every input but the target is known ahead (calendar columns)."""
    per_call = artifact.horizon if artifact.target_kind == "next" else 1
    others = set(artifact.features) - {artifact.target} - set(_calendar_of(artifact))
    if steps > per_call and (others or artifact.target not in artifact.features):
        raise KerasSeqError(
            f"`steps` {steps} goes beyond the model's horizon of {per_call}, which needs a univariate model "
            f"(it reads {', '.join(artifact.features)} to forecast {artifact.target}). Use `steps` {per_call} or less."
        )


def _future_rows(artifact: Artifact, dates: list) -> np.ndarray:
    """`(series, steps, features)` input rows of the forecast dates: their calendar columns, the rest 0."""
    from keras_seq.data.calendar import add_calendar

    rows = np.zeros((len(dates), len(dates[0]), len(artifact.features)), dtype="float32")
    names = artifact.data.calendar
    for k, these in enumerate(dates if names else ()):
        made = add_calendar(pd.DataFrame(index=these), names)
        for column in made.columns:
            rows[k, :, artifact.features.index(column)] = made[column].to_numpy()
    return rows


def _roll(artifact: Artifact, histories: np.ndarray, steps: int, future: np.ndarray, index=None) -> np.ndarray:
    """`(n, steps)` forecasts after each of `histories` (`(n, window, features)`), rolling the model on.

    Past the horizon the forecasts become the newest inputs, in rows of
    `future` (the calendar of the forecast dates; checked by `_check_rolling`).
    `index` is the series input of a model that reads the series.
    """
    collected, done, bands = [], 0, None
    while True:
        output = artifact.run(histories) if index is None else artifact.run(histories, index)
        output = np.asarray(output, dtype="float64").reshape(len(histories), -1)
        if artifact.quantiles:  # (n, horizon, levels): the median rolls on; the quantiles are of the first call's steps
            output = output.reshape(len(histories), -1, len(artifact.quantiles))
            bands = output if bands is None else bands
            output = output[..., artifact.quantiles.index(0.5)]
        new = output[:, -1:] if artifact.target_kind == "sequence" else output
        collected.append(new)
        done += new.shape[1]
        if done >= steps:
            break
        rows = future[:, done - new.shape[1] : done].copy()
        rows[:, :, artifact.features.index(artifact.target)] = new
        histories = np.concatenate([histories, rows], axis=1)[:, -artifact.window :]
    values = np.concatenate(collected, axis=1)[:, :steps]
    if bands is None:
        return values
    ahead = np.full((*values.shape, len(artifact.quantiles)), np.nan)  # no quantiles past the horizon
    ahead[:, : bands.shape[1]] = bands[:, :steps]
    return values, ahead


MAX_STEPS = 10_000  # values one forecast rolls forward: decades of days


def _checked_steps(steps) -> int:
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise KerasSeqError(f"`steps` must be an integer of at least 1. Received: steps={str(steps)[:40]}")
    if steps > MAX_STEPS:
        raise KerasSeqError(f"`steps` must be at most {MAX_STEPS:,} (decades of days). Received: steps={steps}")
    return steps


def future_dates(index: pd.Index, steps: int) -> pd.Index:
    """The `steps` dates after `index`, in the data's own frequency (named `date`); for rows numbered by steps, the
    next `steps` step numbers (named `step`).

    A frequency pandas can infer from the last 50 dates (hourly, business
    daily, weekly, month start, year end, ...) is followed exactly. Trading
    days with holidays (gaps of 1 to 4 days at midnight) continue as
    business days; dates that all fall on month or year starts or ends keep
    doing so; anything else steps by the median spacing.

    Example:
    >>> [str(d.date()) for d in future_dates(pd.date_range("2020-01-01", periods=6, freq="MS"), 2)]
    ['2020-07-01', '2020-08-01']
    >>> future_dates(pd.Index([7, 8, 9]), 2).tolist()
    [10, 11]
    """
    if is_steps(index):
        return pd.Index(np.arange(int(index[-1]) + 1, int(index[-1]) + 1 + steps, dtype="int64"), name=STEP)
    tail = index[-50:]
    offset = _inferred_offset(tail)
    if offset is None:
        gaps = np.diff(tail.values).astype("timedelta64[s]").astype("float64")
        spacing = pd.Timedelta(seconds=float(np.median(gaps))) if len(gaps) else pd.Timedelta(days=1)
        at_midnight = bool((tail == tail.normalize()).all())
        if at_midnight and pd.Timedelta(days=1) <= spacing <= pd.Timedelta(days=4):
            offset = pd.offsets.BDay()
        elif at_midnight and spacing >= pd.Timedelta(days=28):  # calendar steps with some missing: by the calendar
            o = pd.offsets
            candidates = ((o.YearBegin(), o.YearEnd()) if spacing >= pd.Timedelta(days=360) else
                          (o.QuarterBegin(startingMonth=1), o.QuarterEnd(startingMonth=3))
                          if spacing >= pd.Timedelta(days=80) else (o.MonthBegin(), o.MonthEnd()))
            offset = next((c for c in candidates if all(c.is_on_offset(d) for d in tail)), None)
        if offset is None:
            return pd.DatetimeIndex([index[-1] + spacing * (k + 1) for k in range(steps)], name="date")
    return pd.date_range(index[-1], periods=steps + 1, freq=offset, name="date")[1:]


def _inferred_offset(tail: pd.DatetimeIndex):
    if len(tail) < 3:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas 3 warns that infer_freq will return an offset
        try:
            freq = pd.infer_freq(tail)
        except (ValueError, TypeError):
            return None
    return pd.tseries.frequencies.to_offset(freq) if freq is not None else None


def date_format(dates) -> str | None:
    """`%Y-%m-%d`, with the time of day when any date has one; None for step numbers or no dates at all (a forecast
    table's `step` column, or none named `date`)."""
    if dates is None or not pd.api.types.is_datetime64_any_dtype(dates):
        return None
    dates = pd.DatetimeIndex(dates)
    return "%Y-%m-%d" if bool((dates == dates.normalize()).all()) else "%Y-%m-%d %H:%M"


PREDICT_DATA = ("source", "start", "end", "series", "series_column", "future")


def predict_artifact(path: str | Path, *, steps: int | None = None, backend: str | None = None,
                     csv: str | Path | None = None, mc_samples: int | None = None, actuals: str | Path | None = None,
                     **data) -> pd.DataFrame:
    """Load an artifact and the data it reads, and forecast after the data's last window.

    A model trained on several series forecasts every one of them (or those
    of `series`), as a long table of the series column, `date` and the
    forecast.

    Args:
        path: path. A run folder, `.keras` file, SavedModel folder or `.onnx` file.
        steps: int or None. Values to forecast. Defaults to the horizon.
        backend: str or None. Keras backend for run folders and `.keras` files.
        csv: path or None. Also write the forecast to this CSV (never over
            the artifact or the data it reads). Defaults to `None`.
        mc_samples: int or None. MC dropout: the forecast's quantiles
            (`keras_seq.evaluation.mc_dropout.MC_LEVELS`) from that many runs of a
            point model with its dropout on (run folders and `.keras`
            files). Defaults to `None` (off).
        actuals: path or None. The rows that arrived since the run's data
            ended, read as `source` (`_track_actuals`). Defaults to `None`.
        **data: what to read, each defaulting to the model's training data:
            `source` (as `DataSpec.source`), `start` and `end` (dates);
            `series` (a name, a tuple of names or "all": the series to
            forecast, of a panel model's own data or of a long table
            `source`), `series_column` (with `source`: the long table's
            column that names each row's series), and `future` (a CSV path:
            a model with future features reads their values for the dates it
            forecasts from it, a date column, the series column of a panel
            and those columns).

    Returns:
        A DataFrame of `date` and forecast values (of a panel: the series
        column first).
    """
    from keras_seq.data.sources import csv_path

    source, series = _actuals_source(actuals, data), data.get("series")
    if steps is not None:
        _checked_steps(steps)  # before loading anything
    if csv is not None:
        check_output_path(csv, [path, csv_path(source), data.get("future")])
    artifact = load_artifact(path, backend=backend)
    artifact = _with_mc_dropout(artifact, mc_samples) if mc_samples is not None else artifact
    read = _predicted_data(path, artifact, source, series, data.get("series_column"))
    read = dataclasses.replace(read, **{k: data[k] for k in ("start", "end") if data.get(k) is not None})
    if csv is not None:
        check_output_path(csv, [csv_path(read.source)])
    made = {*calendar_columns(read.calendar),  # computed from the dates and the `future` table, not read
            *lead_columns(read.future_features, artifact.horizon)}
    spec = dataclasses.replace(read, target=artifact.target, features=tuple(f for f in artifact.features if f not in made))
    frame = spec.load(quote=source is not None)  # a path from a run folder or model card is never quoted from
    frame = _with_future(frame, artifact, data.get("future"), spec.panel_column)
    adapted = _track_actuals(artifact, spec, frame) if actuals is not None else None
    table = _forecast_spec(artifact, spec, frame, steps, series, own=source is None or read.targets is not None)
    table.attrs.update({"adapted": adapted} if adapted else {})
    if csv is not None:
        write_forecast(table, csv)
    return table


def _actuals_source(actuals, data: dict):
    """The source `predict` reads (its options checked): `actuals` where given (the data the forecast starts
    from), else `source`."""
    unknown = sorted(set(data) - set(PREDICT_DATA))
    if unknown:
        raise KerasSeqError(f"unknown predict option '{unknown[0]}'. Expected some of: {', '.join(PREDICT_DATA)}.")
    if actuals is None:
        return data.get("source")
    if data.get("source") is not None:
        raise KerasSeqError("`actuals` is also the data the forecast starts from: drop `source`.")
    data["source"] = str(actuals)
    return data["source"]


def _track_actuals(artifact: Artifact, spec, frame) -> str:
    """`predict`'s `actuals`: a run folder fitted with `conformal_rate` tracks its conformal offsets through the
    actual values in `frame` after the date they were last tracked to (`evaluation.adaptive.track_new_actuals`),
    in memory, before it forecasts; what moved, in one line (the table's `attrs["adapted"]`)."""
    from keras_seq.evaluation.adaptive import track_new_actuals
    from keras_seq.runs.run import SavedRun

    layers = [layer.name for layer in artifact.model.layers] if artifact.kind == "run" else []
    if "conformal" not in layers:
        raise KerasSeqError(f"`actuals` tracks the conformal intervals of a run folder's model, and {artifact.path} is "
                            f"{'a run without conformal intervals' if artifact.kind == 'run' else 'an exported file'}. "
                            "Give the run folder of a fit with `conformal` and `conformal_rate`.")
    saved = SavedRun.read(artifact.path)
    rate = saved.model.conformal_rate
    if not rate:
        raise KerasSeqError(f"{artifact.path} was fitted without `conformal_rate`, so its intervals do not adapt. "
                            "Fit it with `conformal_rate` (0.05 is a start), or predict without `actuals`.")
    calibration = saved.config.get("conformal") or {}
    since = (calibration.get("adaptive") or {}).get("through") or saved.config["data"]["last_date"]
    moved = track_new_actuals(artifact.model, saved.scored_windows(frame, spec, every_row=True), since, rate)
    levels = ", ".join(f"{100 * c:g}% {a:.3f} -> {b:.3f}" for c, a, b in zip(
        artifact.model.get_layer("conformal").coverages, moved["before"][0], moved["after"][0]))
    return (f"intervals: offsets tracked through {moved['actuals']} actual values ({moved['first']}..{moved['last']}) "
            f"at rate {rate:g}; step 1: {levels} (in window scales). Not stored: `keras-seq update` keeps them in a "
            "new run.")


def _with_mc_dropout(artifact: Artifact, samples: int) -> Artifact:
    """`artifact` whose forecasts are the MC dropout quantiles of `samples` runs with dropout on."""
    from keras_seq.evaluation.mc_dropout import MC_LEVELS, check_mc, mc_quantiles

    check_mc(samples, artifact.model, artifact.kind)

    def run(x, index=None):
        return mc_quantiles(artifact.model, x if index is None else (x, index), samples)

    return dataclasses.replace(artifact, run=run, quantiles=list(MC_LEVELS))


def _forecast_spec(artifact: Artifact, spec, frame: pd.DataFrame, steps, series, own: bool) -> pd.DataFrame:
    """The forecast of every series `spec` read (of the model's own data: those of `series`)."""
    if spec.panel_column is not None:
        if own and series is not None:  # of the model's own series: chosen once they are read
            frame = _chosen_series(frame, spec.panel_column, series)
        return forecast_panel(artifact, frame, spec.panel_column, steps)
    table = forecast(artifact, frame, steps, name=spec.series_name)
    if series is not None:  # one series of a long table, chosen by name: still a long table
        table.insert(0, spec.series_column, spec.series)
    return table


def _with_future(frame: pd.DataFrame, artifact: Artifact, future, column: str | None) -> pd.DataFrame:
    """`frame` with the leads of the model's future features, their values after the data read from `future`."""
    from keras_seq.data.windows import add_leads

    names, horizon = artifact.data.future_features, artifact.horizon
    if not names:
        if future is not None:
            raise KerasSeqError("`future` gives values known in advance, and this model reads none. Drop `future`.")
        return frame
    if future is None:
        raise KerasSeqError(f"this model reads {', '.join(names)} for the dates it forecasts: give `future` a CSV of "
                            f"a date column{', the series column ' + repr(column) if column else ''} and "
                            f"{', '.join(names)} for the {horizon} date(s) after the data.")
    known = _future_table(future, list(names), column)
    parts = frame.groupby(column, sort=False) if column else [(None, frame)]
    extended = []
    for name, part in parts:
        dates = future_dates(part.index, horizon)
        rows = known.get(name)
        missing = [d for d in dates if rows is None or d not in rows.index]
        if missing:
            where = f" of series {name}" if column else ""
            raise KerasSeqError(f"`future` has no {', '.join(names)} for {label_of(missing[0])}{where}, a date the "
                                f"forecast reads. Give the {horizon} date(s) after the data: "
                                f"{', '.join(map(label_of, dates))}.")
        ahead = rows.loc[dates, list(names)].astype("float64")
        with_leads = add_leads(pd.concat([part, ahead]), names, horizon)  # the leads of the data's last rows
        extended.append(with_leads.iloc[: len(part)])
    return pd.concat(extended)


def _future_table(path, names: list, column: str | None) -> dict:
    """The rows of a `future` CSV per series (None for one series): date-indexed, with `names` checked numeric."""
    from keras_seq.data.reading import checked_columns, read_csv_frame, sorted_unique
    from keras_seq.data.sources import csv_path, long_table_series

    where = csv_path(str(path))
    if where is None or not where.is_file():
        raise KerasSeqError(f"`future` file not found: {path}. Expected a CSV of dates and {', '.join(names)}.")
    frame = read_csv_frame(where, str(path), date_column=None)
    parts = long_table_series(frame, str(path), column, "all") if column else [(None, sorted_unique(frame, str(path)))]
    return {name: checked_columns(part, names, None, f"{path}" + (f" (series {name})" if column else ""))
            for name, part in parts}


def _predicted_data(path, artifact: Artifact, source, series, series_column):
    """The data `predict` reads (a `DataSpec`): the model's own data, or `source` (a long table's `series` of it,
    default all; for a model of a wide table, `source`'s columns `series`, default all)."""
    from keras_seq.data.sources import reads_several

    data = artifact.data
    if source is not None and data.targets is not None and series_column is None:  # a wide model: wide data
        return dataclasses.replace(data, source=source, start=None, end=None, series=None,
                                   targets=series if series is not None else "all")
    if source is not None:  # read as given: one series, or those of a long table's series_column
        if series_column is None and series is not None:
            raise KerasSeqError("`series` with `source` picks series of a long table: give its `series_column` too.")
        return dataclasses.replace(data, source=source, start=None, end=None, series_column=series_column,
                                   series=series, targets=None)  # a column alone: every series (DataSpec)
    if series_column is not None:
        raise KerasSeqError("`series_column` is for a long table given with `source`; without `source` the model's own "
                            "series are read. Drop `series_column` or give `source`.")
    if series is not None and data.targets is None and not reads_several(data.series):
        if data.series_column is None:
            raise KerasSeqError(f"`series` picks series of a panel, and {path} reads one series. Drop `series`, or "
                                "give `source` a long table with `series_column`.")
        return dataclasses.replace(data, series=series)  # a model of one series of a long table: another of it
    return data


def _chosen_series(frame: pd.DataFrame, column: str, series) -> pd.DataFrame:
    """The rows of `series` (a name, names or "all") of a long frame, in the order asked for."""
    if series == "all":
        return frame
    wanted = [series] if isinstance(series, str) else list(series)
    present = list(dict.fromkeys(frame[column]))
    unknown = [name for name in wanted if name not in present]
    if unknown:
        listed = ", ".join(map(str, present[:8])) + (f", ... ({len(present)} in all)" if len(present) > 8 else "")
        raise KerasSeqError(f"`series` {unknown[0]}: the model's data has no such series ({listed}). "
                            "Name some of them, or give `source` with the series to forecast.")
    rows = frame.groupby(column, sort=False).indices  # name -> its row positions, in one pass
    return frame.iloc[np.concatenate([rows[name] for name in wanted])]


def check_output_path(path: str | Path, inputs: list) -> None:
    """Refuse an output file that is one of `inputs` or lies inside one of them (an artifact's folder); None is skipped."""
    target = Path(path).resolve()
    for given in filter(None, inputs):
        source = Path(given).resolve()
        if target == source or source in target.parents:
            raise KerasSeqError(f"--csv {path} would overwrite what the forecast reads ({given}). Give another file name.")
    from keras_seq.runs.folder import CONFIG_FILE, MANIFEST_FILE

    for folder in target.parents:  # an export's files are vouched for by its card, a run's by its manifest
        if (folder / CARD_FILE).is_file() or ((folder / MANIFEST_FILE).is_file() and (folder / CONFIG_FILE).is_file()):
            raise KerasSeqError(f"--csv {path} lies inside the keras-seq export or run folder {folder}, whose files "
                                "are checked against their sha256. Write the forecast somewhere else.")


def write_forecast(table: pd.DataFrame, path: str | Path) -> Path:
    """Write a forecast table as CSV, atomically (a temporary file beside it, then a rename).

    Raises:
        KerasSeqError: its folder is missing or read-only, or the disk is
            full; nothing is left half-written.
    """
    from keras_seq.safety import write_file_atomically

    fmt = date_format(table.get("date"))
    write_file_atomically(path, lambda stream: table.to_csv(stream, index=False, date_format=fmt, float_format="%.6f"))
    return Path(path)
