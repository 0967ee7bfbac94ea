"""`agentlab experts train --algo agentlab-sac`: our SAC as an expert trainer, then collect demos."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from agentlab.cli import cli


@pytest.mark.slow
def test_agentlab_sac_expert_train_load_collect(data_dir, tmp_path):
    from agentlab.data import load
    from agentlab.experts import find_expert, load_expert

    r = CliRunner().invoke(cli, ["experts", "train", "--env", "Pendulum-v1", "--algo", "agentlab-sac", "--steps",
                                 "400", "--no-levels"])
    assert r.exit_code == 0, r.output
    path = find_expert("Pendulum-v1", "agentlab-sac")
    assert (path / "run" / "model.pt").is_file()
    expert = load_expert("Pendulum-v1", "agentlab-sac")
    a = expert.act(np.zeros((3, 3), np.float32))
    assert a.shape == (3, 1) and np.all(np.abs(a) <= 2.0)
    out = tmp_path / "demos.hdf5"
    r = CliRunner().invoke(cli, ["experts", "collect", "--env", "Pendulum-v1", "--algo", "agentlab-sac",
                                 "--episodes", "2", "--out", str(out)])
    assert r.exit_code == 0, r.output
    ds = load(out)
    assert ds.num_episodes() == 2 and "expert_return_mean" in ds.metadata
    # a second `train` reuses the finished expert
    r = CliRunner().invoke(cli, ["experts", "train", "--env", "Pendulum-v1", "--algo", "agentlab-sac", "--steps",
                                 "400", "--no-levels"])
    assert r.exit_code == 0, r.output
