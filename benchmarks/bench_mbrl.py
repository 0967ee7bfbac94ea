"""PETS planning time per action, FLOP count and fraction of the matmul peak.

One "action" is one ``MPCPlanner.plan`` call: ``iterations`` CEM iterations, each propagating
``population x particles`` trajectories ``horizon`` steps through the elite members of a Gaussian
ensemble (one batched call per step) and scoring them with the cart-pole swing-up reward.
Counted FLOPs: the ensemble's matmuls only (``2 * sum(in*out)`` per row and step); everything else
(activations, sampling, reward) is overhead on top. Baselines measured in the same process:

* ``loop``: the same plan with the ensemble evaluated member by member (a Python loop over 5
  ``nn.Linear`` stacks, the obvious unbatched implementation) -- the ratio shows what batching buys;
* ``peak``: a 1024^3 fp32 matmul on the same threads -- the machine's attainable matmul rate, against
  which the planner's FLOP rate is reported (and against the nominal ~320 GFLOP/s of DESIGN.md).

Times are CPU time of this process (robust to the other jobs on this shared machine) and
wall-clock; medians over ``--repeats``.

    python benchmarks/bench_mbrl.py                         # reference + small sizes, 1 thread
    python benchmarks/bench_mbrl.py --sizes small --threads 2 --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torch import nn

from agentlab.models.cem import MPCPlanner
from agentlab.models.dynamics import GaussianEnsemble
from agentlab.models.tasks import cartpole_swingup_reward

SIZES = {
    # mbrl-lib PETS reference: 7 members (5 elites) of 4 x 200, population 350, horizon 15, 5 iterations, 20 particles
    "reference": dict(members=7, elites=5, hidden=[200] * 4, population=350, horizon=15, iterations=5, particles=20),
    # agentlab's `small` preset used for results/mbrl (v2: mbrl-lib's 4 x 200 members, horizon 25)
    "small": dict(members=5, elites=3, hidden=[200] * 4, population=60, horizon=25, iterations=3, particles=4),
    # `small` as InvertedPendulum-v5 runs it (amendment 2): horizon 10 plus the LQR terminal value (a quadratic form)
    "small_ip": dict(members=5, elites=3, hidden=[200] * 4, population=60, horizon=10, iterations=3, particles=4,
                     terminal=True),
    # the v1 `small` preset (results/mbrl/small_v1)
    "small_v1": dict(members=5, elites=3, hidden=[64] * 3, population=60, horizon=20, iterations=3, particles=4),
}
OBS, ACT = 5, 1


def flops_per_plan(s: dict) -> float:
    dims = [OBS + ACT, *s["hidden"], 2 * OBS]
    per_row = 2 * sum(a * b for a, b in zip(dims[:-1], dims[1:]))
    return per_row * s["population"] * s["particles"] * s["horizon"] * s["iterations"]


def loop_sampler(model: GaussianEnsemble):
    """Unbatched baseline: each elite as its own nn.Sequential, called in a Python loop."""
    nets = []
    for m in model.elites.tolist():
        layers = []
        for mod in model.net.net:
            if hasattr(mod, "weight") and mod.weight.dim() == 3:
                lin = nn.Linear(mod.weight.shape[1], mod.weight.shape[2])
                lin.weight.data = mod.weight[m].T.contiguous()
                lin.bias.data = mod.bias[m, 0].clone()
                layers.append(lin)
            else:
                layers.append(mod)
        nets.append(nn.Sequential(*layers))
    k = len(nets)

    def step(obs, act, g):
        z = model.in_norm(torch.cat([obs, act], -1))
        chunks = z.chunk(k)
        outs = []
        for net, c in zip(nets, chunks):
            mean, raw = net(c).split(OBS, -1)
            logvar = model._bound(raw, model.min_logvar[0], model.max_logvar[0])
            outs.append(mean + torch.exp(0.5 * logvar) * torch.randn(mean.shape, generator=g))
        y = torch.cat(outs) * model.out_norm.std + model.out_norm.mean
        return obs + y, None

    return step


def time_plans(planner: MPCPlanner, step, repeats: int) -> tuple[float, float]:
    g = torch.Generator().manual_seed(0)
    obs = torch.tensor([0.0, -1.0, 0.0, 0.0, 0.0])
    planner.plan(obs, step, g)  # warm-up
    wall, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        planner.plan(obs, step, g)
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return statistics.median(wall), statistics.median(cpu)


def matmul_peak(repeats: int) -> float:
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    a @ b
    rates = []
    for _ in range(repeats):
        c = time.process_time()
        for _ in range(4):
            a @ b
        rates.append(4 * 2 * 1024**3 / max(time.process_time() - c, 1e-9) / torch.get_num_threads())
    return statistics.median(rates) * torch.get_num_threads()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="reference,small")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--update", action="store_true", help="keep the other sizes already in --json, replace the measured ones")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    peak = matmul_peak(args.repeats)
    print(f"threads {args.threads}; fp32 matmul 1024^3 (CPU time): {peak / 1e9:.1f} GFLOP/s")
    results = {"threads": args.threads, "matmul_gflops_cpu": peak / 1e9, "sizes": {}}
    if args.update and args.json:
        import pathlib

        if pathlib.Path(args.json).is_file():
            old = json.loads(pathlib.Path(args.json).read_text())
            if old.get("threads") == args.threads:
                results["sizes"] = old.get("sizes", {})
                results["matmul_gflops_cpu_earlier"] = old.get("matmul_gflops_cpu")
    for name in args.sizes.split(","):
        s = SIZES[name]
        torch.manual_seed(0)
        model = GaussianEnsemble(OBS, ACT, members=s["members"], hidden=s["hidden"], num_elites=s["elites"]).eval()
        planner = MPCPlanner(torch.tensor([-1.0]), torch.tensor([1.0]), horizon=s["horizon"],
                             population=s["population"], iterations=s["iterations"], particles=s["particles"],
                             reward_fn=cartpole_swingup_reward)
        if s.get("terminal"):
            P = torch.eye(OBS)
            planner.terminal_fn = lambda x, P=P: -0.01 * ((x @ P) * x).sum(-1).clamp(max=50.0)
        reps = max(1, args.repeats if name != "reference" else min(args.repeats, 2))
        w_ours, c_ours = time_plans(planner, model.sampler("random"), reps)
        planner.reset()
        w_loop, c_loop = time_plans(planner, loop_sampler(model), reps)
        fl = flops_per_plan(s)
        from agentlab.runs import git_sha

        r = {"config": s, "measured_at": git_sha(short=True), "gflop_per_action": fl / 1e9, "ms_per_action_cpu": 1e3 * c_ours,
             "ms_per_action_wall": 1e3 * w_ours, "loop_ms_per_action_cpu": 1e3 * c_loop,
             "speedup_vs_loop_cpu": c_loop / c_ours, "gflops_cpu": fl / c_ours / 1e9,
             "fraction_of_measured_peak": fl / c_ours / peak, "fraction_of_320_gflops": fl / c_ours / 320e9}
        results["sizes"][name] = r
        print(f"{name}: {r['gflop_per_action']:.2f} GFLOP/action; ours {r['ms_per_action_cpu']:.1f} ms CPU "
              f"({r['ms_per_action_wall']:.1f} ms wall), member loop {r['loop_ms_per_action_cpu']:.1f} ms CPU "
              f"-> x{r['speedup_vs_loop_cpu']:.2f}; {r['gflops_cpu']:.1f} GFLOP/s = "
              f"{100 * r['fraction_of_measured_peak']:.0f}% of measured matmul peak, "
              f"{100 * r['fraction_of_320_gflops']:.1f}% of 320 GFLOP/s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
