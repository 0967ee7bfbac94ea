r"""Parity check: agentlab's FQL / DeFlow / FiDec update against the official JAX code.

Builds the reference agent (seohongpark/fql ``agents/fql.py``; ARC0127/Fisher-Decorator
``agents/deflow.py`` and ``agents/fidec.py``) and ours at a small size, copies the reference's Flax
parameters into our torch modules, feeds *both* the same random draws (the reference's
``jax.random.normal`` / ``jax.random.uniform`` calls are served from a numpy stream, in the order the
reference makes them, and the same arrays are injected into ours by name through
``FlowActorCritic.injected_draws``), then runs N full updates (Adam, gradient clipping, Polyak)
on fixed random batches and reports, per update, the largest relative difference

.. math::  \text{rel}(a, b) = \max |a - b| / \max(\max |b|, 10^{-12})

of every loss term, every gradient tensor (before clipping) and every parameter after the update.

The reference code is *not* vendored: pass local checkouts. Needs one interpreter that imports
both JAX/Flax (the reference's requirements, e.g. a separate venv) and torch + agentlab; run it with
the JAX venv's python and ``--torch-site`` pointing at agentlab's venv site-packages::

    /work/refvenv/bin/python benchmarks/parity/parity.py --reference-dir /work/refs \
        --torch-site .venv/lib/python3.11/site-packages

``--reference-dir`` holds ``fql/`` and ``Fisher-Decorator/``. Writes ``results/parity/parity.json``
and, with ``--write-fixture``, the small reference fixture that ``tests/test_parity.py`` replays
without JAX.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]

#: the order in which each reference update calls jax.random.{normal,uniform}; ``mse`` is the
#: reference's diagnostic-only sample (ours does not compute it)
DRAW_ORDER = {
    "fql": ["next_z", "bc_x0", "bc_t", "z", "mse"],
    "deflow": ["next_z", "bc_x0", "bc_t", "z", "mse"],
    "fidec": ["next_z", "bc_x0", "bc_t", "z", "fisher_z", "fisher_x0", "mse"],
    "fidec_width": ["next_z", "bc_x0", "bc_t", "z", "fisher_z", "fisher_x0", "fisher_t", "mse"],
}

#: the cases: (name, reference repo, reference module, our algorithm, reference config overrides)
CASES = [
    ("fql", "fql", "agents.fql", "fql", {}),
    ("fql_normq_min", "fql", "agents.fql", "fql", {"normalize_q_loss": True, "q_agg": "min"}),
    ("deflow", "Fisher-Decorator", "agents.deflow", "deflow", {}),
    ("fidec_K4", "Fisher-Decorator", "agents.fidec", "fidec", {}),
    ("fidec_K8_width", "Fisher-Decorator", "agents.fidec", "fidec",
     {"num_fisher_samples": 8, "fisher_t": 0.90, "fisher_t_width": 0.05}),
    ("fidec_clip_binding", "Fisher-Decorator", "agents.fidec", "fidec", {"grad_clip": 0.05, "normalize_q_loss": True}),
]


def rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-12))


class DrawServer:
    """Serves the reference's jax.random.normal/uniform calls from given arrays, checking the order."""

    def __init__(self):
        self.queue: list[tuple[str, np.ndarray]] = []

    def load(self, names, draws):
        self.queue = [(n, draws[n]) for n in names]
        self.served = []

    def _next(self, shape):
        name, arr = self.queue.pop(0)
        self.served.append(name)
        if tuple(arr.shape) != tuple(shape):
            raise RuntimeError(f"reference draw {name!r}: shape {tuple(shape)} != prepared {arr.shape}")
        return arr

    def normal(self, key, shape=(), dtype=None):
        import jax.numpy as jnp
        return jnp.asarray(self._next(shape))

    def uniform(self, key, shape=(), dtype=None, minval=0.0, maxval=1.0):
        import jax.numpy as jnp
        return jnp.asarray(self._next(shape))


