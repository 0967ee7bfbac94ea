"""AILBoost: mixture weights, weighted replay sampling, the ensemble policy, a smoke run."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from agentlab.agents.ailboost import AILBoostAgent, AILBoostConfig, mixture_update, mixture_weights
from agentlab.agents.base import spaces_of
from agentlab.replay import ReplayBuffer


@pytest.mark.parametrize("rounds", [1, 2, 7, 40])
def test_closed_form_weights_sum_to_one(rounds):
    alpha = 0.05
    w = mixture_weights(rounds, alpha)
    assert w.sum() == pytest.approx(1.0, abs=1e-12)
    for k in range(1, rounds):
        assert w[k] == pytest.approx(alpha * (1 - alpha) ** (rounds - 1 - k))


def _boosted_buffer(round_sizes, alpha, seed=0):
    buf = ReplayBuffer(sum(round_sizes) + 5, 2, 1)
    owner = []
    rng = np.random.default_rng(seed)
    for k, n in enumerate(round_sizes):
        buf.add(rng.normal(size=(n, 2)), rng.normal(size=(n, 1)), np.zeros(n), rng.normal(size=(n, 2)), np.zeros(n))
        mixture_update(buf, buf.recent_indices(n), alpha, first=k == 0)
        owner += [k] * n
    return buf, np.array(owner)


def test_buffer_weights_per_round_match_closed_form():
    sizes = [50, 10, 20, 15, 30, 5, 25]
    alpha = 0.05
    buf, owner = _boosted_buffer(sizes, alpha)
    w = buf.weights[: buf.size].numpy()
    per_round = np.array([w[owner == k].sum() for k in range(len(sizes))])
    np.testing.assert_allclose(per_round, mixture_weights(len(sizes), alpha), rtol=1e-10)
    assert per_round.sum() == pytest.approx(1.0, abs=1e-12)
    # within a round every sample carries the same weight
    for k in range(len(sizes)):
        assert np.ptp(w[owner == k]) < 1e-15


def test_weighted_sampling_frequencies_chi_square():
    sizes = [40, 10, 20, 15, 30, 5, 25]
    alpha = 0.2  # large enough that every round has expected counts >> 5
    buf, owner = _boosted_buffer(sizes, alpha)
    g = torch.Generator().manual_seed(123)
    n = 200_000
    idx = buf.sample_indices(n, weighted=True, generator=g).numpy()
    counts = np.bincount(owner[idx], minlength=len(sizes))
    expected = mixture_weights(len(sizes), alpha) * n
    chi2, p = stats.chisquare(counts, expected)
    assert p > 1e-3, (counts, expected, chi2)
    # and uniform sampling ignores the weights
    idx_u = buf.sample_indices(n, weighted=False, generator=g).numpy()
    counts_u = np.bincount(owner[idx_u], minlength=len(sizes))
    assert stats.chisquare(counts_u, np.array(sizes) / sum(sizes) * n)[1] > 1e-3


def test_weighted_sampling_never_picks_zero_weight_slots():
    buf = ReplayBuffer(10, 1, 1)
    buf.add(np.zeros((6, 1)), np.zeros((6, 1)), np.zeros(6), np.zeros((6, 1)), np.zeros(6),
            weight=np.array([0, 1, 0, 0, 2, 0.0]))
    idx = buf.sample_indices(5000, weighted=True).numpy()
    assert set(np.unique(idx)) == {1, 4}
    assert abs((idx == 4).mean() - 2 / 3) < 0.03


def test_ensemble_weights_members_and_reload():
    cfg = AILBoostConfig(hidden=[16, 16], disc_hidden=[8, 8], alpha=0.1)
    agent = AILBoostAgent(cfg, spaces_of(3, 2))
    for _ in range(4):
        agent.add_member(cfg.alpha)
        with torch.no_grad():
            for p in agent.actor.parameters():
                p.add_(0.5)  # the learner moves on between snapshots
    w = agent.member_weights.numpy()
    np.testing.assert_allclose(w, mixture_weights(4, 0.1), rtol=1e-12)
    obs = torch.randn(5, 3)  # raw observations (the agent adds the absorbing indicator itself)
    # member k acts exactly like the actor had at snapshot k
    agent.reset_episodes(5, seed=0)
    members = agent._episode_members.clone()
    a_mix = agent.act(obs)
    for row, k in enumerate(members.tolist()):
        solo = AILBoostAgent(cfg, spaces_of(3, 2))
        solo.actor.load_state_dict(agent.member_state(k))
        assert torch.allclose(a_mix[row], solo.act(obs[row:row + 1])[0], atol=1e-6)
    # per-episode draws follow the weights
    agent.reset_episodes(20000, seed=1)
    freq = np.bincount(agent._episode_members.numpy(), minlength=4) / 20000
    np.testing.assert_allclose(freq, w, atol=0.015)
    # a checkpoint restores the grown ensemble
    state = agent.state_dict()
    fresh = AILBoostAgent(cfg, spaces_of(3, 2))
    fresh.load_state_dict(state)
    assert fresh.member_params.shape == agent.member_params.shape
    fresh.reset_episodes(5, seed=0)
    assert torch.allclose(fresh.act(obs), a_mix)


def test_ailboost_smoke_run(tmp_path):
    import csv

    from click.testing import CliRunner

    import agentlab
    from agentlab.cli import cli
    from agentlab.envs import env_spaces
    from agentlab.experts import RandomPolicy, collect

    demos = tmp_path / "d.hdf5"
    collect(RandomPolicy(env_spaces("InvertedPendulum-v5")[1], 0), "InvertedPendulum-v5", 2, 0, demos,
            metadata={"ref_min_score": 0.0, "ref_max_score": 100.0})
    r = CliRunner().invoke(cli, ["train", "ailboost", "--env", "InvertedPendulum-v5", "--demos", str(demos),
                                 "--num-demos", "1", "--steps", "500", "--preset", "smoke", "--out",
                                 str(tmp_path / "run"), "--eval-episodes", "2"])
    assert r.exit_code == 0, r.output
    last = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))[-1]
    # seed phase + rounds of 100 agent steps: 1 + 3 members
    assert float(last["train/ensemble_size"]) == 4.0
    for key in ("eval/return_mean", "eval/last_return_mean", "eval/normalized_score", "train/disc_loss"):
        assert np.isfinite(float(last[key]))
    pol = agentlab.load(tmp_path / "run")
    assert pol.agent.member_params.shape[0] == 4
    from agentlab.evaluation import evaluate

    res = evaluate(pol, "InvertedPendulum-v5", episodes=3, seed=0)
    assert res["return_mean"] > 0
