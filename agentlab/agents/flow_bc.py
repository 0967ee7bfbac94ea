r"""Flow-matching behaviour cloning (BC-flow): the behaviour policy of FQL and FiDec on its own.

.. math::  x_t = (1 - t) x_0 + t x_1, \quad
           \min_\beta \mathbb E_{(s, x_1) \sim \mathcal D,\, x_0 \sim \mathcal N(0, I),\, t \sim U[0,1]}
           \| v_\beta(s, x_t, t) - (x_1 - x_0) \|^2

Acting integrates :math:`\dot x = v_\beta(s, x, t)` from :math:`x_0 \sim \mathcal N(0, I)` with
``flow_steps`` Euler steps and clips to [-1, 1]. Unlike a Gaussian or MSE policy it reproduces
multimodal action distributions (both modes, in their proportions, little mass in between),
which is what the offline-RL methods built on it rely on. The baseline that shows what the
critic adds.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import torch

from agentlab.agents import Algorithm, TrainContext
from agentlab.agents.base import Agent
from agentlab.agents.flow import VelocityField, flow_matching_loss, make_adam
from agentlab.agents.loops import train_offline
from agentlab.config import AlgoConfig, help_field


@dataclasses.dataclass(frozen=True)
class FlowBCConfig(AlgoConfig):
    hidden: list[int] = help_field([512, 512, 512, 512], "hidden sizes of the velocity network")
    activation: Literal["gelu_tanh", "gelu", "relu", "silu", "tanh", "elu"] = help_field(
        "gelu_tanh", "hidden activation (reference: jax.nn.gelu = the tanh approximation; gelu = exact erf)")
    lr: float = help_field(3e-4, "Adam learning rate")
    batch_size: int = help_field(256, "minibatch size")
    flow_steps: int = help_field(10, "Euler steps of the sampler")
    grad_clip: float = help_field(0.0, "global gradient-norm clip (0 = off)")


class FlowBCAgent(Agent):
    def __init__(self, config: FlowBCConfig, spaces: dict[str, Any]):
        super().__init__(spaces)
        self.config = config
        self.flow = VelocityField(self.obs_dim, self.act_dim, config.hidden, config.activation)
        self.opt = make_adam(self, config.lr)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"all": self.opt}

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        # Always sampled: the noise picks the mode (a fixed noise would not represent the distribution).
        obs_n = self.obs_norm(obs)
        noise = torch.randn(obs_n.shape[0], self.act_dim, device=obs_n.device)
        return self.scale_action(self.flow.sample(obs_n, noise, self.config.flow_steps))

    def losses(self, batch: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        obs = self.obs_norm(batch["observations"])
        bc_loss = flow_matching_loss(self.flow, obs, self.unscale_action(batch["actions"]))
        return {"bc": bc_loss}, {"train/bc_flow_loss": bc_loss.detach()}

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        terms, info = self.losses(batch)
        self.opt.zero_grad(set_to_none=True)
        terms["bc"].backward()
        if self.config.grad_clip > 0:
            info["train/grad_norm"] = torch.nn.utils.clip_grad_norm_(self.opt.param_groups[0]["params"],
                                                                     self.config.grad_clip, foreach=True)
        self.opt.step()
        return info


def train(ctx: TrainContext) -> dict[str, float]:
    return train_offline(ctx)


ALGORITHM = Algorithm(name="flow_bc", config_cls=FlowBCConfig, train=train, build_agent=FlowBCAgent, kind="offline",
                      description="flow-matching behaviour cloning (linear path, Euler sampler)",
                      presets={"small": {"hidden": [256, 256]}, "smoke": {"hidden": [32, 32], "flow_steps": 4}})
