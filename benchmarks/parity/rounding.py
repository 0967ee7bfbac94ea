r"""Where the float32 parameter differences of ``parity.py`` come from, element by element.

Inputs: two dumps of ``parity.py --dump`` on the *same* inputs (weights, batches and draws are
generated in float32 and cast), one ``--dtype float32`` and one ``--dtype float64``. The float64
reference is taken as the truth (ours and the reference agree in float64 to ~1e-13, so it is the
exact result of the common computation up to float64 rounding). For every case it reports:

* ``params``: after each update, per tensor, max over tensors of
  ``max|a - b| / max|truth|`` for ours32 - jax32 (the metric of ``parity.json``), ours32 - truth,
  jax32 - truth and ours64 - truth: is ours as close to the float64 truth as JAX float32 is?
* ``adam_replay``: Adam (+ clipping) applied in float64 to the recorded float32 gradients of each
  side, from the common initial weights, compared with that side's float32 parameters (for the
  reference with optax's bias corrections ``1 - b^t`` rounded to float32, as optax computes them
  without x64; torch computes them in float64). If these
  agree to float32 rounding of the parameters (~1e-7), the whole ours32 - truth difference is what
  exact Adam makes of the float32 rounding of the gradients; nothing in our optimiser arithmetic adds.
* ``optimizer_only``: JAX's float32 gradients fed to torch Adam (fused, as ours) + our clipping
  in float32 versus optax.adam on the same gradients: the optimiser's own op-order difference.
* ``grads_vs_truth``: per gradient tensor and update, ``max|g32 - g64| / max|g64|`` and its rms, ours
  and JAX: the float32 rounding of each side's gradients.
* ``excess``: every final-parameter element whose ours32 - jax32 difference exceeds 1e-5 of its
  tensor's max, with its gradient's float32 relative error at each update
  (``|g32 - g64| / |g64|``, ours and JAX), ``|g64| / max|g64|`` and the Adam input ``|clip * g64|``
  relative to Adam's eps 1e-8.
* ``bins``: all trainable elements of all cases, binned by the largest float32 relative error of
  their gradient over the updates; per bin the largest final-parameter error vs the truth
  (relative to the tensor's max), ours and JAX.

Run with the JAX venv and torch on the path (as ``parity.py``)::

    /work/refvenv/bin/python benchmarks/parity/rounding.py --f32 /tmp/parity32.npz --f64 /tmp/parity64.npz \
        --torch-site .venv/lib/python3.11/site-packages
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
EPS, B1, B2 = 1e-8, 0.9, 0.999
BIN_EDGES = [0.0, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, np.inf]


def split(dump) -> dict:
    """``{case: {"init": {t: a}, "updates": [{"grad_ours": {...}, "grad_ref": ..., ...}]}}``"""
    out: dict = {}
    for key in dump.files:
        case, part, *rest = key.split("/")
        c = out.setdefault(case, {"init": {}, "updates": {}})
        if part == "init":
            c["init"][rest[0]] = np.atleast_1d(dump[key])  # log_alpha is 0-d
        else:
            u = c["updates"].setdefault(int(part[1:]), {})
            if rest[0].startswith("clip_scale"):
                u[rest[0]] = float(dump[key])
            else:
                u.setdefault(rest[0], {})[rest[1]] = np.atleast_1d(dump[key])
    for c in out.values():
        c["updates"] = [c["updates"][i] for i in sorted(c["updates"])]
    return out


def relmax(a, b, scale) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))) / max(scale, 1e-12))


def adam_replay(init: dict, grads: list[dict], lr: float, clip: float | None, dtype=np.float64,
                bc32: bool = False) -> list[dict]:
    """optax.adam (and min(1, clip / (norm + 1e-6)) clipping over all gradients) in numpy at ``dtype``;
    ``bc32``: the bias corrections ``1 - b^t`` rounded as optax computes them without x64 (float32)."""
    p = {n: init[n].astype(dtype) for n in grads[0]}
    m = {n: np.zeros_like(v) for n, v in p.items()}
    v = {n: np.zeros_like(x) for n, x in p.items()}
    out = []
    for t, g in enumerate(grads, 1):
        g = {n: x.astype(dtype) for n, x in g.items()}
        if clip:
            norm = np.sqrt(sum(np.sum(x.astype(np.float64) ** 2) for x in g.values()))
            s = min(1.0, clip / (norm + 1e-6))
            g = {n: x * dtype(s) for n, x in g.items()}
        for n in p:
            m[n] = B1 * m[n] + (1 - B1) * g[n]
            v[n] = B2 * v[n] + (1 - B2) * g[n] ** 2
            if bc32:
                c1 = float(np.float32(1) - np.float32(B1) ** np.float32(t))
                c2 = float(np.float32(1) - np.float32(B2) ** np.float32(t))
            else:
                c1, c2 = 1 - B1 ** t, 1 - B2 ** t
            mh, vh = m[n] / c1, v[n] / c2
            p[n] = p[n] - lr * mh / (np.sqrt(vh) + EPS)
        out.append({n: x.copy() for n, x in p.items()})
    return out


def optimizer_only(init: dict, grads: list[dict], lr: float, clip: float | None) -> dict:
    """Same float32 gradients through torch Adam (fused) + torch's clip vs optax.adam + the reference's clip."""
    import jax.numpy as jnp
    import optax
    import torch

    names = list(grads[0])
    tp = [torch.nn.Parameter(torch.from_numpy(init[n].astype(np.float32).copy())) for n in names]
    opt = torch.optim.Adam(tp, lr=lr, fused=True)
    jp = {n: jnp.asarray(init[n].astype(np.float32)) for n in names}
    tx = optax.adam(lr)
    st = tx.init(jp)
    worst = 0.0
    for g in grads:
        for p, n in zip(tp, names):
            p.grad = torch.from_numpy(g[n].astype(np.float32).copy())
        jg = {n: jnp.asarray(g[n].astype(np.float32)) for n in names}
        if clip:
            torch.nn.utils.clip_grad_norm_(tp, clip, foreach=True)
            s = jnp.minimum(1.0, clip / (optax.global_norm(jg) + 1e-6))
            jg = {n: x * s for n, x in jg.items()}
        opt.step()
        up, st = tx.update(jg, st, jp)
        jp = optax.apply_updates(jp, up)
        for p, n in zip(tp, names):
            a, b = p.detach().numpy(), np.asarray(jp[n])
            worst = max(worst, relmax(a, b, float(np.max(np.abs(b)))))
    return {"torch_fused_adam_vs_optax_f32_same_grads": worst}


def analyse_case(name: str, c32: dict, c64: dict, cfg: dict, optimizer_check: bool) -> dict:
    lr, clip = cfg["lr"], cfg.get("grad_clip")
    ups32, ups64 = c32["updates"], c64["updates"]
    params = []
    for u32, u64 in zip(ups32, ups64):
        row = {"ours32_vs_jax32": 0.0, "ours32_vs_truth": 0.0, "jax32_vs_truth": 0.0, "ours64_vs_truth": 0.0}
        for n, truth in u64["param_ref"].items():
            s = float(np.max(np.abs(truth)))
            row["ours32_vs_jax32"] = max(row["ours32_vs_jax32"],
                                         relmax(u32["param_ours"][n], u32["param_ref"][n],
                                                float(np.max(np.abs(u32["param_ref"][n])))))
            row["ours32_vs_truth"] = max(row["ours32_vs_truth"], relmax(u32["param_ours"][n], truth, s))
            row["jax32_vs_truth"] = max(row["jax32_vs_truth"], relmax(u32["param_ref"][n], truth, s))
            row["ours64_vs_truth"] = max(row["ours64_vs_truth"], relmax(u64["param_ours"][n], truth, s))
        params.append(row)

    gerr = []  # per (update, tensor): max and rms of |g32 - g64| / max|g64|, ours and JAX
    for u32, u64 in zip(ups32, ups64):
        for n, g64 in u64["grad_ref"].items():
            s = float(np.max(np.abs(g64)))
            eo, ej = np.abs(u32["grad_ours"][n] - g64) / s, np.abs(u32["grad_ref"][n] - g64) / s
            gerr.append((eo.max(), ej.max(), np.sqrt(np.mean(eo ** 2)), np.sqrt(np.mean(ej ** 2))))
    gerr = np.array(gerr)
    grads = {"max_err_ours32": float(gerr[:, 0].max()), "max_err_jax32": float(gerr[:, 1].max()),
             "median_rms_err_ratio_ours_over_jax": float(np.median(gerr[:, 2] / gerr[:, 3])),
             "fraction_of_tensors_ours_max_err_larger": float(np.mean(gerr[:, 0] > gerr[:, 1]))}

    replay = {}
    for side in ("ours", "ref"):  # the reference's optax (no x64) rounds its bias corrections to float32
        rp = adam_replay(c32["init"], [u[f"grad_{side}"] for u in ups32], lr, clip, bc32=side == "ref")
        replay[f"adam64_on_{side}32_grads_vs_{side}32"] = max(
            relmax(r[n], u[f"param_{side}"][n], float(np.max(np.abs(u[f"param_{side}"][n]))))
            for r, u in zip(rp, ups32) for n in r)
    # control: the same replay without optax's float32 bias corrections does not reproduce JAX's parameters
    rp = adam_replay(c32["init"], [u["grad_ref"] for u in ups32], lr, clip)
    control = max(relmax(r[n], u["param_ref"][n], float(np.max(np.abs(u["param_ref"][n]))))
                  for r, u in zip(rp, ups32) for n in r)
    truth_rp = adam_replay(c64["init"], [u["grad_ref"] for u in ups64], lr, clip)
    replay["adam64_on_truth_grads_vs_truth"] = max(
        relmax(r[n], u["param_ref"][n], float(np.max(np.abs(u["param_ref"][n])))) for r, u in zip(truth_rp, ups64)
        for n in r)

    last32, last64 = ups32[-1], ups64[-1]
    trainable = list(ups32[0]["grad_ours"])
    excess, elems = [], []
    for n in trainable:
        truth = last64["param_ref"][n]
        s = float(np.max(np.abs(truth)))
        po, pj = last32["param_ours"][n], last32["param_ref"][n]
        d = np.abs(po.astype(np.float64) - pj) / float(np.max(np.abs(pj)))
        eo, ej = np.abs(po - truth) / s, np.abs(pj - truth) / s
        g64 = np.stack([u["grad_ref"][n] for u in ups64])
        rerr = {side: np.abs(np.stack([u[f"grad_{side}"][n] for u in ups32]) - g64) / np.maximum(np.abs(g64), 1e-30)
                for side in ("ours", "ref")}
        elems.append((rerr["ours"].max(0).ravel(), eo.ravel(), rerr["ref"].max(0).ravel(), ej.ravel()))
        gmax = np.max(np.abs(g64), axis=tuple(range(1, g64.ndim)))
        scales = [u.get("clip_scale_ref", 1.0) for u in ups64]
        for idx in zip(*np.nonzero(d > 1e-5)):
            excess.append({
                "tensor": n, "index": [int(i) for i in idx], "ours32_vs_jax32": float(d[idx]),
                "ours32_vs_truth": float(eo[idx]), "jax32_vs_truth": float(ej[idx]),
                "grad_rel_err_ours32": [float(x) for x in rerr["ours"][(slice(None), *idx)]],
                "grad_rel_err_jax32": [float(x) for x in rerr["ref"][(slice(None), *idx)]],
                "grad_over_tensor_max": [float(abs(g64[(t, *idx)]) / gmax[t]) for t in range(len(ups64))],
                "adam_input_over_eps": [float(abs(g64[(t, *idx)]) * scales[t] / EPS) for t in range(len(ups64))]})
    excess.sort(key=lambda e: -e["ours32_vs_jax32"])
    out = {"case": name, "lr": lr, "control_adam64_exact_bias_correction_on_ref32_grads_vs_ref32": control, "grad_clip": clip, "params_per_update": params, "grads_vs_truth": grads,
           "adam_replay": replay,
           "n_excess_elements": len(excess),
           "n_trainable_elements": int(sum(np.size(c32["init"][n]) for n in trainable)),
           "excess_tensors": sorted({e["tensor"] for e in excess}), "excess": excess[:20]}
    if optimizer_check:
        out["optimizer_only"] = optimizer_only(c32["init"], [u["grad_ref"] for u in ups32], lr, clip)
    return out, elems


def bins(elems) -> list[dict]:
    ro = np.concatenate([e[0] for e in elems])
    eo = np.concatenate([e[1] for e in elems])
    rj = np.concatenate([e[2] for e in elems])
    ej = np.concatenate([e[3] for e in elems])
    rows = []
    for lo, hi in zip(BIN_EDGES[:-1], BIN_EDGES[1:]):
        mo, mj = (ro >= lo) & (ro < hi), (rj >= lo) & (rj < hi)
        rows.append({"grad_rel_err": [lo, None if np.isinf(hi) else hi],
                     "n_ours": int(mo.sum()), "max_param_err_ours32": float(eo[mo].max()) if mo.any() else None,
                     "n_jax": int(mj.sum()), "max_param_err_jax32": float(ej[mj].max()) if mj.any() else None})
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--f32", type=Path, required=True, help="parity.py --dtype float32 --dump file")
    ap.add_argument("--f64", type=Path, required=True, help="parity.py --dtype float64 --dump file")
    ap.add_argument("--json32", type=Path, default=REPO / "results/parity/parity.json")
    ap.add_argument("--torch-site", default=None)
    ap.add_argument("--out", type=Path, default=REPO / "results/parity/parity_rounding.json")
    args = ap.parse_args(argv)
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    if args.torch_site:
        sys.path.append(args.torch_site)
    cfgs = {c["case"]: c["reference_config"] for c in json.loads(args.json32.read_text())["cases"]}
    d32, d64 = split(np.load(args.f32)), split(np.load(args.f64))
    cases, elems = [], []
    for name in d32:
        r, e = analyse_case(name, d32[name], d64[name], cfgs[name], optimizer_check=True)
        cases.append(r)
        elems += e
        last = r["params_per_update"][-1]
        print(f"{name:20s} ours-jax {last['ours32_vs_jax32']:.1e}  ours-truth {last['ours32_vs_truth']:.1e}  "
              f"jax-truth {last['jax32_vs_truth']:.1e}  ours64-truth {last['ours64_vs_truth']:.1e}  "
              f"replay {max(r['adam_replay'].values()):.1e}  opt-only "
              f"{r['optimizer_only']['torch_fused_adam_vs_optax_f32_same_grads']:.1e}  excess {r['n_excess_elements']}",
              flush=True)
    out = {"command": "python benchmarks/parity/rounding.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "truth": "reference (JAX) in float64 on the same float32-generated inputs",
           "metric": "max|a - b| / max|truth| per tensor, max over tensors; ours32_vs_jax32 as parity.json",
           "cases": cases, "bins": bins(elems)}
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out["bins"], indent=0))


if __name__ == "__main__":
    main()
