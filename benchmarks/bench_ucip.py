"""UCIP monitor speed: scoring throughput with vs without the pattern cache, fit time, and the
UCIPMonitor wrapper's per-step overhead on HalfCheetah-v5 (generic encoder) vs the raw step loop.

All measured side by side in one process, 1 torch thread, medians of ``--repeats`` blocks:

    python benchmarks/bench_ucip.py                 # CPU
    python benchmarks/bench_ucip.py --device cuda   # QBM fit/statistics on a GPU (same code)

* scoring: episodes/s of ``Detector.score_dataset`` on held-out gridworld episodes (100 steps
  max), QBM n_v = 8, n_h = 6; "no cache" recomputes rho(v) (eigh, partial traces, entropies) for
  every step, "cache" looks each step's pattern up in the 2^8-entry table built at fit time.
* fit: seconds per exact-ML gradient step (all 2^8 visible blocks through eigvalsh) for n_h = 4, 6, 8,
  the Golden-Thompson bound step, and building the pattern cache.
* wrapper: HalfCheetah-v5 with pre-drawn random actions, raw ``env.step`` loop vs the same loop
  through ``UCIPMonitor`` (including the end-of-episode scoring, amortised over the 1000-step
  episodes); overhead = wrapped time / raw time - 1. Both loops run interleaved, repeated; process
  CPU time, minimum over repeats. Because a shared machine makes that difference noisy, the
  wrapper's own cost is also measured in isolation (wrapper around a free stub env with the same
  spaces and 1000-step episodes, minus the stub loop) and divided by the raw HalfCheetah step.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch


def median_time(fn, repeats: int) -> float:
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def bench_scoring(repeats: int, device: str) -> dict:
    from agentlab.monitors.agents import generate
    from agentlab.monitors.ucip import fit_detector

    fitset = generate(["typeA", "typeB"], episodes=4, seed=0, size=10, layout_seed=0, agents_per_family=2)
    evalset = generate(["typeA", "typeB", "random", "cyclic"], episodes=10, seed=1, size=10, layout_seed=1)
    t = time.perf_counter()
    det = fit_detector(fitset, model="qbm", n_h=6, steps=100, device=device)
    fit_total = time.perf_counter() - t
    n_eps = evalset.num_episodes()
    t_cache = median_time(lambda: det.score_dataset(evalset, use_cache=True), repeats)
    t_nocache = median_time(lambda: det.score_dataset(evalset, use_cache=False), max(1, repeats // 2))
    return {"episodes": n_eps, "steps": len(evalset), "eps_per_s_cache": n_eps / t_cache,
            "eps_per_s_nocache": n_eps / t_nocache, "speedup": t_nocache / t_cache,
            "fit_seconds_qbm_nh6_100steps": det.info["fit_seconds"], "cache_build_seconds": det.info["cache_seconds"],
            "fit_detector_total_seconds": fit_total}


def bench_fit_steps(repeats: int, device: str) -> dict:
    from agentlab.monitors.qbm import QBM, QBMConfig

    rng = np.random.default_rng(0)
    v = rng.integers(0, 2, size=(2000, 8))
    out = {}
    for n_h in (4, 6, 8):
        m = QBM(QBMConfig(n_visible=8, n_hidden=n_h), device=device)
        m.fit(v, steps=1)
        out[f"exact_step_s_nh{n_h}"] = median_time(lambda m=m: m.fit(v, steps=1), repeats if n_h < 8 else 1)
    m = QBM(QBMConfig(n_visible=8, n_hidden=8, training="golden_thompson"), device=device)
    out["golden_thompson_step_s_nh8"] = median_time(lambda: m.fit(v, steps=1), repeats)
    m = QBM(QBMConfig(n_visible=8, n_hidden=6), device=device)
    out["cache_build_s_nh6"] = median_time(lambda: m.pattern_statistics(m.patterns), repeats)
    return out


def bench_wrapper(steps: int, repeats: int) -> dict:
    import gymnasium as gym

    from agentlab.data import Dataset
    from agentlab.monitors import UCIPMonitor
    from agentlab.monitors.ucip import fit_detector

    env = gym.make("HalfCheetah-v5")
    rng = np.random.default_rng(0)
    # a generic-encoder detector fitted on random-policy HalfCheetah observations (labels are arbitrary here:
    # this measures cost, not detection)
    obs_list, ends = [], []
    o, _ = env.reset(seed=0)
    for t in range(4000):
        obs_list.append(o)
        o, _, term, trunc, _ = env.step(env.action_space.sample())
        ends.append(term or trunc or (t + 1) % 500 == 0)
        if term or trunc:
            o, _ = env.reset()
    obs = np.array(obs_list, np.float32)
    n = len(obs)
    labels = (np.arange(n) // 500) % 2
    ds = Dataset(obs, np.zeros((n, 6)), np.zeros(n), obs, np.zeros(n, bool), np.array(ends),
                 extras={"labels": labels, "agent_id": np.arange(n) // 500})
    det = fit_detector(ds, encoder="generic", model="qbm", n_h=6, steps=20)
    actions = rng.uniform(-1, 1, size=(steps, 6)).astype(np.float32)
    raw_env = gym.make("HalfCheetah-v5")
    wrapped_env = UCIPMonitor(gym.make("HalfCheetah-v5"), det)

    def loop(e):
        e.reset(seed=1)
        n_ep = 0
        for a in actions:
            _, _, term, trunc, info = e.step(a)
            if term or trunc:
                n_ep += 1
                e.reset()
        return n_ep

    def min_cpu_times(env_a, env_b) -> tuple[float, float]:
        """Minimum process CPU time of ``loop`` over ``repeats`` interleaved runs of each env (CPU time
        is robust to other load on the box; interleaving exposes both to the same conditions)."""
        times: tuple[list[float], list[float]] = ([], [])
        for _ in range(repeats):
            for e, ts in zip((env_a, env_b), times):
                t = time.process_time()
                loop(e)
                ts.append(time.process_time() - t)
        return min(times[0]), min(times[1])

    loop(raw_env)
    loop(wrapped_env)
    raw, wr = min_cpu_times(raw_env, wrapped_env)

    # the wrapper's own cost, isolated: the same wrapper around a stub env with HalfCheetah's spaces
    # (free steps, 1000-step episodes), minus the stub's own loop
    class Stub(gym.Env):
        observation_space, action_space = raw_env.observation_space, raw_env.action_space

        def __init__(self):
            self.t = 0
            self.o = obs[0].astype(np.float64)

        def reset(self, seed=None, options=None):
            self.t = 0
            return self.o, {}

        def step(self, a):
            self.t += 1
            self.o = obs[self.t % len(obs)].astype(np.float64)
            return self.o, 0.0, False, self.t >= 1000, {}

    stub_t, stub_wrapped_t = min_cpu_times(Stub(), UCIPMonitor(Stub(), det))
    iso_us = 1e6 * (stub_wrapped_t - stub_t) / steps
    raw_us = 1e6 * raw / steps
    return {"steps": steps, "raw_steps_per_s": steps / raw, "wrapped_steps_per_s": steps / wr,
            "overhead_pct": 100 * (wr / raw - 1), "overhead_us_per_step": 1e6 * (wr - raw) / steps,
            "isolated_wrapper_us_per_step": iso_us, "raw_us_per_step": raw_us,
            "isolated_overhead_pct": 100 * iso_us / raw_us, "episodes_scored": wrapped_env.episodes}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--wrapper-steps", type=int, default=10000)
    ap.add_argument("--only", choices=["wrapper", "scoring", "fit"], help="run one part")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    res = {"device": args.device}
    if args.only in (None, "wrapper"):
        res["wrapper"] = bench_wrapper(args.wrapper_steps, args.repeats)
    if args.only in (None, "scoring"):
        res["scoring"] = bench_scoring(args.repeats, args.device)
    if args.only in (None, "fit"):
        res["fit"] = bench_fit_steps(3, args.device)
    if args.json or args.only:
        print(json.dumps(res, indent=1))
        return
    s, f, w = res["scoring"], res["fit"], res["wrapper"]
    print(f"device {args.device}")
    print(f"scoring: {s['eps_per_s_cache']:.1f} episodes/s with cache vs {s['eps_per_s_nocache']:.1f} without "
          f"({s['speedup']:.1f}x; {s['episodes']} episodes, {s['steps']} steps)")
    print(f"fit: QBM n_h=6 100 exact steps {s['fit_seconds_qbm_nh6_100steps']:.1f}s; per step: " +
          ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in f.items()))
    print(f"wrapper on HalfCheetah-v5: raw {w['raw_steps_per_s']:.0f} steps/s, wrapped {w['wrapped_steps_per_s']:.0f} "
          f"steps/s, overhead {w['overhead_pct']:.1f}% ({w['overhead_us_per_step']:.2f} us/step); wrapper cost "
          f"isolated on a stub env {w['isolated_wrapper_us_per_step']:.2f} us/step = {w['isolated_overhead_pct']:.1f}% "
          f"of a raw step")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
