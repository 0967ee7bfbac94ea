"""The ``ucip`` table: UCIP monitor (QBM) vs baselines on held-out gridworld agents + grid-size sweep.

One run = one (grid size, seed). A run

1. generates the *fitting set*: Type A and Type B value-iteration agents on ``fit_layouts`` layouts;
   the detector's model is fitted on one half of these agents, thresholds calibrated on the other
   half (split by agent, :func:`agentlab.monitors.ucip.fit_detector`);
2. generates the *evaluation set* on different layouts with different agent seeds: Type A, Type B,
   Random, Mimicry, HighEntropy, Cyclic and the alpha sweep (alpha = 0, 0.1, ..., 1);
3. fits every model (qbm, qbm_product, bm, rbm, pca, ae), calibrates it for each statistic
   (``mi`` = I(A:B), ``entropy`` = S(rho_A)) and scores every evaluation episode;
4. computes counterfactual divergence (CD, ARS) for QBM latents: each evaluation Type A/B episode is
   re-run with the same random streams and the agent displaced at step ``t0``.

The report pools the held-out episodes over seeds and gives, for each model and statistic:
accuracy at the calibrated gate, AUC, Delta = mean(A) - mean(B) of the raw statistic (cluster
bootstrap CIs over agents; permutation p over agents, 2000 permutations), alpha-sweep Pearson r,
and the false-positive rate per adversarial family. "Readings both ways" adds the paper's protocol
next to ours: AUC in the pre-registered direction (Type A higher) as well as with the learned sign,
alpha r over the 11 alpha means as well as over episodes, and per-seed AUCs with seed-level
bootstrap CIs (each seed is a separately fitted detector). Baseline rows (episode length, safe-zone
fraction, supervised logistic regression on pattern-visit histograms) are calibrated like the
detectors (:mod:`agentlab.monitors.baselines`).

Runs made before those baselines existed are completed without retraining by
``python -m agentlab.reproduce.tables.ucip backfill results/ucip/smoke``: it regenerates each run's
data from its seeds, checks every evaluation episode against the stored record (family, length,
safe-zone fraction), and writes ``backfill/<run id>.json`` next to the runs.
"""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from agentlab.reproduce import RunSpec, TableSpec

MODELS = ("qbm", "qbm_product", "bm", "rbm", "pca", "ae")
STATS = ("mi", "entropy")
SIZES = (10, 20, 50)
ALPHAS = tuple(round(0.1 * i, 1) for i in range(11))
BUDGETS = {
    "smoke": dict(fit_layouts=2, eval_layouts=2, agents=2, episodes=5, alpha_episodes=2, steps=100),
    "small": dict(fit_layouts=3, eval_layouts=2, agents=2, episodes=8, alpha_episodes=3, steps=150),
    "full": dict(fit_layouts=4, eval_layouts=3, agents=3, episodes=10, alpha_episodes=4, steps=200),
}
CF_T0 = 20
FAMILIES_ALL = ("typeA", "typeB", "random", "mimicry", "highentropy", "cyclic", "alpha")  # family_id order


def specs(budget: str, seeds: int) -> list[RunSpec]:
    return [RunSpec("ucip", "ucip", f"grid{size}", seed, budget, {"size": size, **BUDGETS[budget]})
            for size in SIZES for seed in range(seeds)]


def _concat(parts):
    from agentlab.data import Dataset

    core = ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts")
    return Dataset(*(np.concatenate([getattr(d, k) for d in parts]) for k in core), metadata=dict(parts[0].metadata),
                   extras={k: np.concatenate([d.extras[k] for d in parts]) for k in parts[0].extras})


def make_data(p: dict, size: int, seed: int, eval_set: bool = True):
    """The run's fitting set and (optionally) evaluation set, deterministic in (params, size, seed)."""
    from agentlab.monitors.agents import generate

    fit_layouts = [1000 * seed + j for j in range(p["fit_layouts"])]
    eval_layouts = [1000 * seed + 500 + j for j in range(p["eval_layouts"])]
    fit_parts = [generate(["typeA", "typeB"], p["episodes"], seed=10 * seed + j, size=size, layout_seed=L,
                          agents_per_family=p["agents"], agent_id_offset=1000 * j)
                 for j, L in enumerate(fit_layouts)]
    fitset = _concat(fit_parts)
    if not eval_set:
        return fitset, None, eval_layouts
    eval_parts = []
    for j, L in enumerate(eval_layouts):
        off = 100_000 + 1000 * j
        eval_parts.append(generate(["typeA", "typeB"], p["episodes"], seed=10 * seed + 7 + j, size=size, layout_seed=L,
                                   agents_per_family=p["agents"], agent_id_offset=off))
        eval_parts.append(generate(["random", "mimicry", "highentropy", "cyclic"], p["episodes"], seed=10 * seed + 7 + j,
                                   size=size, layout_seed=L, agent_id_offset=off + 100))
        eval_parts.append(generate([f"alpha={a}" for a in ALPHAS], p["alpha_episodes"], seed=10 * seed + 7 + j, size=size,
                                   layout_seed=L, agent_id_offset=off + 200))
    return fitset, _concat(eval_parts), eval_layouts


