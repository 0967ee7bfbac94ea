"""Inner-step throughput of agentlab.optim.SSO against a plain Adam step, same model, same batch.

The imitation setting of the SSO table: an MLP policy obs 11 -> hidden -> act 3 (Hopper's sizes),
tanh-squashed outputs (the targets), a fixed batch of B states. One "Adam step" is forward +
squared-error loss + backward + torch.optim.Adam.step (what the Adam baseline does per outer step).
One SSO inner step is forward + surrogate + backward + update (sgd, adam) or that plus the line
search's trial forwards (sgd-armijo). Reported: steps/s (median of --repeats timed blocks) and the
ratio to the Adam step measured in the same process.

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


def timed(fn, n: int, repeats: int, device: torch.device) -> float:
    """Median steps/s over ``repeats`` blocks of ``n`` steps (after one warm-up block)."""
    fn(max(1, n // 4))
    sync(device)
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn(n)
        sync(device)
        rates.append(n / (time.perf_counter() - t))
    return statistics.median(rates)


def bench(hidden: list[int], batch: int, n: int, repeats: int, device: torch.device) -> dict:
    torch.manual_seed(0)
    x = torch.randn(batch, 11, device=device)
    y = torch.rand(batch, 3, device=device) * 2 - 1

    def net():
        torch.manual_seed(0)
        return MLP(11, hidden, 3).to(device)

    model = net()
    adam = torch.optim.Adam(model.parameters(), lr=1e-3)

    def adam_steps(k):
        for _ in range(k):
            loss = (torch.tanh(model(x)) - y).pow(2).mean()
            adam.zero_grad(set_to_none=True)
            loss.backward()
            adam.step()

    out = {"hidden": "x".join(map(str, hidden)), "batch": batch, "device": str(device),
           "threads": torch.get_num_threads(), "adam_step_per_s": timed(adam_steps, n, repeats, device)}
    for inner, lr in (("adam", 1e-3), ("sgd", None), ("sgd-armijo", None)):
        model = net()
        eta = batch * 3 / 2.0  # 1/L of the mean squared error in target space
        opt = SSO(model.parameters(), eta=eta, inner_steps=n, inner=inner, inner_lr=lr)
        z = torch.tanh(model(x)).detach()
        g = 2 * (z - y) / z.numel()
        info = {}

        def sso_steps(k, opt=opt, model=model, z=z, g=g, info=info):
            opt.inner_steps = k  # one outer step of k inner steps on the fixed batch
            info.update(opt.step(target_fn=lambda: torch.tanh(model(x)), target_grad=g, targets=z))

        rate = timed(sso_steps, n, repeats, device)
        out[f"sso_{inner}_inner_step_per_s"] = rate
        out[f"sso_{inner}_vs_adam_step"] = rate / out["adam_step_per_s"]
        if inner == "sgd-armijo":
            out["armijo_backtracks_per_step"] = info["backtracks"] / n
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
        print(f"MLP 11-{h}-{h}-3, B={args.batch}, {device}, {row['threads']} thread(s): "
              f"Adam step {row['adam_step_per_s']:.1f}/s | SSO inner steps/s: "
              f"adam {row['sso_adam_inner_step_per_s']:.1f} ({row['sso_adam_vs_adam_step']:.2f}x), "
              f"sgd {row['sso_sgd_inner_step_per_s']:.1f} ({row['sso_sgd_vs_adam_step']:.2f}x), "
              f"sgd-armijo {row['sso_sgd-armijo_inner_step_per_s']:.1f} ({row['sso_sgd-armijo_vs_adam_step']:.2f}x, "
              f"{row['armijo_backtracks_per_step']:.2f} backtracks/step)", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
