"""agentlab: offline RL, imitation, model-based RL and agent monitoring on Gymnasium and PyTorch."""

from __future__ import annotations

from pathlib import Path

__version__ = "0.1.0"


def register_envs() -> None:
    """Register agentlab's Gymnasium ids (``dmc/...``, ``agentlab/...``); importing agentlab does it,
    so ``gym.make("dmc/cartpole-swingup")`` works after ``import agentlab`` (or
    ``gym.register_envs(agentlab)``), as with other Gymnasium env packages."""
    from agentlab.envs import register_all

    register_all()


register_envs()


def load(run_dir: str | Path, device: str = "cpu", deterministic: bool = True):
    """The trained policy of a run directory: ``load(run_dir).act(obs)`` (single or batched)."""
    from agentlab.agents import load_agent
    from agentlab.policy import Policy

    agent, _ = load_agent(run_dir, device)
    return Policy(agent, device, deterministic)


__all__ = ["__version__", "load", "register_envs"]
