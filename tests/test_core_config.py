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


def test_yaml_boolean_words_map_back_to_a_literal_spelling():
    from typing import Literal

    from agentlab.config import AlgoConfig, help_field

    @dataclasses.dataclass(frozen=True)
    class Switch(AlgoConfig):
        mode: Literal["off", "fast"] = help_field("fast", "a string choice that YAML would read as a boolean")
        flag: bool = help_field(True, "a real boolean")

    cfg = resolve_config(Switch, overrides=["mode=off", "flag=off"])
    assert cfg.mode == "off" and cfg.flag is False
    with pytest.raises(UserError, match="must be one of"):
        resolve_config(Switch, overrides=["mode=on"])  # no spelling of True is allowed
