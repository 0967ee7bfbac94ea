r"""The settling experiment: can the quantum part of a QBM help a UCIP-style detector at all?

Protocol pre-registered in ``results/ucip/README.md`` (section "Settling experiment"); run with

    python -m agentlab.monitors.settling --seeds 3 --out results/ucip/settling

Models (all exact): QBMs with :math:`\Gamma \in \{0, 0.5, 1, 2, 5\}` and with :math:`\Gamma` learned by
exact maximum likelihood, against classical Boltzmann machines (:math:`\Gamma = 0`, hidden couplings)
with :math:`n_h, n_h + 1, n_h + 2` hidden units. Scores per episode: mean :math:`I(A{:}B)`, mean
:math:`S(\rho_A)` (one model fitted on both classes, sign from the calibration split) and the per-class
log-likelihood ratio :math:`\sum_t \log P_1(v_t) - \log P_0(v_t)` (one model per class).

Data: (a1) a QBM teacher whose classes differ only in :math:`\Gamma`; (a2) one whose classes differ
only in the couplings across the A|B cut; (b) the gridworld with temporal context (3 bits at steps t
and t+1); (c) Type A vs mimicry (behaviour cloning of Type A). A quantum advantage is claimed only
where :math:`\mathrm{AUC}(\mathrm{QBM}) - \max_k \mathrm{AUC}(\mathrm{BM}_k)` has a 95% CI above 0 *and*
the mean log-negativity of the QBM's hidden state is above 0.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from agentlab.monitors import stats as st
from agentlab.monitors.qbm import QBM, QBMConfig, all_patterns, patterns_to_index


@dataclass
class SettlingConfig:
    seeds: int = 3
    n_v: int = 6
    n_h: int = 4
    gammas: tuple = (0.0, 0.5, 1.0, 2.0, 5.0)
    steps: int = 600
    lr: float = 0.05
    dev_seed: int = 99
    t_candidates: tuple = (5, 10, 20, 50)
    oracle_auc: float = 0.9
    n_fit: int = 60  # teacher episodes per class
    n_cal: int = 30
    n_test: int = 60
    grid_size: int = 10
    grid_agents: int = 4  # per class and layout
    grid_episodes: int = 5
    n_boot: int = 2000


DATASETS = ("teacher_gamma", "teacher_cut", "grid_temporal", "mimicry")
SCORES = ("mi", "entropy", "lr")


def model_names(c: SettlingConfig) -> list[str]:
    return [f"qbm_g{g:g}" for g in c.gammas] + ["qbm_learned"] + [f"bm_h{c.n_h + k}" for k in range(3)]


def make_model(name: str, c: SettlingConfig, seed: int) -> QBM:
    kw = dict(n_visible=c.n_v, couplings=True, steps=c.steps, lr=c.lr, seed=seed)
    if name == "qbm_learned":
        return QBM(QBMConfig(n_hidden=c.n_h, gamma=1.0, learn_gamma=True, **kw))
    if name.startswith("qbm_g"):
        return QBM(QBMConfig(n_hidden=c.n_h, gamma=float(name[5:]), **kw))
    return QBM(QBMConfig(n_hidden=int(name[4:]), gamma=0.0, **kw))


# ------------------------------------------------------------------------------------------ data
@dataclass
class Split:
    patterns: list  # per episode: (T, n_v) uint8
    labels: np.ndarray
    clusters: np.ndarray


def teacher(c: SettlingConfig, seed: int, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Exact log P(v) of the two classes' teachers over all 2^n_v patterns (class 1, class 0)."""
    rng = np.random.default_rng([seed, 7])
    n_v, n_h = c.n_v, c.n_h
    b, cc = rng.normal(0, 0.5, n_v), rng.normal(0, 0.5, n_h)
    W = rng.normal(0, 1.0, (n_v, n_h))
    U = np.zeros((n_h, n_h))
    half = n_h // 2
    for j in range(n_h):
        for k in range(j + 1, n_h):
            across = (j < half) != (k < half)
            U[j, k] = 1.5 * rng.choice([-1.0, 1.0]) if across else rng.normal(0, 0.5)
    cut = np.zeros_like(U)
    cut[:half, half:] = U[:half, half:]
    if kind == "teacher_gamma":
        variants = [(2.0, U), (0.0, U)]
    elif kind == "teacher_cut":
        variants = [(1.0, U), (1.0, U - cut)]
    else:
        raise ValueError(kind)
    out = []
    for gamma, u in variants:
        m = QBM(QBMConfig(n_visible=n_v, n_hidden=n_h, gamma=gamma, couplings=True))
        with torch.no_grad():
            for name, val in (("b", b), ("c", cc), ("W", W), ("U", u)):
                getattr(m, name).copy_(torch.as_tensor(val))
            out.append(m.log_prob_patterns(bound=False).numpy())
    return out[0], out[1]


