"""Where experts live and how to load them: paths, meta.json, snapshots, :func:`load_expert`."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from agentlab.errors import UserError


ALGOS = ("ppo", "sac", "agentlab-sac")
DEFAULT_STEPS = {"ppo": 1_000_000, "sac": 100_000, "agentlab-sac": 50_000}
DEFAULT_SNAPSHOT_EVERY = {"ppo": 20_480, "sac": 10_000, "agentlab-sac": 10_000}
N_ENVS = {"ppo": 8, "sac": 1, "agentlab-sac": 1}



# -- paths ---------------------------------------------------------------------------------------
def experts_root() -> Path:
    from agentlab.data.io import dataset_dir

    return dataset_dir() / "experts"


def env_slug(env_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", env_id)


def expert_dir(env_id: str, algo: str = "ppo", seed: int = 0) -> Path:
    return experts_root() / env_slug(env_id) / f"{algo}-s{seed}"


def _read_meta(path: Path) -> dict[str, Any]:
    f = path / "meta.json"
    return json.loads(f.read_text()) if f.is_file() else {}


def _write_meta(path: Path, meta: dict[str, Any]) -> None:
    from agentlab.runs import atomic_write_text

    atomic_write_text(path / "meta.json", json.dumps(meta, indent=2, default=float))


def _snapshots(path: Path) -> list[int]:
    snap = path / "snapshots"
    if not snap.is_dir():
        return []
    steps = [int(m.group(1)) for p in snap.glob("step_*.zip") if (m := re.fullmatch(r"step_(\d+)\.zip", p.name))]
    # a PPO snapshot is complete once its normaliser is written (SAC runs have none)
    needs_vn = _read_meta(path).get("algo", "ppo") == "ppo"
    return sorted(s for s in steps if not needs_vn or (snap / f"step_{s}_vecnormalize.pkl").is_file())


# -- the policy users get ------------------------------------------------------------------------
class ExpertPolicy:
    """An SB3 policy plus its observation normaliser: ``act(obs, deterministic=True)``.

    ``obs`` is one raw observation ``[obs_dim]`` or a batch ``[B, obs_dim]``; actions come back
    clipped to the action space (what the environment executes).
    """

    def __init__(self, model: Any, obs_mean: np.ndarray | None, obs_var: np.ndarray | None, clip_obs: float = 10.0,
                 epsilon: float = 1e-8, info: dict[str, Any] | None = None):
        self.model = model
        self.obs_mean, self.obs_var = obs_mean, obs_var
        self.clip_obs, self.epsilon = clip_obs, epsilon
        self.info = info or {}
        space = model.action_space
        self.low, self.high = space.low.astype(np.float32), space.high.astype(np.float32)

    def normalize(self, obs: np.ndarray) -> np.ndarray:
        if self.obs_mean is None:
            return obs
        return np.clip((obs - self.obs_mean) / np.sqrt(self.obs_var + self.epsilon), -self.clip_obs, self.clip_obs)

    def act(self, obs: Any, deterministic: bool = True) -> np.ndarray:
        import torch

        x = np.asarray(obs, dtype=np.float32)
        single = x.ndim == 1
        x = self.normalize(x[None] if single else x).astype(np.float32)
        with torch.no_grad():
            a, _ = self.model.policy.predict(x, deterministic=deterministic)
        a = np.clip(np.asarray(a, dtype=np.float32), self.low, self.high)
        return a[0] if single else a

    def __call__(self, obs: Any) -> np.ndarray:
        return self.act(obs)


class RandomPolicy:
    """Uniform actions in the action space (D4RL's "random" level and ref_min)."""

    def __init__(self, action_space: Any, seed: int = 0):
        self.low, self.high = action_space.low.astype(np.float32), action_space.high.astype(np.float32)
        self.rng = np.random.default_rng(seed)

    def act(self, obs: Any, deterministic: bool = True) -> np.ndarray:
        x = np.asarray(obs)
        n = 1 if x.ndim == 1 else len(x)
        a = self.rng.uniform(self.low, self.high, size=(n, len(self.low))).astype(np.float32)
        return a[0] if x.ndim == 1 else a


def _load_sb3(algo: str, zip_path: Path) -> Any:
    from stable_baselines3 import PPO, SAC

    cls = {"ppo": PPO, "sac": SAC}[algo]
    return cls.load(str(zip_path), device="cpu")


def _policy_from_files(algo: str, zip_path: Path, vecnorm_path: Path | None, info: dict[str, Any]) -> ExpertPolicy:
    import pickle

    model = _load_sb3(algo, zip_path)
    mean = var = None
    clip_obs, eps = 10.0, 1e-8
    if vecnorm_path is not None and vecnorm_path.is_file():
        with open(vecnorm_path, "rb") as f:
            vn = pickle.load(f)  # our own file, written by SB3's VecNormalize.save
        if getattr(vn, "norm_obs", False):
            mean, var = vn.obs_rms.mean.astype(np.float32), vn.obs_rms.var.astype(np.float32)
            clip_obs, eps = float(vn.clip_obs), float(vn.epsilon)
    return ExpertPolicy(model, mean, var, clip_obs, eps, info)


def find_expert(env_id: str, algo: str | None = None, seed: int | None = None) -> Path:
    """The directory of a finished expert for ``env_id`` (the given algo/seed, else any finished one)."""
    base = experts_root() / env_slug(env_id)
    cands = []
    if base.is_dir():
        for d in sorted(base.iterdir()):
            meta = _read_meta(d)
            if not meta.get("finished") or not ((d / "model.zip").is_file() or (d / "run" / "model.pt").is_file()):
                continue
            if algo is not None and meta.get("algo") != algo:
                continue
            if seed is not None and meta.get("seed") != seed:
                continue
            cands.append(d)
    if not cands:
        what = "/".join(x for x in (algo, None if seed is None else f"seed {seed}") if x)
        raise UserError(f"no trained expert for {env_id}{' (' + what + ')' if what else ''} in {base}; "
                        f"train one with `agentlab experts train --env {env_id}`")
    # prefer the default algorithm for the env, then seed 0
    cands.sort(key=lambda d: (_read_meta(d).get("algo") != "ppo", _read_meta(d).get("seed", 0)))
    return cands[0]


def load_expert(env_id: str, algo: str | None = None, seed: int | None = None,
                snapshot: int | None = None) -> ExpertPolicy:
    """The trained expert for ``env_id`` (or one of its training snapshots) as an :class:`ExpertPolicy`."""
    path = find_expert(env_id, algo, seed)
    meta = _read_meta(path)
    algo = meta["algo"]
    if algo == "agentlab-sac":  # our SAC (agentlab.agents.sac): a run directory, no snapshots
        return AgentlabExpert(path / "run", {"env_id": env_id, "algo": algo, "path": str(path),
                                            "steps": meta.get("steps")})
    if snapshot is None:
        return _policy_from_files(algo, path / "model.zip", path / "vecnormalize.pkl",
                                  {"env_id": env_id, "algo": algo, "path": str(path), "steps": meta.get("steps")})
    snap = path / "snapshots"
    if not (snap / f"step_{snapshot}.zip").is_file():
        raise UserError(f"expert {path} has no snapshot at step {snapshot} (has {_snapshots(path)})")
    return _policy_from_files(algo, snap / f"step_{snapshot}.zip", snap / f"step_{snapshot}_vecnormalize.pkl",
                              {"env_id": env_id, "algo": algo, "path": str(path), "steps": snapshot})


class AgentlabExpert:
    """An expert trained with agentlab's own SAC (``agentlab.load`` of its run directory).

    With action repeat the policy holds each action for k calls, which matches environments stepped
    in lock-step from a common reset (as :func:`rollout` does for DeepMind Control's fixed-length
    episodes)."""

    def __init__(self, run_dir: Path, info: dict[str, Any]):
        import agentlab

        self.policy = agentlab.load(run_dir)
        self.policy.reset(1)
        self.info = info

    def act(self, obs: Any, deterministic: bool = True) -> np.ndarray:
        self.policy.deterministic = deterministic
        return self.policy.act(obs)


def list_experts() -> list[dict[str, Any]]:
    rows = []
    root = experts_root()
    if not root.is_dir():
        return rows
    for env_d in sorted(root.iterdir()):
        for d in sorted(env_d.iterdir()) if env_d.is_dir() else []:
            meta = _read_meta(d)
            if not meta:
                continue
            rows.append({"env_id": meta.get("env_id", env_d.name), "algo": meta.get("algo"), "seed": meta.get("seed"),
                         "finished": bool(meta.get("finished")), "steps": meta.get("steps", meta.get("steps_done", 0)),
                         "target_steps": meta.get("target_steps"),
                         "ref_max_score": (meta.get("levels") or {}).get("ref_max_score"), "path": str(d)})
    return rows
