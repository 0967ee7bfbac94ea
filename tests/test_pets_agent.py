"""PETS: task reward/termination/dynamics functions, the training loop, CLI and bad inputs."""

import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import agentlab
from agentlab.agents.pets import SMOKE, PETSConfig, PETSRunner
from agentlab.cli import cli
from agentlab.config import config_from_dict
from agentlab.envs import make_env
from agentlab.models.tasks import TASKS


def _check_env_functions(env_id, steps, check_dynamics=True):
    task = TASKS[env_id]
    env = make_env(env_id)
    env.action_space.seed(0)
    obs, _ = env.reset(seed=0)
    for _ in range(steps):
        a = env.action_space.sample()
        nxt, r, term, trunc, _ = env.step(a)
        o, act, n = (torch.as_tensor(np.asarray(v, dtype=np.float32))[None] for v in (obs, a, nxt))
        assert float(task.reward(o, act, n)[0]) == pytest.approx(r, abs=2e-4)
        if task.termination is not None:
            assert bool(task.termination(n)[0]) == term
        if check_dynamics and task.true_dynamics is not None:
            torch.testing.assert_close(task.true_dynamics(o, act), n, atol=2e-4, rtol=0)
        obs = nxt
        if term or trunc:
            obs, _ = env.reset()


@pytest.mark.parametrize("env_id", ["agentlab/CartpoleSwingup-v0", "Pendulum-v1", "InvertedPendulum-v5"])
def test_reward_termination_dynamics_match_env(env_id):
    _check_env_functions(env_id, 60)


def test_cartpole_reward_matches_dm_control():
    _check_env_functions("dmc/cartpole-swingup", 25, check_dynamics=False)


def smoke_cfg(**kw):
    return config_from_dict(PETSConfig, {**SMOKE, **kw})


def test_runner_retrains_plans_and_reweights():
    expert = {"observations": np.zeros((10, 3), np.float32), "actions": np.zeros((10, 1), np.float32),
              "next_observations": np.zeros((10, 3), np.float32), "rewards": np.zeros(10, np.float32),
              "returns": np.zeros(1, np.float32)}
    r = PETSRunner(smoke_cfg(reweight="expert", sigma=0.5, retrain_every=40), "Pendulum-v1", seed=0, expert=expert)
    r.run_episode()
    info = r.run_episode(max_steps=50)
    assert r.steps == 250 and r.trained and len(r.returns) == 2
    assert 0 < info["train/weight_ess_frac"] < 1  # the weights are not uniform
    assert info["time/plan_ms_per_step"] > 0
    assert r.buf["obs"].shape == (250, 3)


def test_best_episode_expert_and_uniform_limit():
    r = PETSRunner(smoke_cfg(reweight="best", sigma=1.0, expert_episodes=1), "Pendulum-v1", seed=0)
    r.buf = {"obs": np.arange(12, dtype=np.float32).reshape(4, 3), "act": np.ones((4, 1), np.float32),
             "next_obs": np.zeros((4, 3), np.float32), "rew": np.zeros(4, np.float32),
             "episode": np.array([0, 0, 1, 1])}
    r.returns = [(2, -10.0), (4, -1.0)]
    e = r._expert_inputs()
    torch.testing.assert_close(e[:, :3], torch.as_tensor(r.buf["obs"][2:]))
    assert PETSRunner(smoke_cfg(reweight="best", sigma=math.inf), "Pendulum-v1")._expert_inputs() is None


def test_train_cli_load_and_deterministic_policy(tmp_path):
    out = tmp_path / "run"
    res = CliRunner().invoke(cli, ["train", "pets", "--env", "Pendulum-v1", "--steps", "230", "--preset", "smoke",
                                   "--eval-episodes", "1", "--out", str(out)])
    assert res.exit_code == 0, res.output
    text = (out / "metrics.csv").read_text()
    assert "train/episode_return" in text and "eval/return_mean" in text
    policy = agentlab.load(out)
    obs = make_env("Pendulum-v1").reset(seed=1)[0]
    acts = []
    for _ in range(2):
        policy.reset(1, seed=5)
        acts.append(policy.act(obs))
    assert acts[0].shape == (1,) and np.all(np.abs(acts[0]) <= 2)
    np.testing.assert_array_equal(acts[0], acts[1])
    assert policy.act(np.stack([obs, obs])).shape == (2, 1)


@pytest.mark.parametrize("args,message", [
    (["--env", "Pendulum-v1", "--set", "reweight=foo"], "reweight must be"),
    (["--env", "Pendulum-v1", "--set", "reweight=expert", "--set", "sigma=-1"], "sigma must be positive"),
    (["--env", "Pendulum-v1", "--set", "num_elites=9"], "num_elites"),
    (["--env", "Pendulum-v1", "--set", "propagation=magic"], "propagation"),
    (["--env", "Hopper-v5"], "no reward function"),
    (["--env", "InvertedPendulum-v5", "--set", "reweight=expert", "--set", "sigma=1"], "no oracle expert"),
    ([], "pass --env"),
])
def test_train_bad_inputs(tmp_path, args, message):
    res = CliRunner().invoke(cli, ["train", "pets", "--steps", "10", "--preset", "smoke", "--out",
                                   str(tmp_path / "r"), *args])
    assert res.exit_code == 2, res.output
    assert message in res.output and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1