def load_reference(repo_dir: Path, module: str):
    """Import ``module`` from a reference checkout (both repos have top-level ``agents``/``utils``)."""
    for k in [k for k in sys.modules if k.split(".")[0] in ("agents", "utils", "envs")]:
        del sys.modules[k]
    sys.path.insert(0, str(repo_dir))
    try:
        return importlib.import_module(module)
    finally:
        sys.path.remove(str(repo_dir))


def make_draws(rng: np.random.Generator, order: list[str], b: int, d: int, k: int, cfg,
               dtype=np.float32) -> dict[str, np.ndarray]:
    """The draws, generated in float32 and then cast to ``dtype``: a float64 run sees the same numbers."""
    out = _make_draws32(rng, order, b, d, k, cfg)
    return {n: v.astype(dtype) for n, v in out.items()}


def _make_draws32(rng, order, b, d, k, cfg, dtype=np.float32):
    out = {}
    for n in order:
        rows = b * k if n.startswith("fisher") else b
        if n == "bc_t":
            out[n] = rng.random((b, 1), dtype=dtype)
        elif n == "fisher_t":
            lo, hi = max(1e-3, cfg["fisher_t"] - cfg["fisher_t_width"]), min(0.999, cfg["fisher_t"])
            out[n] = (dtype(lo) + dtype(hi - lo) * rng.random((rows, 1), dtype=dtype)).astype(dtype)
        else:
            out[n] = rng.standard_normal((rows, d), dtype=dtype)
    return out


def make_batch(rng: np.random.Generator, b: int, od: int, ad: int, dtype=np.float32) -> dict[str, np.ndarray]:
    """A random batch, generated in float32 and cast to ``dtype`` (as :func:`make_draws`)."""
    f = np.float32
    out = {"observations": rng.standard_normal((b, od), dtype=f),
           "actions": rng.uniform(-0.99, 0.99, (b, ad)).astype(f),
           "rewards": rng.standard_normal(b, dtype=f),
           "masks": (rng.random(b) > 0.1).astype(f),
           "next_observations": rng.standard_normal((b, od), dtype=f)}
    return {n: v.astype(dtype) for n, v in out.items()}


# -- parameter correspondence ----------------------------------------------------------------------
def param_map(agent, params) -> list[tuple[str, object, tuple, bool]]:
    """``(our name, our tensor, flax path, transpose)`` for every parameter of ours."""
    from agentlab.nn import EnsembleLayerNorm, EnsembleLinear

    pairs = []

    def mlp(prefix, module, flax_prefix):
        lins = [m for m in module.net if m.__class__.__name__ == "Linear"]
        for i, lin in enumerate(lins):
            pairs.append((f"{prefix}.{i}.weight", lin.weight, (*flax_prefix, f"Dense_{i}", "kernel"), True))
            pairs.append((f"{prefix}.{i}.bias", lin.bias, (*flax_prefix, f"Dense_{i}", "bias"), False))

    def ens(prefix, critic, flax_prefix):
        lins = [m for m in critic.net.net if isinstance(m, EnsembleLinear)]
        lns = [m for m in critic.net.net if isinstance(m, EnsembleLayerNorm)]
        for i, lin in enumerate(lins):
            pairs.append((f"{prefix}.dense{i}.weight", lin.weight, (*flax_prefix, f"Dense_{i}", "kernel"), False))
            pairs.append((f"{prefix}.dense{i}.bias", lin.bias, (*flax_prefix, f"Dense_{i}", "bias"), False))
        for i, ln in enumerate(lns):
            pairs.append((f"{prefix}.ln{i}.weight", ln.weight, (*flax_prefix, f"LayerNorm_{i}", "scale"), False))
            pairs.append((f"{prefix}.ln{i}.bias", ln.bias, (*flax_prefix, f"LayerNorm_{i}", "bias"), False))

    mlp("flow", agent.flow, ("modules_actor_bc_flow", "mlp"))
    if hasattr(agent, "actor"):
        mlp("actor", agent.actor, ("modules_actor_onestep_flow", "mlp"))
    else:
        mlp("delta", agent.delta, ("modules_refine_onestep_flow", "mlp"))
        if "modules_log_alpha" in params:
            pairs.append(("log_alpha", agent.log_alpha, ("modules_log_alpha", "value"), False))
    ens("critic", agent.critic, ("modules_critic", "value_net"))
    ens("target_critic", agent.target_critic, ("modules_target_critic", "value_net"))
    names = {id(p): n for n, p in agent.named_parameters()}  # report under our state-dict names
    return [(names[id(p)], p, path, tr) for _, p, path, tr in pairs]


