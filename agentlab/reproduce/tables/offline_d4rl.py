"""The secondary ``offline_d4rl`` table: FiDec vs DeFlow, FQL and BC-flow on our D4RL-style datasets.

(This was the ``offline`` table until the main offline table moved to OGBench,
:mod:`agentlab.reproduce.tables.offline`; its stored results are in ``results/offline_d4rl/``.)

Rows: ``pointmaze-{umaze,medium,large}`` (maze2d-style, sparse reward, goal in the observation)
and ``{hopper,halfcheetah,walker2d}-{medium,medium-replay,medium-expert}``, all made by
``agentlab data make NAME`` (a missing dataset is generated on first use). Cells: the final
normalised score (0-100) = mean of the last three evaluations, as in the papers.

Hyper-parameters on these new tasks are fixed by rules, never tuned on evaluation seeds:
FQL ``alpha = 10`` (its D4RL-antmaze value) and FiDec/DeFlow ``target_divergence = 0.001`` (the
reference's D4RL value) on every task, with the Q term normalised by ``sg(mean |Q|)`` for all three
because our datasets' reward scales differ from the reference benchmarks; ``q_agg = mean``.

Budgets: ``full`` is the reference protocol (reference networks, 1M gradient steps -- 500k for the
locomotion rows as for D4RL -- evaluation every 100k steps with 50 episodes). ``small`` is what the
shared 2-core machine affords (see :data:`BUDGETS`); ``smoke`` checks the plumbing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentlab.reproduce import RunSpec, TableSpec

MAZE_TASKS = ["pointmaze-umaze", "pointmaze-medium", "pointmaze-large"]
LOCO_TASKS = [f"{env}-{level}" for env in ("hopper", "halfcheetah", "walker2d")
              for level in ("medium", "medium-replay", "medium-expert")]
ALGOS = ["fidec", "deflow", "fql", "flow_bc"]

#: the task-independent rules above, as config overrides per algorithm
RULES: dict[str, list[str]] = {
    "fidec": ["target_divergence=0.001", "normalize_q_loss=true"],
    "deflow": ["target_divergence=0.001", "normalize_q_loss=true"],
    "fql": ["alpha=10", "normalize_q_loss=true"],
    "flow_bc": [],
}

#: per budget: tasks, gradient steps, evaluation schedule, config preset and size overrides
BUDGETS: dict[str, dict[str, Any]] = {
    "smoke": dict(tasks=["pointmaze-umaze"], steps=60, eval_every=20, eval_episodes=2, preset="smoke", overrides=[]),
    # 2-core machine shared by ~6 jobs (load 15-17 while this was run; FiDec at 2x128 ran at ~1.3
    # updates/s wall there): 2x64 networks (flow, delta / one-step policy, 2 critics), 1000 gradient
    # steps at batch 256, evaluations every 250 steps with 5 episodes each (score = mean of the
    # evaluations at 500, 750 and 1000 steps).
    "small": dict(tasks=MAZE_TASKS + LOCO_TASKS, steps=1000, eval_every=250, eval_episodes=5, preset="small",
                  overrides=["hidden=[64,64]", "critic_hidden=[64,64]"]),
    "full": dict(tasks=MAZE_TASKS + LOCO_TASKS, steps=1_000_000, eval_every=100_000, eval_episodes=50, preset=None,
                 overrides=[]),
}


def caption(budget: str) -> str:
    b = BUDGETS[budget]
    size = f"preset {b['preset'] or 'full (reference sizes: 4x512 networks)'}"
    if b["overrides"]:
        size += " with " + ", ".join(b["overrides"])
    return (f"Offline RL with flow policies: normalised score (0-100, mean of the last 3 evaluations) after "
            f"{b['steps']} gradient steps (batch 256; {size}; see `agentlab train fidec --help-config`), "
            f"evaluated every {b['eval_every']} steps on {b['eval_episodes']} episodes. Rules, not tuning: "
            "FQL alpha 10, FiDec/DeFlow target_divergence 0.001, Q term normalised by mean |Q| for all three.")


def specs(budget: str, seeds: int) -> list[RunSpec]:
    b = BUDGETS[budget]
    out = []
    # seed-major order: an interrupted table has every (task, algo) cell with the same seeds.
    # RunSpec's table field stays "offline" (this table's name when its results were stored) so the run
    # ids of results/offline_d4rl/small/runs/ stay valid.
    for seed in range(seeds):
        for task in b["tasks"]:
            steps = b["steps"]
            if budget == "full" and task in LOCO_TASKS:
                steps = 500_000  # the D4RL protocol of the references
            for algo in ALGOS:
                overrides = b["overrides"] if algo != "flow_bc" else [o for o in b["overrides"]
                                                                      if o.startswith("hidden")]
                out.append(RunSpec("offline", algo, task, seed, budget,
                                   {"steps": steps, "eval_every": b["eval_every"], "eval_episodes": b["eval_episodes"],
                                    "preset": b["preset"], "overrides": list(overrides) + RULES[algo]}))
    return out


def ensure_dataset(name: str) -> str:
    """The dataset's path; a missing pointmaze dataset is generated (seconds to minutes).

    Locomotion datasets need trained expert policies (hours of CPU): make them first with
    ``agentlab data make NAME``; a run whose dataset is missing fails with that advice.
    """
    from agentlab.data.io import resolve_path
    from agentlab.errors import UserError

    path = resolve_path(name)
    if path is None and name not in MAZE_TASKS:
        raise UserError(f"dataset {name!r} is not on disk: make it with `agentlab data make {name}`")
    if path is None:
        from agentlab.data.generators import make_dataset

        path = make_dataset(name)
    return str(path)


def run(spec: RunSpec) -> dict[str, Any]:
    """Train one cell into ``runs/offline_d4rl/<run_id>`` (resuming an interrupted one) and score it."""
    from agentlab.data import load
    from agentlab.reproduce.cells import offline_cell

    path = ensure_dataset(spec.task)
    return offline_cell(spec, path, load(path).metadata.get("env_id"), "eval/normalized_score")


def run_group(specs: list[RunSpec]) -> list[dict[str, Any]]:
    """Cells that differ only by seed, trained together (``--runs-per-process``); scored as :func:`run`."""
    from agentlab.data import load
    from agentlab.reproduce.cells import offline_cells

    path = ensure_dataset(specs[0].task)
    return offline_cells(specs, path, load(path).metadata.get("env_id"), "eval/normalized_score")


def report(records: list[dict[str, Any]], out_dir: Any, meta: dict[str, Any]) -> list[Path]:
    from agentlab.reproduce.report import curve_plot, write_score_table

    budget = meta.get("budget", "small")
    written = write_score_table(records, out_dir, meta, name="offline_d4rl", caption=caption(budget),
                                col_order=ALGOS, row_order=BUDGETS[budget]["tasks"])
    written.append(curve_plot(records, Path(out_dir) / "offline_d4rl_curves.png", x_label="gradient steps",
                              y_label="normalised score", title=f"offline_d4rl ({budget})"))
    return written


TABLE = TableSpec(name="offline_d4rl", description="FiDec vs DeFlow, FQL, BC-flow on D4RL-style pointmaze and "
                  "locomotion datasets (secondary; the main offline table is OGBench)",
                  specs=specs, run="agentlab.reproduce.tables.offline_d4rl:run", report=report,
                  run_group="agentlab.reproduce.tables.offline_d4rl:run_group")
