"""dagger: online imitation with SSO / Adam / SGD, on InvertedPendulum with a fixed linear expert."""

import csv

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import agentlab
from agentlab.agents.dagger import Rollout
from agentlab.cli import cli
from agentlab.training import train

ENV = "InvertedPendulum-v5"


class LinearExpert:
    """a = clip(K obs): balances InvertedPendulum for hundreds of steps."""

    def __init__(self):
        self.K = np.array([[0.5, 3.0, 0.3, 1.0]], dtype=np.float32)
        self.calls = 0

    def act(self, obs, deterministic=True):
        self.calls += 1
        return np.clip(np.asarray(obs, dtype=np.float32) @ self.K.T, -3, 3)


@pytest.fixture
def expert(monkeypatch):
    e = LinearExpert()
    import agentlab.experts

    monkeypatch.setattr(agentlab.experts, "load_expert", lambda env_id, *a, **k: e)
    return e


def _metrics(run_dir):
    with open(run_dir / "metrics.csv") as f:
        return list(csv.DictReader(f))


def _train(out, steps=600, extra_sets=(), **kw):
    sets = ["batch_states=100", "hidden=[16,16]", "inner_steps=5", *extra_sets]
    return train("dagger", out, steps=steps, seed=0, env_id=ENV, overrides=sets, device="cpu", **kw)


def test_sso_dagger_learns_the_expert(tmp_path, expert):
    _train(tmp_path / "run", steps=1000, extra_sets=["inner_steps=20"], eval_episodes=1)
    rows = _metrics(tmp_path / "run")
    losses = [float(r["train/loss"]) for r in rows]
    assert len(rows) == 10
    assert losses[-1] < 0.2 * losses[0]
    assert float(rows[-1]["time/interactions"]) == 1000
    assert float(rows[-1]["eval/expert_normalized_return"]) > 0
    # the policy reloads through the public API and acts in the env's bounds
    pol = agentlab.load(tmp_path / "run")
    a = pol.act(np.zeros((3, 4), dtype=np.float32))
    assert a.shape == (3, 1) and np.all(np.abs(a) <= 3.0)


def test_sso_uses_the_batch_better_than_one_adam_step(tmp_path, expert):
    # equal interactions: m = 20 surrogate steps per batch end with a lower online loss than one Adam step
    _train(tmp_path / "sso", steps=500, extra_sets=["inner_steps=20"], eval_episodes=1)
    _train(tmp_path / "adam", steps=500, extra_sets=["optimizer=adam"], eval_episodes=1)
    sso = float(_metrics(tmp_path / "sso")[-1]["train/loss"])
    adam = float(_metrics(tmp_path / "adam")[-1]["train/loss"])
    assert sso < adam


@pytest.mark.parametrize("sets", [[], ["stochastic_interaction=true", "beta=0.5"]])
def test_resume_matches_uninterrupted_run(tmp_path, expert, sets):
    full = tmp_path / "full"
    _train(full, steps=600, extra_sets=sets, checkpoint_every=300, eval_episodes=1)
    part = tmp_path / "part"
    _train(part, steps=300, extra_sets=sets, checkpoint_every=300, eval_episodes=1)
    train(None, part, steps=600, resume=True)  # extend the finished run to 600 interactions
    a, b = _metrics(full), _metrics(part)
    assert len(a) == len(b) == 6
    for ra, rb in zip(a, b):
        for k in ra:
            if k.startswith("train/") or k in ("step", "time/interactions"):
                assert ra[k] == rb[k], (k, ra[k], rb[k])
    wa = torch.load(full / "model.pt", weights_only=True)["agent"]
    wb = torch.load(part / "model.pt", weights_only=True)["agent"]
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


def test_rollout_beta_one_executes_only_the_expert():
    e = LinearExpert()

    def learner(obs):
        raise AssertionError("the learner must not act when beta = 1")

    r = Rollout(ENV, seed=0)
    rng = np.random.default_rng(0)
    states, labels, _ = r.collect(50, learner, lambda o: e.act(o), 1.0, rng)
    assert states.shape == (50, 4) and labels.shape == (50, 1)
    np.testing.assert_allclose(labels, e.act(states), atol=1e-6)
    r.close()


def test_rollout_beta_zero_labels_in_one_call():
    e = LinearExpert()
    r = Rollout(ENV, seed=0)
    states, labels, _ = r.collect(40, lambda o: np.zeros((len(o), 1), np.float32), lambda o: e.act(o), 0.0,
                                  np.random.default_rng(0))
    assert e.calls == 1  # DAgger: the whole batch is labelled at once
    r.close()


@pytest.mark.parametrize("opt_args", [["--set", "optimizer=adam"], ["--optimizer", "sgd"]])
def test_cli_baselines_run(tmp_path, expert, opt_args):
    res = CliRunner().invoke(cli, ["train", "dagger", "--env", ENV, "--steps", "200", "--out", str(tmp_path / "r"),
                                   *opt_args, "--set", "batch_states=100", "--set", "hidden=[8]"])
    assert res.exit_code == 0, res.output
    assert len(_metrics(tmp_path / "r")) == 2
    assert f"optimizer: {opt_args[1].split('=')[-1]}" in (tmp_path / "r" / "config.yaml").read_text()


