"""``agentlab reproduce mbrl``: PETS vs objective-mismatch re-weighted PETS, and the mismatch diagnostic.

Runs (per seed): ``pets`` (plain NLL) and ``pets-rw-s<S>`` (expert re-weighted NLL, kernel width
``S``) on the cart-pole swing-up and Pendulum-v1, each returning its training-episode return
curve; plus ``mismatch`` runs on the cart-pole (many models: NLL on expert / on-policy / grid data
vs controller return). The report writes ``mbrl.md/.csv/.png`` (final return: mean of the last two
episodes), ``mbrl_curves.png`` (return vs env steps) and ``mbrl_mismatch.md/.csv/.png``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from agentlab.reproduce import RunSpec, TableSpec

CARTPOLE = "agentlab/CartpoleSwingup-v0"
PENDULUM = "Pendulum-v1"

#: per budget: config preset, extra config, episodes per task, re-weighting widths, mismatch settings
BUDGETS: dict[str, dict[str, Any]] = {
    "smoke": {"preset": "smoke", "tasks": {PENDULUM: {"episodes": 2, "config": {}}}, "sigmas": [1.0],
              "mismatch": {"task": PENDULUM, "onpolicy_episodes": 3, "grid_size": 200, }, "expert_episodes": 2},
    "small": {"preset": "small",
              "tasks": {CARTPOLE: {"episodes": 5, "config": {"iterations": 2}},
                        PENDULUM: {"episodes": 4, "config": {"iterations": 2}}},
              "sigmas": [0.5, 2.0],
              "mismatch": {"task": CARTPOLE, "onpolicy_episodes": 4, "grid_size": 2000,
                           "config": {"iterations": 2}},
              "expert_episodes": 3},
    "full": {"preset": None,
             "tasks": {CARTPOLE: {"episodes": 25, "config": {"horizon": 25}},
                       PENDULUM: {"episodes": 10, "config": {}}},
             "sigmas": [0.25, 0.5, 1.0, 2.0],
             "mismatch": {"task": CARTPOLE, "onpolicy_episodes": 10, "grid_size": 5000,
                          "config": {"horizon": 25}}, "expert_episodes": 3},
}
EXPERT_SEED = 4242  # oracle-expert episodes never share seeds with training or evaluation


def _config(budget: str, task_cfg: dict[str, Any], extra: dict[str, Any]):
    from agentlab.agents.pets import ALGORITHM, PETSConfig
    from agentlab.config import config_from_dict

    b = BUDGETS[budget]
    preset = ALGORITHM.presets.get(b["preset"], {}) if b["preset"] else {}
    return config_from_dict(PETSConfig, {**preset, **task_cfg, **extra})


def specs(budget: str, seeds: int) -> list[RunSpec]:
    b = BUDGETS[budget]
    out = []
    for seed in range(seeds):
        for task, t in b["tasks"].items():
            out.append(RunSpec("mbrl", "pets", task, seed, budget, {"episodes": t["episodes"]}))
            for s in b["sigmas"]:
                out.append(RunSpec("mbrl", f"pets-rw-s{s:g}", task, seed, budget,
                                   {"episodes": t["episodes"], "sigma": s}))
        m = b["mismatch"]
        out.append(RunSpec("mbrl", "mismatch", m["task"], seed, budget, {}))
    return out


def run(spec: RunSpec) -> dict[str, Any]:
    from agentlab.agents.pets import PETSRunner
    from agentlab.models.mismatch import cached_oracle, mismatch_points
    from agentlab.runs import seed_everything

    seed_everything(spec.seed)
    b = BUDGETS[spec.budget]
    if spec.algo == "mismatch":
        m = b["mismatch"]
        cfg = _config(spec.budget, m.get("config", {}), {})
        expert = cached_oracle(spec.task, b["expert_episodes"], EXPERT_SEED, cfg.oracle_horizon, cfg.oracle_population)
        points = mismatch_points(spec.task, cfg, spec.seed, m["onpolicy_episodes"], expert, m["grid_size"])
        return {"points": points, "expert_return": float(expert["returns"].mean())}
    t = b["tasks"][spec.task]
    sigma = spec.params.get("sigma", math.inf)
    extra = {"reweight": "expert", "sigma": sigma} if math.isfinite(sigma) else {}
    cfg = _config(spec.budget, t["config"], extra)
    expert = None
    if extra:
        expert = cached_oracle(spec.task, b["expert_episodes"], EXPERT_SEED, cfg.oracle_horizon, cfg.oracle_population)
    runner = PETSRunner(cfg, spec.task, spec.seed, expert)
    plan_ms = []
    for _ in range(spec.params["episodes"]):
        info = runner.run_episode()
        if "time/plan_ms_per_step" in info:
            plan_ms.append(info["time/plan_ms_per_step"])
    curve = [[s, r] for s, r in runner.returns]
    last = [r for _, r in runner.returns[-2:]]
    return {"score": sum(last) / len(last), "curve": curve, "plan_ms_per_step": plan_ms,
            "expert_return": float(expert["returns"].mean()) if expert is not None else None}


def report(records: list[dict[str, Any]], out_dir: Any, meta: dict[str, Any]) -> list[Path]:
    from agentlab.models.mismatch import write_mismatch_report
    from agentlab.reproduce.report import curve_plot, header, write_score_table

    out = Path(out_dir)
    budget = meta.get("budget")
    b = BUDGETS.get(budget, BUDGETS["small"])
    pets = [r for r in records if r["spec"]["algo"] != "mismatch"]
    mism = [r for r in records if r["spec"]["algo"] == "mismatch"]
    expert_returns = {r["spec"]["task"]: r["result"]["expert_return"] for r in records
                      if r["result"].get("expert_return") is not None}
    preset = b["preset"] or "full (mbrl-lib reference)"
    caption = (f"PETS vs objective-mismatch re-weighted PETS (`pets-rw-sS`: expert re-weighted NLL with kernel "
               f"width S in normalised state-action space). Score = mean return of the last two training "
               f"episodes (200 steps each). Config preset `{preset}`; episodes per task: "
               + ", ".join(f"{k} {v['episodes']} ({v['config'] or 'preset'})" for k, v in b["tasks"].items())
               + ". Oracle-expert (true-dynamics CEM) return used for the weights: "
               + ", ".join(f"{k} {v:.1f}" for k, v in expert_returns.items()) + ".")
    written: list[Path] = []
    if pets:
        algos = ["pets"] + sorted({r["spec"]["algo"] for r in pets} - {"pets"})
        written += write_score_table(pets, out, meta, name="mbrl", caption=caption, col_order=algos,
                                     ylabel="return (last 2 episodes)")
        written.append(curve_plot(pets, out / "mbrl_curves.png", x_label="env steps", y_label="episode return",
                                  title=f"PETS vs re-weighted PETS ({budget})"))
    if mism:
        points = [p for r in mism for p in r["result"]["points"]]
        if points:
            mcap = (f"Objective mismatch on {mism[0]['spec']['task']}: {len(points)} ensembles trained on different "
                    "data (random, on-policy PETS data at several stages, oracle expert, mixtures, uniform grid) "
                    "and for different epochs (seed 0: held-out early stopping, seed 1: 3 epochs, seed 2: 10); "
                    "NLL (per dimension, elites) on held-out expert / on-policy / grid transitions vs the return "
                    f"of one CEM-controller episode. Preset `{preset}`.")
            written += write_mismatch_report(points, out, name="mbrl_mismatch", caption=mcap,
                                             meta_header=header(meta, "").strip())
    return written


TABLE = TableSpec(name="mbrl", description=__doc__.splitlines()[0], specs=specs, run="agentlab.reproduce.tables.mbrl:run",
                  report=report)
