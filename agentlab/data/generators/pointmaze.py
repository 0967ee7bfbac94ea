"""PointMaze datasets in the style of D4RL's maze2d: a grid planner + a PD waypoint controller.

How a dataset is made (``pointmaze-{umaze,medium,large}[-dense]``):

* Every episode is a fresh reset of the evaluation environment ``agentlab/pointmaze-<maze>-v0``
  (random start cell, random goal cell, both with the environment's own position noise), run for
  the environment's full time limit (300 / 600 / 800 steps), so episodes end with ``timeouts`` and
  never with ``terminals`` (PointMaze is a continuing task).
* The behaviour does *not* head for the episode's goal. As in D4RL, it drives to a sequence of
  random waypoint targets (uniform over free cells, jittered inside the cell); on reaching one it
  picks the next. The route comes from a breadth-first search over the maze grid (4-connected
  cells); the controller aims at the centre of the next cell on the route (or at the target inside
  the target's cell) with a PD law ``a = clip(kp (w - p) - kd v + noise, -1, 1)``, ``kp = 10``,
  ``kd = 1``, Gaussian action noise (std 0.5 by default).
* Observations, rewards and goals are the environment's: reward 1 within 0.45 of the episode goal
  (sparse) or ``exp(-distance)`` (dense). An offline agent must therefore stitch undirected
  trajectories into goal-reaching behaviour, which is the point of maze2d.

Reference scores (metadata ``ref_min_score`` / ``ref_max_score``) are measured on the evaluation
environment: a uniform-random policy, and the same planner-controller driving straight to the
episode goal without noise, each over ``REF_EPISODES`` episodes with seeds from ``REF_SEED``.
"""

from __future__ import annotations

import math
import time
from collections import deque
from typing import Any

import numpy as np

MAZE_STEPS = {"umaze": 300, "medium": 600, "large": 800}
#: transitions per dataset (D4RL uses 1M / 2M / 4M; a tenth fits a shared CPU and covers every cell)
DEFAULT_SIZE = {"umaze": 100_000, "medium": 200_000, "large": 400_000}
REF_EPISODES = 100
REF_SEED = 1_000_000


def maze_map(maze: str) -> np.ndarray:
    """The maze grid as a boolean array, True = wall (gymnasium-robotics' maps)."""
    from gymnasium_robotics.envs.maze import maps

    grid = {"umaze": maps.U_MAZE, "medium": maps.MEDIUM_MAZE, "large": maps.LARGE_MAZE}[maze]
    return np.array([[c == 1 for c in row] for row in grid], dtype=bool)


