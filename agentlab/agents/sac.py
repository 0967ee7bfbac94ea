r"""Soft Actor-Critic (Haarnoja et al. 2018): twin critics, tanh-Gaussian actor, learned temperature.

.. math::
    y &= r(s, a) + \gamma\, m \,\big(\min_{j=1,2} \bar Q_j(s', a') - \alpha \log \pi(a' \mid s')\big),
         \quad a' \sim \pi(\cdot \mid s') \\
    L_Q &= \textstyle\sum_j \mathbb{E}\,(Q_j(s, a) - y)^2 \\
    L_\pi &= \mathbb{E}_{a \sim \pi}\big[\alpha \log \pi(a \mid s) - \min_j Q_j(s, a)\big] \\
    L_\alpha &= -\mathbb{E}\big[\log\alpha\,(\log \pi(a \mid s) + \bar{\mathcal H})\big],
         \quad \bar{\mathcal H} = -|\mathcal A|

with :math:`m = 1 - \text{terminal}` (time-limit truncations bootstrap) and Polyak-averaged targets
:math:`\bar Q \leftarrow (1 - \tau) \bar Q + \tau Q`.

Speed (this is the learner of DAC and AILBoost, where SAC updates dominate the wall clock): the two
critics are one :class:`agentlab.nn.EnsembleMLP` (one batched matmul per layer for both), the
actor and temperature share one backward pass and one optimiser step, Adam runs fused, the target
update is one ``_foreach_lerp_``, and ``update`` never synchronises with the host (metrics come back
as tensors and are read only when the loop logs).

The reward is swappable: ``update(batch, reward_fn)`` replaces ``batch["rewards"]`` by
``reward_fn(batch)`` evaluated when the batch is sampled (imitation rewards are never stale).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from agentlab.agents import Algorithm, TrainContext
from agentlab.agents.base import Agent
from agentlab.config import AlgoConfig, help_field
from agentlab.nn import MLP, EnsembleMLP, polyak_update

LOG_2 = math.log(2.0)


@dataclasses.dataclass(frozen=True)
class SACConfig(AlgoConfig):
    hidden: list[int] = help_field([256, 256], "hidden sizes of actor and critics")
    actor_lr: float = help_field(3e-4, "actor Adam learning rate")
    critic_lr: float = help_field(3e-4, "critic Adam learning rate")
    alpha_lr: float = help_field(3e-4, "temperature Adam learning rate")
    batch_size: int = help_field(256, "minibatch size")
    discount: float = help_field(0.99, "discount factor gamma")
    tau: float = help_field(5e-3, "Polyak rate of the target critics")
    init_temperature: float = help_field(1.0, "initial entropy coefficient alpha")
    target_entropy: float | None = help_field(None, "target entropy (None = -action_dim)")
    log_std_min: float = help_field(-5.0, "lower clamp of the actor's log std")
    log_std_max: float = help_field(2.0, "upper clamp of the actor's log std")
    buffer_size: int = help_field(1_000_000, "replay capacity (transitions)")
    action_repeat: int = help_field(1, "repeat each action this many env steps (DMC practice; reference: 2)")
    seed_steps: int = help_field(5000, "agent steps (env steps / action_repeat) with random actions before learning")
    update_every: int = help_field(2, "agent steps between gradient phases")
    updates_per_phase: int = help_field(1, "gradient updates per phase (update ratio = this / update_every)")
    fused_adam: bool = help_field(True, "use torch's fused Adam kernel (falls back when unsupported)")


def make_adam(params: Any, lr: float, fused: bool) -> torch.optim.Adam:
    if fused:
        try:
            return torch.optim.Adam(params, lr=lr, fused=True)
        except (RuntimeError, TypeError):
            pass
    return torch.optim.Adam(params, lr=lr)


class TanhGaussianActor(torch.nn.Module):
    """``s -> (mu, log_std)``; actions ``tanh(mu + std * eps)`` in [-1, 1]."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: list[int], log_std_min: float, log_std_max: float):
        super().__init__()
        self.net = MLP(obs_dim, hidden, 2 * act_dim)
        self.log_std_min, self.log_std_max = log_std_min, log_std_max

    def forward(self, obs: torch.Tensor, deterministic: bool = False, with_logp: bool = True):
        mu, log_std = self.net(obs).chunk(2, -1)
        if deterministic:
            return torch.tanh(mu), None
        # soft clamp keeps gradients alive at the bounds (as in many SAC implementations)
        log_std = self.log_std_min + 0.5 * (self.log_std_max - self.log_std_min) * (torch.tanh(log_std) + 1)
        std = log_std.exp()
        eps = torch.randn_like(mu)
        u = mu + std * eps
        a = torch.tanh(u)
        if not with_logp:
            return a, None
        # log N(u; mu, std) - sum log(1 - tanh(u)^2), the latter in its stable softplus form
        logp = (-0.5 * eps.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        logp = logp - (2 * (LOG_2 - u - F.softplus(-2 * u))).sum(-1)
        return a, logp


class SACAgent(Agent):
    """Actor, twin critics (one ensemble module), target critics and the temperature."""

    def __init__(self, config: SACConfig, spaces: dict[str, Any]):
        super().__init__(spaces)
        self.config = config
        c = config
        self.actor = TanhGaussianActor(self.obs_dim, self.act_dim, list(c.hidden), c.log_std_min, c.log_std_max)
        self.critic = EnsembleMLP(2, self.obs_dim + self.act_dim, list(c.hidden), 1)
        self.critic_target = EnsembleMLP(2, self.obs_dim + self.act_dim, list(c.hidden), 1)
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.critic_target.requires_grad_(False)
        self.log_alpha = torch.nn.Parameter(torch.tensor(math.log(c.init_temperature), dtype=torch.float32))
        self.target_entropy = float(-self.act_dim if c.target_entropy is None else c.target_entropy)
        self.critic_opt = make_adam(self.critic.parameters(), c.critic_lr, c.fused_adam)
        # actor and temperature: one optimiser (two parameter groups), one step
        self.actor_opt = make_adam([{"params": list(self.actor.parameters()), "lr": c.actor_lr},
                                    {"params": [self.log_alpha], "lr": c.alpha_lr}], c.actor_lr, c.fused_adam)
        self._held: torch.Tensor | None = None  # action repeat at evaluation time
        self._held_for = 0

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"critic": self.critic_opt, "actor": self.actor_opt}

    def q(self, net: EnsembleMLP, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return net(torch.cat([obs, act], -1)).squeeze(-1)  # [2, B]

    def update(self, batch: dict[str, torch.Tensor],
               reward_fn: Callable[[dict[str, torch.Tensor]], torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """One SAC step on a batch with actions in [-1, 1]; no host synchronisation."""
        c = self.config
        obs, act = self.obs_norm(batch["observations"]), batch["actions"]
        next_obs = self.obs_norm(batch["next_observations"])
        with torch.no_grad():
            reward = reward_fn(batch) if reward_fn is not None else batch["rewards"]
            alpha = self.log_alpha.exp()
            next_a, next_logp = self.actor(next_obs)
            next_q = self.q(self.critic_target, next_obs, next_a).min(0).values - alpha * next_logp
            target = reward + c.discount * batch["masks"] * next_q

        # critics
        q = self.q(self.critic, obs, act)
        critic_loss = (q - target).pow(2).mean(1).sum()
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()

        # actor + temperature (critic frozen so no gradient is accumulated into it)
        a, logp = self.actor(obs)
        self.critic.requires_grad_(False)
        q_pi = self.q(self.critic, obs, a).min(0).values
        self.critic.requires_grad_(True)
        actor_loss = (alpha * logp - q_pi).mean()
        alpha_loss = -(self.log_alpha * (logp.detach() + self.target_entropy)).mean()
        self.actor_opt.zero_grad(set_to_none=True)
        (actor_loss + alpha_loss).backward()
        self.actor_opt.step()

        polyak_update(self.critic_target, self.critic, c.tau)
        return {"train/critic_loss": critic_loss.detach(), "train/actor_loss": actor_loss.detach(),
                "train/alpha": alpha, "train/entropy": -logp.detach().mean(), "train/q": q.detach().mean(),
                "train/reward": reward.mean()}

    @property
    def eval_max_parallel(self) -> int:
        """With action repeat, episodes are evaluated one at a time so each holds its own action."""
        return 1 if self.config.action_repeat > 1 else 1_000_000

    def reset_episodes(self, num_envs: int, seed: int | None = None) -> None:
        self._held, self._held_for = None, 0

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        """Actions for raw observations; with ``action_repeat`` k, a new action every k calls
        (the evaluator calls ``reset_episodes`` at the start of each episode)."""
        k = self.config.action_repeat
        if k > 1 and self._held is not None and self._held_for < k and self._held.shape[0] == obs.shape[0]:
            self._held_for += 1
            return self._held
        a = self.scale_action(self.policy_action(obs, deterministic))
        if k > 1:
            self._held, self._held_for = a, 1
        return a

    def scale_action_np(self, a: np.ndarray) -> np.ndarray:
        """[-1, 1] -> env bounds, in NumPy (the env-stepping path)."""
        return a * self.act_scale.cpu().numpy() + self.act_center.cpu().numpy()

    def unscale_action_np(self, a: np.ndarray) -> np.ndarray:
        return ((a - self.act_center.cpu().numpy()) / self.act_scale.cpu().numpy()).astype(np.float32)

    def policy_action(self, obs: torch.Tensor, deterministic: bool) -> torch.Tensor:
        """The policy's action in [-1, 1] for raw observations."""
        a, _ = self.actor(self.obs_norm(obs), deterministic=deterministic, with_logp=False)
        return a

    @torch.no_grad()
    def explore(self, obs: np.ndarray) -> np.ndarray:
        """A stochastic action in [-1, 1] for one observation (data collection)."""
        x = torch.from_numpy(np.asarray(obs, dtype=np.float32)).unsqueeze(0)
        a, _ = self.actor(self.obs_norm(x.to(self.act_scale.device)), with_logp=False)
        return a[0].cpu().numpy()


class SACLearner:
    """Plain SAC on the environment reward, driven by :func:`agentlab.agents.online.train_online`."""

    def __init__(self, ctx: TrainContext, agent: SACAgent):
        self.ctx, self.agent, self.config = ctx, agent, agent.config

    # hooks used by the online loop -------------------------------------------------------------
    def wrap_env(self, env):  # noqa: ANN001
        if self.config.action_repeat > 1:
            from agentlab.envs.wrappers import ActionRepeat

            return ActionRepeat(env, self.config.action_repeat)
        return env

    def reward_fn(self) -> Callable[[dict[str, torch.Tensor]], torch.Tensor] | None:
        return None

    def after_step(self, step: int, buffer) -> dict[str, torch.Tensor]:  # noqa: ANN001
        c = self.config
        info: dict[str, torch.Tensor] = {}
        if step > c.seed_steps and step % c.update_every == 0:
            fn = self.reward_fn()
            for _ in range(c.updates_per_phase):
                info = self.agent.update(buffer.sample(c.batch_size), fn)
        return info

    def evaluate(self, final: bool = False) -> dict[str, float]:
        from agentlab.agents.loops import evaluate_agent

        return evaluate_agent(self.ctx, self.agent)

    def extra_state(self) -> dict[str, Any]:
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        pass


def train(ctx: TrainContext) -> dict[str, float]:
    from agentlab.agents.base import spaces_from_env
    from agentlab.agents.online import train_online
    from agentlab.errors import UserError

    if ctx.env_id is None:
        raise UserError("sac is an online algorithm: pass --env")
    spaces = spaces_from_env(ctx.env_id)
    ctx.run.write_config({**ctx.run.read_config(), "spaces": spaces})
    agent = SACAgent(ctx.config, spaces).to(ctx.device)
    return train_online(ctx, SACLearner(ctx, agent))


ALGORITHM = Algorithm(name="sac", config_cls=SACConfig, train=train, build_agent=SACAgent, kind="online",
                      description="soft actor-critic (twin critics as one ensemble, learned temperature)",
                      presets={"smoke": {"hidden": [64, 64], "seed_steps": 200, "batch_size": 64},
                               # the DeepMind Control experts of the imitation table (CPU-sized)
                               "expert": {"hidden": [64, 64], "action_repeat": 4, "seed_steps": 1000,
                                          "update_every": 1, "actor_lr": 1e-3, "critic_lr": 1e-3,
                                          "alpha_lr": 1e-3}})
