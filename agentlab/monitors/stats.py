"""Statistics for the UCIP table: AUC, cluster bootstrap CIs, permutation tests, Pearson r, rates.

Episodes of one agent are not independent, so every resampling here is over *agents* (clusters):
the bootstrap resamples agents with replacement within each class, and the permutation test
permutes the class labels of whole agents. Detectors fitted with different seeds are different
detectors: :func:`seed_bootstrap` resamples seeds first, then agents within each seed.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def auc(score: np.ndarray, y: np.ndarray) -> float:
    """ROC AUC = P(score_pos > score_neg) + 0.5 P(tie) (Mann-Whitney)."""
    score, y = np.asarray(score, float), np.asarray(y).astype(int)
    pos, neg = score[y == 1], score[y == 0]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    _, inv, counts = np.unique(np.concatenate([pos, neg]), return_inverse=True, return_counts=True)
    avg_rank = np.cumsum(counts) - (counts - 1) / 2.0  # average rank of each distinct value (ties)
    rp = avg_rank[inv[: len(pos)]].sum()
    return float((rp - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def roc_curve(score: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    score, y = np.asarray(score, float), np.asarray(y).astype(int)
    th = np.concatenate([[np.inf], np.sort(np.unique(score))[::-1], [-np.inf]])
    tpr = np.array([(score[y == 1] > t).mean() if (y == 1).any() else np.nan for t in th])
    fpr = np.array([(score[y == 0] > t).mean() if (y == 0).any() else np.nan for t in th])
    return fpr, tpr


def cluster_bootstrap(stat: Callable[[np.ndarray], float], clusters: np.ndarray, strata: np.ndarray | None = None,
                      n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile CI of ``stat(index_array)`` resampling clusters with replacement (within strata)."""
    clusters = np.asarray(clusters)
    strata = np.zeros(len(clusters), int) if strata is None else np.asarray(strata)
    rng = np.random.default_rng(seed)
    groups = []
    for s in np.unique(strata):
        ids = np.unique(clusters[strata == s])
        groups.append([np.flatnonzero((clusters == c) & (strata == s)) for c in ids])
    vals = []
    for _ in range(n_boot):
        idx = np.concatenate([g[j] for g in groups for j in rng.integers(0, len(g), len(g))])
        v = stat(idx)
        if np.isfinite(v):
            vals.append(v)
    if not vals:
        return float("nan"), float("nan")
    lo, hi = np.percentile(vals, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return float(lo), float(hi)


def seed_bootstrap(stat: Callable[[dict[int, np.ndarray]], np.ndarray], groups: dict[int, list[list[np.ndarray]]],
                   n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> np.ndarray:
    """Two-level bootstrap: resample seeds with replacement, then clusters with replacement within
    each (seed, stratum). ``groups[s]`` is a list of strata, each a list of index arrays (one per
    cluster) into that seed's episodes. ``stat`` maps {draw position: index array} -> a vector
    (several statistics at once, so that differences are paired). Returns (2, k): lower, upper."""
    rng = np.random.default_rng(seed)
    keys = list(groups)
    vals = []
    for _ in range(n_boot):
        picked = [keys[j] for j in rng.integers(0, len(keys), len(keys))]
        draw = {}
        for pos, s in enumerate(picked):
            draw[pos] = (s, np.concatenate([g[j] for g in groups[s] for j in rng.integers(0, len(g), len(g))]))
        vals.append(np.asarray(stat(draw), float))
    v = np.array(vals)
    return np.nanpercentile(v, [100 * (1 - level) / 2, 100 * (1 + level) / 2], axis=0)


def cluster_groups(clusters: np.ndarray, strata: np.ndarray) -> list[list[np.ndarray]]:
    """Index arrays per cluster, grouped by stratum (input for :func:`seed_bootstrap`)."""
    clusters, strata = np.asarray(clusters), np.asarray(strata)
    return [[np.flatnonzero((clusters == c) & (strata == s)) for c in np.unique(clusters[strata == s])]
            for s in np.unique(strata)]


def permutation_pvalue(values: np.ndarray, y: np.ndarray, clusters: np.ndarray, n_perm: int = 2000,
                       seed: int = 0) -> float:
    """Two-sided permutation p-value of Delta = mean(values | y=1) - mean(values | y=0), permuting the
    labels of whole clusters (agents). p = (1 + #{|Delta_perm| >= |Delta_obs|}) / (1 + n_perm)."""
    values, y, clusters = np.asarray(values, float), np.asarray(y).astype(int), np.asarray(clusters)
    ids, inv = np.unique(clusters, return_inverse=True)
    lab = np.array([y[inv == k][0] for k in range(len(ids))])
    sums = np.bincount(inv, weights=values, minlength=len(ids))
    cnts = np.bincount(inv, minlength=len(ids)).astype(float)

    def delta(lbl):
        return sums[lbl == 1].sum() / cnts[lbl == 1].sum() - sums[lbl == 0].sum() / cnts[lbl == 0].sum()

    obs = abs(delta(lab))
    rng = np.random.default_rng(seed)
    hits = sum(abs(delta(rng.permutation(lab))) >= obs - 1e-15 for _ in range(n_perm))
    return float((1 + hits) / (1 + n_perm))


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3 or x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson 95% interval of a proportion k / n."""
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    den = 1 + z * z / n
    c = (p + z * z / (2 * n)) / den
    h = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return float(c - h), float(c + h)
