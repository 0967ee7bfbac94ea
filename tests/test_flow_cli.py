"""End to end: `agentlab train {flow_bc,fql,fidec,deflow}` -> run directory -> `agentlab.load(run).act(obs)`."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

import agentlab
from agentlab.cli import cli
from agentlab.data import Dataset, save_d4rl

ENV = "agentlab/pointmaze-umaze-v0"  # flat obs (x, y, vx, vy, goal_x, goal_y), 2-D actions in [-1, 1]


@pytest.fixture
def maze_data(data_dir):
    rng = np.random.default_rng(0)
    n = 400
    obs = rng.normal(size=(n, 6)).astype(np.float32)
    timeouts = np.zeros(n, bool)
    timeouts[99::100] = True
    ds = Dataset(obs, rng.uniform(-1, 1, (n, 2)), rng.random(n), rng.normal(size=(n, 6)), np.zeros(n, bool), timeouts,
                 metadata={"env_id": ENV, "ref_min_score": 0.0, "ref_max_score": 100.0})
    save_d4rl(ds, data_dir / "tiny-maze.hdf5")
    return "tiny-maze"


@pytest.mark.parametrize("algo", ["flow_bc", "fql", "fidec", "deflow"])
def test_train_then_load_and_act(algo, maze_data, tmp_path):
    run = tmp_path / algo
    res = CliRunner().invoke(cli, ["train", algo, "--dataset", maze_data, "--steps", "12", "--preset", "smoke",
                                   "--out", str(run), "--log-every", "4", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert (run / "model.pt").is_file() and (run / "metrics.csv").read_text().count("\n") >= 3
    policy = agentlab.load(run)
    a = policy.act(np.zeros(6, np.float32))
    assert a.shape == (2,) and np.all(np.abs(a) <= 1)
    assert policy.act(np.zeros((5, 6), np.float32)).shape == (5, 2)
    # the reloaded agent has the trained normaliser (not the identity)
    assert not np.allclose(policy.agent.obs_norm.std.numpy(), 1.0)


def test_train_with_env_evaluates_normalised_score(maze_data, tmp_path):
    run = tmp_path / "deflow"
    res = CliRunner().invoke(cli, ["train", "deflow", "--dataset", maze_data, "--env", ENV, "--steps", "2",
                                   "--preset", "smoke", "--eval-every", "2", "--eval-episodes", "1", "--out", str(run),
                                   "--device", "cpu"])
    assert res.exit_code == 0, res.output
    header, *rows = (run / "metrics.csv").read_text().splitlines()
    assert "eval/normalized_score" in header and len(rows) == 1


@pytest.mark.parametrize("args, needle", [
    (["--set", "fisher=diagonal"], "fisher"),
    (["--set", "fisher_score=learned"], "fisher_score"),
    (["--set", "num_fisher_samples=many"], "num_fisher_samples"),
    (["--set", "activation=swish"], "activation"),
    (["--preset", "huge"], "preset"),
])
def test_bad_config_is_one_line_error(args, needle, maze_data, tmp_path):
    res = CliRunner().invoke(cli, ["train", "fidec", "--dataset", maze_data, "--steps", "2", "--out",
                                   str(tmp_path / "r"), *args])
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0]
    assert not (tmp_path / "r").exists()  # nothing written


def test_offline_table_specs():
    from agentlab.reproduce import get_table

    table = get_table("offline_d4rl")  # the locomotion/maze table (``offline`` is now OGBench's)
    specs = table.specs("small", 3)
    assert len(specs) == 12 * 4 * 3 and len({s.run_id for s in specs}) == len(specs)
    assert [s.seed for s in specs] == sorted(s.seed for s in specs)  # seed-major: partial tables stay balanced
    by_algo = {s.algo: s.params["overrides"] for s in specs if s.task == "pointmaze-umaze" and s.seed == 0}
    assert "target_divergence=0.001" in by_algo["fidec"] and by_algo["fidec"] == by_algo["deflow"]
    assert "alpha=10" in by_algo["fql"] and not any("critic" in o for o in by_algo["flow_bc"])
    assert {s.params["steps"] for s in table.specs("full", 1) if s.task.startswith("hopper")} == {500_000}
