"""Environment wrappers.

:class:`AbsorbingStateWrapper` (Kostrikov et al. 2019, "Discriminator-Actor-Critic"): adversarial
imitation with early termination is biased when a terminal transition simply stops bootstrapping,
because the learned reward then implicitly rewards (or punishes) ending an episode. DAC appends an
indicator dimension to the observation and turns every *terminal* transition into a transition
into an absorbing state ``[0, ..., 0, 1]`` that loops on itself; the reward of the absorbing state
is learned like any other. Time-limit truncations are *not* terminations and stay unchanged.

With the wrapper, an episode that terminates at step ``t`` looks like::

    (s_t, a_t) -> s_abs                  terminated=False, truncated=False (env reward r_t)
    (s_abs, a) -> s_abs                  terminated=False, truncated=True  (env reward 0)

so an off-policy learner stores both DAC transitions ``s -> s_abs`` and ``s_abs -> s_abs`` and
bootstraps through them (neither is a terminal); the episode then ends by truncation. One extra
environment step is spent per termination.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


def absorbing_state(obs_dim: int) -> np.ndarray:
    """The absorbing state of a wrapped space with ``obs_dim`` dimensions (indicator included)."""
    s = np.zeros(obs_dim, dtype=np.float32)
    s[-1] = 1.0
    return s


def add_indicator(obs: np.ndarray) -> np.ndarray:
    """Append the (zero) absorbing indicator to one observation or a batch."""
    obs = np.asarray(obs, dtype=np.float32)
    return np.concatenate([obs, np.zeros(obs.shape[:-1] + (1,), dtype=np.float32)], -1)


class AbsorbingStateWrapper(gym.Wrapper):
    """Observation gets an absorbing indicator; terminations become transitions into the absorbing state."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        space = env.observation_space
        if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
            raise ValueError("AbsorbingStateWrapper needs a flat Box observation space")
        low = np.append(np.asarray(space.low, dtype=np.float32), 0.0).astype(np.float32)
        high = np.append(np.asarray(space.high, dtype=np.float32), 1.0).astype(np.float32)
        self.observation_space = gym.spaces.Box(low, high, dtype=np.float32)
        self._absorbing = absorbing_state(self.observation_space.shape[0])
        self._in_absorbing = False

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self._in_absorbing = False
        return add_indicator(obs), info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._in_absorbing:
            # the absorbing self-loop: ends the episode by truncation (the learner bootstraps)
            self._in_absorbing = False
            return self._absorbing.copy(), 0.0, False, True, {"absorbing": True}
        obs, reward, terminated, truncated, info = self.env.step(action)
        if terminated:
            self._in_absorbing = True
            info = dict(info, terminal_observation=add_indicator(obs))
            return self._absorbing.copy(), float(reward), False, False, info
        return add_indicator(obs), float(reward), False, bool(truncated), info


def absorbing_dataset(dataset: Any) -> Any:
    """A demonstrations :class:`~agentlab.data.Dataset` in the absorbing-state representation.

    Observations get the zero indicator; each terminal transition ``s -> s'`` becomes
    ``s -> s_abs`` followed by an ``s_abs -> s_abs`` transition with a zero action (actions at the
    absorbing state are ignored by the discriminator); neither is terminal. Truncations are kept.
    """
    from agentlab.data.dataset import Dataset

    n, d = dataset.observations.shape
    obs, nobs = add_indicator(dataset.observations), add_indicator(dataset.next_observations)
    term = dataset.terminals
    absorb = absorbing_state(d + 1)
    nobs[term] = absorb
    rows = np.flatnonzero(term)
    # insert one absorbing self-loop after every terminal transition
    insert_at = rows + 1
    k = len(rows)
    loop_obs = np.repeat(absorb[None], k, 0)
    obs = np.insert(obs, insert_at, loop_obs, axis=0)
    nobs = np.insert(nobs, insert_at, loop_obs, axis=0)
    actions = np.insert(dataset.actions, insert_at, np.zeros((k, dataset.act_dim), np.float32), axis=0)
    rewards = np.insert(dataset.rewards, insert_at, np.zeros(k, np.float32))
    timeouts = np.insert(dataset.timeouts, insert_at, np.ones(k, bool))  # the loop ends the episode
    terminals = np.zeros(n + k, bool)
    extras = {key: np.insert(v, insert_at, v[rows], axis=0) for key, v in dataset.extras.items()}
    return Dataset(obs, actions, rewards, nobs, terminals, timeouts, dict(dataset.metadata), extras)


class ActionRepeat(gym.Wrapper):
    """Repeat each action ``k`` times and sum the rewards (DeepMind Control practice).

    Stops early when the episode ends inside the repeat. ``info["env_steps"]`` holds how many
    underlying steps were taken.
    """

    def __init__(self, env: gym.Env, k: int):
        super().__init__(env)
        if k < 1:
            raise ValueError("action repeat must be at least 1")
        self.k = int(k)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        total, n = 0.0, 0
        while True:
            obs, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            n += 1
            if terminated or truncated or n == self.k:
                break
        info = dict(info, env_steps=n)
        return obs, total, terminated, truncated, info