class MazePlanner:
    """Shortest routes on the maze grid, precomputed for every goal cell (BFS, 4-connected).

    Coordinates follow gymnasium-robotics' Maze (scaling 1): cell (row, col) has its centre at
    ``x = col + 0.5 - W/2``, ``y = H/2 - row - 0.5``.
    """

    def __init__(self, walls: np.ndarray):
        self.walls = walls
        self.H, self.W = walls.shape
        self.free = [(r, c) for r in range(self.H) for c in range(self.W) if not walls[r, c]]
        index = {cell: i for i, cell in enumerate(self.free)}
        n = len(self.free)
        nbrs = [[index[(r + dr, c + dc)] for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1))
                 if (r + dr, c + dc) in index] for r, c in self.free]
        # next_cell[g, c]: the neighbour of c one step closer to g (c itself when c == g)
        self.dist = np.full((n, n), -1, dtype=np.int64)
        self.next_cell = np.zeros((n, n), dtype=np.int64)
        for g in range(n):
            d = self.dist[g]
            d[g] = 0
            queue = deque([g])
            while queue:
                u = queue.popleft()
                for v in nbrs[u]:
                    if d[v] < 0:
                        d[v] = d[u] + 1
                        queue.append(v)
            for c in range(n):
                self.next_cell[g, c] = c if c == g else min(nbrs[c], key=lambda v: d[v])
        self.index = index
        self.centers = np.array([self.cell_center(r, c) for r, c in self.free], dtype=np.float64)
        # lookup from any grid cell to a free-cell index (walls map to the nearest free cell)
        self.cell_index = np.zeros((self.H, self.W), dtype=np.int64)
        for r in range(self.H):
            for c in range(self.W):
                if (r, c) in index:
                    self.cell_index[r, c] = index[(r, c)]
                else:
                    dd = [abs(r - fr) + abs(c - fc) for fr, fc in self.free]
                    self.cell_index[r, c] = int(np.argmin(dd))

        # plain-Python copies for the per-step scalar path (numpy calls on 2-vectors cost microseconds each)
        self._cell_index = self.cell_index.tolist()
        self._next = self.next_cell.tolist()
        self._centers = self.centers.tolist()

    def cell1(self, x: float, y: float) -> int:
        r = min(max(math.floor(self.H / 2 - y), 0), self.H - 1)
        c = min(max(math.floor(x + self.W / 2), 0), self.W - 1)
        return self._cell_index[r][c]

    def waypoint1(self, x: float, y: float, tx: float, ty: float) -> tuple[float, float]:
        cur, goal = self.cell1(x, y), self.cell1(tx, ty)
        if cur == goal:
            return tx, ty
        cx, cy = self._centers[self._next[goal][cur]]
        return cx, cy

    def cell_center(self, r: int, c: int) -> np.ndarray:
        return np.array([c + 0.5 - self.W / 2, self.H / 2 - r - 0.5])

    def cell_of(self, xy: np.ndarray) -> np.ndarray:
        """Free-cell indices of a batch of positions ``[B, 2]``."""
        xy = np.atleast_2d(xy)
        r = np.clip(np.floor(self.H / 2 - xy[:, 1]).astype(np.int64), 0, self.H - 1)
        c = np.clip(np.floor(xy[:, 0] + self.W / 2).astype(np.int64), 0, self.W - 1)
        return self.cell_index[r, c]

    def waypoints(self, pos: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Where to head next: the next cell's centre on the route, or the target in its own cell."""
        cur, goal = self.cell_of(pos), self.cell_of(target)
        nxt = self.next_cell[goal, cur]
        return np.where((cur == goal)[:, None], target, self.centers[nxt])


class MazeController:
    """PD waypoint controller over :class:`MazePlanner` routes; a policy with ``act(obs_batch)``.

    Observation layout ``[x, y, vx, vy, goal_x, goal_y]``; by default it drives to the goal in the
    observation (the reference "expert"); ``act(obs, targets=...)`` drives elsewhere.
    """

    def __init__(self, maze: str, kp: float = 10.0, kd: float = 1.0, noise: float = 0.0, seed: int = 0):
        self.maze = maze
        self.planner = MazePlanner(maze_map(maze))
        self.kp, self.kd, self.noise = kp, kd, noise
        self.rng = np.random.default_rng(seed)

    def act1(self, x: float, y: float, vx: float, vy: float, tx: float, ty: float, nx: float = 0.0,
             ny: float = 0.0) -> tuple[float, float]:
        """One action as two floats (the generator's hot path); ``nx, ny`` = action noise."""
        wx, wy = self.planner.waypoint1(x, y, tx, ty)
        ax = self.kp * (wx - x) - self.kd * vx + nx
        ay = self.kp * (wy - y) - self.kd * vy + ny
        return min(max(ax, -1.0), 1.0), min(max(ay, -1.0), 1.0)

    def act(self, obs: Any, deterministic: bool = True, targets: np.ndarray | None = None) -> np.ndarray:
        x = np.asarray(obs, dtype=np.float64)
        single = x.ndim == 1
        x = np.atleast_2d(x)
        pos, vel = x[:, 0:2], x[:, 2:4]
        tgt = x[:, 4:6] if targets is None else np.atleast_2d(targets)
        a = self.kp * (self.planner.waypoints(pos, tgt) - pos) - self.kd * vel
        if self.noise > 0 and not deterministic:
            a = a + self.noise * self.rng.standard_normal(a.shape)
        a = np.clip(a, -1.0, 1.0).astype(np.float32)
        return a[0] if single else a


def generate(maze: str, dense: bool, size: int, seed: int, noise: float = 0.5, reach: float = 0.3,
             log: Any = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """D4RL-format arrays (and metadata) for ``size`` transitions of the waypoint behaviour."""
    from agentlab.envs import make_env
    from agentlab.runs import Progress

    env_id = f"agentlab/pointmaze-{maze}{'-dense' if dense else ''}-v0"
    env = make_env(env_id, disable_env_checker=True)
    ctrl = MazeController(maze)
    planner = ctrl.planner
    rng = np.random.default_rng(seed + 1)
    n_free = len(planner.free)

    def new_target(x: float, y: float) -> tuple[float, float]:
        cur = planner.cell1(x, y)
        cell = int(rng.integers(n_free - 1))
        cell += cell >= cur  # any free cell but the current one
        jx, jy = rng.uniform(-0.25, 0.25, 2)
        return planner._centers[cell][0] + jx, planner._centers[cell][1] + jy

    obs_l, act_l, rew_l, nobs_l, tout_l, tgt_l = [], [], [], [], [], []
    t0 = time.perf_counter()
    n, ep = 0, 0
    with Progress(size, 0, f"make pointmaze-{maze}{'-dense' if dense else ''}") as bar:
        while n < size:
            obs, _ = env.reset(seed=seed * 100_003 + ep)
            ep += 1
            x, y, vx, vy = (float(v) for v in obs[:4])
            tx, ty = new_target(x, y)
            eps_noise = (noise * rng.standard_normal((MAZE_STEPS[maze] + 1, 2))).tolist()
            done, t = False, 0
            while not done and n < size:
                if math.hypot(x - tx, y - ty) < reach:
                    tx, ty = new_target(x, y)
                ax, ay = ctrl.act1(x, y, vx, vy, tx, ty, *eps_noise[t])
                a = np.array([ax, ay], np.float32)
                nobs, r, term, trunc, _ = env.step(a)
                obs_l.append(obs)
                act_l.append(a)
                rew_l.append(r)
                nobs_l.append(nobs)
                tgt_l.append((tx, ty))
                done = term or trunc
                tout_l.append(done)
                obs = nobs
                x, y, vx, vy = (float(v) for v in obs[:4])
                n += 1
                t += 1
                if n % 10_000 == 0:
                    bar.update(n)
    env.close()
    tout = np.asarray(tout_l, bool)
    tout[-1] = True  # the last (possibly cut) episode ends here
    arrays = {"observations": np.asarray(obs_l, np.float32), "actions": np.asarray(act_l, np.float32),
              "rewards": np.asarray(rew_l, np.float32), "next_observations": np.asarray(nobs_l, np.float32),
              "terminals": np.zeros(n, bool), "timeouts": tout, "infos/target": np.asarray(tgt_l, np.float32)}
    meta = {"env_id": env_id, "behaviour": "BFS route + PD waypoint controller to random targets",
            "controller_kp": ctrl.kp, "controller_kd": ctrl.kd, "action_noise_std": noise,
            "target_reach_radius": reach, "generation_time_s": time.perf_counter() - t0}
    return arrays, meta


def episode_returns(env_id: str, maze: str, policy: str, episodes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Returns and successes of ``policy`` ("random" or "planner") on the evaluation env.

    Same protocol as :func:`agentlab.evaluation.evaluate` (episode ``i`` reset with ``seed + i``,
    full time limit), with the controller's scalar fast path."""
    from agentlab.envs import make_env

    env = make_env(env_id, disable_env_checker=True)
    ctrl = MazeController(maze)
    rng = np.random.default_rng(seed)
    rets, succ = np.zeros(episodes), np.zeros(episodes, bool)
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        done = False
        while not done:
            if policy == "random":
                a = rng.uniform(-1.0, 1.0, 2).astype(np.float32)
            else:
                x, y, vx, vy, gx, gy = obs.tolist()
                a = np.array(ctrl.act1(x, y, vx, vy, gx, gy), np.float32)
            obs, r, term, trunc, info = env.step(a)
            rets[i] += r
            succ[i] |= bool(info.get("success", False))
            done = term or trunc
    env.close()
    return rets, succ


def reference_scores(maze: str, dense: bool, episodes: int | None = None, seed: int = REF_SEED) -> dict[str, Any]:
    """ref_min (uniform-random policy) and ref_max (noise-free planner-controller to the goal)."""
    episodes = episodes or REF_EPISODES
    env_id = f"agentlab/pointmaze-{maze}{'-dense' if dense else ''}-v0"
    rnd, _ = episode_returns(env_id, maze, "random", episodes, seed)
    exp, succ = episode_returns(env_id, maze, "planner", episodes, seed)
    return {"ref_min_score": float(rnd.mean()), "ref_max_score": float(exp.mean()),
            "ref_min_std": float(rnd.std()), "ref_max_std": float(exp.std()), "ref_episodes": episodes,
            "ref_seed": seed, "ref_max_success_rate": float(succ.mean()),
            "ref_max_policy": "planner-controller to the episode goal, no noise", "ref_min_policy": "uniform random"}


def make(maze: str, dense: bool, size: int, seed: int, log: Any = None) -> Any:
    """The :class:`~agentlab.data.Dataset` for ``pointmaze-<maze>[-dense]`` with reference scores."""
    from agentlab.data import Dataset

    arrays, meta = generate(maze, dense, size, seed)
    extras = {"infos/target": arrays.pop("infos/target")}
    t0 = time.perf_counter()
    meta.update(reference_scores(maze, dense))
    meta["reference_time_s"] = time.perf_counter() - t0
    return Dataset(**arrays, metadata=meta, extras=extras)
