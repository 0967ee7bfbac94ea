"""OGBench's single-task environments as ``ogbench/<env>`` Gymnasium ids (registered on first
:func:`agentlab.envs.make_env`); the datasets side is :mod:`agentlab.data.ogbench`."""

from __future__ import annotations

import re
from typing import Any

from agentlab.errors import UserError

#: episodes per evaluation in the references (FQL ``--eval_episodes=50``; FiDec follows FQL)
EVAL_EPISODES = 50
#: when ogbench 1.2.2 computes success in its single-task envs (see agentlab.data.ogbench)
SUCCESS_TIMING = "pre"


def check_env_name(env_name: str, task: int | None = None) -> None:
    """A one-line error unless ogbench registers ``env_name`` (unknown family, or task out of range)."""
    import gymnasium as gym

    _import_ogbench()
    if env_name in gym.registry:
        return
    base = re.sub(r"-task\d+(?=-v\d+$)", "", env_name)
    if task is not None and base in gym.registry:
        tasks = sorted(int(m.group(1)) for k in gym.registry
                       if (m := re.fullmatch(re.escape(base[:-3]) + r"-task(\d+)" + re.escape(base[-3:]), k)))
        raise UserError(f"{env_name}: OGBench has no task {task} for this environment "
                        f"(tasks {tasks[0]}-{tasks[-1]}, or none for the default task)")
    known = sorted({k.split("-singletask")[0] for k in gym.registry if "-singletask" in k and "visual" not in k})
    import difflib

    close = difflib.get_close_matches(env_name.split("-singletask")[0], known, n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else f" (known: {', '.join(known)})"
    raise UserError(f"unknown OGBench environment {env_name!r}{hint}")


def _import_ogbench() -> Any:
    try:
        import ogbench
    except ImportError:
        raise UserError("the ogbench package is not installed: pip install ogbench") from None
    return ogbench


def make_env(env_name: str, **kwargs: Any) -> Any:
    """Entry point of the ``ogbench/<env>`` Gymnasium ids: OGBench's own registered env."""
    import gymnasium as gym

    check_env_name(env_name)
    return gym.make(env_name, **kwargs)


def register_env(env_id: str) -> None:
    """Register ``ogbench/<env>`` with Gymnasium (called by :func:`agentlab.envs.make_env`)."""
    import gymnasium as gym

    env_name = env_id[len("ogbench/"):]
    check_env_name(env_name, _task_of(env_name))
    if env_id not in gym.registry:
        gym.register(id=env_id, entry_point="agentlab.envs.ogbench:make_env", kwargs={"env_name": env_name})


def _task_of(env_name: str) -> int | None:
    m = re.search(r"-task(\d+)-v\d+$", env_name)
    return int(m.group(1)) if m else None
