"""Run options: how a training run is driven, apart from the algorithm's own config.

A light module (no torch import at load time) so that the CLI can show the defaults in ``--help``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from agentlab.errors import UserError


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """How a run is driven (everything that is not the algorithm's own config). Defaults live here."""

    #: training steps: gradient steps offline, environment steps online / model-based, labelled
    #: interactions for DAgger
    steps: int = 0
    seed: int = 0
    #: environment id (evaluation, and online/imitation training)
    env_id: str | None = None
    #: offline dataset: file, name in $AGENTLAB_DATA, minari:ID or ogbench:NAME
    dataset: str | None = None
    #: demonstrations file (imitation algorithms)
    demos: str | None = None
    #: use the first N demonstration episodes
    num_demos: int | None = None
    #: auto | cpu | cuda
    device: str = "auto"
    #: evaluate every N steps (0 = only at the end)
    eval_every: int = 0
    #: episodes per evaluation (0 = no evaluation)
    eval_episodes: int = 10
    #: checkpoint every N steps (0 = every steps / 10)
    checkpoint_every: int = 0
    #: log a metrics row every N steps
    log_every: int = 100
    #: named config preset of the algorithm (None = full = reference values)
    preset: str | None = None

    #: options that say which run this is: a resume may not change them
    IDENTITY = ("env_id", "dataset", "demos", "num_demos", "seed", "preset")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RunOptions:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})

    def validate(self) -> None:
        """One-line errors for impossible values (before anything is written)."""
        if self.steps < 1:
            raise UserError("--steps must be a positive integer")
        for name in ("eval_every", "eval_episodes", "checkpoint_every"):
            if getattr(self, name) < 0:
                raise UserError(f"--{name.replace('_', '-')} must be >= 0")
        if self.log_every < 1:
            raise UserError("--log-every must be >= 1")
        if self.num_demos is not None and self.num_demos < 1:
            raise UserError("--num-demos must be >= 1")
        from agentlab.nn import get_device

        get_device(self.device)
