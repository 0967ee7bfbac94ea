"""Regenerate OGBench datasets locally with OGBench's own oracles (``agentlab data make ogbench/NAME``).

The protocol is that of the ogbench repository's ``data_gen_scripts`` (``generate_manipspace.py``,
``generate_locomaze.py`` and the command lines in ``commands.sh``), re-written here:

* **manipulation** (``cube-*``, ``scene``, ``puzzle-*``): the environment in ``mode='data_collection'``
  with ``terminate_at_goal=False`` and a 1001-step limit. ``play`` datasets follow the non-Markovian
  plan oracles shipped in ``ogbench.manipspace.oracles.plan`` (``noise=0.1``, ``noise_smoothing=0.5``);
  ``noisy`` datasets the closed-loop Markov oracles (``min_norm=0.4``, Gaussian action noise with a
  per-episode level ``xi ~ U(0, 0.1)`` scaled ``[1, 1, 1, 3, 10]`` per action dimension, and a random
  action with probability 0.1 -- 0.2 for puzzles). When the oracle finishes a sub-task the env draws a
  new target (cube-stacking probability per episode: 0 single, U(0, 0.25) double, 0.5 otherwise).
  ``scene`` episodes that push the cube out of view are discarded and re-drawn (the official health check).
* **pointmaze navigate**: the oracle's action is the unit direction to the next BFS subgoal
  (``env.get_oracle_subgoal``) plus Gaussian noise of std 0.5, clipped to [-1, 1]; the start is a random
  free cell, every goal a random vertex cell (no hallway cells), and a new goal is drawn whenever the
  current one is reached. (The official script imports JAX and an SAC agent for this; for the point
  mass the "agent" is the identity on the direction, which is what is written here.)

Layout, as OGBench's own files: ``NAME.npz`` holds ``episodes`` episodes and ``NAME-val.npz`` the next
``episodes // 10``; keys ``observations`` (float32), ``actions`` (float32), ``terminals`` (bool: the
last step of each episode), ``qpos``, ``qvel`` (float32, the state *before* the step) and
``button_states`` (int64) where the env has buttons. ``ogbench.make_env_and_datasets(...,
dataset_path=...)`` reads these files. We add one key, ``metadata_json`` (provenance and the oracle's
own success statistics), which OGBench's loader ignores.

Determinism and resuming: episode ``i`` is drawn with ``np.random`` and ``env.reset`` seeded by
``(seed, i)``, so a file of ``N`` episodes is the first ``N`` episodes of any larger one, and episodes
are generated in chunks saved under ``NAME.npz.parts/``: an interrupted run resumes where it stopped.
(The official scripts do not seed, so our files are not bit-identical to OGBench's; the protocol is.)
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from agentlab.errors import UserError

#: the official episode length of every dataset made here (``--max_episode_steps=1001``)
EPISODE_STEPS = 1001
CHUNK_EPISODES = 10


@dataclasses.dataclass(frozen=True)
class OGSpec:
    name: str  # dataset name, e.g. cube-single-play-v0
    env_name: str  # goal-conditioned env it is collected in, e.g. cube-single-v0
    kind: str  # "manip" or "maze"
    dataset_type: str  # play | noisy | navigate
    episodes: int = 1000  # official training episodes (val: episodes // 10)
    p_random_action: float = 0.0

    @property
    def official_transitions(self) -> int:
        """Transitions ogbench's loader returns from the full training file (one per step but the last)."""
        return self.episodes * (EPISODE_STEPS - 1)


def _specs() -> dict[str, OGSpec]:
    out: list[OGSpec] = []
    for env in ("cube-single", "cube-double", "scene", "puzzle-3x3"):
        out.append(OGSpec(f"{env}-play-v0", f"{env}-v0", "manip", "play"))
        out.append(OGSpec(f"{env}-noisy-v0", f"{env}-v0", "manip", "noisy",
                          p_random_action=0.2 if env.startswith("puzzle") else 0.1))
    for maze in ("medium", "large"):
        out.append(OGSpec(f"pointmaze-{maze}-navigate-v0", f"pointmaze-{maze}-v0", "maze", "navigate"))
    return {s.name: s for s in out}


