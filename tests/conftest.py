"""Shared test set-up: one torch thread, quiet progress bars, a private dataset directory."""

import os

os.environ.setdefault("AGENTLAB_PROGRESS", "0")
os.environ.setdefault("MUJOCO_GL", "egl")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """A fresh ``$AGENTLAB_DATA`` for the test."""
    d = tmp_path / "datasets"
    d.mkdir()
    monkeypatch.setenv("AGENTLAB_DATA", str(d))
    return d


def make_pendulum_dataset(path, episodes=3, steps=50, seed=0):
    """A small random-policy Pendulum dataset with reference scores, written as D4RL HDF5."""
    import numpy as np

    from agentlab.data import Dataset, save_d4rl
    from agentlab.envs import make_env

    env = make_env("Pendulum-v1")
    rng = np.random.default_rng(seed)
    rows = {k: [] for k in ("o", "a", "r", "o2", "te", "tr")}
    for ep in range(episodes):
        o, _ = env.reset(seed=seed + ep)
        for t in range(steps):
            a = rng.uniform(-2, 2, size=1).astype(np.float32)
            o2, r, te, tr, _ = env.step(a)
            tr = tr or t == steps - 1
            for k, v in zip(rows, (o, a, r, o2, te, tr)):
                rows[k].append(v)
            o = o2
            if te or tr:
                break
    ds = Dataset(*(np.array(rows[k]) for k in rows),
                 metadata={"env_id": "Pendulum-v1", "ref_min_score": -400.0, "ref_max_score": -50.0})
    return save_d4rl(ds, path)


@pytest.fixture(scope="session")
def pendulum_dataset(tmp_path_factory):
    return make_pendulum_dataset(tmp_path_factory.mktemp("data") / "pendulum.hdf5")


@pytest.fixture
def failing_selftest(monkeypatch):
    """The selftest table with its first run replaced by one that raises."""
    import dataclasses

    from agentlab.reproduce import RunSpec
    from agentlab.reproduce.tables import selftest

    orig = selftest.specs

    def specs(budget, seeds):
        out = orig(budget, seeds)
        bad = out[0]
        return [RunSpec(bad.table, bad.algo, bad.task, 99, bad.budget, {**bad.params, "fail": True})] + out[1:]

    monkeypatch.setattr(selftest, "TABLE", dataclasses.replace(selftest.TABLE, specs=specs))
