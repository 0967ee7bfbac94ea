"""Dev (planner only, no learned model): the `small` CEM on InvertedPendulum-v5 planning with the
env's dynamics linearised at the upright rest state (finite differences of MuJoCo over one 0.04 s
control step; accurate to ~1% for |angle| <= 0.2; MuJoCo itself, batched with mujoco.rollout, costs
~1 s per action here), executed in the real env, one episode per planning objective from env seed 100
(never a table seed). Separates the planner/objective from model error.
Usage: python dev_ip_oracle.py OUT.json VARIANT[,VARIANT...] [key=value ...] (planner overrides)"""
import json
import sys
import time

import gymnasium as gym
import mujoco
import numpy as np
import torch

import agentlab.models.tasks as T
from agentlab.models.cem import MPCPlanner

env = gym.make("InvertedPendulum-v5")
u = env.unwrapped


def _f(s, a):
    u.data.qpos[:], u.data.qvel[:], u.data.ctrl[:], u.data.time = s[:2], s[2:], a, 0.0
    mujoco.mj_forward(u.model, u.data)
    for _ in range(u.frame_skip):
        mujoco.mj_step(u.model, u.data)
    return np.concatenate([u.data.qpos, u.data.qvel]).copy()


_e, _z = 1e-5, np.zeros(4)
A = torch.tensor(np.stack([(_f(_z + _e * np.eye(4)[i], 0) - _f(_z - _e * np.eye(4)[i], 0)) / (2 * _e) for i in range(4)], 1),
                 dtype=torch.float32)
B = torch.tensor((_f(_z, _e) - _f(_z, -_e)) / (2 * _e), dtype=torch.float32)


def step(obs, act, gen=None):
    return obs @ A.T + act * B, None


def dense(obs, act, nxt):
    alive = T.inverted_pendulum_reward(obs, act, nxt)
    q = nxt[..., 0].pow(2) + (nxt[..., 1] / 0.2).pow(2) + 0.1 * nxt[..., 2].pow(2) + 0.01 * nxt[..., 3].pow(2)
    return alive * (1 + T.TIE_BREAK * torch.exp(-q))


VARIANTS = {"alive": T.inverted_pendulum_reward, "tie_theta": T.inverted_pendulum_planning_reward, "dense": dense}
def quad_factory(wx, wv, wth, wthd):
    def f(obs, act, nxt):
        alive = T.inverted_pendulum_reward(obs, act, nxt)
        q = wx * nxt[..., 0].pow(2) + wth * (nxt[..., 1] / 0.2).pow(2) + wv * nxt[..., 2].pow(2) + wthd * nxt[..., 3].pow(2)
        return alive * (1 + T.TIE_BREAK * torch.exp(-q))
    return f


VARIANTS["xheavy"] = quad_factory(4.0, 0.4, 0.25, 0.01)
QW = torch.tensor([1.0, 25.0, 0.1, 0.01])  # LQR-style stage weights (x, angle, x', angle'); R = 0.01


def lqr_P():
    import scipy.linalg as sl

    An, Bn = A.double().numpy(), B.double().numpy()[:, None]
    return torch.tensor(sl.solve_discrete_are(An, Bn, np.diag(QW.double().numpy()), np.array([[0.01]])), dtype=torch.float32)


class Quad:
    """alive * (1 - 0.01 q(s')), q = s'^T diag(QW) s'; with ``terminal`` the last step also pays
    0.01 s_H^T P s_H (P: the LQR cost-to-go of the linearisation) -- a diagnostic, not deployable as is."""

    def __init__(self, H, terminal):
        self.H, self.t, self.P = H, 0, lqr_P() if terminal else None

    def __call__(self, obs, act, nxt):
        alive = T.inverted_pendulum_reward(obs, act, nxt)
        q = (nxt.pow(2) * QW).sum(-1)
        r = alive * (1 - 0.01 * q)
        self.t += 1
        if self.P is not None and self.t % self.H == 0:
            r = r - alive * 0.01 * ((nxt @ self.P) * nxt).sum(-1)
        return r
out_path, names = sys.argv[1], sys.argv[2].split(",")
kw = dict(horizon=25, population=60, iterations=3, elite_ratio=0.1, momentum=0.1, particles=1, init_std=0.0)
for a in sys.argv[3:]:
    k, v = a.split("=")
    kw[k] = type(kw[k])(v)
tag = sys.argv[3:]
res = []
for name in names:
    fn = Quad(kw["horizon"], name == "quadterm") if name in ("quad", "quadterm") else VARIANTS[name]
    planner = MPCPlanner(torch.tensor([-3.0]), torch.tensor([3.0]), reward_fn=fn,
                         term_fn=T.inverted_pendulum_termination, **kw)
    gen = torch.Generator().manual_seed(7)
    obs, _ = env.reset(seed=100)
    total, done, xs, t0, n = 0.0, False, [], time.perf_counter(), 0
    while not done:
        a = planner.plan(torch.as_tensor(obs, dtype=torch.float32), step, gen).numpy()
        obs, r, term, trunc, _ = env.step(a)
        total += r
        n += 1
        xs.append(float(obs[0]))
        done = term or trunc
    ms = 1000 * (time.perf_counter() - t0) / n
    res.append({"variant": name, "planner": kw, "return": total, "max_abs_x": float(np.abs(xs).max()),
                "mean_abs_x": float(np.abs(xs).mean()), "ms_per_action": ms})
    print(res[-1], flush=True)
json.dump(res, open(out_path, "w"), indent=1)
