r"""Objective-mismatch re-weighting tested as the paper tests it: fixed datasets of increasing size.

For one task with known dynamics, seed ``s`` and dataset size ``n``, :func:`fixed_dataset_points`
trains two ensembles on the *same* ``n`` transitions -- plain NLL (:math:`w_i = 1`) and the expert
re-weighted NLL (:math:`w_i = N \operatorname{softmax}_i(-d_i^2 / 2\sigma^2)`,
:func:`agentlab.models.dynamics.proximity_weights`) -- and plans one episode with each through the
*same* CEM controller, from the same initial state and with the same planner random stream (a
paired comparison). The kernel width follows a stated rule, fixed before any evaluation:
:math:`\sigma` is the width at which the weights' effective sample size
:math:`(\sum w)^2 / \sum w^2` is ``ess_target`` (0.5) of the data
(:func:`agentlab.models.dynamics.sigma_for_ess`, computed from the training inputs and the expert
inputs only).

Data sources (nested: the ``n = 250`` set is a prefix of the ``n = 500`` set, and so on):

* ``grid``: uniform samples of the task's state-action box, labelled by the true dynamics;
* ``random``: transitions of uniform-random-action episodes in the environment;
* ``mixture``: alternating oracle-expert and random-episode transitions (half each).

The expert whose neighbourhood gets the weight is the oracle planner (CEM on the true dynamics)
of ``agentlab.agents.pets.oracle_expert``: its first ``expert_episodes - 1`` episodes give the
weights (and the ``mixture`` data), the last one is held out for the expert NLL.

Every model is also a point of the mismatch diagnostic: its per-dimension Gaussian NLL on held-out
expert transitions, on its *own* controller episode (on-policy data) and on held-out grid samples,
against the return of that episode (:mod:`agentlab.models.mismatch` writes the correlations).
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import numpy as np
import torch

from agentlab.agents.pets import PETSAgent, PETSConfig
from agentlab.models.dynamics import (
    EnsembleTrainer,
    GaussianEnsemble,
    effective_sample_fraction,
    proximity_weights,
    sigma_for_ess,
)
from agentlab.models.tasks import get_task, grid_states
from agentlab.nn import Normalizer

SOURCES = ("grid", "random", "mixture")


def _grid(env_id: str, n: int, seed: int) -> dict[str, np.ndarray]:
    task = get_task(env_id)
    obs, act = grid_states(task, n, torch.Generator().manual_seed(seed))
    nxt = task.true_dynamics(obs, act)
    return {"observations": obs.numpy(), "actions": act.numpy(), "next_observations": nxt.numpy(),
            "rewards": task.reward(obs, act, nxt).numpy()}


def _random_episodes(env_id: str, n: int, seed: int) -> dict[str, np.ndarray]:
    from agentlab.envs import make_env

    env = make_env(env_id)
    env.action_space.seed(seed)
    out: dict[str, list] = {"observations": [], "actions": [], "next_observations": [], "rewards": []}
    ep = 0
    while len(out["rewards"]) < n:
        obs, _ = env.reset(seed=seed * 1000 + ep)
        done = False
        while not done and len(out["rewards"]) < n:
            a = env.action_space.sample()
            nxt, r, term, trunc, _ = env.step(a)
            for k, v in zip(out, (obs, a, nxt, r)):
                out[k].append(np.asarray(v, dtype=np.float32))
            obs, done = nxt, term or trunc
        ep += 1
    env.close()
    return {k: np.stack(v) for k, v in out.items()}


def _take(d: dict[str, np.ndarray], idx: Any) -> dict[str, np.ndarray]:
    return {k: d[k][idx] for k in ("observations", "actions", "next_observations", "rewards")}


def _t(d: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.as_tensor(np.asarray(v, dtype=np.float32)) for k, v in d.items()}


def dataset(env_id: str, source: str, n: int, seed: int, expert_train: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The first ``n`` transitions of ``source`` for ``seed`` (nested in ``n``)."""
    if source == "grid":
        return _grid(env_id, n, 20_000 + seed)
    if source == "random":
        return _random_episodes(env_id, n, 30_000 + seed)
    if source == "mixture":
        rand = _random_episodes(env_id, n, 30_000 + seed)
        m = len(expert_train["rewards"])
        perm = np.random.default_rng(40_000 + seed).permutation(m)
        idx = np.arange(n)
        out = {}
        for k in rand:  # even rows: expert (cycled through a seeded permutation), odd rows: random
            col = rand[k][:n].copy()
            col[idx % 2 == 0] = expert_train[k][perm[(idx[idx % 2 == 0] // 2) % m]]
            out[k] = col
        return out
    raise ValueError(f"unknown source {source!r} (use {', '.join(SOURCES)})")


def split_expert(expert: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(weights/mixture part, held-out last episode) of oracle-expert transitions."""
    n = len(expert["rewards"])
    ep_len = n // max(len(expert["returns"]), 1)
    keep = np.arange(n) < n - ep_len
    return _take(expert, keep), _take(expert, ~keep)


def train_model(cfg: PETSConfig, obs_dim: int, act_dim: int, data: dict[str, torch.Tensor],
                weights: torch.Tensor | None, seed: int, min_steps: int) -> tuple[GaussianEnsemble, dict[str, float]]:
    """A fresh ensemble fit on ``data`` with held-out early stopping; at least ``min_steps`` gradient
    steps are allowed (epochs of a few hundred rows are only a handful of steps)."""
    torch.manual_seed(seed)
    model = GaussianEnsemble(obs_dim, act_dim, members=cfg.members, hidden=cfg.hidden, activation=cfg.activation,
                             num_elites=cfg.num_elites)
    trainer = EnsembleTrainer(model, lr=cfg.lr, weight_decay=cfg.weight_decay, batch_size=cfg.batch_size,
                              holdout_ratio=cfg.holdout_ratio, patience=cfg.patience, max_epochs=cfg.max_epochs)
    n_tr = int(len(data["rewards"]) * (1 - cfg.holdout_ratio))
    steps_per_epoch = max(1, math.ceil(n_tr / cfg.batch_size))
    epochs = max(cfg.max_epochs, math.ceil(min_steps / steps_per_epoch))
    info = trainer.fit(data["observations"], data["actions"], data["next_observations"], data["rewards"], weights,
                       torch.Generator().manual_seed(seed), max_epochs=epochs)
    return model, info


def rollout(agent: PETSAgent, env_id: str, env_seed: int, plan_seed: int) -> tuple[float, dict[str, np.ndarray], float]:
    """One controller episode: (return, its transitions, planning ms per step)."""
    from agentlab.envs import make_env

    env = make_env(env_id)
    agent.reset_episodes(1, seed=plan_seed)
    obs, _ = env.reset(seed=env_seed)
    out: dict[str, list] = {"observations": [], "actions": [], "next_observations": [], "rewards": []}
    total, done, t_plan = 0.0, False, 0.0
    while not done:
        t0 = time.perf_counter()
        a = agent.plan(torch.as_tensor(obs, dtype=torch.float32)).numpy()
        t_plan += time.perf_counter() - t0
        nxt, r, term, trunc, _ = env.step(a)
        for k, v in zip(out, (obs, a, nxt, r)):
            out[k].append(np.asarray(v, dtype=np.float32))
        total += float(r)
        obs, done = nxt, term or trunc
    env.close()
    n = len(out["rewards"])
    return total, {k: np.stack(v) for k, v in out.items()}, 1000 * t_plan / max(n, 1)


def fixed_dataset_points(env_id: str, cfg: PETSConfig, seed: int, size: int, source: str,
                         expert: dict[str, np.ndarray], ess_target: float = 0.5, grid_eval: int = 2000,
                         min_steps: int = 1500, log: Any = None) -> list[dict[str, Any]]:
    """Plain and re-weighted models on the same ``size`` transitions; one record per model."""
    from agentlab.agents.base import spaces_from_env
    from agentlab.seeding import evaluation_seed

    log = log or (lambda *_: None)
    task = get_task(env_id)
    if task.true_dynamics is None or task.grid is None:
        from agentlab.errors import UserError

        raise UserError(f"fixed-dataset re-weighting needs known dynamics; {env_id!r} has none")
    exp_train, exp_eval = split_expert(expert)
    data = _t(dataset(env_id, source, size, seed, exp_train))
    inputs = torch.cat([data["observations"], data["actions"]], 1)
    e_in = torch.as_tensor(np.concatenate([exp_train["observations"], exp_train["actions"]], 1))
    norm = Normalizer(inputs.shape[1], eps=1e-6).fit(inputs)
    sigma = sigma_for_ess(inputs, e_in, norm, ess_target)
    eval_sets = {"expert": _t(exp_eval), "grid": _t(_grid(env_id, grid_eval, 90_000 + seed))}
    spaces = {**spaces_from_env(env_id), "env_id": env_id}
    cfg = dataclasses.replace(cfg, reweight="none")
    points = []
    for weighting in ("none", "expert"):
        weights = proximity_weights(inputs, e_in, norm, sigma) if weighting == "expert" else None
        t0 = time.perf_counter()
        model, info = train_model(cfg, inputs.shape[1] - data["actions"].shape[1], data["actions"].shape[1], data,
                                  weights, 1000 * seed + size, min_steps)
        train_s = time.perf_counter() - t0
        agent = PETSAgent(cfg, spaces)
        agent.model.load_state_dict(model.state_dict())
        # paired: same initial state and planner random stream for both weightings
        ret, traj, plan_ms = rollout(agent, env_id, evaluation_seed(seed) + 500, 7 + seed)
        sets = {**eval_sets, "onpolicy": _t(traj)}
        nll = {s: model.gaussian_nll(e["observations"], e["actions"], e["next_observations"]) for s, e in sets.items()}
        points.append({"seed": seed, "source": source, "n_train": size, "weighting": weighting,
                       "train_set": f"{source}-{size}-{'rw' if weighting == 'expert' else 'plain'}",
                       "epochs": int(info["train/model_epochs"]), "sigma": sigma,
                       "ess_frac": effective_sample_fraction(weights) if weights is not None else 1.0,
                       "holdout_mse": info["train/model_holdout_mse"], "return": ret,
                       "plan_ms_per_step": plan_ms, "train_s": train_s,
                       **{f"nll_{s}": v for s, v in nll.items()}})
        log(f"  {source} n={size} {weighting}: return {ret:.1f}, sigma {sigma:.3g}, "
            + ", ".join(f"NLL {s} {v:.2f}" for s, v in nll.items()))
    return points


def paired_summary(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (source, size): mean return of plain and re-weighted models, the mean paired difference and
    how many seeds the re-weighted model won, mean sigma and ESS."""
    rows = []
    keys = sorted({(p["source"], p["n_train"]) for p in points})
    for src, n in keys:
        pts = [p for p in points if p["source"] == src and p["n_train"] == n]
        by = {(p["seed"], p["weighting"]): p for p in pts}
        seeds = sorted({p["seed"] for p in pts if (p["seed"], "none") in by and (p["seed"], "expert") in by})
        if not seeds:
            continue
        plain = np.array([by[(s, "none")]["return"] for s in seeds])
        rw = np.array([by[(s, "expert")]["return"] for s in seeds])
        diff = rw - plain
        rows.append({"source": src, "n_train": n, "seeds": len(seeds), "plain": float(plain.mean()),
                     "reweighted": float(rw.mean()), "diff": float(diff.mean()),
                     "diff_sem": float(diff.std(ddof=1) / math.sqrt(len(diff))) if len(diff) > 1 else float("nan"),
                     "wins": int((diff > 0).sum()),
                     "sigma": float(np.mean([by[(s, "expert")]["sigma"] for s in seeds])),
                     "ess_frac": float(np.mean([by[(s, "expert")]["ess_frac"] for s in seeds]))})
    return rows
