"""OGBench: the dataset generator writes files OGBench's own loader reads, ``ogbench:NAME`` relabels
with OGBench's functions, and bad names fail in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("ogbench")

from click.testing import CliRunner  # noqa: E402

from agentlab.data.generators import ogbench_gen  # noqa: E402
from agentlab.errors import UserError  # noqa: E402

MAZE = "pointmaze-medium-navigate-v0"
MAZE_TASK = "pointmaze-medium-navigate-singletask-task1-v0"


@pytest.fixture(scope="module")
def maze_dir(tmp_path_factory):
    """A 3-episode pointmaze-medium-navigate file (+ 1-episode -val), made once for the module."""
    d = tmp_path_factory.mktemp("ogb")
    ogbench_gen.make(MAZE, d, episodes=3, log=lambda m: None)
    return d


def test_generator_writes_ogbench_layout(maze_dir):
    import ogbench

    with np.load(maze_dir / f"{MAZE}.npz") as z:
        assert {"observations", "actions", "terminals", "qpos", "qvel", "metadata_json"} <= set(z.files)
        assert z["observations"].dtype == np.float32 and z["terminals"].dtype == bool
        assert len(z["terminals"]) == 3 * ogbench_gen.EPISODE_STEPS
        assert z["terminals"].sum() == 3 and z["terminals"][ogbench_gen.EPISODE_STEPS - 1]
        assert np.abs(z["actions"]).max() <= 1.0
        meta = json.loads(str(z["metadata_json"]))
    assert meta["episodes"] == 3 and meta["transitions"] == 3 * (ogbench_gen.EPISODE_STEPS - 1)
    assert 0 <= meta["oracle_success_rate"] <= 100 and meta["oracle_subtasks"] >= 3
    # OGBench's own loader reads our pair of files (train + -val)
    env, train, val = ogbench.make_env_and_datasets(MAZE_TASK, dataset_path=str(maze_dir / f"{MAZE}.npz"))
    env.close()
    assert train["observations"].shape == (3000, 2) and val["observations"].shape == (1000, 2)
    assert set(train) >= {"rewards", "masks", "next_observations"}


def test_generator_resumes_and_is_deterministic(tmp_path, monkeypatch):
    monkeypatch.setattr(ogbench_gen, "CHUNK_EPISODES", 1)
    real = ogbench_gen.generate_chunk
    calls = []

    def flaky(*args):
        calls.append(args)
        if len(calls) == 2:
            raise KeyboardInterrupt  # interrupted after one chunk
        return real(*args)

    monkeypatch.setattr(ogbench_gen, "generate_chunk", flaky)
    with pytest.raises(KeyboardInterrupt):
        ogbench_gen.make(MAZE, tmp_path / "a", episodes=2, log=lambda m: None)
    monkeypatch.setattr(ogbench_gen, "generate_chunk", real)
    logs: list[str] = []
    ogbench_gen.make(MAZE, tmp_path / "a", episodes=2, log=logs.append)
    assert any("resuming" in m and "1/3" in m for m in logs)
    ogbench_gen.make(MAZE, tmp_path / "b", episodes=2, log=lambda m: None)
    with np.load(tmp_path / "a" / f"{MAZE}.npz") as a, np.load(tmp_path / "b" / f"{MAZE}.npz") as b:
        for k in ("observations", "actions", "qpos", "terminals"):
            np.testing.assert_array_equal(a[k], b[k])
    assert not (tmp_path / "a" / f"{MAZE}.npz.parts").exists()


def test_manipulation_generator_one_episode(tmp_path):
    """cube-single-play with the plan oracle: qpos/qvel of the state before each step, 28-dim observations."""
    import ogbench

    path, val, meta = ogbench_gen.make("cube-single-play-v0", tmp_path, episodes=1, log=lambda m: None)
    with np.load(path) as z:
        assert z["observations"].shape == (1001, 28) and z["qpos"].shape[0] == 1001
    assert meta["oracle_subtasks"] >= 1
    _, train, _ = ogbench.make_env_and_datasets("cube-single-play-singletask-task2-v0", dataset_path=str(path))
    assert train["rewards"].shape == (1000,)


def test_dataset_spec_uses_ogbench_relabelling(maze_dir, monkeypatch):
    import ogbench

    from agentlab.data import load

    monkeypatch.setenv("AGENTLAB_DATA", str(maze_dir / "nowhere"))
    monkeypatch.setenv("OGBENCH_DATA", str(maze_dir))
    for task in (MAZE_TASK, "pointmaze-medium-navigate-singletask-task3-v0"):
        ds = load(f"ogbench:{task}")
        _, ref, _ = ogbench.make_env_and_datasets(task, dataset_path=str(maze_dir / f"{MAZE}.npz"))
        np.testing.assert_array_equal(ds.rewards, ref["rewards"])
        np.testing.assert_array_equal(ds.terminals, ref["masks"] == 0)
        np.testing.assert_array_equal(ds.next_observations, ref["next_observations"])
        # every trajectory end is a terminal (goal state) or a timeout
        assert ((ds.terminals | ds.timeouts) >= ref["terminals"].astype(bool)).all()
        assert ds.metadata["env_id"] == "ogbench/" + task.replace("-navigate", "")
    # a fake goal state in the data: relabelling marks it (reward 0, terminal)
    env_id = ds.metadata["env_id"]
    from agentlab.envs import make_env

    env = make_env(env_id)
    env.reset(seed=0)
    goal = env.unwrapped.cur_goal_xy
    env.close()
    with np.load(maze_dir / f"{MAZE}.npz") as z:
        arrays = {k: z[k].copy() for k in z.files}
    arrays["qpos"][10, :2] = goal
    fake = maze_dir / "fake"
    fake.mkdir(exist_ok=True)
    np.savez(fake / f"{MAZE}.npz", **arrays)
    np.savez(fake / f"{MAZE}-val.npz", **arrays)
    monkeypatch.setenv("OGBENCH_DATA", str(fake))
    ds = load("ogbench:pointmaze-medium-navigate-singletask-task3-v0")
    assert ds.rewards[10] == 0.0 and ds.terminals[10]


def test_ogbench_env_evaluates_success(maze_dir, monkeypatch):
    from agentlab.evaluation import evaluate

    class Still:  # a policy that never moves cannot reach task 1's goal
        def act(self, obs):
            return np.zeros((len(obs), 2))

    res = evaluate(Still(), "ogbench/pointmaze-medium-singletask-task1-v0", episodes=1, seed=0)
    assert res["success_rate"] == 0.0 and res["length_mean"] == 1000


def test_ogbench_env_counts_the_oracles_success():
    """The noise-free subgoal oracle, acting through evaluate(), solves pointmaze-medium task 1: the
    task env, its termination at the goal and the success bookkeeping all work end to end."""
    from agentlab.data.generators.ogbench_gen import SPECS, _make_env
    from agentlab.evaluation import evaluate

    maze = _make_env(SPECS[MAZE]).unwrapped  # same layout; used only for its BFS subgoals

    class Oracle:
        def __init__(self):
            maze.reset(seed=0, options=dict(task_id=1))
            self.goal = np.array(maze.cur_goal_xy, dtype=np.float64)

        def act(self, obs):
            out = []
            for xy in np.asarray(obs, dtype=np.float64):
                sub, _ = maze.get_oracle_subgoal(xy, self.goal)
                d = sub - xy
                out.append(d / (np.linalg.norm(d) + 1e-6))
            return np.stack(out)

    res = evaluate(Oracle(), "ogbench/pointmaze-medium-singletask-task1-v0", episodes=2, seed=0)
    assert res["success_rate"] == 1.0 and res["length_mean"] < 1000


@pytest.mark.parametrize("spec, words", [
    ("ogbench:cube-single-play-v0", "not a single-task name"),
    ("ogbench:cubes-single-play-singletask-v0", "unknown OGBench environment"),
    ("ogbench:cube-single-play-singletask-task7-v0", "no task 7"),
    ("ogbench:cube-single-play-singletask-foo-v0", "expected '-taskN'"),
    ("ogbench:cube-triple-play-singletask-task1-v0", "not found"),
    ("ogbench:puzzle-3x3-play-singletask-task1-v0", "agentlab data make ogbench/puzzle-3x3-play-v0"),
])
def test_bad_dataset_specs_fail_in_one_line(spec, words, tmp_path, monkeypatch):
    from agentlab.cli import cli

    monkeypatch.setenv("AGENTLAB_DATA", str(tmp_path))
    monkeypatch.setenv("OGBENCH_DATA", str(tmp_path))
    res = CliRunner().invoke(cli, ["data", "info", spec])
    assert res.exit_code != 0 and words in res.output
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1


def test_bad_generator_input(tmp_path):
    from agentlab.data.generators import make_dataset

    with pytest.raises(UserError, match="unknown OGBench dataset"):
        make_dataset("ogbench/cube-single-plays-v0", out=tmp_path)
    with pytest.raises(UserError, match="--episodes"):
        make_dataset("ogbench/cube-single-play-v0", size=1000, out=tmp_path)
    with pytest.raises(UserError, match="at least 1"):
        make_dataset("ogbench/cube-single-play-v0", episodes=0, out=tmp_path)
    with pytest.raises(UserError, match="ogbench/ datasets only"):
        make_dataset("pointmaze-umaze", episodes=3, out=tmp_path / "x.hdf5")


def test_table_rules_follow_the_references():
    from agentlab.reproduce.tables.offline import rules

    assert "alpha=300" in rules("cube-single-play-singletask-task2-v0", "fql")
    assert "alpha=1000" in rules("puzzle-3x3-play-singletask-task4-v0", "fql")
    assert "alpha=10" in rules("pointmaze-medium-navigate-singletask-task1-v0", "fql")
    assert "q_agg=min" in rules("antmaze-large-navigate-singletask-task1-v0", "fql")
    fidec = rules("puzzle-3x3-play-singletask-task4-v0", "fidec")
    assert {"target_divergence=0.005", "normalize_q_loss=true", "num_fisher_samples=8", "fisher_t=0.9",
            "fisher_t_width=0.05"} <= set(fidec)
    assert "target_divergence=0.001" in rules("cube-single-play-singletask-task2-v0", "deflow")
    assert rules("cube-single-play-singletask-task2-v0", "flow_bc") == []
