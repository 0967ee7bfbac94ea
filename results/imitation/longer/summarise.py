"""Print the AILBoost vs DAC table of the longer cart-pole runs (``run.sh``) from their metrics.csv files.

    python results/imitation/longer/summarise.py > results/imitation/longer/summary.md

One section per task directory (``cartpole-swingup/``, ``walker-walk/``).
"""

from __future__ import annotations

import csv
import statistics
from pathlib import Path

HERE = Path(__file__).resolve().parent


def curve(run: Path, key: str) -> list[tuple[int, float]]:
    with open(run / "metrics.csv", newline="") as f:
        return [(int(float(r["step"])), float(r[key])) for r in csv.DictReader(f) if r.get(key)]


def table(task_dir: Path) -> None:
    runs = sorted(p for p in task_dir.iterdir() if (p / "metrics.csv").is_file())
    steps = sorted({s for r in runs for s, _ in curve(r, "eval/normalized_score")})
    print(f"## dmc/{task_dir.name}\n")
    print("Expert-normalised return (1 demonstration) at each evaluation, per seed.\n")
    print("| run | " + " | ".join(f"{s // 1000}k" for s in steps) + " |")
    print("|---|" + "---|" * len(steps))
    finals: dict[str, list[float]] = {}
    for r in runs:
        c = dict(curve(r, "eval/normalized_score"))
        print(f"| {r.name} | " + " | ".join(f"{c[s]:.1f}" if s in c else "—" for s in steps) + " |")
        finals.setdefault(r.name.split("_s")[0], []).append(c[max(c)])
        last = curve(r, "eval/last_normalized_score")
        if last:
            print(f"| {r.name} (last learner alone) | " + " | ".join("" for _ in steps[:-1]) + f" | {last[-1][1]:.1f} |")
    print()
    for algo, v in finals.items():
        print(f"- {algo}: final {statistics.mean(v):.1f} (seeds: {', '.join(f'{x:.1f}' for x in v)})")
    print()


def main() -> None:
    for task_dir in sorted(p for p in HERE.iterdir() if p.is_dir()):
        table(task_dir)


if __name__ == "__main__":
    main()
