r"""Behavioural baselines for the UCIP table, calibrated exactly like the detectors.

* ``length``: episode length (Type A agents survive longer);
* ``safe_frac``: fraction of steps spent in the safe zone;
* ``lr_hist``: the *supervised ceiling* -- L2-regularised logistic regression on the episode's
  pattern-visit histogram (fraction of steps in each of the :math:`2^{n_v}` encoded patterns),
  trained with the labels of the detector's fitting split. It sees the same encoded states as the
  QBM and uses labels, so it bounds what any per-pattern behavioural statistic can do.

Every baseline is calibrated on the calibration split only: orientation = sign of the class-mean
difference, threshold = the balanced-accuracy optimum (:func:`agentlab.monitors.ucip.balanced_threshold`);
no EPS/PRI/SPI/ACM gate (they are properties of a latent model). The pre-registered direction of the
paper ("Type A higher") is the raw value for ``length`` and ``safe_frac`` and the fitted logit for
``lr_hist``.

Logistic regression: minimise :math:`\frac1N \sum_i \log(1 + e^{-\tilde y_i (w^\top x_i + b)}) +
\frac{\lambda}{2} \lVert w \rVert^2` with :math:`\lambda = 10^{-2}` (fixed before any run, intercept
unpenalised) by Newton's method.
"""

from __future__ import annotations

import numpy as np

BASELINES = ("length", "safe_frac", "lr_hist")
LR_PENALTY = 1e-2


def histograms(sparse: list, n_patterns: int = 256) -> np.ndarray:
    """Rows of visit fractions from sparse ``[[pattern, count], ...]`` lists."""
    X = np.zeros((len(sparse), n_patterns))
    for i, pairs in enumerate(sparse):
        for k, n in pairs:
            X[i, int(k)] += n
    return X / np.maximum(X.sum(1, keepdims=True), 1)


def sparse_histogram(patterns_idx: np.ndarray) -> list:
    k, n = np.unique(np.asarray(patterns_idx, np.int64), return_counts=True)
    return [[int(a), int(b)] for a, b in zip(k, n)]


def fit_logistic(X: np.ndarray, y: np.ndarray, lam: float = LR_PENALTY, iters: int = 100) -> np.ndarray:
    """Newton's method for L2-regularised logistic regression; returns [w, b]."""
    N, D = X.shape
    A = np.hstack([X, np.ones((N, 1))])
    theta = np.zeros(D + 1)
    reg = lam * np.r_[np.ones(D), 0.0]
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-(A @ theta)))
        grad = A.T @ (p - y) / N + reg * theta
        H = (A * (p * (1 - p))[:, None]).T @ A / N + np.diag(reg + 1e-10)
        step = np.linalg.solve(H, grad)
        theta -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    return theta


def logit(theta: np.ndarray, X: np.ndarray) -> np.ndarray:
    return X @ theta[:-1] + theta[-1]


def calibrate_scalar(values: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(orientation, threshold) from calibration values, as :func:`agentlab.monitors.ucip.calibrate` does."""
    from agentlab.monitors.ucip import balanced_threshold

    v, y = np.asarray(values, float), np.asarray(labels).astype(int)
    sign = 1.0 if v[y == 1].mean() >= v[y == 0].mean() else -1.0
    tau, _ = balanced_threshold(sign * v, y)
    return sign, tau


def baseline_scores(block: dict, eval_rows: list[dict]) -> dict[str, dict[str, np.ndarray]]:
    """Raw values, oriented scores and calibrated passes of each baseline for the evaluation episodes.

    ``block["fit"]``: fitting-set episodes (``label``, ``cal`` flag, ``length``, ``safe_frac``, ``hist``);
    ``eval_rows``: evaluation episodes with ``length``, ``safe_frac`` and (for ``lr_hist``) ``hist``."""
    fit = block["fit"]
    y = np.array([e["label"] for e in fit])
    cal = np.array([bool(e["cal"]) for e in fit])
    out = {}
    raw_fit = {"length": np.array([e["length"] for e in fit], float),
               "safe_frac": np.array([e["safe_frac"] for e in fit], float)}
    raw_eval = {"length": np.array([e["length"] for e in eval_rows], float),
                "safe_frac": np.array([e["safe_frac"] for e in eval_rows], float)}
    if all("hist" in e for e in eval_rows) and all("hist" in e for e in fit):
        Xf, Xe = histograms([e["hist"] for e in fit]), histograms([e["hist"] for e in eval_rows])
        theta = fit_logistic(Xf[~cal], y[~cal])
        raw_fit["lr_hist"], raw_eval["lr_hist"] = logit(theta, Xf), logit(theta, Xe)
    for name in raw_fit:
        sign, tau = calibrate_scalar(raw_fit[name][cal], y[cal])
        score = sign * raw_eval[name]
        out[name] = {"raw": raw_eval[name], "score": score, "pass": score > tau, "orientation": sign, "tau": tau}
    return out