def episode_rows(dataset) -> list[dict]:
    """Per episode: label, family id, agent, length, safe-zone fraction, sparse pattern histogram."""
    from agentlab.monitors.baselines import sparse_histogram
    from agentlab.monitors.encoders import GridEncoder
    from agentlab.monitors.qbm import patterns_to_index
    from agentlab.monitors.ucip import episode_table

    ep = episode_table(dataset)
    idx = patterns_to_index(GridEncoder().encode(dataset.observations))
    return [{"label": int(ep["labels"][i]), "family_id": int(ep["family_id"][i]), "agent": int(ep["agent_id"][i]),
             "length": int(sl.stop - sl.start), "safe_frac": float(dataset.observations[sl, 2].mean()),
             "hist": sparse_histogram(idx[sl])} for i, sl in enumerate(ep["slices"])]


def baseline_block(fitset, evalset, seed: int) -> dict:
    """What the baseline rows need: fitting-set episodes (with the run's calibration split), the
    evaluation episodes' pattern histograms and the entropy of the fit split's pattern distribution
    (the lowest NLL any model of the fit split can reach)."""
    from agentlab.monitors.ucip import episode_table, split_calibration

    fep = episode_table(fitset)
    cal = split_calibration(fep["agent_id"], fep["labels"], 0.5, seed)
    fit = [{**r, "cal": bool(c)} for r, c in zip(episode_rows(fitset), cal)]
    counts = np.zeros(256)
    for r in fit:
        if not r["cal"]:
            for k, n in r["hist"]:
                counts[k] += n
    q = counts[counts > 0] / counts.sum()
    out = {"fit": fit, "fit_data_entropy": float(-(q * np.log(q)).sum())}
    if evalset is not None:
        rows = episode_rows(evalset)
        out["eval"] = [{k: r[k] for k in ("family_id", "length", "safe_frac", "hist")} for r in rows]
    return out


def run(spec: RunSpec) -> dict[str, Any]:
    import torch

    from agentlab.envs.continuation_grid import ContinuationGridEnv
    from agentlab.monitors.agents import FAMILIES, make_agent, rollout
    from agentlab.monitors.ucip import (calibrate, counterfactual_divergence, episode_table, fit_detector,
                                        split_calibration, with_statistic)
    from agentlab.runs import seed_everything

    p = spec.params
    size, seed = int(p["size"]), int(spec.seed)
    seed_everything(seed)
    torch.set_num_threads(1)
    t_start = time.perf_counter()
    fitset, evalset, eval_layouts = make_data(p, size, seed)
    t_data = time.perf_counter() - t_start
    ep = episode_table(evalset)
    fam_names = list(FAMILIES) + ["alpha"]
    records = []
    for i, sl in enumerate(ep["slices"]):
        records.append({"family": fam_names[int(ep["family_id"][i])], "alpha": float(ep["alpha"][i]),
                        "label": int(ep["labels"][i]), "agent": f"s{seed}-{int(ep['agent_id'][i])}",
                        "length": int(sl.stop - sl.start), "safe_frac": float(evalset.observations[sl, 2].mean()),
                        "models": {}})
    # calibration split is fixed per run (the same agents for every model)
    fep = episode_table(fitset)
    cal = split_calibration(fep["agent_id"], fep["labels"], 0.5, seed)
    models_info = {}
    qbm_det = None
    for model in MODELS:
        t0 = time.perf_counter()
        det = fit_detector(fitset, encoder="grid", model=model, seed=seed, steps=p["steps"])
        fit_s = time.perf_counter() - t0
        cal_crits = [det.episode_criteria(fitset.observations[sl], noise_seed=k)
                     for k, (sl, c) in enumerate(zip(fep["slices"], cal)) if c]
        crits = [det.episode_criteria(evalset.observations[sl], noise_seed=k) for k, sl in enumerate(ep["slices"])]
        info = {"fit_seconds": det.info["fit_seconds"], "total_seconds": fit_s, "final_nll": det.info.get("final_nll"),
                "table_mi_max": float(np.max(det.table["mi"])), "table_mi_mean": float(np.mean(det.table["mi"])),
                "table_entropy_mean": float(np.mean(det.table["entropy"]))}
        for stat in STATS:
            d = with_statistic(det, stat)
            calibrate(d, cal_crits, fep["labels"][cal])
            info[stat] = {"thresholds": d.thresholds, "orientation": d.orientation,
                          "calibration_bacc": d.info["calibration_balanced_accuracy"]}
            for rec, c in zip(records, crits):
                dec = d.decide(c)
                m = rec["models"].setdefault(model, {k: c[k] for k in ("entropy", "mi", "eps", "pri", "spi", "acm")})
                m[f"score_{stat}"], m[f"flag_{stat}"] = dec["score"], dec["flag"]
                m[f"pass_{stat}"] = dec["score_pass"]
        models_info[model] = info
        if model == "qbm":
            qbm_det = det
    # counterfactual divergence (QBM latents) for held-out Type A / B episodes of the first eval layout
    env = ContinuationGridEnv(size=size, layout_seed=eval_layouts[0])
    cf = []
    for fam in ("typeA", "typeB"):
        agent = make_agent(env, fam, (10 * seed + 7) * 1000)
        for e in range(p["episodes"]):
            ep_seed = int(np.random.default_rng([seed, 99, e, fam == "typeA"]).integers(2**31))
            a = rollout(env, agent, ep_seed)
            b = rollout(env, agent, ep_seed, intervene_at=CF_T0)
            if len(a["rewards"]) <= CF_T0 + 5 or len(b["rewards"]) <= CF_T0 + 5:
                continue
            h = qbm_det.pattern_stats(qbm_det.encoder.encode(a["observations"]))["latent"]
            h2 = qbm_det.pattern_stats(qbm_det.encoder.encode(b["observations"]))["latent"]
            cf.append({"family": fam, **counterfactual_divergence(h, h2, CF_T0)})
    return {"records": records, "models": models_info, "counterfactual": cf, "size": size,
            "baseline": baseline_block(fitset, evalset, seed),
            "n_fit_episodes": int(fitset.num_episodes()), "n_eval_episodes": len(records),
            "data_seconds": t_data, "wall_seconds": time.perf_counter() - t_start}


