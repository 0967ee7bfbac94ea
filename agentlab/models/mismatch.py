r"""The objective-mismatch diagnostic (Lambert et al., 2020): does a lower one-step NLL mean a
better controller?

For one task and seed, :func:`mismatch_points` builds data sources -- uniform random actions,
on-policy PETS data at several stages of learning, oracle-expert trajectories, mixtures, and
uniform "grid" samples of the state-action box labelled by the true dynamics -- trains one
ensemble per training set (the number of epochs varies with the seed: early stopping, or a fixed
small/medium count), and records for every model

* its Gaussian NLL (per dimension, raw units, elite members) on three held-out evaluation sets:
  expert transitions, on-policy transitions (the last PETS episode, never trained on) and grid
  samples;
* the return of the CEM controller that plans with it (one episode, fixed evaluation seed).

:func:`correlations` gives Pearson and Spearman coefficients between each NLL and the return over
all models. A strongly *negative* coefficient means "lower NLL, higher return" (no mismatch); the
paper's observation is that this is weak or absent, especially on data the controller does not
visit.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agentlab.files import exclusive_lock
from agentlab.agents.pets import PETSConfig, PETSRunner, oracle_expert
from agentlab.models.dynamics import EnsembleTrainer, GaussianEnsemble
from agentlab.models.tasks import get_task, grid_states

EVAL_SETS = ("expert", "onpolicy", "grid")


def cached_oracle(env_id: str, episodes: int, seed: int, horizon: int, population: int) -> dict[str, np.ndarray]:
    """``oracle_expert`` cached on disk (``$AGENTLAB_CACHE`` or ``~/.cache/agentlab/mbrl``) behind a
    file lock, so parallel reproduce workers compute it once."""
    import os

    root = Path(os.environ.get("AGENTLAB_CACHE", Path.home() / ".cache" / "agentlab")) / "mbrl"
    root.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha1(json.dumps([env_id, episodes, seed, horizon, population, 2]).encode()).hexdigest()[:12]
    path = root / f"oracle_{env_id.replace('/', '_')}_{key}.npz"
    with exclusive_lock(root / f".{path.name}.lock"):
        if not path.is_file():
            data = oracle_expert(env_id, episodes, seed, horizon, population)
            tmp = path.with_suffix(".tmp.npz")
            np.savez(tmp, **data)
            tmp.replace(path)
        with np.load(path) as f:
            return {k: f[k] for k in f.files}


def _subset(src: dict[str, np.ndarray], mask: np.ndarray | None = None) -> dict[str, np.ndarray]:
    keys = ("observations", "actions", "next_observations", "rewards")
    return {k: src[k] if mask is None else src[k][mask] for k in keys}


def _concat(*parts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _t(d: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.as_tensor(np.asarray(v, dtype=np.float32)) for k, v in d.items()}


def mismatch_points(env_id: str, cfg: PETSConfig, seed: int, onpolicy_episodes: int = 6,
                    expert: dict[str, np.ndarray] | None = None, grid_size: int = 2000,
                    log: Any = None) -> list[dict[str, Any]]:
    """Train the models of one seed and return one record per model (NLLs, return, provenance)."""
    from agentlab.seeding import evaluation_seed
    from agentlab.evaluation import evaluate
    from agentlab.policy import Policy

    task = get_task(env_id)
    if task.true_dynamics is None or task.grid is None:
        from agentlab.errors import UserError

        raise UserError(f"the mismatch diagnostic needs known dynamics for grid data; {env_id!r} has none "
                        "(use agentlab/CartpoleSwingup-v0 or Pendulum-v1)")
    log = log or (lambda *_: None)
    # 1. on-policy data: a plain PETS run; its episodes are the stages (episode 0 is random)
    runner = PETSRunner(dataclasses.replace(cfg, reweight="none"), env_id, seed)
    for _ in range(onpolicy_episodes):
        info = runner.run_episode()
        log(f"  on-policy episode {runner.episodes}: return {info['train/episode_return']:.1f}")
    buf = runner.buf
    stream = {"observations": buf["obs"], "actions": buf["act"], "next_observations": buf["next_obs"],
              "rewards": buf["rew"]}
    ep = buf["episode"]
    last = ep.max()
    # 2. expert data: training part and evaluation part (the last expert episode)
    if expert is None:
        expert = oracle_expert(env_id, 3, evaluation_seed(0) + 77, cfg.oracle_horizon, cfg.oracle_population)
    n_exp = len(expert["rewards"])
    ep_len = n_exp // max(len(expert["returns"]), 1)
    exp_train = _subset(expert, np.arange(n_exp) < n_exp - ep_len)
    exp_eval = _subset(expert, np.arange(n_exp) >= n_exp - ep_len)
    # 3. grid data labelled by the true dynamics
    g = torch.Generator().manual_seed(10_000 + seed)
    gobs, gact = grid_states(task, 2 * grid_size, g)
    gnext = task.true_dynamics(gobs, gact)
    grew = task.reward(gobs, gact, gnext)
    grid_all = {"observations": gobs.numpy(), "actions": gact.numpy(), "next_observations": gnext.numpy(),
                "rewards": grew.numpy()}
    grid_train = {k: v[:grid_size] for k, v in grid_all.items()}
    grid_eval = {k: v[grid_size:] for k, v in grid_all.items()}
    eval_sets = {"expert": _t(exp_eval), "onpolicy": _t(_subset(stream, ep == last)), "grid": _t(grid_eval)}
    # 4. training sets
    stage = lambda k: _subset(stream, ep <= k)  # noqa: E731
    train_sets = {
        "random": _subset(stream, ep == 0),
        "onpolicy_early": stage(min(1, last - 1)),
        "onpolicy_mid": stage(max(1, (last - 1) // 2 + 1)),
        "onpolicy_late": stage(last - 1),
        "expert": exp_train,
        "expert+random": _concat(exp_train, _subset(stream, ep == 0)),
        "expert+onpolicy_early": _concat(exp_train, stage(min(1, last - 1))),
        "grid": grid_train,
    }
    epochs = [None, 3, 10][seed % 3]  # None: held-out early stopping (capped at cfg.max_epochs)
    spaces = runner.spaces
    points = []
    for i, (name, d) in enumerate(train_sets.items()):
        torch.manual_seed(1000 * seed + i)
        model = GaussianEnsemble(runner.agent.obs_dim, runner.agent.act_dim, members=cfg.members, hidden=cfg.hidden,
                                 activation=cfg.activation, learn_reward=runner.agent.learn_reward,
                                 num_elites=cfg.num_elites)
        trainer = EnsembleTrainer(model, lr=cfg.lr, weight_decay=cfg.weight_decay, batch_size=cfg.batch_size,
                                  holdout_ratio=cfg.holdout_ratio, patience=cfg.patience, max_epochs=cfg.max_epochs)
        td = _t(d)
        trainer.fit(td["observations"], td["actions"], td["next_observations"], td["rewards"],
                    generator=torch.Generator().manual_seed(seed * 100 + i), max_epochs=epochs,
                    early_stopping=epochs is None)
        nll = {s: model.gaussian_nll(e["observations"], e["actions"], e["next_observations"], e["rewards"])
               for s, e in eval_sets.items()}
        agent = runner.agent.__class__(dataclasses.replace(cfg, reweight="none"), spaces)
        agent.model.load_state_dict(model.state_dict())
        res = evaluate(Policy(agent), env_id, 1, evaluation_seed(seed) + i)
        points.append({"seed": seed, "train_set": name, "epochs": "early-stop" if epochs is None else epochs,
                       "n_train": len(d["rewards"]), "return": res["return_mean"],
                       **{f"nll_{s}": v for s, v in nll.items()}})
        log(f"  model {name} ({points[-1]['epochs']} epochs): return {res['return_mean']:.1f}, "
            + ", ".join(f"NLL {s} {v:.2f}" for s, v in nll.items()))
    return points


def correlations(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pearson and Spearman correlation (with p-values) between each NLL and the return."""
    from scipy import stats

    ret = np.array([p["return"] for p in points], dtype=float)
    rows = []
    for s in EVAL_SETS:
        nll = np.array([p[f"nll_{s}"] for p in points], dtype=float)
        ok = np.isfinite(nll) & np.isfinite(ret)
        if ok.sum() < 3 or np.ptp(nll[ok]) == 0 or np.ptp(ret[ok]) == 0:
            rows.append({"eval_set": s, "n": int(ok.sum()), "pearson": float("nan"), "pearson_p": float("nan"),
                         "spearman": float("nan"), "spearman_p": float("nan")})
            continue
        pr = stats.pearsonr(nll[ok], ret[ok])
        sr = stats.spearmanr(nll[ok], ret[ok])
        rows.append({"eval_set": s, "n": int(ok.sum()), "pearson": float(pr[0]), "pearson_p": float(pr[1]),
                     "spearman": float(sr[0]), "spearman_p": float(sr[1])})
    return rows