@pytest.mark.parametrize("args,message", [
    (["--env", "InvertedPendulum-v5"], "needs known dynamics"),
    (["--seeds", "0"], "--seeds"),
    (["--onpolicy-episodes", "1"], "--onpolicy-episodes"),
    (["--env", "NoSuchEnv-v0"], "unknown environment"),
])
def test_mismatch_bad_inputs(tmp_path, args, message):
    res = CliRunner().invoke(cli, ["mbrl", "mismatch", "--out", str(tmp_path / "m"), *args])
    assert res.exit_code == 2, res.output
    assert message in res.output and "Traceback" not in res.output


@pytest.mark.slow
def test_resume_matches_uninterrupted_run(tmp_path):
    def train(out, steps, resume=False):
        args = ["train", "--resume", str(out), "--steps", str(steps)] if resume else [
            "train", "pets", "--env", "Pendulum-v1", "--steps", str(steps), "--preset", "smoke", "--seed", "3",
            "--eval-episodes", "1", "--out", str(out), "--set", "retrain_every=100"]
        res = CliRunner().invoke(cli, args)
        assert res.exit_code == 0, res.output

    train(tmp_path / "a", 600)
    train(tmp_path / "b", 400)
    train(tmp_path / "b", 600, resume=True)
    col = lambda p: [line.split(",")[1] for line in (p / "metrics.csv").read_text().splitlines()[1:4]]  # noqa: E731
    assert col(tmp_path / "a") == col(tmp_path / "b")


