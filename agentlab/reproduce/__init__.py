"""Reproduction tables: tables as data, a resumable runner, aggregation and report writers.

A table module exposes ``TABLE = TableSpec(...)``. ``specs(budget, seeds)`` lists the runs;
``run`` names a top-level function ``"module:function"`` that executes one :class:`RunSpec` and
returns a JSON-serialisable dict; ``report(results, out_dir, meta)`` writes the table.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.util
import json
from collections.abc import Callable
from typing import Any

from agentlab.errors import UserError

BUDGETS = ("smoke", "small", "full")


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One run of a table: an algorithm on a task with a seed, a budget and parameters."""

    table: str
    algo: str
    task: str
    seed: int
    budget: str
    params: dict[str, Any] = dataclasses.field(default_factory=dict, hash=False, compare=False)

    @property
    def run_id(self) -> str:
        key = json.dumps([self.table, self.algo, self.task, self.seed, self.budget, self.params], sort_keys=True,
                         default=str)
        digest = hashlib.sha1(key.encode()).hexdigest()[:10]
        safe_task = self.task.replace("/", "_").replace(":", "_")
        return f"{self.algo}__{safe_task}__s{self.seed}__{self.budget}__{digest}"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunSpec:
        return cls(**d)


@dataclasses.dataclass(frozen=True)
class TableSpec:
    name: str
    description: str
    specs: Callable[[str, int], list[RunSpec]]
    run: str  # "module:function", importable in a worker process
    report: Callable[[list[dict[str, Any]], Any, dict[str, Any]], list[Any]]
    #: optional "module:function" training specs that differ only by seed together (list[RunSpec] ->
    #: list of results): what ``--runs-per-process N`` uses
    run_group: str | None = None


#: table name -> module exposing ``TABLE`` (imported lazily, as the algorithm registry is)
TABLES: dict[str, str] = {name: f"agentlab.reproduce.tables.{name}"
                          for name in ("offline", "offline_d4rl", "imitation", "mbrl", "sso", "ucip", "selftest")}


def register_table(name: str, module: str) -> None:
    """Add a table defined outside agentlab (a module exposing ``TABLE``)."""
    TABLES[name] = module


def get_table(name: str) -> TableSpec:
    if name not in TABLES:
        raise UserError(f"unknown table {name!r} (available: {', '.join(sorted(TABLES)) or 'none'})")
    if importlib.util.find_spec(TABLES[name]) is None:
        raise UserError(f"table {name!r} is not available in this version of agentlab")
    return importlib.import_module(TABLES[name]).TABLE


def _in_worker(threads: int | None) -> None:
    """What every backend's worker sets before training: torch threads, no progress bars."""
    import os

    if threads:
        import torch

        torch.set_num_threads(threads)
    os.environ.setdefault("AGENTLAB_PROGRESS", "0")


def execute_run(run_fn: str, spec: dict[str, Any], threads: int | None = None) -> dict[str, Any]:
    """Run one spec in the current process (used by every backend, in the worker)."""
    import time

    from agentlab.runs import git_sha

    _in_worker(threads)
    t0 = time.perf_counter()
    result = resolve_function(run_fn)(RunSpec.from_dict(spec))
    return {"spec": spec, "result": result, "wall_s": time.perf_counter() - t0, "git_sha": git_sha(short=True)}


def execute_job(run_fn: str, group_fn: str | None, specs: list[dict[str, Any]],
                threads: int | None = None) -> list[dict[str, Any]]:
    """Run a job of one spec (``run_fn``) or of several that differ only by seed (``group_fn``, in one
    process); one record per spec (``wall_s``: the whole job's). Used by every backend, in the worker."""
    if len(specs) == 1 or group_fn is None:
        return [execute_run(run_fn, s, threads) for s in specs]
    import time

    from agentlab.runs import git_sha

    _in_worker(threads)
    t0 = time.perf_counter()
    results = resolve_function(group_fn)([RunSpec.from_dict(s) for s in specs])
    wall = time.perf_counter() - t0
    return [{"spec": s, "result": r, "wall_s": wall, "git_sha": git_sha(short=True), "runs_in_process": len(specs)}
            for s, r in zip(specs, results)]


def resolve_function(path: str) -> Callable[..., Any]:
    module, _, fn = path.partition(":")
    return getattr(importlib.import_module(module), fn)


