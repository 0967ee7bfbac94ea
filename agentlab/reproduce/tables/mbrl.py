"""``agentlab reproduce mbrl``: PETS on three tasks, fixed-dataset re-weighting, and the mismatch diagnostic.

Runs (per seed): ``pets`` (plain NLL, online) on the cart-pole swing-up, Pendulum-v1 and
InvertedPendulum-v5, each returning its training-episode return curve (InvertedPendulum also one
evaluation episode of the final model); ``fixed-nN`` (grid data) and ``fixed-SOURCE-nN`` (random /
mixture data) runs on the cart-pole: a plain and an expert re-weighted ensemble trained on the same fixed dataset of ``N``
transitions and each planned for one episode with the same controller
(:mod:`agentlab.models.reweight`); at the ``full`` budget also online re-weighted PETS
(``pets-rw-ess0.5``). Every fixed-dataset model is also a point of the objective-mismatch
diagnostic (NLL on expert / on-policy / grid data vs return). The report writes ``mbrl.md/.csv/.png``
(final return), ``mbrl_curves.png``, ``mbrl_fixed.md/.csv`` (re-weighting vs dataset size) and
``mbrl_mismatch.md/.csv/.png``. The protocol is pre-registered in ``results/mbrl/README.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentlab.reproduce import RunSpec, TableSpec

CARTPOLE = "agentlab/CartpoleSwingup-v0"
PENDULUM = "Pendulum-v1"
INVERTED = "InvertedPendulum-v5"
VERSION = 2  # in every spec's params: runs of the earlier presets/trainer never count as done

#: per budget: config preset, per-task budget (episodes or env steps) and extra config, online re-weighting
#: (ESS targets), fixed-dataset re-weighting settings
BUDGETS: dict[str, dict[str, Any]] = {
    "smoke": {"preset": "smoke", "tasks": {PENDULUM: {"episodes": 2, "config": {}}}, "ess": [],
              "fixed": {"task": PENDULUM, "source": "grid", "sizes": [60], "seeds": 1, "min_steps": 20,
                        "grid_eval": 100},
              "expert_episodes": 2},
    "small": {"preset": "small",
              # amendments 2-3 (results/mbrl/README.md): Pendulum and InvertedPendulum rerun with the retrain guard
              # ("v": 4); InvertedPendulum plans over 10 steps with the LQR terminal value and ends with one
              # evaluation episode of the final model (the issue's `agentlab train ... --steps 1000` measure)
              "tasks": {CARTPOLE: {"episodes": 8, "config": {}, "v": 4},  # amendment 5
                        PENDULUM: {"episodes": 4, "config": {}, "v": 4},
                        INVERTED: {"steps": 1000, "config": {"horizon": 10}, "v": 4, "eval": True}},
              "ess": [],
              "fixed": {"task": CARTPOLE, "source": "grid", "sizes": [250, 500, 1000, 2000], "seeds": 3,  # seed 2: amendment 5
                        "min_steps": 1500, "grid_eval": 2000,
                        # the other two data sources of the paper's test (amendment 2, results/mbrl/README.md)
                        "extra_sources": {"random": [250, 500], "mixture": [250, 500]}},
              "expert_episodes": 3},
    "full": {"preset": None,
             "tasks": {CARTPOLE: {"episodes": 25, "config": {"horizon": 25}},
                       PENDULUM: {"episodes": 10, "config": {}},
                       INVERTED: {"steps": 3000, "config": {}}},
             "ess": [0.5],
             "fixed": {"task": CARTPOLE, "source": "grid", "sizes": [250, 500, 1000, 2000, 4000], "seeds": 5,
                       "min_steps": 3000, "grid_eval": 5000, "config": {"horizon": 25}},
             "expert_episodes": 3},
}
EXPERT_SEED = 4242  # oracle-expert episodes never share seeds with training or evaluation


def _config(budget: str, task_cfg: dict[str, Any], extra: dict[str, Any]):
    from agentlab.agents.pets import ALGORITHM, PETSConfig
    from agentlab.config import config_from_dict

    b = BUDGETS[budget]
    preset = ALGORITHM.presets.get(b["preset"], {}) if b["preset"] else {}
    return config_from_dict(PETSConfig, {**preset, **task_cfg, **extra})


def _length(t: dict[str, Any]) -> dict[str, int]:
    return {"steps": t["steps"]} if "steps" in t else {"episodes": t["episodes"]}


def specs(budget: str, seeds: int) -> list[RunSpec]:
    b = BUDGETS[budget]
    out = []
    for seed in range(seeds):
        for task, t in b["tasks"].items():
            out.append(RunSpec("mbrl", "pets", task, seed, budget, {**_length(t), "v": t.get("v", VERSION),
                                                                     **({"eval": 1} if t.get("eval") else {})}))
            if task in (CARTPOLE, PENDULUM):  # online re-weighting needs the oracle expert
                for e in b["ess"]:
                    out.append(RunSpec("mbrl", f"pets-rw-ess{e:g}", task, seed, budget,
                                       {**_length(t), "ess": e, "v": VERSION}))
    f = b["fixed"]
    for n in f["sizes"]:  # smallest datasets first (the claim is about small data); seeds inner
        for seed in range(min(seeds, f["seeds"])):
            out.append(RunSpec("mbrl", f"fixed-n{n}", f["task"], seed, budget,
                               {"size": n, "source": f["source"], "v": VERSION}))
    for source, sizes in f.get("extra_sources", {}).items():  # named fixed-SOURCE-nN (grid keeps fixed-nN)
        for n in sizes:
            for seed in range(min(seeds, f["seeds"])):
                out.append(RunSpec("mbrl", f"fixed-{source}-n{n}", f["task"], seed, budget,
                                   {"size": n, "source": source, "v": VERSION}))
    return out


def run(spec: RunSpec) -> dict[str, Any]:
    from agentlab.agents.pets import PETSRunner
    from agentlab.models.mismatch import cached_oracle
    from agentlab.models.reweight import fixed_dataset_points
    from agentlab.runs import seed_everything

    seed_everything(spec.seed)
    b = BUDGETS[spec.budget]
    if spec.algo.startswith("fixed-"):
        f = b["fixed"]
        cfg = _config(spec.budget, f.get("config", {}), {})
        expert = cached_oracle(spec.task, b["expert_episodes"], EXPERT_SEED, cfg.oracle_horizon, cfg.oracle_population)
        points = fixed_dataset_points(spec.task, cfg, spec.seed, spec.params["size"], spec.params["source"], expert,
                                      grid_eval=f["grid_eval"], min_steps=f["min_steps"])
        return {"points": points, "expert_return": float(expert["returns"].mean())}
    t = b["tasks"][spec.task]
    ess = spec.params.get("ess")
    extra = {"reweight": "expert", "ess_target": ess} if ess else {}
    cfg = _config(spec.budget, t["config"], extra)
    expert = None
    if extra:
        expert = cached_oracle(spec.task, b["expert_episodes"], EXPERT_SEED, cfg.oracle_horizon, cfg.oracle_population)
    runner = PETSRunner(cfg, spec.task, spec.seed, expert)
    plan_ms, model = [], []
    while True:
        if "episodes" in spec.params and runner.episodes >= spec.params["episodes"]:
            break
        if "steps" in spec.params and runner.steps >= spec.params["steps"]:
            break
        info = runner.run_episode(spec.params["steps"] - runner.steps if "steps" in spec.params else None)
        if "time/plan_ms_per_step" in info:
            plan_ms.append(info["time/plan_ms_per_step"])
        model += [{"step": s, **m} for s, m in runner.retrain_log]
        runner.retrain_log.clear()
    curve = [[s, r] for s, r in runner.returns]
    last = [r for _, r in runner.returns[-2:]]
    out = {"score": sum(last) / len(last), "curve": curve, "plan_ms_per_step": plan_ms, "retrains": model,
           "expert_return": float(expert["returns"].mean()) if expert is not None else None}
    if spec.params.get("eval"):  # one evaluation episode of the final model (trained on all the data)
        from agentlab.models.reweight import rollout
        from agentlab.seeding import evaluation_seed

        if runner.since_train:
            runner.retrain()
        ret, traj, ms = rollout(runner.agent, spec.task, evaluation_seed(spec.seed), 7 + spec.seed)
        out.update({"eval_return": ret, "eval_plan_ms_per_step": ms,
                    "eval_max_abs_x": float(abs(traj["observations"][:, 0]).max())})
    return out


#: "solved" thresholds of the issue (return of one training episode)
SOLVED = {CARTPOLE: 150.0, INVERTED: 900.0, PENDULUM: -200.0}


def _pets_detail(pets: list[dict[str, Any]]) -> list[str]:
    """Per task and seed: first episode (env steps) at the solved threshold, best and final return,
    planning ms per action."""
    import numpy as np

    lines = ["| task | algo | seed | episodes | env steps | first solved (episode, env steps) | best | final | "
             "plan ms/action (median) | model retrains (median epochs) | eval (final model) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(pets, key=lambda r: (r["spec"]["task"], r["spec"]["algo"], r["spec"]["seed"])):
        spec, res = r["spec"], r["result"]
        curve = res["curve"]
        thr = SOLVED.get(spec["task"])
        first = next(((i + 1, s) for i, (s, ret) in enumerate(curve) if thr is not None and ret >= thr), None)
        epochs = [m.get("model/epochs", float("nan")) for m in res.get("retrains", [])]
        lines.append(f"| {spec['task']} | {spec['algo']} | {spec['seed']} | {len(curve)} | {int(curve[-1][0])} | "
                     + (f"{first[0]} ({int(first[1])})" if first else f"not reached (>= {thr:g})") + " | "
                     + f"{max(ret for _, ret in curve):.1f} | {curve[-1][1]:.1f} | "
                     + (f"{np.median(res['plan_ms_per_step']):.0f}" if res["plan_ms_per_step"] else "—") + " | "
                     + (f"{len(epochs)} ({np.median(epochs):.0f})" if epochs else "—") + " | "
                     + (f"{res['eval_return']:.1f} (max abs x {res['eval_max_abs_x']:.2f})" if "eval_return" in res
                        else "—") + " |")
    return lines


def report(records: list[dict[str, Any]], out_dir: Any, meta: dict[str, Any]) -> list[Path]:
    from agentlab.models.mismatch import write_mismatch_report
    from agentlab.models.reweight import paired_summary
    from agentlab.reproduce.report import curve_plot, header, write_score_table
    from agentlab.runs import atomic_write_text

    out = Path(out_dir)
    budget = meta.get("budget")
    b = BUDGETS.get(budget, BUDGETS["small"])
    pets = [r for r in records if r["spec"]["algo"].startswith("pets")]
    fixed = [r for r in records if r["spec"]["algo"].startswith("fixed-")]
    preset = b["preset"] or "full (mbrl-lib reference)"
    lengths = ", ".join(f"{k} {v['episodes']} episodes" if "episodes" in v else f"{k} {v['steps']} env steps"
                        for k, v in b["tasks"].items())
    caption = (f"PETS (plain NLL, online). Score = mean return of the last two training episodes. Config preset "
               f"`{preset}`; budget per task: {lengths}."
               + (" `pets-rw-essE`: online expert re-weighted NLL, sigma chosen at every retrain for an effective "
                  "sample size of E x the data." if b["ess"] else ""))
    written: list[Path] = []
    if pets:
        algos = ["pets"] + sorted({r["spec"]["algo"] for r in pets} - {"pets"})
        written += write_score_table(pets, out, meta, name="mbrl", caption=caption, col_order=algos,
                                     ylabel="return (last 2 episodes)")
        detail = out / "mbrl_detail.md"
        atomic_write_text(detail, "\n".join(["# PETS per run", "", header(meta, caption).strip(), "",
                                               *_pets_detail(pets), ""]))
        written.append(detail)
        written.append(curve_plot(pets, out / "mbrl_curves.png", x_label="env steps", y_label="episode return",
                                  title=f"PETS ({budget})"))
    points = [p for r in fixed for p in r["result"]["points"]]
    if points:
        rows = paired_summary(points)
        exp_ret = fixed[0]["result"]["expert_return"]
        sources = ", ".join(f"`{x}`" for x in sorted({p["source"] for p in points}))
        fcap = (f"Expert re-weighting on fixed datasets ({fixed[0]['spec']['task']}, sources {sources}): "
                "for every seed and size one plain-NLL and one re-weighted ensemble on the same transitions, each "
                "planned for one episode by the same CEM controller from the same initial state and random stream "
                f"(preset `{preset}`). sigma: the width at which the weights' effective sample size is 0.5 of "
                f"the data (rule fixed before the run; ESS column). Oracle expert return {exp_ret:.1f}.")
        lines = ["# Re-weighting vs dataset size", "", header(meta, fcap).strip(), "",
                 "| source | transitions | seeds | plain | re-weighted | paired diff (+- s.e.) | re-weighted wins | "
                 "sigma | ESS / N |", "|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            lines.append(f"| {r['source']} | {r['n_train']} | {r['seeds']} | {r['plain']:.1f} | {r['reweighted']:.1f} | "
                         f"{r['diff']:+.1f} (+- {r['diff_sem']:.1f}) | {r['wins']}/{r['seeds']} | {r['sigma']:.3g} | "
                         f"{r['ess_frac']:.2f} |")
        lines += ["", "Per model:", "", "| source | seed | transitions | weighting | return | epochs | held-out MSE | "
                  "NLL expert | NLL on-policy | NLL grid |", "|---|---|---|---|---|---|---|---|---|---|"]
        for p in sorted(points, key=lambda p: (p["source"], p["n_train"], p["seed"], p["weighting"])):
            lines.append(f"| {p['source']} | {p['seed']} | {p['n_train']} | {p['weighting']} | {p['return']:.1f} | {p['epochs']} | "
                         f"{p['holdout_mse']:.3g} | {p['nll_expert']:.2f} | {p['nll_onpolicy']:.2f} | "
                         f"{p['nll_grid']:.2f} |")
        md = out / "mbrl_fixed.md"
        atomic_write_text(md, "\n".join(lines) + "\n")
        written.append(md)
        mcap = (f"Objective mismatch on {fixed[0]['spec']['task']}: {len(points)} ensembles (the fixed-dataset "
                "models: sizes x plain/re-weighted x seeds). NLL (per dimension, elites) on held-out oracle-expert "
                "transitions, on the model's own controller episode (on-policy) and on held-out uniform grid "
                f"samples, vs the return of that episode. Preset `{preset}`.")
        written += write_mismatch_report(points, out, name="mbrl_mismatch", caption=mcap,
                                         meta_header=header(meta, "").strip())
    return written


TABLE = TableSpec(name="mbrl", description=__doc__.splitlines()[0], specs=specs, run="agentlab.reproduce.tables.mbrl:run",
                  report=report)
