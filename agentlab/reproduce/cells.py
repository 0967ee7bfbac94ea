"""Training one table cell: the one way every table trains a run directory and reads it back."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from agentlab.runs import CHECKPOINT_FILE, read_metrics


def metric_curve(run_dir: str | Path, key: str, scale: float = 1.0) -> list[list[float]]:
    """``[[step, scale * value], ...]`` for the rows of ``run_dir``'s metrics that hold ``key``."""
    return [[int(r["step"]), scale * r[key]] for r in read_metrics(run_dir) if key in r]


def _offline_job(spec: Any, dataset: str, env_id: str | None, runs_root: str | Path) -> dict[str, Any]:
    """The :func:`agentlab.training.train` arguments of one offline cell (resumed when it has a checkpoint)."""
    import torch

    if os.environ.get("AGENTLAB_THREADS") is None:
        torch.set_num_threads(1)  # a shared CPU: one thread per run (OpenMP threads thrash when oversubscribed)
    p = spec.params
    out = Path(runs_root) / spec.table / spec.run_id
    resume = (out / CHECKPOINT_FILE).is_file()
    return dict(algo=None if resume else spec.algo, out=out, resume=resume, force=not resume and out.exists(),
                steps=p["steps"], seed=spec.seed, env_id=env_id, dataset=dataset, preset=p["preset"],
                overrides=p["overrides"], device=p.get("device", "cpu"), eval_every=p["eval_every"],
                eval_episodes=p["eval_episodes"], log_every=max(p["eval_every"] // 2, 1))


def _offline_result(out: Path, env_id: str | None, curve_key: str, scale: float) -> dict[str, Any]:
    curve = metric_curve(out, curve_key, scale)
    last = [s for _, s in curve[-3:]]
    return {"score": sum(last) / len(last), "curve": curve, "run_dir": str(out), "env_id": env_id}


def offline_cell(spec: Any, dataset: str, env_id: str | None, curve_key: str, scale: float = 1.0,
                 runs_root: str | Path = "runs") -> dict[str, Any]:
    """One offline-table cell: train ``spec.algo`` on ``dataset`` into ``runs/<table>/<run_id>`` (resumed
    when interrupted) and score it by the mean of its last three evaluations of ``curve_key``."""
    from agentlab.training import train

    job = _offline_job(spec, dataset, env_id, runs_root)
    out = job.pop("out")
    train(job.pop("algo"), out, **job)
    return _offline_result(out, env_id, curve_key, scale)


def offline_cells(specs: list[Any], dataset: str, env_id: str | None, curve_key: str, scale: float = 1.0,
                  runs_root: str | Path = "runs") -> list[dict[str, Any]]:
    """Cells that differ only by seed, trained together as one vectorised update per step
    (:func:`agentlab.training.train_together`); each has its own run directory, as with :func:`offline_cell`."""
    from agentlab.training import train_together

    jobs = [_offline_job(s, dataset, env_id, runs_root) for s in specs]
    train_together(jobs)
    return [_offline_result(j["out"], env_id, curve_key, scale) for j in jobs]
