"""Normalised scores on the 0-100 scale: 100 (R - ref_min) / (ref_max - ref_min)."""

from __future__ import annotations

from typing import Any

import numpy as np

from agentlab.errors import UserError

# D4RL's constants (random and expert policy returns), keyed by env family.
D4RL_REF_SCORES: dict[str, tuple[float, float]] = {
    "halfcheetah": (-280.178953, 12135.0),
    "hopper": (-20.272305, 3234.3),
    "walker2d": (1.629008, 4592.3),
    "ant": (-325.6, 3879.7),
    "antmaze": (0.0, 1.0),
    # maze2d (v1 files): random policy / planner-controller returns from d4rl's infos.py
    "maze2d-umaze": (23.85, 161.86),
    "maze2d-medium": (13.13, 277.39),
    "maze2d-large": (6.7, 273.99),
}


def d4rl_family(name: str) -> str | None:
    for maze in ("umaze", "medium", "large"):
        if f"maze2d-{maze}" in name.lower().replace("_", "-"):
            return f"maze2d-{maze}"
    low = name.lower().replace("_", "").replace("-", "")
    for fam in ("antmaze", "halfcheetah", "hopper", "walker2d", "ant"):
        if low.startswith(fam) or f"/{fam}" in name.lower():
            return fam
    return None


def reference_scores(source: Any) -> tuple[float, float]:
    """(ref_min, ref_max) from a dataset's metadata, a metadata dict or a D4RL dataset name."""
    meta = getattr(source, "metadata", source)
    if isinstance(meta, dict):
        if "ref_min_score" in meta and "ref_max_score" in meta:
            return float(meta["ref_min_score"]), float(meta["ref_max_score"])
        name = meta.get("dataset_name") or meta.get("env_id") or ""
        if meta.get("format") == "d4rl" and name:
            fam = d4rl_family(name)
            if fam:
                return D4RL_REF_SCORES[fam]
        raise UserError(f"no reference scores known for {name or 'this dataset'}")
    if isinstance(source, str):
        fam = d4rl_family(source)
        if fam:
            return D4RL_REF_SCORES[fam]
        raise UserError(f"no reference scores known for {source!r}")
    raise UserError(f"cannot find reference scores in {type(source).__name__}")


def normalized_score(source: Any, returns: Any) -> np.ndarray:
    """Normalised score(s), 0 = random policy, 100 = expert policy."""
    lo, hi = reference_scores(source)
    if hi == lo:
        raise UserError("reference scores are equal; cannot normalise")
    return 100.0 * (np.asarray(returns, dtype=np.float64) - lo) / (hi - lo)
