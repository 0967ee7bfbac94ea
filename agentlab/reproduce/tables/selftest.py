"""``selftest``: a seconds-long table that exercises the runner, the backends and the writers.

Each run trains behaviour cloning for a few steps on a synthetic linear-Gaussian dataset and
reports the held-out mean squared error. Runs with ``params["fail"]`` raise, to test that failed
runs are reported without losing the finished ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agentlab.reproduce import RunSpec, TableSpec

STEPS = {"smoke": 30, "small": 300, "full": 3000}


def specs(budget: str, seeds: int) -> list[RunSpec]:
    out = []
    for task in ("linear-2d", "linear-8d"):
        for algo in ("bc-small", "bc-large"):
            for seed in range(seeds):
                out.append(RunSpec("selftest", algo, task, seed, budget, {"steps": STEPS[budget]}))
    return out


def run(spec: RunSpec) -> dict[str, Any]:
    import torch

    from agentlab.agents.bc import BCAgent, BCConfig
    from agentlab.agents.base import spaces_of
    from agentlab.runs import seed_everything

    if spec.params.get("fail"):
        raise RuntimeError(f"selftest run {spec.run_id} asked to fail")
    seed_everything(spec.seed)
    dim = int(spec.task.split("-")[1].rstrip("d"))
    rng = np.random.default_rng(spec.seed)
    w = rng.normal(size=(dim, 2)) / np.sqrt(dim)
    x = rng.normal(size=(512, dim)).astype(np.float32)
    y = np.tanh(x @ w).astype(np.float32)
    hidden = [16] if spec.algo == "bc-small" else [64, 64]
    agent = BCAgent(BCConfig(hidden=hidden, lr=1e-2), spaces_of(dim, 2))
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    curve = []
    for step in range(1, spec.params["steps"] + 1):
        idx = torch.randint(0, 384, (64,))
        agent.update({"observations": xt[idx], "actions": yt[idx]})
        if step % max(1, spec.params["steps"] // 5) == 0:
            with torch.no_grad():
                mse = float((agent.act(xt[384:]) - yt[384:]).pow(2).mean())
            curve.append([step, -mse])
    return {"score": curve[-1][1], "curve": curve}


def report(records: list[dict[str, Any]], out_dir, meta: dict[str, Any]) -> list[Any]:
    from agentlab.reproduce.report import curve_plot, write_score_table

    paths = write_score_table(records, out_dir, meta, name="selftest", caption="Runner self-test: negative "
                              "held-out MSE of BC on synthetic data (higher is better).", ylabel="-MSE", digits=4)
    paths.append(curve_plot(records, out_dir / "selftest_curves.png", y_label="-MSE"))
    return paths


TABLE = TableSpec("selftest", "runner self-test (seconds)", specs, "agentlab.reproduce.tables.selftest:run", report)
