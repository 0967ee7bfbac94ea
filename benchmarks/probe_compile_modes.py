"""torch.compile modes for the flow agents' update on CPU, each against eager in the same process.

One child process per variant (inductor settings are process-global): an eager agent and a compiled
one, warmed up, then timed in interleaved rounds (eager, compiled, then reversed); reported: median
updates/s of both, their ratio and the compile (warm-up) seconds. Variants: ``default``,
``cpp_wrapper`` (default mode with inductor's C++ wrapper), ``max-autotune-no-cudagraphs``.
Batch 256, obs 17, act 6, the bench_vs_reference.py batches and hyper-parameters.

    python benchmarks/probe_compile_modes.py --algo fql --size 2x256 --threads 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SIZES = {"2x256": [256, 256], "4x512": [512, 512, 512, 512]}
VARIANTS = {"default": ("default", False), "cpp_wrapper": ("default", True),
            "max-autotune-no-cudagraphs": ("max-autotune-no-cudagraphs", False)}


def child(args) -> None:
    import numpy as np
    import torch
    import torch._inductor.config as inductor_config

    from agentlab.agents.base import spaces_of
    from agentlab.agents.fidec import FiDecAgent, FiDecConfig
    from agentlab.agents.fql import FQLAgent, FQLConfig

    torch.set_num_threads(args.threads)
    mode, cpp_wrapper = VARIANTS[args.variant]
    inductor_config.cpp_wrapper = cpp_wrapper
    hidden, b, od, ad = SIZES[args.size], 256, 17, 6
    rng = np.random.default_rng(0)
    batches = [{"observations": torch.from_numpy(rng.standard_normal((b, od), dtype=np.float32)),
                "actions": torch.from_numpy(rng.uniform(-0.99, 0.99, (b, ad)).astype(np.float32)),
                "rewards": torch.from_numpy(rng.standard_normal(b, dtype=np.float32)), "masks": torch.ones(b),
                "next_observations": torch.from_numpy(rng.standard_normal((b, od), dtype=np.float32))}
               for _ in range(4)]

    def build(compile_mode: str):
        if args.algo == "fql":
            return FQLAgent(FQLConfig(hidden=hidden, critic_hidden=hidden, alpha=10.0, compile=compile_mode),
                            spaces_of(od, ad))
        return FiDecAgent(FiDecConfig(hidden=hidden, critic_hidden=hidden, grad_clip=5.0, num_fisher_samples=4,
                                      compile=compile_mode), spaces_of(od, ad))

    agents = {"eager": build("none"), "compiled": build(mode)}

    def rate(agent, n: int) -> float:
        t0 = time.perf_counter()
        for i in range(n):
            agent.update(batches[i % 4])
        return n / (time.perf_counter() - t0)

    warmup_s = {}
    for name, agent in agents.items():
        t0 = time.perf_counter()
        rate(agent, 3)
        warmup_s[name] = time.perf_counter() - t0
    n = 60 if args.size == "2x256" else 10
    rates = {name: [] for name in agents}
    names = list(agents)
    for r in range(args.rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            rates[name].append(rate(agents[name], n))
    med = {k: statistics.median(v) for k, v in rates.items()}
    print(json.dumps({"variant": args.variant, "eager_ups": med["eager"], "compiled_ups": med["compiled"],
                      "ratio": med["compiled"] / med["eager"], "warmup_s": warmup_s}), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--algo", choices=["fql", "fidec"], default="fql")
    ap.add_argument("--size", choices=list(SIZES), default="2x256")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    ap.add_argument("--out", default=str(REPO / "results/parity/probe_compile_modes.json"))
    ap.add_argument("--variant", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.variant:
        return child(args)
    rows = []
    for v in args.variants:
        cmd = [sys.executable, __file__, "--variant", v, "--algo", args.algo, "--size", args.size,
               "--threads", str(args.threads), "--rounds", str(args.rounds)]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"variant {v} failed:\n{out.stderr[-3000:]}")
        rows += [json.loads(line) for line in out.stdout.splitlines() if line.startswith('{"variant"')]
        print(f"{v:28s} eager {rows[-1]['eager_ups']:6.1f}  compiled {rows[-1]['compiled_ups']:6.1f}  "
              f"x{rows[-1]['ratio']:.2f}  compile {rows[-1]['warmup_s']['compiled']:.0f} s", flush=True)
    Path(args.out).write_text(json.dumps({"command": " ".join(sys.argv), "algo": args.algo, "size": args.size,
                                          "threads": args.threads, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
