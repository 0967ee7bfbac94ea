"""Training one table cell: the one way every table trains a run directory and reads it back."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from agentlab.runs import CHECKPOINT_FILE, read_metrics


def train_cell(run_dir: str | Path, algo: str, **train_kwargs: Any) -> dict[str, float]:
    """Train ``algo`` into ``run_dir`` with :func:`agentlab.training.train`; a cell interrupted after a
    checkpoint is resumed, a half-made one (no checkpoint) is started again. Returns the final row."""
    from agentlab.training import train

    run_dir = Path(run_dir)
    resume = (run_dir / CHECKPOINT_FILE).is_file()
    return train(None if resume else algo, run_dir, resume=resume, force=not resume and run_dir.exists(),
                 **train_kwargs)


def metric_curve(run_dir: str | Path, key: str, scale: float = 1.0) -> list[list[float]]:
    """``[[step, scale * value], ...]`` for the rows of ``run_dir``'s metrics that hold ``key``."""
    return [[int(r["step"]), scale * r[key]] for r in read_metrics(run_dir) if key in r]


def offline_cell(spec: Any, dataset: str, env_id: str | None, curve_key: str, scale: float = 1.0,
                 runs_root: str | Path = "runs") -> dict[str, Any]:
    """One offline-table cell: train ``spec.algo`` on ``dataset`` into ``runs/<table>/<run_id>`` (resumed
    when interrupted) and score it by the mean of its last three evaluations of ``curve_key``."""
    import torch

    if os.environ.get("AGENTLAB_THREADS") is None:
        torch.set_num_threads(1)  # a shared CPU: one thread per run (OpenMP threads thrash when oversubscribed)
    p = spec.params
    out = Path(runs_root) / spec.table / spec.run_id
    train_cell(out, spec.algo, steps=p["steps"], seed=spec.seed, env_id=env_id, dataset=dataset,
               preset=p["preset"], overrides=p["overrides"], device="cpu", eval_every=p["eval_every"],
               eval_episodes=p["eval_episodes"], log_every=max(p["eval_every"] // 2, 1))
    curve = metric_curve(out, curve_key, scale)
    last = [s for _, s in curve[-3:]]
    return {"score": sum(last) / len(last), "curve": curve, "run_dir": str(out), "env_id": env_id}
