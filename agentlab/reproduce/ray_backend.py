"""Ray backend for ``agentlab reproduce --backend ray``.

Each run is one Ray task with its own resource request (``--cpus-per-run``, ``--gpus-per-run``);
results stream back as tasks finish into the same result store and aggregation as the local
backend, so a reproduction can move between a laptop and a cluster and be resumed on either.
``--address auto`` joins a running cluster (``ray start --head``), ``ray://HOST:PORT`` uses Ray
Client; no address starts a local Ray instance. Ray is optional: ``pip install agentlab[ray]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agentlab.errors import UserError
from agentlab.reproduce import RunSpec


def _import_ray():
    try:
        import ray
    except ImportError:
        raise UserError("the Ray backend needs Ray: pip install 'agentlab[ray]'") from None
    return ray


class RayBackend:
    def __init__(self, address: str | None = None, gpus_per_run: float = 0.0, cpus_per_run: float = 1.0,
                 retries: int = 0, num_cpus: int | None = None):
        if cpus_per_run <= 0 or gpus_per_run < 0 or retries < 0:
            raise UserError("--cpus-per-run must be > 0, --gpus-per-run and --retries >= 0")
        self.ray = _import_ray()
        self.address = address
        self.gpus_per_run = gpus_per_run
        self.cpus_per_run = cpus_per_run
        self.retries = retries
        self.num_cpus = num_cpus

    def _init(self) -> bool:
        """Connect (or start a local instance); returns whether we started it."""
        ray = self.ray
        if ray.is_initialized():
            return False
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
        try:
            if self.address:
                ray.init(address=self.address, **kwargs)
            else:
                ray.init(num_cpus=self.num_cpus, **kwargs)
        except (ConnectionError, ValueError, RuntimeError) as e:
            raise UserError(f"cannot connect to Ray at {self.address or 'a new local instance'}: "
                            f"{str(e).splitlines()[0]}") from None
        return True

    def run(self, run_fn: str, jobs: list[list[RunSpec]], on_result: Callable[[dict[str, Any]], None],
            on_error: Callable[[RunSpec, str], None], group_fn: str | None = None) -> None:
        """Each job (one spec, or specs trained together by ``group_fn``) is one Ray task."""
        ray = self.ray
        started = self._init()
        try:
            from agentlab.reproduce import execute_job

            threads = max(1, int(self.cpus_per_run))
            remote = ray.remote(num_cpus=self.cpus_per_run, num_gpus=self.gpus_per_run,
                                max_retries=0)(execute_job)
            attempts: dict[str, int] = {}
            pending: dict[Any, list[RunSpec]] = {}

            def submit(job: list[RunSpec]) -> None:
                key = job[0].run_id
                attempts[key] = attempts.get(key, 0) + 1
                pending[remote.remote(run_fn, group_fn, [s.to_dict() for s in job], threads)] = job

            for job in jobs:
                submit(job)
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                ref = done[0]
                job = pending.pop(ref)
                try:
                    for record in ray.get(ref):
                        on_result(record)
                except Exception as e:  # noqa: BLE001 - a failed task is retried or reported
                    if attempts[job[0].run_id] <= self.retries:
                        submit(job)
                    else:
                        cause = getattr(e, "cause", None) or e
                        for spec in job:
                            on_error(spec, f"{type(cause).__name__}: {cause}")
        finally:
            if started:
                ray.shutdown()
