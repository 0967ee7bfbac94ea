"""Issue 17: one discriminator component for AILBoost and DAC, the paper's DAC, seed_steps=0."""

from __future__ import annotations

import csv
import dataclasses

import numpy as np
import pytest
import torch

from agentlab.agents import discriminator as D
from agentlab.agents.ailboost import AILBoostAgent, AILBoostConfig, mixture_update
from agentlab.agents.base import spaces_of
from agentlab.agents.dac import DACAgent, DACConfig, DACLearner
from agentlab.errors import UserError
from agentlab.replay import ReplayBuffer


def test_both_methods_build_their_discriminator_from_the_one_component(monkeypatch):
    calls = []
    real = D.build_discriminator

    def spy(config, *args):
        calls.append(type(config).__name__)
        return real(config, *args)

    import agentlab.agents.dac as dac_mod

    monkeypatch.setattr(dac_mod, "build_discriminator", spy)
    shared = dict(disc_hidden=[16, 8], disc_activation="relu", disc_output="tanh", disc_loss="js")
    torch.manual_seed(0)
    dac = DACAgent(DACConfig(hidden=[8, 8], **shared), spaces_of(3, 2))
    torch.manual_seed(0)
    ail = AILBoostAgent(AILBoostConfig(hidden=[8, 8], **shared), spaces_of(3, 2))
    assert calls == ["DACConfig", "AILBoostConfig"]
    assert type(dac.disc) is D.Discriminator and type(ail.disc) is D.Discriminator
    # same settings -> the same network, parameter for parameter
    sd_d, sd_a = dac.disc.state_dict(), ail.disc.state_dict()
    assert sd_d.keys() == sd_a.keys() and all(torch.equal(sd_d[k], sd_a[k]) for k in sd_d)
    # every discriminator setting is a field of both configs, under the same name
    for cls in (DACConfig, AILBoostConfig):
        assert set(D.DISC_FIELDS) <= {f.name for f in dataclasses.fields(cls)}
    # the class defaults differ as documented: DAC's vs the AILBoost code's
    assert D.discriminator_settings(DACConfig())["disc_output"] == "linear"
    assert D.discriminator_settings(AILBoostConfig())["disc_output"] == "tanh"


def test_table_gives_ailboost_and_dac_the_same_discriminator():
    from agentlab.reproduce import get_table

    specs = get_table("imitation").specs("small", 1)
    cfg = {s.algo: s.params.get("config") for s in specs}
    pick = lambda c: {k: c[k] for k in D.DISC_FIELDS}  # noqa: E731
    assert pick(cfg["ailboost"]) == pick(cfg["dac"])
    assert cfg["dac"].get("dac_variant", "fresh") == "fresh" and cfg["dac_paper"]["dac_variant"] == "paper"
    assert cfg["dac_paper"]["disc_output"] == "tanh"
    # AILBoost and our DAC differ only by alpha; the paper's DAC only by its discriminator and variant
    assert {k: v for k, v in cfg["ailboost"].items() if k != "alpha"} == cfg["dac"]
    assert {k: v for k, v in cfg["dac_paper"].items() if k not in D.DISC_FIELDS + ("dac_variant",)} == \
        {k: v for k, v in cfg["dac"].items() if k not in D.DISC_FIELDS}


def test_expert_input_normalisation_standardises_demo_pairs():
    disc = D.Discriminator(2, 1, [8], input_norm="expert")
    obs, act = torch.randn(500, 2) * torch.tensor([5.0, 0.01]) + 3.0, torch.randn(500, 1)
    disc.fit_input_norm(obs, act)
    x = disc.features(obs, act)
    assert torch.allclose(x.mean(0), torch.zeros(3), atol=1e-4)
    std = x.std(0)
    assert std[0] == pytest.approx(1.0, abs=1e-3) and std[2] == pytest.approx(1.0, abs=1e-3)
    assert std[1] < 0.2  # a nearly constant dimension is not blown up (std floor)
    with pytest.raises(UserError):
        DACConfig(disc_input_norm="batch").validate()


