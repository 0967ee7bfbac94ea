"""Rolling experts out: transitions for datasets, demonstration files, measured returns."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from agentlab.errors import UserError


# -- rollouts ------------------------------------------------------------------------------------
def rollout(policy: Any, env_id: str, *, transitions: int | None = None, episodes: int | None = None, seed: int = 0,
            deterministic: bool = True, num_envs: int = 8, progress: str | None = None) -> dict[str, np.ndarray]:
    """Run ``policy`` in ``num_envs`` copies of ``env_id`` (one batched ``act`` per step).

    Stops after ``episodes`` complete episodes, or once ``transitions`` transitions are gathered
    (the last episode is then cut and its final transition marked as a timeout). Episode ``i`` is
    reset with seed ``seed + i``. Returns D4RL-style arrays plus ``episode_returns`` (of complete
    episodes only).
    """
    from agentlab.envs import make_env
    from agentlab.runs import Progress

    if (transitions is None) == (episodes is None):
        raise ValueError("give exactly one of transitions / episodes")
    target_eps = episodes if episodes is not None else None
    num_envs = max(1, min(num_envs, target_eps or num_envs))
    envs = [make_env(env_id, disable_env_checker=True) for _ in range(num_envs)]
    next_seed = 0
    obs = []
    for e in envs:
        o, _ = e.reset(seed=seed + next_seed)
        next_seed += 1
        obs.append(o)
    obs_arr = np.stack(obs).astype(np.float32)
    cur: list[dict[str, list]] = [_empty_ep() for _ in envs]
    finished: list[dict[str, np.ndarray]] = []
    total = 0
    active = np.ones(num_envs, bool)
    started = num_envs
    bar_total = transitions if transitions is not None else target_eps
    import torch

    # sampled actions draw from torch's RNG: seed a private copy so that a rollout is reproducible
    # and the caller's RNG stream is left untouched
    with torch.random.fork_rng(devices=[]), Progress(bar_total, 0, progress or f"rollout {env_id}") as bar:
        torch.manual_seed(seed)
        while active.any():
            idx = np.flatnonzero(active)
            try:
                acts = np.asarray(policy.act(obs_arr[idx], deterministic=deterministic), dtype=np.float32)
            except TypeError:
                acts = np.asarray(policy.act(obs_arr[idx]), dtype=np.float32)
            for j, i in enumerate(idx):
                e = envs[i]
                a = np.clip(acts[j], e.action_space.low, e.action_space.high)
                o, r, term, trunc, _ = e.step(a)
                ep = cur[i]
                ep["observations"].append(obs_arr[i].copy())
                ep["actions"].append(a)
                ep["rewards"].append(float(r))
                ep["next_observations"].append(np.asarray(o, dtype=np.float32))
                ep["terminals"].append(bool(term))
                ep["timeouts"].append(bool(trunc) and not term)
                obs_arr[i] = o
                if term or trunc:
                    finished.append({k: np.asarray(v) for k, v in ep.items()})
                    total += len(ep["rewards"])
                    cur[i] = _empty_ep()
                    enough = (target_eps is not None and started >= target_eps) or \
                             (transitions is not None and total >= transitions)
                    if enough:
                        active[i] = False
                    else:
                        obs_arr[i] = e.reset(seed=seed + next_seed)[0]
                        next_seed += 1
                        started += 1
            if transitions is not None and total >= transitions:
                active[:] = False
            bar.update(min(total, transitions) if transitions is not None else len(finished))
    for e in envs:
        e.close()
    if target_eps is not None:
        finished = finished[:target_eps]
    returns = np.array([ep["rewards"].sum() for ep in finished])
    out = {k: np.concatenate([ep[k] for ep in finished]) for k in finished[0]}
    if transitions is not None and len(out["rewards"]) > transitions:
        out = {k: v[:transitions] for k, v in out.items()}
        if not out["terminals"][-1]:
            out["timeouts"][-1] = True
    out["episode_returns"] = returns
    return out


def _empty_ep() -> dict[str, list]:
    return {k: [] for k in ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts")}


def collect(policy: Any, env_id: str, episodes: int, seed: int = 0, out: str | Path | None = None,
            deterministic: bool = True, metadata: dict[str, Any] | None = None) -> Any:
    """Roll out ``episodes`` episodes of ``policy`` and return (and, with ``out``, write as D4RL HDF5)
    a :class:`~agentlab.data.Dataset` whose metadata carries the policy's mean return."""
    from agentlab.data import Dataset, save_d4rl

    if episodes < 1:
        raise UserError("--episodes must be at least 1")
    t0 = time.perf_counter()
    arr = rollout(policy, env_id, episodes=episodes, seed=seed, deterministic=deterministic,
                  progress=f"collect {env_id}")
    rets = arr.pop("episode_returns")
    meta = {"env_id": env_id, "generator": "agentlab.experts.collect", "seed": seed, "episodes": episodes,
            "deterministic": deterministic, "expert_return_mean": float(rets.mean()),
            "expert_return_std": float(rets.std()), "collect_time_s": time.perf_counter() - t0}
    meta.update(getattr(policy, "info", {}) and {f"expert_{k}": v for k, v in policy.info.items() if k != "env_id"})
    meta.update(metadata or {})
    ds = Dataset(**arr, metadata=meta)
    if out is not None:
        save_d4rl(ds, out)
    return ds


def measure_return(policy: Any, env_id: str, episodes: int, seed: int, deterministic: bool = True) -> tuple[float, float]:
    arr = rollout(policy, env_id, episodes=episodes, seed=seed, deterministic=deterministic,
                  num_envs=min(10, episodes), progress=f"evaluate {env_id}")
    r = arr["episode_returns"]
    return float(r.mean()), float(r.std())
