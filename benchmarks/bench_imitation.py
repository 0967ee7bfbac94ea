"""Imitation speed: AILBoost vs DAC training throughput, and our SAC vs stable-baselines3's SAC.

Both comparisons run in this one process, alternating the two sides (``--repeats`` times) so that
load from other processes hits both alike; the reported numbers are medians.

1. ``ail``: env steps/s of ``agentlab train ailboost`` and ``agentlab train dac`` at the *same*
   configuration (same SAC, same discriminator size and loss-independent schedule: only the
   method differs: weighted vs uniform discriminator replay, mixture bookkeeping, ensemble).
   Throughput is measured after the seed phase, excluding evaluation. Target ratio <= 1.2.
2. ``sac``: env steps/s of our SAC and SB3's SAC on the same task, same network sizes (256x256),
   batch 256, one gradient update per env step, measured after ``learning_starts``.

    python benchmarks/bench_imitation.py --part all --repeats 2 --json results/imitation/bench.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch


def bench_ail(env_id: str, agent_steps: int, hidden: int, disc_hidden: int) -> dict[str, float]:
    """Median env steps/s of each method's training loop (after the seed phase, no evaluation)."""
    import csv

    from agentlab.experts import RandomPolicy, collect
    from agentlab.envs import env_spaces
    from agentlab.training import train

    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        demos = Path(tmp) / "demos.hdf5"
        collect(RandomPolicy(env_spaces(env_id)[1], 0), env_id, 1, 0, demos)
        common = [f"hidden=[{hidden},{hidden}]", f"disc_hidden=[{disc_hidden},{disc_hidden}]", "disc_activation=tanh",
                  "action_repeat=1", "seed_steps=200", "update_every=1", "round_steps=250", "disc_updates=100",
                  "batch_size=256", "disc_batch_size=512"]
        for algo in ("ailboost", "dac"):  # warm-up: imports, env compilation, first-call allocations
            train(algo, Path(tmp) / f"warm-{algo}", steps=210, env_id=env_id, demos=str(demos), num_demos=1,
                  overrides=common, eval_episodes=1, log_every=250, checkpoint_every=10**9)
        for algo in ("ailboost", "dac"):
            run = Path(tmp) / algo
            cpu0 = time.process_time()
            train(algo, run, steps=200 + agent_steps, env_id=env_id, demos=str(demos), num_demos=1, overrides=common,
                  eval_episodes=1, log_every=250, checkpoint_every=10**9)
            cpu = time.process_time() - cpu0
            rows = list(csv.DictReader(open(run / "metrics.csv")))
            # intervals fully after the seed phase; each spans one discriminator round + 250 SAC updates
            rates = [float(r["time/env_steps_per_s"]) for r in rows if int(r["step"]) > 250 + 200]
            out[algo] = statistics.median(rates)
            out[f"{algo}_cpu_s"] = cpu  # process CPU time of the whole run (robust to other load)
    return out


def bench_sac(env_id: str, steps: int, learning_starts: int) -> dict[str, float]:
    from stable_baselines3 import SAC

    from agentlab.agents.base import spaces_from_env
    from agentlab.agents.sac import SACAgent, SACConfig
    from agentlab.envs import make_env
    from agentlab.replay import ReplayBuffer

    # stable-baselines3: MlpPolicy is 256x256 for SAC, batch 256, train_freq 1, gradient_steps 1
    env = make_env(env_id)
    model = SAC("MlpPolicy", env, learning_starts=learning_starts, batch_size=256, seed=0, device="cpu", verbose=0)
    model.learn(learning_starts + 10)
    t, c = time.perf_counter(), time.process_time()
    model.learn(steps, reset_num_timesteps=False)
    sb3 = steps / (time.perf_counter() - t)
    sb3_cpu = steps / (time.process_time() - c)
    env.close()

    # ours, the same loop body as agentlab.agents.online (act, step, store, update)
    env = make_env(env_id)
    agent = SACAgent(SACConfig(hidden=[256, 256], batch_size=256), spaces_from_env(env_id))
    buf = ReplayBuffer(learning_starts + steps + 100, env.observation_space.shape[0], agent.act_dim)
    obs, _ = env.reset(seed=0)

    def run(n: int, learn: bool) -> None:
        nonlocal obs
        for _ in range(n):
            a = agent.explore(obs)
            nxt, r, term, trunc, _ = env.step(agent.scale_action_np(a))
            buf.add_step(obs, a, r, nxt, term)
            obs = nxt
            if term or trunc:
                obs, _ = env.reset()
            if learn:
                agent.update(buf.sample(256))

    run(learning_starts, False)
    run(10, True)
    t, c = time.perf_counter(), time.process_time()
    run(steps, True)
    ours = steps / (time.perf_counter() - t)
    ours_cpu = steps / (time.process_time() - c)
    env.close()
    return {"ours": ours, "sb3": sb3, "ours_cpu": ours_cpu, "sb3_cpu": sb3_cpu}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", choices=["ail", "sac", "all"], default="all")
    p.add_argument("--env", default="dmc/cartpole-swingup")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--sac-steps", type=int, default=300)
    p.add_argument("--ail-steps", type=int, default=750, help="agent steps after the seed phase")
    p.add_argument("--hidden", type=int, default=64, help="SAC hidden size in the AIL comparison")
    p.add_argument("--disc-hidden", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    import os

    os.environ.setdefault("AGENTLAB_PROGRESS", "0")
    result: dict[str, object] = {"env": args.env, "threads": args.threads, "torch": torch.__version__}
    if args.part in ("ail", "all"):
        runs = [bench_ail(args.env, args.ail_steps, args.hidden, args.disc_hidden) for _ in range(args.repeats)]
        a = statistics.median(r["ailboost"] for r in runs)
        d = statistics.median(r["dac"] for r in runs)
        ca = statistics.median(r["ailboost_cpu_s"] for r in runs)
        cd = statistics.median(r["dac_cpu_s"] for r in runs)
        result["ail"] = {"ailboost_env_steps_per_s": a, "dac_env_steps_per_s": d, "time_ratio_ailboost_over_dac": d / a,
                         "ailboost_cpu_s": ca, "dac_cpu_s": cd, "cpu_time_ratio_ailboost_over_dac": ca / cd,
                         "runs": runs, "hidden": args.hidden, "disc_hidden": args.disc_hidden}
        print(f"AILBoost {a:.1f} env steps/s, DAC {d:.1f} env steps/s -> time ratio AILBoost/DAC {d / a:.3f}; "
              f"CPU time {ca:.1f}s vs {cd:.1f}s -> {ca / cd:.3f}")
    if args.part in ("sac", "all"):
        runs = [bench_sac(args.env, args.sac_steps, 1000) for _ in range(args.repeats)]
        o = statistics.median(r["ours"] for r in runs)
        s = statistics.median(r["sb3"] for r in runs)
        oc = statistics.median(r["ours_cpu"] for r in runs)
        sc = statistics.median(r["sb3_cpu"] for r in runs)
        result["sac"] = {"ours_env_steps_per_s": o, "sb3_env_steps_per_s": s, "speedup_ours_over_sb3": o / s,
                         "ours_env_steps_per_cpu_s": oc, "sb3_env_steps_per_cpu_s": sc, "cpu_speedup_ours_over_sb3": oc / sc,
                         "runs": runs}
        print(f"SAC 256x256, batch 256, 1 update/step: ours {o:.1f} steps/s, SB3 {s:.1f} steps/s -> {o / s:.2f}x; "
              f"per CPU second {oc:.1f} vs {sc:.1f} -> {oc / sc:.2f}x")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, default=float))


if __name__ == "__main__":
    main()
