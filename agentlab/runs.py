"""Run directories, seeding, logging and atomic checkpoints.

A run directory holds ``config.yaml`` (algorithm name + resolved config + run options),
``metrics.csv`` (always), TensorBoard events (opt-in), ``meta.json`` (versions, git sha, command
line) and ``model.pt`` (networks, optimisers, step, normalisers, RNG states). Checkpoints are
written to a temporary file and renamed, so a killed run never leaves a half-written file, and a
run started with ``resume=True`` continues from the last checkpoint.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agentlab.errors import UserError
from agentlab.files import atomic_path, atomic_write_bytes, atomic_write_text, exclusive_lock

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.csv"
META_FILE = "meta.json"
CHECKPOINT_FILE = "model.pt"

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "exclusive_lock"]  # re-exported from files


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA). Environments are seeded via ``reset(seed=)``."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def rng_states() -> dict[str, Any]:
    """RNG states as tensors/plain types (loadable with ``weights_only=True``)."""
    np_state = np.random.get_state()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
        "numpy_pos": int(np_state[2]),
        "python": torch.tensor(np.frombuffer(json.dumps(random.getstate()).encode(), dtype=np.uint8).copy()),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def json_tensor(data: Any) -> torch.Tensor:
    """A JSON-serialisable value as a uint8 tensor (checkpoints load with ``weights_only=True``)."""
    return torch.tensor(np.frombuffer(json.dumps(data).encode(), dtype=np.uint8).copy())


def json_from_tensor(t: torch.Tensor) -> Any:
    return json.loads(bytes(t.numpy().tolist()).decode())


def set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    keys = states["numpy_keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, int(states["numpy_pos"]), 0, 0.0))
    py = json.loads(bytes(states["python"].numpy().tolist()).decode())
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def git_sha(short: bool = False) -> str:
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "rev-parse", *(["--short"] if short else []), "HEAD"], cwd=root,
                             capture_output=True, text=True, timeout=5)
        sha = out.stdout.strip()
        if not sha:
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def environment_meta() -> dict[str, Any]:
    import agentlab

    versions = {"python": platform.python_version(), "agentlab": agentlab.__version__, "torch": torch.__version__,
                "numpy": np.__version__}
    for mod in ("gymnasium", "mujoco", "stable_baselines3", "dm_control", "minari", "h5py"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - optional packages may be missing or broken
            pass
    return {"versions": versions, "git_sha": git_sha(), "command": " ".join(sys.argv), "host": platform.node(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


class Run:
    """A run directory: config, metrics, meta, checkpoints.

    ``Run(path, resume=False, force=False)``: a new run refuses an existing non-empty directory
    unless ``force`` (which clears it) or ``resume`` (which keeps it and appends to its metrics).
    """

    def __init__(self, path: str | Path, *, resume: bool = False, force: bool = False,
                 tensorboard: bool = False):
        self.path = Path(path)
        self.resume = resume
        exists = self.path.exists() and any(self.path.iterdir()) if self.path.exists() else False
        if self.path.exists() and not self.path.is_dir():
            raise UserError(f"run directory {self.path} exists and is not a directory")
        if resume:
            if not (self.path / CONFIG_FILE).is_file():
                raise UserError(f"cannot resume: {self.path} is not a run directory (no {CONFIG_FILE})")
        elif exists:
            if not force:
                raise UserError(f"run directory {self.path} already exists; pass --resume to continue it "
                                "or --force to overwrite it")
            if not (self.path / CONFIG_FILE).is_file() and not (self.path / METRICS_FILE).is_file():
                raise UserError(f"refusing to --force over {self.path}: it is not an agentlab run directory")
            import shutil

            shutil.rmtree(self.path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._csv_fields: list[str] | None = None
        self._appendable = False
        self._rows: list[dict[str, Any]] = []
        self._tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(self.path / "tb"))
        if resume and (self.path / METRICS_FILE).is_file():
            with open(self.path / METRICS_FILE, newline="") as f:
                self._rows = list(csv.DictReader(f))
        self.latest: dict[str, float] = {}

    # -- config / meta -------------------------------------------------------------------------
    def write_config(self, data: dict[str, Any]) -> None:
        from agentlab.config import save_yaml

        save_yaml(data, self.path / CONFIG_FILE)

    def read_config(self) -> dict[str, Any]:
        from agentlab.config import load_yaml

        return load_yaml(self.path / CONFIG_FILE)

    def write_meta(self, extra: dict[str, Any] | None = None) -> None:
        meta = environment_meta()
        if extra:
            meta.update(extra)
        self.write_meta_dict(meta)

    def write_meta_dict(self, meta: dict[str, Any]) -> None:
        atomic_write_text(self.path / META_FILE, json.dumps(meta, indent=2, default=str))

    @property
    def started(self) -> bool:
        """Has training produced anything (a metrics row or a checkpoint)?"""
        return bool(self._rows) or self.has_checkpoint()

    # -- metrics -------------------------------------------------------------------------------
    def log(self, step: int, metrics: dict[str, float]) -> None:
        """Append one row to ``metrics.csv`` (new columns extend the header) and TensorBoard."""
        row = {"step": int(step)}
        for k, v in metrics.items():
            v = float(v.item() if hasattr(v, "item") else v)
            row[k] = v
            self.latest[k] = v
            if self._tb is not None:
                self._tb.add_scalar(k, v, step)
        self._rows.append(row)
        self._write_metrics()

    def truncate_metrics(self, step: int) -> None:
        """Drop rows logged after ``step`` (used on resume: rows after the checkpoint are redone)."""
        self._rows = [r for r in self._rows if int(float(r["step"])) <= step]
        self._csv_fields, self._appendable = None, False
        self._write_metrics()

    def _write_metrics(self) -> None:
        """Append the newest row; rewrite the whole file (atomically) only when columns change."""
        fields: list[str] = list(self._csv_fields or ["step"])
        for r in self._rows[-1:] if self._csv_fields is not None and self._appendable else self._rows:
            for k in r:
                if k not in fields:
                    fields.append(k)
        path = self.path / METRICS_FILE
        if self._csv_fields is not None and fields == self._csv_fields and self._appendable and self._rows:
            with open(path, "a", newline="") as f:
                csv.DictWriter(f, fieldnames=fields, restval="", lineterminator="\n").writerow(self._rows[-1])
            return
        import io

        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=fields, restval="", lineterminator="\n")
        w.writeheader()
        for r in self._rows:
            w.writerow(r)
        atomic_write_text(path, buf.getvalue())
        self._csv_fields = fields
        self._appendable = True

    def metrics(self) -> list[dict[str, Any]]:
        return list(self._rows)

    # -- checkpoints ---------------------------------------------------------------------------
    def save_checkpoint(self, state: dict[str, Any]) -> None:
        """Write ``model.pt`` atomically, adding the RNG states."""
        state = dict(state)
        state["rng"] = rng_states()
        with atomic_path(self.path / CHECKPOINT_FILE) as tmp:
            torch.save(state, tmp)

    def has_checkpoint(self) -> bool:
        return (self.path / CHECKPOINT_FILE).is_file()

    def load_checkpoint(self, restore_rng: bool = True) -> dict[str, Any]:
        state = load_checkpoint_file(self.path / CHECKPOINT_FILE)
        if restore_rng and "rng" in state:
            set_rng_states(state["rng"])
        return state

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()

    # -- progress ------------------------------------------------------------------------------
    def progress(self, total: int, start: int = 0, description: str = "train") -> Progress:
        return Progress(total, start, description, self)


def read_metrics(run_dir: str | Path) -> list[dict[str, float]]:
    """The rows of a run's ``metrics.csv`` (``run_dir`` or the CSV file itself) as floats, empty cells
    dropped; ``[]`` when there is none. The one reader of ``metrics.csv``: tables, benchmarks and tools
    use it rather than parsing CSV."""
    path = Path(run_dir)
    path = path if path.suffix == ".csv" else path / METRICS_FILE
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items() if v not in (None, "")} for row in csv.DictReader(f)]


def load_checkpoint_file(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable checkpoint is a user-facing problem
        raise UserError(f"cannot read checkpoint {path}: {str(e).splitlines()[0]}") from None


class Progress:
    """A rich progress bar showing steps/s and the latest evaluation score (quiet when not a TTY)."""

    def __init__(self, total: int, start: int, description: str, run: Run | None = None):
        self.total, self.start, self.run = total, start, run
        self.description = description
        self._bar = None
        self._t0 = time.perf_counter()
        enabled = sys.stderr.isatty() and os.environ.get("AGENTLAB_PROGRESS", "1") != "0"
        if enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("{task.fields[rate]:.0f} it/s"), TextColumn("{task.fields[score]}"),
                                     TimeRemainingColumn(), transient=False)
            self._task = self._bar.add_task(description, total=total, completed=start, rate=0.0, score="")

    def __enter__(self) -> Progress:
        if self._bar is not None:
            self._bar.start()
        return self

    def update(self, step: int) -> None:
        if self._bar is None:
            return
        elapsed = max(time.perf_counter() - self._t0, 1e-9)
        score = ""
        if self.run is not None:
            for key in ("eval/normalized_score", "eval/return_mean"):
                if key in self.run.latest:
                    score = f"{key.split('/')[-1]} {self.run.latest[key]:.1f}"
                    break
        self._bar.update(self._task, completed=step, rate=(step - self.start) / elapsed, score=score)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
