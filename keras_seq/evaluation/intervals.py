"""Scores of quantile forecasts, and the random-walk interval they are measured against.

A quantile forecast is `(windows, horizon, levels)` raw values, the levels
in increasing order. Scored in the target's units:
- the pinball loss of each level;
- CRPS, approximated from the levels as twice their mean pinball loss (the
  quantile score; it tends to the CRPS as the levels fill (0, 1) evenly,
  and compares forecasts at the same levels exactly);
- each central interval the levels hold (levels tau and 1 - tau, nominal
  coverage 1 - 2 tau): its empirical coverage, mean width, and interval
  (Winkler) score, the width plus 2/alpha times how far the actual value
  falls outside (alpha = 2 tau).

The probabilistic baseline is the random walk: the last observed value plus
the empirical quantiles of the training split's h-step changes of the same
series, for each step ahead h.
"""

from __future__ import annotations

import numpy as np


def pinball_losses(actual: np.ndarray, quantiles: np.ndarray, levels) -> np.ndarray:
    """The mean pinball loss of each level: `actual` `(n, horizon)`, `quantiles` `(n, horizon, levels)`.

    Example:
    >>> np.round(pinball_losses(np.array([[10.0]]), np.array([[[8.0, 10.0, 13.0]]]), [0.1, 0.5, 0.9]), 9).tolist()
    [0.2, 0.0, 0.3]
    """
    taus = np.asarray(levels, dtype="float64")
    error = np.asarray(actual, dtype="float64")[..., None] - quantiles
    return np.mean(np.maximum(taus * error, (taus - 1.0) * error), axis=tuple(range(error.ndim - 1)))


def central_intervals(levels) -> list[tuple[int, int, float]]:
    """`(lower index, upper index, nominal coverage)` of each central interval the levels hold, widest first."""
    levels = [float(v) for v in levels]
    pairs = []
    for i, tau in enumerate(levels):
        partner = [j for j, other in enumerate(levels) if tau < 0.5 and abs(other - (1 - tau)) < 1e-9]
        if partner:
            pairs.append((i, partner[0], round(1 - 2 * tau, 9)))
    return pairs


def quantile_scores(actual: np.ndarray, quantiles: np.ndarray, levels) -> dict:
    """Pinball loss per level, the CRPS from the levels, and each central interval's coverage, width and score."""
    actual = np.asarray(actual, dtype="float64")
    if np.isnan(actual).any():  # a missing actual value (`missing` mask) is left out of every score
        kept = ~np.isnan(actual)
        actual, quantiles = actual[kept], np.asarray(quantiles)[kept]
    pinball = pinball_losses(actual, quantiles, levels)
    intervals = {}
    for lo, hi, nominal in central_intervals(levels):
        lower, upper, alpha = quantiles[..., lo], quantiles[..., hi], 1 - nominal
        below, above = np.maximum(lower - actual, 0.0), np.maximum(actual - upper, 0.0)
        intervals[f"{100 * nominal:g}%"] = {
            "nominal": nominal,
            "coverage": float(np.mean((actual >= lower) & (actual <= upper))),
            "width": float(np.mean(upper - lower)),
            "winkler": float(np.mean(upper - lower + 2 / alpha * (below + above))),
        }
    return {"crps": float(2 * pinball.mean()), "pinball": {f"{v:g}": float(p) for v, p in zip(levels, pinball)},
            "intervals": intervals}


def random_walk_quantiles(windows, split: str, levels) -> np.ndarray:
    """The random-walk interval of every window of `split`: `(n, horizon, levels)`.

    Step h ahead is the last observed value plus the level's empirical
    quantile of the h-step changes over the training rows of the window's
    series (over all its rows where it has no training rows: data evaluated
    on its own).
    """
    positions, observed = windows.target_positions(split), windows.observed_positions(split)
    ahead = positions - observed  # 1..horizon
    steps = int(ahead.max()) if ahead.size else 1
    table = np.full((len(windows.series_splits), steps, len(levels)), np.nan)
    values = windows.target_values
    for k, rows in enumerate(windows.series_splits):
        lo, hi = rows["train"] if rows["train"][1] > rows["train"][0] else (rows["train"][0], rows["test"][1])
        history = values[lo:hi].astype("float64")
        for h in range(1, min(steps, len(history) - 1) + 1):
            changes = history[h:] - history[:-h]
            changes = changes[~np.isnan(changes)]  # a change from or to a missing value (`missing` mask) is none
            if len(changes):
                table[k, h - 1] = np.quantile(changes, levels)
    series = windows.series_of(observed[:, 0])
    return values[observed][..., None] + table[series[:, None], ahead - 1]


def score_quantiles(windows, split: str, quantiles: np.ndarray, levels) -> dict:
    """The model's `quantile_scores` and the random walk's on the same windows, and the CRPS skill against it."""
    actual = windows.targets(split)
    model = quantile_scores(actual, quantiles, levels)
    walk = quantile_scores(actual, random_walk_quantiles(windows, split, levels), levels)
    skill = 1 - model["crps"] / walk["crps"] if walk["crps"] > 0 else float("nan")
    return {"levels": [float(v) for v in levels], "model": model, "random walk": walk, "crps_skill": float(skill)}


def interval_lines(scores: dict) -> list[str]:
    """The report's lines of a quantile forecast: CRPS and skill, then each interval beside the random walk's."""
    model, walk = scores["model"], scores["random walk"]
    lines = [f"quantiles {', '.join(f'{v:g}' for v in scores['levels'])}: CRPS {model['crps']:.2f} (from the levels; "
             f"random walk {walk['crps']:.2f}, skill {scores['crps_skill']:+.3f})"]
    calibration = scores.get("calibration")
    if calibration:
        around = f" around {calibration['around']}" if calibration.get("around") else ""
        lines.append(f"conformal intervals{around} calibrated on the {calibration['split']} split's {calibration['windows']} "
                     f"windows ({calibration['first_date']}..{calibration['last_date']}), per step ahead")
    adaptive = scores.get("adaptive")
    if adaptive:
        fixed = ", ".join(f"{name} {100 * value:.1f}%" for name, value in adaptive["split_conformal_coverage"].items())
        lines.append(f"adaptive: the offsets followed each {adaptive['split']} actual value at rate {adaptive['rate']:g} "
                     f"(quantile tracking); split conformal alone covered {fixed}")
    for name, mine in model["intervals"].items():
        theirs = walk["intervals"][name]
        lines.append(f"{name} interval: coverage {100 * mine['coverage']:.1f}% (random walk {100 * theirs['coverage']:.1f}%), "
                     f"mean width {mine['width']:.2f} ({theirs['width']:.2f}), Winkler {mine['winkler']:.2f} "
                     f"({theirs['winkler']:.2f})")
    return lines
