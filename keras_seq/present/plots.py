"""Every figure keras-seq draws: a run's loss, forecast, calibration and per-series skill; a comparison's
three; a study's history and importances. matplotlib (Agg) is loaded when the first one is drawn.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from keras_seq.data.windows import Windows
from keras_seq.errors import KerasSeqError
from keras_seq.evaluation.metrics import figure, mae
from keras_seq.evaluation.report import PERSISTENCE, Report, baseline_forecasts, baseline_label, persistence_forecast
from keras_seq.safety import write_file_atomically


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(plt, fig, path: Path, atomic: bool = False) -> None:
    """Lay out, write and close `fig`. A name in the data with characters the font lacks is drawn as boxes,
    without matplotlib's two-line warning for each. `atomic`: for a folder that is not staged (a study's), the
    file is written beside its place and renamed there, never left half-written."""
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Glyph .* missing from font")
            fig.tight_layout()
            if atomic:
                write_file_atomically(path, lambda stream: fig.savefig(stream, format="png", dpi=100), binary=True)
            else:
                fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)


def plot_loss(history: dict, path: Path, title: str = "", loss_name: str = "MSE") -> None:
    """Training and validation loss (`loss_name`, in normalized units) per epoch, the best epoch marked."""
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(7, 4))
    for key, label in (("loss", "train"), ("val_loss", "validation")):
        if key in history:
            ax.plot(range(1, len(history[key]) + 1), history[key], marker="o", markersize=3, label=label)
    if history.get("val_loss"):
        best = int(np.argmin(history["val_loss"]))
        ax.axvline(best + 1, color="grey", linestyle=":", label=f"best validation (epoch {best + 1})")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"{loss_name} (normalized units)")
    ax.set_title(title or "loss")
    ax.legend()
    save_figure(plt, fig, path)


def plot_forecast(windows: Windows, split: str, predictions: np.ndarray, path: Path, name: str = "model",
                  report: Report | None = None, series=None, quantiles: np.ndarray | None = None) -> tuple[str, list[str]]:
    """Actual values of `split`, the model's forecasts and the best baseline's, in the target's units.

    The baseline drawn is the one the report's table names best (the one the
    model is judged against; persistence without a report). With a quantile
    model's `quantiles` (`(n, horizon, levels)`, the levels of
    `report.intervals`), a fan chart: each central interval shaded, the
    actual values drawn on top.

    One forecast per date and step is drawn: a horizon above 1 gets a plot of
    its first and one of its last step ahead (a `sequence` model its last
    step); the legend gives each line's MAE on those points, and the title
    the range evaluated and the horizon. A panel gets one plot per series of
    `series` (names; default: the series with the lowest, the median and the
    highest skill against its own persistence). Returns the title and every
    plot's legend labels, in order.

    Raises:
        KerasSeqError: `series` names a series the windows do not hold.
    """
    plt = pyplot()
    chosen = plotted_series(windows, report, series)
    horizon = windows.horizon if windows.target_kind == "next" else 1
    columns = [-1] if windows.target_kind != "next" else [0] if horizon == 1 else [0, horizon - 1]
    best = report.best_baseline if report is not None and report.baselines else "persistence"
    baseline = (baseline_forecasts(windows, split, report.season)[best] if best != "persistence"
                else persistence_forecast(windows, split))
    label = baseline_label(best, report.season) if report is not None else best
    panel = len(windows.series_ids) > 1
    plots = [(k, column) for k in chosen for column in columns]
    fig, axes = plt.subplots(len(plots), 1, figsize=(10, 4.5 if len(plots) == 1 else 3.0 * len(plots) + 0.6),
                             squeeze=False)
    lines = {"model": (name, predictions), "baseline": (label, baseline), "bands": quantiles}
    for ax, (k, column) in zip(axes[:, 0], plots):
        _draw_step(ax, windows, split, k, column, lines, report)
        ax.set_ylabel(windows.series_ids[k] if panel else windows.scaling.target_name)
        ax.legend(fontsize="small" if len(plots) > 1 else None)
        step = f"step {column % max(horizon, 1) + 1} ahead" if len(columns) > 1 else ""
        if panel and report is not None and str(windows.series_ids[k]) in report.per_series:
            metrics = report.per_series[str(windows.series_ids[k])]
            ax.set_title(f"{windows.series_ids[k]}: MASE {metrics['mase']:.3f}, skill vs its persistence "
                         f"{metrics['skill']:+.3f}" + (f"; {step}" if step else ""), fontsize="medium")
        elif step:
            ax.set_title(step, fontsize="medium")
    scope = report.scope if report is not None else f"{split} split"
    ahead = "1 step ahead" if horizon == 1 else f"steps 1 and {horizon} of a {horizon}-step horizon"
    title = f"{name}: {scope}, {ahead}"
    (fig.suptitle if len(plots) > 1 else axes[0, 0].set_title)(title)
    labels = [text.get_text() for ax in axes[:, 0] for text in ax.get_legend().get_texts()]
    fig.autofmt_xdate()
    save_figure(plt, fig, path)
    return title, labels


def _draw_step(ax, windows: Windows, split: str, k: int, column: int, lines: dict, report) -> None:
    """One series' actual values, and the baseline's and the model's forecasts `column` steps ahead (`lines`:
    model and baseline as (label, forecasts), and the model's quantiles or None)."""
    (name, predictions), (label, baseline), quantiles = lines["model"], lines["baseline"], lines["bands"]
    positions = windows.target_positions(split)[:, column]
    actual = windows.targets(split)[:, column]
    rows = windows.series_splits[k]
    lo, hi = rows[split]
    mine = (positions >= rows["train"][0]) & (positions < rows["test"][1])
    dates = windows.dates[positions[mine]]
    if quantiles is not None:
        _draw_intervals(ax, dates, quantiles[mine, column], report.intervals["levels"])
    ax.plot(windows.dates[lo:hi], windows.target_values[lo:hi], color="black", linewidth=1.2, label="actual")
    ax.plot(dates, baseline[mine, column], color="grey", linewidth=0.9, linestyle="--",
            label=f"{label} (MAE {mae(actual[mine], baseline[mine, column]):.2f})")
    ax.plot(dates, predictions[mine, column], linewidth=1.0,
            label=f"{name} forecast (MAE {mae(actual[mine], predictions[mine, column]):.2f})")


