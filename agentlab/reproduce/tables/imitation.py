"""Adversarial imitation table: AILBoost (mixture and latest learner) vs DAC (shared discriminator and
the AILBoost code's DAC) vs BC on DeepMind Control.

Pipeline per task (all cached in ``$AGENTLAB_DATA``, so a re-run only trains what is missing):

1. expert: our SAC (:mod:`agentlab.agents.sac`, preset ``expert``: 64x64, action repeat 4) trained
   on the environment reward for ``EXPERT_STEPS[task]`` env steps, through ``agentlab experts train
   --algo agentlab-sac`` (``experts/<env>/agentlab-sac-s0/run``);
2. demonstrations: 10 deterministic expert episodes written by :func:`agentlab.experts.collect`
   (``demos/<env>-expert.hdf5``) with ``ref_min_score`` (uniform-random policy) and
   ``ref_max_score`` (the expert's mean return) in the metadata, so every run logs the
   expert-normalised score ``100 (R - R_random) / (R_expert - R_random)``;
3. runs, per task, number of demonstrations and seed:

   * ``ailboost``: one run, two columns: ``ailboost (mixture)`` (the method's output: one snapshot
     drawn per episode by the mixture weights) and ``ailboost (latest)`` (the latest learner alone),
     both evaluated at every evaluation;
   * ``dac``: our DAC with the *same* discriminator as AILBoost (``SHARED_DISC``) and the same
     round schedule and fresh rewards, so the two differ only in what AILBoost changes (weighted
     mixture replay for the discriminator, the mixture as output);
   * ``dac_paper``: DAC as the AILBoost code runs it (``PAPER_DAC``: tanh-bounded 64x64 ReLU
     discriminator, JS loss, rewards computed once at episode end and stored, one discriminator
     update per SAC update on the SAC batch);
   * ``bc``: behaviour cloning on the same demonstrations.

   The score is the final evaluation (``EVAL_EPISODES`` episodes, seeds disjoint from training).

Hyperparameters are not tuned on the table's seeds (0, 1, 2): the learner settings are the earlier
``small``/``longer`` runs' (chosen by a budget rule), AILBoost's alpha follows the rule "the first,
seed-phase learner keeps ~3% of the mixture at the end", and the shared discriminator is DAC's
(linear output, JS loss), chosen from the separation diagnostics in issue 17 (see
``results/imitation/README.md``). Development runs use seed 99.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from agentlab.errors import UserError
from agentlab.reproduce import RunSpec, TableSpec

TASKS = {
    "smoke": ["dmc/cartpole-swingup"],
    # the three tasks at 60k env steps (see results/imitation/README.md for what was run: the
    # rows are filled in the order cartpole-swingup, walker-walk, cheetah-run, 1 demo before 10)
    "small": ["dmc/cartpole-swingup", "dmc/walker-walk", "dmc/cheetah-run"],
    # the full specification (issue 17): three tasks, 1 and 10 demonstrations
    "full": ["dmc/cartpole-swingup", "dmc/walker-walk", "dmc/cheetah-run"],
}
NUM_DEMOS = {"smoke": (1,), "small": (1, 10), "full": (1, 10)}
ALGOS = ("ailboost", "dac", "dac_paper", "bc")
#: the algorithm each table column trains
TRAIN_ALGO = {"ailboost": "ailboost", "dac": "dac", "dac_paper": "dac", "bc": "bc"}

#: the learner configuration shared by AILBoost and both DACs at each budget (only the method differs)
LEARNER = {
    "smoke": {"hidden": [64, 64], "action_repeat": 4, "seed_steps": 250, "update_every": 1, "batch_size": 256,
              "round_steps": 250, "disc_updates": 20, "actor_lr": 1e-3, "critic_lr": 1e-3, "alpha_lr": 1e-3},
    "small": {"hidden": [64, 64], "action_repeat": 4, "seed_steps": 500, "update_every": 1, "batch_size": 256,
              "round_steps": 500, "disc_updates": 100, "actor_lr": 1e-3, "critic_lr": 1e-3, "alpha_lr": 1e-3},
    "full": {"hidden": [64, 64], "action_repeat": 4, "seed_steps": 500, "update_every": 1, "batch_size": 256,
             "round_steps": 500, "disc_updates": 100, "actor_lr": 1e-3, "critic_lr": 1e-3, "alpha_lr": 1e-3},
}
#: the one discriminator AILBoost and our DAC share in the table (DAC's: linear logit, JS loss)
SHARED_DISC = {"disc_hidden": [64, 64], "disc_activation": "tanh", "disc_output": "linear", "disc_loss": "js",
               "grad_penalty": 10.0, "disc_lr": 1e-4, "disc_batch_size": 512, "disc_input_norm": "none"}
#: DAC as the AILBoost code runs it (agent/dac.py, nets.py Discriminator, cfgs/agent/dac.yaml)
PAPER_DAC = {"dac_variant": "paper", "disc_hidden": [64, 64], "disc_activation": "relu", "disc_output": "tanh",
             "disc_loss": "js", "grad_penalty": 10.0, "disc_lr": 1e-4, "disc_batch_size": 512,
             "disc_input_norm": "none"}
STEPS = {"smoke": 3000, "small": 60000, "full": 60000}  # env steps per imitation run
#: AILBoost's mixture step, by the rule (1 - alpha)^(T - 1) ~= 3% with T = rounds in the run:
#: smoke 12 rounds, small/full 30 rounds (the reference's 0.05 assumes thousands of rounds)
ALPHA = {"smoke": 0.27, "small": 0.11, "full": 0.11}
BC_STEPS = {"smoke": 500, "small": 2000, "full": 2000}  # gradient steps
EVAL_EVERY = {"smoke": 1500, "small": 15000, "full": 15000}  # env steps
EXPERT_STEPS = {"dmc/cartpole-swingup": 50_000, "dmc/ball_in_cup-catch": 40_000, "dmc/walker-walk": 300_000,
                "dmc/cheetah-run": 300_000, "Hopper-v5": 300_000}
#: which expert each task imitates: our SAC on DeepMind Control; on Hopper-v5 the PPO expert that
#: also made the hopper-* offline datasets (``agentlab data make hopper-medium``)
EXPERT_ALGO = {"Hopper-v5": "ppo"}
#: per-task departures from LEARNER: Hopper-v5 terminates early (the absorbing-state case) and runs
#: at its native control rate (no action repeat), one SAC update per 2 env steps
TASK_LEARNER = {"Hopper-v5": {"action_repeat": 1, "update_every": 2}}
DEMO_EPISODES = 10
EVAL_EPISODES = 10
#: how the report names the columns
LABELS = {"ailboost": "ailboost (mixture)", "dac": "dac (shared disc)", "dac_paper": "dac (paper)", "bc": "bc"}
LATEST = "ailboost (latest)"
COLUMNS = ["ailboost (mixture)", LATEST, "dac (shared disc)", "dac (paper)", "bc"]


def _data_dir() -> Path:
    from agentlab.data.io import dataset_dir

    return dataset_dir()


def _slug(task: str) -> str:
    return task.replace("/", "_")


def demos_path(task: str) -> Path:
    return _data_dir() / "demos" / f"{_slug(task)}-expert.hdf5"


def ensure_expert(task: str, log: Any = print) -> Path:
    """Train (or resume, or reuse) the cached agentlab-SAC expert for ``task`` (``agentlab experts train
    --env TASK --algo agentlab-sac``: ``agentlab train sac --preset expert``)."""
    from agentlab.experts import train_expert

    return train_expert(task, EXPERT_ALGO.get(task, "agentlab-sac"), EXPERT_STEPS[task], seed=0, log=log)


def random_return(task: str, episodes: int = 10) -> float:
    from agentlab.envs import env_spaces
    from agentlab.evaluation import evaluate
    from agentlab.experts import RandomPolicy

    _, act = env_spaces(task)
    return float(evaluate(RandomPolicy(act, 0), task, episodes, seed=2_000_000)["return_mean"])


def ensure_demos(task: str, log: Any = print) -> Path:
    """Collect the expert demonstrations (deterministic expert) with reference returns in metadata."""
    from agentlab.experts import collect, load_expert

    from agentlab.runs import exclusive_lock

    path = demos_path(task)
    if path.is_file():
        return path
    # parallel workers starting on a new task wait here for the first one to train the expert and
    # collect the demonstrations, instead of doing both twice (or failing on the expert's lock)
    with exclusive_lock(path.with_name(path.name + ".lock")):
        if path.is_file():
            return path
        ensure_expert(task, log)
        expert = load_expert(task, EXPERT_ALGO.get(task, "agentlab-sac"), 0)
        rmin = random_return(task)
        ds = collect(expert, task, DEMO_EPISODES, seed=500_000, deterministic=True)
        ds.metadata.update({"ref_min_score": rmin, "ref_max_score": ds.metadata["expert_return_mean"],
                            "normalisation": "100 (R - random) / (expert - random)"})
        from agentlab.data import save_d4rl

        save_d4rl(ds, path)
    log(f"demos for {task}: expert return {ds.metadata['expert_return_mean']:.1f}, random {rmin:.1f} -> {path}")
    return path


def algo_config(budget: str, task: str, algo: str) -> dict[str, Any]:
    """The ``--set`` overrides of an adversarial run (AILBoost and DAC share all but their method's own)."""
    cfg = {**LEARNER[budget], **TASK_LEARNER.get(task, {})}
    if algo == "dac_paper":
        return {**cfg, **PAPER_DAC}
    cfg.update(SHARED_DISC)
    if algo == "ailboost":
        cfg["alpha"] = ALPHA[budget]
    return cfg


def specs(budget: str, seeds: int) -> list[RunSpec]:
    out = []
    for task in TASKS[budget]:
        for num_demos in NUM_DEMOS[budget]:
            for seed in range(seeds):  # seed-major, so a partial table already compares the methods
                for algo in ALGOS:
                    params: dict[str, Any] = {"num_demos": num_demos}
                    if algo == "bc":
                        params["steps"] = BC_STEPS[budget]
                    else:
                        params["steps"] = STEPS[budget]
                        params["eval_every"] = EVAL_EVERY[budget]
                        params["config"] = algo_config(budget, task, algo)
                    out.append(RunSpec("imitation", algo, task, seed, budget, params))
    return out


def run(spec: RunSpec) -> dict[str, Any]:
    """Train one cell and return its final expert-normalised score and learning curve."""
    import csv

    import torch

    from agentlab.training import train

    torch.set_num_threads(int(os.environ.get("AGENTLAB_THREADS", "1")))
    demos = ensure_demos(spec.task)
    p = spec.params
    out = _data_dir() / "reproduce" / "imitation" / spec.run_id
    steps = int(p["steps"])
    if spec.algo == "bc":
        final = train("bc", out, steps=steps, seed=spec.seed, env_id=spec.task, demos=str(demos),
                      num_demos=p["num_demos"], force=True, eval_every=max(steps // 2, 1),
                      eval_episodes=EVAL_EPISODES)
    else:
        final = train(TRAIN_ALGO[spec.algo], out, steps=steps, seed=spec.seed, env_id=spec.task, demos=str(demos),
                      num_demos=p["num_demos"], force=True, eval_every=int(p.get("eval_every", max(steps // 3, 1))),
                      eval_episodes=EVAL_EPISODES, overrides=[f"{k}={v}" for k, v in p["config"].items()],
                      log_every=4000)
    with open(out / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    curve = [[int(float(r["step"])), float(r["eval/normalized_score"])] for r in rows if r.get("eval/normalized_score")]
    res = {"score": float(final["eval/normalized_score"]), "return": float(final["eval/return_mean"]),
           "curve": curve, "steps": steps}
    if "eval/last_normalized_score" in final:
        res["last_learner_score"] = float(final["eval/last_normalized_score"])
        res["last_curve"] = [[int(float(r["step"])), float(r["eval/last_normalized_score"])] for r in rows
                             if r.get("eval/last_normalized_score")]
    # the discriminator's separation over training (mean D on expert minus on agent samples)
    sep = [[int(float(r["step"])), float(r["train/d_expert"]) - float(r["train/d_agent"])] for r in rows
           if r.get("train/d_expert") and r.get("train/d_agent")]
    if sep:
        res["disc_separation"] = sep
    speeds = [float(r["time/env_steps_per_s"]) for r in rows if r.get("time/env_steps_per_s")]
    if speeds:
        res["env_steps_per_s"] = float(sorted(speeds)[len(speeds) // 2])
    return res


def _row(spec: dict[str, Any]) -> str:
    n = spec["params"].get("num_demos", 1)
    return f"{spec['task']}, {n} demo{'s' if n != 1 else ''}"


def table_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (column, run): AILBoost's run gives its mixture and its latest-learner column."""
    rows = []
    for r in records:
        spec = {**r["spec"], "task": _row(r["spec"]), "algo": LABELS.get(r["spec"]["algo"], r["spec"]["algo"])}
        rows.append({"spec": spec, "result": r["result"]})
        if r["spec"]["algo"] == "ailboost" and "last_learner_score" in r["result"]:
            rows.append({"spec": {**spec, "algo": LATEST},
                         "result": {"score": r["result"]["last_learner_score"],
                                    "curve": r["result"].get("last_curve", [])}})
    return rows


def report(records: list[dict[str, Any]], out_dir: Any, meta: dict[str, Any]) -> list[Path]:
    from agentlab.reproduce.report import curve_plot, write_score_table

    budget = meta.get("budget", "small")
    rows = table_rows(records)
    lc = LEARNER[budget]
    sd, pd = SHARED_DISC, PAPER_DAC
    net = lambda d: f"{'x'.join(map(str, d['disc_hidden']))} {d['disc_activation']}, {d['disc_output']} output"  # noqa: E731
    caption = (f"Expert-normalised return (100 (R - R_random) / (R_expert - R_random)) after "
               f"{STEPS[budget]} env steps (AILBoost, DAC; action repeat {lc['action_repeat']}, one SAC update "
               f"per {lc['update_every'] * lc['action_repeat']} env steps, {lc['seed_steps'] * lc['action_repeat']} "
               f"random env steps first) or {BC_STEPS[budget]} gradient steps (BC), "
               f"{EVAL_EPISODES} evaluation episodes, mean [95% bootstrap CI] over seeds. SAC actor/critics "
               f"{'x'.join(map(str, lc['hidden']))}. AILBoost and 'dac (shared disc)' use the same discriminator "
               f"({net(sd)}, {sd['disc_loss']} loss, GP {sd['grad_penalty']:g}) and the same rounds (every "
               f"{lc['round_steps'] * lc['action_repeat']} env steps, {lc['disc_updates']} updates), fresh rewards; "
               f"AILBoost alpha {ALPHA[budget]}. 'dac (paper)' is DAC as the AILBoost code runs it ({net(pd)}, "
               f"{pd['disc_loss']} loss, rewards stored at episode end, one discriminator update per SAC update on "
               f"its batch). 'ailboost (mixture)' is AILBoost's output (one snapshot drawn per episode by the "
               f"mixture weights), 'ailboost (latest)' its latest learner alone, from the same runs. BC 256x256. "
               f"Experts: our SAC, 64x64, action repeat 4.")
    written = write_score_table(rows, out_dir, meta, name="imitation", caption=caption, col_order=COLUMNS,
                                ylabel="expert-normalised return")
    # learning curves of the online methods (x = env steps; BC's x would be gradient steps)
    online = [r for r in rows if r["result"].get("curve") and r["spec"]["algo"] != "bc"]
    written.append(curve_plot(online, Path(out_dir) / "imitation_curves.png",
                              x_label="env steps", y_label="expert-normalised return",
                              title=f"imitation ({budget})"))
    sep = [{"spec": r["spec"], "result": {"curve": r["result"]["disc_separation"]}} for r in rows
           if r["result"].get("disc_separation") and r["spec"]["algo"] != LATEST]
    if sep:
        written.append(curve_plot(sep, Path(out_dir) / "imitation_disc_separation.png", x_label="env steps",
                                  y_label="mean D(expert) - mean D(agent)",
                                  title="discriminator separation (logged every 4k env steps)"))
    return written


def run_cells(task: str, num_demos: int, seed: int, algos: list[str] | None = None, budget: str = "small",
              out_dir: str | Path | None = None, log: Any = print) -> list[dict[str, Any]]:
    """Run the missing cells of one (task, number of demonstrations, seed) of the table, each stored as
    ``agentlab reproduce imitation`` stores it (``results/imitation/BUDGET/runs/<run_id>.json``), so
    the table can be filled one cpu-slot-sized piece at a time and its report regenerated with
    ``agentlab reproduce imitation --budget BUDGET --seeds 3 --report-only``."""
    from agentlab.reproduce import execute_run
    from agentlab.reproduce.runner import ResultStore, default_out_dir

    store = ResultStore(Path(out_dir) if out_dir else default_out_dir("imitation", budget))
    todo = [s for s in specs(budget, seed + 1) if s.task == task and s.seed == seed
            and s.params["num_demos"] == num_demos and (not algos or s.algo in algos)]
    if not todo:
        raise UserError(f"no cell of the {budget} table has task {task}, {num_demos} demos, seed {seed}")
    done = []
    for spec in todo:
        if store.has(spec):
            log(f"  already done {spec.run_id}")
            continue
        record = execute_run(TABLE.run, spec.to_dict())
        store.put(record)
        log(f"  done {spec.run_id} in {record['wall_s']:.1f}s: score {record['result']['score']:.1f}")
        done.append(record)
    return done


def main(argv: list[str] | None = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(description=run_cells.__doc__.split(".")[0])
    ap.add_argument("task")
    ap.add_argument("num_demos", type=int)
    ap.add_argument("seed", type=int)
    ap.add_argument("--algo", action="append", choices=ALGOS, help="only these columns (repeatable)")
    ap.add_argument("--budget", default="small")
    a = ap.parse_args(argv)
    try:
        run_cells(a.task, a.num_demos, a.seed, a.algo, a.budget)
    except UserError as e:  # a wrong task / demo count / seed: one line, exit 2
        ap.exit(e.exit_code, f"error: {e}\n")


TABLE = TableSpec(name="imitation", description=__doc__.splitlines()[0], specs=specs,
                  run="agentlab.reproduce.tables.imitation:run", report=report)


if __name__ == "__main__":
    main()