SPECS: dict[str, OGSpec] = _specs()


def _episode_seed(seed: int, episode: int, attempt: int = 0) -> int:
    return (seed * 1_000_003 + episode * 101 + attempt) % (2**31 - 1)


# ---------------------------------------------------------------------------------------------
# oracles, one episode at a time
# ---------------------------------------------------------------------------------------------
def _make_env(spec: OGSpec) -> Any:
    import gymnasium

    import ogbench  # noqa: F401  (registers the environments)

    kwargs: dict[str, Any] = dict(terminate_at_goal=False, max_episode_steps=EPISODE_STEPS)
    if spec.kind == "manip":
        kwargs["mode"] = "data_collection"
    return gymnasium.make(spec.env_name, **kwargs)


def _manip_oracles(spec: OGSpec, env: Any) -> dict[str, Any]:
    from ogbench.manipspace.oracles.markov.button_markov import ButtonMarkovOracle
    from ogbench.manipspace.oracles.markov.cube_markov import CubeMarkovOracle
    from ogbench.manipspace.oracles.markov.drawer_markov import DrawerMarkovOracle
    from ogbench.manipspace.oracles.markov.window_markov import WindowMarkovOracle
    from ogbench.manipspace.oracles.plan.button_plan import ButtonPlanOracle
    from ogbench.manipspace.oracles.plan.cube_plan import CubePlanOracle
    from ogbench.manipspace.oracles.plan.drawer_plan import DrawerPlanOracle
    from ogbench.manipspace.oracles.plan.window_plan import WindowPlanOracle

    plan = dict(noise=0.1, noise_smoothing=0.5)
    markov = dict(min_norm=0.4)
    if spec.env_name.startswith("cube"):
        return {"cube": CubeMarkovOracle(env=env, **markov) if spec.dataset_type == "noisy"
                else CubePlanOracle(env=env, **plan)}
    if spec.env_name.startswith("scene"):
        if spec.dataset_type == "noisy":
            return {"cube": CubeMarkovOracle(env=env, max_step=100, **markov),
                    "button": ButtonMarkovOracle(env=env, **markov),
                    "drawer": DrawerMarkovOracle(env=env, **markov), "window": WindowMarkovOracle(env=env, **markov)}
        return {"cube": CubePlanOracle(env=env, **plan), "button": ButtonPlanOracle(env=env, **plan),
                "drawer": DrawerPlanOracle(env=env, **plan), "window": WindowPlanOracle(env=env, **plan)}
    # puzzles: buttons only, gripper kept closed
    if spec.dataset_type == "noisy":
        return {"button": ButtonMarkovOracle(env=env, gripper_always_closed=True, **markov)}
    return {"button": ButtonPlanOracle(env=env, gripper_always_closed=True, **plan)}


def _p_stack(env_name: str) -> float:
    if "single" in env_name:
        return 0.0
    if "double" in env_name:
        return float(np.random.uniform(0.0, 0.25))
    return 0.5


def _scene_healthy(qpos: np.ndarray) -> bool:
    """The official check: the cube stays in view unless it is inside the drawer."""
    xyz = qpos[:, 14:17]
    if (xyz[:, 1] >= 0.29).any():
        return False
    return not ((xyz[:, 1] <= -0.3) & ((xyz[:, 2] < 0.06) | (xyz[:, 2] > 0.08))).any()


