"""Learning-curve parity: the official JAX FQL and agentlab's FQL on the same OGBench dataset.

Both implementations get the same arrays (``ogbench.make_env_and_datasets(TASK, dataset_path=...)``
on a local file, actions clipped to +-(1 - 1e-5) as the reference's ``env_utils``), the same
hyperparameters (the reference's ``agents/fql.py`` config with the sizes and ``alpha`` given
here), uniform minibatches of 256 drawn by the same numpy generator per seed, and the same
evaluation: ``--eval-episodes`` episodes of the single-task env, success = ``info['success']`` at
the episode end, the one-step policy's sampled action clipped to [-1, 1] (the reference's
``evaluate``). Logged at each evaluation: success rate and the training ``q_mean`` (mean Q of the
batch at that update) of both. One interpreter imports both sides (see ``parity.py``)::

    /work/refvenv/bin/python benchmarks/parity/learning_curves.py --reference-dir /work/refs \\
        --torch-site .venv/lib/python3.11/site-packages --dataset ~/.cache/agentlab/datasets/ogbench/cube-single-play-v0.npz \\
        --task cube-single-play-singletask-task2-v0 --alpha 300 --steps 10000 --seeds 0 1 2

Writes ``results/parity/learning_curves.{json,png}``.
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


def evaluate(policy, env, episodes: int, seed: int) -> float:
    successes = []
    for ep in range(episodes):
        obs, info = env.reset(seed=seed * 1000 + ep)
        done = False
        while not done:
            action = np.clip(np.asarray(policy(obs), dtype=np.float64), -1, 1)
            obs, _, terminated, truncated, info = env.step(action)
            done = terminated or truncated
        successes.append(float(info.get("success", 0.0)))
    return 100.0 * float(np.mean(successes))


def train_one(impl: str, seed: int, data: dict, env, args, ref_mod) -> list[dict]:
    import torch

    rng = np.random.default_rng(seed)
    n = data["observations"].shape[0]
    od, ad = data["observations"].shape[1], data["actions"].shape[1]
    hidden = list(args.size)
    curve = []
    if impl == "jax":
        import jax

        cfg = ref_mod.get_config()
        cfg.actor_hidden_dims = cfg.value_hidden_dims = tuple(hidden)
        cfg.alpha = args.alpha
        agent = ref_mod.FQLAgent.create(seed, data["observations"][:1], data["actions"][:1], cfg.to_dict())
        key = [jax.random.PRNGKey(seed + 12345)]

        def policy(obs):
            key[0], k = jax.random.split(key[0])
            return np.asarray(agent.sample_actions(observations=obs, seed=k))
    else:
        from agentlab.agents.base import spaces_of
        from agentlab.agents.fql import FQLAgent, FQLConfig

        torch.manual_seed(seed)
        agent = FQLAgent(FQLConfig(hidden=hidden, critic_hidden=hidden, alpha=args.alpha), spaces_of(od, ad))

        def policy(obs):
            return agent.act(torch.as_tensor(obs, dtype=torch.float32)[None])[0].numpy()
    t0 = time.time()
    for step in range(1, args.steps + 1):
        idx = rng.integers(0, n, args.batch_size)
        batch = {k: v[idx] for k, v in data.items()}
        if impl == "jax":
            agent, info = agent.update(batch)
        else:
            info = agent.update({k: torch.from_numpy(v) for k, v in batch.items()})
        if step % args.eval_every == 0:
            q = float(info["critic/q_mean"] if impl == "jax" else info["train/q_mean"])
            succ = evaluate(policy, env, args.eval_episodes, seed)
            curve.append({"step": step, "success": succ, "q_mean": q, "wall_s": time.time() - t0})
            print(json.dumps({"impl": impl, "seed": seed, **curve[-1]}), flush=True)
    return curve


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reference-dir", type=Path, default=None)
    ap.add_argument("--torch-site", default=None)
    ap.add_argument("--dataset", type=Path, default=None, help="local OGBench .npz (the -val file beside it)")
    ap.add_argument("--task", default="cube-single-play-singletask-task2-v0")
    ap.add_argument("--alpha", type=float, default=300.0, help="FQL alpha (reference README: cube-single 300)")
    ap.add_argument("--size", type=int, nargs="+", default=[256, 256])
    ap.add_argument("--steps", type=int, default=10000)
    ap.add_argument("--eval-every", type=int, default=2500)
    ap.add_argument("--eval-episodes", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--impls", nargs="+", choices=["jax", "ours"], default=["jax", "ours"])
    ap.add_argument("--run-dir", type=Path, default=None,
                    help="one JSON per (impl, seed) run; finished runs are skipped (resumable), and --out "
                         "is assembled from every run file there")
    ap.add_argument("--merge", action="store_true", help="only assemble --out (and the plot) from --run-dir")
    ap.add_argument("--out", type=Path, default=REPO / "results/parity/learning_curves.json")
    args = ap.parse_args()
    meta = {"task": args.task, "dataset": str(args.dataset), "alpha": args.alpha, "size": args.size,
            "steps": args.steps, "eval_every": args.eval_every, "eval_episodes": args.eval_episodes,
            "batch_size": args.batch_size}
    runs = []
    if not args.merge:
        runs = train_all(args, meta)
    if args.run_dir is not None:
        runs = []
        for f in sorted(args.run_dir.glob("*_s*.json")):
            r = json.loads(f.read_text())
            if all(r["config"].get(k) == v for k, v in meta.items() if k != "dataset"):
                runs.append(r)
    seeds = sorted({r["seed"] for r in runs})
    out = {"command": " ".join(sys.argv), **meta, "seeds": seeds,
           "runs": [{"impl": r["impl"], "seed": r["seed"], "command": r.get("command"), "curve": r["curve"]}
                    for r in sorted(runs, key=lambda r: (r["seed"], r["impl"]))]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
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
    ref_mod = load_reference(args.reference_dir / "fql", "agents.fql")
    env, train, _ = ogbench.make_env_and_datasets(args.task, dataset_path=str(args.dataset.expanduser()))
    data = {"observations": train["observations"].astype(np.float32),
            "actions": np.clip(train["actions"], -1 + 1e-5, 1 - 1e-5).astype(np.float32),
            "rewards": train["rewards"].astype(np.float32), "masks": train["masks"].astype(np.float32),
            "next_observations": train["next_observations"].astype(np.float32)}
    print(f"dataset {args.dataset}: {data['observations'].shape[0]} transitions", flush=True)
    runs = []
    for seed in args.seeds:
        for impl in args.impls if seed % 2 == 0 else args.impls[::-1]:
            path = args.run_dir / f"{impl}_s{seed}.json" if args.run_dir is not None else None
            if path is not None and path.exists():
                print(f"{path} exists: skipped", flush=True)
                continue
            t0 = time.time()
            run = {"impl": impl, "seed": seed, "command": " ".join(sys.argv), "config": meta,
                   "curve": train_one(impl, seed, data, env, args, ref_mod), "wall_s": time.time() - t0}
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
            ax.plot(steps, m, color=color, label=f"{'official JAX' if impl == 'jax' else 'agentlab'} FQL")
            ax.fill_between(steps, m - s, m + s, color=color, alpha=0.2)
            ax.set_xlabel("gradient steps")
            ax.set_ylabel("success rate (%)" if key == "success" else "q_mean (batch)")
    axes[0].legend()
    fig.suptitle(f"{out['task']}, FQL {'x'.join(map(str, out['size']))}, alpha {out['alpha']}, "
                 f"{len(out['seeds'])} seeds (mean +- std), {out['eval_episodes']} episodes per evaluation")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
