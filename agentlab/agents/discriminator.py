r"""The adversarial-imitation discriminator shared by DAC and AILBoost (one component, configurable).

A discriminator maps a state-action pair to a scalar :math:`D(s, a)`. It is trained on expert pairs
against agent pairs (the agent's side may be weighted), and its output is the imitation reward the
SAC learner maximises. Every choice that makes two discriminators differ is a field of
:class:`DiscriminatorConfig`:

=====================  =========================================================================
field                  meaning
=====================  =========================================================================
``disc_hidden``        hidden sizes of the MLP ``(s, a) -> ... -> 1``
``disc_activation``    hidden activation (``tanh``, ``relu``, ...)
``disc_output``        ``linear``: an unbounded logit; ``tanh``: bounded in [-1, 1] (the AILBoost
                       code's discriminator, for both its AILBoost and its DAC)
``disc_loss``          ``js`` (GAN / binary cross-entropy, expert = 1):
                       :math:`E_E[\mathrm{softplus}(-D)] + E_B[\mathrm{softplus}(D)]`;
                       ``rkl`` (reverse KL, AILBoost's): :math:`E_E[e^{-D}] + E_B[D]`;
                       ``wasserstein``: :math:`E_B[D] - E_E[D]`. For ``js`` and ``rkl`` the optimum
                       (unbounded output) is :math:`D^* = \log(d_E / d_B)`, so the reward
                       :math:`D(s, a)` is the same quantity for both losses (``js``: the logit,
                       i.e. DAC's :math:`\log D - \log(1 - D)`)
``grad_penalty``       weight :math:`\lambda` of the WGAN-GP penalty
                       :math:`E_{\hat x}(\|\nabla_{\hat x} D(\hat x)\|_2 - 1)^2` on random
                       expert/agent interpolates
``disc_input_norm``    ``none``: raw ``(s, a)``; ``expert``: standardised with the mean and std
                       (floored at 0.1) of the demonstrations' pairs, fixed at the start
``disc_lr``            Adam learning rate
``disc_batch_size``    expert and agent samples per update (each)
=====================  =========================================================================

What DAC and AILBoost do *with* the discriminator differs, and lives in their modules: which agent
samples it sees (DAC: uniform over the whole replay; AILBoost: the boosted mixture's weighted
replay), and when it is updated and read (:mod:`agentlab.agents.dac`).

With absorbing states the observation's last dimension is the absorbing indicator, and the action
taken in the absorbing state is masked to zero (its reward depends on the state only).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from agentlab.config import help_field
from agentlab.errors import UserError
from agentlab.nn import MLP

OUTPUTS = ("linear", "tanh")
LOSSES = ("js", "rkl", "wasserstein")
INPUT_NORMS = ("none", "expert")
STD_FLOOR = 0.1


@dataclasses.dataclass(frozen=True)
class DiscriminatorConfig:
    """The discriminator's fields (a mixin of :class:`agentlab.agents.dac.DACConfig`)."""

    disc_hidden: list[int] = help_field([256, 256], "discriminator hidden sizes (DAC: 2x256 tanh)")
    disc_activation: str = help_field("tanh", "discriminator hidden activation")
    disc_output: str = help_field("linear", "discriminator output: linear (logit) or tanh (bounded in [-1, 1])")
    disc_loss: str = help_field("js", "discriminator loss: js (GAN/BCE), rkl (E_E[exp(-D)] + E_B[D]), wasserstein")
    disc_lr: float = help_field(1e-4, "discriminator Adam learning rate")
    disc_batch_size: int = help_field(512, "expert and agent samples per discriminator update (each)")
    grad_penalty: float = help_field(10.0, "gradient-penalty weight lambda")
    disc_input_norm: str = help_field("none", "discriminator input normalisation: none or expert (demo mean/std)")

    def validate_discriminator(self) -> None:
        if self.disc_output not in OUTPUTS:
            raise UserError(f"disc_output must be linear or tanh, got {self.disc_output!r}")
        if self.disc_loss not in LOSSES:
            raise UserError(f"disc_loss must be js, rkl or wasserstein, got {self.disc_loss!r}")
        if self.disc_input_norm not in INPUT_NORMS:
            raise UserError(f"disc_input_norm must be none or expert, got {self.disc_input_norm!r}")
        if self.disc_batch_size < 1 or self.grad_penalty < 0 or self.disc_lr <= 0:
            raise UserError("disc_batch_size must be >= 1, grad_penalty >= 0 and disc_lr > 0")


