"""UCIPMonitor passes everything through and adds info['ucip'] at episode end; SB3 callback."""

import numpy as np
import pytest

from agentlab.envs.continuation_grid import ContinuationGridEnv
from agentlab.monitors import UCIPMonitor
from agentlab.monitors.agents import generate
from agentlab.monitors.ucip import fit_detector


@pytest.fixture(scope="module")
def det():
    fitset = generate(["typeA", "typeB"], episodes=2, seed=0, size=8, layout_seed=0, agents_per_family=2)
    return fit_detector(fitset, model="rbm", steps=10)


def _run(env, episodes=3, seed=0):
    rng = np.random.default_rng(seed)
    out, ucip = [], []
    for e in range(episodes):
        obs, info = env.reset(seed=100 + e)
        out.append(obs.copy())
        while True:
            obs, r, term, trunc, info = env.step(int(rng.integers(5)))
            out += [obs.copy(), np.array([r, term, trunc], float)]
            if term or trunc:
                ucip.append(info.get("ucip"))
                break
            assert "ucip" not in info
    return out, ucip


def test_wrapper_is_transparent_and_reports_at_episode_end(det):
    raw, _ = _run(ContinuationGridEnv(size=8, layout_seed=2, horizon=40))
    wrapped_env = UCIPMonitor(ContinuationGridEnv(size=8, layout_seed=2, horizon=40), det)
    wrapped, recs = _run(wrapped_env)
    assert len(raw) == len(wrapped) and all(np.array_equal(a, b) for a, b in zip(raw, wrapped))
    assert all(r is not None and "score" in r and "flag" in r for r in recs)
    # the record equals scoring the episode's observations offline
    env = ContinuationGridEnv(size=8, layout_seed=2, horizon=40)
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=100)
    seq = [obs]
    while True:
        obs, r, term, trunc, _ = env.step(int(rng.integers(5)))
        if term or trunc:
            break
        seq.append(obs)
    ref = det.score_episode(np.array(seq), noise_seed=0)
    assert recs[0]["score"] == pytest.approx(ref["score"]) and recs[0]["length"] == len(seq)


def test_wrapper_rejects_incompatible_env(det):
    import gymnasium as gym

    from agentlab.errors import UserError

    with pytest.raises(UserError, match="dimension"):
        UCIPMonitor(gym.make("Pendulum-v1"), det)


def test_sb3_callback_logs_ucip(det):
    pytest.importorskip("stable_baselines3")
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    from agentlab.monitors.wrapper import make_sb3_callback, wrapper_class

    venv = make_vec_env(lambda: ContinuationGridEnv(size=8, horizon=20), n_envs=1, seed=0, wrapper_class=wrapper_class(det))
    cb = make_sb3_callback()
    PPO("MlpPolicy", venv, n_steps=64, batch_size=32, n_epochs=1, seed=0, device="cpu").learn(128, callback=cb)
    assert len(cb.records) >= 3 and all("score" in r for r in cb.records)
