"""What every agent module shares: spaces, the observation normaliser, checkpoint state."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from agentlab.nn import Normalizer


def spaces_of(obs_dim: int, act_dim: int, act_low: Any = -1.0, act_high: Any = 1.0) -> dict[str, Any]:
    """The ``spaces`` record written to ``config.yaml`` (enough to rebuild an agent)."""
    low = np.broadcast_to(np.asarray(act_low, dtype=np.float64), (act_dim,))
    high = np.broadcast_to(np.asarray(act_high, dtype=np.float64), (act_dim,))
    return {"obs_dim": int(obs_dim), "act_dim": int(act_dim), "act_low": low.tolist(), "act_high": high.tolist()}


def spaces_from_env(env_id: str) -> dict[str, Any]:
    from agentlab.envs import env_spaces

    obs_space, act_space = env_spaces(env_id)
    return spaces_of(int(np.prod(obs_space.shape)), int(np.prod(act_space.shape)), act_space.low, act_space.high)


class Agent(nn.Module):
    """Base of agent modules.

    Subclasses build their networks in ``__init__(config, spaces)``, implement
    ``update(batch) -> dict[str, Tensor]`` (no host sync: return tensors, the loop converts them
    when it logs) and ``act(obs, deterministic) -> Tensor`` on raw observations. Actions are
    produced in [-1, 1] and rescaled to the env's bounds by :meth:`scale_action`.
    """

    def __init__(self, spaces: dict[str, Any]):
        super().__init__()
        self.obs_dim = int(spaces["obs_dim"])
        self.act_dim = int(spaces["act_dim"])
        self.obs_norm = Normalizer(self.obs_dim)
        low = torch.as_tensor(spaces.get("act_low", [-1.0] * self.act_dim), dtype=torch.float32)
        high = torch.as_tensor(spaces.get("act_high", [1.0] * self.act_dim), dtype=torch.float32)
        self.register_buffer("act_scale", (high - low) / 2)
        self.register_buffer("act_center", (high + low) / 2)
        self.register_buffer("steps_done", torch.zeros((), dtype=torch.long))

    def scale_action(self, a: torch.Tensor) -> torch.Tensor:
        """[-1, 1] -> env bounds."""
        return a * self.act_scale + self.act_center

    def unscale_action(self, a: torch.Tensor) -> torch.Tensor:
        """env bounds -> [-1, 1]."""
        return (a - self.act_center) / self.act_scale

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {}

    def checkpoint_state(self) -> dict[str, Any]:
        return {"agent": self.state_dict(), "optimizers": {k: o.state_dict() for k, o in self.optimizers().items()}}

    def load_checkpoint_state(self, state: dict[str, Any]) -> None:
        self.load_state_dict(state["agent"])
        for k, o in self.optimizers().items():
            if k in state.get("optimizers", {}):
                o.load_state_dict(state["optimizers"][k])
