"""Dev run (seed 100, never a table seed): InvertedPendulum-v5 with a dense planning shaping
``exp(-q)``, ``q = x^2 + (angle/0.2)^2 + 0.1 x'^2 + 0.01 angle'^2``, as the lexicographic tie-breaker
(alive * (1 + 0.01 exp(-q))); 1000 training steps, then one evaluation episode with the final model.
Usage: python dev_ip_dense.py SEED OUT.json [ITERATIONS]"""
import dataclasses
import json
import sys

import torch
from dev_ip_pets import train_and_evaluate

import agentlab.models.tasks as T


def plan_reward(obs, act, nxt):
    alive = T.inverted_pendulum_reward(obs, act, nxt)
    q = nxt[..., 0].pow(2) + (nxt[..., 1] / 0.2).pow(2) + 0.1 * nxt[..., 2].pow(2) + 0.01 * nxt[..., 3].pow(2)
    return alive * (1 + T.TIE_BREAK * torch.exp(-q))


if __name__ == "__main__":
    T.TASKS["InvertedPendulum-v5"] = dataclasses.replace(T.TASKS["InvertedPendulum-v5"], planning_reward=plan_reward)
    extra = {"iterations": int(sys.argv[3])} if len(sys.argv) > 3 else {}
    with open(sys.argv[2], "w") as f:
        json.dump(train_and_evaluate(int(sys.argv[1]), extra), f, indent=1)
