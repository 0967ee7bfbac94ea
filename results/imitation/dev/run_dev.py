"""Development run of the imitation table's four columns on seed 99 (never a table seed).

    .venv/bin/python results/imitation/dev/run_dev.py STEPS [SEED [TASK]]
    # writes results/imitation/dev/seedSEED_STEPS.json (with TASK: ..._TASK.json, 1 demonstration only)

Same configuration as ``agentlab reproduce imitation --budget small`` except the step count, so it
measures the wall clock of one run of each column and checks that every column trains. Its numbers
choose nothing in the table (see ../README.md, "Protocol").
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from agentlab.reproduce import RunSpec
from agentlab.reproduce.tables import imitation as T

steps = int(sys.argv[1])
seed = int(sys.argv[2]) if len(sys.argv) > 2 else 99
task = sys.argv[3] if len(sys.argv) > 3 else None
out = {}
for spec in T.specs("small", 1):
    if task and (spec.task != task or spec.params["num_demos"] != 1):
        continue
    p = dict(spec.params)
    if spec.algo != "bc":
        p.update(steps=steps, eval_every=steps // 2)
    dev = RunSpec("imitation", spec.algo, spec.task, seed, "dev", p)
    t = time.perf_counter()
    res = T.run(dev)
    res["wall_s"] = time.perf_counter() - t
    out[spec.algo] = res
    print(spec.algo, f"{res['wall_s']:.0f}s", "score", round(res["score"], 1), "latest",
          round(res.get("last_learner_score", float("nan")), 1), flush=True)
path = Path(__file__).parent / (f"seed{seed}_{steps}.json" if not task else
                                f"seed{seed}_{steps}_{task.replace('/', '_')}.json")
path.write_text(json.dumps(out, indent=1))
print("wrote", path)
