"""Aggregates with uncertainty: mean, interquartile mean (IQM) and percentile-bootstrap 95% CIs."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import stats


def iqm(x: np.ndarray) -> float:
    """Interquartile mean: the mean of the middle 50% (rliable's definition, trimmed 25% each side)."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) == 0:
        return float("nan")
    return float(stats.trim_mean(x, 0.25))


def bootstrap_ci(x: np.ndarray, statistic: Callable[[np.ndarray], float] = np.mean, n_boot: int = 2000,
                 level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of ``statistic`` over the samples ``x``."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) == 0:
        return float("nan"), float("nan")
    if len(x) == 1:
        return float(x[0]), float(x[0])
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(x), size=(n_boot, len(x)))
    samples = x[idx]
    if statistic is np.mean:
        values = samples.mean(1)
    else:
        values = np.array([statistic(s) for s in samples])
    lo, hi = np.percentile(values, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return float(lo), float(hi)


def summarize(x: np.ndarray) -> dict[str, float]:
    x = np.asarray(x, dtype=np.float64)
    lo, hi = bootstrap_ci(x)
    return {"n": len(x), "mean": float(np.mean(x)) if len(x) else float("nan"),
            "std": float(np.std(x)) if len(x) else float("nan"), "iqm": iqm(x), "ci_low": lo, "ci_high": hi}
