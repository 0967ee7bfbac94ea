"""Throughput of the flow agents' hidden-layer GEMM on CPU: ``mm`` (transposed and contiguous weight),
``addmm`` and oneDNN's linear, at the batch's rows (256) and the FiDec sampler's (2560), 256 -> 256.

    .venv/bin/python benchmarks/probe_gemm.py --threads 1

Prints microseconds per call and GFLOP/s (2 * rows * 256 * 256 per call), median of 5 timed blocks.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--calls", type=int, default=100, help="calls per timed block")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    for rows in (256, 2560):
        x, w, b = torch.randn(rows, 256), torch.randn(256, 256), torch.randn(256)
        wt = w.t()
        ops = {"mm(x, w.t())": lambda x=x, wt=wt: torch.mm(x, wt), "mm(x, w)": lambda x=x, w=w: torch.mm(x, w),
               "addmm(b, x, w.t())": lambda x=x, wt=wt, b=b: torch.addmm(b, x, wt),
               "mkldnn linear": lambda x=x, w=w, b=b: torch.ops.mkldnn._linear_pointwise(x, w, b, "none", [], "")}
        for name, op in ops.items():
            for _ in range(10):
                op()
            blocks = []
            for _ in range(5):
                t0 = time.perf_counter()
                for _ in range(args.calls):
                    op()
                blocks.append((time.perf_counter() - t0) / args.calls)
            dt = statistics.median(blocks)
            print(f"rows {rows:5d}  {name:20s} {dt * 1e6:8.1f} us  {2 * rows * 256 * 256 / dt / 1e9:6.1f} GFLOP/s")


if __name__ == "__main__":
    main()
