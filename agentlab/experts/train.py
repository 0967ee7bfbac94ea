"""Training experts (SB3 PPO/SAC or agentlab SAC): resumable snapshots, one trainer per expert."""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from agentlab.errors import UserError
from agentlab.experts.rollout import _empty_ep
from agentlab.experts.store import (
    ALGOS,
    DEFAULT_SNAPSHOT_EVERY,
    DEFAULT_STEPS,
    N_ENVS,
    _load_sb3,
    _read_meta,
    _snapshots,
    _write_meta,
    expert_dir,
    find_expert,
)


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


def _train_agentlab_sac(env_id: str, steps: int, seed: int, path: Path, log: Any) -> Path:
    """Train (or resume, or reuse) an expert with ``agentlab train sac --preset expert``."""
    from agentlab.runs import read_metrics
    from agentlab.training import train

    run = path / "run"
    rows = read_metrics(run)
    done = int(rows[-1]["step"]) if rows else 0
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
