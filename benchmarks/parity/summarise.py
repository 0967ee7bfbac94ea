"""Print the markdown tables of BENCHMARKS.md's parity/speed section from ``results/parity/*.json``.

    python benchmarks/parity/summarise.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

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


def rounding_table(path: Path) -> None:
    if not path.exists():
        return
    d = json.loads(path.read_text())
    print(f"\n{path.name}: max over updates and tensors of max|a - b| / max|truth|; truth = JAX float64\n")
    print("| case | ours32 vs jax32 | ours32 vs truth | jax32 vs truth | ours64 vs truth | grad err ours / jax "
          "| Adam64 on own f32 grads | torch Adam vs optax, same grads | elements > 1e-5 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for c in d["cases"]:
        m = {k: max(u[k] for u in c["params_per_update"]) for k in c["params_per_update"][0]}
        g = c["grads_vs_truth"]
        print(f"| {c['case']} | {m['ours32_vs_jax32']:.1e} | {m['ours32_vs_truth']:.1e} | {m['jax32_vs_truth']:.1e} | "
              f"{m['ours64_vs_truth']:.1e} | {g['max_err_ours32']:.1e} / {g['max_err_jax32']:.1e} | "
              f"{max(c['adam_replay'].values()):.1e} | "
              f"{c['optimizer_only']['torch_fused_adam_vs_optax_f32_same_grads']:.1e} | "
              f"{c['n_excess_elements']} of {c['n_trainable_elements']} |")
    print("\n| gradient's f32 relative error | elements (ours) | max param err ours32 | elements (JAX) | "
          "max param err jax32 |")
    print("|---|---|---|---|---|")
    for b in d["bins"]:
        lo, hi = b["grad_rel_err"]
        print(f"| [{lo:g}, {'inf' if hi is None else f'{hi:g}'}) | {b['n_ours']} | {_e(b['max_param_err_ours32'])} | "
              f"{b['n_jax']} | {_e(b['max_param_err_jax32'])} |")


def _e(x) -> str:
    return "-" if x is None else f"{x:.1e}"


def agree(a, b) -> bool:
    """The protocol's rule: |mean_a - mean_b| <= 2 sqrt(s_a^2/n_a + s_b^2/n_b) (s: sample std)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    se = np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b)) if min(len(a), len(b)) > 1 else 0.0
    return bool(abs(a.mean() - b.mean()) <= 2 * se)


def curves_table(path: Path) -> None:
    if not path.exists():
        return
    d = json.loads(path.read_text())
    print(f"\n{path.name}: {d['task']}, {d['steps']} steps, seeds {d['seeds']}, {d['eval_episodes']} episodes\n")
    runs = {impl: [r for r in d["runs"] if r["impl"] == impl] for impl in ("jax", "ours")}
    if not runs["jax"] or not runs["ours"]:
        for impl, rs in runs.items():
            for r in rs:
                print(impl, r["seed"], [(c["step"], c["success"], round(c["q_mean"], 2)) for c in r["curve"]])
        return
    print("| step | success % JAX (per seed) | success % ours | agree | q_mean JAX | q_mean ours | agree |")
    print("|---|---|---|---|---|---|---|")
    n_agree = {"success": 0, "q_mean": 0}
    for i, point in enumerate(runs["jax"][0]["curve"]):
        cells = [str(point["step"])]
        for key in ("success", "q_mean"):
            vals = {impl: [r["curve"][i][key] for r in rs] for impl, rs in runs.items()}
            ok = agree(vals["jax"], vals["ours"])
            n_agree[key] += ok
            fmt = "{:.0f}" if key == "success" else "{:.2f}"
            for impl in ("jax", "ours"):
                v = np.asarray(vals[impl])
                cells.append(f"{fmt.format(v.mean())} +- {fmt.format(v.std(ddof=1))} "
                             f"({', '.join(fmt.format(x) for x in v)})")
            cells.append("yes" if ok else "**no**")
        print("| " + " | ".join(cells) + " |")
    n = len(runs["jax"][0]["curve"])
    print(f"\nagreeing evaluation steps: success {n_agree['success']}/{n}, q_mean {n_agree['q_mean']}/{n}")


if __name__ == "__main__":
    parity_table(HERE / "parity.json")
    parity_table(HERE / "parity_float64.json")
    rounding_table(HERE / "parity_rounding.json")
    bench_table(HERE / "bench_vs_reference.json")
    curves_table(HERE / "learning_curves_dev.json")
    curves_table(HERE / "learning_curves.json")