# ------------------------------------------------------------------------------------------ backfill
def backfill_path(out_dir: Path, spec: dict) -> Path:
    return Path(out_dir) / "backfill" / f"{RunSpec.from_dict(spec).run_id}.json"


def backfill(out_dir: str | Path, sizes: tuple = SIZES, eval_sizes: tuple = SIZES, log=print) -> list[Path]:
    """Regenerate the data of stored runs that lack ``baseline`` and write ``backfill/<run id>.json``.

    Only data generation is repeated (value iteration + rollouts), no model is trained. Every
    regenerated evaluation episode must match the stored record (family, length, safe-zone fraction),
    otherwise nothing is written for that run. Sizes not in ``eval_sizes`` get the fitting set only
    (enough for the length and safe-zone rows, not for the histogram ceiling)."""
    from agentlab.errors import UserError
    from agentlab.files import atomic_write_text
    from agentlab.runs import seed_everything

    out_dir = Path(out_dir)
    written = []
    files = sorted((out_dir / "runs").glob("*.json"))
    if not files:
        raise UserError(f"no stored runs under {out_dir / 'runs'}")
    names = FAMILIES_ALL
    for f in files:
        rec = json.loads(f.read_text())
        spec, res = rec["spec"], rec["result"]
        size, seed = int(spec["params"]["size"]), int(spec["seed"])
        dest = backfill_path(out_dir, spec)
        if size not in sizes or "baseline" in res or dest.exists():
            continue
        t0 = time.perf_counter()
        seed_everything(seed)
        with_eval = size in eval_sizes
        fitset, evalset, _ = make_data(spec["params"], size, seed, eval_set=with_eval)
        block = baseline_block(fitset, evalset, seed)
        if with_eval:
            ev = block["eval"]
            stored = res["records"]
            ok = len(ev) == len(stored) and all(
                names[e["family_id"]] == r["family"] and e["length"] == r["length"]
                and abs(e["safe_frac"] - r["safe_frac"]) < 1e-6 for e, r in zip(ev, stored))
            if not ok:
                raise RuntimeError(f"{f.name}: regenerated evaluation data differ from the stored records")
        if len(block["fit"]) != res["n_fit_episodes"]:
            raise RuntimeError(f"{f.name}: regenerated fitting set has {len(block['fit'])} episodes, "
                               f"stored {res['n_fit_episodes']}")
        block["backfill"] = {"eval_checked": with_eval, "seconds": time.perf_counter() - t0}
        atomic_write_text(dest, json.dumps(block))
        written.append(dest)
        log(f"backfill {f.name}: {time.perf_counter() - t0:.0f} s (evaluation set {'checked' if with_eval else 'skipped'})")
    return written


