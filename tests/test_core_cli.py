"""The CLI contract: help texts, versions, and one-line errors for every user mistake."""

import pytest
from click.testing import CliRunner

from agentlab import __version__
from agentlab.cli import cli


def invoke(*args, **kw):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False, **kw)


def assert_user_error(result, *words):
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.strip().splitlines() if ln]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    assert "Traceback" not in result.output
    for w in words:
        assert w in lines[0], lines[0]


def test_version_and_help():
    r = invoke("--version")
    assert r.exit_code == 0 and __version__ in r.output
    r = invoke("--help")
    for group in ("envs", "data", "train", "eval", "reproduce"):
        assert group in r.output


@pytest.mark.parametrize("group", ["envs", "data", "train", "eval", "reproduce"])
def test_group_help(group):
    r = invoke(group, "--help")
    assert r.exit_code == 0 and "Usage" in r.output and len(r.output) > 200


def test_envs_list_json():
    import json

    r = invoke("envs", "list", "--json")
    ids = [row["id"] for row in json.loads(r.stdout)]
    assert "Hopper-v5" in ids and "dmc/cartpole-swingup" in ids and "agentlab/pointmaze-umaze-v0" in ids


def test_envs_check_ok_and_unknown():
    r = invoke("envs", "check", "Pendulum-v1")
    assert r.exit_code == 0 and "passed" in r.output
    assert_user_error(invoke("envs", "check", "Hoper-v5"), "unknown environment id", "Hopper-v5")


def test_train_unknown_algorithm(tmp_path):
    assert_user_error(invoke("train", "nope", "--steps", "1", "--out", str(tmp_path / "r")), "unknown algorithm")
    assert not (tmp_path / "r").exists()


def test_train_unknown_env(tmp_path, pendulum_dataset):
    r = invoke("train", "bc", "--dataset", str(pendulum_dataset), "--env", "NoSuchEnv-v0", "--steps", "2", "--out",
               str(tmp_path / "r"))
    assert_user_error(r, "NoSuchEnv-v0")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("override,words", [
    ("nokey=1", ["unknown config key", "nokey"]),
    ("lr=fast", ["lr", "number"]),
    ("batch_size=2.5", ["batch_size", "integer"]),
    ("hidden=abc", ["hidden"]),
    ("noequals", ["key=value"]),
])
def test_train_bad_set(tmp_path, pendulum_dataset, override, words):
    r = invoke("train", "bc", "--dataset", str(pendulum_dataset), "--steps", "2", "--set", override, "--out",
               str(tmp_path / "r"))
    assert_user_error(r, *words)
    assert not (tmp_path / "r").exists()


def test_train_unreadable_config(tmp_path, pendulum_dataset):
    bad = tmp_path / "bad.yaml"
    bad.write_text("lr: [unclosed\n")
    r = invoke("train", "bc", "--dataset", str(pendulum_dataset), "--steps", "2", "--config", str(bad), "--out",
               str(tmp_path / "r"))
    assert_user_error(r, "cannot parse config")
    r = invoke("train", "bc", "--dataset", str(pendulum_dataset), "--steps", "2", "--config",
               str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "r"))
    assert_user_error(r, "config file not found")


def test_existing_run_dir_needs_resume_or_force(tmp_path, pendulum_dataset):
    out = tmp_path / "r"
    args = ["train", "bc", "--dataset", str(pendulum_dataset), "--steps", "3", "--log-every", "1", "--out", str(out)]
    assert invoke(*args).exit_code == 0
    before = (out / "metrics.csv").read_bytes()
    assert_user_error(invoke(*args), "already exists", "--resume", "--force")
    assert (out / "metrics.csv").read_bytes() == before  # nothing damaged
    assert invoke(*args, "--force").exit_code == 0


def test_force_refuses_non_run_directory(tmp_path, pendulum_dataset):
    d = tmp_path / "precious"
    d.mkdir()
    (d / "notes.txt").write_text("keep me")
    r = invoke("train", "bc", "--dataset", str(pendulum_dataset), "--steps", "2", "--out", str(d), "--force")
    assert_user_error(r, "not an agentlab run directory")
    assert (d / "notes.txt").read_text() == "keep me"


def test_eval_and_load(tmp_path, pendulum_dataset):
    import json

    import numpy as np

    import agentlab

    out = tmp_path / "r"
    assert invoke("train", "bc", "--dataset", str(pendulum_dataset), "--env", "Pendulum-v1", "--steps", "20",
                  "--eval-episodes", "2", "--out", str(out)).exit_code == 0
    r = invoke("eval", str(out), "--episodes", "2", "--json")
    res = json.loads(r.stdout)
    assert res["env_id"] == "Pendulum-v1" and "normalized_score" in res and np.isfinite(res["return_mean"])
    pol = agentlab.load(out)
    single = pol.act(np.zeros(3, np.float32))
    batch = pol.act(np.zeros((5, 3), np.float32))
    assert single.shape == (1,) and batch.shape == (5, 1)
    assert np.abs(batch).max() <= 2.0 + 1e-6  # rescaled to Pendulum's [-2, 2]
    assert_user_error(invoke("eval", str(tmp_path / "nope")), "not a run directory")


def test_reproduce_unknown_table():
    assert_user_error(invoke("reproduce", "nosuchtable"), "unknown table")
