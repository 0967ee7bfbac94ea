"""``agentlab monitor``: generate agent trajectories, fit a UCIP detector, score episodes, report."""

from __future__ import annotations

import json
from pathlib import Path

import click

from agentlab.errors import UserError


@click.group()
def monitor() -> None:
    """UCIP monitor: fit a QBM detector on trajectories, score episodes, report."""


def _load_trajectories(path: str):
    from agentlab.data import load

    ds = load(path)
    if ds.num_episodes() == 0 or len(ds) == 0:
        raise UserError(f"{path}: no episodes in the trajectory file")
    return ds


@monitor.command()
@click.option("--family", "families", multiple=True, required=True,
              help="typeA, typeB, random, mimicry, highentropy, cyclic or alpha=X (repeatable)")
@click.option("--episodes", type=int, default=10, show_default=True, help="episodes per agent")
@click.option("--agents", "agents_per_family", type=int, default=1, show_default=True,
              help="agents per family (training seeds SEED*1000+k)")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--size", type=int, default=10, show_default=True, help="grid size N (N x N)")
@click.option("--layout-seed", type=int, default=0, show_default=True)
@click.option("--horizon", type=int, default=100, show_default=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="output HDF5 (D4RL format)")
def agents(families, episodes, agents_per_family, seed, size, layout_seed, horizon, out) -> None:
    """Write trajectories of optimised gridworld agents (labels, agent_id, family_id, alpha per step)."""
    from agentlab.data import save_d4rl
    from agentlab.monitors.agents import generate, parse_family

    fams = [f.strip() for spec in families for f in spec.split(",") if f.strip()]
    for f in fams:
        parse_family(f)
    if size < 5:
        raise UserError(f"--size must be >= 5, got {size}")
    if agents_per_family < 1 or horizon < 1:
        raise UserError("--agents and --horizon must be >= 1")
    ds = generate(fams, episodes, seed, size=size, layout_seed=layout_seed, horizon=horizon,
                  agents_per_family=agents_per_family)
    save_d4rl(ds, out)
    click.echo(f"wrote {ds.num_episodes()} episodes ({len(ds)} steps) of {', '.join(fams)} to {out}")


@monitor.command()
@click.option("--trajectories", required=True, type=click.Path(), help="D4RL-format HDF5 trajectories")
@click.option("--labels-key", default="labels", show_default=True, help="per-transition label array (1 = continuation interest)")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="detector file to write")
@click.option("--encoder", type=click.Choice(["grid", "generic"]), default=None,
              help="grid (ContinuationGrid features) or generic (PCA + median binarisation); default: grid if it fits")