def _draw_intervals(ax, dates, quantiles: np.ndarray, levels) -> None:
    """Shade each central interval of `quantiles` (`(n, levels)`), the widest palest."""
    from keras_seq.evaluation.intervals import central_intervals

    for lo, hi, nominal in central_intervals(levels):
        ax.fill_between(dates, quantiles[:, lo], quantiles[:, hi], color="tab:blue", alpha=0.15 + 0.25 * (1 - nominal),
                        linewidth=0, label=f"{100 * nominal:g}% interval")


def plot_calibration(report: Report, path: Path) -> None:
    """Nominal against empirical coverage of a quantile model's central intervals, beside the random walk's."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    for who, style in (("model", "o-"), ("random walk", "s--")):
        intervals = report.intervals[who]["intervals"]
        nominal = [v["nominal"] for v in intervals.values()]
        ax.plot(nominal, [v["coverage"] for v in intervals.values()], style,
                label=report.name if who == "model" else who)
    ax.plot([0, 1], [0, 1], color="grey", linewidth=0.8, label="perfect calibration")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="nominal coverage", ylabel="empirical coverage",
           title=f"{report.name}: interval coverage\n{report.scope}")
    ax.title.set_fontsize(10)
    ax.legend()
    save_figure(plt, fig, path)


def plotted_series(windows: Windows, report: Report | None, series) -> list[int]:
    """Positions in `windows.series_ids` of the series to plot (see `plot_forecast`)."""
    names = [str(n) for n in windows.series_ids]
    if series:
        wanted = [series] if isinstance(series, str) else list(series)
        unknown = [n for n in wanted if str(n) not in names]
        if unknown:
            listed = ", ".join(names[:8]) + (f", ... ({len(names)} in all)" if len(names) > 8 else "")
            raise KerasSeqError(f"`plot_series` {unknown[0]}: no such series in this run ({listed}). "
                                "Name series of the run, separated by commas.")
        return [names.index(str(n)) for n in dict.fromkeys(wanted)]
    if len(names) == 1 or report is None or not report.per_series:
        return [0]
    ranked = sorted((m["skill"] if np.isfinite(m["skill"]) else -np.inf, n) for n, m in report.per_series.items())
    picks = dict.fromkeys([ranked[0][1], ranked[len(ranked) // 2][1], ranked[-1][1]])
    return [names.index(n) for n in picks]


FEW_SERIES = 30  # up to this many, series_skill.png draws each series' own bars; more, their distribution


def plot_series_skill(report: Report, path: Path) -> dict:
    """A panel's per-series skill against each series' own persistence and seasonal naive: each series' bars (up to
    `FEW_SERIES`), else their distribution. Returns what each bar drew: label -> {series: skill} (empty for a
    distribution)."""
    if len(report.per_series) <= FEW_SERIES:
        return _plot_each_series_skill(report, path)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    series = {label: np.array([m[key] for m in report.per_series.values()], dtype="float64")
              for key, label in (("skill", "vs its persistence"), ("skill_seasonal", "vs its seasonal naive"))}
    series = {label: values[np.isfinite(values)] for label, values in series.items()}
    pooled = np.concatenate([*series.values(), [0.0]])
    edges = np.histogram_bin_edges(pooled, bins=min(30, max(6, len(report.per_series) // 2)))  # shared by both
    for label, values in series.items():
        if len(values):
            ax.hist(values, bins=edges, alpha=0.6,
                    label=f"{label}: mean {values.mean():+.3f}, median {np.median(values):+.3f}")
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("skill (1 - MAE / baseline MAE); above 0: better than the baseline")
    ax.set_ylabel("series")
    ax.set_title(f"{report.name}: skill of {len(report.per_series)} series, {report.scope}")
    ax.legend(fontsize="small")
    save_figure(plt, fig, path)
    return {}


def _plot_each_series_skill(report: Report, path: Path) -> dict:
    """One row per series (worst at the bottom), a bar for its skill against each baseline; 0 marked."""
    plt = pyplot()
    names = sorted(report.per_series, key=lambda name: report.per_series[name]["skill"], reverse=True)
    fig, ax = plt.subplots(figsize=(8, 1.4 + 0.45 * len(names)))
    drawn, height = {}, 0.38
    for offset, (key, label) in zip((height / 2, -height / 2), (("skill", "vs its persistence"),
                                                                 ("skill_seasonal", "vs its seasonal naive"))):
        values = [float(report.per_series[name].get(key, np.nan)) for name in names]
        drawn[label] = dict(zip(names, values))
        ax.barh(np.arange(len(names))[::-1] + offset, np.nan_to_num(values), height=height, label=label)
    ax.set_yticks(np.arange(len(names))[::-1], [str(name)[:30] for name in names])
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("skill (1 - MAE / baseline MAE); right of 0: better than the baseline")
    below = sum(report.per_series[name]["skill"] < 0 for name in names)
    ax.set_title(f"{report.name}: skill of {len(names)} series ({below} below 0 vs their persistence), "
                 f"{report.scope}", fontsize="medium")
    ax.legend(fontsize="small")
    save_figure(plt, fig, path)
    return drawn


def plot_comparison(folder: Path, shown: dict, summary: dict, specs, spec, split: str) -> dict:
    """`compare_loss.png`, `compare_forecast.png` and `compare_mae.png` (`specs`: the run's options, `spec`: the
    comparison's). Returns what the last two drew: each arch's largest distance from the archs' mean forecast, and
    the MAE axis's limits and the figures written beside its dots."""
    backtest = spec.backtest
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for i, (arch, item) in enumerate(shown.items()):
        color = colors[i % len(colors)]
        history = item["history"]
        ax.plot(range(1, len(history["val_loss"]) + 1), history["val_loss"], color=color, label=f"{arch} validation")
        ax.plot(range(1, len(history["loss"]) + 1), history["loss"], color=color, linestyle="--", alpha=0.6,
                label=f"{arch} train")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    losses = [v for item in shown.values() for key in ("loss", "val_loss") for v in item["history"].get(key, ())]
    if losses and min(losses) > 0:  # a log-likelihood can be negative
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"{specs.model.loss_name} (normalized units)")
    ax.set_title("loss per epoch" + (" (last backtest fold)" if backtest else "") + ", first seed")
    ax.legend(fontsize=8, ncol=2)
    save_figure(plt, fig, folder / "compare_loss.png")

    first = next(iter(shown.values()))
    dates = first["drawn"][0]
    actual_dates, actual_values = first["actual"]
    fig, (ax, below) = plt.subplots(2, 1, figsize=(11, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    if len(dates):
        inside = (actual_dates >= dates.min()) & (actual_dates <= dates.max())
        ax.plot(actual_dates[inside], actual_values[inside], color="black", linewidth=1.4, label="actual")
    apart = _draw_compared_forecasts(ax, below, shown, colors)
    ax.set_ylabel(first["ylabel"])
    scope = f"{backtest} walk-forward folds" if backtest else f"{first['split']} split"
    ax.set_title(f"one-step-ahead forecasts, {scope}, first seed")
    fig.autofmt_xdate()
    save_figure(plt, fig, folder / "compare_forecast.png")
    return {"apart": apart, **_plot_compared_mae(plt, folder, summary, specs, spec, split)}


# Line styles in turn, so that forecasts close to each other stay apart where their colours overlap
STYLES = ("-", "--", "-.", ":")


def _draw_compared_forecasts(ax, below, shown: dict, colors) -> dict:
    """Each arch's forecasts on `ax`, and on `below` each one's difference from the archs' mean forecast, where
    archs whose forecasts overlap on the scale of the values come apart."""
    drawn = {arch: item["drawn"] for arch, item in shown.items()}
    lengths = {len(values) for _, values in drawn.values()}
    mean = np.mean([np.asarray(values, dtype="float64") for _, values in drawn.values()], axis=0) \
        if len(lengths) == 1 else None
    apart = {}
    for i, (arch, (dates, values)) in enumerate(drawn.items()):
        style = dict(linewidth=0.9, color=colors[i % len(colors)], linestyle=STYLES[i % len(STYLES)], label=arch)
        ax.plot(dates, values, **style)
        if mean is not None:
            difference = np.asarray(values, dtype="float64") - mean
            below.plot(dates, difference, **style)
            apart[arch] = float(np.nanmax(np.abs(difference))) if len(difference) else 0.0
    below.axhline(0, color="black", linewidth=0.8)
    below.set_ylabel("minus the archs'\nmean forecast", fontsize=8)
    ax.legend(fontsize=8)
    return apart


def _plot_compared_mae(plt, folder: Path, summary: dict, specs, spec, split: str) -> dict:
    """`compare_mae.png`: each arch's MAE (± std over seeds) as a dot on an axis around the figures, each one
    written beside it, and the persistence baseline's."""
    archs = summary["archs"]
    means = [archs[a]["splits"][split]["mae"]["mean"] for a in archs]
    stds = [archs[a]["splits"][split]["mae"]["std"] if spec.repeats > 1 else 0.0 for a in archs]
    baseline = summary["splits"][split][PERSISTENCE]["mae"]
    fig, ax = plt.subplots(figsize=(7, 1.6 + 0.5 * len(archs)))
    rows = np.arange(len(archs))[::-1]
    ax.errorbar(means, rows, xerr=stds, fmt="o", capsize=4)
    written = [figure(mean) for mean in means]
    for row, mean, text in zip(rows, means, written):
        ax.annotate(text, (mean, row), textcoords="offset points", xytext=(6, 6), fontsize=8)
    ax.axvline(baseline, color="black", linestyle="--", label=f"persistence {figure(baseline)}")
    ax.set_yticks(rows, list(archs))
    low = min([*(m - s for m, s in zip(means, stds)), baseline])
    high = max([*(m + s for m, s in zip(means, stds)), baseline])
    pad = 0.15 * (high - low) or 0.01 * abs(high) or 1.0
    ax.set_xlim(low - pad, high + pad)  # around the figures: bars from 0 made 296 and 301 look alike
    ax.set_xlabel(f"MAE ({specs.data.target}'s units; the axis does not start at 0)")
    ax.set_title(f"MAE, {summary['splits'][split]['split'] if split == 'backtest' else split + ' split'}")
    ax.legend(fontsize=8)
    limits = tuple(float(x) for x in ax.get_xlim())
    save_figure(plt, fig, folder / "compare_mae.png")
    return {"mae_axis": limits, "mae_written": written}


def plot_history(path: Path, trials: list, label: str) -> None:
    """A study's `history.png`: each complete trial's score (`label`) and the best so far, by trial number; pruned
    trials at their last report."""
    from optuna.trial import TrialState

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    done = [(t.number, t.value) for t in trials if t.state == TrialState.COMPLETE]
    pruned = [(t.number, t.intermediate_values[max(t.intermediate_values)]) for t in trials
              if t.state == TrialState.PRUNED and t.intermediate_values]
    if done:
        ax.scatter(*zip(*done), s=18, label="complete")
        best, line = float("inf"), []
        for number, value in sorted(done):
            best = min(best, value)
            line.append((number, best))
        ax.step(*zip(*line), where="post", color="C3", label="best so far")
    if pruned:
        ax.scatter(*zip(*pruned), s=18, marker="x", color="0.5", label="pruned (last epoch reported)")
    ax.set_xlabel("trial")
    ax.set_ylabel(f"validation {label}")
    ax.set_title(f"{len(done)} complete, {len(pruned)} pruned of {len(trials)} trials")
    if done or pruned:
        ax.legend(loc="upper right")
    save_figure(plt, fig, path, atomic=True)


def plot_importances(path: Path, importances: dict, objective_name: str) -> None:
    """A study's `importance.png`: each searched option's importance, largest on top."""
    names = list(importances)[::-1]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.4 * len(names)))
    ax.barh(names, [importances[n] for n in names])
    ax.set_xlabel(f"importance for the best tenth of {objective_name} (PED-ANOVA)")
    ax.set_title("parameter importance")
    save_figure(plt, fig, path, atomic=True)
