"""Plots and summaries for UCIP results (shared by ``agentlab monitor report`` and the ``ucip`` table).

Input everywhere: a list of per-episode records with ``family`` (str), ``alpha`` (float or NaN),
``label`` (0/1), ``agent`` (cluster id), ``score``, ``flag``, and the criteria.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from agentlab.monitors import stats as st
from agentlab.plotting import pyplot, save_figure

ADVERSARIAL = ("random", "mimicry", "highentropy", "cyclic")


def summarize_records(recs: list[dict], stat_key: str = "score", raw_key: str | None = None,
                      n_perm: int = 2000, n_boot: int = 2000) -> dict:
    """AUC [CI], Delta [CI] + permutation p, accuracy at the gate, FPR per family, alpha-sweep r [CI]."""
    fam = np.array([r["family"] for r in recs])
    agent = np.array([str(r["agent"]) for r in recs])
    score = np.array([r[stat_key] for r in recs], float)
    raw = score if raw_key is None else np.array([r[raw_key] for r in recs], float)
    flag = np.array([bool(r["flag"]) for r in recs])
    out: dict = {}
    ab = np.isin(fam, ["typeA", "typeB"])
    if ab.any():
        y = (fam[ab] == "typeA").astype(int)
        s, rw, cl, fl = score[ab], raw[ab], agent[ab], flag[ab]
        out["n_A"], out["n_B"] = int(y.sum()), int((1 - y).sum())
        out["auc"] = st.auc(s, y)
        out["auc_ci"] = st.cluster_bootstrap(lambda i: st.auc(s[i], y[i]), cl, y, n_boot)
        out["mean_A"], out["mean_B"] = float(rw[y == 1].mean()), float(rw[y == 0].mean())
        out["delta"] = out["mean_A"] - out["mean_B"]
        out["delta_ci"] = st.cluster_bootstrap(
            lambda i: rw[i][y[i] == 1].mean() - rw[i][y[i] == 0].mean() if (y[i] == 1).any() and (y[i] == 0).any()
            else np.nan, cl, y, n_boot)
        out["perm_p"] = st.permutation_pvalue(rw, y, cl, n_perm)
        out["accuracy"] = float((fl == (y == 1)).mean())
        out["accuracy_ci"] = st.cluster_bootstrap(lambda i: float((fl[i] == (y[i] == 1)).mean()), cl, y, n_boot)
        if all("score_pass" in r for r in recs):
            sp = np.array([bool(r["score_pass"]) for r in recs])[ab]
            out["accuracy_score"] = float((sp == (y == 1)).mean())
        out["tpr"] = float(fl[y == 1].mean())
        out["fpr_typeB"] = float(fl[y == 0].mean())
    for f in ADVERSARIAL:
        m = fam == f
        if m.any():
            k, n = int(flag[m].sum()), int(m.sum())
            out[f"fpr_{f}"] = k / n
            out[f"fpr_{f}_ci"] = st.wilson(k, n)
            out[f"mean_{f}"] = float(raw[m].mean())
    am = fam == "alpha"
    if am.sum() >= 3:
        alpha = np.array([r["alpha"] for r in recs], float)[am]
        s, cl = score[am], agent[am]
        out["alpha_r"] = st.pearson(alpha, s)
        out["alpha_r_ci"] = st.cluster_bootstrap(lambda i: st.pearson(alpha[i], s[i]), cl, None, n_boot)
        out["alpha_curve"] = [(float(a), float(s[alpha == a].mean()), float(s[alpha == a].std()))
                              for a in np.unique(alpha)]
    return out


def plot_histograms(recs: list[dict], path: Path, key: str = "score", title: str = "") -> Path:
    plt = pyplot()

    fams = [f for f in ("typeA", "typeB") + ADVERSARIAL if any(r["family"] == f for r in recs)]
    vals = np.array([r[key] for r in recs], float)
    bins = np.linspace(np.nanmin(vals), np.nanmax(vals) + 1e-9, 30)
    fig, ax = plt.subplots(figsize=(7, 4))
    for f in fams:
        ax.hist([r[key] for r in recs if r["family"] == f], bins=bins, alpha=0.45, label=f)
    ax.set_xlabel(key)
    ax.set_ylabel("episodes")
    ax.set_title(title or f"per-family {key}")
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path, dpi=90)
    return path


def plot_roc(curves: dict[str, list[dict]], path: Path, key: str = "score", title: str = "ROC, Type A vs Type B") -> Path:
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(5, 5))
    for name, recs in curves.items():
        ab = [r for r in recs if r["family"] in ("typeA", "typeB")]
        if not ab:
            continue
        s = np.array([r[key] for r in ab], float)
        y = np.array([r["family"] == "typeA" for r in ab], int)
        fpr, tpr = st.roc_curve(s, y)
        ax.plot(fpr, tpr, label=f"{name} (AUC {st.auc(s, y):.2f})")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("true-positive rate")
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, dpi=90)
    return path


def plot_alpha(curves: dict[str, list[dict]], path: Path, key: str = "score", title: str = "alpha sweep") -> Path:
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, recs in curves.items():
        am = [r for r in recs if r["family"] == "alpha"]
        if not am:
            continue
        a = np.array([r["alpha"] for r in am], float)
        s = np.array([r[key] for r in am], float)
        xs = np.unique(a)
        m = np.array([s[a == x].mean() for x in xs])
        sd = np.array([s[a == x].std() for x in xs])
        ax.errorbar(xs, m, yerr=sd, marker="o", capsize=2, label=f"{name} (r={st.pearson(a, s):.2f})")
    ax.set_xlabel("continuation weight alpha")
    ax.set_ylabel(key)
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, dpi=90)
    return path


def fmt_ci(v: float, ci: tuple[float, float] | None, d: int = 3) -> str:
    if v is None or not np.isfinite(v):
        return "—"
    if ci is None or not all(np.isfinite(ci)):
        return f"{v:.{d}f}"
    return f"{v:.{d}f} [{ci[0]:.{d}f}, {ci[1]:.{d}f}]"


def fmt_p(p: float) -> str:
    return "—" if p is None or not np.isfinite(p) else (f"{p:.4f}" if p >= 1e-3 else f"{p:.1e}")
