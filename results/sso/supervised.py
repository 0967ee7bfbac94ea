"""SSO vs tuned SGD / Adam on supervised problems at equal expensive gradients (CPU, linear models).

The paper's LIBSVM experiments (mushrooms, ijcnn, rcv1) are not downloadable here, so two synthetic
stand-ins with the same structure are drawn per seed (``problem``):

* ``logistic-onehot``: mushrooms-like, n = 8124 examples, 22 categorical attributes one-hot encoded
  into d = 112 binary features (rank-deficient design: every attribute's columns sum to 1), labels from
  a random linear model through a logistic link (noisy, not separable); mean logistic loss.
* ``lsq-illcond``: dense least squares, n = 8000, d = 50, feature scales log-spaced from 1 to 1e-2
  (condition number of X^T X / n about 1e4), y = X w* + 0.1 noise; mean of (z - y)^2 / 2.

Model: linear, z = X w + b, started at 0. Every method consumes the same T minibatch gradients of
size 100 (the "expensive" resource): SGD / Adam take one step per minibatch; SSO takes m inner
line-search steps (``inner="sgd-armijo"``, the reference's constants) on the surrogate built from it,
with eta = 1/L of the minibatch loss (constant), SSO-SLS or SSO-Ada. Metric: f(theta_T) - f* on the
full data (f* from L-BFGS).

Protocol (fixed before the evaluation runs, results/sso/README.md): learning rates of SGD and Adam and
SSO-Ada's eta_0 (at m = 10, reused for every m) chosen on development seed 100 by the final full loss
from half-decade grids; constant eta = 1/L and SLS are not tuned. Evaluation seeds 0, 1, 2 (each its
own data draw and minibatch order).

    python results/sso/supervised.py --tune           # dev seed 100 -> results/sso/supervised/tuned.json
    python results/sso/supervised.py                  # seeds 0-2 -> results/sso/supervised/results.json + .md
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from scipy import optimize

OUT = Path(__file__).parent / "supervised"
BATCH, T = 100, 100
PROBLEMS = ("logistic-onehot", "lsq-illcond")
GRIDS = {"sgd": [10.0 ** (k / 2) for k in range(-6, 5)],   # 1e-3 .. 1e2
         "adam": [10.0 ** (k / 2) for k in range(-8, 1)],  # 1e-4 .. 1
         "ada": [10.0 ** (k / 2) for k in range(-2, 7)]}   # eta_0: 0.1 .. 1e3 (a target-space distance)
MS = (1, 10, 100)


def make_problem(name: str, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    if name == "logistic-onehot":
        n, levels = 8124, [2 + (k * 3) % 7 for k in range(22)]  # 22 attributes, 2..8 levels (+5 on the last)
        levels[-1] += 112 - sum(levels)  # d = 112 one-hot columns in all
        cols = []
        for k in levels:
            p = rng.dirichlet(np.ones(k) * 0.5)  # uneven level frequencies, as in mushrooms
            cols.append(np.eye(k)[rng.choice(k, size=n, p=p)])
        X = np.concatenate(cols, 1)
        w = rng.normal(scale=1.0, size=X.shape[1])
        logits = X @ w - (X @ w).mean()
        y = np.where(rng.random(n) < 1 / (1 + np.exp(-logits)), 1.0, -1.0)
    else:
        n, d = 8000, 50
        scales = np.logspace(0, -2, d)
        X = rng.normal(size=(n, d)) * scales
        y = X @ rng.normal(size=d) + 0.1 * rng.normal(size=n)
    return torch.from_numpy(X), torch.from_numpy(y)


def loss_of(name: str):
    if name == "logistic-onehot":
        return lambda z, y: torch.nn.functional.softplus(-y * z).mean(), 0.25  # L of the mean loss: 1/(4n)
    return lambda z, y: 0.5 * (z - y).pow(2).mean(), 1.0                        # L: 1/n


def optimum(name: str, X: torch.Tensor, y: torch.Tensor) -> float:
    """f* of the full-data problem (closed form for least squares, L-BFGS on the exact gradient otherwise)."""
    A = np.concatenate([X.numpy(), np.ones((len(y), 1))], 1)
    yn = y.numpy()
    if name != "logistic-onehot":
        w = np.linalg.lstsq(A, yn, rcond=None)[0]
        return float(0.5 * np.mean((A @ w - yn) ** 2))

    def fg(w):
        m = -yn * (A @ w)
        return np.mean(np.logaddexp(0.0, m)), A.T @ (-yn / (1.0 + np.exp(-m))) / len(yn)

    res = optimize.minimize(fg, np.zeros(A.shape[1]), jac=True, method="L-BFGS-B",
                            options={"maxiter": 5000, "ftol": 1e-13, "gtol": 1e-9})
    return float(res.fun)


def run(name: str, seed: int, method: str, m: int = 1, lr: float | None = None) -> list[float]:
    """Full-data loss at 11 points over the T outer steps."""
    from agentlab.optim import SSO

    X, y = make_problem(name, seed)
    n, d = X.shape
    loss, curv = loss_of(name)
    params = torch.zeros(d + 1, dtype=torch.float64, requires_grad=True)

    def z_of(idx):
        return X[idx] @ params[:d] + params[d]

    if method == "sgd":
        opt = torch.optim.SGD([params], lr=lr)
    elif method == "adam":
        opt = torch.optim.Adam([params], lr=lr)
    else:
        eta = {"sso": BATCH / curv, "sso-sls": "sls", "sso-ada": "ada"}[method]
        opt = SSO([params], eta=eta, inner_steps=m, ada_eta0=lr or 1.0)
    gen = torch.Generator().manual_seed(10_000 + seed)
    order = torch.cat([torch.randperm(n, generator=gen) for _ in range(math.ceil(T * BATCH / n) + 1)])
    curve = []
    for t in range(T + 1):
        if t % (T // 10) == 0:
            with torch.no_grad():
                curve.append(float(loss(X @ params[:d] + params[d], y)))
        if t == T:
            break
        idx = order[t * BATCH:(t + 1) * BATCH]
        yb = y[idx]
        if method in ("sgd", "adam"):
            opt.zero_grad()
            loss(z_of(idx), yb).backward()
            opt.step()
        else:
            z = z_of(idx).detach().requires_grad_(True)
            (g,) = torch.autograd.grad(loss(z, yb), z)  # the expensive gradient
            opt.step(target_fn=lambda i=idx: z_of(i), target_grad=g, targets=z.detach(),
                     target_loss=lambda q, yb=yb: loss(q, yb))
        if not math.isfinite(curve[-1]):
            break
    return curve


def tune() -> dict:
    seed, out = 100, {}
    for name in PROBLEMS:
        out[name] = {}
        for method, grid in GRIDS.items():
            scores = {}
            for v in grid:
                c = run(name, seed, "sso-ada" if method == "ada" else method, m=10, lr=v)
                scores[v] = c[-1] if math.isfinite(c[-1]) else math.inf
            best = min(scores, key=scores.get)
            out[name][method] = {"best": best, "at_grid_edge": best in (grid[0], grid[-1]),
                                 "final_loss": {f"{k:.4g}": s for k, s in scores.items()}}
            print(name, method, "best", best, flush=True)
    return out


def evaluate(tuned: dict, seeds=(0, 1, 2)) -> dict:
    res = {}
    for name in PROBLEMS:
        res[name] = {}
        for seed in seeds:
            X, y = make_problem(name, seed)
            fstar = optimum(name, X, y)
            runs = {"sgd": ("sgd", 1, tuned[name]["sgd"]["best"]), "adam": ("adam", 1, tuned[name]["adam"]["best"])}
            for m in MS:
                runs[f"sso-m{m}"] = ("sso", m, None)
                runs[f"sso-sls-m{m}"] = ("sso-sls", m, None)
                runs[f"sso-ada-m{m}"] = ("sso-ada", m, tuned[name]["ada"]["best"])
            for key, (method, m, lr) in runs.items():
                t0 = time.process_time()
                c = run(name, seed, method, m, lr)
                res[name].setdefault(key, []).append({"seed": seed, "fstar": fstar, "curve": c,
                                                      "gap": c[-1] - fstar, "cpu_s": time.process_time() - t0})
            print(name, seed, {k: f"{v[-1]['gap']:.2e}" for k, v in res[name].items()}, flush=True)
    return res


def write_md(res: dict, tuned: dict) -> str:
    lines = [f"Suboptimality f(theta_T) - f* on the full data after T = {T} minibatch gradients of size {BATCH} "
             "(equal expensive gradients), linear model from 0; mean over seeds 0-2 [min, max]. "
             "Tuned on dev seed 100: " + ", ".join(f"{p}: sgd lr {tuned[p]['sgd']['best']:.3g}, adam lr "
                                                  f"{tuned[p]['adam']['best']:.3g}, ada eta_0 "
                                                  f"{tuned[p]['ada']['best']:.3g}" for p in PROBLEMS) + ".", ""]
    keys = list(next(iter(res.values())).keys())
    lines.append("| method | " + " | ".join(PROBLEMS) + " |")
    lines.append("|---|" + "---|" * len(PROBLEMS))
    for k in keys:
        cells = []
        for p in PROBLEMS:
            gaps = [r["gap"] for r in res[p][k]]
            cells.append(f"{np.mean(gaps):.2e} [{min(gaps):.1e}, {max(gaps):.1e}]")
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    torch.set_num_threads(1)
    ap = argparse.ArgumentParser()
    ap.add_argument("--tune", action="store_true")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if args.tune:
        (OUT / "tuned.json").write_text(json.dumps(tune(), indent=1))
        return
    tuned = json.loads((OUT / "tuned.json").read_text())
    res = evaluate(tuned)
    (OUT / "results.json").write_text(json.dumps(res, indent=1))
    md = write_md(res, tuned)
    (OUT / "results.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