@pytest.mark.slow
def test_mismatch_cli_smoke(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENTLAB_CACHE", str(tmp_path / "cache"))
    res = CliRunner().invoke(cli, ["mbrl", "mismatch", "--env", "Pendulum-v1", "--seeds", "1", "--preset", "smoke",
                                   "--onpolicy-episodes", "3", "--expert-episodes", "2", "--grid-size", "100",
                                   "--out", str(tmp_path / "m")])
    assert res.exit_code == 0, res.output
    assert "Spearman" in (tmp_path / "m" / "mismatch.md").read_text()
    assert (tmp_path / "m" / "mismatch.png").stat().st_size > 1000


def test_fixed_dataset_reweighting_smoke(tmp_path):
    """Plain and re-weighted models on the same data, sigma from the ESS rule, paired records."""
    from agentlab.models.reweight import dataset, fixed_dataset_points, paired_summary, split_expert

    rng = np.random.default_rng(0)
    expert = {"observations": rng.normal(size=(40, 3)).astype(np.float32),
              "actions": rng.uniform(-2, 2, (40, 1)).astype(np.float32),
              "next_observations": rng.normal(size=(40, 3)).astype(np.float32),
              "rewards": np.zeros(40, np.float32), "returns": np.zeros(2, np.float32)}
    train, held = split_expert(expert)
    assert len(train["rewards"]) == 20 and len(held["rewards"]) == 20
    mix = dataset("Pendulum-v1", "mixture", 30, 0, train)
    assert np.isin(mix["observations"][::2, 0], train["observations"][:, 0]).all()
    small = dataset("Pendulum-v1", "grid", 20, 0, train)
    np.testing.assert_array_equal(small["observations"], dataset("Pendulum-v1", "grid", 40, 0, train)["observations"][:20])
    pts = fixed_dataset_points("Pendulum-v1", smoke_cfg(), 0, 40, "grid", expert, grid_eval=50, min_steps=5)
    assert [p["weighting"] for p in pts] == ["none", "expert"]
    assert pts[1]["ess_frac"] == pytest.approx(0.5, abs=0.01) and pts[0]["ess_frac"] == 1.0
    assert all(np.isfinite(p[f"nll_{s}"]) for p in pts for s in ("expert", "onpolicy", "grid"))
    row = paired_summary(pts)[0]
    assert row["n_train"] == 40 and row["diff"] == pytest.approx(pts[1]["return"] - pts[0]["return"])


@pytest.mark.parametrize("args,message", [
    (["--env", "InvertedPendulum-v5"], "needs known dynamics"),
    (["--sizes", "5"], "--sizes"),
    (["--sizes", "a,b"], "--sizes"),
    (["--ess", "1.5"], "--ess"),
    (["--seeds", "0"], "--seeds"),
])
def test_fixed_cli_bad_inputs(tmp_path, args, message):
    res = CliRunner().invoke(cli, ["mbrl", "fixed", "--out", str(tmp_path / "f"), *args])
    assert res.exit_code == 2, res.output
    assert message in res.output and "Traceback" not in res.output


def test_inverted_pendulum_tie_breaker_never_outweighs_survival():
    from agentlab.models.tasks import TIE_BREAK, inverted_pendulum_planning_reward, inverted_pendulum_reward

    g = torch.Generator().manual_seed(0)
    nxt = torch.randn(500, 4, generator=g) * 0.15
    o, a = torch.zeros(500, 4), torch.zeros(500, 1)
    r, rp = inverted_pendulum_reward(o, a, nxt), inverted_pendulum_planning_reward(o, a, nxt)
    assert torch.all(rp >= r) and torch.all(rp <= r * (1 + TIE_BREAK))
    assert torch.all(rp[r == 0] == 0)  # a terminated step earns nothing either way
    from agentlab.models.tasks import IP_CAP

    lqr = TASKS["InvertedPendulum-v5"].lqr
    assert lqr[2] == TIE_BREAK and lqr[3] == IP_CAP
    # over a horizon below 50 steps plus the capped terminal value: never worth one step of survival
    assert 49 * TIE_BREAK + TIE_BREAK * IP_CAP < 1
    assert TASKS["InvertedPendulum-v5"].plan_reward is inverted_pendulum_planning_reward
    assert TASKS["Pendulum-v1"].plan_reward is TASKS["Pendulum-v1"].reward


def test_lqr_terminal_value_of_a_linear_model():
    """The terminal value comes from the learned model's linearisation: on data of a linear system the
    model's Jacobians match the system and the value is -weight * min(s^T P s, cap), P the DARE solution."""
    import numpy as np
    import scipy.linalg as sl

    from agentlab.models.dynamics import EnsembleTrainer, GaussianEnsemble
    from agentlab.models.lqr import linearize, lqr_terminal

    torch.manual_seed(0)
    A = torch.tensor([[1.0, 0.1], [0.3, 1.05]])  # unstable, controllable
    B = torch.tensor([0.0, 0.2])
    g = torch.Generator().manual_seed(0)
    s = torch.randn(600, 2, generator=g) * 0.5
    a = torch.rand(600, 1, generator=g) * 2 - 1
    model = GaussianEnsemble(2, 1, members=2, hidden=[32], num_elites=1)
    EnsembleTrainer(model, lr=3e-3, batch_size=64, max_epochs=60, patience=10).fit(s, a, s @ A.T + a * B)
    Ah, Bh = linearize(model, torch.zeros(2), torch.zeros(1))
    np.testing.assert_allclose(Ah, A.numpy(), atol=0.05)
    np.testing.assert_allclose(Bh[:, 0], B.numpy(), atol=0.05)
    term, info = lqr_terminal(model, (1.0, 1.0), 0.1, 0.01, 50.0)
    assert info["lqr_ok"] == 1.0
    P = sl.solve_discrete_are(Ah, Bh, np.eye(2), np.array([[0.1]]))
    x = torch.tensor([[0.1, -0.2], [0.0, 0.0], [30.0, 30.0]])
    expect = -0.01 * np.minimum(np.einsum("bi,ij,bj->b", x.double().numpy(), P, x.double().numpy()), 50.0)
    np.testing.assert_allclose(term(x).numpy(), expect, rtol=1e-4, atol=1e-7)
    # a model whose linearisation cannot be stabilised gives no terminal value
    from agentlab.models.lqr import dare

    assert dare(np.array([[1.5]]), np.array([[0.0]]), np.eye(1), np.eye(1)) is None


def test_sequence_returns_adds_the_terminal_value_to_living_particles():
    from agentlab.models.cem import sequence_returns

    def step(x, a, g):
        return x + a, None

    acts = torch.ones(3, 4, 1)
    plain = sequence_returns(step, lambda o, a, n: torch.ones(len(o)), None, torch.zeros(1), acts, 2)
    withv = sequence_returns(step, lambda o, a, n: torch.ones(len(o)), None, torch.zeros(1), acts, 2,
                             terminal_fn=lambda x: -x[:, 0])
    torch.testing.assert_close(withv, plain - 4.0)  # last state 4: value -4
    dead = sequence_returns(step, lambda o, a, n: torch.ones(len(o)), lambda n: n[:, 0] > 2, torch.zeros(1), acts, 2,
                            terminal_fn=lambda x: -x[:, 0])
    torch.testing.assert_close(dead, torch.full((3,), 3.0))  # terminated at step 3: no terminal value



def test_lqr_terminal_value_is_recomputed_only_when_the_model_changes():
    """The terminal-value cache follows the model's weight version (fit / renormalise / load)."""
    agent = PETSRunner(smoke_cfg(terminal_value="task"), "InvertedPendulum-v5", seed=0).agent
    first = agent._terminal()
    assert first is not None and agent._terminal() is first
    agent.model.load_state_dict(agent.model.state_dict())
    assert agent._terminal() is not first