def sample_episodes(logp: np.ndarray, n: int, T: int, rng) -> list:
    p = np.exp(logp - logp.max())
    p /= p.sum()
    pats = all_patterns(int(np.log2(len(p)))).numpy().astype(np.uint8)
    return [pats[rng.choice(len(p), size=T, p=p)] for _ in range(n)]


def choose_T(c: SettlingConfig, kind: str) -> tuple[int, dict]:
    """Pre-registered rule (dev seed only): smallest T with oracle log-likelihood-ratio AUC >= 0.9."""
    lp1, lp0 = teacher(c, c.dev_seed, kind)
    rng = np.random.default_rng([c.dev_seed, 11])
    aucs = {}
    for T in c.t_candidates:
        e1, e0 = sample_episodes(lp1, 200, T, rng), sample_episodes(lp0, 200, T, rng)
        s = [float((lp1 - lp0)[patterns_to_index(e)].sum()) for e in e1 + e0]
        aucs[T] = st.auc(np.array(s), np.array([1] * 200 + [0] * 200))
        if aucs[T] >= c.oracle_auc:
            return T, aucs
    return c.t_candidates[-1], aucs


def teacher_data(c: SettlingConfig, seed: int, kind: str, T: int) -> tuple[dict, dict]:
    lp1, lp0 = teacher(c, seed, kind)
    rng = np.random.default_rng([seed, 13])
    splits, nxt = {}, 0
    for name, n in (("fit", c.n_fit), ("cal", c.n_cal), ("test", c.n_test)):
        eps = sample_episodes(lp1, n, T, rng) + sample_episodes(lp0, n, T, rng)
        splits[name] = Split(eps, np.array([1] * n + [0] * n), np.arange(nxt, nxt + 2 * n))
        nxt += 2 * n
    oracle = st.auc(np.array([float((lp1 - lp0)[patterns_to_index(e)].sum()) for e in splits["test"].patterns]),
                    splits["test"].labels)
    return splits, {"T": T, "oracle_test_auc": oracle}


GRID_BITS3 = (0, 3, 7)  # in_safe, near_goal, got_reward of agentlab.monitors.encoders.GRID_BITS


def pair_patterns(obs: np.ndarray) -> np.ndarray:
    """3 layout-relative bits at steps t and t+1 -> (T - 1, 6) visible patterns."""
    from agentlab.monitors.encoders import GridEncoder

    bits = GridEncoder().encode(obs)[:, GRID_BITS3]
    return np.concatenate([bits[:-1], bits[1:]], axis=1).astype(np.uint8)