def get_path(tree, path):
    for p in path:
        tree = tree[p]
    return np.asarray(tree)


def to_ours(arr: np.ndarray, like, transpose: bool) -> np.ndarray:
    a = arr.T if transpose else arr
    return a.reshape(tuple(like.shape))


def build_ours(algo: str, ref_cfg, od: int, ad: int):
    from agentlab.agents.base import spaces_of
    from agentlab.agents.fidec import DeFlowConfig, FiDecAgent, FiDecConfig
    from agentlab.agents.fql import FQLAgent, FQLConfig

    common = dict(hidden=list(ref_cfg["actor_hidden_dims"]), critic_hidden=list(ref_cfg["value_hidden_dims"]),
                  lr=ref_cfg["lr"], discount=ref_cfg["discount"], tau=ref_cfg["tau"], q_agg=ref_cfg["q_agg"],
                  flow_steps=ref_cfg["flow_steps"], normalize_q_loss=ref_cfg["normalize_q_loss"],
                  alpha=ref_cfg["alpha"], critic_layer_norm=ref_cfg["layer_norm"])
    spaces = spaces_of(od, ad)
    if algo == "fql":
        return FQLAgent(FQLConfig(**common, grad_clip=0.0), spaces)
    extra = dict(grad_clip=ref_cfg.get("grad_clip") or 0.0, use_lagrange=ref_cfg["use_lagrange"],
                 target_divergence=ref_cfg["target_divergence"])
    if algo == "deflow":
        return FiDecAgent(DeFlowConfig(**common, **extra), spaces)
    return FiDecAgent(FiDecConfig(**common, **extra, num_fisher_samples=ref_cfg["num_fisher_samples"],
                                  fisher_t=ref_cfg["fisher_t"], fisher_t_width=ref_cfg["fisher_t_width"],
                                  fisher_damping=ref_cfg["fisher_damping"]), spaces)


# ours' diagnostic name -> reference info key
LOSS_KEYS_FQL = {"train/critic_loss": "critic/critic_loss", "train/q_mean": "critic/q_mean",
                 "train/bc_flow_loss": "actor/bc_flow_loss", "train/distill_loss": "actor/distill_loss",
                 "train/q_loss": "actor/q_loss"}
LOSS_KEYS_FIDEC = {"train/critic_loss": "critic/critic_loss", "train/q_mean": "critic/q_mean",
                   "train/bc_flow_loss": "actor/bc_flow_loss", "train/divergence": "actor/distill_loss",
                   "train/q_loss": "actor/q_loss", "train/alpha": "actor/alpha_value",
                   "train/delta_mse": "actor/refinement_mse"}


def ref_step(agent, batch):
    """The reference's gradient (for the report) and its own ``update`` on one batch."""
    import jax

    grads, _ = jax.grad(lambda gp: agent.total_loss(batch, gp, rng=agent.rng), has_aux=True)(agent.network.params)
    new_agent, info = agent.update(batch)
    return grads, new_agent, info


