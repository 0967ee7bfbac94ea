"""The offline dataset type shared by every offline and imitation algorithm."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agentlab.errors import UserError

CORE_KEYS = ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts")


def dataset_dir() -> Path:
    """Where agentlab keeps datasets: ``$AGENTLAB_DATA`` or ``~/.cache/agentlab/datasets``."""
    import os

    return Path(os.environ.get("AGENTLAB_DATA", Path.home() / ".cache" / "agentlab" / "datasets"))


@dataclasses.dataclass
class Dataset:
    """Transitions ``(s, a, r, s', terminal, timeout)`` as flat NumPy arrays, plus metadata.

    ``terminals[i]`` marks a true environment termination after transition ``i`` (no bootstrap),
    ``timeouts[i]`` a truncation (episode ends, bootstrap allowed). Episodes are the runs of
    transitions between ends. ``extras`` holds further per-transition arrays (``infos/qpos``,
    ``labels``, ...); ``metadata`` holds env id, reference scores and provenance.
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_observations: np.ndarray
    terminals: np.ndarray
    timeouts: np.ndarray
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
    extras: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        self.observations = np.asarray(self.observations, dtype=np.float32)
        self.actions = np.asarray(self.actions, dtype=np.float32)
        self.rewards = np.asarray(self.rewards, dtype=np.float32).reshape(-1)
        self.next_observations = np.asarray(self.next_observations, dtype=np.float32)
        self.terminals = np.asarray(self.terminals).astype(bool).reshape(-1)
        self.timeouts = np.asarray(self.timeouts).astype(bool).reshape(-1)
        if self.observations.ndim == 1:
            self.observations = self.observations[:, None]
            self.next_observations = self.next_observations.reshape(len(self.next_observations), -1)
        if self.actions.ndim == 1:
            self.actions = self.actions[:, None]
        self.validate()
        self._tensors: dict[tuple[str, str], dict[str, torch.Tensor]] = {}

    # -- validation ----------------------------------------------------------------------------
    def validate(self) -> None:
        n = len(self.observations)
        for key in CORE_KEYS:
            arr = getattr(self, key)
            if len(arr) != n:
                raise UserError(f"dataset arrays have different lengths: observations {n}, {key} {len(arr)}")
        if self.next_observations.shape != self.observations.shape:
            raise UserError(f"next_observations shape {self.next_observations.shape} != observations shape "
                            f"{self.observations.shape}")
        for key, arr in self.extras.items():
            if len(arr) != n:
                raise UserError(f"dataset array {key!r} has length {len(arr)}, expected {n}")
        if n == 0:
            raise UserError("dataset has no transitions")

    def invalid_counts(self) -> dict[str, int]:
        """Number of rows with NaN/Inf per float array."""
        out = {}
        for key in ("observations", "actions", "rewards", "next_observations"):
            arr = getattr(self, key)
            with np.errstate(over="ignore", invalid="ignore"):
                if np.isfinite(arr.sum()):  # one cheap pass; NaN/Inf anywhere makes the sum non-finite
                    continue
            bad = ~np.isfinite(arr)
            rows = int(bad.reshape(len(arr), -1).any(1).sum())
            if rows:
                out[key] = rows
        return out

    def checked(self, source: Any, drop_invalid: bool = False) -> Dataset:
        """This dataset if it holds no NaN/Inf; with ``drop_invalid`` a copy without those rows
        (``metadata['dropped_invalid_rows']`` says how many); otherwise a one-line error naming ``source``."""
        bad = self.invalid_counts()
        if not bad:
            return self
        if not drop_invalid:
            counts = ", ".join(f"{k}: {v} rows" for k, v in bad.items())
            raise UserError(f"{source}: NaN/Inf values ({counts}); pass --drop-invalid to drop those rows")
        finite = np.ones(len(self), bool)
        for key in ("observations", "actions", "rewards", "next_observations"):
            arr = getattr(self, key)
            finite &= np.isfinite(arr).reshape(len(arr), -1).all(1)
        ds = self.drop_rows(finite)
        ds.metadata["dropped_invalid_rows"] = int((~finite).sum())
        return ds

    def drop_rows(self, keep: np.ndarray) -> Dataset:
        keep = np.asarray(keep, dtype=bool)
        return Dataset(self.observations[keep], self.actions[keep], self.rewards[keep], self.next_observations[keep],
                       self.terminals[keep], self.timeouts[keep], dict(self.metadata),
                       {k: v[keep] for k, v in self.extras.items()})

    # -- shape ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.observations)

    @property
    def obs_dim(self) -> int:
        return int(self.observations.shape[1])

    @property
    def act_dim(self) -> int:
        return int(self.actions.shape[1])

    @property
    def env_id(self) -> str | None:
        return self.metadata.get("env_id")

    def episode_ends(self) -> np.ndarray:
        """Indices (exclusive) where episodes end; the last transition always ends one."""
        ends = np.flatnonzero(self.terminals | self.timeouts) + 1
        if len(ends) == 0 or ends[-1] != len(self):
            ends = np.append(ends, len(self))
        return ends

    def episode_slices(self) -> list[slice]:
        ends = self.episode_ends()
        starts = np.concatenate([[0], ends[:-1]])
        return [slice(int(s), int(e)) for s, e in zip(starts, ends)]

    def episodes(self) -> Iterator[dict[str, np.ndarray]]:
        """Yield one dict of arrays per episode (core keys and extras)."""
        for sl in self.episode_slices():
            ep = {k: getattr(self, k)[sl] for k in CORE_KEYS}
            ep.update({k: v[sl] for k, v in self.extras.items()})
            yield ep

    def episode_returns(self) -> np.ndarray:
        return np.array([float(self.rewards[sl].sum()) for sl in self.episode_slices()])

    def num_episodes(self) -> int:
        return len(self.episode_ends())

    def select_episodes(self, n: int) -> Dataset:
        """The first ``n`` episodes (used for ``--num-demos``)."""
        slices = self.episode_slices()
        if n > len(slices):
            raise UserError(f"requested {n} episodes but the dataset has only {len(slices)}")
        keep = np.zeros(len(self), dtype=bool)
        for sl in slices[:n]:
            keep[sl] = True
        return self.drop_rows(keep)

    # -- statistics ----------------------------------------------------------------------------
    def observation_stats(self, eps: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
        return self.observations.mean(0), self.observations.std(0).clip(min=eps)

    def reward_stats(self) -> dict[str, float]:
        return {"mean": float(self.rewards.mean()), "std": float(self.rewards.std()),
                "min": float(self.rewards.min()), "max": float(self.rewards.max())}

    def stats(self) -> dict[str, Any]:
        from agentlab.data.scores import normalized_score

        rets = self.episode_returns()
        out: dict[str, Any] = {
            "transitions": len(self), "episodes": self.num_episodes(), "obs_dim": self.obs_dim,
            "act_dim": self.act_dim, "return_mean": float(rets.mean()), "return_std": float(rets.std()),
            "return_min": float(rets.min()), "return_max": float(rets.max()),
            "terminals": int(self.terminals.sum()), "timeouts": int(self.timeouts.sum()),
            "action_min": float(self.actions.min()), "action_max": float(self.actions.max()),
        }
        try:
            out["normalized_return_mean"] = float(normalized_score(self, rets).mean())
        except UserError:
            pass
        return out

    # -- sampling ------------------------------------------------------------------------------
    def tensors(self, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
        """All transitions as tensors on ``device`` (cached: converted once)."""
        device = torch.device(device)
        key = (str(device), "core")
        if key not in self._tensors:
            t = {
                "observations": torch.from_numpy(self.observations),
                "actions": torch.from_numpy(self.actions),
                "rewards": torch.from_numpy(self.rewards),
                "next_observations": torch.from_numpy(self.next_observations),
                "terminals": torch.from_numpy(self.terminals.astype(np.float32)),
            }
            t["masks"] = 1.0 - t["terminals"]
            self._tensors[key] = {k: v.to(device) for k, v in t.items()}
        return self._tensors[key]

    def sample(self, batch_size: int, device: str | torch.device = "cpu",
               generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """A uniform batch (with replacement) as tensors: one index draw, one gather per key."""
        t = self.tensors(device)
        idx = torch.randint(len(self), (batch_size,), device=t["rewards"].device, generator=generator)
        return {k: v.index_select(0, idx) for k, v in t.items()}
