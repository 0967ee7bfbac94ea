"""One entry point for training, used by ``agentlab train`` and by reproduce runs.

A run is ``(algorithm, config, RunOptions)``. Everything is validated before the run directory is
made; ``config.yaml`` holds all three and is enough to rebuild and to resume the run.

Resume (``resume=True``) reads them back. Options and config values passed again are applied and
recorded: ``config.yaml`` is rewritten with the new values and ``meta.json`` gets a ``resumes``
entry naming what changed at which step. Options that define *which* run this is
(:attr:`RunOptions.IDENTITY`: environment, dataset, demonstrations, seed, preset) are refused with a
one-line error, and so is a config change the checkpoint's networks cannot take.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from agentlab.agents import TrainContext, get_algorithm
from agentlab.config import config_from_dict, config_to_dict, resolve_config
from agentlab.errors import UserError
from agentlab.nn import get_device
from agentlab.options import RunOptions
from agentlab.runs import META_FILE, Run, seed_everything


#: the keyword names of :func:`train` that are run options
RUN_OPTIONS = tuple(f.name for f in dataclasses.fields(RunOptions))


def _changes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, list[Any]]:
    return {k: [old.get(k), v] for k, v in new.items() if old.get(k) != v}


def prepare(algo: str | None, out: str | Path, *, config_file: str | None = None, overrides: Iterable[str] = (),
            resume: bool = False, force: bool = False, tensorboard: bool = False,
            extra: dict[str, Any] | None = None, **options: Any) -> tuple[Any, TrainContext]:
    """Validate everything, make (or reopen) run directory ``out`` and return ``(algorithm, ctx)``,
    the RNGs seeded with the run's seed; :func:`train` then calls ``algorithm.train(ctx)``."""
    unknown = set(options) - set(RUN_OPTIONS)
    if unknown:
        raise TypeError(f"train() got unknown options {sorted(unknown)}")
    given = {k: v for k, v in options.items() if v is not None}
    overrides = tuple(overrides)
    on_resumed = None
    if resume:
        run = Run(out, resume=True, tensorboard=tensorboard)
        saved = run.read_config()
        algo_name = saved.get("algo")
        if algo is not None and algo != algo_name:
            raise UserError(f"{out} holds a {algo_name} run, not {algo}")
        algorithm = get_algorithm(algo_name)
        old_cfg = config_from_dict(algorithm.config_cls, saved.get("config", {}))
        old_opts = RunOptions.from_dict(saved.get("run", {}))
        opts = dataclasses.replace(old_opts, **given)
        for name in RunOptions.IDENTITY:
            if getattr(opts, name) != getattr(old_opts, name):
                raise UserError(f"cannot change {name} when resuming ({getattr(old_opts, name)!r} -> "
                                f"{getattr(opts, name)!r}): start a new run with --out")
        opts.validate()
        cfg = old_cfg
        if config_file is not None or overrides:
            cfg = resolve_config(algorithm.config_cls, config_file, overrides, base=old_cfg)
        changed = {"run": _changes(dataclasses.asdict(old_opts), dataclasses.asdict(opts)),
                   "config": _changes(config_to_dict(old_cfg), config_to_dict(cfg))}
        changed = {k: v for k, v in changed.items() if v}

        def on_resumed(step: int) -> None:
            """Called by the loop once the checkpoint is loaded: write down what this resume changed."""
            if changed:
                run.write_config({**run.read_config(), "config": config_to_dict(cfg),
                                  "run": dataclasses.asdict(opts)})
            meta_path = run.path / META_FILE
            meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
            meta.setdefault("resumes", []).append({"step": step, "changed": changed,
                                                   "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
            run.write_meta_dict(meta)
    else:
        if algo is None:
            raise UserError("name an algorithm (see `agentlab train --help`) or pass --resume RUN_DIR")
        algorithm = get_algorithm(algo)
        opts = RunOptions(**given)
        opts.validate()
        if opts.preset is not None and opts.preset != "full" and opts.preset not in algorithm.presets:
            raise UserError(f"unknown preset {opts.preset!r} for {algo} (available: full, "
                            f"{', '.join(algorithm.presets)})")
        if opts.env_id is not None:
            from agentlab.envs import make_env

            make_env(opts.env_id).close()  # unknown ids fail here, before anything is written
        cfg = resolve_config(algorithm.config_cls, config_file, overrides,
                             preset=algorithm.presets.get(opts.preset) if opts.preset else None)
        run = Run(out, force=force, tensorboard=tensorboard)
        run.write_config({"algo": algorithm.name, "config": config_to_dict(cfg), "run": dataclasses.asdict(opts)})
        run.write_meta()
    seed_everything(opts.seed)
    ctx = TrainContext(run=run, algo=algorithm.name, config=cfg, steps=opts.steps, seed=opts.seed,
                       env_id=opts.env_id, dataset=opts.dataset, demos=opts.demos, num_demos=opts.num_demos,
                       device=get_device(opts.device), eval_every=opts.eval_every, eval_episodes=opts.eval_episodes,
                       checkpoint_every=opts.checkpoint_every, log_every=opts.log_every, resume=resume,
                       extra=dict(extra or {}), on_resumed=on_resumed)
    return algorithm, ctx


def discard_unstarted(ctx: TrainContext) -> None:
    """A new run that failed while it was being set up (bad data, bad env, inconsistent config) leaves
    no half-made directory behind; one with a checkpoint is kept for --resume."""
    if not ctx.resume and not ctx.run.has_checkpoint() and not ctx.run.started:
        ctx.run.close()
        shutil.rmtree(ctx.run.path, ignore_errors=True)


def train(algo: str | None, out: str | Path, *, config_file: str | None = None, overrides: Iterable[str] = (),
          resume: bool = False, force: bool = False, tensorboard: bool = False,
          extra: dict[str, Any] | None = None, **options: Any) -> dict[str, float]:
    """Train ``algo`` into run directory ``out`` (or continue it with ``resume=True``).

    ``options`` are :class:`RunOptions` fields (``steps=``, ``seed=``, ``env_id=``, ...). On a new run
    omitted ones take their defaults; on resume omitted (or ``None``) ones keep the saved values.
    """
    algorithm, ctx = prepare(algo, out, config_file=config_file, overrides=overrides, resume=resume, force=force,
                             tensorboard=tensorboard, extra=extra, **options)
    try:
        return algorithm.train(ctx)
    except BaseException:
        discard_unstarted(ctx)
        raise
    finally:
        ctx.run.close()


def train_together(jobs: list[dict[str, Any]]) -> list[dict[str, float]]:
    """Train several runs of one offline algorithm that differ only by seed in one process, every
    gradient step of all of them as one vectorised update (:class:`agentlab.agents.vectorised.SeedStack`).

    Each job is the keyword arguments of :func:`train` (``algo``, ``out``, ``seed``, ``resume``, ...). Each
    run directory is an ordinary run: its own metrics, evaluations and checkpoints, resumable alone or in a
    group. Returns each run's last logged row.
    """
    prepared: list[TrainContext] = []
    try:
        algorithm = None
        for job in jobs:
            job = dict(job)
            algorithm, ctx = prepare(job.pop("algo", None), job.pop("out"), **job)
            prepared.append(ctx)
        if len({c.algo for c in prepared}) != 1:
            raise UserError("runs trained together must be of one algorithm")
        from agentlab.agents.loops import train_offline_together

        if algorithm is None or algorithm.kind != "offline":
            raise UserError(f"{prepared[0].algo} cannot be trained as a seed stack (offline flow agents only)")
        return train_offline_together(prepared)
    except BaseException:
        for ctx in prepared:
            discard_unstarted(ctx)
        raise
    finally:
        for ctx in prepared:
            ctx.run.close()
