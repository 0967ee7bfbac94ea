"""Inner-step throughput of agentlab.optim.SSO against a plain Adam step, same model, same batch.

The imitation setting of the SSO table: an MLP policy obs 11 -> hidden -> act 3 (Hopper's sizes),
tanh-squashed outputs (the targets), a fixed batch of B states. One "Adam step" is forward +
squared-error loss + backward + torch.optim.Adam.step (what the Adam baseline does per outer step).
One SSO inner step is forward + surrogate + backward + update (sgd, adam) or that plus the line
search's trial forwards (sgd-armijo). Reported: steps/s by CPU time and by wall-clock (medians over
--repeats interleaved rounds) and the ratio to the Adam step measured in the same process.

    python benchmarks/bench_sso.py                  # 2x256 and 2x2048, B = 1000, CPU, 1 thread
    python benchmarks/bench_sso.py --device cuda    # same code on a GPU
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from agentlab.nn import MLP
from agentlab.optim import SSO


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(fns: dict, n: int, repeats: int, device: torch.device) -> dict[str, dict[str, float]]:
    """Steps/s of each ``fns[name](k)`` (runs k steps): blocks of ``n`` steps, interleaved across
    variants so that a change in the load of this shared machine hits all of them alike. Wall-clock
    rate and CPU-time rate (process time: the cost itself, robust to other processes) are medians
    over ``repeats`` rounds, after one warm-up block each."""
    for fn in fns.values():
        fn(max(1, n // 4))
    sync(device)
    wall: dict[str, list[float]] = {k: [] for k in fns}
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t, c = time.perf_counter(), time.process_time()
            fn(n)
            sync(device)
            wall[name].append(n / (time.perf_counter() - t))
            cpu[name].append(n / max(time.process_time() - c, 1e-9))
    return {k: {"wall": statistics.median(wall[k]), "cpu": statistics.median(cpu[k])} for k in fns}


def bench(hidden: list[int], batch: int, n: int, repeats: int, device: torch.device) -> dict:
    torch.manual_seed(0)
    x = torch.randn(batch, 11, device=device)
    y = torch.rand(batch, 3, device=device) * 2 - 1

    def net():
        torch.manual_seed(0)
        return MLP(11, hidden, 3).to(device)

    adam_model = net()
    adam = torch.optim.Adam(adam_model.parameters(), lr=1e-3)

    def adam_steps(k):
        for _ in range(k):
            loss = (torch.tanh(adam_model(x)) - y).pow(2).mean()
            adam.zero_grad(set_to_none=True)
            loss.backward()
            adam.step()

    fns = {"adam_step": adam_steps}
    infos: dict[str, dict] = {}
    for inner, lr in (("adam", 1e-3), ("sgd", 1e-2), ("sgd-armijo", None)):
        model = net()
        eta = batch * 3 / 2.0  # 1/L of the mean squared error in target space
        opt = SSO(model.parameters(), eta=eta, inner_steps=n, inner=inner, inner_lr=lr)
        z = torch.tanh(model(x)).detach()
        g = 2 * (z - y) / z.numel()
        info = infos.setdefault(inner, {})

        def sso_steps(k, opt=opt, model=model, z=z, g=g, info=info):
            opt.inner_steps = k  # one outer step of k inner steps on the fixed batch
            res = opt.step(target_fn=lambda: torch.tanh(model(x)), target_grad=g, targets=z)
            info["backtracks"] = info.get("backtracks", 0) + res.get("backtracks", 0)
            info["steps"] = info.get("steps", 0) + k

        fns[f"sso_{inner}"] = sso_steps
    rates = measure(fns, n, repeats, device)
    out = {"hidden": "x".join(map(str, hidden)), "batch": batch, "device": str(device),
           "threads": torch.get_num_threads(), "steps_per_block": n, "repeats": repeats}
    base = rates["adam_step"]
    for name, r in rates.items():
        out[f"{name}_per_s_wall"] = r["wall"]
        out[f"{name}_per_s_cpu"] = r["cpu"]
        out[f"{name}_vs_adam_step_cpu"] = r["cpu"] / base["cpu"]
        out[f"{name}_vs_adam_step_wall"] = r["wall"] / base["wall"]
    out["armijo_backtracks_per_step"] = infos["sgd-armijo"]["backtracks"] / infos["sgd-armijo"]["steps"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sizes", default="256,2048")
    ap.add_argument("--json", help="also write the rows to this file")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    rows = []
    for h in (int(s) for s in args.sizes.split(",")):
        n = 200 if h <= 512 else 8
        if device.type == "cuda":
            n *= 5
        row = bench([h, h], args.batch, n, args.repeats, device)
        rows.append(row)

        def fmt(k, row=row):
            return (f"{row[k + '_per_s_cpu']:.1f}/s cpu ({row[k + '_vs_adam_step_cpu']:.2f}x), "
                    f"{row[k + '_per_s_wall']:.1f}/s wall ({row[k + '_vs_adam_step_wall']:.2f}x)")

        print(f"MLP 11-{h}-{h}-3, B={args.batch}, {device}, {row['threads']} thread(s):\n"
              f"  Adam step (baseline):  {fmt('adam_step')}\n"
              f"  SSO inner adam:        {fmt('sso_adam')}\n"
              f"  SSO inner sgd:         {fmt('sso_sgd')}\n"
              f"  SSO inner sgd-armijo:  {fmt('sso_sgd-armijo')}, "
              f"{row['armijo_backtracks_per_step']:.2f} backtracks/step", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