def write_mismatch_report(points: list[dict[str, Any]], out_dir: str | Path, *, name: str, caption: str,
                          meta_header: str = "") -> list[Path]:
    """``NAME.md`` (correlation table + per-model list), ``NAME.csv`` (points), ``NAME.png`` (scatter)."""
    import csv
    import io

    from agentlab.runs import atomic_path, atomic_write_text

    out = Path(out_dir)
    rows = correlations(points)
    lines = [f"# {name}", "", caption, "", meta_header, "",
             "| NLL evaluated on | models | Pearson r (p) | Spearman rho (p) |", "|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['eval_set']} | {r['n']} | {r['pearson']:.2f} ({r['pearson_p']:.2g}) | "
                     f"{r['spearman']:.2f} ({r['spearman_p']:.2g}) |")
    lines += ["", "Negative = lower NLL goes with higher return. Models:", "",
              "| seed | training set | epochs | transitions | return | " + " | ".join(f"NLL {s}" for s in EVAL_SETS)
              + " |", "|---|---|---|---|---|" + "---|" * len(EVAL_SETS)]
    for p in sorted(points, key=lambda p: -p["return"]):
        lines.append(f"| {p['seed']} | {p['train_set']} | {p['epochs']} | {p['n_train']} | {p['return']:.1f} | "
                     + " | ".join(f"{p[f'nll_{s}']:.2f}" for s in EVAL_SETS) + " |")
    written = []
    md = out / f"{name}.md"
    atomic_write_text(md, "\n".join(lines) + "\n")
    written.append(md)
    buf = io.StringIO()
    keys = list(points[0])
    w = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    w.writeheader()
    w.writerows(points)
    p_csv = out / f"{name}.csv"
    atomic_write_text(p_csv, buf.getvalue())
    written.append(p_csv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(EVAL_SETS), figsize=(4 * len(EVAL_SETS), 3.4), squeeze=False)
    names = sorted({p["train_set"] for p in points})
    colors = {n: plt.cm.tab10(i % 10) for i, n in enumerate(names)}
    for ax, s, r in zip(axes[0], EVAL_SETS, rows):
        for n in names:
            pts = [p for p in points if p["train_set"] == n]
            x = np.clip([p[f"nll_{s}"] for p in pts], None, 1e3)
            ax.scatter(x, [p["return"] for p in pts], color=colors[n], s=18, label=n)
        ax.set_xscale("symlog")
        ax.set_xlabel(f"NLL on {s} data")
        ax.set_title(f"{s}: Pearson {r['pearson']:.2f}, Spearman {r['spearman']:.2f}", fontsize=9)
    axes[0][0].set_ylabel("controller return")
    axes[0][-1].legend(fontsize=6, loc="best")
    fig.tight_layout()
    p_png = out / f"{name}.png"
    with atomic_path(p_png) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    written.append(p_png)
    return written