def test_mixture_update_rejects_an_empty_round():
    buf = ReplayBuffer(4, 1, 1)
    with pytest.raises(ValueError):
        mixture_update(buf, buf.recent_indices(0), 0.1, first=True)


class _Expert:
    def sample(self, n):
        return {"observations": torch.randn(n, 4), "actions": torch.rand(n, 1) * 2 - 1}


def test_paper_dac_rewards_are_stored_once_at_episode_end():
    cfg = DACConfig(hidden=[8, 8], disc_hidden=[8, 8], absorbing=False, dac_variant="paper", seed_steps=100,
                    batch_size=4, disc_batch_size=4)
    agent = DACAgent(cfg, spaces_of(4, 1))
    learner = DACLearner(None, agent, _Expert())
    buf = ReplayBuffer(10, 4, 1)
    rng = np.random.default_rng(0)
    for t in range(3):
        buf.add_step(rng.normal(size=4), rng.uniform(-1, 1, 1), 5.0, rng.normal(size=4), False)
        learner.episode_ended = t == 2
        learner.after_step(t + 1, buf)
        if t < 2:  # the running episode is hidden and keeps no imitation reward yet
            assert buf.weights[: t + 1].sum() == 0 and torch.all(buf.rewards[: t + 1] == 5.0)
    batch = buf.gather(torch.arange(3))
    stamped = agent.reward(batch)
    assert torch.allclose(buf.rewards[:3], stamped) and torch.all(buf.weights[:3] == 1)
    with torch.no_grad():  # the discriminator moves on; stored rewards stay (stale by design)
        for p in agent.disc.parameters():
            p.add_(1.0)
    assert not torch.allclose(agent.reward(batch), stamped)
    assert torch.allclose(buf.rewards[:3], stamped)


def _demos(tmp_path):
    from agentlab.envs import env_spaces
    from agentlab.experts import RandomPolicy, collect

    path = tmp_path / "d.hdf5"
    collect(RandomPolicy(env_spaces("InvertedPendulum-v5")[1], 0), "InvertedPendulum-v5", 2, 0, path,
            metadata={"ref_min_score": 0.0, "ref_max_score": 100.0})
    return path


def _run(tmp_path, algo, *sets):
    from click.testing import CliRunner

    from agentlab.cli import cli

    args = ["train", algo, "--env", "InvertedPendulum-v5", "--demos", str(_demos(tmp_path)), "--num-demos", "1",
            "--steps", "400", "--preset", "smoke", "--out", str(tmp_path / "run"), "--eval-episodes", "2",
            "--eval-every", "200"]
    for s in sets:
        args += ["--set", s]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    return list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))


def test_ailboost_trains_with_seed_steps_zero_and_reports_both_policies(tmp_path):
    rows = _run(tmp_path, "ailboost", "seed_steps=0")
    last = rows[-1]
    assert float(last["train/ensemble_size"]) == 4.0  # rounds at 100, 200, 300, 400 agent steps
    evals = [r for r in rows if r.get("eval/return_mean")]
    assert len(evals) == 2 and all(r.get("eval/last_return_mean") for r in evals)
    assert np.isfinite(float(last["train/disc_loss"]))
    import agentlab

    agent = agentlab.load(tmp_path / "run").agent
    assert agent.member_weights.sum().item() == pytest.approx(1.0)


def test_paper_dac_smoke_run(tmp_path):
    rows = _run(tmp_path, "dac", "dac_variant=paper", "disc_output=tanh", "disc_activation=relu")
    last = rows[-1]
    for key in ("eval/return_mean", "train/disc_loss", "train/critic_loss"):
        assert np.isfinite(float(last[key]))
    assert abs(float(last["train/d_expert"])) <= 1.0  # the bounded discriminator
