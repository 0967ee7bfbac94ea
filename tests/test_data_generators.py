"""PointMaze generators (maze2d-style): planner correctness, tiny datasets, rewards, reference scores."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from agentlab.cli import cli
from agentlab.data import check_against_env, load
from agentlab.data.generators import GENERATORS, pointmaze


@pytest.mark.parametrize("maze", ["umaze", "medium", "large"])
def test_planner_routes_reach_every_goal(maze):
    p = pointmaze.MazePlanner(pointmaze.maze_map(maze))
    n = len(p.free)
    for g in range(n):
        for c in range(n):
            cur, steps = c, 0
            while cur != g:
                nxt = p.next_cell[g, cur]
                (r0, c0), (r1, c1) = p.free[cur], p.free[nxt]
                assert abs(r0 - r1) + abs(c0 - c1) == 1  # moves to a free 4-neighbour
                cur, steps = nxt, steps + 1
            assert steps == p.dist[g, c]
    # cell lookup agrees with gymnasium-robotics' coordinates
    from gymnasium_robotics.envs.maze.maze_v4 import Maze

    walls = pointmaze.maze_map(maze)
    m = Maze(walls.astype(int).tolist(), 1.0, 0.4)
    for r, c in p.free[:5]:
        xy = m.cell_rowcol_to_xy(np.array([r, c]))
        np.testing.assert_allclose(p.cell_center(r, c), xy)
        assert p.free[p.cell1(*xy)] == (r, c)


def test_generator_names():
    for m in ("umaze", "medium", "large"):
        assert f"pointmaze-{m}" in GENERATORS and f"pointmaze-{m}-dense" in GENERATORS
    for e in ("hopper", "halfcheetah", "walker2d"):
        for lv in ("random", "medium", "expert", "medium-replay", "medium-expert"):
            assert f"{e}-{lv}" in GENERATORS


@pytest.mark.parametrize("dense", [False, True])
def test_pointmaze_tiny_dataset(data_dir, monkeypatch, dense):
    monkeypatch.setattr(pointmaze, "REF_EPISODES", 10)
    name = f"pointmaze-umaze{'-dense' if dense else ''}"
    res = CliRunner().invoke(cli, ["data", "make", name, "--size", "700", "--seed", "3"])
    assert res.exit_code == 0, res.output
    path = data_dir / f"{name}.hdf5"
    info = json.loads(CliRunner().invoke(cli, ["data", "info", name, "--json"]).output)
    with h5py.File(path, "r") as f:
        r, nobs, tout = f["rewards"][()], f["next_observations"][()], f["timeouts"][()]
        acts, term = f["actions"][()], f["terminals"][()]
    # 300-step episodes (the env's time limit), the last one cut at 700 and marked as a timeout
    assert np.flatnonzero(tout).tolist() == [299, 599, 699] and not term.any()
    rets = [r[:300].sum(), r[300:600].sum(), r[600:].sum()]
    assert info["transitions"] == 700 and info["episodes"] == 3
    assert info["return_mean"] == pytest.approx(np.mean(rets), rel=1e-5)
    meta = info["metadata"]
    assert meta["env_id"] == f"agentlab/pointmaze-umaze{'-dense' if dense else ''}-v0"
    assert meta["ref_episodes"] == 10 and meta["ref_max_success_rate"] == 1.0
    assert meta["ref_max_score"] > meta["ref_min_score"]
    assert meta["seed"] == 3 and meta["size"] == 700
    # rewards are the environment's, measured against the goal in the observation
    dist = np.linalg.norm(nobs[:, :2] - nobs[:, 4:6], axis=1)
    expected = np.exp(-dist) if dense else (dist <= 0.45).astype(np.float32)
    np.testing.assert_allclose(r, expected, rtol=1e-5, atol=1e-6)
    assert np.abs(acts).max() <= 1.0
    check_against_env(load(str(path)), meta["env_id"])


def test_pointmaze_same_seed_same_data(tmp_path, monkeypatch):
    monkeypatch.setattr(pointmaze, "REF_EPISODES", 10)
    a, _ = pointmaze.generate("medium", False, 400, seed=1)
    b, _ = pointmaze.generate("medium", False, 400, seed=1)
    c, _ = pointmaze.generate("medium", False, 400, seed=2)
    np.testing.assert_array_equal(a["observations"], b["observations"])
    assert not np.array_equal(a["observations"], c["observations"])


def test_planner_controller_reaches_goals():
    rets, succ = pointmaze.episode_returns("agentlab/pointmaze-large-v0", "large", "planner", 3, seed=5)
    assert succ.all() and (rets > 0).all()
