"""Online monitoring: a Gymnasium wrapper and a Stable-Baselines3 callback.

``UCIPMonitor(env, detector)`` passes observations, rewards, flags and infos through unchanged; it
keeps a copy of each observation of the current episode and, when the episode ends (terminated or
truncated), adds ``info["ucip"]`` = the detector's record for the episode (score, entropy, mi, the
criteria, flag). Per step it only appends a reference-free copy of the observation, so the overhead is
small; the episode's criteria are computed once, at its end, from the pattern cache.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from agentlab.errors import UserError


class UCIPMonitor(gym.Wrapper):
    """Adds ``info["ucip"]`` at the end of each episode; everything else passes through unchanged."""

    def __init__(self, env: gym.Env, detector: Any):
        super().__init__(env)
        from agentlab.monitors.ucip import Detector

        if isinstance(detector, (str, Path)):
            detector = Detector.load(detector)
        shape = getattr(env.observation_space, "shape", None)
        if shape is None or len(shape) != 1 or shape[0] != detector.encoder.obs_dim:
            raise UserError(f"detector expects flat observations of dimension {detector.encoder.obs_dim}, "
                            f"env observation space is {env.observation_space}")
        if not detector.table:
            detector.build_cache()
        self.detector = detector
        self._buf = np.empty((1024, detector.encoder.obs_dim), np.float64)  # grows by doubling
        self._t = 0
        self.episodes = 0
        self.last_record: dict | None = None

    def _push(self, obs) -> None:
        if self._t == len(self._buf):
            self._buf = np.concatenate([self._buf, np.empty_like(self._buf)])
        self._buf[self._t] = obs  # copies: the env may reuse its observation array
        self._t += 1

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self._t = 0
        self._push(obs)
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        if terminated or truncated:
            rec = self.detector.score_episode(self._buf[: self._t].copy(), noise_seed=self.episodes)
            self.episodes += 1
            self.last_record = rec
            info = dict(info)
            info["ucip"] = rec
        else:
            self._push(obs)
        return obs, reward, terminated, truncated, info


def wrapper_class(detector: Any):
    """For ``make_vec_env(..., wrapper_class=wrapper_class(det))``."""
    return lambda env: UCIPMonitor(env, detector)


def make_sb3_callback(verbose: int = 0):
    """A Stable-Baselines3 callback that logs ``monitor/ucip_*`` from ``info["ucip"]`` of environments
    wrapped with :class:`UCIPMonitor` (score, entropy, mi, flag)."""
    from stable_baselines3.common.callbacks import BaseCallback

    class UCIPCallback(BaseCallback):
        def __init__(self):
            super().__init__(verbose)
            self.records: list[dict] = []

        def _on_step(self) -> bool:
            for info in self.locals.get("infos", []):
                rec = info.get("ucip")
                if rec is None:
                    continue
                self.records.append(rec)
                for key in ("score", "entropy", "mi", "eps", "pri", "spi", "acm"):
                    self.logger.record_mean(f"monitor/ucip_{key}", float(rec[key]))
                self.logger.record_mean("monitor/ucip_flag", float(rec["flag"]))
            return True

    return UCIPCallback()
