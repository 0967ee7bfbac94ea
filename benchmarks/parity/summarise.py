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


def _table_runs(algo: str, task: str) -> list[dict]:
    """The committed ``agentlab reproduce offline --budget small`` runs of ``algo`` on ``task``, as
    harness-style runs (success only: their q_mean is in the uncommitted runs/ metrics)."""
    runs = []
    for f in sorted((HERE.parent / "offline" / "small" / "runs").glob(f"{algo}__{task}__s*__small__*.json")):
        d = json.loads(f.read_text())
        runs.append({"impl": "table", "seed": d["spec"]["seed"],
                     "curve": [{"step": s, "success": v} for s, v in d["result"]["curve"]]})
    return runs


def curves_table(path: Path, with_table_runs: bool = False) -> None:
    """Success and q_mean per evaluation step, JAX vs ours (and, with ``with_table_runs``, the offline
    table's own runs as a second agentlab sample), each cell ``mean +- std (per seed)``; ``agree``
    compares every agentlab sample with JAX by :func:`agree`. Last row: the score (mean of the last
    three evaluations), as the offline table reports it."""
    if not path.exists():
        return
    d = json.loads(path.read_text())
    print(f"\n{path.name}: {d['task']}, {d['steps']} steps, seeds {d['seeds']}, {d['eval_episodes']} episodes\n")
    runs = {impl: [r for r in d["runs"] if r["impl"] == impl] for impl in ("jax", "ours")}
    if with_table_runs:
        runs["table"] = _table_runs(d.get("algo", "fql"), d["task"])
    if not runs["jax"] or not runs["ours"]:
        for impl, rs in runs.items():
            for r in rs:
                print(impl, r["seed"], [(c["step"], c["success"], round(c.get("q_mean", np.nan), 2)) for c in r["curve"]])
        return
    ours = [impl for impl in runs if impl != "jax" and runs[impl]]
    names = {"jax": "JAX", "ours": "ours (harness)" if with_table_runs else "ours", "table": "ours (table runs)"}
    fmt = {"success": "{:.0f}", "q_mean": "{:.2f}"}

    def cell(key: str, vals: list[float]) -> str:
        v, f = np.asarray(vals, float), fmt[key]
        return f"{f.format(v.mean())} +- {f.format(v.std(ddof=1))} ({', '.join(f.format(x) for x in v)})"

    def row(label: str, key: str, vals: dict[str, list[float]], counts: dict[str, int] | None) -> str:
        cells = [label, cell(key, vals["jax"])]
        for impl in ours:
            if impl not in vals:
                cells += ["-", "-"]
                continue
            ok = agree(vals["jax"], vals[impl])
            if counts is not None:
                counts[impl] += ok
            cells += [cell(key, vals[impl]), "yes" if ok else "**no**"]
        return "| " + " | ".join(cells) + " |"

    n = len(runs["jax"][0]["curve"])
    head = " | ".join(f"{names[i]} | agree" for i in ours)
    for key in ("success", "q_mean"):
        unit = "success %" if key == "success" else "q_mean"
        print(f"| step | {unit} {names['jax']} | {head} |")
        print("|---" * (2 + 2 * len(ours)) + "|")
        counts = dict.fromkeys(ours, 0)
        for i in range(n):
            vals = {impl: [r["curve"][i][key] for r in rs] for impl, rs in runs.items()
                    if rs and key in rs[0]["curve"][i]}
            print(row(str(runs["jax"][0]["curve"][i]["step"]), key, vals, counts))
        if key == "success":
            scores = {impl: [float(np.mean([c["success"] for c in r["curve"][-3:]])) for r in rs]
                      for impl, rs in runs.items() if rs}
            print(row("score (mean of last 3)", key, scores, None))
        compared = [i for i in ours if key in runs[i][0]["curve"][0]]  # table runs log no q_mean
        print("\nagreeing evaluation steps with JAX: " + ", ".join(f"{names[i]} {counts[i]}/{n}" for i in compared) + "\n")


def diagnostics_table(path: Path, every: int = 2500) -> None:
    """Per training diagnostic and block (every ``every`` steps): JAX and ours per seed (block means of
    ``--log-every`` updates, same minibatches per seed), and the mean over seeds of ours - JAX beside
    the seed-to-seed spread of each side."""
    if not path.exists():
        return
    d = json.loads(path.read_text())
    runs = {(r["impl"], r["seed"]): {e["step"]: e for e in r["train_log"]} for r in d["runs"]}
    seeds = sorted({s for _, s in runs})
    if not all((i, s) in runs for i in ("jax", "ours") for s in seeds):
        return
    keys = [k for k in next(iter(runs[("jax", seeds[0])].values())) if k != "step"]
    steps = [s for s in sorted(runs[("jax", seeds[0])]) if s % every == 0]
    print(f"\n{path.name}: {d['task']}, {d['algo']}, block means of {d['log_every']} updates, seeds {seeds}\n")
    head = " | ".join(f"JAX s{s} | ours s{s}" for s in seeds)
    print(f"| diagnostic | step | {head} | mean(ours - JAX) | spread between seeds JAX / ours |")
    print("|---|---|" + "---|" * (2 * len(seeds) + 2))
    for k in keys:
        for st in steps:
            j = [runs[("jax", s)][st][k] for s in seeds]
            o = [runs[("ours", s)][st][k] for s in seeds]
            cells = " | ".join(f"{a:.4g} | {b:.4g}" for a, b in zip(j, o))
            print(f"| {k} | {st} | {cells} | {np.mean(np.subtract(o, j)):+.3g} | {np.ptp(j):.3g} / {np.ptp(o):.3g} |")


if __name__ == "__main__":
    parity_table(HERE / "parity.json")
    parity_table(HERE / "parity_float64.json")
    rounding_table(HERE / "parity_rounding.json")
    bench_table(HERE / "bench_vs_reference.json")
    curves_table(HERE / "learning_curves_dev.json")
    curves_table(HERE / "learning_curves.json")
    curves_table(HERE / "learning_curves_fidec.json", with_table_runs=True)
    diagnostics_table(HERE / "train_diagnostics_fidec.json")