def grid_data(c: SettlingConfig, seed: int, kind: str) -> tuple[dict, dict]:
    from agentlab.monitors.agents import generate
    from agentlab.monitors.ucip import episode_table, split_calibration

    fams = ["typeA", "typeB"] if kind == "grid_temporal" else ["typeA", "mimicry"]

    def episodes(layouts, seed_base, offset):
        pats, labels, agents = [], [], []
        for j, L in enumerate(layouts):
            d = generate(fams, c.grid_episodes, seed=seed_base + j, size=c.grid_size, layout_seed=L,
                         agents_per_family=c.grid_agents, agent_id_offset=offset + 1000 * j)
            ep = episode_table(d)
            for i, sl in enumerate(ep["slices"]):
                if sl.stop - sl.start < 2:
                    continue  # no pair of steps
                pats.append(pair_patterns(d.observations[sl]))
                labels.append(int(ep["family_id"][i] == 0))  # typeA = family 0
                agents.append(int(ep["agent_id"][i]))
        return pats, np.array(labels), np.array(agents)

    fp, fl, fa = episodes([1000 * seed + j for j in range(2)], 10 * seed, 0)
    tp, tl, ta = episodes([1000 * seed + 500 + j for j in range(2)], 10 * seed + 7, 100_000)
    cal = split_calibration(fa, fl, 0.5, seed)
    sel = lambda m: [p for p, k in zip(fp, m) if k]  # noqa: E731
    splits = {"fit": Split(sel(~cal), fl[~cal], fa[~cal]), "cal": Split(sel(cal), fl[cal], fa[cal]),
              "test": Split(tp, tl, ta)}
    return splits, {"episodes": {k: len(v.labels) for k, v in splits.items()}}


# ------------------------------------------------------------------------------------------ one seed
def _counts(pats: list, n_v: int) -> np.ndarray:
    return np.bincount(patterns_to_index(np.concatenate(pats)), minlength=2**n_v)


def run_seed(c: SettlingConfig, kind: str, seed: int, T: int | None = None) -> dict:
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    splits, info = teacher_data(c, seed, kind, T) if kind.startswith("teacher") else grid_data(c, seed, kind)
    fit, cal, test = splits["fit"], splits["cal"], splits["test"]
    v_all = all_patterns(c.n_v)
    test_counts = _counts(test.patterns, c.n_v)
    fit_counts = _counts(fit.patterns, c.n_v)
    pf = fit_counts / fit_counts.sum()
    info["fit_data_entropy"] = float(-(pf[pf > 0] * np.log(pf[pf > 0])).sum())
    idx = {name: [patterns_to_index(e) for e in s.patterns] for name, s in splits.items()}
    out = {"info": info, "labels": test.labels.tolist(), "clusters": test.clusters.tolist(), "models": {}}
    for name in model_names(c):
        pooled = make_model(name, c, seed)
        hist = pooled.fit(np.concatenate(fit.patterns))
        with torch.no_grad():
            lp = pooled.log_prob_patterns(bound=False).numpy()
        stats = {k: v.numpy() for k, v in pooled.pattern_statistics(v_all).items()}
        neg = pooled.log_negativity(v_all).numpy()
        ratio = pooled.gamma_gap_ratio(v_all).numpy()
        w = test_counts / test_counts.sum()
        rec = {"train_nll": hist[-1], "train_nll_change_last50": hist[-51] - hist[-1],
               "heldout_nll": float(-(w * lp).sum()), "gamma": pooled.gamma_value(),
               "log_negativity_mean": float((w * neg).sum()), "log_negativity_max": float(neg.max()),
               "gamma_gap_median": float(np.median(np.repeat(ratio, test_counts))), "scores": {}}
        for stat in ("mi", "entropy"):
            tab = stats[stat]
            cal_s = np.array([tab[i].mean() for i in idx["cal"]])
            sign = 1.0 if cal_s[cal.labels == 1].mean() >= cal_s[cal.labels == 0].mean() else -1.0
            rec["scores"][stat] = [sign * float(tab[i].mean()) for i in idx["test"]]
            rec[f"sign_{stat}"] = sign
        per_class = []
        for lab in (1, 0):
            m = make_model(name, c, seed)
            m.fit(np.concatenate([p for p, y in zip(fit.patterns, fit.labels) if y == lab]))
            with torch.no_grad():
                per_class.append(m.log_prob_patterns(bound=False).numpy())
            rec[f"gamma_class{lab}"] = m.gamma_value()
        llr = per_class[0] - per_class[1]
        rec["scores"]["lr"] = [float(llr[i].sum()) for i in idx["test"]]
        rec["auc"] = {s: st.auc(np.array(rec["scores"][s]), test.labels) for s in SCORES}
        out["models"][name] = rec
    out["seconds"] = time.perf_counter() - t0
    return out