def _manip_episode(spec: OGSpec, env: Any, oracles: dict[str, Any], rng_seed: int) -> tuple[dict, dict]:
    np.random.seed(rng_seed)
    ob, info = env.reset(seed=rng_seed)
    p_stack = _p_stack(spec.env_name)
    xi = float(np.random.uniform(0, 0.1)) if spec.dataset_type == "noisy" else 0.0
    agent = oracles[info["privileged/target_task"]]
    agent.reset(ob, info)
    has_buttons = hasattr(env.unwrapped, "_cur_button_states")
    ep: dict[str, list] = {"observations": [], "actions": [], "terminals": [], "qpos": [], "qvel": []}
    if has_buttons:
        ep["button_states"] = []
    subtasks = successes = 0
    done = False
    while not done:
        if np.random.rand() < spec.p_random_action:
            action = env.action_space.sample()
        else:
            action = np.asarray(agent.select_action(ob, info))
            if spec.dataset_type == "noisy":
                action = action + np.random.normal(0, [xi, xi, xi, xi * 3, xi * 10], action.shape)
        action = np.clip(action, -1, 1)
        next_ob, _, terminated, truncated, info = env.step(action)
        done = terminated or truncated
        if agent.done:
            # the oracle's own success: was the sub-task's target reached when it finished?
            subtasks += 1
            successes += int(bool(info["success"]))
            agent_ob, agent_info = env.unwrapped.set_new_target(p_stack=p_stack)
            agent = oracles[agent_info["privileged/target_task"]]
            agent.reset(agent_ob, agent_info)
        ep["observations"].append(ob)
        ep["actions"].append(action)
        ep["terminals"].append(done)
        ep["qpos"].append(info["prev_qpos"])
        ep["qvel"].append(info["prev_qvel"])
        if has_buttons:
            ep["button_states"].append(info["prev_button_states"])
        ob = next_ob
    return ep, {"subtasks": subtasks, "successes": successes}


def _maze_cells(env: Any) -> tuple[list, list]:
    maze_map = env.unwrapped.maze_map
    free, vertex = [], []
    for i in range(maze_map.shape[0]):
        for j in range(maze_map.shape[1]):
            if maze_map[i, j] != 0:
                continue
            free.append((i, j))
            vertical_hall = maze_map[i - 1, j] == 0 and maze_map[i + 1, j] == 0 and maze_map[i, j - 1] == 1 \
                and maze_map[i, j + 1] == 1
            horizontal_hall = maze_map[i, j - 1] == 0 and maze_map[i, j + 1] == 0 and maze_map[i - 1, j] == 1 \
                and maze_map[i + 1, j] == 1
            if not (vertical_hall or horizontal_hall):
                vertex.append((i, j))
    return free, vertex


def _maze_episode(spec: OGSpec, env: Any, cells: tuple[list, list], rng_seed: int,
                  noise: float = 0.5) -> tuple[dict, dict]:
    free, vertex = cells
    np.random.seed(rng_seed)
    init_ij = free[np.random.randint(len(free))]
    goal_ij = vertex[np.random.randint(len(vertex))]
    ob, _ = env.reset(seed=rng_seed, options=dict(task_info=dict(init_ij=init_ij, goal_ij=goal_ij)))
    u = env.unwrapped
    ep: dict[str, list] = {"observations": [], "actions": [], "terminals": [], "qpos": [], "qvel": []}
    goals, reached = 1, 0
    done = False
    while not done:
        subgoal_xy, _ = u.get_oracle_subgoal(u.get_xy(), u.cur_goal_xy)
        direction = subgoal_xy - u.get_xy()
        direction = direction / (np.linalg.norm(direction) + 1e-6)
        action = np.clip(direction + np.random.normal(0, noise, direction.shape), -1, 1)
        next_ob, _, terminated, truncated, info = env.step(action)
        done = terminated or truncated
        if info["success"]:
            reached += 1
            goals += 1
            u.set_goal(vertex[np.random.randint(len(vertex))])
        ep["observations"].append(ob)
        ep["actions"].append(action)
        ep["terminals"].append(done)
        ep["qpos"].append(info["prev_qpos"])
        ep["qvel"].append(info["prev_qvel"])
        ob = next_ob
    return ep, {"subtasks": goals, "successes": reached}


def _dtype(key: str) -> Any:
    return {"terminals": bool, "button_states": np.int64}.get(key, np.float32)


