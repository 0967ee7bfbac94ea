"""D4RL-style levels of a trained expert: reference returns and the medium snapshot."""

from __future__ import annotations

import time
from typing import Any


from agentlab.errors import UserError
from agentlab.experts.rollout import measure_return
from agentlab.experts.store import RandomPolicy, _read_meta, _write_meta, find_expert, load_expert


# -- D4RL levels ---------------------------------------------------------------------------------
EVAL_SEED = 1_000_000  # reference-score episodes use seeds far from training/collection seeds


def expert_levels(env_id: str, algo: str | None = None, seed: int | None = None, episodes: int = 10,
                  log: Any = print) -> dict[str, Any]:
    """Reference returns and the medium snapshot for a trained expert (measured once, cached in meta.json).

    ``ref_min`` = uniform-random policy, ``ref_max`` = the final expert (deterministic), each the mean
    over ``episodes`` episodes; ``medium`` = the snapshot whose stochastic return is closest to one third
    of the expert's stochastic return (D4RL's medium level)."""
    from agentlab.envs import env_spaces

    path = find_expert(env_id, algo, seed)
    meta = _read_meta(path)
    lv = meta.get("levels")
    if lv and lv.get("episodes", 0) >= episodes:
        return lv
    t0 = time.perf_counter()
    _, act_space = env_spaces(env_id)
    rmin, rmin_std = measure_return(RandomPolicy(act_space, EVAL_SEED), env_id, max(episodes, 20), EVAL_SEED)
    expert = load_expert(env_id, meta["algo"], meta["seed"])
    rmax, rmax_std = measure_return(expert, env_id, episodes, EVAL_SEED, deterministic=True)
    rexp_sto, _ = measure_return(expert, env_id, episodes, EVAL_SEED, deterministic=False)
    log(f"{env_id}: random {rmin:.1f}, expert {rmax:.1f} (stochastic {rexp_sto:.1f})")
    target = rmin + (rexp_sto - rmin) / 3.0
    # candidates: the snapshots whose training return is nearest the target, then measured properly
    snaps = {int(k): v.get("train_return_mean") for k, v in meta.get("snapshots", {}).items()}
    snaps = {k: v for k, v in snaps.items() if v is not None and (path / "snapshots" / f"step_{k}.zip").is_file()}
    if not snaps and meta["algo"] == "agentlab-sac":  # no training snapshots: reference returns only
        lv = {"episodes": episodes, "eval_seed": EVAL_SEED, "ref_min_score": rmin, "ref_min_std": rmin_std,
              "ref_max_score": rmax, "ref_max_std": rmax_std, "expert_stochastic_return": rexp_sto,
              "medium_snapshot": None, "time_s": time.perf_counter() - t0}
        meta["levels"] = lv
        _write_meta(path, meta)
        return lv
    if not snaps:
        raise UserError(f"expert {path} has no snapshots to choose a medium policy from")
    cands = sorted(snaps, key=lambda k: abs(snaps[k] - target))[:4]
    measured = {}
    for k in cands:
        pol = load_expert(env_id, meta["algo"], meta["seed"], snapshot=k)
        measured[k] = measure_return(pol, env_id, episodes, EVAL_SEED, deterministic=False)[0]
        log(f"  snapshot {k}: train return {snaps[k]:.1f}, measured {measured[k]:.1f} (target {target:.1f})")
    medium = min(measured, key=lambda k: abs(measured[k] - target))
    lv = {"episodes": episodes, "eval_seed": EVAL_SEED, "ref_min_score": rmin, "ref_min_std": rmin_std,
          "ref_max_score": rmax, "ref_max_std": rmax_std, "expert_stochastic_return": rexp_sto,
          "medium_snapshot": medium, "medium_return": measured[medium], "medium_target": target,
          "time_s": time.perf_counter() - t0}
    meta["levels"] = lv
    _write_meta(path, meta)
    return lv
