"""A torch-tensor ring buffer for off-policy learners, with per-sample weights.

Transitions live in preallocated tensors on the learner's device, so a batch is one index draw and
one gather per field (no NumPy round trip, no host sync). Every slot carries a weight; the buffer
samples either uniformly over the filled slots or proportionally to the weights. Weighted sampling
draws ``u ~ U[0, total)`` and finds its slot by ``searchsorted`` on the cumulative weights, which
are recomputed lazily, only after the weights changed: ``O(B log N)`` per batch instead of the
``O(N)`` of ``torch.multinomial``.

AILBoost uses the weights for its mixture of past policies (``scale_weights`` then ``add`` with the
new learner's weight); any other user may ignore them. Batches use the keys of
:meth:`agentlab.data.Dataset.sample` (``observations, actions, rewards, next_observations,
terminals, masks``) plus ``indices``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

FIELDS = ("observations", "actions", "rewards", "next_observations", "terminals")


class ReplayBuffer:
    """Ring buffer of ``capacity`` transitions ``(s, a, r, s', terminal)`` with per-sample weights."""

    def __init__(self, capacity: int, obs_dim: int, act_dim: int, device: str | torch.device = "cpu"):
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self.capacity = int(capacity)
        self.obs_dim, self.act_dim = int(obs_dim), int(act_dim)
        self.device = torch.device(device)
        f32 = dict(dtype=torch.float32, device=self.device)
        self.observations = torch.zeros(self.capacity, self.obs_dim, **f32)
        self.actions = torch.zeros(self.capacity, self.act_dim, **f32)
        self.rewards = torch.zeros(self.capacity, **f32)
        self.next_observations = torch.zeros(self.capacity, self.obs_dim, **f32)
        self.terminals = torch.zeros(self.capacity, **f32)
        self.weights = torch.zeros(self.capacity, dtype=torch.float64, device=self.device)
        self.pos = 0  # next slot to write
        self.size = 0
        self._cumsum: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.size

    # -- writing -------------------------------------------------------------------------------
    def add(self, obs: Any, action: Any, reward: Any, next_obs: Any, terminal: Any, weight: float | Any = 1.0) -> None:
        """Add one transition or a batch of them (leading dimension = batch)."""
        obs = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self.device).reshape(-1, self.obs_dim)
        n = obs.shape[0]
        idx = (torch.arange(n, device=self.device) + self.pos) % self.capacity
        self.observations[idx] = obs
        self.actions[idx] = torch.as_tensor(np.asarray(action, dtype=np.float32), device=self.device).reshape(n, -1)
        self.rewards[idx] = torch.as_tensor(np.asarray(reward, dtype=np.float32), device=self.device).reshape(n)
        self.next_observations[idx] = torch.as_tensor(np.asarray(next_obs, dtype=np.float32),
                                                      device=self.device).reshape(n, -1)
        self.terminals[idx] = torch.as_tensor(np.asarray(terminal, dtype=np.float32), device=self.device).reshape(n)
        self.weights[idx] = torch.as_tensor(np.asarray(weight, dtype=np.float64), device=self.device).reshape(-1)
        self.pos = (self.pos + n) % self.capacity
        self.size = min(self.size + n, self.capacity)
        self._cumsum = None

    def add_step(self, obs: np.ndarray, action: np.ndarray, reward: float, next_obs: np.ndarray, terminal: bool,
                 weight: float = 1.0) -> None:
        """Add a single transition (the hot path of an online loop: no batching overhead)."""
        i = self.pos
        self.observations[i] = torch.from_numpy(np.asarray(obs, dtype=np.float32))
        self.actions[i] = torch.from_numpy(np.asarray(action, dtype=np.float32))
        self.rewards[i] = float(reward)
        self.next_observations[i] = torch.from_numpy(np.asarray(next_obs, dtype=np.float32))
        self.terminals[i] = float(terminal)
        self.weights[i] = float(weight)
        self.pos = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)
        self._cumsum = None

    # -- weights -------------------------------------------------------------------------------
    def scale_weights(self, factor: float) -> None:
        """Multiply every stored weight by ``factor`` (e.g. ``1 - alpha`` for a boosting round)."""
        self.weights[: self.size].mul_(factor)
        self._cumsum = None

    def set_weights(self, indices: torch.Tensor | slice, value: float | torch.Tensor) -> None:
        self.weights[indices] = value
        self._cumsum = None

    def recent_indices(self, n: int) -> torch.Tensor:
        """Slots of the last ``n`` transitions written (oldest first)."""
        n = min(n, self.size)
        return (torch.arange(self.pos - n, self.pos, device=self.device)) % self.capacity

    # -- sampling ------------------------------------------------------------------------------
    def sample_indices(self, batch_size: int, weighted: bool = False,
                       generator: torch.Generator | None = None) -> torch.Tensor:
        if self.size == 0:
            raise RuntimeError("cannot sample from an empty replay buffer")
        if not weighted:
            return torch.randint(self.size, (batch_size,), device=self.device, generator=generator)
        if self._cumsum is None:
            self._cumsum = torch.cumsum(self.weights[: self.size], 0)
        total = self._cumsum[-1]
        u = torch.rand(batch_size, dtype=torch.float64, device=self.device, generator=generator) * total
        # right=True skips zero-weight slots (their cumsum equals the previous one)
        return torch.searchsorted(self._cumsum, u, right=True).clamp_(max=self.size - 1)

    def sample(self, batch_size: int, weighted: bool = False,
               generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """A batch of ``batch_size`` transitions (with replacement), uniform or by weight."""
        idx = self.sample_indices(batch_size, weighted, generator)
        return self.gather(idx)

    def gather(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        batch = {k: getattr(self, k).index_select(0, idx) for k in FIELDS}
        batch["masks"] = 1.0 - batch["terminals"]
        batch["indices"] = idx
        return batch

    # -- checkpointing -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        n = self.size
        # store only the filled part, in chronological order of slots (ring position kept)
        return {**{k: getattr(self, k)[:n].clone() for k in (*FIELDS, "weights")}, "pos": self.pos, "size": n}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        n = int(state["size"])
        for k in (*FIELDS, "weights"):
            getattr(self, k)[:n] = state[k].to(self.device)
        self.size, self.pos = n, int(state["pos"])
        self._cumsum = None