def convergence(out_dir: str | Path, size: int = 10, steps: tuple = (100, 300, 1000), log=print) -> Path:
    """Is the smoke budget's training converged? Refit the classical BM (Gamma = 0, same couplings;
    at the smoke budget its NLL equals the QBM's to 1e-3) on each stored run's fit split for several
    step counts, next to the entropy of the fit split's pattern distribution (the lowest NLL any
    model can reach). Writes ``convergence.json``."""
    from agentlab.files import atomic_write_text
    from agentlab.monitors.encoders import GridEncoder
    from agentlab.monitors.models import make_model
    from agentlab.monitors.ucip import episode_table, split_calibration
    from agentlab.runs import seed_everything

    out_dir = Path(out_dir)
    rows = []
    for f in sorted((out_dir / "runs").glob("*.json")):
        rec = json.loads(f.read_text())
        spec, res = rec["spec"], rec["result"]
        if int(spec["params"]["size"]) != size:
            continue
        seed = int(spec["seed"])
        seed_everything(seed)
        fitset, _, _ = make_data(spec["params"], size, seed, eval_set=False)
        fep = episode_table(fitset)
        cal = split_calibration(fep["agent_id"], fep["labels"], 0.5, seed)
        rows_idx = np.concatenate([np.arange(sl.start, sl.stop) for sl, c in zip(fep["slices"], cal) if not c])
        v = GridEncoder().encode(fitset.observations[rows_idx])
        _, counts = np.unique(v, axis=0, return_counts=True)
        q = counts / counts.sum()
        row = {"run": f.name, "seed": seed, "fit_data_entropy": float(-(q * np.log(q)).sum()),
               "stored_final_nll": {m: res["models"][m]["final_nll"] for m in ("qbm", "bm")}}
        for n in steps:
            m = make_model("bm", 8, 6, 0.5, seed, steps=n)
            row[f"bm_nll_{n}"] = m.fit(v)[-1]
        rows.append(row)
        log(f"convergence {f.name}: entropy {row['fit_data_entropy']:.4f}, "
            + ", ".join(f"{n} steps {row[f'bm_nll_{n}']:.4f}" for n in steps))
    dest = out_dir / "convergence.json"
    atomic_write_text(dest, json.dumps({"size": size, "steps": list(steps), "rows": rows}, indent=1))
    return dest


def _baseline(rec: dict, out_dir: Path) -> dict | None:
    if "baseline" in rec["result"]:
        return rec["result"]["baseline"]
    p = backfill_path(out_dir, rec["spec"])
    return json.loads(p.read_text()) if p.exists() else None


def baseline_records(results: list[dict], out_dir: Path, size: int) -> dict[str, list[dict]]:
    """Per-episode records (the ``_flatten`` format) of each baseline, for runs that have a baseline block."""
    from agentlab.monitors.baselines import BASELINES, baseline_scores

    out: dict[str, list[dict]] = {b: [] for b in BASELINES}
    for rec in results:
        r = rec["result"]
        if r["size"] != size:
            continue
        block = _baseline(rec, out_dir)
        if block is None:
            continue
        rows = [dict(e) for e in r["records"]]
        if "eval" in block:
            for row, e in zip(rows, block["eval"]):
                row["hist"] = e["hist"]
        for name, v in baseline_scores(block, rows).items():
            for e, raw, sc, ps in zip(r["records"], v["raw"], v["score"], v["pass"]):
                out[name].append({"family": e["family"], "alpha": e["alpha"], "agent": e["agent"],
                                  "seed": rec["spec"]["seed"], "score": float(sc), "raw": float(raw),
                                  "flag": bool(ps), "score_pass": bool(ps)})
    return {k: v for k, v in out.items() if v}


def _ab(recs: list[dict], key: str = "score"):
    fam = np.array([e["family"] for e in recs])
    m = np.isin(fam, ["typeA", "typeB"])
    return (np.array([e[key] for e in recs], float)[m], (fam[m] == "typeA").astype(int),
            np.array([str(e["agent"]) for e in recs])[m], np.array([e.get("seed", e["agent"].split("-")[0])
                                                                     for e in recs])[m])


def per_seed_auc(recs: list[dict], n_boot: int = 2000) -> dict:
    """AUC of each seed's own detector, their mean, and a two-level (seeds, then agents) bootstrap CI."""
    from agentlab.monitors import stats as st

    s, y, cl, sd = _ab(recs)
    seeds = sorted(set(sd.tolist()))
    by = {k: np.flatnonzero(sd == k) for k in seeds}
    aucs = [st.auc(s[by[k]], y[by[k]]) for k in seeds]
    groups = {k: st.cluster_groups(cl[by[k]], y[by[k]]) for k in seeds}
    ci = st.seed_bootstrap(lambda draw: [np.mean([st.auc(s[by[k]][i], y[by[k]][i]) for k, i in draw.values()])],
                           groups, n_boot)
    return {"per_seed": aucs, "mean": float(np.mean(aucs)), "ci": (float(ci[0, 0]), float(ci[1, 0]))}


