"""The tables keras-seq writes for people to read: a comparison's `comparison.md` (and a recipe's report made of
them)."""

from __future__ import annotations

from keras_seq.evaluation.metrics import figure, metrics
from keras_seq.evaluation.report import PERSISTENCE
from keras_seq.models.registry import get_arch


def _figure(stats: dict, digits: int, repeats: int) -> str:
    if repeats > 1:
        return f"{figure(stats['mean'], digits)} ± {figure(stats['std'], digits)}"
    return figure(stats["mean"], digits)


def _arch_sizes(model, archs) -> str:
    """The sizes the compared archs' own options set (a deep transition's layers), as the arch registry lists
    them: each option's name and value; and an ensemble's members."""
    read = dict.fromkeys(option for arch in archs for option in get_arch(arch).options)
    windows = f", windows {', '.join(map(str, model.ensemble_windows))} in turn" if model.ensemble_windows else ""
    members = f", an ensemble of {model.ensemble} (their {model.combine}{windows})" if model.ensemble > 1 else ""
    return "".join(f", {name.replace('_', ' ')} {getattr(model, name)}" for name in read) + members


def comparison_markdown(summary: dict, specs, spec, title: str | None = None) -> str:
    """`comparison.md`: settings, one table per scored split, folds, and the leak note (`specs`: the run's
    options, `spec`: the comparison's)."""
    settings = summary["settings"]
    data, win, model, train = specs.data, specs.windows, specs.model, specs.train
    recorded = settings["data"]  # what was read
    repeats, archs, seeds = spec.repeats, summary["archs"], settings["seeds"]
    lines = [
        f"# {title or 'Comparison: ' + ', '.join(archs)}",
        "",
        f"- data: `{data.source}`, target {data.target}, inputs {', '.join(data.features or [data.target])}, "
        f"{recorded['first_date']}..{recorded['last_date']} ({recorded['rows']} rows, sha256 `{recorded['sha256'][:12]}`)",
        f"- windows: {win.window} steps, target kind `{win.target_kind}`, horizon {win.horizon}, "
        + (f"splits {'/'.join(f'{100 * s:g}' for s in win.splits)} in time order" if win.split_steps is None
           else f"each series' last {win.split_steps[1]} steps tested, the {win.split_steps[0]} before validated")
        + (f" (cut at {', '.join(win.split_dates)})" if win.split_dates is not None else ""),
        f"- model: {model.units} units, {model.layers} layers, dropout {model.dropout:g}{_arch_sizes(model, archs)}"
        + f"; each arch with its own Adam (lr {train.lr:g}), "
        f"batch {train.batch_size}, {train.epochs} epoch{'s' if train.epochs != 1 else ''}"
        + (f", early stopping after {train.patience}" if train.patience else "")
        + ", best validation weights restored",
        f"- seeds: {', '.join(map(str, seeds))}" + (" (figures are mean ± std over seeds)" if repeats > 1 else "")
        + f"; backend {settings['backend']}",
        "",
    ]
    for split, info in summary["splits"].items():
        scope = info["split"] if split == "backtest" else f"{split} split"
        lines += [
            f"## {scope}: {info['first_date']}..{info['last_date']}, {info['windows']} windows, errors in "
            f"{data.target}'s units",
            "",
            "| arch | parameters | train s | epochs | best val loss | "
            + " | ".join(m.label for m in metrics()) + " | skill |",
            "|---|---:|---:|---:|---:|" + "---:|" * (len(metrics()) + 1),
        ]
        missing = {"mean": float("nan"), "std": 0.0}
        for arch, entry in archs.items():
            m = entry["splits"][split]
            lines.append(
                f"| {arch} | {entry['parameters']:,} | {_figure(entry['train_seconds'], 1, repeats)} | "
                f"{_figure(entry['epochs_run'], 0 if not spec.backtest else 1, 1)} | "
                f"{_figure(entry['best_val_loss'], 4, repeats)} | "
                + " | ".join(_figure(m.get(metric.name, missing), metric.digits, repeats) for metric in metrics())
                + f" | {m['skill']['mean']:+.3f}" + (f" ± {m['skill']['std']:.3f}" if repeats > 1 else "") + " |"
            )
        lines += [*_baseline_rows(info), "", f"best baseline: {info.get('best_baseline', PERSISTENCE)}", "",
                  *_crps_ranking(archs, split, repeats)]
    lines.append(SKILL_NOTE)
    if spec.backtest:
        lines += ["", "## test MAE per walk-forward fold", "",
                  "| fold | test dates | windows | persistence | " + " | ".join(archs) + " |",
                  "|---|---|---:|---:|" + "---:|" * len(archs)]
        for fold, info in summary["folds"].items():
            cells = [_figure(archs[a]["folds"][fold], 2, repeats) for a in archs]
            lines.append(f"| {fold} | {info['first_date']}..{info['last_date']} | {info['windows']} | "
                         f"{figure(info['persistence_mae'])} | " + " | ".join(cells) + " |")
    leak = leak_note(summary, specs)
    if leak:
        lines += ["", leak]
    return "\n".join(lines) + "\n"