def generate_chunk(name: str, episodes: list[int], seed: int, path: str) -> dict[str, Any]:
    """Generate ``episodes`` (indices) of dataset ``name`` into the ``.npz`` chunk ``path`` (atomically)."""
    spec = SPECS[name]
    env = _make_env(spec)
    helper = _manip_oracles(spec, env) if spec.kind == "manip" else _maze_cells(env)
    cols: dict[str, list] = {}
    stats = {"subtasks": 0, "successes": 0, "retries": 0, "lengths": []}
    for e in episodes:
        attempt = 0
        while True:
            s = _episode_seed(seed, e, attempt)
            ep, st = (_manip_episode if spec.kind == "manip" else _maze_episode)(spec, env, helper, s)
            if spec.env_name.startswith("scene") and not _scene_healthy(np.asarray(ep["qpos"])):
                attempt += 1
                stats["retries"] += 1
                continue
            break
        for k, v in ep.items():
            cols.setdefault(k, []).append(np.asarray(v, dtype=_dtype(k)))
        stats["subtasks"] += st["subtasks"]
        stats["successes"] += st["successes"]
        stats["lengths"].append(len(ep["terminals"]))
    env.close()
    arrays = {k: np.concatenate(v) for k, v in cols.items()}
    tmp = f"{path}.tmp.npz"
    np.savez(tmp, stats_json=np.array(json.dumps(stats)), **arrays)
    os.replace(tmp, path)
    return stats


# ---------------------------------------------------------------------------------------------
# driver: chunks on disk, workers, progress
# ---------------------------------------------------------------------------------------------
def _fmt_s(s: float) -> str:
    s = int(max(s, 0))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


class _Progress:
    def __init__(self, total: int, done: int, label: str, log: Any):
        self.total, self.done, self.label, self.log = total, done, label, log
        self.start_done, self.t0 = done, time.perf_counter()
        self.tty = sys.stderr.isatty() and log is print

    def update(self, n: int) -> None:
        self.done += n
        el = time.perf_counter() - self.t0
        rate = (self.done - self.start_done) / max(el, 1e-9)
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        w = 30
        fill = int(w * self.done / self.total)
        line = (f"{self.label} [{'#' * fill}{'-' * (w - fill)}] {self.done}/{self.total} episodes, "
                f"{rate * 60:.1f} ep/min, elapsed {_fmt_s(el)}, ETA {_fmt_s(eta) if np.isfinite(eta) else '?'}")
        if self.tty:
            sys.stderr.write("\r" + line + ("\n" if self.done >= self.total else ""))
            sys.stderr.flush()
        else:
            self.log(line)


def _check_name(name: str) -> OGSpec:
    if name not in SPECS:
        import difflib

        close = difflib.get_close_matches(name, list(SPECS), n=3)
        hint = f" (did you mean {', '.join('ogbench/' + c for c in close)}?)" if close else \
            f" (known: {', '.join('ogbench/' + n for n in SPECS)})"
        raise UserError(f"unknown OGBench dataset {name!r}{hint}")
    return SPECS[name]


