r"""Behaviour cloning: a deterministic MLP policy regressed onto the dataset's actions.

.. math::  \min_\theta \; \mathbb{E}_{(s, a) \sim \mathcal{D}} \| \tanh(\pi_\theta(s)) - a \|^2

The baseline for offline RL and imitation (``agentlab train bc --dataset D`` or ``--demos F``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from agentlab.agents import Algorithm, TrainContext
from agentlab.agents.base import Agent
from agentlab.agents.loops import train_offline
from agentlab.config import AlgoConfig, help_field
from agentlab.nn import MLP


@dataclasses.dataclass(frozen=True)
class BCConfig(AlgoConfig):
    hidden: list[int] = help_field([256, 256], "hidden layer sizes of the policy MLP")
    lr: float = help_field(3e-4, "Adam learning rate")
    batch_size: int = help_field(256, "minibatch size")
    weight_decay: float = help_field(0.0, "Adam weight decay")


class BCAgent(Agent):
    def __init__(self, config: BCConfig, spaces: dict[str, Any]):
        super().__init__(spaces)
        self.config = config
        self.actor = MLP(self.obs_dim, config.hidden, self.act_dim, activation="relu")
        self.opt = torch.optim.Adam(self.actor.parameters(), lr=config.lr, weight_decay=config.weight_decay)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"actor": self.opt}

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        target = self.unscale_action(batch["actions"]).clamp(-1, 1)
        pred = torch.tanh(self.actor(self.obs_norm(batch["observations"])))
        loss = (pred - target).pow(2).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"train/bc_loss": loss.detach()}

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        return self.scale_action(torch.tanh(self.actor(self.obs_norm(obs))))


def train(ctx: TrainContext) -> dict[str, float]:
    if ctx.dataset is None and ctx.demos is not None:
        ctx.dataset = ctx.demos  # imitation use: clone the (first --num-demos) demonstrations
    return train_offline(ctx)


ALGORITHM = Algorithm(name="bc", config_cls=BCConfig, train=train, build_agent=BCAgent, kind="offline",
                      description="behaviour cloning (MLP, squared error on tanh-squashed actions)",
                      presets={"smoke": {"hidden": [64, 64]}})