@pytest.mark.parametrize("args, msg", [
    (["--set", "beta=1.5"], "beta"),
    (["--set", "optimizer=lbfgs"], "optimizer"),
    (["--optimizer", "lbfgs"], "optimizer"),
    (["--set", "inner_steps=0"], "inner_steps"),
    (["--set", "eta=-1"], "eta"),
    (["--set", "batch_states=0"], "batch_states"),
    (["--set", "eta_schedule=cosine"], "eta_schedule"),
    (["--set", "expert=/nonexistent/run"], "nonexistent"),
    (["--set", "inner=sgd"], "inner_lr"),
    (["--set", "eta=armijo"], "eta"),
    (["--set", "eta=ada", "--set", "eta_schedule=sqrt"], "eta_schedule"),
    (["--set", "sls_beta=1.5"], "sls_beta"),
])
def test_cli_bad_inputs(tmp_path, expert, args, msg):
    res = CliRunner().invoke(cli, ["train", "dagger", "--env", ENV, "--steps", "100", "--out", str(tmp_path / "r"),
                                   *args])
    assert res.exit_code == 2, res.output
    assert "error:" in res.output and msg in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_cli_optimizer_flag_only_where_there_is_a_choice(tmp_path):
    res = CliRunner().invoke(cli, ["train", "fql", "--optimizer", "sso", "--dataset", "x", "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "--optimizer" in res.output and not (tmp_path / "r").exists()


def test_cli_needs_env(tmp_path, expert):
    res = CliRunner().invoke(cli, ["train", "dagger", "--steps", "100", "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "--env" in res.output


def test_numpy_actor_matches_the_torch_policy():
    from agentlab.agents.base import spaces_from_env
    from agentlab.agents.dagger import DAggerAgent, DAggerConfig, NumpyActor

    torch.manual_seed(0)
    agent = DAggerAgent(DAggerConfig(hidden=[32, 32]), spaces_from_env(ENV))
    agent.obs_norm.set(np.full(4, 0.1), np.full(4, 2.0))
    obs = np.random.default_rng(0).normal(size=(7, 4)).astype(np.float32)
    np.testing.assert_allclose(NumpyActor(agent)(obs), agent.act(torch.from_numpy(obs)).numpy(), atol=1e-5)


def test_observation_normaliser_fitted_on_the_first_expert_batch_and_reloaded(tmp_path, expert):
    _train(tmp_path / "run", steps=300, eval_episodes=1)
    # the first batch: the expert's rollout from the same reset seed (seed 0 -> rollout seed 0)
    r = Rollout(ENV, seed=0)
    states, _, _ = r.collect(100, None, lambda o: LinearExpert().act(o), 1.0, np.random.default_rng(0))
    r.close()
    pol = agentlab.load(tmp_path / "run")
    np.testing.assert_allclose(pol.agent.obs_norm.mean.numpy(), states.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pol.agent.obs_norm.std.numpy(), np.maximum(states.std(0, ddof=1), 1e-3), rtol=1e-4)
    # the reloaded policy applies it: same actions as the network on normalised inputs
    obs = states[:5]
    with torch.no_grad():
        manual = torch.tanh(pol.agent.actor((torch.from_numpy(obs) - pol.agent.obs_norm.mean) / pol.agent.obs_norm.std))
    np.testing.assert_allclose(pol.act(obs), 3.0 * manual.numpy(), atol=1e-5)
    # and it can be switched off
    _train(tmp_path / "raw", steps=300, extra_sets=["normalize_obs=false"], eval_episodes=1)
    assert torch.all(agentlab.load(tmp_path / "raw").agent.obs_norm.mean == 0)


def test_stochastic_numpy_actor_samples_around_the_mean():
    from agentlab.agents.base import spaces_from_env
    from agentlab.agents.dagger import DAggerAgent, DAggerConfig, NumpyActor

    torch.manual_seed(0)
    agent = DAggerAgent(DAggerConfig(hidden=[16]), spaces_from_env(ENV))
    obs = np.random.default_rng(1).normal(size=(1, 4)).astype(np.float32)
    a = NumpyActor(agent, std=1.0, rng=np.random.default_rng(5))(obs)
    eps = np.random.default_rng(5).standard_normal((1, 1))
    with torch.no_grad():
        pre = agent.actor(agent.obs_norm(torch.from_numpy(obs))).numpy()
    np.testing.assert_allclose(a, 3.0 * np.tanh(pre + eps), atol=1e-5)
    draws = np.stack([NumpyActor(agent, std=1.0, rng=np.random.default_rng(i))(obs) for i in range(200)])
    assert draws.std() > 0.5  # it really samples (std 1 before the tanh)
    np.testing.assert_allclose(NumpyActor(agent)(obs), agent.act(torch.from_numpy(obs)).numpy(), atol=1e-5)


@pytest.mark.parametrize("eta", ["sls", "ada"])
def test_adaptive_eta_runs_and_learns(tmp_path, expert, eta):
    # ada: eta_0 = an RMS step of 0.1 per action (the untrained policy is ~0.25 from the labels here)
    _train(tmp_path / "run", steps=800, extra_sets=[f"eta={eta}", "inner_steps=20", "ada_eta0=0.1"], eval_episodes=1)
    rows = _metrics(tmp_path / "run")
    losses = [float(r["train/loss"]) for r in rows]
    etas = [float(r["train/eta"]) for r in rows]  # in units of 1/L
    # batch 0 is the expert's (easy) states, batch 1 the first learner's; each later batch is fresh learner states,
    # so one batch can jump (sls here: 0.007 then 0.12 on the last): judge the mean of the last three
    assert sum(losses[-3:]) / 3 < 0.5 * losses[1], losses
    if eta == "sls":  # a quadratic loss in target space: Armijo with c = 0.1 accepts up to 2 (1 - c) / L
        assert all(0.9 * 1.8 * 0.9 < e <= 1.8 + 1e-9 for e in etas), etas
    else:  # AdaGrad-norm: non-increasing
        assert all(b <= a + 1e-12 for a, b in zip(etas, etas[1:])), etas
