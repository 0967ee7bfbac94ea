"""The algorithm registry.

Each algorithm is one module exposing ``ALGORITHM = Algorithm(...)``; modules are imported lazily
so that ``agentlab --help`` stays fast. See ``docs/architecture.md``.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from agentlab.config import AlgoConfig
from agentlab.errors import UserError

#: algorithm name -> module that defines ``ALGORITHM`` (``"module:ATTR"`` names another attribute)
REGISTRY: dict[str, str] = {
    "bc": "agentlab.agents.bc",
    "pets": "agentlab.agents.pets",
    "flow_bc": "agentlab.agents.flow_bc",
    "fql": "agentlab.agents.fql",
    "fidec": "agentlab.agents.fidec",
    "deflow": "agentlab.agents.fidec:DEFLOW",  # FiDec with F = I (a config switch)
    "dagger": "agentlab.agents.dagger",
    "sac": "agentlab.agents.sac",
    "dac": "agentlab.agents.dac",
    "ailboost": "agentlab.agents.ailboost",
}


@dataclasses.dataclass
class TrainContext:
    """Everything a training loop needs, resolved by the CLI (or a reproduce runner)."""

    run: Any  # agentlab.runs.Run
    algo: str
    config: AlgoConfig
    steps: int
    seed: int = 0
    env_id: str | None = None
    dataset: str | None = None
    demos: str | None = None
    num_demos: int | None = None
    device: torch.device = dataclasses.field(default_factory=lambda: torch.device("cpu"))
    eval_every: int = 0
    eval_episodes: int = 10
    checkpoint_every: int = 0
    log_every: int = 100
    resume: bool = False
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: called by the loop with the restored step once a resumed run's checkpoint is loaded
    on_resumed: Callable[[int], None] | None = None


@dataclasses.dataclass(frozen=True)
class Algorithm:
    name: str
    config_cls: type[AlgoConfig]
    #: runs the whole training loop (resumable) and returns the final metrics
    train: Callable[[TrainContext], dict[str, float]]
    #: builds the agent module from (config, spaces); its state dict is under "agent" in model.pt
    build_agent: Callable[[AlgoConfig, dict[str, Any]], torch.nn.Module]
    kind: str = "offline"  # offline | online | imitation | mbrl
    description: str = ""
    #: named config presets, e.g. {"small": {...}, "smoke": {...}}; "full" = the defaults
    presets: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)


def available() -> list[str]:
    return sorted(REGISTRY)


def get_algorithm(name: str) -> Algorithm:
    if name not in REGISTRY:
        raise UserError(f"unknown algorithm {name!r} (available: {', '.join(available())})")
    module, _, attr = REGISTRY[name].partition(":")
    return getattr(importlib.import_module(module), attr or "ALGORITHM")


def load_agent(run_dir: str | Path, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild the trained agent of a run directory from ``config.yaml`` + ``model.pt``."""
    from agentlab.config import config_from_dict, load_yaml
    from agentlab.runs import CHECKPOINT_FILE, CONFIG_FILE, load_checkpoint_file

    run_dir = Path(run_dir)
    if not (run_dir / CONFIG_FILE).is_file():
        raise UserError(f"{run_dir} is not a run directory (no {CONFIG_FILE})")
    data = load_yaml(run_dir / CONFIG_FILE)
    algo = get_algorithm(data.get("algo", ""))
    cfg = config_from_dict(algo.config_cls, data.get("config", {}))
    agent = algo.build_agent(cfg, data.get("spaces", {}))
    state = load_checkpoint_file(run_dir / CHECKPOINT_FILE, map_location=device)
    agent.load_state_dict(state["agent"])
    return agent.to(device).eval(), data
