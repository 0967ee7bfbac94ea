r"""Flow Q-Learning (FQL): a one-step policy distilled from a BC flow while maximising Q.

Networks: the BC flow :math:`v_\beta(s, x, t)` (trained only by flow matching, see
:mod:`agentlab.agents.flow`), a one-step policy :math:`\mu_\omega(s, z)`, an ensemble critic
:math:`Q_\phi` with a Polyak target. One Adam over everything.

.. math::
   L_Q &= \mathbb E\,(Q_\phi(s, a) - r - \gamma m\, \text{agg}_k Q_{\bar\phi,k}(s', \text{clip}(\mu_\omega(s', z'))))^2 \\
   L_\pi &= L_{bc}(\beta) + \alpha\, \mathbb E \| \mu_\omega(s, z) - \text{sg}(\text{ODE}_{10}(v_\beta, s, z)) \|^2
            - \mathbb E\, \bar Q(s, \text{clip}(\mu_\omega(s, z)))

with the *same* noise :math:`z` for student and teacher. The teacher is not trained by the
distillation term; the critic's parameters are detached in the actor's Q term. Acting uses
:math:`\mu_\omega` alone (one network call), which is what makes FQL cheap at evaluation time.

Choosing ``alpha`` on a new task (rule, not tuned on evaluation seeds): the reference's per-task
values range from 3 to 1000 for OGBench; for tasks outside it FQL's authors normalise the Q term by
:math:`\text{sg}(\mathbb E|Q|)` so that alpha no longer depends on the reward scale, and we then use
alpha = 10 (FQL's D4RL-antmaze value) for every task of the offline table (``small`` preset sets
``normalize_q_loss``).

Deviation from the reference JAX code: the diagnostic ``mse`` metric is not computed. Otherwise the
update is the reference's (``benchmarks/parity``: losses, gradients and parameters after 3 updates
agree to float32 rounding; ``results/parity/``).
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import torch

from agentlab.agents import Algorithm, TrainContext
from agentlab.agents.flow import (
    ACTION_CLIP,
    ConditionedMLP,
    EnsembleCritic,
    FlowActorCritic,
    FlowActorCriticConfig,
    VelocityField,
    flow_matching_loss,
    make_adam,
    td_target,
)
from agentlab.agents.loops import train_offline
from agentlab.config import help_field


@dataclasses.dataclass(frozen=True)
class FQLConfig(FlowActorCriticConfig):
    grad_clip: float = help_field(0.0, "global gradient-norm clip (0 = off, the reference)")
    alpha: float = help_field(10.0, "weight of the distillation loss (reference: 3-1000 per task)")


class FQLAgent(FlowActorCritic):
    def __init__(self, config: FQLConfig, spaces: dict[str, Any]):
        super().__init__(spaces)
        self.config = config
        od, ad = self.obs_dim, self.act_dim
        self.flow = VelocityField(od, ad, config.hidden, config.activation)
        # the one-step policy mu(s, z)
        self.actor = ConditionedMLP(od, ad, config.hidden, ad, time_input=False, activation=config.activation)
        self.critic = EnsembleCritic(od, ad, config.critic_hidden, config.num_critics, config.critic_layer_norm,
                                     config.activation)
        self.target_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.opt = make_adam(self, config.lr)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"all": self.opt}

    def noise(self, n: int, device: torch.device) -> torch.Tensor:
        return torch.randn(n, self.act_dim, device=device)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        # The one-step policy is stochastic through z, as in the reference evaluation.
        obs_n = self.obs_norm(obs)
        return self.scale_action(self.actor(obs_n, self.noise(obs_n.shape[0], obs_n.device)).clamp(-1.0, 1.0))

    def losses(self, batch: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        cfg = self.config
        obs = self.obs_norm(batch["observations"])
        next_obs = self.obs_norm(batch["next_observations"])
        actions = self.unscale_action(batch["actions"]).clamp(-ACTION_CLIP, ACTION_CLIP)
        b = obs.shape[0]

        d = actions.shape[1]
        z = self.draw("z", (b, d), obs)
        with torch.no_grad():
            teacher = self.flow.sample(obs, z, cfg.flow_steps)
            next_actions = self.actor(next_obs, self.draw("next_z", (b, d), obs)).clamp(-1.0, 1.0)
            next_q = EnsembleCritic.aggregate(self.target_critic(next_obs, next_actions), cfg.q_agg)
            target = td_target(batch["rewards"], batch["masks"], next_q, cfg.discount)

        q_data = self.critic(obs, actions)
        critic_loss = (q_data - target).pow(2).mean()

        bc_loss = flow_matching_loss(self.flow, obs, actions, self.draw("bc_x0", (b, d), obs),
                                     self.draw("bc_t", (b, 1), obs, 0.0, 1.0))

        mu = self.actor(obs, z)
        distill = (mu - teacher).pow(2).mean()
        q_pi = self.critic.frozen(obs, mu.clamp(-1.0, 1.0)).mean(0)
        q_loss = -q_pi.mean()
        if cfg.normalize_q_loss:
            q_loss = q_loss / q_pi.abs().mean().detach().clamp_min(1e-6)
        terms = {"critic": critic_loss, "bc": bc_loss, "distill": cfg.alpha * distill, "q": q_loss}
        info = {"train/critic_loss": critic_loss, "train/bc_flow_loss": bc_loss, "train/distill_loss": distill,
                "train/q_loss": q_loss, "train/q_mean": q_data.mean()}
        return terms, {k: v.detach() for k, v in info.items()}


def train(ctx: TrainContext) -> dict[str, float]:
    return train_offline(ctx)


ALGORITHM = Algorithm(
    name="fql", config_cls=FQLConfig, train=train, build_agent=FQLAgent, kind="offline",
    description="Flow Q-Learning: one-step policy distilled from a BC flow, maximising Q",
    presets={"small": {"hidden": [256, 256], "critic_hidden": [256, 256], "normalize_q_loss": True},
             "smoke": {"hidden": [32, 32], "critic_hidden": [32, 32], "flow_steps": 4}})
