"""A Minari dataset created with Minari's own API in a temporary store loads offline."""

from __future__ import annotations

import numpy as np
import pytest

from agentlab.data import load


def test_minari_dataset_built_with_create_dataset_from_buffers(tmp_path, monkeypatch):
    minari = pytest.importorskip("minari")
    from minari.data_collector import EpisodeBuffer

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "store"))
    from agentlab.envs import make_env

    env = make_env("Pendulum-v1")
    rng = np.random.default_rng(0)
    buffers, lengths = [], (7, 5)
    for ep, length in enumerate(lengths):
        obs, _ = env.reset(seed=ep)
        o, a, r, te, tr = [obs], [], [], [], []
        for t in range(length):
            act = rng.uniform(-2, 2, 1).astype(np.float32)
            obs, rew, term, trunc, _ = env.step(act)
            o.append(obs)
            a.append(act)
            r.append(rew)
            te.append(term)
            tr.append(t == length - 1)
        buffers.append(EpisodeBuffer(id=ep, observations=np.array(o), actions=np.array(a), rewards=np.array(r),
                                     terminations=np.array(te), truncations=np.array(tr), infos={}))
    minari.create_dataset_from_buffers("test/pendulum/random-v0", buffers, env=env.spec,
                                       algorithm_name="random", ref_min_score=-1000.0, ref_max_score=0.0,
                                       observation_space=env.observation_space, action_space=env.action_space)

    ds = load("minari:test/pendulum/random-v0")
    assert len(ds) == sum(lengths) and ds.num_episodes() == 2
    assert ds.obs_dim == 3 and ds.act_dim == 1
    first = buffers[0]
    np.testing.assert_allclose(ds.observations[:7], first.observations[:-1], rtol=1e-6)
    np.testing.assert_allclose(ds.next_observations[:7], first.observations[1:], rtol=1e-6)
    np.testing.assert_allclose(ds.rewards[:7], first.rewards, rtol=1e-6)
    assert ds.timeouts[6] and ds.timeouts[-1] and not ds.terminals.any()
    assert ds.metadata["ref_min_score"] == -1000.0 and ds.metadata["ref_max_score"] == 0.0
    assert ds.metadata["env_id"] == "Pendulum-v1"
