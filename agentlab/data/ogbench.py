"""OGBench single-task datasets and environments: ``--dataset ogbench:ENV_NAME``, ``--env ogbench/ENV``.

``ogbench:cube-single-play-singletask-task2-v0`` names OGBench's reward-based single-task variant of
the ``cube-single-play-v0`` dataset (the name grammar is OGBench's own, parsed the way
``ogbench.make_env_and_datasets`` parses it). Loading it:

1. finds ``cube-single-play-v0.npz`` -- ours (``agentlab data make ogbench/cube-single-play-v0`` writes
   ``$AGENTLAB_DATA/ogbench/``) or an official file placed in OGBench's data directory
   (``$OGBENCH_DATA`` or ``~/.ogbench/data``); nothing is ever downloaded;
2. reads it with ``ogbench.load_dataset(..., add_info=True)`` and relabels it with
   ``ogbench.relabel_utils.relabel_dataset`` against the task's environment (OGBench's own functions:
   ``reward = (#satisfied sub-goals) - (#sub-goals)`` of the state *before* the step, ``mask = 0`` where
   every sub-goal holds);
3. returns an agentlab :class:`~agentlab.data.Dataset`: ``terminals = (mask == 0)`` (no bootstrap
   from a goal state, as FQL's ``batch['masks']``), ``timeouts`` = the other trajectory ends, and
   ``metadata['env_id'] = 'ogbench/<env>'`` -- the evaluation env, e.g.
   ``ogbench/cube-single-singletask-task2-v0``.

Evaluation protocol (OGBench, FQL, FiDec): the single-task env terminates when the goal is reached,
``info['success']`` marks it and the score is the success rate x 100 over 50 episodes.
Success timing in ogbench 1.2.2 (the version pinned here): every ``*-singletask-*`` env is registered
with ``success_timing='pre'``, i.e. success is computed on the state ``s`` *before* the action, the
same convention as the dataset relabelling (the goal-conditioned envs default to ``'post'``, ``s'``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from agentlab.errors import UserError

from agentlab.envs.ogbench import (  # noqa: F401 - the env side lives in envs/ (re-exported here)
    EVAL_EPISODES,
    SUCCESS_TIMING,
    _import_ogbench,
    _task_of,
    check_env_name,
    make_env,
    register_env,
)


def ogbench_data_dir() -> Path:
    """OGBench's own data directory (``$OGBENCH_DATA`` or ogbench's default ``~/.ogbench/data``)."""
    return Path(os.environ.get("OGBENCH_DATA", "~/.ogbench/data")).expanduser()


def our_data_dir() -> Path:
    from agentlab.data.dataset import dataset_dir

    return dataset_dir() / "ogbench"


def parse(name: str) -> tuple[str, str, int | None]:
    """``cube-single-play-singletask-task2-v0`` -> (dataset ``cube-single-play-v0``, env
    ``cube-single-singletask-task2-v0``, task 2); the split is ``ogbench.make_env_and_datasets``'s."""
    splits = name.split("-")
    if "singletask" not in splits:
        raise UserError(f"ogbench:{name} is not a single-task name: offline RL needs e.g. "
                        f"ogbench:cube-single-play-singletask-task2-v0 (DATASET-singletask[-taskN]-v0)")
    pos = splits.index("singletask")
    if pos < 2 or not re.fullmatch(r"v\d+", splits[-1]):
        raise UserError(f"ogbench:{name}: expected DATASET-singletask[-taskN]-vK, e.g. "
                        "ogbench:cube-single-play-singletask-task2-v0")
    env_name = "-".join(splits[:pos - 1] + splits[pos:])
    dataset_name = "-".join(splits[:pos] + splits[-1:])
    rest = splits[pos + 1:-1]
    task = None
    if rest:
        m = re.fullmatch(r"task(\d+)", rest[0]) if len(rest) == 1 else None
        if m is None:
            raise UserError(f"ogbench:{name}: after 'singletask' expected '-taskN' or nothing, got "
                            f"'-{'-'.join(rest)}'")
        task = int(m.group(1))
    return dataset_name, env_name, task


def find_file(dataset_name: str) -> Path:
    """Our generated ``NAME.npz`` first, then OGBench's data directory; a one-line error otherwise."""
    cands = [our_data_dir() / f"{dataset_name}.npz", ogbench_data_dir() / f"{dataset_name}.npz"]
    for c in cands:
        if c.is_file():
            return c
    from agentlab.data.generators.ogbench_gen import SPECS

    make = (f"make it with `agentlab data make ogbench/{dataset_name}`" if dataset_name in SPECS else
            "agentlab cannot generate it: place the official file there")
    raise UserError(f"OGBench dataset {dataset_name}.npz not found (looked in {cands[0].parent} and "
                    f"{cands[1].parent}); {make}")


def load(name: str, drop_invalid: bool = False) -> Any:
    """The :class:`Dataset` of ``ogbench:NAME`` (see the module docstring)."""
    import gymnasium as gym

    from agentlab.data.dataset import Dataset

    dataset_name, env_name, task = parse(name)
    check_env_name(env_name, task)
    path = find_file(dataset_name)
    ogbench = _import_ogbench()
    from ogbench.relabel_utils import relabel_dataset

    try:
        raw = ogbench.load_dataset(str(path), add_info=True)
    except Exception as e:  # noqa: BLE001 - an unreadable or foreign file is the user's to fix
        raise UserError(f"{path}: not an OGBench dataset file ({type(e).__name__}: {str(e).splitlines()[0]})") \
            from None
    env = gym.make(env_name)
    try:
        relabel_dataset(env_name, env, raw)
    except (KeyError, IndexError, ValueError) as e:
        raise UserError(f"{path}: cannot relabel it for {env_name} ({type(e).__name__}: {e})") from None
    finally:
        env.close()
    goal = raw["masks"] == 0
    traj_end = raw["terminals"].astype(bool)
    meta: dict[str, Any] = {"dataset_name": name, "format": "ogbench", "source": str(path),
                            "env_id": f"ogbench/{env_name}", "ogbench_dataset": dataset_name,
                            "ogbench_task": task, "success_timing": SUCCESS_TIMING,
                            "eval_episodes": EVAL_EPISODES, "score": "success rate (0-100)"}
    try:
        with np.load(path) as z:
            if "metadata_json" in z.files:
                import json

                meta["generated"] = json.loads(str(z["metadata_json"]))
    except Exception:  # noqa: BLE001
        pass
    ds = Dataset(raw["observations"], raw["actions"], raw["rewards"], raw["next_observations"],
                 terminals=goal, timeouts=traj_end & ~goal, metadata=meta)
    return ds.checked(path, drop_invalid)


__all__ = ["EVAL_EPISODES", "SUCCESS_TIMING", "check_env_name", "find_file", "load", "make_env", "parse", "register_env"]
