"""Online monitoring: a Gymnasium wrapper and a Stable-Baselines3 callback.

``UCIPMonitor(env, detector)`` passes observations, rewards, flags and infos through unchanged; it
keeps a copy of each observation of the current episode and, when the episode ends (terminated or
truncated), adds ``info["ucip"]`` = the detector's record for the episode (score, entropy, mi, the
criteria, flag). Per step it only appends a reference-free copy of the observation, so the overhead is
small; the episode's criteria are computed once, at its end, from the pattern cache.

An episode can also end *outside* the wrapper (a ``TimeLimit`` or another wrapper around it sets
``truncated``); the wrapper never sees that flag. Such an episode is scored when the next ``reset``
arrives: its record is returned in the reset ``info["ucip_previous"]`` (with ``"ended_outside":
True``) and kept in ``last_record``. Put ``UCIPMonitor`` outermost to get ``info["ucip"]`` on the
final step itself.

Episodes shorter than 4 steps have too few windows for EPS (and under 2 steps for PRI): those criteria
are NaN (undefined), the gate does not veto on them, and the SB3 callback leaves them out of its
means instead of turning the logged mean into NaN.
"""

from __future__ import annotations

from collections import deque
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
        self._pending = False  # steps taken in an episode that has not been scored
        self.episodes = 0
        self.last_record: dict | None = None

    def _push(self, obs) -> None:
        if self._t == len(self._buf):
            self._buf = np.concatenate([self._buf, np.empty_like(self._buf)])
        self._buf[self._t] = obs  # copies: the env may reuse its observation array
        self._t += 1

    def _score(self, ended_outside: bool = False) -> dict:
        # an episode ended outside has also stored its final next-observation, which an episode that
        # ends here never stores: drop it, so both cases score the same observations
        n = self._t - 1 if ended_outside else self._t
        rec = self.detector.score_episode(self._buf[:n].copy(), noise_seed=self.episodes)
        if ended_outside:
            rec["ended_outside"] = True
        self.episodes += 1
        self.last_record = rec
        self._pending = False
        return rec

    def reset(self, **kwargs):
        previous = self._score(ended_outside=True) if self._pending else None
        obs, info = self.env.reset(**kwargs)
        self._t = 0
        self._push(obs)
        if previous is not None:
            info = {**info, "ucip_previous": previous}
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        if terminated or truncated:
            info = {**info, "ucip": self._score()}
        else:
            self._push(obs)
            self._pending = True
        return obs, reward, terminated, truncated, info


def wrapper_class(detector: Any):
    """For ``make_vec_env(..., wrapper_class=wrapper_class(det))``."""
    return lambda env: UCIPMonitor(env, detector)


LOGGED = ("score", "entropy", "mi", "eps", "pri", "spi", "acm")


def log_record(logger, rec: dict) -> int:
    """``record_mean`` of each finite criterion of ``rec`` (NaN = too short to judge: left out, so
    the logged mean stays finite) and of the flag; returns the number of criteria left out."""
    skipped = 0
    for key in LOGGED:
        val = float(rec[key])
        if np.isfinite(val):
            logger.record_mean(f"monitor/ucip_{key}", val)
        else:
            skipped += 1
    logger.record_mean("monitor/ucip_flag", float(rec["flag"]))
    return skipped


def make_sb3_callback(verbose: int = 0, max_records: int = 1000):
    """A Stable-Baselines3 callback that logs ``monitor/ucip_*`` from ``info["ucip"]`` of environments
    wrapped with :class:`UCIPMonitor` (score, entropy, mi, criteria, flag). ``records`` keeps the last
    ``max_records`` episode records (a rolling window; ``n_episodes`` counts all). Episodes that ended
    in a wrapper outside the monitor arrive through the vectorised env's reset infos
    (``info["ucip_previous"]``) and are logged too."""
    from stable_baselines3.common.callbacks import BaseCallback

    if max_records < 1:
        raise UserError(f"max_records must be >= 1, got {max_records}")

    class UCIPCallback(BaseCallback):
        def __init__(self):
            super().__init__(verbose)
            self.records: deque[dict] = deque(maxlen=max_records)
            self.n_episodes = 0
            self.n_short = 0  # episodes with an undefined (NaN) criterion

        def _take(self, rec: dict) -> None:
            self.records.append(rec)
            self.n_episodes += 1
            self.n_short += log_record(self.logger, rec) > 0
            self.logger.record("monitor/ucip_episodes", self.n_episodes)

        def _on_step(self) -> bool:
            infos = self.locals.get("infos", [])
            dones = self.locals.get("dones", [False] * len(infos))
            reset_infos = getattr(self.training_env, "reset_infos", None)
            for i, info in enumerate(infos):
                rec = info.get("ucip")
                if rec is not None:
                    self._take(rec)
                if dones[i] and reset_infos is not None and i < len(reset_infos):
                    prev = reset_infos[i].get("ucip_previous")
                    if prev is not None:
                        self._take(prev)
            return True

    return UCIPCallback()
