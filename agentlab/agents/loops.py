"""Training loops shared by algorithms of the same kind.

The offline trainer (one step: sample a batch -> ``agent.update(batch)``) for the shared loop
:func:`agentlab.loop.run_loop`, which owns logging, evaluation, checkpoints and resume: a resumed
run ends with exactly the metrics of an uninterrupted one. :func:`train_offline_together` trains
several seeds of one run as one vectorised update per step (:func:`agentlab.loop.run_lockstep`).
"""

from __future__ import annotations

from typing import Any

from agentlab.agents import TrainContext, get_algorithm
from agentlab.agents.base import Agent, spaces_from_env, spaces_of
from agentlab.errors import UserError
from agentlab.loop import Trainer, run_loop
from agentlab.seeding import evaluation_seed  # noqa: F401 - re-exported (older imports)


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


def evaluate_agent(ctx: TrainContext, agent: Agent, ref_scores: Any = None) -> dict[str, float]:
    from agentlab.evaluation import evaluate
    from agentlab.policy import Policy

    was_training = agent.training
    res = evaluate(Policy(agent, ctx.device), ctx.env_id, ctx.eval_episodes, evaluation_seed(ctx.seed), ref_scores)
    agent.train(was_training)
    return {f"eval/{k}": v for k, v in res.items() if k != "episodes"}


class OfflineTrainer(Trainer):
    """Offline RL as the shared loop runs it: one step = sample a batch, ``agent.update(batch)``."""

    rate_metric = "time/updates_per_s"

    def __init__(self, ctx: TrainContext, agent: Agent, dataset: Any):
        self.ctx, self.agent, self.dataset = ctx, agent, dataset
        self.batch_size = int(getattr(ctx.config, "batch_size", 256))

    def advance(self, step: int, total: int) -> tuple[int, Any]:
        info = self.agent.update(self.dataset.sample(self.batch_size, self.ctx.device))
        self.agent.steps_done += 1
        return step + 1, info

    def evaluate(self, final: bool) -> dict[str, float]:
        return evaluate_agent(self.ctx, self.agent, self.dataset) if self.ctx.env_id is not None else {}

    def state_dict(self) -> dict[str, Any]:
        return self.agent.checkpoint_state()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.agent.load_checkpoint_state(state)


def train_offline(ctx: TrainContext) -> dict[str, float]:
    """The offline RL loop used by bc, flow_bc, fql, fidec, deflow."""
    algo = get_algorithm(ctx.algo)
    ds, spaces = load_offline_data(ctx)
    ctx.run.write_config({**ctx.run.read_config(), "spaces": spaces})
    agent: Agent = algo.build_agent(ctx.config, spaces).to(ctx.device)
    agent.obs_norm.set(*ds.observation_stats())
    if hasattr(agent, "prepare"):
        agent.prepare(ds)
    return run_loop(ctx, OfflineTrainer(ctx, agent, ds))


class _StackMember(OfflineTrainer):
    """Run ``i`` of a :class:`~agentlab.agents.vectorised.SeedStack`: evaluated as an offline run, its
    state sliced out of the stack; the shared step is :func:`train_offline_together`'s."""

    def __init__(self, ctx: TrainContext, stack: Any, i: int, dataset: Any):
        super().__init__(ctx, stack.agents[i], dataset)
        self.stack, self.i = stack, i

    def advance(self, step: int, total: int) -> tuple[int, Any]:
        raise RuntimeError("a stack member is advanced by its stack")

    def state_dict(self) -> dict[str, Any]:
        return self.stack.checkpoint_state(self.i)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.stack.load_checkpoint_state(self.i, state)


def train_offline_together(ctxs: list[TrainContext]) -> list[dict[str, float]]:
    """The offline loop for runs that differ only by seed, as one vectorised update per step.

    Agent ``i`` is built right after seeding with run ``i``'s seed, so it starts from the weights its
    single run would; the batches of all runs are then drawn in run order from one generator, so a group
    is reproducible (and resumable) as a group, but its sample path differs from the runs trained alone.
    """
    import torch

    from agentlab.agents.vectorised import SeedStack
    from agentlab.loop import run_lockstep
    from agentlab.runs import seed_everything

    first = ctxs[0]
    keys = {(c.dataset, c.env_id, c.num_demos, repr(c.config), c.steps, str(c.device)) for c in ctxs}
    if len(keys) != 1:
        raise UserError("runs trained together must share the dataset, env, config, steps and device "
                        "(only the seed may differ)")
    algo = get_algorithm(first.algo)
    if not hasattr(algo.build_agent, "losses"):
        raise UserError(f"{first.algo} cannot be trained as a seed stack (it has no per-seed loss function)")
    ds, spaces = load_offline_data(first)
    agents = []
    for ctx in ctxs:
        ctx.run.write_config({**ctx.run.read_config(), "spaces": spaces})
        seed_everything(ctx.seed)
        agent: Agent = algo.build_agent(ctx.config, spaces).to(ctx.device)
        agent.obs_norm.set(*ds.observation_stats())
        agents.append(agent)
    stack = SeedStack(agents)
    batch_size = int(getattr(first.config, "batch_size", 256))

    def advance(step: int) -> list[dict[str, Any]]:
        batches = [ds.sample(batch_size, first.device) for _ in ctxs]
        info = stack.update({k: torch.stack([b[k] for b in batches]) for k in batches[0]})
        return [{k: v[i] for k, v in info.items()} for i in range(len(ctxs))]

    members = [(ctx, _StackMember(ctx, stack, i, ds)) for i, ctx in enumerate(ctxs)]
    return run_lockstep(members, advance)