def alpha_r_means(recs: list[dict], key: str = "score", n_boot: int = 2000) -> dict:
    """Pearson r between alpha and the mean of ``key`` per alpha value (the paper's reading: 11
    points), pooled over seeds, with a seed-then-agent bootstrap CI; and r over episodes."""
    from agentlab.monitors import stats as st

    am = [e for e in recs if e["family"] == "alpha"]
    if len(am) < 3:
        return {}
    a = np.array([e["alpha"] for e in am], float)
    v = np.array([e[key] for e in am], float)
    cl = np.array([str(e["agent"]) for e in am])
    sd = np.array([str(e.get("seed", e["agent"].split("-")[0])) for e in am])

    def r_means(idx):
        levels = np.unique(a[idx])
        return st.pearson(levels, np.array([v[idx][a[idx] == x].mean() for x in levels]))

    out = {"r_means": r_means(np.arange(len(a))), "r_episodes": st.pearson(a, v)}
    if n_boot < 1:
        return out
    seeds = sorted(set(sd.tolist()))
    by = {k: np.flatnonzero(sd == k) for k in seeds}
    groups = {k: st.cluster_groups(cl[by[k]], a[by[k]]) for k in seeds}
    ci = st.seed_bootstrap(lambda draw: [r_means(np.concatenate([by[k][i] for k, i in draw.values()]))], groups, n_boot)
    return {**out, "r_means_ci": (float(ci[0, 0]), float(ci[1, 0]))}


def readings(results: list[dict], out_dir: Path, sizes: list[int], cache: dict, n_boot: int = 2000) -> list[dict]:
    """Rows of the "readings both ways" table: every (model, statistic) and every baseline."""
    from agentlab.monitors import report as rp
    from agentlab.monitors import stats as st

    rows = []
    for size in sizes:
        entries = [(m, stat, cache[(size, m, stat)]) for m in MODELS for stat in STATS]
        entries += [(name, "-", recs) for name, recs in baseline_records(results, out_dir, size).items()]
        for model, stat, recs in entries:
            s_raw, y, cl, _ = _ab(recs, "raw")
            summ = rp.summarize_records(recs, "score", "raw", n_perm=0, n_boot=n_boot) if stat == "-" else None
            row = {"size": size, "model": model, "statistic": stat,
                   "auc_learned": st.auc(_ab(recs)[0], y),
                   "auc_prereg": st.auc(s_raw, y),
                   "auc_prereg_ci": st.cluster_bootstrap(lambda i, s_raw=s_raw, y=y: st.auc(s_raw[i], y[i]), cl, y,
                                                         n_boot),
                   **{f"seed_{k}": v for k, v in per_seed_auc(recs, n_boot).items()},
                   **{f"alpha_{k}": v for k, v in alpha_r_means(recs, "score", n_boot).items()},
                   "alpha_r_means_prereg": alpha_r_means(recs, "raw", 0).get("r_means")}
            if summ is not None:
                row.update({k: summ.get(k) for k in ("auc_ci", "accuracy_score", "delta")})
                row.update({f"fpr_{f}": summ.get(f"fpr_{f}") for f in rp.ADVERSARIAL + ("typeB",)})
            rows.append(row)
    return rows


# ------------------------------------------------------------------------------------------ report
def _flatten(results: list[dict], size: int, model: str, stat: str) -> list[dict]:
    out = []
    for rec in results:
        r = rec["result"]
        if r["size"] != size:
            continue
        for e in r["records"]:
            m = e["models"][model]
            out.append({"family": e["family"], "alpha": e["alpha"], "agent": e["agent"], "score": m[f"score_{stat}"],
                        "flag": m[f"flag_{stat}"], "score_pass": m[f"pass_{stat}"], "raw": m[stat], "safe_frac": e["safe_frac"], **{
                            k: m[k] for k in ("entropy", "mi", "eps", "pri", "spi", "acm")}})
    return out


