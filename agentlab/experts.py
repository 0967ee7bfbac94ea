"""Expert policies trained with stable-baselines3, cached on disk, shared by every method.

One training run per ``(env, algo, seed)`` lives in ``$AGENTLAB_DATA/experts/<env>/<algo>-s<seed>/``:

* ``snapshots/step_<N>.zip`` + ``step_<N>_vecnormalize.pkl``: the SB3 model (and its observation
  normaliser) every ``snapshot_every`` environment steps. They make training resumable (a killed run
  continues from its last snapshot) and give the intermediate policies D4RL's "medium" level needs.
* ``snapshots/step_<N>_rollouts.npz``: the raw transitions the learner collected since the previous
  snapshot (un-normalised observations and rewards, executed = clipped actions). Concatenated up
  to the medium snapshot they are D4RL's "medium-replay" buffer.
* ``model.zip`` / ``vecnormalize.pkl``: the final (expert) policy; ``meta.json``: the training
  budget, per-snapshot training returns, and, after :func:`expert_levels`, the measured reference
  returns (random policy, expert, chosen medium snapshot).

PPO (on-policy, ~1.3k env steps/s on Hopper here) is the default for the MuJoCo locomotion tasks;
SAC (~100 steps/s with SB3 on this CPU, far more sample-efficient) is available for small tasks such
as DeepMind Control. ``load_expert`` returns an :class:`ExpertPolicy` whose ``act(obs_batch)``
applies the saved observation normalisation, so the policy behaves exactly as it did in training.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
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


# -- training ------------------------------------------------------------------------------------
class _Episodes:
    """The raw transitions the learner collects (for medium-replay), as complete episodes.

    Each environment copy is wrapped in a recorder that buffers its current episode and appends it
    to the shared list when it ends, so a flushed chunk holds whole episodes in completion order.
    An episode still running at a snapshot is carried into the next chunk (or lost if the run
    stops there), never cut.
    """

    def __init__(self) -> None:
        self.done: list[dict[str, np.ndarray]] = []

    def wrap(self, env: Any) -> Any:
        import gymnasium as gym

        sink = self.done

        class Recorder(gym.Wrapper):
            def reset(self, **kw: Any) -> Any:
                obs, info = self.env.reset(**kw)
                self._obs = np.asarray(obs, dtype=np.float32)
                self._ep = _empty_ep()
                return obs, info

            def step(self, action: Any) -> Any:
                obs, r, term, trunc, info = self.env.step(action)
                ep = self._ep
                ep["observations"].append(self._obs)
                ep["actions"].append(np.asarray(action, dtype=np.float32))
                ep["rewards"].append(float(r))
                self._obs = np.asarray(obs, dtype=np.float32)
                ep["next_observations"].append(self._obs)
                ep["terminals"].append(bool(term))
                ep["timeouts"].append(bool(trunc) and not term)
                if term or trunc:
                    sink.append({k: np.asarray(v) for k, v in ep.items()})
                    self._ep = _empty_ep()
                return obs, r, term, trunc, info

        return Recorder(env)

    def flush(self) -> dict[str, np.ndarray]:
        eps, self.done[:] = list(self.done), []
        if not eps:
            return {k: np.zeros((0,)) for k in _empty_ep()}
        return {k: np.concatenate([ep[k] for ep in eps]) for k in eps[0]}


def _make_vec_env(env_id: str, n_envs: int, seed: int, episodes: _Episodes) -> Any:
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    from agentlab.envs import make_env

    # the env checker is skipped: it re-validates every step and costs a visible share of the time
    venv = DummyVecEnv([lambda: Monitor(episodes.wrap(make_env(env_id, disable_env_checker=True)))
                        for _ in range(n_envs)])
    venv.seed(seed)
    return venv


def _new_model(algo: str, venv: Any, seed: int, steps: int) -> Any:
    from stable_baselines3 import PPO, SAC

    if algo == "ppo":
        # SB3 / CleanRL continuous-control defaults (64x64 tanh, 2048-step rollouts, 10 epochs, lr 3e-4,
        # GAE 0.95), with two CPU economies: the rollout comes from N_ENVS copies (one policy call
        # serves 8 steps) and minibatches of 128 (half the optimiser steps of the default 64).
        return PPO("MlpPolicy", venv, n_steps=2048 // venv.num_envs, batch_size=128, n_epochs=10, learning_rate=3e-4, gamma=0.99,
                   gae_lambda=0.95, clip_range=0.2, ent_coef=0.0, seed=seed, device="cpu", verbose=0)
    # SAC: SB3 defaults (256x256, lr 3e-4, batch 256, one update per step) with the buffer sized to the
    # run, so that the snapshot of the replay buffer (needed to resume) stays small
    return SAC("MlpPolicy", venv, learning_rate=3e-4, buffer_size=max(steps, 10_000), learning_starts=5000,
               batch_size=256,
               tau=0.005, gamma=0.99, seed=seed, device="cpu", verbose=0)


def train_expert(env_id: str, algo: str = "ppo", steps: int | None = None, seed: int = 0, force: bool = False,
                 snapshot_every: int | None = None, log: Any = print) -> Path:
    """Train (or resume, or reuse) the expert for ``env_id``; returns its directory.

    A finished expert with at least ``steps`` steps is reused; a partial one resumes from its last
    snapshot; ``force`` deletes it and starts again. Progress is printed at every snapshot.
    """
    from agentlab.envs import make_env

    if algo not in ALGOS:
        raise UserError(f"unknown expert algorithm {algo!r} (choose from {', '.join(ALGOS)})")
    make_env(env_id).close()  # unknown ids fail here with a one-line error
    steps = int(steps or DEFAULT_STEPS[algo])
    if steps <= 0:
        raise UserError("--steps must be positive")
    every = int(snapshot_every or DEFAULT_SNAPSHOT_EVERY[algo])
    path = expert_dir(env_id, algo, seed)
    if force and path.exists():
        with _training_lock(path, env_id):  # refuses while another process trains it
            pass
        shutil.rmtree(path)
    meta = _read_meta(path)
    if algo == "agentlab-sac":
        return _train_agentlab_sac(env_id, steps, seed, path, log)
    if meta.get("finished") and meta.get("steps", 0) >= steps and (path / "model.zip").is_file():
        log(f"expert for {env_id} ({algo}, seed {seed}) already trained ({meta['steps']} steps): {path}")
        return path
    snap = path / "snapshots"
    snap.mkdir(parents=True, exist_ok=True)
    with _training_lock(path, env_id):
        return _train(env_id, algo, steps, seed, every, path, snap, log)


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


def _train_agentlab_sac(env_id: str, steps: int, seed: int, path: Path, log: Any) -> Path:
    """Train (or resume, or reuse) an expert with ``agentlab train sac --preset expert``."""
    import csv

    from agentlab.training import train

    run = path / "run"
    done = 0
    if (run / "metrics.csv").is_file():
        with open(run / "metrics.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        done = int(float(rows[-1]["step"])) if rows else 0
    if not (run / "model.pt").is_file():
        log(f"training agentlab SAC expert for {env_id} ({steps} env steps)")
        train("sac", run, steps=steps, seed=seed, env_id=env_id, preset="expert", force=run.exists(),
              eval_every=max(steps // 5, 1), eval_episodes=5, log_every=2000)
    elif done < steps:
        log(f"resuming agentlab SAC expert for {env_id} from step {done}")
        train(None, run, resume=True, steps=steps)
    meta = _read_meta(path)
    meta.update({"env_id": env_id, "algo": "agentlab-sac", "seed": seed, "target_steps": steps, "finished": True,
                 "steps": max(done, steps)})
    _write_meta(path, meta)
    return path


def _training_lock(path: Path, env_id: str) -> Any:
    """One training process per expert directory (a second one would corrupt the snapshots)."""
    from agentlab.files import exclusive_lock

    return exclusive_lock(path / "training.lock", wait=False,
                          busy=f"the expert for {env_id} is being trained by another process ({path}); "
                               "wait for it to finish")


def _train(env_id: str, algo: str, steps: int, seed: int, every: int, path: Path, snap: Path, log: Any) -> Path:
    import torch
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import VecNormalize

    meta = _read_meta(path)
    torch.set_num_threads(1)

    episodes = _Episodes()
    venv = _make_vec_env(env_id, N_ENVS[algo], seed, episodes)
    done = _snapshots(path)
    if meta.get("finished") and (path / "model.zip").is_file():
        start_zip, start_vn, start = path / "model.zip", path / "vecnormalize.pkl", int(meta["steps"])
    elif done:
        start = done[-1]
        start_zip, start_vn = snap / f"step_{start}.zip", snap / f"step_{start}_vecnormalize.pkl"
    else:
        start = 0
    if start:
        if algo == "ppo":
            venv = VecNormalize.load(str(start_vn), venv)
            venv.training = True
        model = _load_sb3(algo, start_zip)
        model.set_env(venv)
        if hasattr(model, "replay_buffer") and (path / "replay_buffer.pkl").is_file():
            model.load_replay_buffer(str(path / "replay_buffer.pkl"))
        log(f"resuming {env_id} ({algo}) from step {start}")
    else:
        if algo == "ppo":
            venv = VecNormalize(venv, norm_obs=True, norm_reward=True, clip_obs=10.0, gamma=0.99)
        model = _new_model(algo, venv, seed, steps)
        meta = {}
    meta.update({"env_id": env_id, "algo": algo, "seed": seed, "target_steps": steps, "snapshot_every": every,
                 "finished": False})
    meta.setdefault("snapshots", {})
    meta.setdefault("wall_time_s", 0.0)
    _write_meta(path, meta)

    class Snapshots(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.last = start
            self.t0 = time.perf_counter()
            self.t_last = self.t0
            self.steps_last = start

        def _on_step(self) -> bool:
            return True

        def _on_rollout_end(self) -> None:
            n = self.num_timesteps
            if n - self.last < every and n < steps:
                return
            # every file is written to a temporary name and renamed; the model zip comes last and
            # marks the snapshot complete (a run killed half-way resumes from the previous one)
            _save_npz(snap / f"step_{n}_rollouts.npz", episodes.flush())
            if isinstance(self.model.get_env(), VecNormalize):
                self.model.get_env().save(str(snap / "vecnormalize.tmp"))
                os.replace(snap / "vecnormalize.tmp", snap / f"step_{n}_vecnormalize.pkl")
            if hasattr(self.model, "replay_buffer"):  # off-policy: the buffer is needed to resume well
                self.model.save_replay_buffer(str(path / "replay_buffer.tmp.pkl"))
                os.replace(path / "replay_buffer.tmp.pkl", path / "replay_buffer.pkl")
            self.model.save(str(snap / "model.tmp.zip"))
            os.replace(snap / "model.tmp.zip", snap / f"step_{n}.zip")
            rets = [ep["r"] for ep in self.model.ep_info_buffer]
            now = time.perf_counter()
            fps = (n - self.steps_last) / max(now - self.t_last, 1e-9)
            meta["snapshots"][str(n)] = {"train_return_mean": float(np.mean(rets)) if rets else None}
            meta["steps_done"] = n
            meta["wall_time_s"] = float(meta.get("wall_time_s", 0.0) + (now - self.t_last))
            _write_meta(path, meta)
            ret_s = f"{np.mean(rets):.1f}" if rets else "n/a"
            log(f"[{env_id} {algo}] step {n}/{steps} ({100 * n / steps:.0f}%), {fps:.0f} steps/s, "
                f"train return (last {len(rets)} eps) {ret_s}")
            sys.stdout.flush()
            self.last, self.t_last, self.steps_last = n, now, n

    remaining = steps - start
    if remaining > 0:
        model.learn(total_timesteps=remaining, callback=Snapshots(), reset_num_timesteps=False)
    model.save(str(path / "model.tmp.zip"))  # SB3 insists on a .zip suffix; rename = atomic
    os.replace(path / "model.tmp.zip", path / "model.zip")
    if isinstance(model.get_env(), VecNormalize):
        model.get_env().save(str(path / "vecnormalize.pkl"))
    meta.update({"finished": True, "steps": int(model.num_timesteps)})
    _write_meta(path, meta)
    log(f"expert for {env_id} trained: {path} ({meta['steps']} steps, {meta['wall_time_s'] / 60:.1f} min)")
    return path


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    from agentlab.runs import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def replay_transitions(env_id: str, upto: int, algo: str | None = None, seed: int | None = None) -> dict[str, np.ndarray]:
    """All raw transitions the learner collected up to snapshot step ``upto`` (medium-replay)."""
    path = find_expert(env_id, algo, seed)
    parts = []
    for s in _snapshots(path):
        if s > upto:
            break
        f = path / "snapshots" / f"step_{s}_rollouts.npz"
        if f.is_file():
            with np.load(f) as z:
                parts.append({k: z[k] for k in z.files})
    parts = [p for p in parts if len(p["rewards"])]
    if not parts:
        raise UserError(f"expert {path} kept no rollouts up to step {upto}")
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    if not (out["terminals"][-1] or out["timeouts"][-1]):
        out["timeouts"][-1] = True
    return out


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


# -- D4RL levels ---------------------------------------------------------------------------------
EVAL_SEED = 1_000_000  # reference-score episodes use seeds far from training/collection seeds


def expert_levels(env_id: str, algo: str | None = None, seed: int | None = None, episodes: int = 10,
                  log: Any = print) -> dict[str, Any]:
    """Reference returns and the medium snapshot for a trained expert (measured once, cached in meta.json).

    ``ref_min`` = uniform-random policy, ``ref_max`` = the final expert (deterministic), each the mean
    over ``episodes`` episodes; ``medium`` = the snapshot whose stochastic return is closest to one third
    of the expert's stochastic return (D4RL's medium level)."""
    from agentlab.envs import env_spaces

    path = find_expert(env_id, algo, seed)
    meta = _read_meta(path)
    lv = meta.get("levels")
    if lv and lv.get("episodes", 0) >= episodes:
        return lv
    t0 = time.perf_counter()
    _, act_space = env_spaces(env_id)
    rmin, rmin_std = measure_return(RandomPolicy(act_space, EVAL_SEED), env_id, max(episodes, 20), EVAL_SEED)
    expert = load_expert(env_id, meta["algo"], meta["seed"])
    rmax, rmax_std = measure_return(expert, env_id, episodes, EVAL_SEED, deterministic=True)
    rexp_sto, _ = measure_return(expert, env_id, episodes, EVAL_SEED, deterministic=False)
    log(f"{env_id}: random {rmin:.1f}, expert {rmax:.1f} (stochastic {rexp_sto:.1f})")
    target = rmin + (rexp_sto - rmin) / 3.0
    # candidates: the snapshots whose training return is nearest the target, then measured properly
    snaps = {int(k): v.get("train_return_mean") for k, v in meta.get("snapshots", {}).items()}
    snaps = {k: v for k, v in snaps.items() if v is not None and (path / "snapshots" / f"step_{k}.zip").is_file()}
    if not snaps and meta["algo"] == "agentlab-sac":  # no training snapshots: reference returns only
        lv = {"episodes": episodes, "eval_seed": EVAL_SEED, "ref_min_score": rmin, "ref_min_std": rmin_std,
              "ref_max_score": rmax, "ref_max_std": rmax_std, "expert_stochastic_return": rexp_sto,
              "medium_snapshot": None, "time_s": time.perf_counter() - t0}
        meta["levels"] = lv
        _write_meta(path, meta)
        return lv
    if not snaps:
        raise UserError(f"expert {path} has no snapshots to choose a medium policy from")
    cands = sorted(snaps, key=lambda k: abs(snaps[k] - target))[:4]
    measured = {}
    for k in cands:
        pol = load_expert(env_id, meta["algo"], meta["seed"], snapshot=k)
        measured[k] = measure_return(pol, env_id, episodes, EVAL_SEED, deterministic=False)[0]
        log(f"  snapshot {k}: train return {snaps[k]:.1f}, measured {measured[k]:.1f} (target {target:.1f})")
    medium = min(measured, key=lambda k: abs(measured[k] - target))
    lv = {"episodes": episodes, "eval_seed": EVAL_SEED, "ref_min_score": rmin, "ref_min_std": rmin_std,
          "ref_max_score": rmax, "ref_max_std": rmax_std, "expert_stochastic_return": rexp_sto,
          "medium_snapshot": medium, "medium_return": measured[medium], "medium_target": target,
          "time_s": time.perf_counter() - t0}
    meta["levels"] = lv
    _write_meta(path, meta)
    return lv


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


# -- CLI -----------------------------------------------------------------------------------------
def _cli() -> Any:
    import click

    @click.group()
    def experts() -> None:
        """Train expert policies (SB3 PPO/SAC, cached in $AGENTLAB_DATA/experts) and collect demonstrations."""

    @experts.command()
    @click.option("--env", "env_id", required=True, help="environment id, e.g. Hopper-v5 or dmc/walker-walk")
    @click.option("--algo", type=click.Choice(ALGOS), default="ppo", show_default=True)
    @click.option("--steps", type=int, help="environment steps (default: ppo 1M, sac 100k)")
    @click.option("--seed", type=int, default=0, show_default=True)
    @click.option("--force", is_flag=True, help="delete a cached expert and train from scratch")
    @click.option("--levels/--no-levels", default=True, show_default=True,
                  help="afterwards measure reference returns and choose the medium snapshot")
    def train(env_id: str, algo: str, steps: int | None, seed: int, force: bool, levels: bool) -> None:
        """Train (or resume) the expert for ENV; a finished one is reused."""
        path = train_expert(env_id, algo, steps, seed, force, log=click.echo)
        if levels:
            lv = expert_levels(env_id, algo, seed, log=click.echo)
            click.echo(f"ref_min {lv['ref_min_score']:.1f}, ref_max {lv['ref_max_score']:.1f}, "
                       f"medium snapshot {lv['medium_snapshot']} ({lv['medium_return']:.1f})")
        click.echo(f"expert: {path}")

    @experts.command("collect")
    @click.option("--env", "env_id", required=True)
    @click.option("--episodes", type=int, required=True)
    @click.option("--out", type=click.Path(), required=True, help="output D4RL-format HDF5 file")
    @click.option("--seed", type=int, default=0, show_default=True)
    @click.option("--algo", type=click.Choice(ALGOS), help="which cached expert (default: any finished one)")
    @click.option("--stochastic", is_flag=True, help="sample actions instead of the deterministic mean")
    @click.option("--force", is_flag=True, help="overwrite --out if it exists")
    def collect_cmd(env_id: str, episodes: int, out: str, seed: int, algo: str | None, stochastic: bool,
                    force: bool) -> None:
        """Roll out the cached expert for ENV and write the episodes as a D4RL-format HDF5 file."""
        if Path(out).exists() and not force:
            raise UserError(f"{out} exists; pass --force to overwrite it")
        if episodes < 1:
            raise UserError("--episodes must be at least 1")
        pol = load_expert(env_id, algo)
        ds = collect(pol, env_id, episodes, seed, out, deterministic=not stochastic)
        click.echo(f"wrote {out}: {len(ds)} transitions, {episodes} episodes, "
                   f"return {ds.metadata['expert_return_mean']:.1f} +- {ds.metadata['expert_return_std']:.1f}")

    @experts.command("list")
    @click.option("--json", "as_json", is_flag=True)
    def list_cmd(as_json: bool) -> None:
        """Cached experts with their training progress."""
        rows = list_experts()
        if as_json:
            click.echo(json.dumps(rows, indent=2))
            return
        click.echo(f"experts directory: {experts_root()}")
        for r in rows:
            state = "done" if r["finished"] else f"partial ({r['steps']}/{r['target_steps']})"
            ref = f", expert return {r['ref_max_score']:.1f}" if r["ref_max_score"] is not None else ""
            click.echo(f"  {r['env_id']:<24} {r['algo']:<12} seed {r['seed']}  {state}{ref}")

    return experts


experts_cli = _cli()

if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    experts_cli()
