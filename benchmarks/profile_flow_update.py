"""Where the CPU time of one FQL / FiDec update goes (torch.profiler, per aten op and per phase).

    .venv/bin/python benchmarks/profile_flow_update.py --algo fidec --size 256 256 --threads 1 [--compile default]

Phases are timed by wrapping the agent's pieces (ODE sampler, Fisher estimate, the loss forward,
backward, clip, Adam, Polyak); the op table is torch.profiler's self-CPU-time summary.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import torch

from agentlab.agents.base import spaces_of
from agentlab.agents.fidec import FiDecAgent, FiDecConfig
from agentlab.agents.fql import FQLAgent, FQLConfig
from agentlab.nn import polyak_update


def build(algo: str, hidden: list[int], compile_mode: str = "none"):
    if algo == "fql":
        return FQLAgent(FQLConfig(hidden=hidden, critic_hidden=hidden, compile=compile_mode), spaces_of(17, 6))
    return FiDecAgent(FiDecConfig(hidden=hidden, critic_hidden=hidden, compile=compile_mode), spaces_of(17, 6))


def batch(b=256):
    return {"observations": torch.randn(b, 17), "actions": torch.rand(b, 6) * 2 - 1, "rewards": torch.randn(b),
            "masks": torch.ones(b), "next_observations": torch.randn(b, 17)}


def phases(agent, n: int) -> dict[str, float]:
    """Mean ms per update of each phase (same sequence as ``FlowActorCritic.update``)."""
    acc = defaultdict(float)
    sample, fisher = agent.flow.sample, getattr(agent, "fisher_matrix", None)

    def timed(name, fn):
        def wrapper(*a, **k):
            t0 = time.perf_counter()
            out = fn(*a, **k)
            acc[name] += time.perf_counter() - t0
            return out
        return wrapper

    agent.flow.sample = timed("ode_sampler", sample)
    if fisher is not None:
        agent.fisher_matrix = timed("fisher", fisher)
    bs = [batch() for _ in range(4)]
    for i in range(n):
        t0 = time.perf_counter()
        terms, info = agent.losses(bs[i % 4])
        loss = sum(terms.values())
        t1 = time.perf_counter()
        agent.opt.zero_grad(set_to_none=True)
        loss.backward()
        t2 = time.perf_counter()
        if agent.config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(agent.opt.param_groups[0]["params"], agent.config.grad_clip, foreach=True)
        t3 = time.perf_counter()
        polyak_update(agent.target_critic, agent.critic, agent.config.tau)
        t4 = time.perf_counter()
        agent.opt.step()
        t5 = time.perf_counter()
        acc["losses_forward_total"] += t1 - t0
        acc["backward"] += t2 - t1
        acc["clip"] += t3 - t2
        acc["polyak"] += t4 - t3
        acc["adam"] += t5 - t4
        acc["update_total"] += t5 - t0
    del agent.flow.sample
    if fisher is not None:
        del agent.fisher_matrix
    return {k: 1000 * v / n for k, v in acc.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--algo", choices=["fql", "fidec"], default="fql")
    ap.add_argument("--size", type=int, nargs="+", default=[256, 256])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--updates", type=int, default=30)
    ap.add_argument("--ops", type=int, default=15, help="rows of the op table")
    ap.add_argument("--compile", default="none", choices=["none", "default", "max-autotune-no-cudagraphs"],
                    help="profile the update with the loss graph compiled (op table only: phases are eager)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    agent = build(args.algo, args.size, args.compile)
    b = batch()
    for _ in range(3):
        agent.update(b)
    if args.compile == "none":
        ph = phases(agent, args.updates)
        print(f"{args.algo} {args.size} threads={args.threads}: ms per update by phase")
        for k, v in sorted(ph.items(), key=lambda kv: -kv[1]):
            print(f"  {k:22s} {v:8.2f}")
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(max(3, args.updates // 3)):
            agent.update(b)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.ops))


if __name__ == "__main__":
    main()
