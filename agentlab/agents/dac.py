r"""Discriminator-Actor-Critic (Kostrikov et al. 2019): off-policy adversarial imitation.

A discriminator :math:`D(s, a) = \sigma(f(s, a))` separates expert pairs (label 1) from pairs of the
agent's *whole* replay buffer (label 0), with a gradient penalty on expert/agent interpolates:

.. math::
    L_D = -\mathbb{E}_{E}[\log \sigma(f)] - \mathbb{E}_{\mathcal B}[\log(1 - \sigma(f))]
          + \lambda\, \mathbb{E}_{\hat x}\big(\|\nabla_{\hat x} f(\hat x)\|_2 - 1\big)^2,
    \qquad \hat x = \epsilon x_E + (1 - \epsilon) x_{\mathcal B}

The optimum is :math:`f^* = \log(d_E / d_{\mathcal B})`, and SAC maximises the reward
:math:`r(s, a) = \log D - \log(1 - D) = f(s, a)`, computed by the *current* discriminator each time a
batch is sampled (never stored, so never stale).

Absorbing states: with ``absorbing=true`` observations carry an indicator dimension and every
terminal transition leads into a learned-reward absorbing state (:mod:`agentlab.envs.wrappers`);
the demonstrations are converted the same way. The discriminator ignores the action taken in the
absorbing state (its reward is a function of the state only).

Schedule (shared with AILBoost so that the two differ only in what the discriminator sees and how
it is trained): ``seed_steps`` random steps, then a discriminator round of ``disc_updates`` updates
every ``round_steps`` env steps, and one SAC update every ``update_every`` env steps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from agentlab.agents import Algorithm, TrainContext
from agentlab.agents.sac import SACAgent, SACConfig, SACLearner, make_adam
from agentlab.config import help_field
from agentlab.errors import UserError
from agentlab.nn import MLP


@dataclasses.dataclass(frozen=True)
class DACConfig(SACConfig):
    disc_hidden: list[int] = help_field([256, 256], "discriminator hidden sizes (DAC: 2x256 tanh)")
    disc_activation: str = help_field("tanh", "discriminator hidden activation")
    disc_output: str = help_field("linear", "discriminator output: linear (logit) or tanh (bounded in [-1, 1])")
    disc_loss: str = help_field("js", "discriminator loss: js (GAN/BCE), rkl (E_E[exp(-D)] + E_B[D]), wasserstein")
    disc_lr: float = help_field(1e-4, "discriminator Adam learning rate")
    disc_batch_size: int = help_field(512, "expert and agent samples per discriminator update (each)")
    grad_penalty: float = help_field(10.0, "gradient-penalty weight lambda")
    round_steps: int = help_field(1000, "env steps between discriminator rounds")
    disc_updates: int = help_field(100, "discriminator updates per round")
    absorbing: bool = help_field(True, "absorbing-state indicator for terminal transitions")


class Discriminator(torch.nn.Module):
    """``(s, a) -> scalar``; the action is masked out in the absorbing state."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: list[int], activation: str = "tanh",
                 output: str = "linear", absorbing: bool = False):
        super().__init__()
        if output not in ("linear", "tanh"):
            raise UserError(f"disc_output must be linear or tanh, got {output!r}")
        self.net = MLP(obs_dim + act_dim, hidden, 1, activation=activation)
        self.output, self.absorbing = output, absorbing

    def features(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        if self.absorbing:
            act = act * (1.0 - obs[:, -1:])
        return torch.cat([obs, act], -1)

    def from_features(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x).squeeze(-1)
        return torch.tanh(out) if self.output == "tanh" else out

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return self.from_features(self.features(obs, act))


def gradient_penalty(disc: Callable[[torch.Tensor], torch.Tensor], x_expert: torch.Tensor,
                     x_agent: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """WGAN-GP: ``E (||grad_x D(x_hat)||_2 - 1)^2`` on random interpolates of expert and agent inputs."""
    eps = torch.rand(x_expert.shape[0], 1, device=x_expert.device, generator=generator)
    x_hat = (eps * x_expert + (1 - eps) * x_agent).requires_grad_(True)
    (grad,) = torch.autograd.grad(disc(x_hat).sum(), x_hat, create_graph=True)
    return (grad.norm(2, dim=-1) - 1).pow(2).mean()


def disc_loss(kind: str, d_expert: torch.Tensor, d_agent: torch.Tensor,
              w_agent: torch.Tensor | None = None) -> torch.Tensor:
    """Discriminator loss of ``kind`` (minimised); ``w_agent`` optionally weights agent samples."""
    def mean_agent(x: torch.Tensor) -> torch.Tensor:
        return x.mean() if w_agent is None else (w_agent * x).sum() / w_agent.sum()

    if kind == "js":  # expert = 1, agent = 0; optimum logit = log(d_E / d_agent)
        return F.softplus(-d_expert).mean() + mean_agent(F.softplus(d_agent))
    if kind == "rkl":  # optimum D = log(d_E / d_agent)
        return torch.exp(-d_expert).mean() + mean_agent(d_agent)
    if kind == "wasserstein":  # critic high on expert
        return mean_agent(d_agent) - d_expert.mean()
    raise UserError(f"disc_loss must be js, rkl or wasserstein, got {kind!r}")


class DACAgent(SACAgent):
    """SAC plus a discriminator; observations may carry the absorbing indicator."""

    def __init__(self, config: DACConfig, spaces: dict[str, Any]):
        spaces = dict(spaces)
        self.env_obs_dim = int(spaces["obs_dim"])
        if config.absorbing:
            spaces["obs_dim"] = self.env_obs_dim + 1
        super().__init__(config, spaces)
        self.disc = Discriminator(self.obs_dim, self.act_dim, list(config.disc_hidden), config.disc_activation,
                                  config.disc_output, config.absorbing)
        self.disc_opt = make_adam(self.disc.parameters(), config.disc_lr, config.fused_adam)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {**super().optimizers(), "disc": self.disc_opt}

    def with_indicator(self, obs: torch.Tensor) -> torch.Tensor:
        """Raw environment observations get the zero indicator (evaluation, users)."""
        if obs.shape[-1] == self.obs_dim - 1:
            return torch.cat([obs, torch.zeros(*obs.shape[:-1], 1, dtype=obs.dtype, device=obs.device)], -1)
        return obs

    def policy_action(self, obs: torch.Tensor, deterministic: bool) -> torch.Tensor:
        return super().policy_action(self.with_indicator(obs), deterministic)

    @torch.no_grad()
    def reward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The imitation reward of a sampled batch, from the current discriminator."""
        return self.disc(batch["observations"], batch["actions"])

    def disc_update(self, expert: dict[str, torch.Tensor], agent: dict[str, torch.Tensor],
                    w_agent: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        c = self.config
        x_e = self.disc.features(expert["observations"], expert["actions"])
        x_a = self.disc.features(agent["observations"], agent["actions"])
        d = self.disc.from_features(torch.cat([x_e, x_a], 0))
        d_e, d_a = d[: len(x_e)], d[len(x_e):]
        loss = disc_loss(c.disc_loss, d_e, d_a, w_agent)
        gp = gradient_penalty(self.disc.from_features, x_e, x_a) if c.grad_penalty > 0 else torch.zeros(())
        self.disc_opt.zero_grad(set_to_none=True)
        (loss + c.grad_penalty * gp).backward()
        self.disc_opt.step()
        return {"train/disc_loss": loss.detach(), "train/grad_penalty": gp.detach(),
                "train/d_expert": d_e.detach().mean(), "train/d_agent": d_a.detach().mean()}


# -- demonstrations ------------------------------------------------------------------------------
def load_demos(ctx: TrainContext, absorbing: bool):
    """The first ``--num-demos`` demonstration episodes, checked against the environment."""
    from agentlab.data import check_against_env, load

    if ctx.env_id is None:
        raise UserError(f"{ctx.algo} needs --env")
    if ctx.demos is None:
        raise UserError(f"{ctx.algo} is an imitation algorithm: pass --demos FILE (see `agentlab experts collect`)")
    ds = load(ctx.demos)
    available = ds.num_episodes()
    n = available if ctx.num_demos is None else int(ctx.num_demos)
    if n < 1:
        raise UserError(f"--num-demos must be at least 1, got {n}")
    if n > available:
        raise UserError(f"--num-demos {n} is larger than the {available} episodes in {ctx.demos}")
    ds = ds.select_episodes(n)
    check_against_env(ds, ctx.env_id)
    if absorbing:
        from agentlab.envs.wrappers import absorbing_dataset

        ds = absorbing_dataset(ds)
    return ds


class ExpertSampler:
    """Uniform batches of expert ``(s, a)`` (actions rescaled to [-1, 1]) held as tensors."""

    def __init__(self, ds: Any, agent: DACAgent, device: torch.device):
        self.obs = torch.as_tensor(ds.observations, device=device)
        acts = torch.as_tensor(ds.actions, device=device)
        is_abs = self.obs[:, -1:] > 0.5 if agent.config.absorbing else torch.zeros(len(acts), 1, dtype=torch.bool)
        self.actions = torch.where(is_abs.to(device), acts, agent.unscale_action(acts).clamp(-1, 1))

    def sample(self, n: int) -> dict[str, torch.Tensor]:
        idx = torch.randint(len(self.obs), (n,), device=self.obs.device)
        return {"observations": self.obs[idx], "actions": self.actions[idx]}


class DACLearner(SACLearner):
    """SAC on the discriminator reward, with discriminator rounds over the uniform replay."""

    def __init__(self, ctx: TrainContext, agent: DACAgent, expert: ExpertSampler):
        super().__init__(ctx, agent)
        self.expert = expert
        self.disc_info: dict[str, torch.Tensor] = {}

    def wrap_env(self, env):  # noqa: ANN001
        env = super().wrap_env(env)  # action repeat inside, absorbing state outside
        if self.config.absorbing:
            from agentlab.envs.wrappers import AbsorbingStateWrapper

            return AbsorbingStateWrapper(env)
        return env

    def reward_fn(self) -> Callable[[dict[str, torch.Tensor]], torch.Tensor]:
        return self.agent.reward

    def sample_agent(self, buffer, n: int) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:  # noqa: ANN001
        return buffer.sample(n), None  # DAC: uniform over the whole replay

    def disc_round(self, step: int, buffer) -> None:  # noqa: ANN001
        c = self.config
        for _ in range(c.disc_updates):
            agent_batch, w = self.sample_agent(buffer, c.disc_batch_size)
            self.disc_info = self.agent.disc_update(self.expert.sample(c.disc_batch_size), agent_batch, w)

    def start_round(self, step: int, buffer) -> None:  # noqa: ANN001
        """Hook for AILBoost's mixture bookkeeping (before the discriminator round)."""

    def after_step(self, step: int, buffer) -> dict[str, torch.Tensor]:  # noqa: ANN001
        c = self.config
        if step >= c.seed_steps and (step - c.seed_steps) % c.round_steps == 0:
            self.start_round(step, buffer)
            self.disc_round(step, buffer)
        info = super().after_step(step, buffer)
        return {**info, **self.disc_info} if info else info


def build_imitation(ctx: TrainContext, agent_cls: type[DACAgent]):
    """Spaces, agent and expert sampler of an imitation run (shared by dac and ailboost)."""
    from agentlab.agents.base import spaces_from_env

    ds = load_demos(ctx, ctx.config.absorbing)
    spaces = spaces_from_env(ctx.env_id)
    ctx.run.write_config({**ctx.run.read_config(), "spaces": spaces})
    agent = agent_cls(ctx.config, spaces).to(ctx.device)
    return agent, ExpertSampler(ds, agent, ctx.device), ds


_EVAL_ENVS: dict[str, Any] = {}


def eval_with_refs(ctx: TrainContext, policy_agent: Any, demos_meta: dict[str, Any]) -> dict[str, float]:
    """Evaluate on the raw env one episode at a time (action repeat holds one action per episode),
    reusing one cached environment per env id: building a DeepMind Control env compiles its model,
    which costs more than a short episode. Normalised with the demos' reference scores (random /
    expert) when present."""
    from agentlab.agents.loops import evaluation_seed
    from agentlab.envs import make_env
    from agentlab.evaluation import evaluate
    from agentlab.policy import Policy

    env = _EVAL_ENVS.get(ctx.env_id) or _EVAL_ENVS.setdefault(ctx.env_id, make_env(ctx.env_id))
    was = policy_agent.training
    res = evaluate(Policy(policy_agent, ctx.device), ctx.env_id, ctx.eval_episodes, evaluation_seed(ctx.seed),
                   demos_meta, max_parallel=1, envs=[env])
    policy_agent.train(was)
    return {f"eval/{k}": v for k, v in res.items() if k != "episodes"}


def train(ctx: TrainContext) -> dict[str, float]:
    from agentlab.agents.online import train_online

    agent, expert, ds = build_imitation(ctx, DACAgent)
    learner = DACLearner(ctx, agent, expert)
    learner.evaluate = lambda final=False: eval_with_refs(ctx, agent, ds.metadata)  # type: ignore[method-assign]
    return train_online(ctx, learner)


ALGORITHM = Algorithm(name="dac", config_cls=DACConfig, train=train, build_agent=DACAgent, kind="imitation",
                      description="discriminator-actor-critic (SAC learner, GAN discriminator with gradient "
                                  "penalty, absorbing states, uniform replay)",
                      presets={"smoke": {"hidden": [64, 64], "disc_hidden": [32, 32], "seed_steps": 200,
                                         "batch_size": 64, "round_steps": 100, "disc_updates": 5,
                                         "disc_batch_size": 64}})
