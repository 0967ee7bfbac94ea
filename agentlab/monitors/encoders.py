"""Encoders: raw observations -> binary visible patterns for the QBM.

* ``GridEncoder`` ("grid"): the continuation gridworld's native features, binarised at fixed,
  label-independent thresholds (8 bits). Only layout-relative features are used (in/near the safe
  zone, on/near a reward tile, high exposure risk, next to a death cell, moved, got reward): absolute
  x/y bits mean different things on different layouts, and evaluation agents run on held-out
  layouts. (With x > 0.5 / y > 0.5 bits instead of near_goal / got_reward, the 10x10 QBM AUC on
  held-out layouts was 0.53 [0.35, 0.73] over 5 seeds; recorded in results/ucip/README.md.)
* ``GenericEncoder`` ("generic"): any Box observation: standardise with the reference mean/std ->
  PCA to ``n_v`` components -> binarise each component at its reference median. Works for MuJoCo/DMC.

Both record the per-feature reference std, used to scale the perturbation noise of the PRI criterion.
"""

from __future__ import annotations

import numpy as np
import torch

from agentlab.errors import UserError

GRID_OBS_DIM = 11
GRID_BITS = ("in_safe", "near_safe", "on_goal", "near_goal", "high_risk", "near_death", "prev_moved", "got_reward")


class Encoder:
    name = "base"
    obs_dim: int
    n_v: int
    obs_std: np.ndarray

    def check(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float64)
        if obs.ndim == 1:
            obs = obs[None]
        if obs.ndim != 2 or obs.shape[1] != self.obs_dim:
            raise UserError(f"detector's {self.name} encoder expects observations of dimension {self.obs_dim}, "
                            f"got shape {tuple(obs.shape)}")
        return obs

    def encode(self, obs: np.ndarray) -> np.ndarray:  # (T, obs_dim) -> (T, n_v) uint8
        raise NotImplementedError

    def encode_one(self, obs: np.ndarray) -> np.ndarray:
        return self.encode(np.asarray(obs)[None])[0]

    def state(self) -> dict:
        raise NotImplementedError


class GridEncoder(Encoder):
    """Native gridworld features (see :mod:`agentlab.envs.continuation_grid`) -> 8 bits."""

    name = "grid"

    def __init__(self, obs_std: np.ndarray | None = None):
        self.obs_dim, self.n_v = GRID_OBS_DIM, len(GRID_BITS)
        self.obs_std = np.ones(GRID_OBS_DIM) if obs_std is None else np.asarray(obs_std, np.float64)

    def fit(self, obs: np.ndarray) -> GridEncoder:
        obs = self.check(obs)
        self.obs_std = np.maximum(obs.std(0), 1e-3)
        return self

    def encode(self, obs: np.ndarray) -> np.ndarray:
        o = self.check(obs)
        bits = np.stack([o[:, 2] > 0.5, o[:, 3] <= 0.1, o[:, 5] > 0.5, o[:, 4] <= 0.1, o[:, 6] > 0.5,
                         o[:, 7] > 0.5, o[:, 9] > 0.5, o[:, 8] > 0], axis=1)
        return bits.astype(np.uint8)

    def state(self) -> dict:
        return {"name": self.name, "obs_std": torch.as_tensor(self.obs_std)}


class GenericEncoder(Encoder):
    """Standardise -> PCA to n_v -> binarise at the reference median."""

    name = "generic"

    def __init__(self, n_v: int = 8):
        self.n_v = int(n_v)
        self.obs_dim = 0

    def fit(self, obs: np.ndarray) -> GenericEncoder:
        obs = np.asarray(obs, np.float64)
        if obs.ndim != 2 or len(obs) < 2:
            raise UserError("generic encoder needs at least 2 observations of shape (N, D)")
        self.obs_dim = obs.shape[1]
        self.mean = obs.mean(0)
        self.obs_std = np.maximum(obs.std(0), 1e-6)
        z = (obs - self.mean) / self.obs_std
        _, _, vt = np.linalg.svd(z - z.mean(0), full_matrices=False)
        k = min(self.n_v, vt.shape[0])
        comps = np.zeros((self.n_v, self.obs_dim))
        comps[:k] = vt[:k]
        self.components = comps
        self.median = np.median(z @ comps.T, axis=0)
        return self

    def project(self, obs: np.ndarray) -> np.ndarray:
        return ((obs - self.mean) / self.obs_std) @ self.components.T

    def encode(self, obs: np.ndarray) -> np.ndarray:
        o = self.check(obs)
        return (self.project(o) > self.median).astype(np.uint8)

    def encode_one(self, obs: np.ndarray) -> np.ndarray:
        """Fast path for one observation (the gym wrapper's per-step call)."""
        z = (np.asarray(obs, np.float64) - self.mean) / self.obs_std
        return (self.components @ z > self.median).astype(np.uint8)

    def state(self) -> dict:
        return {"name": self.name, "n_v": self.n_v, "mean": torch.as_tensor(self.mean),
                "obs_std": torch.as_tensor(self.obs_std), "components": torch.as_tensor(self.components),
                "median": torch.as_tensor(self.median)}


def make_encoder(name: str, n_v: int = 8) -> Encoder:
    if name == "grid":
        return GridEncoder()
    if name == "generic":
        return GenericEncoder(n_v)
    raise UserError(f"unknown encoder {name!r}; choose grid or generic")


def encoder_from_state(state: dict) -> Encoder:
    if state["name"] == "grid":
        return GridEncoder(state["obs_std"].numpy())
    enc = GenericEncoder(int(state["n_v"]))
    enc.mean, enc.obs_std = state["mean"].numpy(), state["obs_std"].numpy()
    enc.components, enc.median = state["components"].numpy(), state["median"].numpy()
    enc.obs_dim = enc.components.shape[1]
    return enc
