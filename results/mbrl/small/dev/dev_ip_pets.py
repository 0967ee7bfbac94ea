"""Dev run (seed 100 or other non-table seeds): PETS `small` on InvertedPendulum-v5 with the committed
task spec (planning reward + LQR terminal value), 1000 training steps, then one evaluation episode
with the final model. Usage: python dev_ip_pets.py SEED OUT.json [key=value ...] (config overrides)"""
import json
import sys
import time

import numpy as np

from agentlab.agents.pets import SMALL, PETSConfig, PETSRunner
from agentlab.config import config_from_dict
from agentlab.models.reweight import rollout


def train_and_evaluate(seed: int, extra: dict, steps: int = 1000) -> dict:
    """``steps`` training env steps of PETS `small` (+ ``extra`` overrides), then one evaluation episode."""
    cfg = config_from_dict(PETSConfig, {**SMALL, **extra})
    r = PETSRunner(cfg, "InvertedPendulum-v5", seed)
    t0 = time.time()
    eps = []
    while r.steps < steps:
        n0 = len(r.buf["obs"])
        info = r.run_episode(steps - r.steps)
        x = r.buf["obs"][n0:, 0]
        eps.append({"steps": r.steps, "return": info["train/episode_return"], "max_abs_x": float(np.abs(x).max()),
                    "last_angle": float(r.buf["next_obs"][n0:, 1][-1]),
                    "plan_ms": info.get("time/plan_ms_per_step"), "lqr_ok": info.get("train/model_lqr_ok")})
        print(eps[-1], round(time.time() - t0), flush=True)
    if r.since_train:
        r.retrain()
    ret, traj, ms = rollout(r.agent, "InvertedPendulum-v5", 1_000_003 + 1000 * seed, 7)
    x = traj["observations"][:, 0]
    print("eval", ret, round(ms), "x range", float(x.min()), float(x.max()), "mean|x|", float(np.abs(x).mean()),
          round(time.time() - t0), flush=True)
    return {"seed": seed, "overrides": extra, "episodes": eps, "eval_return": ret, "eval_plan_ms": ms,
            "eval_x_min": float(x.min()), "eval_x_max": float(x.max()), "wall_s": time.time() - t0}


if __name__ == "__main__":
    seed, out = int(sys.argv[1]), sys.argv[2]
    extra = {}
    for a in sys.argv[3:]:
        k, v = a.split("=")
        extra[k] = v if k in ("terminal_value", "propagation") else (int(v) if v.isdigit() else float(v))
    with open(out, "w") as f:
        json.dump(train_and_evaluate(seed, extra), f, indent=1)
