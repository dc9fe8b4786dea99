"""The `evaluate` verb: score a run folder again, on its own test split or on other data."""

from __future__ import annotations

import dataclasses
import datetime
import warnings
from pathlib import Path

from keras_seq.backend import import_keras, use_backend
from keras_seq.errors import DataWarning, KerasSeqError
from keras_seq.models.scalers import get_scaler
from keras_seq.runs.folder import check_run_folder, staged_folder, utc_stamp, write_json
from keras_seq.runs.run import RunResult, SavedRun, calibration_summary


def evaluate_run(
    run_dir: str | Path,
    *,
    source: str | None = None,
    start: str | None = None,
    end: str | None = None,
    out: str | Path | None = None,
    backend: str | None = None,
    plot_series=None,
    mc_samples: int = 0,
) -> RunResult:
    """Recompute test metrics and the forecast plot of a run folder.

    On the run's own data (no `source`, `start` or `end`) the test split is
    the one the run held out. On other data (another source or range), every
    window of that data is evaluated.

    Args:
        run_dir: path. A folder written by `fit_run`.
        source: str or None. Other data (as `DataSpec.source`). Defaults to
            the run's.
        start: str or None. First date. Defaults to the run's.
        end: str or None. Last date. Defaults to the run's.
        out: path or None. Where to write `metrics.json` and
            `forecast.png`. Defaults to `<run_dir>/evaluations/<UTC timestamp>`.
        backend: str or None. Keras backend. Defaults to `$KERAS_BACKEND`,
            else jax.
        plot_series: str, list of str or None. A panel's series to draw in
            `forecast.png`. Defaults to the series with the lowest, the
            median and the highest skill against their own persistence.
        mc_samples: int. With 2 or more, a point model trained with dropout
            is scored as a quantile forecast: the quantiles of that many
            forecasts with dropout on (`keras_seq.evaluation.mc_dropout`). Defaults to
            `0` (off).

    Returns:
        A `RunResult` with the output folder and the report.
    """
    from keras_seq.safety import folder_lock

    run_dir = check_run_folder(run_dir)
    with folder_lock(run_dir, f"evaluate {run_dir}"):
        return _evaluate_locked(run_dir, source, start, end, out, backend, plot_series, mc_samples)


def _evaluate_locked(run_dir: Path, source, start, end, out, backend, plot_series, mc_samples) -> RunResult:
    from keras_seq.safety import refuse_symlink

    saved = SavedRun.read(run_dir)
    if out is not None and Path(out).exists():
        raise KerasSeqError(f"output folder {out} already exists. Give a new folder.")
    if out is None:
        refuse_symlink(run_dir / "evaluations")
    use_backend(backend)
    new_data = any(v is not None for v in (source, start, end))
    overrides = {k: v for k, v in (("source", source), ("start", start), ("end", end)) if v is not None}
    if source is not None and start is None and end is None:
        overrides.update(start=None, end=None)
    data = dataclasses.replace(saved.data, **overrides)
    windows, model_spec, scaling = saved.windows, saved.model, saved.scaling
    frame = data.load(quote=source is not None)  # a path read from config.json is never quoted from

    import_keras()
    from keras_seq.evaluation.report import evaluate_forecast, losing_note, scaling_distance
    from keras_seq.present.plots import plot_calibration, plot_forecast, plot_series_skill, plotted_series

    raw = saved.scored_windows(frame, data, every_row=new_data)
    plotted_series(raw, None, plot_series)  # a series not in the run: refused before the model runs
    model = saved.load_model()
    arch = model_spec.arch
    report, predictions, quantiles = evaluate_forecast(model, raw, "test", name=arch, season=data.season,
                                                       mc_samples=mc_samples)
    if report.intervals and saved.config.get("conformal"):
        report.intervals["calibration"] = calibration_summary(saved.config["conformal"])
    if new_data:
        report.split = "the given data"
    distance = scaling_distance(raw.targets("test").ravel(), scaling)
    if get_scaler(model_spec.scaler).fixed_on_training and distance > 3:
        warnings.warn(
            f"the evaluated {data.target} lies {distance:.1f} training standard deviations from the training split's "
            f"mean ({scaling.target_mean:.6g} ± {scaling.target_std:.6g}), and this model's z-scores were fixed there: "
            "expect a poor forecast. A model fitted with `scaler` window follows any range.", DataWarning, stacklevel=2)
    report.note = losing_note(report, model_spec, windows.supervision, distance, window=windows.window)
    now = datetime.datetime.now(datetime.timezone.utc)
    parent, name = (Path(out).parent, Path(out).name) if out else (run_dir / "evaluations", utc_stamp(now))
    with staged_folder(parent, name) as stage:
        write_json(stage.path / "metrics.json",
                   {**report.to_dict(), "data": dataclasses.asdict(data), "evaluated": now.isoformat(timespec="seconds")})
        plot_forecast(raw, "test", predictions, stage.path / "forecast.png", name=arch, report=report,
                      series=plot_series, quantiles=quantiles)
        if report.intervals:
            plot_calibration(report, stage.path / "calibration.png")
        if report.per_series:
            plot_series_skill(report, stage.path / "series_skill.png")
    return RunResult(stage.final, report)
