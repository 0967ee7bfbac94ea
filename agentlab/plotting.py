"""Headless matplotlib for every figure agentlab writes (tables, monitor reports, benchmarks)."""

from __future__ import annotations

from pathlib import Path

from agentlab.files import atomic_path


def pyplot():
    """``matplotlib.pyplot`` on the headless Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path, dpi: int = 110) -> Path:
    """Write ``fig`` as PNG atomically (never a half-written file) and close it."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    pyplot().close(fig)
    return path
