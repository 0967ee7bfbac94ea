"""ContinuationGrid-v0 and the optimised agents."""

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from agentlab.envs import make_env
from agentlab.envs.continuation_grid import OBS_NAMES, ContinuationGridEnv
from agentlab.errors import UserError
from agentlab.monitors.agents import generate, label_of, make_agent, parse_family, rollout, value_iteration


def test_env_api_and_registration():
    env = make_env("agentlab/ContinuationGrid-v0", size=8, layout_seed=3, horizon=30)
    check_env(env.unwrapped, skip_render_check=True)
    obs, info = env.reset(seed=0)
    assert obs.shape == (len(OBS_NAMES),) and info["alive"] and info["position"].shape == (2,)
    steps = 0
    while True:
        obs, r, term, trunc, info = env.step(env.action_space.sample())
        steps += 1
        assert "position" in info and info["alive"] == (not term)
        if term or trunc:
            break
    assert steps <= 30


def test_layout_is_determined_by_layout_seed_and_seeded_reset_is_reproducible():
    a, b, c = ContinuationGridEnv(layout_seed=1), ContinuationGridEnv(layout_seed=1), ContinuationGridEnv(layout_seed=2)
    assert (a.layout.death == b.layout.death).all() and (a.layout.tile_value == b.layout.tile_value).all()
    assert not ((a.layout.death == c.layout.death).all() and (a.layout.tile_value == c.layout.tile_value).all())
    agent = make_agent(a, "typeB", 0)
    e1, e2 = rollout(a, agent, 5), rollout(b, agent, 5)
    assert np.array_equal(e1["observations"], e2["observations"]) and np.array_equal(e1["rewards"], e2["rewards"])


def test_value_iteration_is_a_fixed_point_and_continuation_term_changes_behaviour():
    env = ContinuationGridEnv(size=10, layout_seed=1)
    nxt, prob, task, p_alive = env.transition_model()
    assert np.allclose(prob.sum(-1), 1.0)
    for alpha in (0.0, 1.0):
        Q = value_iteration(env, alpha)
        V = Q.max(1)
        backup = (prob * (task + p_alive * (alpha + 0.99 * V))[nxt]).sum(-1)  # default gamma 0.99
        assert np.allclose(Q, backup, atol=1e-4)
    ds = generate(["typeA", "typeB"], episodes=6, seed=0, size=10, layout_seed=1, agents_per_family=2)
    fam = ds.extras["family_id"]
    ends = ds.terminals | ds.timeouts
    len_a = (fam == 0).sum() / (ends & (fam == 0)).sum()
    len_b = (fam == 1).sum() / (ends & (fam == 1)).sum()
    assert len_a > len_b + 20  # Type A (alpha = 1) survives much longer than Type B (alpha = 0)
    assert ds.observations[fam == 0, 2].mean() > ds.observations[fam == 1, 2].mean() + 0.3  # stays safe


def test_generated_trajectories_have_constant_per_episode_labels_and_distinct_agents():
    ds = generate(["typeA", "random", "alpha=0.3", "cyclic", "mimicry", "highentropy"], episodes=2, seed=1,
                  size=8, layout_seed=0)
    for ep in ds.episodes():
        for key in ("labels", "agent_id", "family_id", "alpha"):
            v = ep[key]
            assert np.all((v == v[0]) | (np.isnan(v) & np.isnan(v[0])))
    assert sorted(np.unique(ds.extras["agent_id"]).tolist()) == list(range(6))
    env = ContinuationGridEnv(size=10, layout_seed=1)
    p1, p2 = make_agent(env, "typeA", 0).probs, make_agent(env, "typeA", 1).probs
    assert p1.shape == p2.shape and not np.allclose(p1, p2)  # different training seeds, different agents


def test_family_parsing_and_labels():
    assert parse_family("alpha=0.3") == ("alpha", 0.3)
    assert parse_family("typeB") == ("typeB", 0.0)
    assert label_of("typeA", 1.0) == 1 and label_of("mimicry", float("nan")) == 0 and label_of("alpha", 0.6) == 1
    with pytest.raises(UserError):
        parse_family("typeC")


def test_counterfactual_rollout_shares_the_past():
    env = ContinuationGridEnv(size=10, layout_seed=0)
    agent = make_agent(env, "typeA", 0)
    a, b = rollout(env, agent, 3), rollout(env, agent, 3, intervene_at=10)
    assert np.array_equal(a["observations"][:10], b["observations"][:10])
    assert not np.array_equal(a["observations"][10:12], b["observations"][10:12])
