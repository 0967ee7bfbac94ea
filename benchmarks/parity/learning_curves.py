"""Learning-curve parity: the official JAX FQL / FiDec and agentlab's on the same OGBench dataset.

Both implementations get the same arrays (``ogbench.make_env_and_datasets(TASK, dataset_path=...)``
on a local file, actions clipped to +-(1 - 1e-5) as the reference's ``env_utils``), the same
hyperparameters (the reference's ``agents/fql.py`` or ``agents/fidec.py`` config with the sizes,
``alpha`` and ``--set`` overrides given here; ours is built from that same config dict, as in
``parity.py``), uniform minibatches of 256 drawn by the same numpy generator per seed, and the same
evaluation: ``--eval-episodes`` episodes of the single-task env, success = ``info['success']`` at
the episode end, the one-step policy's sampled action clipped to [-1, 1] (the reference's
``evaluate``). Logged at each evaluation: success rate and the training ``q_mean`` (mean Q of the
batch at that update) of both. One interpreter imports both sides (see ``parity.py``)::

    /work/refvenv/bin/python benchmarks/parity/learning_curves.py --reference-dir /work/refs \\
        --torch-site .venv/lib/python3.11/site-packages --dataset ~/.cache/agentlab/datasets/ogbench/cube-single-play-v0.npz \\
        --task cube-single-play-singletask-task2-v0 --alpha 300 --steps 10000 --seeds 0 1 2

    # FiDec with the offline table's per-task rule (agentlab/reproduce/tables/offline.py: rules())
    ... --algo fidec --set target_divergence=0.001 normalize_q_loss=true fisher_t=0.9 \\
        fisher_t_width=0.05 num_fisher_samples=8 --steps 20000 --eval-every 5000

Writes ``results/parity/learning_curves.{json,png}`` (FQL), ``learning_curves_fidec.*`` (FiDec) or ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]


def evaluate(policy, env, episodes: int, first_seed: int) -> float:
    successes = []
    for ep in range(episodes):
        obs, info = env.reset(seed=first_seed + ep)
        done = False
        while not done:
            action = np.clip(np.asarray(policy(obs), dtype=np.float64), -1, 1)
            obs, _, terminated, truncated, info = env.step(action)
            done = terminated or truncated
        successes.append(float(info.get("success", 0.0)))
    return 100.0 * float(np.mean(successes))


REFERENCE = {"fql": ("fql", "agents.fql", "FQLAgent"), "fidec": ("Fisher-Decorator", "agents.fidec", "FiDecAgent")}


def first_eval_seed(args, seed: int) -> int:
    """Reset seed of evaluation episode 0 (episode i: + i); ``agentlab``: the seeds ``agentlab train`` uses,
    so a reference run is evaluated on the same start states as an agentlab table run of that seed."""
    if args.eval_seeds == "agentlab":
        from agentlab.seeding import evaluation_seed

        return evaluation_seed(seed)
    return 1000 * seed


def reference_config(ref_mod, args):
    """The reference's own config with this run's sizes, alpha and ``--set`` overrides."""
    cfg = ref_mod.get_config()
    cfg.actor_hidden_dims = cfg.value_hidden_dims = tuple(args.size)
    if args.alpha is not None:
        cfg.alpha = args.alpha
    for item in args.set:
        key, _, raw = item.partition("=")
        if key not in cfg:
            raise SystemExit(f"--set {item}: the reference config has no {key!r}")
        old = cfg[key]
        cfg[key] = raw.lower() == "true" if isinstance(old, bool) else type(old)(raw)
    return cfg


def train_one(impl: str, seed: int, data: dict, env, args, ref_mod) -> list[dict]:
    import torch

    rng = np.random.default_rng(seed)
    n = data["observations"].shape[0]
    od, ad = data["observations"].shape[1], data["actions"].shape[1]
    cfg = reference_config(ref_mod, args)
    curve, train_log = [], []
    if impl == "jax":
        import jax

        agent = getattr(ref_mod, REFERENCE[args.algo][2]).create(seed, data["observations"][:1], data["actions"][:1],
                                                                 cfg.to_dict())
        key = [jax.random.PRNGKey(seed + 12345)]

        def policy(obs):
            key[0], k = jax.random.split(key[0])
            return np.asarray(agent.sample_actions(observations=obs, seed=k))
    else:
        from parity import build_ours

        torch.manual_seed(seed)
        agent = build_ours(args.algo, cfg.to_dict(), od, ad)

        def policy(obs):
            return agent.act(torch.as_tensor(obs, dtype=torch.float32)[None])[0].numpy()
    from parity import LOSS_KEYS_FIDEC, LOSS_KEYS_FQL

    keys = LOSS_KEYS_FQL if args.algo == "fql" else LOSS_KEYS_FIDEC  # ours' name -> the reference's
    sums = dict.fromkeys(keys, 0.0)
    t0 = time.time()
    for step in range(1, args.steps + 1):
        idx = rng.integers(0, n, args.batch_size)
        batch = {k: v[idx] for k, v in data.items()}
        if impl == "jax":
            agent, info = agent.update(batch)
        else:
            info = agent.update({k: torch.from_numpy(v) for k, v in batch.items()})
        if args.log_every:
            for k in keys:
                sums[k] += float(info[keys[k]] if impl == "jax" else info[k])
            if step % args.log_every == 0:
                log = {"step": step, **{k.removeprefix("train/"): v / args.log_every for k, v in sums.items()}}
                sums = dict.fromkeys(keys, 0.0)
                train_log.append(log)
                print(json.dumps({"impl": impl, "seed": seed, **log}), flush=True)
        if step % args.eval_every == 0:
            q = float(info["critic/q_mean"] if impl == "jax" else info["train/q_mean"])
            succ = (evaluate(policy, env, args.eval_episodes, first_eval_seed(args, seed))
                    if args.eval_episodes else float("nan"))
            curve.append({"step": step, "success": succ, "q_mean": q, "wall_s": time.time() - t0})
            print(json.dumps({"impl": impl, "seed": seed, **curve[-1]}), flush=True)
    return curve, train_log


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reference-dir", type=Path, default=None)
    ap.add_argument("--torch-site", default=None)
    ap.add_argument("--dataset", type=Path, default=None, help="local OGBench .npz (the -val file beside it)")
    ap.add_argument("--task", default="cube-single-play-singletask-task2-v0")
    ap.add_argument("--algo", choices=sorted(REFERENCE), default="fql")
    ap.add_argument("--alpha", type=float, default=None,
                    help="alpha (FQL: the BC weight, reference README cube-single 300; FiDec: the Lagrange "
                         "multiplier's initial value); default: the reference config's")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="further overrides of the reference config (both sides)")
    ap.add_argument("--size", type=int, nargs="+", default=[256, 256])
    ap.add_argument("--steps", type=int, default=10000)
    ap.add_argument("--eval-every", type=int, default=2500)
    ap.add_argument("--eval-episodes", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--log-every", type=int, default=0,
                    help="also record the mean of every shared training diagnostic (q_mean, losses, alpha, ...) "
                         "over each block of N updates (run JSON key train_log); 0 = off")
    ap.add_argument("--eval-seeds", choices=["harness", "agentlab"], default="harness",
                    help="reset seeds of the evaluation episodes: 1000 seed + i (harness) or agentlab's "
                         "evaluation_seed(seed) + i (the start states of `agentlab train` runs)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--impls", nargs="+", choices=["jax", "ours"], default=["jax", "ours"])
    ap.add_argument("--run-dir", type=Path, default=None,
                    help="one JSON per (impl, seed) run; finished runs are skipped (resumable), and --out "
                         "is assembled from every run file there")
    ap.add_argument("--merge", action="store_true", help="only assemble --out (and the plot) from --run-dir")
    ap.add_argument("--out", type=Path, default=None,
                    help="default results/parity/learning_curves.json (fql), learning_curves_ALGO.json otherwise")
    args = ap.parse_args()
    if args.out is None:
        args.out = REPO / "results/parity" / ("learning_curves.json" if args.algo == "fql"
                                              else f"learning_curves_{args.algo}.json")
    if args.algo == "fql" and args.alpha is None:
        args.alpha = 300.0  # the value the committed FQL runs used (reference README, cube-single)
    meta = {"algo": args.algo, "set": sorted(args.set), "eval_seeds": args.eval_seeds, "task": args.task, "dataset": str(args.dataset), "alpha": args.alpha, "size": args.size,
            "steps": args.steps, "eval_every": args.eval_every, "eval_episodes": args.eval_episodes,
            "batch_size": args.batch_size}
    if args.log_every:  # a diagnostic run is not a learning-curve run: kept apart by --merge
        meta["log_every"] = args.log_every
    runs = []
    if not args.merge:
        runs = train_all(args, meta)
    if args.run_dir is not None:
        runs = []
        for f in sorted(args.run_dir.glob("*_s*.json")):
            r = json.loads(f.read_text())
            config = {"algo": "fql", "set": [], "eval_seeds": "harness", **r["config"]}  # run files from before --algo were FQL
            if (all(config.get(k) == v for k, v in meta.items() if k != "dataset")
                    and config.get("log_every", 0) == args.log_every):
                runs.append(r)
    seeds = sorted({r["seed"] for r in runs})
    out = {"command": " ".join(sys.argv), **meta, "seeds": seeds,
           "runs": [{"impl": r["impl"], "seed": r["seed"], "command": r.get("command"), "curve": r["curve"],
                     **({"train_log": r["train_log"]} if "train_log" in r else {})}
                    for r in sorted(runs, key=lambda r: (r["seed"], r["impl"]))]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    if args.log_every:
        plot_train_log(out, args.out.with_suffix(".png"))
    else:
        plot(out, args.out.with_suffix(".png"))


def train_all(args, meta) -> list[dict]:
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    os.environ.setdefault("MUJOCO_GL", "egl")
    if args.torch_site:
        sys.path.append(args.torch_site)
    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(Path(__file__).parent))
    import ogbench
    import torch

    from parity import load_reference

    torch.set_num_threads(1)
    repo, module, _ = REFERENCE[args.algo]
    ref_mod = load_reference(args.reference_dir / repo, module)
    env, train, _ = ogbench.make_env_and_datasets(args.task, dataset_path=str(args.dataset.expanduser()))
    data = {"observations": train["observations"].astype(np.float32),
            "actions": np.clip(train["actions"], -1 + 1e-5, 1 - 1e-5).astype(np.float32),
            "rewards": train["rewards"].astype(np.float32), "masks": train["masks"].astype(np.float32),
            "next_observations": train["next_observations"].astype(np.float32)}
    print(f"dataset {args.dataset}: {data['observations'].shape[0]} transitions", flush=True)
    runs = []
    for seed in args.seeds:
        for impl in args.impls if seed % 2 == 0 else args.impls[::-1]:
            stem = f"{impl}_s{seed}" if args.algo == "fql" else f"{args.algo}_{impl}_s{seed}"
            path = args.run_dir / f"{stem}.json" if args.run_dir is not None else None
            if path is not None and path.exists():
                print(f"{path} exists: skipped", flush=True)
                continue
            t0 = time.time()
            curve, train_log = train_one(impl, seed, data, env, args, ref_mod)
            run = {"impl": impl, "seed": seed, "command": " ".join(sys.argv), "config": meta,
                   "curve": curve, "wall_s": time.time() - t0}
            if args.log_every:
                run["train_log"] = train_log
            runs.append(run)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(run, indent=1) + "\n")
    return runs


def plot(out: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for impl, color in (("jax", "tab:blue"), ("ours", "tab:orange")):
        curves = [r["curve"] for r in out["runs"] if r["impl"] == impl]
        if not curves:
            continue
        steps = [c["step"] for c in curves[0]]
        for ax, key in zip(axes, ("success", "q_mean")):
            vals = np.array([[c[key] for c in cur] for cur in curves])
            m, s = vals.mean(0), vals.std(0)
            name = {"fql": "FQL", "fidec": "FiDec"}[out.get("algo", "fql")]
            ax.plot(steps, m, color=color, label=f"{'official JAX' if impl == 'jax' else 'agentlab'} {name}")
            ax.fill_between(steps, m - s, m + s, color=color, alpha=0.2)
            ax.set_xlabel("gradient steps")
            ax.set_ylabel("success rate (%)" if key == "success" else "q_mean (batch)")
    axes[0].legend()
    settings = f"alpha {out['alpha']}" if out.get("algo", "fql") == "fql" else ", ".join(out.get("set", []))
    fig.suptitle(f"{out['task']}, {out.get('algo', 'fql')} {'x'.join(map(str, out['size']))}\n{settings}\n"
                 f"{len(out['seeds'])} seeds (mean +- std), {out['eval_episodes']} episodes per evaluation", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_train_log(out: dict, path: Path) -> None:
    """One panel per training diagnostic: its block means over updates, one line per (impl, seed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in out["runs"][0]["train_log"][0] if k != "step"]
    cols = 3
    fig, axes = plt.subplots((len(keys) + cols - 1) // cols, cols, figsize=(4 * cols, 3 * ((len(keys) + cols - 1) // cols)))
    for ax, key in zip(axes.flat, keys):
        for r in out["runs"]:
            log = r["train_log"]
            ax.plot([e["step"] for e in log], [e[key] for e in log], color="tab:blue" if r["impl"] == "jax" else "tab:orange",
                    ls="-" if r["seed"] % 2 == 0 else "--", label=f"{'official JAX' if r['impl'] == 'jax' else 'agentlab'} s{r['seed']}")
        ax.set_title(key)
        ax.set_xlabel("gradient steps")
    axes.flat[0].legend(fontsize=7)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    fig.suptitle(f"{out['task']}, {out['algo']}: means over blocks of {out['log_every']} updates, same minibatches per seed")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    main()
