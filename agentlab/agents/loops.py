"""Training loops shared by algorithms of the same kind.

The offline loop: sample a batch -> ``agent.update(batch)`` -> log -> evaluate -> checkpoint.
It is resumable: the checkpoint holds networks, optimisers, the step and RNG states, and on resume
the metrics logged after the checkpoint are dropped and redone, so a resumed run ends with exactly
the metrics of an uninterrupted one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from agentlab.agents import TrainContext, get_algorithm
from agentlab.agents.base import Agent, spaces_from_env, spaces_of
from agentlab.errors import UserError


def load_offline_data(ctx: TrainContext):
    """The dataset for an offline run and the spaces of the agent (checked against the env)."""
    from agentlab.data import check_against_env, load

    if ctx.dataset is None:
        raise UserError(f"{ctx.algo} is an offline algorithm: pass --dataset")
    ds = load(ctx.dataset)
    if ctx.num_demos is not None:
        ds = ds.select_episodes(ctx.num_demos)
    env_id = ctx.env_id
    if env_id is not None:
        check_against_env(ds, env_id)
        spaces = spaces_from_env(env_id)
    else:
        spaces = spaces_of(ds.obs_dim, ds.act_dim, ds.metadata.get("act_low", -1.0), ds.metadata.get("act_high", 1.0))
    return ds, spaces


def evaluation_seed(seed: int) -> int:
    """Evaluation episodes never share seeds with training."""
    return 1_000_003 + 1_000 * seed


def evaluate_agent(ctx: TrainContext, agent: Agent, ref_scores: Any = None) -> dict[str, float]:
    from agentlab.evaluation import evaluate
    from agentlab.policy import Policy

    was_training = agent.training
    res = evaluate(Policy(agent, ctx.device), ctx.env_id, ctx.eval_episodes, evaluation_seed(ctx.seed), ref_scores)
    agent.train(was_training)
    return {f"eval/{k}": v for k, v in res.items() if k != "episodes"}


def restore(ctx: TrainContext, agent: Agent) -> int:
    """Load the last checkpoint into ``agent`` when resuming; return the step to continue from."""
    if not ctx.resume or not ctx.run.has_checkpoint():
        return 0
    state = ctx.run.load_checkpoint()
    agent.load_checkpoint_state(state)
    step = int(state["step"])
    ctx.run.truncate_metrics(step)
    return step


def save(ctx: TrainContext, agent: Agent, step: int, extra: dict[str, Any] | None = None) -> None:
    state = agent.checkpoint_state()
    state["step"] = step
    if extra:
        state.update(extra)
    ctx.run.save_checkpoint(state)


def train_offline(ctx: TrainContext, prepare: Callable[[Agent, Any], None] | None = None) -> dict[str, float]:
    """The offline RL loop used by bc, flow_bc, fql, fidec, deflow."""
    algo = get_algorithm(ctx.algo)
    ds, spaces = load_offline_data(ctx)
    ctx.run.write_config({**ctx.run.read_config(), "spaces": spaces})
    agent: Agent = algo.build_agent(ctx.config, spaces).to(ctx.device)
    agent.obs_norm.set(*ds.observation_stats())
    if hasattr(agent, "prepare"):
        agent.prepare(ds)
    start = restore(ctx, agent)
    batch_size = int(getattr(ctx.config, "batch_size", 256))
    ckpt_every = ctx.checkpoint_every or max(ctx.steps // 10, 1)
    final: dict[str, float] = {}
    t0 = time.perf_counter()
    with ctx.run.progress(ctx.steps, start, ctx.algo) as bar:
        for step in range(start + 1, ctx.steps + 1):
            batch = ds.sample(batch_size, ctx.device)
            info = agent.update(batch)
            agent.steps_done += 1
            do_eval = ctx.env_id is not None and ctx.eval_episodes > 0 and (step == ctx.steps or bool(ctx.eval_every and step % ctx.eval_every == 0))
            if do_eval or step % ctx.log_every == 0 or step == ctx.steps:
                row = {k: float(v) for k, v in info.items()}
                row["time/updates_per_s"] = (step - start) / max(time.perf_counter() - t0, 1e-9)
                if do_eval:
                    row.update(evaluate_agent(ctx, agent, ds))
                ctx.run.log(step, row)
                final = row
                bar.update(step)
            if step % ckpt_every == 0 or step == ctx.steps:
                save(ctx, agent, step)
    return final
