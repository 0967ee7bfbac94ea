"""The main job (``make demo``): the whole toolkit end to end, through its CLI.

1. regenerate a small OGBench dataset with OGBench's own oracle (``agentlab data make
   ogbench/pointmaze-medium-navigate-v0 --episodes 20``: 20k transitions, seconds);
2. train FiDec and its BC-flow baseline briefly on OGBench's single-task relabelling of it
   (``agentlab train --dataset ogbench:pointmaze-medium-navigate-singletask-task1-v0``) and evaluate
   both on OGBench's task env (``agentlab eval``: success rate);
3. generate gridworld agents with known objectives, fit the UCIP monitor on one set of agents and
   score *held-out* agents (``agentlab monitor agents|fit|score``), and watch a held-out Type A
   agent through the ``UCIPMonitor`` gym wrapper;
4. print a summary table whose offline-RL line says what the comparison shows *at this budget*.

Everything goes to ``runs/demo`` (override with ``AGENTLAB_DEMO_DIR``). ``AGENTLAB_DEMO_STEPS``
sets the gradient steps per agent (default 2000, 128x128 networks, so the whole job takes minutes on
a laptop CPU). That is 1/500 of the references' 1M-step budget: the demo shows the pipeline, and its
FiDec-vs-BC-flow line reports the measured success rates with a two-proportion test instead of
claiming a winner (``results/offline/`` has the table at the largest budget this project could run).
"""

from __future__ import annotations

import io
import json
import os
import shlex
import time
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console()


def agentlab(*args: Any, capture: bool = False) -> str:
    """Run one ``agentlab`` command in this process, echoing it like a shell session."""
    from agentlab.cli import cli

    argv = [str(a) for a in args]
    console.print(f"[bold cyan]$ agentlab {' '.join(shlex.quote(a) for a in argv)}[/]")
    buf = io.StringIO()
    try:
        if capture:
            with redirect_stdout(buf):
                cli.main(argv, prog_name="agentlab", standalone_mode=False)
        else:
            cli.main(argv, prog_name="agentlab", standalone_mode=False)
    except SystemExit as e:  # a UserError exits with 2 after printing its one-line message
        if e.code:
            raise SystemExit(f"demo step failed: agentlab {' '.join(argv)}") from None
    return buf.getvalue()


def verdict(p_fidec: float, p_bc: float, n: int) -> str:
    """What the two success rates show: a two-proportion z-test at 5% (pooled), never a bare winner."""
    pooled = (p_fidec + p_bc) / 2
    se = (2 * pooled * (1 - pooled) / n) ** 0.5
    diff = p_fidec - p_bc
    if se == 0 or abs(diff) < 1.96 * se:
        return (f"no significant difference at this budget ({100 * p_fidec:.0f}% vs {100 * p_bc:.0f}%, {n} "
                "episodes each)")
    side = "ahead of" if diff > 0 else "behind"
    return f"FiDec {side} BC-flow by {100 * abs(diff):.0f} points (significant at 5%, {n} episodes each)"