def _crps_ranking(archs: dict, split: str, repeats: int) -> list[str]:
    """comparison.md's ranking of quantile models by CRPS on one split (nothing unless every arch has one)."""
    scored = {arch: entry["splits"][split] for arch, entry in archs.items() if "crps" in entry["splits"][split]}
    if not scored or len(scored) != len(archs):
        return []
    names = list(next(iter(scored.values()))["coverage"])
    lines = ["Ranked by CRPS (from the quantile levels; lower is better; skill against the random-walk interval):", "",
             "| rank | arch | CRPS | CRPS skill | " + " | ".join(f"{n} coverage" for n in names) + " |",
             "|---:|---|---:|---:|" + "---:|" * len(names)]
    for rank, (arch, m) in enumerate(sorted(scored.items(), key=lambda item: item[1]["crps"]["mean"]), start=1):
        cover = " | ".join(f"{100 * m['coverage'][n]['mean']:.1f}%" for n in names)
        lines.append(f"| {rank} | {arch} | {_figure(m['crps'], 2, repeats)} | {_figure(m['crps_skill'], 3, repeats)} | "
                     f"{cover} |")
    return lines + [""]


SKILL_NOTE = ("skill = 1 - MAE / MAE of persistence (tomorrow = today); above 0 beats persistence. MASE: MAE over the "
              "training split's in-sample seasonal naive MAE.")


def _baseline_rows(info: dict) -> list[str]:
    """comparison.md's rows of the baselines on one scored split (persistence alone for pooled backtests)."""
    rows = []
    for name, b in info.get("baselines", {PERSISTENCE: info[PERSISTENCE]}).items():
        figures = " | ".join("" if b.get(m.name) is None else figure(b[m.name], m.digits) for m in metrics())
        rows.append(f"| {name} | 0 | | | | {figures} | {1 - b['mae'] / info[PERSISTENCE]['mae']:+.3f} |")
    return rows


def leak_note(summary: dict, specs) -> str | None:
    """A paragraph on BRNN's future leak, when it was allowed in this comparison."""
    archs = summary["archs"]
    if not ("brnn" in archs and specs.windows.target_kind == "sequence" and specs.model.allow_future_leak):
        return None
    causal = [a for a in archs if a != "brnn"]
    lines = ["## Future leak", "",
             "brnn is trained with target kind `sequence` and the leak allowed: at step t its backward "
             "direction has already read x[t+1], the value it must predict."]
    for split in summary["splits"]:
        brnn = archs["brnn"]["splits"][split]["mae"]["mean"]
        if causal:
            best = min(causal, key=lambda a: archs[a]["splits"][split]["mae"]["mean"])
            other = archs[best]["splits"][split]["mae"]["mean"]
            if brnn < other:
                lines.append(f"On the {split} split its MAE is {brnn:.2f}, {other / brnn:.1f}x lower than the best "
                             f"causal arch ({best}, {other:.2f}) on the same windows. That gap is leakage, not skill.")
            else:
                lines.append(f"On the {split} split its MAE is {brnn:.2f}, not below the best causal arch "
                             f"({best}, {other:.2f}): with this training budget the leak did not pay off.")
    return "\n".join(lines)
