"""Update speed of agentlab's FQL / FiDec against the official JAX agents, on CPU.

One command measures every cell: for each thread setting it starts one child process (pinned with
``taskset``; 1 thread = core 0 only (``--first-core``), XLA's and torch's intra-op pools set to 1; 2 threads = cores 0-1),
which builds ours and the reference (seohongpark/fql ``FQLAgent``, ARC0127/Fisher-Decorator
``FiDecAgent``, their default configs at the given size; ours with the same hyperparameters),
then alternates timed rounds of ``n`` updates (ours, JAX, JAX, ours, ...) on pre-built batches
(batch 256, obs 17, act 6). JAX's time includes ``block_until_ready`` on the last update. Reported:
the median updates/s over the rounds and the ratio ours / JAX. ``--compile MODE`` adds ours with
``compile=MODE`` (torch.compile of the loss graph) to the same interleaved rounds (order ours,
compiled, JAX, then reversed) and reports its rate and ratio too; warm-up (compile) times are recorded.

    /work/refvenv/bin/python benchmarks/bench_vs_reference.py --reference-dir /work/refs \\
        --torch-site .venv/lib/python3.11/site-packages --threads 1 2

Needs an interpreter that imports both JAX/Flax and torch (see ``benchmarks/parity/parity.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SIZES = {"2x256": [256, 256], "4x512": [512, 512, 512, 512]}


def child(args) -> None:
    sys.path.insert(0, str(REPO))
    if args.torch_site:
        sys.path.append(args.torch_site)
    sys.path.insert(0, str(REPO / "benchmarks" / "parity"))
    import jax
    import numpy as np
    import torch

    from parity import load_reference

    from agentlab.agents.base import spaces_of
    from agentlab.agents.fidec import FiDecAgent, FiDecConfig
    from agentlab.agents.fql import FQLAgent, FQLConfig

    threads = args.threads[0]
    torch.set_num_threads(threads)
    b, od, ad = 256, 17, 6
    rng = np.random.default_rng(0)
    batches = [{"observations": rng.standard_normal((b, od), dtype=np.float32),
                "actions": rng.uniform(-0.99, 0.99, (b, ad)).astype(np.float32),
                "rewards": rng.standard_normal(b, dtype=np.float32),
                "masks": np.ones(b, np.float32),
                "next_observations": rng.standard_normal((b, od), dtype=np.float32)} for _ in range(4)]
    jb = [{k: jax.device_put(v) for k, v in x.items()} for x in batches]
    tb = [{k: torch.from_numpy(v) for k, v in x.items()} for x in batches]
    results = []
    for algo in args.algos:
        for size_name in args.sizes:
            hidden = SIZES[size_name]
            repo, module = ("fql", "agents.fql") if algo == "fql" else ("Fisher-Decorator", "agents.fidec")
            mod = load_reference(Path(args.reference_dir) / repo, module)
            cfg = mod.get_config()
            cfg.actor_hidden_dims = cfg.value_hidden_dims = tuple(hidden)
            agent_cls = mod.FQLAgent if algo == "fql" else mod.FiDecAgent
            ref = [agent_cls.create(0, batches[0]["observations"][:1], batches[0]["actions"][:1], cfg.to_dict())]
            modes = {"ours": "none"} | ({"ours_compiled": args.compile} if args.compile != "none" else {})
            if algo == "fql":
                agents = {k: FQLAgent(FQLConfig(hidden=hidden, critic_hidden=hidden, alpha=cfg.alpha, compile=m),
                                      spaces_of(od, ad)) for k, m in modes.items()}
            else:
                agents = {k: FiDecAgent(FiDecConfig(hidden=hidden, critic_hidden=hidden, grad_clip=cfg.grad_clip,
                                                    num_fisher_samples=cfg.num_fisher_samples, compile=m),
                                        spaces_of(od, ad)) for k, m in modes.items()}

            def run_ours(n, agent):
                t0 = time.perf_counter()
                for i in range(n):
                    agent.update(tb[i % 4])
                return n / (time.perf_counter() - t0)

            def run_ref(n, ref=ref):  # ref: a one-element list, so the updated state persists
                t0 = time.perf_counter()
                a = ref[0]
                for i in range(n):
                    a, info = a.update(jb[i % 4])
                jax.block_until_ready((a, info))
                ref[0] = a
                return n / (time.perf_counter() - t0)

            n = args.updates if size_name == "2x256" else max(3, args.updates // 6)
            impls = [*agents, "jax"]
            warmup_s = {}
            for impl in impls:  # warm-up (JIT / torch.compile, allocator), timed
                t0 = time.perf_counter()
                run_ref(3) if impl == "jax" else run_ours(3, agents[impl])
                warmup_s[impl] = time.perf_counter() - t0
            rates = {k: [] for k in impls}
            for r in range(args.rounds):
                for impl in (impls if r % 2 == 0 else impls[::-1]):
                    rates[impl].append(run_ref(n) if impl == "jax" else run_ours(n, agents[impl]))
            med = {k: statistics.median(v) for k, v in rates.items()}
            row = {"algo": algo, "size": size_name, "threads": threads, "updates_per_round": n,
                   "rounds": args.rounds, "ours_ups": med["ours"], "jax_ups": med["jax"],
                   "ratio": med["ours"] / med["jax"], "ours_all": rates["ours"], "jax_all": rates["jax"],
                   "warmup_s": warmup_s}
            if "ours_compiled" in med:
                row |= {"compile": args.compile, "ours_compiled_ups": med["ours_compiled"],
                        "ratio_compiled": med["ours_compiled"] / med["jax"],
                        "ours_compiled_all": rates["ours_compiled"]}
            print(json.dumps(row), flush=True)
            results.append(row)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reference-dir", required=True, help="folder with fql/ and Fisher-Decorator/ checkouts")
    ap.add_argument("--torch-site", default=None, help="site-packages with torch (agentlab's venv)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--algos", nargs="+", default=["fql", "fidec"])
    ap.add_argument("--sizes", nargs="+", default=["2x256", "4x512"])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--updates", type=int, default=60, help="updates per round at 2x256 (4x512: a sixth)")
    # the values of FlowActorCriticConfig.compile (not imported: this parent runs without torch on its path)
    ap.add_argument("--compile", default="none",
                    choices=["none", "default", "reduce-overhead", "max-autotune-no-cudagraphs"],
                    help="also time ours with compile=MODE (none = off)")
    ap.add_argument("--first-core", type=int, default=0,
                    help="pin t threads to cores first..first+t-1 (to probe on one free core while the other is busy)")
    ap.add_argument("--out", default=str(REPO / "results/parity/bench_vs_reference.json"))
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    rows = []
    for t in args.threads:
        env = dict(os.environ, JAX_PLATFORMS="cpu", OMP_NUM_THREADS=str(t), MKL_NUM_THREADS=str(t),
                   TORCH_NUM_THREADS=str(t))
        if t == 1:
            env["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        else:
            env.pop("XLA_FLAGS", None)
        cores = ",".join(str(args.first_core + c) for c in range(t))
        cmd = ["taskset", "-c", cores, sys.executable, __file__, "--child", "--reference-dir", args.reference_dir,
               "--threads", str(t), "--rounds", str(args.rounds), "--updates", str(args.updates),
               "--compile", args.compile, "--algos", *args.algos, "--sizes", *args.sizes]
        if args.torch_site:
            cmd += ["--torch-site", args.torch_site]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"child (threads={t}) failed:\n{out.stderr[-3000:]}")
        rows += [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    comp = args.compile != "none"
    print(f"{'algo':6s} {'size':6s} {'thr':>3s} {'ours/s':>8s} {'jax/s':>8s} {'ours/jax':>8s}"
          + (f" {'compiled/s':>10s} {'comp/jax':>8s}" if comp else ""))
    for r in rows:
        print(f"{r['algo']:6s} {r['size']:6s} {r['threads']:3d} {r['ours_ups']:8.1f} {r['jax_ups']:8.1f} "
              f"{r['ratio']:8.2f}" + (f" {r['ours_compiled_ups']:10.1f} {r['ratio_compiled']:8.2f}" if comp else ""))
    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else None
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"command": " ".join(sys.argv), "loadavg_after": load,
                                          "batch": 256, "obs_dim": 17, "act_dim": 6, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
