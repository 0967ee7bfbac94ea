"""Update speed of the flow-policy agents, side by side: flow_bc, fql, fidec, deflow at 4x512 and 2x256.

    .venv/bin/python benchmarks/bench_offline.py [--threads 1] [--rounds 3] [--memory] [--profile fidec]

Random data with obs 17 / act 6 and batch 256 (the setting of DESIGN.md's reference speeds).
Agents are timed round-robin (each round times every agent once), so a change of machine load
hits all of them alike; the median over rounds is reported. Two rates per agent:

* ``wall``: updates per wall-clock second;
* ``cpu``: updates per second of this process's CPU time. On the shared 2-core machine the wall
  rate mostly measures the other jobs; with one thread the CPU-time rate is what an idle core
  would give, and is the number to hold against the JAX reference pinned to one core.

FLOPs per update are counted with ``torch.utils.flop_counter`` (matmuls, forward + backward) and
reported as achieved GFLOP/s (from the CPU-time rate) and as a fraction of the machine's fp32 peak
(~320 GFLOP/s on both cores, i.e. ~160 per thread). ``--memory`` runs a full-size FiDec training run
(`agentlab train fidec`, reference sizes, a 1M-transition dataset) in a subprocess and reports its
peak RSS. Results are appended to ``benchmarks/results/bench_offline.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agentlab.agents import get_algorithm  # noqa: E402
from agentlab.agents.base import spaces_of  # noqa: E402
from agentlab.config import config_from_dict  # noqa: E402

OBS, ACT, BATCH = 17, 6, 256
SIZES = {"4x512": [512] * 4, "2x256": [256] * 2}
ALGOS = ["flow_bc", "fql", "fidec", "deflow"]
#: JAX reference (DESIGN.md), updates/s: (both cores, pinned to one core)
JAX_REF = {("fql", "4x512"): (13.9, 7.8), ("fql", "2x256"): (93.5, 68.4),
           ("fidec", "4x512"): (5.6, 3.1), ("fidec", "2x256"): (38.7, 24.1)}
PEAK_GFLOPS = 320.0  # fp32 matmul, 2 threads (DESIGN.md)


def batch(n: int = BATCH, device: str = "cpu") -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    b = {"observations": torch.randn(n, OBS, generator=g), "actions": torch.rand(n, ACT, generator=g) * 2 - 1,
         "rewards": torch.randn(n, generator=g), "next_observations": torch.randn(n, OBS, generator=g),
         "terminals": torch.zeros(n), "masks": torch.ones(n)}
    return {k: v.to(device) for k, v in b.items()}


def build(algo: str, hidden: list[int], device: str = "cpu"):
    a = get_algorithm(algo)
    values = {"hidden": hidden} if algo == "flow_bc" else {"hidden": hidden, "critic_hidden": hidden}
    return a.build_agent(config_from_dict(a.config_cls, values), spaces_of(OBS, ACT)).to(device)


def sync(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def count_flops(agent, b) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc:
        agent.update(b)
    return int(fc.get_total_flops())


def matmul_gflops(hidden: int, rows: int = 1536, n: int = 20) -> float:
    """CPU-time GFLOP/s of a plain ``[rows, h] @ [h, h]`` matmul: what this core delivers right now.

    Timed in the same rounds as the agents, it turns the updates' GFLOP/s into a contention-free
    efficiency (fraction of what a large dense matmul achieves under the same load)."""
    x, w = torch.randn(rows, hidden), torch.randn(hidden, hidden)
    c0 = time.process_time()
    for _ in range(n):
        torch.mm(x, w)
    return 2 * rows * hidden * hidden * n / (time.process_time() - c0) / 1e9


def time_updates(agent, b, n: int, device: str = "cpu") -> tuple[float, float]:
    sync(device)
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        agent.update(b)
    sync(device)  # on a GPU the updates are queued: wait for them before reading the clock
    return n / (time.perf_counter() - w0), n / (time.process_time() - c0)


def peak_memory_of_full_run(steps: int = 20) -> dict[str, float]:
    """Peak RSS of `agentlab train fidec` at reference sizes on a 1M-transition dataset."""
    import numpy as np

    from agentlab.data import Dataset, save_d4rl

    with tempfile.TemporaryDirectory() as tmp:
        n = 1_000_000
        rng = np.random.default_rng(0)
        obs = rng.standard_normal((n, OBS), dtype=np.float32)
        ds = Dataset(obs, rng.uniform(-1, 1, (n, ACT)).astype(np.float32), rng.standard_normal(n, dtype=np.float32),
                     obs, np.zeros(n, bool), np.zeros(n, bool))
        path = Path(tmp) / "big.hdf5"
        save_d4rl(ds, path)
        del ds, obs
        code = ("import resource, sys, torch; torch.set_num_threads(1); from agentlab.training import train; "
                f"train('fidec', sys.argv[1], steps={steps}, dataset=sys.argv[2], device='cpu', force=True); "
                "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", code, str(Path(tmp) / "run"), str(path)], capture_output=True,
                             text=True, check=True, env={**os.environ, "AGENTLAB_PROGRESS": "0"}, cwd=ROOT)
        return {"peak_rss_mib": int(out.stdout.strip().splitlines()[-1]) / 1024, "dataset_transitions": n,
                "steps": steps, "wall_s": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--updates", type=int, default=0, help="updates per timing (default: 3 at 4x512, 10 at 2x256)")
    ap.add_argument("--sizes", default="4x512,2x256")
    ap.add_argument("--algos", default=",".join(ALGOS))
    ap.add_argument("--memory", action="store_true", help="also measure the peak RSS of a full-size fidec run")
    ap.add_argument("--profile", help="print the torch profiler table of one update of this agent (2x256)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (on a GPU the wall rate is the one to read)")
    ap.add_argument("--json", help="append the result to this file (default benchmarks/results/bench_offline.json)")
    ap.add_argument("--compile", metavar="MODE", help="also time each agent with torch.compile(agent.losses, "
                    "mode=MODE) (default, reduce-overhead, max-autotune-no-cudagraphs), side by side with eager")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dev = args.device
    b = batch(device=dev)

    if args.profile:
        from torch.profiler import profile

        agent = build(args.profile, SIZES["2x256"], dev)
        for _ in range(3):
            agent.update(b)
        with profile() as p:
            for _ in range(5):
                agent.update(b)
        print(p.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))
        return

    sizes = args.sizes.split(",")
    algos = args.algos.split(",")
    agents = {(a, s): build(a, SIZES[s], dev) for s in sizes for a in algos}
    flops = {k: count_flops(ag, b) for k, ag in agents.items()}
    if args.compile:  # the same agents with the loss graph compiled (the update step itself stays eager)
        for a in algos:
            for s in sizes:
                ag = build(a, SIZES[s], dev)
                ag.losses = torch.compile(ag.losses, mode=None if args.compile == "default" else args.compile)
                agents[(f"{a}+compile", s)] = ag
                flops[(f"{a}+compile", s)] = flops[(a, s)]
    compile_s = {}
    for k, ag in agents.items():  # warm-up (and compilation)
        t0 = time.perf_counter()
        for _ in range(3 if "+compile" in k[0] else 1):
            ag.update(b)
        sync(dev)
        compile_s[k] = time.perf_counter() - t0
    wall: dict = {k: [] for k in agents}
    cpu: dict = {k: [] for k in agents}
    mm: dict = {s: [] for s in sizes}
    load0 = os.getloadavg()[0]
    for r in range(args.rounds):
        for k, ag in agents.items():
            n = args.updates or (3 if k[1] == "4x512" else 10)
            w, c = time_updates(ag, b, n, dev)
            wall[k].append(w)
            cpu[k].append(c)
        for s in sizes:
            if dev == "cpu":
                mm[s].append(matmul_gflops(SIZES[s][0]))
        print(f"round {r + 1}/{args.rounds} done (load {os.getloadavg()[0]:.1f})", file=sys.stderr, flush=True)
    peak_thread = PEAK_GFLOPS / 2 * args.threads
    rows = []
    for k in agents:
        a, s = k
        w, c = statistics.median(wall[k]), statistics.median(cpu[k])
        gf = flops[k] * c / 1e9
        ref = JAX_REF.get(k)
        mm_now = statistics.median(mm[s]) if mm[s] else float("nan")
        rows.append({"algo": a, "size": s, "updates_per_s_wall": w, "updates_per_s_cpu": c,
                     "gflop_per_update": flops[k] / 1e9, "gflops_achieved": gf,
                     "fraction_of_peak": gf / peak_thread, "matmul_gflops_now": mm_now,
                     "fraction_of_matmul": gf / mm_now, "warmup_s": compile_s[k], "jax_ref_2cores": ref[0] if ref else None,
                     "jax_ref_1core": ref[1] if ref else None})
    where = torch.cuda.get_device_name() if torch.device(dev).type == "cuda" else f"{args.threads} CPU thread(s)"
    print(f"\nbatch {BATCH}, obs {OBS}, act {ACT}, torch {torch.__version__}, {where}, "
          f"load average {load0:.1f} -> {os.getloadavg()[0]:.1f}, median of {args.rounds} rounds\n")
    print(f"| agent | size | upd/s (wall) | upd/s (CPU time) | GFLOP/update | GFLOP/s | of {peak_thread:.0f} peak "
          "| of plain matmul now | JAX ref (1 core / 2 cores) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ref = f"{r['jax_ref_1core']} / {r['jax_ref_2cores']}" if r["jax_ref_1core"] else "—"
        print(f"| {r['algo']} | {r['size']} | {r['updates_per_s_wall']:.1f} | {r['updates_per_s_cpu']:.1f} | "
              f"{r['gflop_per_update']:.2f} | {r['gflops_achieved']:.1f} | {100 * r['fraction_of_peak']:.0f}% | "
              f"{100 * r['fraction_of_matmul']:.0f}% of {r['matmul_gflops_now']:.0f} | {ref} |")
    by = {(r["algo"], r["size"]): r for r in rows}
    ratios = {}
    for s in sizes:
        if ("fidec", s) in by and ("fql", s) in by:
            rate = "updates_per_s_cpu" if dev == "cpu" else "updates_per_s_wall"
            ratios[s] = by[("fql", s)][rate] / by[("fidec", s)][rate]
            print(f"\nFiDec / FQL cost ratio at {s}: {ratios[s]:.2f}x "
                  f"(FLOP ratio {by[('fidec', s)]['gflop_per_update'] / by[('fql', s)]['gflop_per_update']:.2f}x; "
                  f"JAX reference {JAX_REF[('fql', s)][0] / JAX_REF[('fidec', s)][0]:.2f}x)")
    for a in algos:
        for s in sizes:
            if (f"{a}+compile", s) in by:
                r, c = by[(a, s)], by[(f"{a}+compile", s)]
                print(f"torch.compile({args.compile}) {a} {s}: {c['updates_per_s_wall'] / r['updates_per_s_wall']:.2f}x "
                      f"the eager update rate (wall), warm-up incl. compilation {c['warmup_s']:.0f} s")
    result = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "compile": args.compile, "device": where, "threads": args.threads, "rounds": args.rounds,
              "load_average_start": load0, "rows": rows, "fidec_over_fql": ratios}
    if args.memory:
        mem = peak_memory_of_full_run()
        result["full_run_memory"] = mem
        print(f"\npeak RSS of a full-size fidec run (4x512, 1M-transition dataset, {mem['steps']} steps): "
              f"{mem['peak_rss_mib']:.0f} MiB")
    out = Path(args.json) if args.json else ROOT / "benchmarks" / "results" / "bench_offline.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    history = json.loads(out.read_text()) if out.is_file() else []
    history.append(result)
    out.write_text(json.dumps(history, indent=1))
    print(f"\nself max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB; appended to {out}")


if __name__ == "__main__":
    main()
