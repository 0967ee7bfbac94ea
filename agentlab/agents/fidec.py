r"""Fisher Decorator (FiDec): a flow behaviour policy refined by a Fisher-metric local transport map.

Networks: a BC flow :math:`v_\beta(s, x, t)` (see :mod:`agentlab.agents.flow`), a residual map
:math:`\delta_\theta(s, a_b)`, an ensemble critic :math:`Q_\phi` with a Polyak target, and the
dual variable :math:`\log\alpha`. One Adam over everything, global gradient-norm clipping.

Acting: :math:`a_b = \text{sg}(\text{ODE}_{10}(v_\beta, s, z))`, :math:`z \sim \mathcal N(0, I)`,
clipped to [-1, 1]; :math:`a = \text{clip}(a_b + \delta_\theta(s, a_b), -1, 1)`. The same sampler
gives evaluation actions and the TD target's next action (no one-step distillation).

Fisher metric per state (``fisher="flow"``): draw K base samples :math:`a_k` from the flow,
re-noise :math:`\tilde x_k = (1 - t_f) x_0' + t_f a_k`, score
:math:`g_k = \text{sg}(v_\beta(s, \tilde x_k, t_f)) / (1 - t_f)` (``fisher_score="proxy"``, the
reference) or the exact linear-path score :math:`(t_f v - \tilde x_k)/(1 - t_f)` (``"exact"``);

.. math::  F = \tfrac1K \textstyle\sum_k g_k g_k^\top + \lambda I, \qquad
           \tilde F = F / \text{sg}(\operatorname{tr}(F) / d), \qquad
           D = \mathbb E_s\, \delta^\top \tilde F \delta / d .

With ``fisher="identity"`` (DeFlow) :math:`\tilde F = I` and :math:`D = \text{mean}(\delta^2)`
exactly, so ``target_divergence`` means the same in both. :math:`\tfrac12\delta^\top F\delta` is
the second-order KL between the displaced and the base distribution: directions in which the
behaviour density is flat can move far, steep ones cannot.

Losses (summed, one backward):

.. math::
   L_Q &= \mathbb E\,(Q_\phi(s, a) - r - \gamma m\, \text{agg}_k Q_{\bar\phi,k}(s', a'))^2 \\
   L_\pi &= L_{bc}(\beta) + \text{sg}(\alpha) D - \mathbb E\, \bar Q(s, \text{clip}(a_b + \delta))
            - \log\alpha\,(\text{sg}(D) - D_{target})

Gradient routing: the Q term reaches only :math:`\theta` (critic parameters detached, :math:`a_b`
is a stop-gradient sample), the flow learns only from :math:`L_{bc}`, the critic only from
:math:`L_Q`, :math:`\log\alpha` only from its dual term (SAC-style ascent on the budget).

Cost: every update integrates the ODE for the batch, the next observations and the K Fisher
samples -- all :math:`(K + 2) B` rows in *one* network call per Euler step.

Choosing ``target_divergence`` on a new task (rule, not tuned on evaluation seeds): keep the
reference's D4RL value 0.001 and normalise the Q term by :math:`\text{sg}(\mathbb E|Q|)`
(``normalize_q_loss``), as FiDec's own OGBench scripts do on every state-based task (per-task
values: ``agentlab.reproduce.tables.offline.rules``). The same values are used for DeFlow, so the two
differ only in the metric.

Deviation from the reference JAX code: the diagnostic ``mse`` metric (which costs a fourth ODE
integration per update in the reference) is not computed. Otherwise the update is the reference's
(``benchmarks/parity``: losses, gradients and parameters after 3 updates agree to float32
rounding, for DeFlow and FiDec; ``results/parity/``).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any, Literal

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
    flow_score,
    make_adam,
    td_target,
)
from agentlab.agents.loops import train_offline
from agentlab.config import help_field


@dataclasses.dataclass(frozen=True)
class FiDecConfig(FlowActorCriticConfig):
    fisher: Literal["flow", "identity"] = help_field("flow", "metric of the divergence: flow Fisher (FiDec) or identity "
                                                              "(DeFlow)")
    num_fisher_samples: int = help_field(4, "K: flow samples per state for the Fisher estimate (paper scripts: 8)")
    fisher_t: float = help_field(0.95, "t_f: interpolation time at which the score is read")
    fisher_t_width: float = help_field(0.0, "if > 0, t_f ~ U[fisher_t - width, fisher_t] (paper scripts: 0.90/0.05)")
    fisher_score: Literal["proxy", "exact"] = help_field("proxy", "score estimate: v/(1-t) (reference) or the exact "
                                                                  "linear-path score (t v - x)/(1-t)")
    fisher_damping: float = help_field(1e-3, "lambda added to F's diagonal before trace normalisation")
    use_lagrange: bool = help_field(True, "learn alpha by dual ascent on the divergence budget")
    alpha: float = help_field(10.0, "initial (use_lagrange) or fixed weight of the divergence")
    target_divergence: float = help_field(0.001, "divergence budget D_target (reference: 0.001 D4RL, 0.01 large mazes)")


@dataclasses.dataclass(frozen=True)
class DeFlowConfig(FiDecConfig):
    fisher: Literal["flow", "identity"] = help_field("identity", "metric of the divergence: identity = DeFlow")


class FiDecAgent(FlowActorCritic):
    def __init__(self, config: FiDecConfig, spaces: dict[str, Any]):
        super().__init__(spaces)
        self.config = config
        od, ad = self.obs_dim, self.act_dim
        self.flow = VelocityField(od, ad, config.hidden, config.activation)
        self.delta = ConditionedMLP(od, ad, config.hidden, ad, time_input=False, activation=config.activation)
        self.critic = EnsembleCritic(od, ad, config.critic_hidden, config.num_critics, config.critic_layer_norm,
                                     config.activation)
        self.target_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.log_alpha = torch.nn.Parameter(torch.tensor(math.log(config.alpha)), requires_grad=config.use_lagrange)
        self.opt = make_adam(self, config.lr)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"all": self.opt}

    # -- the Fisher metric ------------------------------------------------------------------------
    @torch.no_grad()
    def fisher_matrix(self, obs: torch.Tensor, samples: torch.Tensor,
                      h_obs: torch.Tensor | None = None) -> torch.Tensor:
        """Trace-normalised Fisher estimate per state: ``obs [B, o]``, ``samples [B*K, d]`` -> ``[B, d, d]``.

        ``samples`` are K flow samples per state (state-major: rows ``b*K .. b*K+K-1`` belong to
        state ``b``). One batched velocity call for all of them; ``h_obs [B*K, h]``: the flow's
        first-layer observation features of the repeated states, if the caller has them.
        """
        cfg = self.config
        bk, d = samples.shape
        k = bk // obs.shape[0]
        if cfg.fisher_t_width > 0:
            lo, hi = max(1e-3, cfg.fisher_t - cfg.fisher_t_width), min(0.999, cfg.fisher_t)
            t = self.draw("fisher_t", (bk, 1), samples, lo, hi)
        else:
            t = torch.full((bk, 1), cfg.fisher_t, device=samples.device, dtype=samples.dtype)
        x = torch.lerp(self.draw("fisher_x0", (bk, d), samples), samples, t)
        if h_obs is None:
            h_obs = self.flow.obs_features(obs.repeat_interleave(k, 0))
        v = self.flow.forward_from_features(h_obs, x, t)
        g = flow_score(v, x, t, cfg.fisher_score).view(-1, k, d)
        fisher = torch.einsum("bki,bkj->bij", g, g) / k  # symmetric by construction
        fisher.diagonal(dim1=-2, dim2=-1).add_(cfg.fisher_damping)
        trace_per_dim = fisher.diagonal(dim1=-2, dim2=-1).mean(-1).clamp_min(1e-6)
        return fisher / trace_per_dim[:, None, None]

    @staticmethod
    def divergence(delta: torch.Tensor, fisher: torch.Tensor | None) -> torch.Tensor:
        """:math:`D = \\text{mean}_b\\, \\delta^\\top \\tilde F \\delta / d`; ``fisher=None`` means F = I."""
        if fisher is None:
            return delta.pow(2).mean()
        quad = torch.einsum("bi,bij,bj->b", delta, fisher, delta)
        return quad.mean() / delta.shape[-1]

    # -- acting ------------------------------------------------------------------------------------
    @torch.no_grad()
    def policy_actions(self, obs_n: torch.Tensor) -> torch.Tensor:
        """Actions in [-1, 1] for *normalised* observations."""
        base = self.flow.sample(obs_n, torch.randn(obs_n.shape[0], self.act_dim, device=obs_n.device),
                                self.config.flow_steps)
        return (base + self.delta(obs_n, base)).clamp(-1.0, 1.0)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        # Flow policies are stochastic by construction (the noise selects the mode), as in the references.
        return self.scale_action(self.policy_actions(self.obs_norm(obs)))

    # -- learning ----------------------------------------------------------------------------------
    def losses(self, batch: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """The loss terms (summed by :meth:`update`) and diagnostics, before any backward pass."""
        cfg = self.config
        obs = self.obs_norm(batch["observations"])
        next_obs = self.obs_norm(batch["next_observations"])
        actions = self.unscale_action(batch["actions"]).clamp(-ACTION_CLIP, ACTION_CLIP)
        b, d = actions.shape
        k = cfg.num_fisher_samples if cfg.fisher == "flow" else 0

        with torch.no_grad():
            # One Euler integration for base actions (B), next actions (B) and K Fisher samples per state.
            ode_obs = torch.cat([obs, next_obs, obs.repeat_interleave(k, 0)]) if k else torch.cat([obs, next_obs])
            if self.injected_draws is None:
                ode_noise = torch.randn(ode_obs.shape[0], d, device=obs.device)
            else:
                ode_noise = torch.cat([self.draw(n, (), obs) for n in ("z", "next_z", "fisher_z")[: 3 if k else 2]])
            h_ode = self.flow.obs_features(ode_obs)  # shared by the ODE and the Fisher velocity call
            samples = self.flow.sample(ode_obs, ode_noise, cfg.flow_steps, h_obs=h_ode)
            base, next_base, fisher_samples = samples.split([b, b, k * b])
            next_actions = (next_base + self.delta(next_obs, next_base)).clamp(-1.0, 1.0)
            next_q = EnsembleCritic.aggregate(self.target_critic(next_obs, next_actions), cfg.q_agg)
            target = td_target(batch["rewards"], batch["masks"], next_q, cfg.discount)
            fisher = self.fisher_matrix(obs, fisher_samples, h_ode[2 * b:]) if k else None

        q_data = self.critic(obs, actions)
        critic_loss = (q_data - target).pow(2).mean()

        bc_loss = flow_matching_loss(self.flow, obs, actions, self.draw("bc_x0", (b, d), obs),
                                     self.draw("bc_t", (b, 1), obs, 0.0, 1.0))

        delta = self.delta(obs, base)
        div = self.divergence(delta, fisher)
        q_pi = self.critic.frozen(obs, (base + delta).clamp(-1.0, 1.0)).mean(0)
        q_loss = -q_pi.mean()
        if cfg.normalize_q_loss:
            q_loss = q_loss / q_pi.abs().mean().detach().clamp_min(1e-6)
        alpha = self.log_alpha.exp()
        terms = {"critic": critic_loss, "bc": bc_loss, "divergence": alpha.detach() * div, "q": q_loss}
        if cfg.use_lagrange:
            terms["alpha"] = -self.log_alpha * (div.detach() - cfg.target_divergence)
        info = {"train/critic_loss": critic_loss, "train/bc_flow_loss": bc_loss, "train/divergence": div,
                "train/q_loss": q_loss, "train/q_mean": q_data.mean(), "train/alpha": alpha,
                "train/delta_mse": delta.pow(2).mean()}
        return terms, {k_: v.detach() for k_, v in info.items()}


def train(ctx: TrainContext) -> dict[str, float]:
    return train_offline(ctx)


#: CPU sizes. ``small``: 2x256 networks everywhere (the table budget); ``smoke``: tiny, for tests.
PRESETS = {
    "small": {"hidden": [256, 256], "critic_hidden": [256, 256], "normalize_q_loss": True},
    "smoke": {"hidden": [32, 32], "critic_hidden": [32, 32], "flow_steps": 4, "num_fisher_samples": 2},
}

ALGORITHM = Algorithm(name="fidec", config_cls=FiDecConfig, train=train, build_agent=FiDecAgent, kind="offline",
                      description="Fisher Decorator: flow BC + residual map under a flow-Fisher divergence budget",
                      presets=PRESETS)

#: DeFlow = FiDec with F = I (the same agent; only the config default differs)
DEFLOW = Algorithm(name="deflow", config_cls=DeFlowConfig, train=train, build_agent=FiDecAgent, kind="offline",
                   description="DeFlow: FiDec with the identity metric (isotropic L2 budget on delta)",
                   presets=PRESETS)
