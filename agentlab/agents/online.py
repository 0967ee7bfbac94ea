"""The online loop shared by off-policy learners (sac, dac, ailboost).

One environment, one replay buffer (:class:`agentlab.replay.ReplayBuffer`), one agent step per
iteration (``action_repeat`` env steps; the step budget and every logged step count env steps): act (uniform random during the learner's ``seed_steps``, then the stochastic policy) ->
store ``(s, a, r, s', terminated)`` with the action in [-1, 1] (truncations are not terminals, so
they bootstrap) -> ``learner.after_step(step, buffer)`` (gradient updates, discriminator rounds)
-> the shared loop (:func:`agentlab.loop.run_loop`) logs, evaluates and checkpoints.

A learner supplies ``agent`` (an :class:`agentlab.agents.base.Agent` with ``explore``),
``config`` (with ``seed_steps`` and ``buffer_size``), ``wrap_env(env)``, ``after_step``,
``evaluate(final)`` (``final``: the run's last evaluation), ``extra_state()`` and ``load_extra_state(state)``. Checkpoints hold the agent, its
optimisers, the replay buffer, the learner's extra state and the RNG states, so a killed run
resumes (the interrupted episode restarts from a fresh reset).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np
import torch

from agentlab.agents import TrainContext
from agentlab.loop import Trainer, run_loop
from agentlab.replay import ReplayBuffer
from agentlab.seeding import online_episode_seed


class OnlineLearner(Protocol):
    """What an off-policy learner (sac, dac, ailboost) gives the online trainer."""

    agent: Any  # an agentlab.agents.base.Agent with ``explore``
    config: Any  # with ``seed_steps``, ``buffer_size`` (and optionally ``action_repeat``)

    def wrap_env(self, env: Any) -> Any: ...

    def after_step(self, step: int, buffer: ReplayBuffer) -> Mapping[str, Any] | None: ...

    def evaluate(self, final: bool = False) -> dict[str, float]: ...

    def extra_state(self) -> dict[str, Any]: ...

    def load_extra_state(self, state: dict[str, Any]) -> None: ...


class OnlineTrainer(Trainer):
    """One step = one agent step (``action_repeat`` env steps); progress counts env steps."""

    rate_metric = "time/env_steps_per_s"

    def __init__(self, ctx: TrainContext, learner: OnlineLearner):
        from agentlab.envs import make_env, max_episode_steps

        self.ctx, self.learner = ctx, learner
        self.agent, cfg = learner.agent, learner.config
        self.env = learner.wrap_env(make_env(ctx.env_id))
        self.repeat = int(getattr(cfg, "action_repeat", 1))
        self.total = (ctx.steps // self.repeat) * self.repeat
        agent_steps = ctx.steps // self.repeat
        obs_dim = int(np.prod(self.env.observation_space.shape))
        episode_len = max(1, (max_episode_steps(ctx.env_id) or 1000) // self.repeat)
        capacity = min(int(cfg.buffer_size), agent_steps + 2 * (agent_steps // episode_len) + 16)
        self.buffer = ReplayBuffer(capacity, obs_dim, self.agent.act_dim, ctx.device)
        self.info: Mapping[str, Any] = {}
        self.recent_returns: list[float] = []
        self.episodes = 0

    def reset_env(self) -> None:
        """Each episode's reset seed comes from its index: a resumed run replays the same episodes."""
        self.obs, _ = self.env.reset(seed=online_episode_seed(self.ctx.seed, self.episodes))
        self.ep_return = 0.0

    def begin(self, step: int) -> None:
        if step == 0:
            self.env.action_space.seed(self.ctx.seed)
        self.reset_env()  # on resume: the interrupted episode restarts (exact when resumed on an episode boundary)

    def advance(self, step: int, total: int) -> tuple[int, Mapping[str, Any]]:
        agent, agent_step = self.agent, step // self.repeat + 1
        if agent_step <= self.learner.config.seed_steps:
            a = agent.unscale_action_np(self.env.action_space.sample())
        else:
            a = agent.explore(self.obs)
        next_obs, reward, terminated, truncated, _ = self.env.step(agent.scale_action_np(a))
        self.buffer.add_step(self.obs, a, reward, next_obs, terminated)
        self.ep_return += float(reward)
        self.obs = next_obs
        if terminated or truncated:
            self.recent_returns = [*self.recent_returns[-9:], self.ep_return]
            self.episodes += 1
            self.reset_env()
        out = self.learner.after_step(agent_step, self.buffer)
        if out:
            self.info = out
        row = dict(self.info)
        if self.recent_returns:
            row["train/episode_return"] = float(np.mean(self.recent_returns))
            row["train/episodes"] = float(self.episodes)
        return agent_step * self.repeat, row

    def evaluate(self, final: bool) -> dict[str, float]:
        return self.learner.evaluate(final=final)

    def state_dict(self) -> dict[str, Any]:
        from agentlab.runs import json_tensor

        return {**self.agent.checkpoint_state(), "buffer": self.buffer.state_dict(),
                "learner": self.learner.extra_state(),
                "episodes": torch.tensor([self.episodes]), "recent_returns": torch.tensor(self.recent_returns, dtype=torch.float64),
                "action_rng": json_tensor(self.env.action_space.np_random.bit_generator.state)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        from agentlab.runs import json_from_tensor

        self.agent.load_checkpoint_state(state)
        self.buffer.load_state_dict(state["buffer"])
        self.learner.load_extra_state(state.get("learner", {}))
        self.episodes = int(state["episodes"][0])
        self.recent_returns = [float(x) for x in state["recent_returns"].tolist()]
        self.env.action_space.np_random.bit_generator.state = json_from_tensor(state["action_rng"])

    def close(self) -> None:
        self.env.close()


def train_online(ctx: TrainContext, learner: OnlineLearner) -> dict[str, float]:
    trainer = OnlineTrainer(ctx, learner)
    return run_loop(ctx, trainer, trainer.total)
