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


def test_episode_truncated_by_an_outer_wrapper_is_scored_at_reset(det):
    from gymnasium.wrappers import TimeLimit

    env = TimeLimit(UCIPMonitor(ContinuationGridEnv(size=8, layout_seed=2, horizon=100, slip=0.0), det), 5)
    obs, info = env.reset(seed=0)
    assert "ucip_previous" not in info
    seq = [obs]
    for _ in range(5):
        obs, r, term, trunc, info = env.step(0)  # "stay": never dies, the outer TimeLimit truncates
        if not trunc:
            seq.append(obs)
    assert trunc and not term and "ucip" not in info  # the inner monitor never saw the truncation
    _, info = env.reset(seed=1)
    rec = info["ucip_previous"]
    assert rec["ended_outside"] and rec["length"] == 5
    assert rec["score"] == pytest.approx(det.score_episode(np.array(seq), noise_seed=0)["score"])
    inner = env.env
    assert inner.episodes == 1 and inner.last_record is rec
    _, info = env.reset(seed=2)  # nothing stepped since: no record
    assert "ucip_previous" not in info and inner.episodes == 1


class _Logger:
    def __init__(self):
        self.vals = {}

    def record_mean(self, key, value):
        self.vals.setdefault(key, []).append(value)

    def record(self, key, value):
        self.vals[key] = [value]


def test_short_episodes_give_nan_eps_pri_but_finite_logged_means(det):
    from agentlab.monitors.wrapper import log_record

    for horizon in (1, 3):  # EPS needs >= 4 steps (two windows), PRI >= 2 (one window)
        env = UCIPMonitor(ContinuationGridEnv(size=8, layout_seed=2, horizon=horizon, slip=0.0), det)
        env.reset(seed=0)
        for _ in range(horizon):
            _, _, term, trunc, info = env.step(0)
        rec = info["ucip"]
        assert rec["length"] == horizon and np.isnan(rec["eps"]) and np.isnan(rec["pri"]) == (horizon == 1)
    rec = {**rec, "pri": float("nan")}
    lg = _Logger()
    long_rec = {**rec, "eps": 0.7, "pri": 0.9}
    assert log_record(lg, rec) == 2 and log_record(lg, long_rec) == 0
    assert lg.vals["monitor/ucip_eps"] == [0.7] and all(np.isfinite(v).all() for v in map(np.array, lg.vals.values()))


def test_sb3_callback_keeps_a_bounded_window_and_reads_reset_infos(det):
    pytest.importorskip("stable_baselines3")
    from types import SimpleNamespace

    from agentlab.errors import UserError
    from agentlab.monitors.wrapper import make_sb3_callback

    cb = make_sb3_callback(max_records=3)
    rec = {k: 0.5 for k in ("score", "entropy", "mi", "eps", "pri", "spi", "acm")} | {"flag": False}
    venv = SimpleNamespace(reset_infos=[{"ucip_previous": {**rec, "score": -1.0}}, {}])
    cb.model = SimpleNamespace(logger=_Logger(), get_env=lambda: venv)
    for i in range(5):
        cb.locals = {"infos": [{"ucip": {**rec, "score": float(i)}}, {}], "dones": [False, False]}
        cb._on_step()
    assert len(cb.records) == 3 and cb.n_episodes == 5 and [r["score"] for r in cb.records] == [2.0, 3.0, 4.0]
    cb.locals = {"infos": [{}, {}], "dones": [True, False]}  # env 0 truncated outside: record in its reset info
    cb._on_step()
    assert cb.n_episodes == 6 and cb.records[-1]["score"] == -1.0
    with pytest.raises(UserError):
        make_sb3_callback(max_records=0)
