"""SAC: shapes, no host sync in the update, learning a one-step problem, determinism, replay buffer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agentlab.agents.base import spaces_of
from agentlab.agents.sac import SACAgent, SACConfig, TanhGaussianActor
from agentlab.replay import ReplayBuffer


def _batch(n=64, obs_dim=3, act_dim=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"observations": torch.randn(n, obs_dim, generator=g), "actions": torch.rand(n, act_dim, generator=g) * 2 - 1,
            "rewards": torch.randn(n, generator=g), "next_observations": torch.randn(n, obs_dim, generator=g),
            "masks": torch.ones(n)}


def test_tanh_gaussian_log_prob_matches_change_of_variables():
    torch.manual_seed(0)
    actor = TanhGaussianActor(2, 1, [8], -5, 2)
    obs = torch.randn(4000, 2)
    obs[:] = obs[:1]  # one state: check the density by a histogram in action space
    a, logp = actor(obs)
    mu, log_std = actor.net(obs[:1]).chunk(2, -1)
    log_std = -5 + 0.5 * 7 * (torch.tanh(log_std) + 1)
    u = torch.atanh(a.clamp(-0.999999, 0.999999))
    ref = torch.distributions.Normal(mu, log_std.exp()).log_prob(u).sum(-1) - torch.log1p(-a.pow(2) + 1e-12).sum(-1)
    assert torch.allclose(logp, ref, atol=1e-2)


def test_update_returns_tensors_and_changes_parameters():
    agent = SACAgent(SACConfig(hidden=[32, 32]), spaces_of(3, 2))
    before = [p.clone() for p in agent.critic.parameters()]
    tgt_before = [p.clone() for p in agent.critic_target.parameters()]
    info = agent.update(_batch())
    assert all(isinstance(v, torch.Tensor) and v.dim() == 0 for v in info.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, agent.critic.parameters()))
    # Polyak: target moved by tau towards the critic
    for t0, t1, c in zip(tgt_before, agent.critic_target.parameters(), agent.critic.parameters()):
        assert torch.allclose(t1, t0 + 5e-3 * (c - t0), atol=1e-6)
    assert all(p.grad is None or p.requires_grad for p in agent.critic.parameters())


def test_update_does_not_sync_with_host():
    agent = SACAgent(SACConfig(hidden=[16, 16]), spaces_of(3, 2))
    batch = _batch()
    agent.update(batch)
    orig_item, orig_bool = torch.Tensor.item, torch.Tensor.__bool__
    calls = []

    def spy_item(self):
        calls.append("item")
        return orig_item(self)

    def spy_bool(self):
        calls.append("bool")
        return orig_bool(self)

    torch.Tensor.item, torch.Tensor.__bool__ = spy_item, spy_bool
    try:
        agent.update(batch, reward_fn=lambda b: b["rewards"] * 2)
    finally:
        torch.Tensor.item, torch.Tensor.__bool__ = orig_item, orig_bool
    assert calls == []


def test_reward_fn_replaces_rewards_at_sampling_time():
    agent = SACAgent(SACConfig(hidden=[16, 16]), spaces_of(3, 2))
    seen = []
    info = agent.update(_batch(), reward_fn=lambda b: seen.append(1) or torch.full_like(b["rewards"], 7.0))
    assert seen == [1] and info["train/reward"].item() == pytest.approx(7.0)


@pytest.mark.slow
def test_sac_learns_a_one_step_problem():
    """Reward -(a - 0.5)^2, terminal after one step: the deterministic action converges to 0.5."""
    torch.manual_seed(0)
    agent = SACAgent(SACConfig(hidden=[32, 32], actor_lr=3e-3, critic_lr=3e-3, alpha_lr=3e-3,
                               target_entropy=-4.0), spaces_of(1, 1))
    for _ in range(600):
        obs = torch.zeros(128, 1)
        a = torch.rand(128, 1) * 2 - 1
        batch = {"observations": obs, "actions": a, "rewards": -(a[:, 0] - 0.5) ** 2 * 10,
                 "next_observations": obs, "masks": torch.zeros(128)}
        agent.update(batch)
    act = agent.act(torch.zeros(1, 1)).item()
    assert abs(act - 0.5) < 0.1, act


def test_same_seed_same_numbers():
    def run():
        torch.manual_seed(3)
        agent = SACAgent(SACConfig(hidden=[16, 16]), spaces_of(3, 2))
        for i in range(5):
            info = agent.update(_batch(seed=i))
        return info["train/critic_loss"].item()

    assert run() == run()


def test_replay_ring_buffer_wraps_and_checkpoints():
    buf = ReplayBuffer(4, 2, 1)
    for i in range(6):
        buf.add_step(np.full(2, i), np.full(1, i), float(i), np.full(2, i + 1), i == 5)
    assert len(buf) == 4 and buf.pos == 2
    assert sorted(buf.rewards.tolist()) == [2.0, 3.0, 4.0, 5.0]
    assert buf.recent_indices(2).tolist() == [0, 1]  # the two newest (4, 5) live in slots 0, 1
    b = buf.sample(32)
    assert b["observations"].shape == (32, 2) and torch.equal(b["masks"], 1 - b["terminals"])
    fresh = ReplayBuffer(4, 2, 1)
    fresh.load_state_dict(buf.state_dict())
    assert torch.equal(fresh.rewards, buf.rewards) and fresh.pos == buf.pos


def test_sac_cli_smoke_and_resume(tmp_path):
    import csv

    from click.testing import CliRunner

    from agentlab.cli import cli

    out = tmp_path / "run"
    args = ["train", "sac", "--env", "Pendulum-v1", "--preset", "smoke", "--eval-episodes", "1",
            "--set", "action_repeat=2", "--checkpoint-every", "200"]
    r = CliRunner().invoke(cli, [*args, "--steps", "400", "--out", str(out)])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["train", "--resume", str(out), "--steps", "600"])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert int(rows[-1]["step"]) == 600 and "eval/return_mean" in rows[-1]


def test_eval_episodes_zero_skips_evaluation(tmp_path):
    import csv

    from click.testing import CliRunner

    from agentlab.cli import cli

    r = CliRunner().invoke(cli, ["train", "sac", "--env", "Pendulum-v1", "--preset", "smoke", "--eval-episodes", "0",
                                 "--steps", "250", "--out", str(tmp_path / "run")])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))
    assert int(rows[-1]["step"]) == 250 and not any(k.startswith("eval/") for k in rows[-1])
