"""Environment registration and construction.

* Gymnasium MuJoCo v5 locomotion (``Hopper-v5``, ``HalfCheetah-v5``, ``Walker2d-v5``, ``Ant-v5``) and
  the small control tasks (``InvertedPendulum-v5``, ``Pendulum-v1``) as-is.
* DeepMind Control through shimmy under short ids ``dmc/<domain>-<task>`` with flattened float32
  observations. dm_control's time limit ends an episode as ``truncated``; a step with discount 0
  is ``terminated`` (Gymnasium semantics, as shimmy reports them).
* PointMaze from gymnasium-robotics with a flat observation ``[x, y, vx, vy, goal_x, goal_y]``:
  ``agentlab/pointmaze-{umaze,medium,large}-v0`` (sparse reward) and ``...-dense-v0``.
* ``agentlab/ContinuationGrid-v0``, the UCIP gridworld (``agentlab.envs.continuation_grid``).
"""

from __future__ import annotations

import difflib
import warnings
from typing import Any

import gymnasium as gym
import numpy as np

from agentlab.errors import UserError

DMC_TASKS = [
    "cartpole-swingup", "cartpole-balance", "walker-walk", "walker-stand", "walker-run", "cheetah-run",
    "ball_in_cup-catch", "reacher-easy", "reacher-hard", "finger-spin", "hopper-hop", "quadruped-walk",
    "pendulum-swingup",
]
MUJOCO_IDS = ["Hopper-v5", "HalfCheetah-v5", "Walker2d-v5", "Ant-v5", "InvertedPendulum-v5", "Pendulum-v1"]
MAZES = {"umaze": "UMaze", "medium": "Medium", "large": "Large"}

_registered = False


class FlatPointMaze(gym.ObservationWrapper):
    """PointMaze with a flat observation: position (2), velocity (2), goal (2)."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(6,), dtype=np.float32)

    def observation(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return np.concatenate([obs["observation"], obs["desired_goal"]]).astype(np.float32)


def _make_pointmaze(maze: str, dense: bool = False, **kwargs: Any) -> gym.Env:
    import gymnasium_robotics

    gym.register_envs(gymnasium_robotics)
    name = f"PointMaze_{MAZES[maze]}{'Dense' if dense else ''}-v3"
    env = gym.make(name, **kwargs).unwrapped
    return FlatPointMaze(env)


def _make_dmc(task: str, **kwargs: Any) -> gym.Env:
    import shimmy

    gym.register_envs(shimmy)
    env = gym.make(f"dm_control/{task}-v0", **kwargs).unwrapped
    env = gym.wrappers.FlattenObservation(env)
    return gym.wrappers.TransformObservation(env, lambda o: o.astype(np.float32),
                                             gym.spaces.Box(-np.inf, np.inf, env.observation_space.shape, np.float32))


def register_all() -> None:
    """Register agentlab's ids with Gymnasium (idempotent)."""
    global _registered
    if _registered:
        return
    _registered = True
    for task in DMC_TASKS:
        gym.register(id=f"dmc/{task}", entry_point=_make_dmc, kwargs={"task": task}, max_episode_steps=1000)
    steps = {"umaze": 300, "medium": 600, "large": 800}
    for maze in MAZES:
        for dense in (False, True):
            gym.register(id=f"agentlab/pointmaze-{maze}{'-dense' if dense else ''}-v0", entry_point=_make_pointmaze,
                         kwargs={"maze": maze, "dense": dense}, max_episode_steps=steps[maze])
    # string entry points: registering imports nothing (the env modules load on first make)
    if "agentlab/ContinuationGrid-v0" not in gym.registry:
        gym.register(id="agentlab/ContinuationGrid-v0", entry_point="agentlab.envs.continuation_grid:ContinuationGridEnv")
    if "agentlab/CartpoleSwingup-v0" not in gym.registry:
        gym.register(id="agentlab/CartpoleSwingup-v0", entry_point="agentlab.envs.cartpole_swingup:CartpoleSwingupEnv",
                     max_episode_steps=200)


def registered_ids() -> list[str]:
    register_all()
    ours = [k for k in gym.registry if k.startswith(("dmc/", "agentlab/"))]
    return MUJOCO_IDS + sorted(ours)


def make_env(env_id: str, **kwargs: Any) -> gym.Env:
    """``gymnasium.make`` with agentlab's ids registered and a one-line error for unknown ids."""
    register_all()
    if env_id.startswith("ogbench/") and env_id not in gym.registry:
        from agentlab.envs.ogbench import register_env

        register_env(env_id)  # OGBench's single-task envs, e.g. ogbench/cube-single-singletask-task2-v0
    if env_id not in gym.registry:
        close = difflib.get_close_matches(env_id, registered_ids(), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else " (see `agentlab envs list`)"
        raise UserError(f"unknown environment id {env_id!r}{hint}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return gym.make(env_id, **kwargs)


def env_spaces(env_id: str) -> tuple[gym.Space, gym.Space]:
    env = make_env(env_id)
    try:
        return env.observation_space, env.action_space
    finally:
        env.close()


def max_episode_steps(env_id: str) -> int | None:
    register_all()
    return gym.spec(env_id).max_episode_steps
