"""Dev run (seed 100, not a table seed): InvertedPendulum with a tie-breaker that also centres the cart,
1000 training steps, then one evaluation episode with the final model."""
import dataclasses
import sys
import time
import json
import agentlab.models.tasks as T
from agentlab.agents.pets import SMALL, PETSConfig, PETSRunner
from agentlab.config import config_from_dict
from agentlab.models.reweight import rollout

def plan_reward(obs, act, nxt):
    alive = T.inverted_pendulum_reward(obs, act, nxt)
    margin = 0.5 * (1 - (nxt[..., 1] / 0.2).pow(2)).clamp_min(0) + 0.5 * (1 - nxt[..., 0].pow(2)).clamp_min(0)
    return alive * (1 + T.TIE_BREAK * margin)

T.TASKS["InvertedPendulum-v5"] = dataclasses.replace(T.TASKS["InvertedPendulum-v5"], planning_reward=plan_reward)
seed = int(sys.argv[1])
cfg = config_from_dict(PETSConfig, dict(SMALL))
r = PETSRunner(cfg, "InvertedPendulum-v5", seed)
t0 = time.time()
while r.steps < 1000:
    info = r.run_episode(1000 - r.steps)
    print(r.steps, info["train/episode_return"], round(time.time() - t0), flush=True)
if r.since_train:
    r.retrain()
ret, traj, ms = rollout(r.agent, "InvertedPendulum-v5", 1_000_003 + 1000 * seed, 7)
print("eval", ret, round(ms), "final x range", float(traj["observations"][:, 0].min()), float(traj["observations"][:, 0].max()), flush=True)
json.dump({"curve": r.returns, "eval_return": ret, "plan_ms": ms}, open(sys.argv[2], "w"))
