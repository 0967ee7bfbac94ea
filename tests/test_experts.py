"""Shared expert API (train/resume/load/collect, PPO and SAC, MuJoCo and DMC) and the locomotion
generators built on it, with a tiny PPO budget."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from agentlab.cli import cli
from agentlab.data import load
from agentlab.data.generators import make_dataset
from agentlab.experts import collect, expert_dir, load_expert, train_expert

STEPS = 4096  # two PPO rollouts of 2048 steps -> snapshots at 2048 and 4096


@pytest.fixture(scope="module")
def expert_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("agentlab_data")
    mp = pytest.MonkeyPatch()
    mp.setenv("AGENTLAB_DATA", str(root))
    logs: list[str] = []
    train_expert("Hopper-v5", "ppo", 2048, seed=0, snapshot_every=2048, log=logs.append)
    train_expert("Hopper-v5", "ppo", STEPS, seed=0, snapshot_every=2048, log=logs.append)  # extends the finished run
    mp.undo()
    return root, logs


@pytest.fixture
def experts_env(expert_root, monkeypatch):
    root, logs = expert_root
    monkeypatch.setenv("AGENTLAB_DATA", str(root))
    return root, logs


def _returns_from_file(path) -> np.ndarray:
    with h5py.File(path, "r") as f:
        r, ends = f["rewards"][()], f["terminals"][()] | f["timeouts"][()]
    ends[-1] = True
    idx = np.flatnonzero(ends) + 1
    return np.array([s.sum() for s in np.split(r, idx[:-1])])


def test_training_writes_snapshots_rollouts_and_resumes(experts_env):
    root, logs = experts_env
    d = expert_dir("Hopper-v5", "ppo", 0)
    meta = json.loads((d / "meta.json").read_text())
    assert meta["finished"] and meta["steps"] == STEPS
    assert any("resuming Hopper-v5 (ppo) from step 2048" in m for m in logs)
    for s in (2048, 4096):
        assert (d / "snapshots" / f"step_{s}.zip").is_file()
        assert (d / "snapshots" / f"step_{s}_vecnormalize.pkl").is_file()
        with np.load(d / "snapshots" / f"step_{s}_rollouts.npz") as z:
            # whole episodes only: every chunk ends at an episode end
            assert len(z["rewards"]) > 0 and (z["terminals"][-1] or z["timeouts"][-1])
            assert z["observations"].shape[1] == 11 and z["actions"].shape[1] == 3
    # a finished expert is reused, not retrained
    msgs: list[str] = []
    assert train_expert("Hopper-v5", "ppo", STEPS, seed=0, log=msgs.append) == d
    assert "already trained" in msgs[0]


def test_killed_run_resumes_from_last_snapshot(experts_env, tmp_path, monkeypatch):
    root, _ = experts_env
    copy = tmp_path / "copy"
    shutil.copytree(root / "experts", copy / "experts")
    monkeypatch.setenv("AGENTLAB_DATA", str(copy))
    d = expert_dir("Hopper-v5", "ppo", 0)
    (d / "model.zip").unlink()
    meta = json.loads((d / "meta.json").read_text())
    meta["finished"] = False
    (d / "meta.json").write_text(json.dumps(meta))
    msgs: list[str] = []
    train_expert("Hopper-v5", "ppo", STEPS, seed=0, log=msgs.append)
    assert any(f"from step {STEPS}" in m for m in msgs)
    assert (d / "model.zip").is_file() and json.loads((d / "meta.json").read_text())["finished"]


def test_load_expert_act_and_collect(experts_env, tmp_path):
    pol = load_expert("Hopper-v5")
    obs = np.random.default_rng(0).standard_normal((5, 11)).astype(np.float32)
    a = pol.act(obs)
    assert a.shape == (5, 3) and np.all(np.abs(a) <= 1.0)
    np.testing.assert_array_equal(pol.act(obs), a)  # deterministic
    assert pol.act(obs[0]).shape == (3,)
    ds = collect(pol, "Hopper-v5", episodes=3, seed=0, out=tmp_path / "demos.hdf5")
    back = load(str(tmp_path / "demos.hdf5"))
    assert back.num_episodes() == 3 and len(back) == len(ds)
    assert back.metadata["expert_return_mean"] == pytest.approx(_returns_from_file(tmp_path / "demos.hdf5").mean(),
                                                                 rel=1e-5)
    snap = load_expert("Hopper-v5", snapshot=2048)
    assert snap.act(obs).shape == (5, 3)


def test_experts_cli(experts_env, tmp_path):
    runner = CliRunner()
    res = runner.invoke(cli, ["experts", "list"])
    assert res.exit_code == 0 and "Hopper-v5" in res.output and "done" in res.output
    out = tmp_path / "d.hdf5"
    res = runner.invoke(cli, ["experts", "collect", "--env", "Hopper-v5", "--episodes", "2", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert load(str(out)).num_episodes() == 2
    before = out.read_bytes()
    res = runner.invoke(cli, ["experts", "collect", "--env", "Hopper-v5", "--episodes", "2", "--out", str(out)])
    assert res.exit_code == 2 and "exists" in res.output and out.read_bytes() == before
    res = runner.invoke(cli, ["experts", "collect", "--env", "Walker2d-v5", "--episodes", "2", "--out",
                              str(tmp_path / "w.hdf5")])
    assert res.exit_code == 2 and "no trained expert for Walker2d-v5" in res.output
    assert len(res.output.strip().splitlines()) == 1 and not (tmp_path / "w.hdf5").exists()
    res = runner.invoke(cli, ["experts", "train", "--env", "Hoper-v5", "--steps", "10"])
    assert res.exit_code == 2 and "unknown environment id" in res.output


def test_sac_expert_on_dmc(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENTLAB_DATA", str(tmp_path))
    train_expert("dmc/cartpole-swingup", "sac", 300, seed=0, snapshot_every=100, log=lambda m: None)
    pol = load_expert("dmc/cartpole-swingup", algo="sac")
    assert pol.obs_mean is None  # SAC runs without an observation normaliser
    a = pol.act(np.zeros((2, 5), np.float32))
    assert a.shape == (2, 1)
    ds = collect(pol, "dmc/cartpole-swingup", episodes=1, seed=0)
    assert len(ds) == 1000 and ds.timeouts[-1]
    d = expert_dir("dmc/cartpole-swingup", "sac", 0)
    assert sorted(p.name for p in (d / "snapshots").glob("*.zip")) == ["step_100.zip", "step_200.zip",
                                                                       "step_300.zip"]
    assert (d / "replay_buffer.pkl").is_file()
    msgs: list[str] = []
    train_expert("dmc/cartpole-swingup", "sac", 400, seed=0, snapshot_every=100, log=msgs.append)
    assert any("from step 300" in m for m in msgs) and (d / "snapshots" / "step_400.zip").is_file()
    from stable_baselines3.common.save_util import load_from_pkl

    assert load_from_pkl(str(d / "replay_buffer.pkl")).size() == 400  # the buffer was restored, then extended


@pytest.mark.parametrize("level", ["random", "medium", "expert", "medium-replay", "medium-expert"])
def test_locomotion_generators_tiny(experts_env, level):
    root, _ = experts_env
    path = make_dataset(f"hopper-{level}", size=300, seed=0, out=root / f"hopper-{level}.hdf5", force=True,
                        log=lambda m: None)
    res = CliRunner().invoke(cli, ["data", "info", str(path), "--json", "--env", "Hopper-v5"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert info["transitions"] == 300
    rets = _returns_from_file(path)
    assert info["episodes"] == len(rets)
    assert info["return_mean"] == pytest.approx(rets.mean(), rel=1e-5)
    meta = info["metadata"]
    assert meta["env_id"] == "Hopper-v5" and meta["generator"].endswith(f"hopper-{level}")
    assert meta["ref_max_score"] > meta["ref_min_score"]
    assert info["normalized_return_mean"] == pytest.approx(
        100 * (rets.mean() - meta["ref_min_score"]) / (meta["ref_max_score"] - meta["ref_min_score"]), rel=1e-5)
    levels = json.loads((expert_dir("Hopper-v5", "ppo", 0) / "meta.json").read_text())["levels"]
    assert levels["episodes"] >= 10 and levels["medium_snapshot"] in (2048, 4096)


def test_second_trainer_is_refused_while_one_runs(tmp_path, monkeypatch):
    import subprocess
    import sys
    import time

    from agentlab.errors import UserError
    from agentlab.files import exclusive_lock

    monkeypatch.setenv("AGENTLAB_DATA", str(tmp_path))
    d = expert_dir("Hopper-v5", "ppo", 0)
    d.mkdir(parents=True)
    ready = tmp_path / "ready"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import pathlib, sys, time\n"
        "from agentlab.files import exclusive_lock\n"
        "with exclusive_lock(sys.argv[1]):\n"
        "    pathlib.Path(sys.argv[2]).touch()\n"
        "    time.sleep(60)\n"), str(d / "training.lock"), str(ready)])
    try:
        for _ in range(300):
            if ready.exists():
                break
            time.sleep(0.05)
        with pytest.raises(UserError, match="being trained by another process"):
            train_expert("Hopper-v5", "ppo", 2048, seed=0)
        with pytest.raises(UserError, match="being trained by another process"):
            train_expert("Hopper-v5", "ppo", 2048, seed=0, force=True)
        assert d.is_dir()
    finally:
        holder.kill()
        holder.wait()
    with exclusive_lock(d / "training.lock", wait=False):  # a killed holder leaves no stale lock
        pass


def test_locomotion_generation_is_reproducible(experts_env, tmp_path):
    import torch

    paths = [make_dataset("hopper-medium-expert", size=200, seed=s, out=tmp_path / f"{i}.hdf5", log=lambda m: None)
             for i, s in enumerate((7, 7, 8))]
    torch.manual_seed(0)
    a, b, c = (load(str(p)) for p in paths)
    np.testing.assert_array_equal(a.actions, b.actions)
    np.testing.assert_array_equal(a.observations, b.observations)
    assert not np.array_equal(a.actions, c.actions)