def run_case(name, repo, module, algo, overrides, ref_root: Path, size, updates, seed, fixture_dir,
             dtype=np.float32, dump: dict | None = None):
    """One case; with ``dump`` (a dict) every gradient and parameter of both sides is stored in it
    (``{name}/u{update}/{grad,param}_{ours,ref}/{tensor}``, ``{name}/init/{tensor}``) for ``rounding.py``."""
    import jax
    import jax.numpy as jnp
    import torch

    mod = load_reference(ref_root / repo, module)
    agent_cls = next(getattr(mod, a) for a in dir(mod) if a.endswith("Agent") and a != "Agent")
    cfg = mod.get_config()
    h = tuple(size)
    cfg.actor_hidden_dims, cfg.value_hidden_dims = h, h
    for k, v in overrides.items():
        cfg[k] = v
    b, od, ad = 64, 17, 6
    rng = np.random.default_rng(seed)
    ex_obs, ex_act = np.zeros((1, od), np.float32), np.zeros((1, ad), np.float32)
    ref = agent_cls.create(seed, ex_obs, ex_act, cfg.to_dict())
    if dtype == np.float64:  # parameters and Adam state in float64 too (Flax initialises float32)
        p64 = jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.float64), ref.network.params)
        ref = ref.replace(network=ref.network.replace(params=p64, opt_state=ref.network.tx.init(p64)))
    ref_cfg = dict(ref.config)
    draw_key = algo if algo != "fidec" else ("fidec_width" if ref_cfg["fisher_t_width"] > 0 else "fidec")
    order = DRAW_ORDER[draw_key]
    k = ref_cfg.get("num_fisher_samples", 0) if algo == "fidec" else 0

    torch.manual_seed(seed)
    ours = build_ours(algo, ref_cfg, od, ad)
    if dtype == np.float64:
        ours = ours.double()
        ours.opt = type(ours.opt)([p for p in ours.parameters() if p.requires_grad], **ours.opt.defaults)
    pairs = param_map(ours, ref.network.params)
    with torch.no_grad():
        for _, p, path, tr in pairs:
            p.copy_(torch.from_numpy(to_ours(get_path(ref.network.params, path), p, tr).copy()))
    n_ours = sum(p.numel() for p in ours.parameters())
    n_mapped = sum(p.numel() for _, p, _, _ in pairs)
    assert n_ours == n_mapped, f"{name}: {n_ours} params in ours, {n_mapped} mapped"
    init_state = {n: p.detach().numpy().copy() for n, p, _, _ in pairs}
    if dump is not None:
        dump.update({f"{name}/init/{n}": v for n, v in init_state.items()})

    server = DrawServer()
    originals = jax.random.normal, jax.random.uniform
    jax.random.normal, jax.random.uniform = server.normal, server.uniform  # served draws (restored below)
    trainable = [(n, p, path, tr) for n, p, path, tr in pairs if p.requires_grad]
    per_update, fixture = [], {"draws": [], "batches": [], "ref_losses": []}
    loss_keys = LOSS_KEYS_FQL if algo == "fql" else LOSS_KEYS_FIDEC
    try:
        for u in range(updates):
            batch = make_batch(rng, b, od, ad, dtype)
            draws = make_draws(rng, order, b, ad, k, ref_cfg, dtype)
            tb = {kk: torch.from_numpy(v) for kk, v in batch.items()}
            ours.injected_draws = {kk: torch.from_numpy(v) for kk, v in draws.items()}

            # Traced afresh for every update: the served draws become constants of the trace. Inside
            # it the reference's own jitted functions are traced once per signature, so the update
            # reuses the gradient's trace (same draws) and the diagnostic ``mse`` sample reuses
            # ``next_z``; what must hold is that every draw ours uses was served, in this order.
            jax.clear_caches()
            server.load(order, draws)
            ref_grads, ref, ref_info = jax.jit(ref_step)(ref, batch)
            needed = [n for n in order if n != "mse"]
            assert server.served[: len(needed)] == needed, f"{name}: reference drew {server.served}, expected {needed}"

            terms, info = ours.losses(tb)
            total = sum(terms.values())
            total_value = float(total.detach())
            grads = torch.autograd.grad(total, [p for _, p, _, _ in trainable])
            ours_info = ours.update(tb)

            ref_info = {kk: float(np.asarray(v)) for kk, v in ref_info.items()}
            qscale = max(abs(ref_info["critic/q_max"]), abs(ref_info["critic/q_min"]))
            losses = {}
            for ok, rk in loss_keys.items():
                if rk not in ref_info:  # e.g. refinement_mse: FiDec only
                    continue
                # q_mean is a mean of values of both signs: relative to the batch's max |Q|, not to itself
                scale = qscale if ok == "train/q_mean" else abs(ref_info[rk])
                losses[ok] = {"ours": float(info[ok]), "ref": ref_info[rk],
                              "rel": abs(float(info[ok]) - ref_info[rk]) / max(scale, 1e-12)}
            ref_total = ref_info["critic/critic_loss"] + ref_info["actor/actor_loss"]
            losses["total"] = {"ours": total_value, "ref": ref_total, "rel": rel(total_value, ref_total)}
            if "train/grad_norm" in ours_info and "grad/clip_scale" in ref_info:
                clip = min(1.0, ours.config.grad_clip / (float(ours_info["train/grad_norm"]) + 1e-6))
                losses["clip_scale"] = {"ours": clip, "ref": ref_info["grad/clip_scale"],
                                        "rel": rel(clip, ref_info["grad/clip_scale"])}
            grad_rel = {n: rel(g.numpy(), to_ours(get_path(ref_grads, path), p, tr))
                        for (n, p, path, tr), g in zip(trainable, grads)}
            param_rel = {n: rel(p.detach().numpy(), to_ours(get_path(ref.network.params, path), p, tr))
                         for n, p, path, tr in pairs}
            if dump is not None:
                for (n, p, path, tr), g in zip(trainable, grads):
                    dump[f"{name}/u{u}/grad_ours/{n}"] = g.numpy().copy()
                    dump[f"{name}/u{u}/grad_ref/{n}"] = to_ours(get_path(ref_grads, path), p, tr).copy()
                for n, p, path, tr in pairs:
                    dump[f"{name}/u{u}/param_ours/{n}"] = p.detach().numpy().copy()
                    dump[f"{name}/u{u}/param_ref/{n}"] = to_ours(get_path(ref.network.params, path), p, tr).copy()
                if "clip_scale" in losses:
                    dump[f"{name}/u{u}/clip_scale_ours"] = np.float64(losses["clip_scale"]["ours"])
                    dump[f"{name}/u{u}/clip_scale_ref"] = np.float64(losses["clip_scale"]["ref"])
            per_update.append({"losses": losses, "grads": grad_rel, "params": param_rel,
                               "max": {"losses": max(v["rel"] for v in losses.values()),
                                       "grads": max(grad_rel.values()), "params": max(param_rel.values())}})
            fixture["draws"].append(draws)
            fixture["batches"].append(batch)
            fixture["ref_losses"].append({**{ok: ref_info[rk] for ok, rk in loss_keys.items() if rk in ref_info},
                                          "qscale": qscale})
    finally:
        jax.random.normal, jax.random.uniform = originals
    final_ref = {n: to_ours(get_path(ref.network.params, path), p, tr) for n, p, path, tr in pairs}
    if fixture_dir is not None:
        write_fixture(fixture_dir / f"parity_{name}.npz", name, algo, ours.config, init_state, final_ref, fixture)
    return {"case": name, "algorithm": algo, "reference": f"{repo}:{module}",
            "reference_config": {kk: (list(v) if isinstance(v, tuple) else v) for kk, v in ref_cfg.items()
                                 if isinstance(v, (int, float, str, bool, tuple, list, type(None)))},
            "batch_size": b, "obs_dim": od, "act_dim": ad, "updates": per_update,
            "max": {c: max(u["max"][c] for u in per_update) for c in ("losses", "grads", "params")}}