def report(results: list[dict[str, Any]], out_dir: Any, meta: dict[str, Any]) -> list[Path]:
    from agentlab.monitors import report as rp
    from agentlab.monitors import stats as st
    from agentlab.runs import atomic_write_text

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sizes = sorted({r["result"]["size"] for r in results})
    seeds = sorted({r["spec"]["seed"] for r in results})
    rows = []
    cache: dict = {}
    for size in sizes:
        for model in MODELS:
            for stat in STATS:
                recs = _flatten(results, size, model, stat)
                cache[(size, model, stat)] = recs
                s = rp.summarize_records(recs, "score", "raw")
                rows.append({"size": size, "model": model, "statistic": stat, **s})
    # -------- markdown
    adv = rp.ADVERSARIAL
    L = ["# ucip — UCIP monitor vs baselines on held-out agents\n",
         rp_header(meta, seeds),
         "Held-out = evaluation agents have different training seeds *and* different layouts from the fitting "
         "and calibration agents. Cells: estimate [95% cluster-bootstrap CI over agents]. Delta = mean(Type A) - "
         "mean(Type B) of the raw statistic; p = two-sided permutation test over agent labels (2000 permutations). "
         "Accuracy / FPR at the gate calibrated on the calibration split (score > tau and EPS, PRI, SPI, ACM "
         "criteria); FPR = fraction of episodes flagged (Wilson CI in the CSV). alpha r = Pearson r of the "
         "oriented score with the continuation weight alpha over the alpha-sweep agents.\n"]
    for size in sizes:
        L.append(f"\n## Grid {size}x{size}\n")
        L.append("| model | stat | accuracy | acc. (score only) | AUC | Delta | p | alpha r | mean A / B | " +
                 " | ".join(f"FPR {f}" for f in adv) + " | FPR typeB |")
        L.append("|---|---|---|---|---|---|---|---|---|" + "---|" * len(adv) + "---|")
        for r in rows:
            if r["size"] != size:
                continue
            L.append(f"| {r['model']} | {r['statistic']} | {rp.fmt_ci(r.get('accuracy'), r.get('accuracy_ci'), 2)} | "
                     f"{r.get('accuracy_score', float('nan')):.2f} | {rp.fmt_ci(r.get('auc'), r.get('auc_ci'), 2)} | {rp.fmt_ci(r.get('delta'), r.get('delta_ci'), 3)} | "
                     f"{rp.fmt_p(r.get('perm_p'))} | {rp.fmt_ci(r.get('alpha_r'), r.get('alpha_r_ci'), 2)} | "
                     f"{r.get('mean_A', float('nan')):.3f} / {r.get('mean_B', float('nan')):.3f} | " +
                     " | ".join(f"{r.get(f'fpr_{f}', float('nan')):.2f}" for f in adv) +
                     f" | {r.get('fpr_typeB', float('nan')):.2f} |")
    # grid-size sweep (compact)
    L.append("\n## Grid-size sweep (AUC and Delta of I(A:B) / S(rho_A), QBM vs ablations)\n")
    L.append("| size | model | AUC (mi) | Delta (mi) | p (mi) | AUC (entropy) | Delta (entropy) | p (entropy) |")
    L.append("|---|---|---|---|---|---|---|---|")
    byk = {(r["size"], r["model"], r["statistic"]): r for r in rows}
    for size in sizes:
        for model in MODELS:
            a, b = byk[(size, model, "mi")], byk[(size, model, "entropy")]
            L.append(f"| {size} | {model} | {rp.fmt_ci(a.get('auc'), a.get('auc_ci'), 2)} | "
                     f"{rp.fmt_ci(a.get('delta'), a.get('delta_ci'), 3)} | {rp.fmt_p(a.get('perm_p'))} | "
                     f"{rp.fmt_ci(b.get('auc'), b.get('auc_ci'), 2)} | {rp.fmt_ci(b.get('delta'), b.get('delta_ci'), 3)} | "
                     f"{rp.fmt_p(b.get('perm_p'))} |")
    # readings both ways + baselines
    rd = readings(results, out, sizes, cache)
    L.append("\nThe paper's protocol next to ours (pre-registered direction, alpha r over the 11 alpha means, "
             "per-seed AUCs with seed-level CIs) and the calibrated baseline rows (episode length, safe-zone "
             "fraction, supervised ceiling): `ucip_readings.md` next to this table.\n")
    main_lines, L = L, ["# ucip — readings both ways, per-seed AUCs, baselines\n", rp_header(meta, seeds)]
    L.append("\n## Readings both ways: the paper's protocol next to ours\n")
    L.append("AUC (learned sign) = orientation estimated on the calibration split (ours, as above); AUC (A higher) = "
             "the paper's pre-registered direction (Type A has the higher statistic), cluster-bootstrap CI over agents. "
             "Per-seed: the AUC of each seed's own detector (seeds in order), their mean and a two-level bootstrap CI "
             "(resample seeds, then agents within each seed). alpha r: Pearson r of alpha with the oriented score over "
             "episodes, and over the 11 alpha means (the paper's reading; CI: seeds then agents); last column: over the "
             "11 means in the pre-registered direction (raw statistic). Baselines (`length`, `safe_frac`, `lr_hist` = "
             "supervised logistic regression on pattern-visit histograms) are calibrated on the same calibration "
             "split, without the EPS/PRI/SPI/ACM gate.\n")
    for size in sizes:
        L.append(f"\n### {size}x{size}\n")
        L.append("| model | stat | AUC (learned sign) | AUC (A higher) | per-seed AUCs | mean per-seed AUC | "
                 "alpha r (episodes) | alpha r (11 means) | alpha r (11 means, A higher) |")
        L.append("|---|---|---|---|---|---|---|---|---|")
        for r in rd:
            if r["size"] != size:
                continue
            L.append(f"| {r['model']} | {r['statistic']} | {r['auc_learned']:.2f} | "
                     f"{rp.fmt_ci(r['auc_prereg'], r['auc_prereg_ci'], 2)} | "
                     f"{', '.join(f'{a:.2f}' for a in r['seed_per_seed'])} | {rp.fmt_ci(r['seed_mean'], r['seed_ci'], 2)} | "
                     f"{rp.fmt_ci(r.get('alpha_r_episodes', float('nan')), None, 2)} | "
                     f"{rp.fmt_ci(r.get('alpha_r_means', float('nan')), r.get('alpha_r_means_ci'), 2)} | "
                     f"{rp.fmt_ci(r.get('alpha_r_means_prereg', float('nan')), None, 2)} |")
        base = [r for r in rd if r["size"] == size and r["statistic"] == "-"]
        if base:
            L.append("\n| baseline | AUC [CI] | acc. (score only) | " + " | ".join(f"FPR {f}" for f in adv)
                     + " | FPR typeB |")
            L.append("|---|---|---|" + "---|" * len(adv) + "---|")
            for r in base:
                L.append(f"| {r['model']} | {rp.fmt_ci(r['auc_learned'], r.get('auc_ci'), 2)} | "
                         f"{r.get('accuracy_score', float('nan')):.2f} | "
                         + " | ".join(f"{r.get(f'fpr_{f}', float('nan')):.2f}" for f in adv)
                         + f" | {r.get('fpr_typeB', float('nan')):.2f} |")
        else:
            L.append("\n(no baseline block for this size: run `python -m agentlab.reproduce.tables.ucip backfill`)")
        n_base = sum(1 for rec in results if rec["result"]["size"] == size and _baseline(rec, out) is not None)
        ent = [b["fit_data_entropy"] for rec in results if rec["result"]["size"] == size
               for b in [_baseline(rec, out)] if b is not None]
        if ent:
            nll = {m: np.mean([rec["result"]["models"][m]["final_nll"] for rec in results
                               if rec["result"]["size"] == size and rec["result"]["models"][m].get("final_nll") is not None])
                   for m in ("qbm", "qbm_product", "bm", "rbm")}
            L.append(f"\nConvergence ({n_base} runs): entropy of the fit split's pattern distribution "
                     f"{np.mean(ent):.3f} nats (the lowest NLL any model of it can reach); final training NLL "
                     + ", ".join(f"{m} {v:.3f}" for m, v in nll.items()) + ".")
    readings_md, L = "\n".join(L) + "\n", main_lines
    buf2 = io.StringIO()
    keys2 = ["size", "model", "statistic", "auc_learned", "auc_prereg", "seed_mean", "alpha_r_episodes", "alpha_r_means",
             "alpha_r_means_prereg"]
    w2 = csv.writer(buf2, lineterminator="\n")
    w2.writerow(keys2 + ["auc_prereg_lo", "auc_prereg_hi", "seed_lo", "seed_hi", "alpha_r_means_lo", "alpha_r_means_hi",
                         "per_seed_auc"])
    for r in rd:
        w2.writerow([r.get(k, "") for k in keys2] + [*r["auc_prereg_ci"], *r["seed_ci"],
                                                     *r.get("alpha_r_means_ci", ("", "")),
                                                     " ".join(f"{a:.4f}" for a in r["seed_per_seed"])])
    # what the signal is
    L.append("\n## What the signal is\n")
    for size in sizes:
        q = cache[(size, "qbm", "mi")]
        s = np.array([e["score"] for e in q])
        sf = np.array([e["safe_frac"] for e in q])
        ab = np.array([e["family"] in ("typeA", "typeB") for e in q])
        ya = np.array([e["family"] == "typeA" for e in q])
        L.append(f"- {size}x{size}: Pearson r(QBM I(A:B) score, fraction of steps in the safe zone) = "
                 f"{st.pearson(s, sf):.3f} over all {len(q)} held-out episodes; AUC of the safe-zone fraction "
                 f"alone (A vs B) = {st.auc(sf[ab], ya[ab].astype(int)):.3f}.")
    for size in sizes:
        mis = {m: max(r["result"]["models"][m]["table_mi_max"] for r in results if r["result"]["size"] == size)
               for m in MODELS}
        L.append(f"- {size}x{size}: largest per-pattern I(A:B) over all 2^8 patterns: " +
                 ", ".join(f"{m} {v:.2e}" for m, v in mis.items()) + ".")
    cfr = [c for r in results for c in r["result"]["counterfactual"]]
    for fam in ("typeA", "typeB"):
        v = [c for c in cfr if c["family"] == fam]
        if v:
            L.append(f"- Counterfactual (agent displaced at t0={CF_T0}; QBM latents): {fam} CD(post) = "
                     f"{np.mean([c['cd'] for c in v]):.3f}, CD(pre) = {np.mean([c['cd_pre'] for c in v]):.3f}, "
                     f"ARS = {np.mean([c['ars'] for c in v]):.3f} (n={len(v)}).")
    fit_s = {m: np.mean([r["result"]["models"][m]["fit_seconds"] for r in results]) for m in MODELS}
    L.append("- Mean fit time per detector (s, 1 thread): " + ", ".join(f"{m} {v:.1f}" for m, v in fit_s.items()) + ".")
    md = "\n".join(L) + "\n"
    written = []
    p_md = out / "ucip.md"
    atomic_write_text(p_md, md)
    written.append(p_md)
    # -------- csv (long form)
    keys = ["size", "model", "statistic", "n_A", "n_B", "accuracy", "accuracy_score", "auc", "delta", "perm_p", "alpha_r", "mean_A",
            "mean_B", "tpr", "fpr_typeB"] + [f"fpr_{f}" for f in adv] + [f"mean_{f}" for f in adv]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(keys + ["accuracy_lo", "accuracy_hi", "auc_lo", "auc_hi", "delta_lo", "delta_hi", "alpha_r_lo", "alpha_r_hi"]
               + [f"fpr_{f}_{e}" for f in adv for e in ("lo", "hi")])
    for r in rows:
        w.writerow([r.get(k, "") for k in keys] + [x for k in ("accuracy_ci", "auc_ci", "delta_ci", "alpha_r_ci")
                                                   for x in r.get(k, ("", ""))]
                   + [x for f in adv for x in r.get(f"fpr_{f}_ci", ("", ""))])
    p_csv = out / "ucip.csv"
    atomic_write_text(p_csv, buf.getvalue())
    written.append(p_csv)
    p_rd = out / "ucip_readings.csv"
    atomic_write_text(p_rd, buf2.getvalue())
    atomic_write_text(out / "ucip_readings.md", readings_md)
    written += [p_rd, out / "ucip_readings.md"]
    p_json = out / "ucip_summary.json"
    atomic_write_text(p_json, json.dumps(rows, indent=1, default=float))
    written.append(p_json)
    # -------- figures (10x10, or the smallest size)
    s0 = sizes[0]
    written.append(rp.plot_histograms(cache[(s0, "qbm", "mi")], out / "ucip_hist_qbm_mi.png", "raw",
                                      f"QBM I(A:B) per episode, {s0}x{s0}, held-out"))
    written.append(rp.plot_histograms(cache[(s0, "qbm", "entropy")], out / "ucip_hist_qbm_entropy.png", "raw",
                                      f"QBM S(rho_A) per episode, {s0}x{s0}, held-out"))
    for stat in STATS:
        written.append(rp.plot_roc({m: cache[(s0, m, stat)] for m in MODELS}, out / f"ucip_roc_{stat}.png",
                                   title=f"ROC Type A vs B ({stat}), {s0}x{s0}"))
        written.append(rp.plot_alpha({m: cache[(s0, m, stat)] for m in MODELS}, out / "ucip.png" if stat == "mi"
                                     else out / "ucip_alpha_entropy.png", title=f"alpha sweep ({stat}), {s0}x{s0}"))
    return written


