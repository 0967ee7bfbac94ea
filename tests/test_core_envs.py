"""Every registered environment id passes Gymnasium's check_env and follows its API."""

import warnings

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from agentlab.envs import make_env, registered_ids


@pytest.mark.parametrize("env_id", registered_ids())
def test_check_env(env_id):
    env = make_env(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(env.unwrapped, skip_render_check=True)
    env.close()


@pytest.mark.parametrize("env_id", ["dmc/cartpole-swingup", "agentlab/pointmaze-umaze-v0"])
def test_flat_float32_observations_and_truncation(env_id):
    env = make_env(env_id)
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.float32 and obs.ndim == 1
    assert env.observation_space.contains(obs)
    steps, term, trunc = 0, False, False
    while not (term or trunc):
        obs, r, term, trunc, info = env.step(env.action_space.sample())
        steps += 1
    # both tasks end only at their time limit: truncated, never terminated
    assert trunc and not term
    assert steps == env.spec.max_episode_steps


def test_pointmaze_observation_holds_goal():
    env = make_env("agentlab/pointmaze-umaze-v0")
    obs, _ = env.reset(seed=3)
    goal = env.unwrapped.env.goal if hasattr(env.unwrapped, "env") else None
    assert obs.shape == (6,)
    if goal is not None:
        np.testing.assert_allclose(obs[4:], goal, atol=1e-5)


def test_evaluate_reuses_given_environments():
    """``evaluate(envs=...)`` gives the same episodes as fresh environments and leaves them open."""
    import numpy as np

    from agentlab.envs import make_env
    from agentlab.evaluation import evaluate

    class Constant:
        def act(self, obs):
            return np.full((len(obs), 1), 0.3, np.float32)

    import gymnasium as gym

    class CountResets(gym.Wrapper):
        resets = 0

        def reset(self, **kwargs):
            self.resets += 1
            return self.env.reset(**kwargs)

    env = CountResets(make_env("Pendulum-v1"))
    fresh = evaluate(Constant(), "Pendulum-v1", episodes=3, seed=5)
    reused = evaluate(Constant(), "Pendulum-v1", episodes=3, seed=5, envs=[env])
    assert fresh == reused and env.resets == 3  # one env, reset once per episode
    env.reset(seed=0)  # still open
    env.close()
