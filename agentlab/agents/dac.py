r"""Discriminator-Actor-Critic (Kostrikov et al. 2019): off-policy adversarial imitation.

A discriminator :math:`D(s, a)` (:mod:`agentlab.agents.discriminator`, the component AILBoost uses
too) separates expert pairs from pairs of the agent's *whole* replay buffer, with a gradient penalty
on expert/agent interpolates; with the GAN loss (``disc_loss=js``, DAC's)

.. math::
    L_D = -\mathbb{E}_{E}[\log \sigma(D)] - \mathbb{E}_{\mathcal B}[\log(1 - \sigma(D))]
          + \lambda\, \mathbb{E}_{\hat x}\big(\|\nabla_{\hat x} D(\hat x)\|_2 - 1\big)^2,
    \qquad \hat x = \epsilon x_E + (1 - \epsilon) x_{\mathcal B}

The optimum is :math:`D^* = \log(d_E / d_{\mathcal B})`, and SAC maximises the reward
:math:`r(s, a) = \log \sigma(D) - \log(1 - \sigma(D)) = D(s, a)`.

Two ways to run it (``dac_variant``):

* ``fresh`` (ours, the default): every ``round_steps`` agent steps a round of ``disc_updates``
  discriminator updates on uniform replay samples, and the reward is computed by the *current*
  discriminator each time a SAC batch is sampled (never stored, so never stale). This is the
  schedule AILBoost uses too, so that DAC and AILBoost differ only in what the discriminator sees;
* ``paper``: DAC as the AILBoost code (github Cornell-RL/ailboost, ``agent/dac.py``) runs its
  baseline: rewards are computed *once*, by the discriminator of the moment an episode ends, and
  stored in the replay (a transition is sampleable only from then on); one discriminator update per
  SAC update, on the first ``disc_batch_size`` rows of the SAC batch itself against as many expert
  pairs. The AILBoost code's discriminator for it is 64x64 ReLU with a tanh-bounded output, JS loss,
  gradient penalty 10 (set those with ``disc_*``; the table does).

Absorbing states: with ``absorbing=true`` observations carry an indicator dimension and every
terminal transition leads into a learned-reward absorbing state (:mod:`agentlab.envs.wrappers`);
the demonstrations are converted the same way. The discriminator ignores the action taken in the
absorbing state (its reward is a function of the state only).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch

from agentlab.agents import Algorithm, TrainContext
from agentlab.agents.discriminator import (  # noqa: F401 - re-exported for users of dac
    Discriminator,
    DiscriminatorConfig,
    build_discriminator,
    disc_loss,
    discriminator_step,
    gradient_penalty,
)
from agentlab.agents.sac import SACAgent, SACConfig, SACLearner, make_adam
from agentlab.config import help_field
from agentlab.errors import UserError

VARIANTS = ("fresh", "paper")


@dataclasses.dataclass(frozen=True)
class DACConfig(SACConfig, DiscriminatorConfig):
    round_steps: int = help_field(1000, "agent steps between discriminator rounds (dac_variant=fresh)")
    disc_updates: int = help_field(100, "discriminator updates per round (dac_variant=fresh)")
    absorbing: bool = help_field(True, "absorbing-state indicator for terminal transitions")
    dac_variant: str = help_field("fresh", "fresh: discriminator rounds, rewards recomputed at sampling; paper: "
                                           "the AILBoost code's DAC (rewards stored at episode end, one "
                                           "discriminator update per SAC update on its batch)")

    def validate(self) -> None:
        super().validate()
        self.validate_discriminator()
        if self.dac_variant not in VARIANTS:
            raise UserError(f"dac_variant must be fresh or paper, got {self.dac_variant!r}")
        if self.round_steps < 1 or self.disc_updates < 0 or self.seed_steps < 0:
            raise UserError("round_steps must be >= 1, disc_updates >= 0 and seed_steps >= 0")


class DACAgent(SACAgent):
    """SAC plus a discriminator; observations may carry the absorbing indicator."""

    def __init__(self, config: DACConfig, spaces: dict[str, Any]):
        spaces = dict(spaces)
        self.env_obs_dim = int(spaces["obs_dim"])
        if config.absorbing:
            spaces["obs_dim"] = self.env_obs_dim + 1
        super().__init__(config, spaces)
        self.disc = build_discriminator(config, self.obs_dim, self.act_dim, config.absorbing)
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
        return discriminator_step(self.disc, self.disc_opt, self.config, expert, agent, w_agent)


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


class _EpisodeEnd:
    """Wraps the training env so the learner knows when an episode ended (``dac_variant=paper``)."""

    def __init__(self, env: Any, learner: DACLearner):
        self.env, self.learner = env, learner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.env, name)

    def step(self, action: Any) -> Any:
        out = self.env.step(action)
        if out[2] or out[3]:
            self.learner.episode_ended = True
        return out

    def reset(self, **kw: Any) -> Any:
        return self.env.reset(**kw)


class DACLearner(SACLearner):
    """SAC on the discriminator reward, with discriminator rounds over the uniform replay
    (``dac_variant=fresh``) or one discriminator update per SAC update on its batch, with rewards
    stored at episode end (``dac_variant=paper``)."""

    def __init__(self, ctx: TrainContext, agent: DACAgent, expert: ExpertSampler):
        super().__init__(ctx, agent)
        self.expert = expert
        self.disc_info: dict[str, torch.Tensor] = {}
        self.episode_ended = False  # paper variant: set by the env wrapper
        self.unstamped = 0  # paper variant: transitions of the running episode (no reward yet)

    def wrap_env(self, env):  # noqa: ANN001
        env = super().wrap_env(env)  # action repeat inside, absorbing state outside
        if self.config.absorbing:
            from agentlab.envs.wrappers import AbsorbingStateWrapper

            env = AbsorbingStateWrapper(env)
        return _EpisodeEnd(env, self) if self.config.dac_variant == "paper" else env

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
        if c.dac_variant == "paper":
            return self.after_step_paper(step, buffer)
        if step >= c.seed_steps and (step - c.seed_steps) % c.round_steps == 0:
            self.start_round(step, buffer)
            self.disc_round(step, buffer)
        info = super().after_step(step, buffer)
        return {**info, **self.disc_info} if info else info

    @torch.no_grad()
    def stamp_episode(self, buffer) -> None:  # noqa: ANN001
        """Reward the finished episode's transitions once, with the current discriminator, and make
        them sampleable (weight 1; until then weight 0 hides them, as the reference adds an episode
        to its replay only when it ends)."""
        idx = buffer.recent_indices(self.unstamped)
        buffer.rewards[idx] = self.agent.reward(buffer.gather(idx))
        buffer.set_weights(idx, 1.0)
        self.unstamped = 0

    def after_step_paper(self, step: int, buffer) -> dict[str, torch.Tensor]:  # noqa: ANN001
        c = self.config
        buffer.set_weights(buffer.recent_indices(1), 0.0)  # the environment's reward is never used
        self.unstamped += 1
        if self.episode_ended:
            self.episode_ended = False
            self.stamp_episode(buffer)
        info: dict[str, torch.Tensor] = {}
        if step > c.seed_steps and step % c.update_every == 0 and float(buffer.weights[: buffer.size].sum()) > 0:
            n = min(c.disc_batch_size, c.batch_size)
            for _ in range(c.updates_per_phase):
                batch = buffer.sample(c.batch_size, weighted=True)  # stamped transitions, uniformly
                policy_rows = {"observations": batch["observations"][:n], "actions": batch["actions"][:n]}
                self.disc_info = self.agent.disc_update(self.expert.sample(n), policy_rows)
                info = self.agent.update(batch)  # the stored rewards
        return {**info, **self.disc_info} if info else info

    def extra_state(self) -> dict[str, Any]:
        # the last round's discriminator metrics go with every logged row until the next round
        return {**super().extra_state(),
                "disc_info": {k: torch.as_tensor(v).detach().cpu() for k, v in self.disc_info.items()}}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        super().load_extra_state(state)
        self.disc_info = dict(state.get("disc_info", {}))
        # a resumed run restarts the interrupted episode: its partial transitions stay hidden
        self.unstamped, self.episode_ended = 0, False


def build_imitation(ctx: TrainContext, agent_cls: type[DACAgent]):
    """Spaces, agent and expert sampler of an imitation run (shared by dac and ailboost)."""
    from agentlab.agents.base import spaces_from_env

    ds = load_demos(ctx, ctx.config.absorbing)
    spaces = spaces_from_env(ctx.env_id)
    ctx.run.write_config({**ctx.run.read_config(), "spaces": spaces})
    agent = agent_cls(ctx.config, spaces).to(ctx.device)
    expert = ExpertSampler(ds, agent, ctx.device)
    agent.disc.fit_input_norm(expert.obs, expert.actions)
    return agent, expert, ds


_EVAL_ENVS: dict[str, Any] = {}


def eval_with_refs(ctx: TrainContext, policy_agent: Any, demos_meta: dict[str, Any]) -> dict[str, float]:
    """Evaluate on the raw env one episode at a time (action repeat holds one action per episode),
    reusing one cached environment per env id: building a DeepMind Control env compiles its model,
    which costs more than a short episode. Normalised with the demos' reference scores (random /
    expert) when present."""
    from agentlab.seeding import evaluation_seed
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