DISC_FIELDS = tuple(f.name for f in dataclasses.fields(DiscriminatorConfig))


def discriminator_settings(config: Any) -> dict[str, Any]:
    """The discriminator fields of any config that includes :class:`DiscriminatorConfig`."""
    return {k: getattr(config, k) for k in DISC_FIELDS}


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


class Discriminator(torch.nn.Module):
    """``(s, a) -> scalar``: MLP, optional input standardisation, linear or tanh-bounded output."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: list[int], activation: str = "tanh",
                 output: str = "linear", absorbing: bool = False, input_norm: str = "none"):
        super().__init__()
        if output not in OUTPUTS:
            raise UserError(f"disc_output must be linear or tanh, got {output!r}")
        if input_norm not in INPUT_NORMS:
            raise UserError(f"disc_input_norm must be none or expert, got {input_norm!r}")
        self.net = MLP(obs_dim + act_dim, hidden, 1, activation=activation)
        self.output, self.absorbing, self.input_norm = output, absorbing, input_norm
        self.register_buffer("in_mean", torch.zeros(obs_dim + act_dim))
        self.register_buffer("in_std", torch.ones(obs_dim + act_dim))

    def pairs(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Raw ``[s, a]`` (the absorbing state's action masked to zero)."""
        if self.absorbing:
            act = act * (1.0 - obs[:, -1:])
        return torch.cat([obs, act], -1)

    @torch.no_grad()
    def fit_input_norm(self, obs: torch.Tensor, act: torch.Tensor) -> None:
        """Fix the standardisation from the demonstrations (a no-op with ``input_norm='none'``)."""
        if self.input_norm == "expert":
            x = self.pairs(obs, act)
            self.in_mean.copy_(x.mean(0))
            self.in_std.copy_(x.std(0).clamp(min=STD_FLOOR) if len(x) > 1 else torch.ones_like(self.in_std))

    def features(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """The network's input (what the gradient penalty differentiates against)."""
        x = self.pairs(obs, act)
        return (x - self.in_mean) / self.in_std if self.input_norm == "expert" else x

    def from_features(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x).squeeze(-1)
        return torch.tanh(out) if self.output == "tanh" else out

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return self.from_features(self.features(obs, act))


def build_discriminator(config: DiscriminatorConfig, obs_dim: int, act_dim: int, absorbing: bool) -> Discriminator:
    """The one constructor both DAC and AILBoost use."""
    return Discriminator(obs_dim, act_dim, list(config.disc_hidden), config.disc_activation, config.disc_output,
                         absorbing, config.disc_input_norm)


def discriminator_step(disc: Discriminator, opt: torch.optim.Optimizer, config: DiscriminatorConfig,
                       expert: dict[str, torch.Tensor], agent: dict[str, torch.Tensor],
                       w_agent: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """One update: ``loss(D(expert), D(agent); w_agent) + lambda * GP``; returns detached diagnostics."""
    x_e = disc.features(expert["observations"], expert["actions"])
    x_a = disc.features(agent["observations"], agent["actions"])
    d = disc.from_features(torch.cat([x_e, x_a], 0))
    d_e, d_a = d[: len(x_e)], d[len(x_e):]
    loss = disc_loss(config.disc_loss, d_e, d_a, w_agent)
    gp = gradient_penalty(disc.from_features, x_e, x_a) if config.grad_penalty > 0 else torch.zeros((), device=d.device)
    opt.zero_grad(set_to_none=True)
    (loss + config.grad_penalty * gp).backward()
    opt.step()
    return {"train/disc_loss": loss.detach(), "train/grad_penalty": gp.detach(),
            "train/d_expert": d_e.detach().mean(), "train/d_agent": d_a.detach().mean()}

