"""`keras-seq report`: one self-contained HTML page of a run, comparison, backtest or study folder
(`keras_seq.present.page` draws it; `fit --report` and a recipe's `[track] report` write them too).

A run's page holds the test metrics beside the baselines, the forecast chart
(the actual values, the model's forecasts and the best baseline's, a
quantile or interval model's bands shaded, a selector of series for a
panel), the loss curves and, for a panel, each series' skill. A comparison's
(a backtest is one) holds its ranking table, each arch's MAE beside
persistence, each arch's validation loss and forecasts (its first seed). A
study's holds its summary, each trial's score with the best so far, and the
searched options' importance. Models are run again on their test split, as
`evaluate` does, so a page needs nothing but the folder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from keras_seq.errors import KerasSeqError

MAX_SERIES = 50  # a panel's series drawn in the chart's selector: the first ones by skill, best and worst
CONTEXT_STEPS = 60  # actual values drawn before the test split


def report_run(path, out=None, backend: str | None = None) -> Path:
    """Write `<folder>/report.html` (or `out`) for a run, comparison, backtest or study folder; return its path.

    Raises:
        KerasSeqError: `path` is none of those folders (a recipe run: give one of its comparisons), or the page
            cannot be written.
    """
    from keras_seq.runs.folder import check_run_folder, read_run_config
    from keras_seq.runs.tracking import folder_kind

    require_plotly()
    path = check_run_folder(path)
    kind = folder_kind(path)
    if kind == "recipe":
        raise KerasSeqError(f"{path} is a recipe run: each of its experiments is a comparison folder inside it. "
                            "Give one of them.")
    if kind == "run":
        read_run_config(path)
    page = {"run": _run_page, "comparison": _comparison_page, "study": _study_page}[kind](path, backend)
    target = Path(out) if out is not None else path / "report.html"
    if target.exists() and (target.is_dir() or target.is_symlink()):
        raise KerasSeqError(f"{target} is a folder or a link. Give a file name for the page.")
    from keras_seq.safety import write_file_atomically

    write_file_atomically(target, lambda stream: stream.write(page.encode("utf-8")), binary=True)
    return target


def require_plotly() -> None:
    """One line naming the extra where Plotly, which draws the page, is not installed."""
    import importlib.util

    if importlib.util.find_spec("plotly") is None:
        raise KerasSeqError("keras-seq report draws with Plotly, which is not installed. Install it with: "
                            "pip install 'keras-seq[report]'")


def _scored(path: Path, backend: str | None):
    """A run folder's saved run, windows and report, forecasts, quantiles and best baseline's forecasts on its test
    split (the model run again, as `evaluate` does)."""
    from keras_seq.backend import import_keras, use_backend
    from keras_seq.runs.run import SavedRun

    saved = SavedRun.read(path)
    use_backend(backend)
    import_keras()
    from keras_seq.evaluation.report import baseline_forecasts, evaluate_forecast

    raw = saved.scored_windows(saved.data.load(quote=False), saved.data)
    report, predictions, quantiles = evaluate_forecast(saved.load_model(), raw, "test", name=saved.model.arch,
                                                       season=saved.data.season)
    from keras_seq.runs.folder import read_json

    recorded = read_json(path / "metrics.json") if (path / "metrics.json").is_file() else {}
    others = recorded.get("others") if isinstance(recorded, dict) else None
    if isinstance(others, dict):  # an update's parent, scored on the same rows when the run was written
        report.others = {str(who)[:120]: figures for who, figures in others.items() if isinstance(figures, dict)}
    return saved, raw, report, predictions, quantiles, baseline_forecasts(raw, "test", report.season)[report.best_baseline]


def _run_page(path: Path, backend: str | None) -> str:
    from keras_seq.present.page import run_page

    saved, raw, report, predictions, quantiles, baseline = _scored(path, backend)
    best = report.best_baseline
    return run_page({
        "title": f"{saved.model.arch}: {path.name}",
        "table": report.table(),
        "metrics": report.to_dict(),
        "history": _history(path / "history.csv"),
        "series": _series(raw, predictions, baseline, quantiles, report),
        "baseline": best,
        "levels": list(report.intervals.get("levels", [])) if quantiles is not None else [],
        "options": {section: saved.config.get(section, {}) for section in ("data", "windows", "model", "train")},
    })


def _history(path: Path) -> dict:
    """history.csv's losses as the page's JSON (epochs are their positions, from 1)."""
    from keras_seq.runs.folder import read_history

    return {key: _numbers(values) for key, values in read_history(path).items() if key != "epoch"}


def _series(raw, predictions, baseline, quantiles, report) -> list:
    """Each drawn series' dates, actual values and forecasts one step ahead (and its bands), at most `MAX_SERIES`."""
    positions = raw.target_positions("test")[:, 0]
    order = list(range(len(raw.series_ids)))
    if report.per_series and len(order) > MAX_SERIES:
        skill = {str(name): report.per_series.get(str(name), {}).get("skill", np.nan) for name in raw.series_ids}
        order.sort(key=lambda k: -np.nan_to_num(skill[str(raw.series_ids[k])], nan=-np.inf))
        order = order[: MAX_SERIES // 2] + order[-(MAX_SERIES - MAX_SERIES // 2):]
    drawn = []
    for k in order:
        rows = raw.series_splits[k]
        lo, hi = rows["test"]
        mine = (positions >= rows["train"][0]) & (positions < rows["test"][1])
        start = max(rows["train"][0], lo - CONTEXT_STEPS)
        item = {"name": str(raw.series_ids[k]), "dates": [str(d) for d in raw.dates[positions[mine]]],
                "model": _numbers(predictions[mine, 0]), "baseline": _numbers(baseline[mine, 0]),
                "actual_dates": [str(d) for d in raw.dates[start:hi]],
                "actual": _numbers(raw.target_values[start:hi]),
                "skill": (report.per_series.get(str(raw.series_ids[k])) or {}).get("skill")}
        if quantiles is not None:
            item["bands"] = [_numbers(quantiles[mine, 0, j]) for j in range(quantiles.shape[-1])]
        drawn.append(item)
    return drawn


def _numbers(values) -> list:
    return [None if not np.isfinite(v) else round(float(v), 6) for v in np.asarray(values, dtype="float64")]


def _comparison_page(path: Path, backend: str | None) -> str:
    """The ranking, each arch's MAE beside persistence, and each arch's first run's validation loss and forecasts."""
    from keras_seq.present.page import blocks_page
    from keras_seq.runs.folder import read_json
    from keras_seq.runs.tracking import run_folders
    from keras_seq.safety import read_text_bounded

    summary = read_json(path / "comparison.json")
    if not isinstance(summary, dict) or not isinstance(summary.get("archs"), dict):
        raise KerasSeqError(f"{path / 'comparison.json'} is not a keras-seq comparison. Give a folder `compare` wrote.")
    split = "backtest" if "backtest" in (summary.get("splits") or {}) else "test"
    archs = summary["archs"]
    means = [archs[a]["splits"][split]["mae"]["mean"] for a in archs]
    stds = [archs[a]["splits"][split]["mae"].get("std") or 0.0 for a in archs]
    persistence = summary["splits"][split]["persistence"]["mae"]
    blocks = [{"kind": "text", "title": "Ranking", "text": read_text_bounded(path / "comparison.md")},
              {"kind": "chart", "title": f"MAE on the {split} split (± std over seeds)", "layout": {
                  "xaxis": {"title": {"text": "MAE"}}, "shapes": [{"type": "line", "x0": persistence,
                  "x1": persistence, "yref": "paper", "y0": 0, "y1": 1, "line": {"dash": "dash"}}]},
               "traces": [{"type": "scatter", "mode": "markers", "x": means, "y": list(archs),
                           "error_x": {"type": "data", "array": stds}, "name": "MAE"}]}]
    firsts = {}
    for run in run_folders(path / "runs"):  # each arch's first run folder (its first seed; a backtest's first fold)
        firsts.setdefault(run.name.split("-seed")[0], run)
    losses = []
    for arch, run in firsts.items():
        history = _history(run / "history.csv")
        losses.append({"x": list(range(1, len(history.get("val_loss", [])) + 1)), "y": history.get("val_loss", []),
                       "mode": "lines+markers", "name": arch})
    blocks.append({"kind": "chart", "title": "Validation loss per epoch (first seed)", "traces": losses,
                   "layout": {"xaxis": {"title": {"text": "epoch"}}}})
    blocks.append({"kind": "chart", "title": "Forecasts one step ahead (first seed; a panel's first series)",
                   "traces": _compared_forecasts(firsts, backend), "layout": {"hovermode": "x unified"}})
    return blocks_page(f"comparison: {path.name}", blocks)


def _compared_forecasts(firsts: dict, backend: str | None) -> list:
    """Plotly traces: the actual values, the best baseline and each arch's forecasts of the first series."""
    traces = []
    for arch, run in firsts.items():
        _, raw, report, predictions, _, baseline = _scored(run, backend)
        drawn = _series(raw, predictions, baseline, None, report)[0]
        if not traces:
            traces += [{"x": drawn["actual_dates"], "y": drawn["actual"], "mode": "lines", "name": "actual",
                        "line": {"color": "black"}},
                       {"x": drawn["dates"], "y": drawn["baseline"], "mode": "lines", "line": {"dash": "dash"},
                        "name": f"{report.best_baseline} (best baseline)"}]
        traces.append({"x": drawn["dates"], "y": drawn["model"], "mode": "lines", "name": arch})
    return traces


def _study_page(path: Path, backend: str | None) -> str:
    """The study's summary, each trial's score and the best so far, and the searched options' importance."""
    import json

    from keras_seq.present.page import blocks_page
    from keras_seq.runs.folder import read_json
    from keras_seq.runs.tracking import read_trials

    summary = read_json(path / "tune.json")
    if not isinstance(summary, dict):
        raise KerasSeqError(f"{path / 'tune.json'} is not a keras-seq study summary. Give a folder `tune` wrote.")
    done = [(int(t["number"]), t["value"]) for t in read_trials(path / "trials.csv")
            if t["state"] == "COMPLETE" and t["value"] is not None and str(t["number"]).isdigit()]
    best, line = float("inf"), []
    for number, value in sorted(done):
        best = min(best, value)
        line.append((number, best))
    shown = {key: summary.get(key) for key in ("study", "objective", "pruner", "trials_asked", "states", "best",
                                               "refit")}
    importance = summary.get("importance") if isinstance(summary.get("importance"), dict) else {}
    blocks = [{"kind": "text", "title": "Study", "text": json.dumps(shown, indent=2, default=str)},
              {"kind": "chart", "title": f"Each complete trial's validation {summary.get('objective', 'score')}",
               "layout": {"xaxis": {"title": {"text": "trial"}}},
               "traces": [{"x": [n for n, _ in done], "y": [v for _, v in done], "mode": "markers",
                           "name": "complete"},
                          {"x": [n for n, _ in line], "y": [v for _, v in line], "mode": "lines",
                           "line": {"shape": "hv"}, "name": "best so far"}]}]
    if importance:
        blocks.append({"kind": "chart", "title": "Importance of each searched option", "layout": {},
                       "traces": [{"type": "bar", "orientation": "h", "x": list(importance.values()),
                                   "y": list(importance), "name": "importance"}]})
    return blocks_page(f"study: {path.name}", blocks)