def make(name: str, out_dir: str | Path, episodes: int | None = None, workers: int = 1, seed: int = 0,
         force: bool = False, log: Any = print) -> tuple[Path, Path, dict[str, Any]]:
    """Make ``NAME.npz`` and ``NAME-val.npz`` in ``out_dir``; returns both paths and the metadata."""
    import agentlab

    spec = _check_name(name)
    n_train = spec.episodes if episodes is None else int(episodes)
    if n_train < 1:
        raise UserError(f"--episodes must be at least 1 (got {n_train})")
    if workers < 1:
        raise UserError(f"--workers must be at least 1 (got {workers})")
    n_val = max(1, n_train // 10)
    out_dir = Path(out_dir)
    train_path, val_path = out_dir / f"{name}.npz", out_dir / f"{name}-val.npz"
    if train_path.exists() and not force:
        raise UserError(f"{train_path} already exists; pass --force to overwrite it")
    parts = out_dir / f"{name}.npz.parts"
    manifest = {"name": name, "seed": seed, "train_episodes": n_train, "val_episodes": n_val,
                "chunk_episodes": CHUNK_EPISODES, "ogbench": _ogbench_version()}
    mpath = parts / "manifest.json"
    if parts.is_dir() and mpath.is_file():
        old = json.loads(mpath.read_text())
        if old != manifest:
            if not force:
                raise UserError(f"{parts} holds chunks of a different run ({old}); pass --force to discard them")
            shutil.rmtree(parts)
    parts.mkdir(parents=True, exist_ok=True)
    mpath.write_text(json.dumps(manifest))

    total = n_train + n_val
    chunks = [list(range(i, min(i + CHUNK_EPISODES, total))) for i in range(0, total, CHUNK_EPISODES)]
    # a chunk never straddles the train/val split
    chunks = [c for ch in chunks for c in ([x for x in ch if x < n_train], [x for x in ch if x >= n_train]) if c]
    paths = [parts / f"ep{c[0]:06d}-{c[-1]:06d}.npz" for c in chunks]
    todo = [(c, p) for c, p in zip(chunks, paths) if not p.is_file()]
    done_eps = total - sum(len(c) for c, _ in todo)
    if done_eps:
        log(f"resuming {name}: {done_eps}/{total} episodes already on disk in {parts}")
    prog = _Progress(total, done_eps, f"ogbench/{name}", log)
    t0 = time.perf_counter()
    if todo:
        if workers == 1:
            for c, p in todo:
                generate_chunk(name, c, seed, str(p))
                prog.update(len(c))
        else:
            import multiprocessing as mp

            ctx = mp.get_context("spawn")  # MuJoCo / EGL state does not survive fork reliably
            with ctx.Pool(min(workers, len(todo))) as pool:
                jobs = [(pool.apply_async(generate_chunk, (name, c, seed, str(p))), len(c)) for c, p in todo]
                for job, n in jobs:
                    job.get()
                    prog.update(n)
    gen_time = time.perf_counter() - t0

    # assemble the two files
    stats = {"train": {"subtasks": 0, "successes": 0, "retries": 0}, "val": {"subtasks": 0, "successes": 0,
                                                                           "retries": 0}}
    cols: dict[str, dict[str, list]] = {"train": {}, "val": {}}
    for c, p in zip(chunks, paths):
        split = "train" if c[0] < n_train else "val"
        with np.load(p) as z:
            st = json.loads(str(z["stats_json"]))
            for k in z.files:
                if k != "stats_json":
                    cols[split].setdefault(k, []).append(z[k])
        for k in ("subtasks", "successes", "retries"):
            stats[split][k] += st[k]
    meta = {"dataset_name": name, "generator": f"agentlab.data.generators.ogbench_gen:ogbench/{name}",
            "env_name": spec.env_name, "dataset_type": spec.dataset_type, "seed": seed,
            "official_train_episodes": spec.episodes, "episode_steps": EPISODE_STEPS,
            "ogbench_version": _ogbench_version(), "agentlab_version": agentlab.__version__,
            "generation_time_s": round(gen_time, 1), "workers": workers,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    for split, path in (("train", train_path), ("val", val_path)):
        arrays = {k: np.concatenate(v) for k, v in cols[split].items()}
        st = stats[split]
        m = dict(meta, split=split, episodes=n_train if split == "train" else n_val,
                 rows=int(len(arrays["terminals"])), transitions=int(len(arrays["terminals"]) - arrays["terminals"].sum()),
                 oracle_subtasks=st["subtasks"], oracle_successes=st["successes"],
                 oracle_success_rate=round(100.0 * st["successes"] / max(st["subtasks"], 1), 2),
                 unhealthy_episodes_redrawn=st["retries"])
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(tmp, metadata_json=np.array(json.dumps(m)), **arrays)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        if split == "train":
            meta_train = m
    shutil.rmtree(parts)
    return train_path, val_path, meta_train


def _ogbench_version() -> str:
    try:
        from importlib.metadata import version

        return version("ogbench")
    except Exception:  # noqa: BLE001
        return "unknown"


__all__ = ["EPISODE_STEPS", "SPECS", "OGSpec", "generate_chunk", "make"]