def main() -> None:
    out = Path(os.environ.get("AGENTLAB_DEMO_DIR", "runs/demo"))
    steps = int(os.environ.get("AGENTLAB_DEMO_STEPS", "2000"))
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rows: list[tuple[str, str, str]] = []

    # 1. data: OGBench's pointmaze-medium-navigate protocol, 20 of its 1000 episodes
    # (a dataset directory of the demo's own, so a full-size file elsewhere is neither used nor overwritten)
    os.environ["AGENTLAB_DATA"] = str(out / "data")
    task = "pointmaze-medium-navigate-singletask-task1-v0"
    agentlab("data", "make", "ogbench/pointmaze-medium-navigate-v0", "--episodes", 20, "--seed", 0, "--force")
    spec = f"ogbench:{task}"
    info = json.loads(agentlab("data", "info", spec, "--json", capture=True))
    gen = info["metadata"].get("generated", {})
    rows.append(("dataset", "ogbench pointmaze-medium-navigate (20 episodes)",
                 f"{info['transitions']} transitions; oracle reached {gen.get('oracle_successes', '?')} goals"))

    # 2. offline RL: FiDec vs its BC-flow baseline, success rate on OGBench's task 1
    env_id = info["metadata"]["env_id"]
    episodes = 20
    success = {}
    for algo in ("fidec", "flow_bc"):
        run = out / algo
        agentlab("train", algo, "--dataset", spec, "--env", env_id, "--preset", "small",
                 "--set", "hidden=[128,128]", *(["--set", "critic_hidden=[128,128]"] if algo == "fidec" else []),
                 "--steps", steps, "--eval-episodes", 5, "--seed", 0, "--out", run, "--force")
        res = json.loads(agentlab("eval", run, "--episodes", episodes, "--json", capture=True))
        success[algo] = res["success_rate"]
        rows.append((f"{algo} ({steps} steps, 128x128)", f"{task}, {episodes} episodes",
                     f"success {100 * res['success_rate']:.0f}%, mean episode length {res['length_mean']:.0f}"))
    rows.append(("FiDec vs BC-flow", f"at {steps} steps (references: 1M)", verdict(success["fidec"],
                                                                                  success["flow_bc"], episodes)))

    # 3. UCIP monitor: fit on some agents, score held-out agents (other seeds and layout)
    fit_file, test_file, det = out / "grid_fit.hdf5", out / "grid_heldout.hdf5", out / "detector.pt"
    agentlab("monitor", "agents", "--family", "typeA,typeB", "--agents", 4, "--episodes", 8, "--seed", 0,
             "--layout-seed", 0, "--out", fit_file)
    agentlab("monitor", "fit", "--trajectories", fit_file, "--out", det, "--seed", 0)
    agentlab("monitor", "agents", "--family", "typeA,typeB", "--agents", 2, "--episodes", 8, "--seed", 1000,
             "--layout-seed", 0, "--out", test_file)
    recs = json.loads(agentlab("monitor", "score", "--detector", det, "--trajectories", test_file, "--json",
                               capture=True))
    acc = sum(int(r["flag"]) == int(r["label"]) for r in recs) / len(recs)
    mean_a = sum(r["score"] for r in recs if r["label"] == 1) / max(1, sum(r["label"] == 1 for r in recs))
    mean_b = sum(r["score"] for r in recs if r["label"] == 0) / max(1, sum(r["label"] == 0 for r in recs))
    rows.append(("UCIP monitor (QBM)", f"{len(recs)} held-out episodes (Type A vs B)",
                 f"accuracy {acc:.2f}, mean score A {mean_a:.3f} vs B {mean_b:.3f}"))

    # the same detector as a gym wrapper around a held-out Type A agent's environment
    from agentlab.envs import make_env
    from agentlab.monitors import UCIPMonitor
    from agentlab.monitors.agents import make_agent

    import numpy as np

    env = UCIPMonitor(make_env("agentlab/ContinuationGrid-v0"), str(det))
    grid = env.unwrapped
    agent = make_agent(grid, "typeA", seed=2024)
    rng = np.random.default_rng(7)
    obs, info = env.reset(seed=7)
    done, t = False, 0
    while not done:
        cell = grid.pos[0] * grid.size + grid.pos[1]
        obs, r, term, trunc, info = env.step(agent.act(cell, t, rng))
        done, t = term or trunc, t + 1
    u = info["ucip"]
    rows.append(("UCIPMonitor wrapper", "one held-out Type A episode", f"score {u['score']:.3f}, flag {int(u['flag'])}"))

    table = Table("what", "on", "result", title=f"agentlab demo ({time.perf_counter() - t0:.0f} s, outputs in {out})")
    for r in rows:
        table.add_row(*r)
    console.print(table)


if __name__ == "__main__":
    main()
