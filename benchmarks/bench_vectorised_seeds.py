"""N seeds as one vectorised update (``SeedStack``) against N agents updated one after another.

The real FQL / FiDec / DeFlow / BC-flow updates (reference sizes or 2x256; batch 256, obs 17, act 6,
synthetic batches), the two sides alternating in interleaved rounds in one process. Reported per
(algo, size, N): seed-updates per second of each side and the speed-up = sequential time / stacked
time (> 1: training N seeds together is faster than one after another in one process).

    python benchmarks/bench_vectorised_seeds.py --threads 1 --out results/parity/bench_vectorised_seeds.json
    python benchmarks/bench_vectorised_seeds.py --device cuda --sizes 4x512 --seeds 1 4 8 16 \
        --compile reduce-overhead                                                            # on a GPU
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from agentlab.agents import get_algorithm
from agentlab.agents.base import spaces_of
from agentlab.agents.vectorised import SeedStack
from agentlab.config import resolve_config

REPO = Path(__file__).resolve().parents[1]
OBS, ACT, BATCH = 17, 6, 256


def build(algo: str, size: str, n: int, device: str, compile_mode: str = "none") -> list:
    depth, width = (int(x) for x in size.split("x"))
    hidden = f"[{','.join([str(width)] * depth)}]"
    overrides = [f"hidden={hidden}"] + ([f"critic_hidden={hidden}"] if algo != "flow_bc" else [])
    if compile_mode != "none":
        overrides.append(f"compile={compile_mode}")
    if algo == "fidec":
        overrides.append("num_fisher_samples=8")  # the paper scripts' K
    alg = get_algorithm(algo)
    cfg = resolve_config(alg.config_cls, None, overrides)
    agents = []
    for s in range(n):
        torch.manual_seed(s)
        agents.append(alg.build_agent(cfg, spaces_of(OBS, ACT)).to(device))
    return agents


def batches(n: int, device: str) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    return [{"observations": torch.randn(BATCH, OBS, generator=g), "actions": torch.rand(BATCH, ACT, generator=g) * 2 - 1,
             "rewards": torch.randn(BATCH, generator=g), "masks": torch.ones(BATCH),
             "next_observations": torch.randn(BATCH, OBS, generator=g)} for _ in range(n)]


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def measure(algo: str, size: str, n: int, device: str, updates: int, rounds: int, compile_mode: str = "none") -> dict:
    singles = build(algo, size, n, device, compile_mode)
    stack = SeedStack(build(algo, size, n, device, compile_mode))
    bs = [{k: v.to(device) for k, v in b.items()} for b in batches(n, device)]
    stacked = {k: torch.stack([b[k] for b in bs]) for k in bs[0]}

    def run_singles() -> None:
        for _ in range(updates):
            for a, b in zip(singles, bs):
                a.update(b)

    def run_stack() -> None:
        for _ in range(updates):
            stack.update(stacked)

    for fn in (run_singles, run_stack):  # warm-up
        fn()
    sync(device)
    t = {"sequential": [], "stacked": []}
    for _ in range(rounds):
        for name, fn in (("sequential", run_singles), ("stacked", run_stack)):
            t0 = time.perf_counter()
            fn()
            sync(device)
            t[name].append(time.perf_counter() - t0)
    best = {k: min(v) for k, v in t.items()}
    return {"algo": algo, "size": size, "seeds": n, "updates": updates, "rounds": rounds, "compile": compile_mode,
            "sequential_seed_updates_per_s": n * updates / best["sequential"],
            "stacked_seed_updates_per_s": n * updates / best["stacked"],
            "speedup": best["sequential"] / best["stacked"], "times_s": t}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--algos", nargs="+", default=["fql", "fidec"])
    ap.add_argument("--sizes", nargs="+", default=["2x256"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--updates", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--compile", default="none", help="the agents' compile option, for both sides (none, default, "
                    "reduce-overhead, ...)")
    ap.add_argument("--out", default=str(REPO / "results/parity/bench_vectorised_seeds.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for algo in args.algos:
        for size in args.sizes:
            for n in args.seeds:
                r = measure(algo, size, n, args.device, args.updates, args.rounds, args.compile)
                rows.append(r)
                print(f"{algo} {size} N={n}: sequential {r['sequential_seed_updates_per_s']:.1f}, stacked "
                      f"{r['stacked_seed_updates_per_s']:.1f} seed-updates/s -> speed-up {r['speedup']:.2f}x",
                      flush=True)
    meta = {"threads": args.threads, "device": args.device, "torch": torch.__version__,
            "cpu": platform.processor() or platform.machine(),
            "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else None,
            "command": "python benchmarks/bench_vectorised_seeds.py " + " ".join(
                f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
                for k, v in vars(args).items() if k != "out")}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