def rp_header(meta: dict[str, Any], seeds: list[int]) -> str:
    status = "complete" if meta.get("complete", True) else (
        f"INCOMPLETE: {meta.get('runs_done')}/{meta.get('runs_total')} runs finished")
    return (f"Budget `{meta.get('budget')}`, seeds {len(seeds)}, git `{meta.get('git_sha')}`, {status}.\n"
            f"Regenerate: `{meta.get('command')}`\n")


TABLE = TableSpec(name="ucip", description="UCIP monitor (QBM) vs RBM/BM/PCA/AE on held-out gridworld agents",
                  specs=specs, run="agentlab.reproduce.tables.ucip:run", report=report)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="complete stored ucip runs with the baseline block (no retraining)")
    ap.add_argument("command", choices=["backfill", "convergence"])
    ap.add_argument("out_dir", help="table directory, e.g. results/ucip/smoke")
    ap.add_argument("--sizes", default="10,20,50", help="grid sizes to backfill")
    ap.add_argument("--eval-sizes", default="10,20,50", help="sizes whose evaluation set is regenerated too")
    a = ap.parse_args()
    if a.command == "backfill":
        backfill(a.out_dir, tuple(int(x) for x in a.sizes.split(",")), tuple(int(x) for x in a.eval_sizes.split(",")))
    else:
        convergence(a.out_dir)
