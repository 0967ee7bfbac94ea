"""Shared policy evaluation: N episodes, stepped as one batch across environments."""

from __future__ import annotations

from typing import Any

import numpy as np

from agentlab.errors import UserError

#: environments kept per (env id, kwargs) across calls in this process: periodic evaluation does not
#: rebuild its environments (every episode is reset with its own seed, so reuse changes no result)
_ENV_CACHE: dict[tuple[str, str], list[Any]] = {}


def cached_envs(env_id: str, n: int, env_kwargs: dict | None = None) -> list[Any]:
    """``n`` environments of ``env_id`` from the process-wide cache (made on first use)."""
    from agentlab.envs import make_env

    key = (env_id, repr(sorted((env_kwargs or {}).items())))
    pool = _ENV_CACHE.setdefault(key, [])
    while len(pool) < n:
        pool.append(make_env(env_id, **(env_kwargs or {})))
    return pool[:n]


def evaluate(policy: Any, env_id: str, episodes: int = 10, seed: int = 0, ref_scores: Any = None,
             max_parallel: int = 10, env_kwargs: dict | None = None, envs: list | None = None) -> dict[str, float]:
    """Run ``episodes`` episodes of ``policy`` (anything with ``.act(batched_obs)``).

    Episodes run in groups of up to ``max_parallel`` environments whose observations are acted on
    as one batch (one network call per step for the whole group). Episode ``i`` is reset with
    ``seed + i``, so results do not depend on ``max_parallel``. Returns the mean/std return, mean
    length and, when reference scores are known (``ref_scores``: a dataset, a metadata dict or a
    D4RL name), the normalised score on the 0-100 scale. Environments come from a process-wide
    cache (:func:`cached_envs`), so periodic evaluation builds them once; ``envs``: environments to
    use instead (at most ``len(envs)`` episodes run at a time), e.g. with the run's own wrappers.
    """
    if episodes < 1:
        raise UserError("--episodes must be at least 1")
    # a mixture policy that draws a member per episode asks for fewer parallel episodes
    max_parallel = max(1, min(max_parallel, int(getattr(getattr(policy, "agent", policy), "eval_max_parallel",
                                                        max_parallel))))
    if envs is not None:
        max_parallel = min(max_parallel, len(envs))
    returns, lengths, successes = [], [], []
    for start in range(0, episodes, max_parallel):
        n = min(max_parallel, episodes - start)
        group = envs[:n] if envs is not None else cached_envs(env_id, n, env_kwargs)
        if hasattr(policy, "reset"):
            policy.reset(n, seed + start)
        obs = np.stack([e.reset(seed=seed + start + i)[0] for i, e in enumerate(group)])
        ret = np.zeros(n)
        length = np.zeros(n, dtype=int)
        success = np.zeros(n, dtype=bool)
        alive = np.ones(n, dtype=bool)
        while alive.any():
            idx = np.flatnonzero(alive)
            actions = np.asarray(policy.act(obs[idx]))
            for j, i in enumerate(idx):
                a = np.clip(actions[j], group[i].action_space.low, group[i].action_space.high)
                o, r, term, trunc, info = group[i].step(a)
                ret[i] += r
                length[i] += 1
                success[i] |= bool(info.get("success", False) or info.get("is_success", False))
                obs[i] = o
                if term or trunc:
                    alive[i] = False
        returns.extend(ret.tolist())
        lengths.extend(length.tolist())
        successes.extend(success.tolist())
    out = {"return_mean": float(np.mean(returns)), "return_std": float(np.std(returns)),
           "length_mean": float(np.mean(lengths)), "success_rate": float(np.mean(successes)),
           "episodes": float(episodes)}
    if ref_scores is not None:
        from agentlab.data.scores import normalized_score

        try:
            out["normalized_score"] = float(np.mean(normalized_score(ref_scores, returns)))
        except UserError:
            pass
    return out
