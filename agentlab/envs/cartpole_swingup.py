"""``agentlab/CartpoleSwingup-v0``: DeepMind Control's cart-pole swing-up on classic cart-pole physics.

The cart-pole of ``dmc/cartpole-swingup`` -- cart 1 kg, pole 0.1 kg and 1 m long, force ``10 u``
with ``u`` in [-1, 1], pole starting hanging down, observation ``[x, cos th, sin th, x', th']`` and
dm_control's smooth reward ``upright * centred * small_control * small_velocity`` -- integrated
with the frictionless cart-pole equations (Barto et al. 1983; semi-implicit Euler, 5 x 10 ms
sub-steps per 50 ms control step), 200 control steps per episode. The physics and the reward are
written for NumPy and torch alike, so PETS's planner (:mod:`agentlab.models.tasks`) uses the very
same functions on batches of predicted states.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
import torch

# -- dm_control-style tolerance ------------------------------------------------------------------


def _gaussian_tolerance(x: torch.Tensor, margin: float) -> torch.Tensor:
    """``dm_control.utils.rewards.tolerance(x, bounds=(0, 0), margin, sigmoid='gaussian',
    value_at_margin=0.1)``: 1 at 0, 0.1 at ``|x| = margin``."""
    return torch.pow(torch.tensor(0.1, dtype=x.dtype, device=x.device), (x / margin).pow(2))


def cartpole_swingup_reward(obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
    """dm_control cartpole swing-up (smooth) reward of the state after the step, observation
    ``[x, cos th, sin th, x', th']``, control ``u`` in [-1, 1]."""
    upright = (next_obs[..., 1] + 1) / 2
    centered = (1 + _gaussian_tolerance(next_obs[..., 0], 2.0)) / 2
    u = act[..., 0].clamp(-1, 1)
    small_control = (4 + (1 - u.pow(2)).clamp_min(0)) / 5  # quadratic sigmoid, value 0 at margin 1
    small_velocity = (1 + _gaussian_tolerance(next_obs[..., 4], 5.0)) / 2
    return upright * centered * small_control * small_velocity


# -- exact dynamics (NumPy or torch: ``lib``) -------------------------------------------------------------
CARTPOLE = {"gravity": 9.81, "cart_mass": 1.0, "pole_mass": 0.1, "half_length": 0.5, "force": 10.0,
            "dt": 0.01, "substeps": 5}


def _cartpole_substeps(x: Any, th: Any, xd: Any, thd: Any, u: Any, lib: Any) -> tuple[Any, Any, Any, Any]:
    p = CARTPOLE
    total = p["cart_mass"] + p["pole_mass"]
    pml = p["pole_mass"] * p["half_length"]
    force = p["force"] * lib.clip(u, -1.0, 1.0)
    for _ in range(p["substeps"]):
        s, c = lib.sin(th), lib.cos(th)
        # th = 0 is upright; equations of Barto, Sutton & Anderson (1983), frictionless
        tmp = (force + pml * thd * thd * s) / total
        thacc = (p["gravity"] * s - c * tmp) / (p["half_length"] * (4.0 / 3.0 - p["pole_mass"] * c * c / total))
        xacc = tmp - pml * thacc * c / total
        xd = xd + p["dt"] * xacc  # semi-implicit Euler: velocities first
        thd = thd + p["dt"] * thacc
        x = x + p["dt"] * xd
        th = th + p["dt"] * thd
    return x, th, xd, thd


class CartpoleSwingupEnv(gym.Env):
    """Cart-pole swing-up with dm_control's masses, observation and reward (see the module docstring)."""

    metadata = {"render_modes": []}

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (5,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self._state = np.zeros(4)

    def _obs(self) -> np.ndarray:
        x, th, xd, thd = self._state
        return np.array([x, math.cos(th), math.sin(th), xd, thd], dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        noise = 0.01 * self.np_random.standard_normal(4)
        self._state = np.array([0.0, math.pi, 0.0, 0.0]) + noise  # hanging down, as in dm_control
        return self._obs(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        u = float(np.clip(np.asarray(action, dtype=np.float64).reshape(-1)[0], -1.0, 1.0))
        x, th, xd, thd = _cartpole_substeps(*self._state, u, np)
        th = math.atan2(math.sin(th), math.cos(th))  # keep the angle bounded; the obs is (cos, sin)
        self._state = np.array([x, th, xd, thd])
        obs = self._obs()
        r = float(cartpole_swingup_reward(torch.from_numpy(obs[None]), torch.tensor([[u]]),
                                          torch.from_numpy(obs[None]))[0])
        return obs, r, False, False, {}
