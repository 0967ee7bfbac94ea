"""Print the markdown tables of BENCHMARKS.md's parity/speed section from ``results/parity/*.json``.

    python benchmarks/parity/summarise.py
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parents[2] / "results" / "parity"


def parity_table(path: Path) -> None:
    if not path.exists():
        return
    d = json.loads(path.read_text())
    print(f"\n{path.name}: {d['dtype'] if 'dtype' in d else 'float32'}, size {d['size']}, {d['updates']} updates, "
          f"reference commits {d['reference_commits']}, versions {d['versions']}\n")
    print("| case | losses | gradients | parameters |")
    print("|---|---|---|---|")
    for c in d["cases"]:
        m = c["max"]
        print(f"| {c['case']} | {m['losses']:.1e} | {m['grads']:.1e} | {m['params']:.1e} |")


def bench_table(path: Path) -> None:
    if not path.exists():
        return
    d = json.loads(path.read_text())
    print(f"\n{path.name} (load average after: {d.get('loadavg_after')})\n")
    print("| algo | size | threads | ours upd/s | JAX upd/s | ours / JAX |")
    print("|---|---|---|---|---|---|")
    for r in d["rows"]:
        print(f"| {r['algo']} | {r['size']} | {r['threads']} | {r['ours_ups']:.1f} | {r['jax_ups']:.1f} | "
              f"{r['ratio']:.2f} |")


def curves_table(path: Path) -> None:
    if not path.exists():
        return
    d = json.loads(path.read_text())
    print(f"\n{path.name}: {d['task']}, {d['steps']} steps, seeds {d['seeds']}, {d['eval_episodes']} episodes\n")
    print("| impl | step | success % (per seed) | q_mean (per seed) |")
    print("|---|---|---|---|")
    for impl in ("jax", "ours"):
        runs = [r for r in d["runs"] if r["impl"] == impl]
        for i, point in enumerate(runs[0]["curve"]):
            succ = ", ".join(f"{r['curve'][i]['success']:.0f}" for r in runs)
            q = ", ".join(f"{r['curve'][i]['q_mean']:.2f}" for r in runs)
            print(f"| {impl} | {point['step']} | {succ} | {q} |")


if __name__ == "__main__":
    parity_table(HERE / "parity.json")
    parity_table(HERE / "parity_float64.json")
    bench_table(HERE / "bench_vs_reference.json")
    curves_table(HERE / "learning_curves.json")
