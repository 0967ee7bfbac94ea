"""Does stacking N seeds into one batched update pay on this CPU?

A 2x256 GELU MLP step (forward + backward, batch 256, input 23, output 6: the FQL flow network's
shape) for one seed with ``@`` on 2-D weights, against N seeds with their weights stacked ``[N, ...]``
(batched matmul). Reported: the N-seed step's time / the one-seed step's time, and that per seed
(< 1 means a vectorised N-seed trainer would be faster than N sequential runs).

    python benchmarks/probe_vectorised_seeds.py --threads 1 --out results/parity/probe_vectorised_seeds.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def step_ms(seeds: int | None, batch: int = 256, hidden: int = 256, reps: int = 200) -> float:
    lead = () if seeds is None else (seeds,)
    weights = [torch.randn(*lead, 23, hidden, requires_grad=True), torch.randn(*lead, hidden, hidden, requires_grad=True),
               torch.randn(*lead, hidden, 6, requires_grad=True)]
    x = torch.randn(*lead, batch, 23)

    def step() -> None:
        h = x
        for w in weights[:-1]:
            h = torch.nn.functional.gelu(h @ w)
        (h @ weights[-1]).square().mean().backward()

    for _ in range(10):
        step()
    t0 = time.perf_counter()
    for _ in range(reps):
        step()
    return (time.perf_counter() - t0) / reps * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--out", default=str(REPO / "results/parity/probe_vectorised_seeds.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    one = step_ms(None)
    rows = []
    for n in args.seeds:
        ratio = step_ms(n) / one
        rows.append({"seeds": n, "time_vs_one_seed": ratio, "per_seed_cost": ratio / n})
        print(f"{n} seeds: {ratio:.2f}x one seed's step, {ratio / n:.2f}x per seed")
    Path(args.out).write_text(json.dumps({"threads": args.threads, "one_seed_ms": one, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
