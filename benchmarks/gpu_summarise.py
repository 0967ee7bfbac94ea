"""Summarise the GPU session's runs (``benchmarks/gpu_check.sh`` -> ``results/gpu/runs``) as markdown.

    python benchmarks/gpu_summarise.py [--threshold 10] > results/gpu/summary.md

Reads ``results/gpu/runs/*/metrics.csv`` (``gpu_check.sh`` returns them as ``gpu_runs.tar.gz``:
unpack it into ``results/gpu/runs``) and prints
(1) DAgger on Hopper-v5 on the GPU: final and run-averaged expert-normalised return per optimiser,
training wall-clock (rollouts + updates, evaluation excluded) and the wall-clock at which each seed
first reached ``--threshold`` % of the expert; (2) the full-size offline runs: steps reached,
update rate and the evaluation curve; (3) the compiled vs eager FiDec training runs
(``compile_*_metrics.csv``): update rate between log points.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from agentlab.runs import read_metrics

HERE = Path(__file__).resolve().parent.parent / "results" / "gpu"


def rows(run: Path) -> list[dict[str, float]]:
    return read_metrics(run)


def fmt(xs: list[float]) -> str:
    if not xs:
        return "—"
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{statistics.mean(xs):.1f} ± {sd:.1f}"


def dagger(threshold: float) -> None:
    runs = sorted((HERE / "runs").glob("dagger_*_s*"))
    methods = sorted({r.name.split("_")[1] for r in runs}, key=lambda m: (m != "adam", m))
    print(f"| optimiser | final % of expert | run-average % | train wall-clock (s) | of which updates (s) "
          f"| wall-clock to {threshold:g}% per seed (s) |")
    print("|---|---|---|---|---|---|")
    for m in methods:
        final, avg, wall, upd, reach = [], [], [], [], []
        for run in (r for r in runs if r.name.split("_")[1] == m):
            rs = rows(run)
            ev = [r for r in rs if "eval/expert_normalized_return" in r]
            final.append(float(ev[-1]["eval/expert_normalized_return"]))
            avg.append(statistics.mean(float(r["eval/expert_normalized_return"]) for r in ev))
            wall.append(float(rs[-1]["time/wall_s"]))
            upd.append(sum(float(r["time/update_s"]) for r in rs))
            hit = next((float(r["time/wall_s"]) for r in ev if float(r["eval/expert_normalized_return"]) >= threshold),
                       None)
            reach.append("not reached" if hit is None else f"{hit:.1f}")
        print(f"| {m} | {fmt(final)} | {fmt(avg)} | {fmt(wall)} | {fmt(upd)} | {', '.join(reach)} |")


def offline() -> None:
    print("| agent | steps reached | updates/s (4 runs sharing the GPU) | normalised score at each evaluation |")
    print("|---|---|---|---|")
    for run in sorted((HERE / "runs").glob("offline_*")):
        rs = rows(run)
        ev = [r for r in rs if "eval/normalized_score" in r]
        rates = [float(r["time/updates_per_s"]) for r in rs if "time/updates_per_s" in r]
        curve = ", ".join(f"{int(float(r['step'])) // 1000}k: {float(r['eval/normalized_score']):.1f}" for r in ev)
        print(f"| {run.name.removeprefix('offline_')} | {int(rs[-1]['step'])} | {statistics.median(rates):.0f} | {curve} |")


def compiled_vs_eager() -> None:
    """FiDec training runs with and without the compiled loss graph (``compile_*_metrics.csv``).

    ``time/updates_per_s`` in metrics.csv is the average since the start of the run (compilation
    included); the rate between consecutive log points is recovered from it."""
    print("| run | updates/s between log points | seconds to the first log point (500 steps) |")
    print("|---|---|---|")
    for path in sorted(HERE.glob("compile_*_metrics.csv")):
        rs = [r for r in read_metrics(path) if "time/updates_per_s" in r]
        t = [(int(r["step"]), int(r["step"]) / float(r["time/updates_per_s"])) for r in rs]
        rates = [(s1 - s0) / (t1 - t0) for (s0, t0), (s1, t1) in zip(t, t[1:])]
        print(f"| {path.name} | {', '.join(f'{x:.0f}' for x in rates)} | {t[0][1]:.1f} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threshold", type=float, default=10.0, help="% of the expert's return for the wall-clock column")
    args = ap.parse_args()
    print("## DAgger, Hopper-v5, on the GPU\n")
    dagger(args.threshold)
    print("\n## Offline, hopper-medium, reference sizes (4x512), on the GPU\n")
    offline()
    print("\n## FiDec training on the GPU, compiled loss graph vs eager (hopper-medium, 4x512)\n")
    compiled_vs_eager()


if __name__ == "__main__":
    main()
