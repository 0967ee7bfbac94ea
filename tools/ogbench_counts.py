"""Rows, episodes and transitions of OGBench .npz files as ``ogbench.load_dataset`` reads them.

    python tools/ogbench_counts.py DIR NAME [NAME ...]      # e.g. ~/.cache/agentlab/datasets/ogbench cube-single-play-v0

Used to check that a regenerated file has the official counts (1000 x 1001 rows = 1,000,000 transitions,
-val 100,000); docs/datasets.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    import ogbench

    root = Path(argv[0]).expanduser()
    for name in argv[1:]:
        for suffix in ("", "-val"):
            path = root / f"{name}{suffix}.npz"
            if not path.is_file():
                print(f"error: {path} not found", file=sys.stderr)
                return 2
            raw = np.load(path)
            n = ogbench.load_dataset(str(path))["observations"].shape[0]
            print(f"{name}{suffix}: rows {raw['observations'].shape[0]}, episodes {int(raw['terminals'].sum())}, "
                  f"transitions (ogbench.load_dataset) {n}, fields {sorted(raw.files)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