# ------------------------------------------------------------------------------------------ summary
def summarize(c: SettlingConfig, per_seed: dict[int, dict]) -> dict:
    names = model_names(c)
    bms = [n for n in names if n.startswith("bm_")]
    qbms = [n for n in names if n.startswith("qbm")]
    seeds = list(per_seed)
    y = {s: np.array(per_seed[s]["labels"]) for s in seeds}
    sc = {s: {m: {k: np.array(v) for k, v in per_seed[s]["models"][m]["scores"].items()} for m in names}
          for s in seeds}
    groups = {s: st.cluster_groups(np.array(per_seed[s]["clusters"]), y[s]) for s in seeds}

    def vector(draw):
        vals = []
        for score in SCORES:
            a = {m: np.mean([st.auc(sc[s][m][score][i], y[s][i]) for s, i in draw.values()]) for m in names}
            best_bm = max(a[b] for b in bms)
            vals += [a[m] for m in names] + [a[q] - best_bm for q in qbms]
        return vals

    point = []
    for score in SCORES:
        a = {m: float(np.mean([per_seed[s]["models"][m]["auc"][score] for s in seeds])) for m in names}
        point += [a[m] for m in names] + [a[q] - max(a[b] for b in bms) for q in qbms]
    ci = st.seed_bootstrap(vector, groups, c.n_boot, seed=0)
    k = len(names) + len(qbms)
    res: dict = {"auc": {}, "delta": {}, "models": {}}
    for j, score in enumerate(SCORES):
        for i, m in enumerate(names):
            res["auc"].setdefault(m, {})[score] = (point[j * k + i], float(ci[0, j * k + i]), float(ci[1, j * k + i]))
        for i, q in enumerate(qbms):
            p = j * k + len(names) + i
            res["delta"].setdefault(q, {})[score] = (point[p], float(ci[0, p]), float(ci[1, p]))
    for m in names:
        recs = [per_seed[s]["models"][m] for s in seeds]
        res["models"][m] = {key: float(np.mean([r[key] for r in recs])) for key in
                            ("heldout_nll", "train_nll", "train_nll_change_last50", "gamma", "log_negativity_mean",
                             "log_negativity_max", "gamma_gap_median")}
        res["models"][m]["auc_per_seed"] = {score: [r["auc"][score] for r in recs] for score in SCORES}
    res["verdict"] = {q: {score: bool(res["delta"][q][score][1] > 0 and res["models"][q]["log_negativity_mean"] > 0)
                          for score in SCORES} for q in qbms}
    res["fit_data_entropy"] = float(np.mean([per_seed[s]["info"]["fit_data_entropy"] for s in seeds]))
    return res


def _ci(t, d=2):
    return f"{t[0]:.{d}f} [{t[1]:.{d}f}, {t[2]:.{d}f}]"


