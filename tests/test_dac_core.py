"""DAC pieces: discriminator optima, gradient penalty, absorbing states, bad input, a smoke run."""

from __future__ import annotations

import math

import gymnasium as gym
import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from agentlab.agents.dac import Discriminator, disc_loss, gradient_penalty
from agentlab.cli import cli
from agentlab.envs.wrappers import AbsorbingStateWrapper, absorbing_dataset


def _train_disc(kind: str, output: str = "linear", steps: int = 400, seed: int = 0) -> Discriminator:
    """Expert N((+0.5, 0), I) vs mixture N((-0.5, 0), I) in (s, a) = (x1, x2): log ratio = x1."""
    torch.manual_seed(seed)
    disc = Discriminator(1, 1, [32, 32], activation="tanh", output=output)
    opt = torch.optim.Adam(disc.parameters(), lr=1e-2)
    shift = torch.tensor([0.5, 0.0])
    for _ in range(steps):
        xe = torch.randn(512, 2) + shift
        xm = torch.randn(512, 2) - shift
        loss = disc_loss(kind, disc(xe[:, :1], xe[:, 1:]), disc(xm[:, :1], xm[:, 1:]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return disc


def _grid() -> torch.Tensor:
    g = torch.linspace(-1.0, 1.0, 9)
    return torch.cartesian_prod(g, g)


def test_reverse_kl_discriminator_converges_to_log_density_ratio():
    disc = _train_disc("rkl")
    x = _grid()
    with torch.no_grad():
        d = disc(x[:, :1], x[:, 1:])
    err = (d - x[:, 0]).abs()  # optimum D* = log p_E / p_mix = x1
    assert err.mean() < 0.1 and err.max() < 0.25, (err.mean(), err.max())


def test_reverse_kl_tanh_output_matches_ratio_inside_its_range():
    disc = _train_disc("rkl", output="tanh")
    g = torch.linspace(-0.6, 0.6, 7)
    x = torch.cartesian_prod(g, g)
    with torch.no_grad():
        d = disc(x[:, :1], x[:, 1:])
    assert (d - x[:, 0]).abs().mean() < 0.12


def test_js_discriminator_converges_to_its_optimum():
    disc = _train_disc("js")
    x = _grid()
    with torch.no_grad():
        prob = torch.sigmoid(disc(x[:, :1], x[:, 1:]))
    optimum = torch.sigmoid(x[:, 0])  # D* = p_E / (p_E + p_mix)
    err = (prob - optimum).abs()
    assert err.mean() < 0.03 and err.max() < 0.07, (err.mean(), err.max())


def test_gradient_penalty_zero_for_unit_norm_linear_discriminator():
    torch.manual_seed(0)
    w = torch.randn(5)
    w = w / w.norm()
    lin = lambda x: x @ w + 0.3  # noqa: E731
    xe, xa = torch.randn(64, 5), torch.randn(64, 5)
    assert gradient_penalty(lin, xe, xa).item() == pytest.approx(0.0, abs=1e-10)
    # and positive for any other norm: (|w| - 1)^2
    assert gradient_penalty(lambda x: 2 * (x @ w), xe, xa).item() == pytest.approx(1.0, rel=1e-5)


def test_reward_is_logit_of_discriminator():
    d = torch.tensor([0.3, -1.2])
    prob = torch.sigmoid(d)
    assert torch.allclose(torch.log(prob) - torch.log1p(-prob), d, atol=1e-5)


# -- absorbing states ----------------------------------------------------------------------------
class _Scripted(gym.Env):
    """Terminates at step ``term_at`` (or never); observations count steps."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
    action_space = gym.spaces.Box(-1, 1, (1,), np.float32)

    def __init__(self, term_at: int | None):
        self.term_at, self.t = term_at, 0

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return np.array([0.0, 1.0], np.float32), {}

    def step(self, action):
        self.t += 1
        return np.array([self.t, 1.0], np.float32), 1.0, self.t == self.term_at, False, {}


def test_absorbing_wrapper_terminal_becomes_transition_into_absorbing_state():
    env = AbsorbingStateWrapper(_Scripted(term_at=3))
    obs, _ = env.reset()
    assert obs.tolist() == [0.0, 1.0, 0.0]
    flags = []
    for _ in range(4):
        obs, r, term, trunc, _ = env.step(np.zeros(1))
        flags.append((obs.tolist(), r, term, trunc))
    assert flags[1] == ([2.0, 1.0, 0.0], 1.0, False, False)
    assert flags[2] == ([0.0, 0.0, 1.0], 1.0, False, False)  # s -> s_abs, not terminal (bootstraps)
    assert flags[3] == ([0.0, 0.0, 1.0], 0.0, False, True)  # s_abs -> s_abs, then the episode ends


def test_absorbing_wrapper_leaves_time_limit_truncation_alone():
    env = AbsorbingStateWrapper(gym.wrappers.TimeLimit(_Scripted(term_at=None), max_episode_steps=3))
    env.reset()
    out = [env.step(np.zeros(1)) for _ in range(3)]
    obs, _, term, trunc, _ = out[-1]
    assert obs.tolist() == [3.0, 1.0, 0.0] and not term and trunc
    assert all(not o[2] and not o[3] for o in out[:-1])


def test_absorbing_dataset_conversion():
    from agentlab.data import Dataset

    obs = np.arange(10, dtype=np.float32).reshape(5, 2)
    ds = Dataset(obs, np.ones((5, 1)), np.ones(5), obs + 1, terminals=[0, 1, 0, 0, 0], timeouts=[0, 0, 0, 0, 1])
    out = absorbing_dataset(ds)
    assert len(out) == 6 and out.obs_dim == 3
    assert out.next_observations[1].tolist() == [0, 0, 1]  # terminal -> absorbing
    assert out.observations[2].tolist() == [0, 0, 1] and out.next_observations[2].tolist() == [0, 0, 1]
    assert out.actions[2].tolist() == [0.0] and out.rewards[2] == 0
    assert not out.terminals.any()
    assert out.timeouts.tolist() == [False, False, True, False, False, True]
    assert out.next_observations[5].tolist() == [9.0, 10.0, 0.0]  # truncation untouched
    assert out.num_episodes() == 2


# -- CLI: bad input and a smoke run ---------------------------------------------------------------
@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    from agentlab.envs import env_spaces
    from agentlab.experts import RandomPolicy, collect

    d = tmp_path_factory.mktemp("demos")
    _, act = env_spaces("InvertedPendulum-v5")
    path = d / "ip.hdf5"
    collect(RandomPolicy(act, 0), "InvertedPendulum-v5", 3, 0, path,
            metadata={"ref_min_score": 0.0, "ref_max_score": 100.0})
    empty = d / "empty.hdf5"
    with h5py.File(empty, "w") as f:
        for k, shape in (("observations", (0, 4)), ("actions", (0, 1)), ("rewards", (0,)),
                         ("next_observations", (0, 4)), ("terminals", (0,)), ("timeouts", (0,))):
            f.create_dataset(k, data=np.zeros(shape, np.float32))
    return {"ok": path, "empty": empty}


def _train(args, tmp_path):
    return CliRunner().invoke(cli, ["train", *args, "--steps", "300", "--preset", "smoke", "--out",
                                    str(tmp_path / "run"), "--eval-episodes", "2"])


@pytest.mark.parametrize("algo", ["dac", "ailboost", "bc"])
@pytest.mark.parametrize("case", ["wrong_dims", "zero_episodes", "too_many", "zero_num", "unknown_env"])
def test_bad_input_one_line_error(algo, case, demos, tmp_path):
    env, path, extra = "InvertedPendulum-v5", demos["ok"], ["--num-demos", "1"]
    if case == "wrong_dims":
        env = "Pendulum-v1"
    elif case == "zero_episodes":
        path = demos["empty"]
    elif case == "too_many":
        extra = ["--num-demos", "9"]
    elif case == "zero_num":
        extra = ["--num-demos", "0"]
    elif case == "unknown_env":
        env = "NoSuchEnv-v0"
    r = _train([algo, "--env", env, "--demos", str(path), *extra], tmp_path)
    assert r.exit_code != 0
    lines = [ln for ln in r.output.strip().splitlines() if ln]
    assert len(lines) == 1 and lines[0].startswith("error:"), r.output
    assert "Traceback" not in r.output


def test_dac_smoke_run_and_reload(demos, tmp_path):
    import agentlab

    r = _train(["dac", "--env", "InvertedPendulum-v5", "--demos", str(demos["ok"]), "--num-demos", "2"], tmp_path)
    assert r.exit_code == 0, r.output
    import csv

    rows = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))
    last = rows[-1]
    assert math.isfinite(float(last["eval/return_mean"])) and "eval/normalized_score" in last
    assert math.isfinite(float(last["train/disc_loss"]))
    pol = agentlab.load(tmp_path / "run")
    a = pol.act(np.zeros(4, np.float32))  # raw env observation (no indicator)
    assert a.shape == (1,) and -3 <= a[0] <= 3


def test_action_repeat_sums_rewards_and_stops_at_episode_end():
    from agentlab.envs.wrappers import ActionRepeat

    env = ActionRepeat(_Scripted(term_at=5), 2)
    env.reset()
    obs, r, term, trunc, info = env.step(np.zeros(1))
    assert obs[0] == 2 and r == 2.0 and info["env_steps"] == 2 and not term
    env.step(np.zeros(1))
    obs, r, term, trunc, info = env.step(np.zeros(1))  # terminates after one of the two repeats
    assert obs[0] == 5 and r == 1.0 and term and info["env_steps"] == 1
