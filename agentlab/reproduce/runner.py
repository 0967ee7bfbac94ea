"""Execute a table's runs (local process pool or Ray), store results, resume, aggregate.

The backend interface is narrow on purpose: ``submit(run_fn_path, spec_dict) -> result dict``.
Results are stored one JSON file per run in ``OUT/runs/<run_id>.json`` (written atomically), so a
restarted reproduction skips finished runs and the report can always be regenerated from disk.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

from agentlab.errors import UserError
from agentlab.reproduce import BUDGETS, RunSpec, execute_job, execute_run, get_table  # noqa: F401 - execute_run re-exported
from agentlab.runs import atomic_write_text, git_sha


class ResultStore:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.runs = self.root / "runs"

    def path(self, spec: RunSpec) -> Path:
        return self.runs / f"{spec.run_id}.json"

    def has(self, spec: RunSpec) -> bool:
        return self.path(spec).is_file()

    def put(self, record: dict[str, Any]) -> None:
        spec = RunSpec.from_dict(record["spec"])
        atomic_write_text(self.path(spec), json.dumps(record, indent=1, default=float))

    def get(self, spec: RunSpec) -> dict[str, Any] | None:
        p = self.path(spec)
        if not p.is_file():
            return None
        return json.loads(p.read_text())


class LocalBackend:
    """Runs in parallel worker processes (or inline with ``workers=1``)."""

    def __init__(self, workers: int = 1):
        self.workers = max(1, workers)

    def run(self, run_fn: str, jobs: list[list[RunSpec]], on_result: Callable[[dict[str, Any]], None],
            on_error: Callable[[RunSpec, str], None], group_fn: str | None = None) -> None:
        """Run each job (one spec, or specs trained together by ``group_fn``) and report its records."""
        if self.workers == 1:
            for job in jobs:
                try:
                    for record in execute_job(run_fn, group_fn, [s.to_dict() for s in job]):
                        on_result(record)
                except UserError:
                    raise
                except Exception:  # noqa: BLE001 - a failing run is reported, the others go on
                    for spec in job:
                        on_error(spec, traceback.format_exc())
            return
        import multiprocessing as mp

        threads = max(1, (os.cpu_count() or 1) // self.workers)
        with ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn")) as pool:
            futures: dict[Future, list[RunSpec]] = {
                pool.submit(execute_job, run_fn, group_fn, [s.to_dict() for s in job], threads): job for job in jobs}
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    try:
                        for record in fut.result():
                            on_result(record)
                    except Exception:  # noqa: BLE001
                        for spec in futures[fut]:
                            on_error(spec, "".join(traceback.format_exception(fut.exception())))


def group_by_seed(specs: list[RunSpec], size: int) -> list[list[RunSpec]]:
    """Jobs of up to ``size`` specs that differ only by seed (same table, algorithm, task, budget, params)."""
    if size <= 1:
        return [[s] for s in specs]
    groups: dict[str, list[RunSpec]] = {}
    for s in specs:
        key = json.dumps([s.table, s.algo, s.task, s.budget, s.params], sort_keys=True, default=str)
        groups.setdefault(key, []).append(s)
    return [g[i: i + size] for g in groups.values() for i in range(0, len(g), size)]


def make_backend(name: str, workers: int = 1, address: str | None = None, gpus_per_run: float = 0.0,
                 cpus_per_run: float = 1.0, retries: int = 0):
    if name == "local":
        return LocalBackend(workers)
    if name == "ray":
        from agentlab.reproduce.ray_backend import RayBackend

        return RayBackend(address=address, gpus_per_run=gpus_per_run, cpus_per_run=cpus_per_run, retries=retries)
    raise UserError(f"unknown backend {name!r} (use local or ray)")


def default_out_dir(table: str, budget: str) -> Path:
    return Path("results") / table / budget


def run_table(name: str, budget: str = "smoke", seeds: int = 3, out_dir: str | Path | None = None,
              backend: str = "local", workers: int = 1, address: str | None = None, gpus_per_run: float = 0.0,
              cpus_per_run: float = 1.0, retries: int = 0, only: Iterable[str] | None = None,
              report_only: bool = False, log: Callable[[str], None] = print,
              runs_per_process: int = 1) -> dict[str, Any]:
    """Run (or resume) table ``name`` and write its report. Returns a summary.

    ``only`` runs the specs whose algorithm is listed AND whose task is listed (a kind not named
    selects all of it: ``only={"fql"}`` = fql on every task); the report still covers every
    stored run of the table (marked INCOMPLETE while some are missing), so a partial run never
    replaces the whole table by a subset. ``report_only`` runs nothing and rewrites the report.
    ``runs_per_process`` > 1 trains up to that many runs that differ only by seed in one process, every
    gradient step of all of them as one vectorised update (tables with ``run_group``: the offline ones).
    """
    if budget not in BUDGETS:
        raise UserError(f"unknown budget {budget!r} (use {', '.join(BUDGETS)})")
    if seeds < 1:
        raise UserError("--seeds must be at least 1")
    if runs_per_process < 1:
        raise UserError("--runs-per-process must be at least 1")
    table = get_table(name)
    if runs_per_process > 1 and table.run_group is None:
        raise UserError(f"table {name!r} cannot train several runs per process (--runs-per-process is for the "
                        "offline tables)")
    executor = None if report_only else make_backend(backend, workers, address, gpus_per_run, cpus_per_run,
                                                      retries)  # fails early
    all_specs = table.specs(budget, seeds)
    specs = all_specs
    if only:
        only = set(only)
        algos, tasks = only & {s.algo for s in all_specs}, only & {s.task for s in all_specs}
        unknown = only - algos - tasks
        if unknown:
            raise UserError(f"--only {', '.join(sorted(unknown))}: no algorithm or task of table {name!r} "
                            f"at budget {budget!r} has that name")
        # names of algorithms and of tasks combine: `--only fql --only cube-single` = fql on cube-single
        specs = [s for s in all_specs if (not algos or s.algo in algos) and (not tasks or s.task in tasks)]
    out = Path(out_dir) if out_dir else default_out_dir(name, budget)
    store = ResultStore(out)
    todo = [] if report_only else [s for s in specs if not store.has(s)]
    log(f"{name}: {len(specs)} runs, {len(specs) - len(todo)} already done, {len(todo)} to run "
        f"(budget {budget}, seeds {seeds}, backend {backend})")
    errors: dict[str, str] = {}
    t0 = time.perf_counter()

    def on_result(record: dict[str, Any]) -> None:
        store.put(record)
        spec = RunSpec.from_dict(record["spec"])
        log(f"  done {spec.run_id} in {record['wall_s']:.1f}s")

    def on_error(spec: RunSpec, err: str) -> None:
        errors[spec.run_id] = err
        last = err.strip().splitlines()[-1] if err.strip() else "error"
        log(f"  FAILED {spec.run_id}: {last}")

    if todo:
        executor.run(table.run, group_by_seed(todo, runs_per_process), on_result, on_error, table.run_group)
    records = [r for r in (store.get(s) for s in all_specs) if r is not None]
    # the command that regenerates the whole table (not the subset or report-only call that wrote it)
    command = f"agentlab reproduce {name} --budget {budget} --seeds {seeds}"
    if backend != "local":
        command += f" --backend {backend}"
    elif workers > 1:
        command += f" --workers {workers}"
    if runs_per_process > 1:
        command += f" --runs-per-process {runs_per_process}"
    meta = {"table": name, "budget": budget, "seeds": seeds, "backend": backend, "git_sha": git_sha(short=True),
            "command": command, "runs_per_process": runs_per_process, "runs_total": len(all_specs), "runs_done": len(records),
            "complete": len(records) == len(all_specs), "failed": sorted(errors), "wall_s": time.perf_counter() - t0}
    if errors:
        atomic_write_text(out / "errors.json", json.dumps(errors, indent=1))
    written = table.report(records, out, meta) if records else []
    return {"out_dir": str(out), "records": records, "errors": errors, "written": [str(p) for p in written],
            "meta": meta}
