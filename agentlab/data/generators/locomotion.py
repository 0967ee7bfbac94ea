"""D4RL-style locomotion datasets from one cached PPO training run per environment.

Levels (as in D4RL, on Gymnasium MuJoCo v5 instead of D4RL's v2 environments):

* ``random``: uniform random actions.
* ``medium``: the training snapshot whose (stochastic) return is closest to one third of the way
  from random to the expert's return; its actions are sampled from the Gaussian policy.
* ``expert``: the final policy, actions sampled.
* ``medium-replay``: every transition the learner collected up to the medium snapshot (PPO's
  rollouts play the role of SAC's replay buffer in D4RL); ``--size N`` keeps the last N.
* ``medium-expert``: ``medium`` followed by ``expert`` (half the size each).

The expert is trained on first use (:func:`agentlab.experts.train_expert`, resumable, cached in
``$AGENTLAB_DATA/experts``) unless one is already there. Reference scores: ref_min = uniform random
policy, ref_max = the expert with deterministic actions, each averaged over >= 10 episodes
(:func:`agentlab.experts.expert_levels`); they are written into every level's metadata.
"""

from __future__ import annotations

from typing import Any

import numpy as np

ENV_IDS = {"hopper": "Hopper-v5", "halfcheetah": "HalfCheetah-v5", "walker2d": "Walker2d-v5"}
LEVELS = ("random", "medium", "expert", "medium-replay", "medium-expert")
DEFAULT_SIZE: dict[str, int | None] = {"random": 100_000, "medium": 100_000, "expert": 100_000,
                                       "medium-replay": None, "medium-expert": 200_000}
#: PPO budget for an expert trained on demand (the committed experts used this budget)
EXPERT_STEPS = 300_000
_LEVEL_SEED = {"random": 1, "medium": 2, "expert": 3, "medium-replay": 4, "medium-expert": 5}


def _expert(env_id: str, log: Any) -> tuple[Any, dict[str, Any]]:
    from agentlab.errors import UserError
    from agentlab.experts import expert_levels, find_expert, train_expert

    try:
        path = find_expert(env_id)
    except UserError:
        log(f"no cached expert for {env_id}: training one (PPO, {EXPERT_STEPS} steps; resumable)")
        path = train_expert(env_id, "ppo", EXPERT_STEPS, 0, log=log)
    import json

    meta = json.loads((path / "meta.json").read_text())
    levels = expert_levels(env_id, meta["algo"], meta["seed"], log=log)
    return path, {**levels, "algo": meta["algo"], "expert_seed": meta["seed"], "expert_steps": meta.get("steps")}


def make(env: str, level: str, size: int | None, seed: int, log: Any = print) -> Any:
    from agentlab.data import Dataset
    from agentlab.envs import env_spaces
    from agentlab.experts import RandomPolicy, load_expert, replay_transitions, rollout

    env_id = ENV_IDS[env]
    path, lv = _expert(env_id, log)
    base = seed * 1_000_003 + _LEVEL_SEED[level] * 10_007
    meta: dict[str, Any] = {"env_id": env_id, "ref_min_score": lv["ref_min_score"],
                            "ref_max_score": lv["ref_max_score"],
                            "ref_scores_how": f"uniform random / deterministic expert, {lv['episodes']}+ episodes each, "
                                              f"seeds from {lv['eval_seed']}",
                            "expert_path": str(path), "expert_algo": lv["algo"], "expert_steps": lv["expert_steps"],
                            "medium_snapshot": lv["medium_snapshot"], "level": level}

    def roll(policy: Any, n: int, s: int, what: str) -> dict[str, np.ndarray]:
        arr = rollout(policy, env_id, transitions=n, seed=s, deterministic=False, progress=f"{env}-{what}")
        rets = arr.pop("episode_returns")
        meta[f"{what}_policy_return_mean"] = float(rets.mean()) if len(rets) else None
        return arr

    if level == "random":
        _, act_space = env_spaces(env_id)
        arr = roll(RandomPolicy(act_space, base), size, base, "random")
        meta["behaviour"] = "uniform random actions"
    elif level == "medium":
        arr = roll(load_expert(env_id, lv["algo"], lv["expert_seed"], snapshot=lv["medium_snapshot"]), size, base,
                   "medium")
        meta["behaviour"] = f"PPO snapshot at step {lv['medium_snapshot']}, sampled actions"
    elif level == "expert":
        arr = roll(load_expert(env_id, lv["algo"], lv["expert_seed"]), size, base, "expert")
        meta["behaviour"] = "final PPO policy, sampled actions"
    elif level == "medium-expert":
        half = size // 2
        med = roll(load_expert(env_id, lv["algo"], lv["expert_seed"], snapshot=lv["medium_snapshot"]), half, base,
                   "medium")
        exp = roll(load_expert(env_id, lv["algo"], lv["expert_seed"]), size - half, base + 5003, "expert")
        arr = {k: np.concatenate([med[k], exp[k]]) for k in med}
        meta["behaviour"] = f"medium ({half} transitions) then expert ({size - half})"
    elif level == "medium-replay":
        arr = replay_transitions(env_id, lv["medium_snapshot"], lv["algo"], lv["expert_seed"])
        if size is not None and size < len(arr["rewards"]):
            arr = {k: v[-size:] for k, v in arr.items()}
        meta["behaviour"] = f"all PPO rollouts up to the medium snapshot (step {lv['medium_snapshot']})"
    else:  # pragma: no cover - GENERATORS only lists LEVELS
        raise ValueError(level)
    return Dataset(**arr, metadata=meta)
