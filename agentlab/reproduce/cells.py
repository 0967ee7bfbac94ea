"""Training one table cell: the one way every table trains a run directory and reads it back."""

from __future__ import annotations

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