def write_fixture(path: Path, name, algo, config, init_state, final_ref, fixture):
    import dataclasses
    arrays = {f"init/{n}": v for n, v in init_state.items()}
    arrays.update({f"final/{n}": v for n, v in final_ref.items()})
    for u, (d, bt, ls) in enumerate(zip(fixture["draws"], fixture["batches"], fixture["ref_losses"])):
        arrays.update({f"draw{u}/{n}": v for n, v in d.items()})
        arrays.update({f"batch{u}/{n}": v for n, v in bt.items()})
        arrays.update({f"loss{u}/{n}": np.float64(v) for n, v in ls.items()})
    arrays["meta"] = np.array(json.dumps({"case": name, "algorithm": algo, "updates": len(fixture["draws"]),
                                          "config": dataclasses.asdict(config)}))
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)


def git_commit(d: Path) -> str:
    try:
        return subprocess.run(["git", "-C", str(d), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reference-dir", type=Path, required=True, help="folder with fql/ and Fisher-Decorator/")
    ap.add_argument("--torch-site", type=Path, default=None, help="site-packages with torch (agentlab's venv)")
    ap.add_argument("--size", type=int, nargs="+", default=[64, 64], help="hidden sizes of every network")
    ap.add_argument("--updates", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cases", nargs="*", default=None, help="subset of: " + " ".join(c[0] for c in CASES))
    ap.add_argument("--out", type=Path, default=REPO / "results/parity/parity.json")
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32",
                    help="float64: both sides in double precision (JAX x64), which separates rounding from "
                         "any difference in the computation")
    ap.add_argument("--dump", type=Path, default=None,
                    help="npz with every gradient and parameter of both sides (input of rounding.py)")
    ap.add_argument("--write-fixture", type=Path, default=None, help="folder for the CI fixtures (tests/data)")
    args = ap.parse_args(argv)
    for repo in ("fql", "Fisher-Decorator"):
        if not (args.reference_dir / repo / "agents").is_dir():
            sys.exit(f"error: {args.reference_dir / repo} is not a checkout of the reference ({repo})")
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    if args.dtype == "float64":
        os.environ["JAX_ENABLE_X64"] = "1"
    if args.torch_site is not None:
        sys.path.append(str(args.torch_site))
    sys.path.insert(0, str(REPO))
    import flax
    import jax
    import optax
    import torch

    torch.set_num_threads(1)
    results, dump = [], ({} if args.dump is not None else None)
    for name, repo, module, algo, overrides in CASES:
        if args.cases and name not in args.cases:
            continue
        r = run_case(name, repo, module, algo, overrides, args.reference_dir, args.size, args.updates, args.seed,
                     args.write_fixture, np.dtype(args.dtype).type, dump)
        results.append(r)
        print(f"{name:20s} max rel diff  losses {r['max']['losses']:.2e}  grads {r['max']['grads']:.2e}  "
              f"params {r['max']['params']:.2e}", flush=True)
    out = {"command": "python benchmarks/parity/parity.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "metric": "max|ours - ref| / max|ref| per tensor; grads before clipping; params after each update",
           "size": args.size, "updates": args.updates, "seed": args.seed, "dtype": args.dtype,
           "reference_commits": {r: git_commit(args.reference_dir / r) for r in ("fql", "Fisher-Decorator")},
           "agentlab_commit": git_commit(REPO),
           "versions": {"python": platform.python_version(), "jax": jax.__version__, "flax": flax.__version__,
                        "optax": optax.__version__, "numpy": np.__version__, "torch": torch.__version__},
           "max_over_cases": {c: max(r["max"][c] for r in results) for c in ("losses", "grads", "params")},
           "cases": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    if dump is not None:
        args.dump.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(args.dump, **dump)
    print(f"overall max rel diff: {out['max_over_cases']}  -> {args.out}")


if __name__ == "__main__":
    main()
