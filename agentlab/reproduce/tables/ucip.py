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
and the false-positive rate per adversarial family.
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


def specs(budget: str, seeds: int) -> list[RunSpec]:
    return [RunSpec("ucip", "ucip", f"grid{size}", seed, budget, {"size": size, **BUDGETS[budget]})
            for size in SIZES for seed in range(seeds)]


def _concat(parts):
    from agentlab.data import Dataset

    core = ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts")
    return Dataset(*(np.concatenate([getattr(d, k) for d in parts]) for k in core), metadata=dict(parts[0].metadata),
                   extras={k: np.concatenate([d.extras[k] for d in parts]) for k in parts[0].extras})


def run(spec: RunSpec) -> dict[str, Any]:
    import torch

    from agentlab.envs.continuation_grid import ContinuationGridEnv
    from agentlab.monitors.agents import FAMILIES, generate, make_agent, rollout
    from agentlab.monitors.ucip import (calibrate, counterfactual_divergence, episode_table, fit_detector,
                                        split_calibration, with_statistic)
    from agentlab.runs import seed_everything

    p = spec.params
    size, seed = int(p["size"]), int(spec.seed)
    seed_everything(seed)
    torch.set_num_threads(1)
    t_start = time.perf_counter()
    fit_layouts = [1000 * seed + j for j in range(p["fit_layouts"])]
    eval_layouts = [1000 * seed + 500 + j for j in range(p["eval_layouts"])]
    fit_parts = [generate(["typeA", "typeB"], p["episodes"], seed=10 * seed + j, size=size, layout_seed=L,
                          agents_per_family=p["agents"], agent_id_offset=1000 * j)
                 for j, L in enumerate(fit_layouts)]
    fitset = _concat(fit_parts)
    eval_parts = []
    for j, L in enumerate(eval_layouts):
        off = 100_000 + 1000 * j
        eval_parts.append(generate(["typeA", "typeB"], p["episodes"], seed=10 * seed + 7 + j, size=size, layout_seed=L,
                                   agents_per_family=p["agents"], agent_id_offset=off))
        eval_parts.append(generate(["random", "mimicry", "highentropy", "cyclic"], p["episodes"], seed=10 * seed + 7 + j,
                                   size=size, layout_seed=L, agent_id_offset=off + 100))
        eval_parts.append(generate([f"alpha={a}" for a in ALPHAS], p["alpha_episodes"], seed=10 * seed + 7 + j, size=size,
                                   layout_seed=L, agent_id_offset=off + 200))
    evalset = _concat(eval_parts)
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
            "n_fit_episodes": int(fitset.num_episodes()), "n_eval_episodes": len(records),
            "data_seconds": t_data, "wall_seconds": time.perf_counter() - t_start}


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