@click.option("--model", type=click.Choice(["qbm", "qbm_product", "bm", "rbm", "pca", "ae"]), default="qbm", show_default=True)
@click.option("--n-visible", type=int, default=8, show_default=True, help="visible units (generic encoder)")
@click.option("--n-hidden", type=int, default=6, show_default=True, help="hidden qubits (exact up to 12)")
@click.option("--gamma", type=float, default=0.5, show_default=True, help="transverse field")
@click.option("--statistic", type=click.Choice(["mi", "entropy"]), default="mi", show_default=True)
@click.option("--steps", type=int, default=None, help="training steps (default 150)")
@click.option("--bound", is_flag=True, help="Golden-Thompson bound training (allows n_hidden > 12)")
@click.option("--calibration-fraction", type=float, default=0.5, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or auto")
def fit(trajectories, labels_key, out, encoder, model, n_visible, n_hidden, gamma, statistic, steps, bound,
        calibration_fraction, seed, device) -> None:
    """Fit a detector: model on the fitting split, thresholds on the calibration split."""
    from agentlab.monitors.encoders import GRID_OBS_DIM
    from agentlab.monitors.qbm import EXACT_LIMIT
    from agentlab.monitors.ucip import fit_detector
    from agentlab.nn import get_device
    from agentlab.runs import seed_everything

    if n_hidden > EXACT_LIMIT and not bound:
        raise UserError(f"--n-hidden {n_hidden} exceeds the exact limit {EXACT_LIMIT}; pass --bound for "
                        "Golden-Thompson training")
    if not 0.0 < calibration_fraction < 1.0:
        raise UserError("--calibration-fraction must be in (0, 1)")
    dev = str(get_device(device))
    seed_everything(seed)
    ds = _load_trajectories(trajectories)
    if encoder is None:
        encoder = "grid" if ds.obs_dim == GRID_OBS_DIM else "generic"
    det = fit_detector(ds, labels_key=labels_key, calibration_fraction=calibration_fraction, seed=seed,
                       encoder=encoder, model=model, n_v=n_visible, n_h=n_hidden, gamma=gamma, statistic=statistic,
                       device=dev, training="golden_thompson" if bound else "exact", steps=steps, allow_large=bound)
    det.save(out)
    th = ", ".join(f"{k}={v:.4g}" for k, v in det.thresholds.items())
    click.echo(f"fitted {model} ({encoder} encoder) in {det.info['fit_seconds']:.1f}s; "
               f"calibration balanced accuracy {det.info['calibration_balanced_accuracy']:.3f}; thresholds {th}; "
               f"wrote {out}")


def _records(det, ds, use_cache: bool = True) -> list[dict]:
    recs = det.score_dataset(ds, use_cache=use_cache)
    from agentlab.monitors.ucip import episode_table

    ep = episode_table(ds)
    for i, r in enumerate(recs):
        r["episode"] = i
        for key in ("labels", "agent_id", "family_id", "alpha"):
            if key in ep:
                v = ep[key][i]
                r[key if key != "labels" else "label"] = float(v) if key == "alpha" else int(v)
    return recs


@monitor.command()
@click.option("--detector", required=True, type=click.Path(), help="detector file from `monitor fit`")
@click.option("--trajectories", required=True, type=click.Path(), help="D4RL-format HDF5 trajectories")
@click.option("--json", "as_json", is_flag=True, help="print a JSON list")
@click.option("--no-cache", is_flag=True, help="recompute each step's state instead of using the pattern cache")
def score(detector, trajectories, as_json, no_cache) -> None:
    """Score each episode (file order): score, entropy, mutual information, criteria, flag."""
    from agentlab.monitors.ucip import Detector

    det = Detector.load(detector)
    ds = _load_trajectories(trajectories)
    recs = _records(det, ds, use_cache=not no_cache)
    if as_json:
        click.echo(json.dumps(recs, default=float))
        return
    click.echo(f"{'ep':>4} {'score':>8} {'S(A)':>7} {'I(A:B)':>7} {'EPS':>6} {'PRI':>6} {'SPI':>6} {'ACM':>6} {'len':>4} flag")
    for r in recs:
        click.echo(f"{r['episode']:>4} {r['score']:>8.4f} {r['entropy']:>7.4f} {r['mi']:>7.4f} {r['eps']:>6.3f} "
                   f"{r['pri']:>6.3f} {r['spi']:>6.3f} {r['acm']:>6.3f} {r['length']:>4} {int(r['flag'])}")


@monitor.command()
@click.option("--detector", required=True, type=click.Path())
@click.option("--trajectories", required=True, type=click.Path())
@click.option("--out", required=True, type=click.Path(file_okay=False), help="output directory")
def report(detector, trajectories, out) -> None:
    """Markdown summary + PNGs (per-family histograms, ROC, alpha sweep) for scored trajectories."""
    from agentlab.monitors import report as rp
    from agentlab.monitors.agents import FAMILIES
    from agentlab.monitors.ucip import Detector
    from agentlab.runs import atomic_write_text

    det = Detector.load(detector)
    ds = _load_trajectories(trajectories)
    recs = _records(det, ds)
    names = list(FAMILIES) + ["alpha"]
    for r in recs:
        if "family_id" in r:
            r["family"] = names[r["family_id"]]
        elif "label" in r:
            r["family"] = "typeA" if r["label"] == 1 else "typeB"
        else:
            r["family"] = "unlabelled"
        r["agent"] = r.get("agent_id", r["episode"])
        r["alpha"] = r.get("alpha", float("nan"))
    outp = Path(out)
    outp.mkdir(parents=True, exist_ok=True)
    s = rp.summarize_records(recs)
    pngs = [rp.plot_histograms(recs, outp / "hist_score.png", "score", "score per episode, by family"),
            rp.plot_histograms(recs, outp / "hist_mi.png", "mi", "I(A:B) per episode, by family"),
            rp.plot_histograms(recs, outp / "hist_entropy.png", "entropy", "S(rho_A) per episode, by family")]
    if any(r["family"] in ("typeA", "typeB") for r in recs):
        pngs.append(rp.plot_roc({det.info.get("model", "detector"): recs}, outp / "roc.png"))
    if any(r["family"] == "alpha" for r in recs):
        pngs.append(rp.plot_alpha({det.info.get("model", "detector"): recs}, outp / "alpha_sweep.png"))
    fams = sorted({r["family"] for r in recs})
    lines = ["# UCIP report\n", f"Detector `{detector}` ({det.info.get('model')}, {det.encoder.name} encoder, "
             f"statistic {det.protocol.statistic}); trajectories `{trajectories}` ({len(recs)} episodes).\n",
             "| family | episodes | mean score | mean S(rho_A) | mean I(A:B) | flagged |", "|---|---|---|---|---|---|"]
    for f in fams:
        rr = [r for r in recs if r["family"] == f]
        lines.append(f"| {f} | {len(rr)} | {sum(r['score'] for r in rr) / len(rr):.4f} | "
                     f"{sum(r['entropy'] for r in rr) / len(rr):.4f} | {sum(r['mi'] for r in rr) / len(rr):.4f} | "
                     f"{sum(r['flag'] for r in rr) / len(rr):.2f} |")
    if "auc" in s:
        lines.append(f"\nType A vs Type B: AUC {rp.fmt_ci(s['auc'], s['auc_ci'], 3)}, Delta "
                     f"{rp.fmt_ci(s['delta'], s['delta_ci'], 4)} (permutation p {rp.fmt_p(s['perm_p'])}), "
                     f"accuracy at the gate {s['accuracy']:.3f}.")
    if "alpha_r" in s:
        lines.append(f"\nalpha sweep: Pearson r {rp.fmt_ci(s['alpha_r'], s['alpha_r_ci'], 3)}.")
    lines.append("\nThresholds: " + ", ".join(f"{k} {v:.4g}" for k, v in det.thresholds.items()) + "\n")
    lines += [f"![{p.stem}]({p.name})" for p in pngs]
    atomic_write_text(outp / "report.md", "\n".join(lines) + "\n")
    click.echo(f"wrote {outp / 'report.md'} and {len(pngs)} figures")
