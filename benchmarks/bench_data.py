"""Dataset benchmarks (issue 3): loading, sampling, generation time.

1. Loading a 1M-transition D4RL-format file (HalfCheetah-sized: obs 17, act 6, next_observations,
   infos/qpos 9, infos/qvel 9) with ``agentlab.data.load`` vs reading the same arrays with raw
   h5py (``f[k][()]`` for every dataset). Target: within 1.5x. Also the D4RL-v0 layout without
   ``next_observations`` (qlearning_dataset semantics: s' built, timeout rows dropped).
2. ``Dataset.sample(256)`` vs one FQL update at the reference size (4x512) and at 2x256, batch 256.
   Target: sampling under 5% of an update.
3. Generation wall time and reference scores of every named dataset already on disk (read from
   the metadata ``agentlab data make`` wrote; ``--make NAME`` times a fresh generation instead).

Run: ``.venv/bin/python benchmarks/bench_data.py [--transitions 1000000] [--json out.json]``.
Each timing is the median of ``--repeats`` runs (page cache warm: the file is read once first).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import torch


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def write_file(path: Path, n: int, next_obs: bool) -> None:
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        f["observations"] = rng.standard_normal((n, 17), dtype=np.float32)
        if next_obs:
            f["next_observations"] = rng.standard_normal((n, 17), dtype=np.float32)
        f["actions"] = rng.uniform(-1, 1, (n, 6)).astype(np.float32)
        f["rewards"] = rng.standard_normal(n, dtype=np.float32)
        f["terminals"] = np.zeros(n, bool)
        tout = np.zeros(n, bool)
        tout[999::1000] = True
        f["timeouts"] = tout
        f["infos/qpos"] = rng.standard_normal((n, 9), dtype=np.float32)
        f["infos/qvel"] = rng.standard_normal((n, 9), dtype=np.float32)
        f["metadata/algorithm"] = "SAC"


def raw_h5py(path: Path) -> dict:
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda k, o: out.__setitem__(k, o[()]) if isinstance(o, h5py.Dataset) else None)
    return out


def bench_load(n: int, repeats: int) -> dict:
    from agentlab.data import load

    res = {}
    with tempfile.TemporaryDirectory() as d:
        for layout, nobs in (("v2 (with next_observations)", True), ("v0 (no next_observations)", False)):
            p = Path(d) / f"bench_{nobs}.hdf5"
            write_file(p, n, nobs)
            raw_h5py(p)  # warm the page cache
            t_raw = _median_time(lambda p=p: raw_h5py(p), repeats)
            t_ours = _median_time(lambda p=p: load(str(p)), repeats)
            res[layout] = {"raw_h5py_s": t_raw, "agentlab_load_s": t_ours, "ratio": t_ours / t_raw,
                           "size_mb": p.stat().st_size / 2**20}
    return res


def bench_sample(repeats: int) -> dict:
    from agentlab.agents.base import spaces_of
    from agentlab.agents.fql import FQLAgent, FQLConfig
    from agentlab.data import Dataset

    n = 1_000_000
    rng = np.random.default_rng(0)
    ds = Dataset(rng.standard_normal((n, 17), dtype=np.float32), rng.uniform(-1, 1, (n, 6)).astype(np.float32),
                 rng.standard_normal(n, dtype=np.float32), rng.standard_normal((n, 17), dtype=np.float32),
                 np.zeros(n, bool), np.zeros(n, bool))
    ds.sample(256)  # converts to tensors once (cached)
    k = 200
    t_sample = _median_time(lambda: [ds.sample(256) for _ in range(k)], repeats) / k
    out = {"sample_256_ms": 1e3 * t_sample}
    for name, hidden in (("4x512", [512] * 4), ("2x256", [256] * 2)):
        cfg = FQLConfig(hidden=hidden, critic_hidden=hidden)
        agent = FQLAgent(cfg, spaces_of(17, 6))
        batch = ds.sample(256)
        for _ in range(3):
            agent.update(batch)
        m = 10 if name == "4x512" else 30
        t_upd = _median_time(lambda a=agent, b=batch, m=m: [a.update(b) for _ in range(m)], repeats) / m
        out[f"fql_update_{name}_ms"] = 1e3 * t_upd
        out[f"sample_share_of_fql_{name}"] = t_sample / t_upd
    return out


def generation_table(names: list[str] | None) -> list[dict]:
    from agentlab.data import dataset_dir, load
    from agentlab.data.generators import GENERATORS, make_dataset

    rows = []
    if names:
        with tempfile.TemporaryDirectory() as d:
            for name in names:
                t0 = time.perf_counter()
                p = make_dataset(name, out=Path(d) / f"{name}.hdf5", log=lambda m: None)
                dt = time.perf_counter() - t0
                m = load(str(p)).metadata
                rows.append({"name": name, "wall_s": dt, "transitions": m["size"], "ref_min_score": m["ref_min_score"],
                             "ref_max_score": m["ref_max_score"]})
        return rows
    for name in GENERATORS:
        p = dataset_dir() / f"{name}.hdf5"
        if not p.is_file():
            continue
        ds = load(str(p))
        m = ds.metadata
        rows.append({"name": name, "wall_s": m.get("generation_time_s"), "transitions": len(ds),
                     "episodes": ds.num_episodes(), "return_mean": float(ds.episode_returns().mean()),
                     "normalized_return_mean": ds.stats().get("normalized_return_mean"),
                     "ref_min_score": m.get("ref_min_score"), "ref_max_score": m.get("ref_max_score")})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--transitions", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--skip", nargs="*", default=[], choices=["load", "sample", "generation"])
    ap.add_argument("--make", nargs="*", help="time a fresh generation of these datasets (default: read metadata)")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    results: dict = {"threads": args.threads, "transitions": args.transitions}
    if "load" not in args.skip:
        results["load"] = bench_load(args.transitions, args.repeats)
        for layout, r in results["load"].items():
            print(f"load {args.transitions} transitions, {layout}: raw h5py {r['raw_h5py_s']:.3f} s, "
                  f"agentlab.data.load {r['agentlab_load_s']:.3f} s, ratio {r['ratio']:.2f}x ({r['size_mb']:.0f} MB)")
    if "sample" not in args.skip:
        s = results["sample"] = bench_sample(args.repeats)
        print(f"sample(256): {s['sample_256_ms']:.3f} ms; FQL update 4x512 {s['fql_update_4x512_ms']:.1f} ms "
              f"(sample = {100 * s['sample_share_of_fql_4x512']:.2f}%), 2x256 {s['fql_update_2x256_ms']:.1f} ms "
              f"(sample = {100 * s['sample_share_of_fql_2x256']:.2f}%)")
    if "generation" not in args.skip:
        rows = results["generation"] = generation_table(args.make)
        for r in rows:
            wall = f"{r['wall_s']:.0f} s" if r.get("wall_s") is not None else "n/a"
            print(f"{r['name']:<28} {r['transitions']:>8} transitions  generation {wall:>7}  "
                  f"ref_min {r['ref_min_score']:.1f}  ref_max {r['ref_max_score']:.1f}"
                  + (f"  data return {r['return_mean']:.1f} (normalised {r['normalized_return_mean']:.1f})"
                     if "return_mean" in r else ""))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
