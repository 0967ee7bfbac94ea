"""The policy users get back from ``agentlab.load(run_dir)``."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


class Policy:
    """``act(obs)`` for a single observation ``[obs_dim]`` or a batch ``[B, obs_dim]``.

    Wraps an agent module whose ``act(obs_tensor, deterministic)`` takes *raw* observations: the
    observation normaliser lives inside the agent and is saved with it, so a reloaded policy
    behaves exactly like the trained one.
    """

    def __init__(self, agent: torch.nn.Module, device: str | torch.device = "cpu", deterministic: bool = True):
        self.agent = agent.eval()
        self.device = torch.device(device)
        self.deterministic = deterministic
        self.obs_dim: int = getattr(agent, "obs_dim", None)  # type: ignore[assignment]

    @torch.no_grad()
    def act(self, obs: Any) -> np.ndarray:
        x = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self.device)
        single = x.dim() == 1
        if single:
            x = x.unsqueeze(0)
        a = self.agent.act(x, deterministic=self.deterministic)
        a = a.detach().cpu().numpy()
        return a[0] if single else a

    def reset(self, num_envs: int, seed: int | None = None) -> None:
        """Called at the start of a batch of evaluation episodes (mixtures draw members here)."""
        hook = getattr(self.agent, "reset_episodes", None)
        if hook is not None:
            hook(num_envs, seed)

    def __call__(self, obs: Any) -> np.ndarray:
        return self.act(obs)