def markdown(c: SettlingConfig, results: dict, meta: dict) -> str:
    names = model_names(c)
    L = ["# Settling experiment: QBM (Gamma sweep, learned Gamma) vs classical BMs\n",
         f"Pre-registered in [../README.md](../README.md). Command: `{meta['command']}`; seeds "
         f"{meta['seeds']}; git `{meta['git']}`; {meta['seconds']:.0f} s on 1 CPU thread. n_v = {c.n_v}, "
         f"n_h = {c.n_h} (BMs {c.n_h}..{c.n_h + 2}), exact, {c.steps} Adam steps, lr {c.lr}. AUC = mean over seeds "
         f"of the held-out AUC [95% two-level bootstrap CI: seeds, then clusters; {c.n_boot} resamples]. Delta = "
         "AUC(QBM) - max AUC(BM_4, BM_5, BM_6), paired. NLL in nats per pattern. E_N = log-negativity across the "
         "hidden A|B cut (visit-weighted mean over test patterns / max over all patterns). Claim = Delta CI above 0 "
         "and mean E_N > 0.\n"]
    for kind in DATASETS:
        if kind not in results:
            continue
        r = results[kind]
        L.append(f"\n## {kind}\n")
        L.append(f"{r['note']} Fit-split data entropy {r['summary']['fit_data_entropy']:.3f} nats.\n")
        L.append("| model | held-out NLL | train NLL (change, last 50 steps) | abs(Gamma) | E_N mean / max | "
                 "Gamma/gap | AUC mi | AUC entropy | AUC lr |")
        L.append("|---|---|---|---|---|---|---|---|---|")
        s = r["summary"]
        for m in names:
            mm = s["models"][m]
            L.append(f"| {m} | {mm['heldout_nll']:.4f} | {mm['train_nll']:.4f} ({mm['train_nll_change_last50']:.1e}) | "
                     f"{mm['gamma']:.2f} | {mm['log_negativity_mean']:.3f} / {mm['log_negativity_max']:.3f} | "
                     f"{mm['gamma_gap_median']:.2f} | " + " | ".join(_ci(s["auc"][m][sc]) for sc in SCORES) + " |")
        L.append("\n| QBM | Delta AUC mi | Delta AUC entropy | Delta AUC lr | quantum advantage claimed |")
        L.append("|---|---|---|---|---|")
        for q, d in s["delta"].items():
            claims = [sc for sc in SCORES if s["verdict"][q][sc]]
            L.append(f"| {q} | " + " | ".join(_ci(d[sc], 3) for sc in SCORES) + f" | {', '.join(claims) or 'no'} |")
    return "\n".join(L) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--out", default="results/ucip/settling")
    ap.add_argument("--datasets", default=",".join(DATASETS))
    ap.add_argument("--steps", type=int, default=None, help="override (tests only; the table uses 600)")
    ap.add_argument("--boot", type=int, default=None, help="override (tests only; the table uses 2000)")
    a = ap.parse_args(argv)
    from agentlab.errors import UserError

    c = SettlingConfig(seeds=a.seeds)
    if a.steps:
        c.steps = a.steps
    if a.boot:
        c.n_boot = a.boot
    kinds = [k.strip() for k in a.datasets.split(",") if k.strip()]
    bad = [k for k in kinds if k not in DATASETS]
    if bad:
        raise UserError(f"unknown data set(s) {', '.join(bad)}; choose from {', '.join(DATASETS)}")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    results = {}
    for kind in kinds:
        if kind.startswith("teacher"):
            T, aucs = choose_T(c, kind)
            note = (f"T = {T} patterns per episode (rule on dev seed {c.dev_seed}: oracle AUC by T "
                    + ", ".join(f"{t}: {v:.3f}" for t, v in aucs.items()) + ").")
        else:
            T, note = None, (f"{c.grid_size}x{c.grid_size} grid, {c.grid_agents} agents per class and layout, "
                             f"{c.grid_episodes} episodes each, 2 fit + 2 test layouts.")
        per_seed = {}
        for seed in range(c.seeds):
            per_seed[seed] = run_seed(c, kind, seed, T)
            print(f"{kind} seed {seed}: {per_seed[seed]['seconds']:.0f} s", flush=True)
        if kind.startswith("teacher"):
            note += " Oracle test AUC per seed: " + ", ".join(
                f"{per_seed[s]['info']['oracle_test_auc']:.3f}" for s in per_seed) + "."
        results[kind] = {"note": note, "summary": summarize(c, per_seed), "per_seed": per_seed}
    from agentlab.files import atomic_write_text
    from agentlab.runs import git_sha

    meta = {"command": "python -m agentlab.monitors.settling " + " ".join(argv if argv is not None else
                                                                          __import__("sys").argv[1:]),
            "seeds": list(range(c.seeds)), "git": git_sha(), "seconds": time.perf_counter() - t0}
    atomic_write_text(out / "settling.json", json.dumps({"config": asdict(c), "meta": meta, "results": results},
                                                        indent=1, default=float))
    atomic_write_text(out / "settling.md", markdown(c, results, meta))
    print((out / "settling.md").read_text())
    return 0


if __name__ == "__main__":
    import sys

    from agentlab.errors import UserError

    try:
        raise SystemExit(main())
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(e.exit_code) from None
