"""One entry point for training, used by ``agentlab train`` and by reproduce runs."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from agentlab.agents import TrainContext, get_algorithm
from agentlab.config import config_from_dict, config_to_dict, resolve_config
from agentlab.errors import UserError
from agentlab.nn import get_device
from agentlab.runs import Run, seed_everything

RUN_OPTIONS = ("env_id", "dataset", "demos", "num_demos", "steps", "seed", "device", "eval_every", "eval_episodes",
               "checkpoint_every", "log_every", "preset")


def train(algo: str | None, out: str | Path, *, steps: int | None = None, seed: int = 0, env_id: str | None = None,
          dataset: str | None = None, demos: str | None = None, num_demos: int | None = None,
          config_file: str | None = None, overrides: Iterable[str] = (), preset: str | None = None,
          device: str = "auto", resume: bool = False, force: bool = False, tensorboard: bool = False,
          eval_every: int = 0, eval_episodes: int = 10, checkpoint_every: int = 0, log_every: int = 100,
          extra: dict[str, Any] | None = None) -> dict[str, float]:
    """Train ``algo`` into run directory ``out`` (or continue it with ``resume=True``)."""
    if resume:
        run = Run(out, resume=True, tensorboard=tensorboard)
        saved = run.read_config()
        algo_name = saved.get("algo")
        if algo is not None and algo != algo_name:
            raise UserError(f"{out} holds a {algo_name} run, not {algo}")
        algorithm = get_algorithm(algo_name)
        cfg = config_from_dict(algorithm.config_cls, saved.get("config", {}))
        opts = saved.get("run", {})
        if steps is not None and steps != opts.get("steps"):
            opts["steps"] = steps  # allow extending a finished run
    else:
        if algo is None:
            raise UserError("name an algorithm (see `agentlab train --help`) or pass --resume RUN_DIR")
        algorithm = get_algorithm(algo)
        if steps is None or steps < 1:
            raise UserError("--steps must be a positive integer")
        if preset is not None and preset != "full" and preset not in algorithm.presets:
            raise UserError(f"unknown preset {preset!r} for {algo} (available: full, "
                            f"{', '.join(algorithm.presets)})")
        if env_id is not None:
            from agentlab.envs import make_env

            make_env(env_id).close()  # unknown ids fail here, before anything is written
        cfg = resolve_config(algorithm.config_cls, config_file, overrides,
                             preset=algorithm.presets.get(preset) if preset else None)
        get_device(device)
        if eval_episodes < 0:
            raise UserError("--eval-episodes must be >= 0 (0 = no evaluation)")
        run = Run(out, force=force, tensorboard=tensorboard)
        opts = dict(env_id=env_id, dataset=dataset, demos=demos, num_demos=num_demos, steps=steps, seed=seed,
                    device=device, eval_every=eval_every, eval_episodes=eval_episodes,
                    checkpoint_every=checkpoint_every, log_every=log_every, preset=preset)
        run.write_config({"algo": algorithm.name, "config": config_to_dict(cfg), "run": opts})
        run.write_meta()
    seed_everything(int(opts["seed"]))
    ctx = TrainContext(run=run, algo=algorithm.name, config=cfg, steps=int(opts["steps"]), seed=int(opts["seed"]),
                       env_id=opts.get("env_id"), dataset=opts.get("dataset"), demos=opts.get("demos"),
                       num_demos=opts.get("num_demos"), device=get_device(opts.get("device", "auto")),
                       eval_every=int(opts.get("eval_every") or 0), eval_episodes=int(10 if opts.get("eval_episodes") is None else opts["eval_episodes"]),
                       checkpoint_every=int(opts.get("checkpoint_every") or 0),
                       log_every=int(opts.get("log_every") or 100), resume=resume, extra=dict(extra or {}))
    try:
        return algorithm.train(ctx)
    finally:
        run.close()
