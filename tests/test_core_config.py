import dataclasses

import pytest

from agentlab.agents.bc import BCConfig
from agentlab.config import config_from_dict, config_to_dict, load_yaml, resolve_config, save_yaml
from agentlab.errors import UserError


def test_round_trip(tmp_path):
    cfg = resolve_config(BCConfig, overrides=["lr=1e-3", "hidden=[32,16]", "batch_size=64"])
    assert cfg.lr == 1e-3 and cfg.hidden == [32, 16] and cfg.batch_size == 64
    save_yaml({"algo": "bc", "config": config_to_dict(cfg)}, tmp_path / "c.yaml")
    back = config_from_dict(BCConfig, load_yaml(tmp_path / "c.yaml")["config"])
    assert back == cfg


def test_yaml_then_overrides(tmp_path):
    (tmp_path / "c.yaml").write_text("lr: 0.01\nbatch_size: 32\n")
    cfg = resolve_config(BCConfig, tmp_path / "c.yaml", ["batch_size=8"])
    assert cfg.lr == 0.01 and cfg.batch_size == 8


def test_frozen_and_help():
    cfg = BCConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.lr = 1.0  # type: ignore[misc]
    assert all(f.metadata.get("help") for f in dataclasses.fields(BCConfig))


@pytest.mark.parametrize("pairs", [["lr=abc"], ["batch_size=1.5"], ["zzz=1"], ["hidden={a: 1}"]])
def test_bad_values(pairs):
    with pytest.raises(UserError):
        resolve_config(BCConfig, overrides=pairs)
