"""Dev run (seed 100, never a table seed): InvertedPendulum-v5 with a dense planning shaping
``exp(-q)``, ``q = x^2 + (angle/0.2)^2 + 0.1 x'^2 + 0.01 angle'^2``, as the lexicographic tie-breaker
(alive * (1 + 0.01 exp(-q))); 1000 training steps, then one evaluation episode with the final model.
Usage: python dev_ip_dense.py SEED OUT.json [ITERATIONS]"""
import dataclasses
import json
import sys
import time

import numpy as np
import torch

import agentlab.models.tasks as T
from agentlab.agents.pets import SMALL, PETSConfig, PETSRunner
from agentlab.config import config_from_dict
from agentlab.models.reweight import rollout


def plan_reward(obs, act, nxt):
    alive = T.inverted_pendulum_reward(obs, act, nxt)
    q = nxt[..., 0].pow(2) + (nxt[..., 1] / 0.2).pow(2) + 0.1 * nxt[..., 2].pow(2) + 0.01 * nxt[..., 3].pow(2)
    return alive * (1 + T.TIE_BREAK * torch.exp(-q))


T.TASKS["InvertedPendulum-v5"] = dataclasses.replace(T.TASKS["InvertedPendulum-v5"], planning_reward=plan_reward)
seed = int(sys.argv[1])
extra = {"iterations": int(sys.argv[3])} if len(sys.argv) > 3 else {}
cfg = config_from_dict(PETSConfig, {**SMALL, **extra})
r = PETSRunner(cfg, "InvertedPendulum-v5", seed)
t0 = time.time()
eps = []
while r.steps < 1000:
    n0 = len(r.buf["obs"])
    info = r.run_episode(1000 - r.steps)
    x = r.buf["obs"][n0:, 0]
    th = r.buf["next_obs"][n0:, 1]
    eps.append({"steps": r.steps, "return": info["train/episode_return"], "max_abs_x": float(np.abs(x).max()),
                "last_angle": float(th[-1]), "plan_ms": info.get("time/plan_ms_per_step")})
    print(eps[-1], round(time.time() - t0), flush=True)
if r.since_train:
    r.retrain()
ret, traj, ms = rollout(r.agent, "InvertedPendulum-v5", 1_000_003 + 1000 * seed, 7)
x = traj["observations"][:, 0]
print("eval", ret, round(ms), "x range", float(x.min()), float(x.max()), "mean|x|", float(np.abs(x).mean()),
      round(time.time() - t0), flush=True)
json.dump({"episodes": eps, "eval_return": ret, "eval_plan_ms": ms, "eval_x_min": float(x.min()),
           "eval_x_max": float(x.max()), "wall_s": time.time() - t0, "config_extra": extra},
          open(sys.argv[2], "w"), indent=1)
