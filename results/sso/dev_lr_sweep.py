"""Development-seed choice of the SGD / Adam baseline learning rates of the ``sso`` table.

Seed 99 (never an evaluation seed), Hopper-v5, DAgger (beta = 0), B = 500, 20 outer steps, MLP 2x256;
criterion: mean online loss (squared error on each fresh batch before its update). Writes
results/sso/dev_lr_sweep.json. Run from the repository root: python results/sso/dev_lr_sweep.py
"""

import csv
import json
import time

import numpy as np
import torch

from agentlab.experts import load_expert
from agentlab.training import train

GRID = [("sgd", 0.01), ("sgd", 0.03), ("sgd", 0.1), ("sgd", 0.3), ("adam", 1e-3), ("adam", 3e-3), ("adam", 1e-2)]


def main() -> None:
    torch.set_num_threads(1)
    expert = load_expert("Hopper-v5")
    res = {}
    for opt, lr in GRID:
        out = f"/tmp/sso_dev_lr/{opt}_{lr}"
        t = time.time()
        train("dagger", out, steps=10000, seed=99, env_id="Hopper-v5", force=True, eval_episodes=3, device="cpu",
              overrides=[f"optimizer={opt}", f"lr={lr}", "batch_states=500", "hidden=[256,256]"],
              extra={"expert": expert})
        with open(out + "/metrics.csv") as f:
            rows = list(csv.DictReader(f))
        res[f"{opt} lr={lr}"] = {"mean_online_loss": float(np.mean([float(r["train/loss"]) for r in rows])),
                                 "final_eval_norm_return": float(rows[-1]["eval/expert_normalized_return"])}
        print(opt, lr, res[f"{opt} lr={lr}"], round(time.time() - t), flush=True)
    with open("results/sso/dev_lr_sweep.json", "w") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
