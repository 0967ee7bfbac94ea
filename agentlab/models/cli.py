"""``agentlab mbrl``: model-based RL diagnostics."""

from __future__ import annotations

from pathlib import Path

import click

from agentlab.errors import UserError


@click.group()
def mbrl() -> None:
    """Model-based RL diagnostics (objective mismatch).

    \b
    PETS itself is trained with `agentlab train pets`:
      agentlab train pets --env agentlab/CartpoleSwingup-v0 --steps 3000 --out runs/pets
      agentlab train pets --env Pendulum-v1 --steps 1000 --preset small \\
          --set reweight=expert --set ess_target=0.5 --out runs/pets-rw
    """


@mbrl.command(context_settings={"show_default": True})
@click.option("--env", "env_id", default="agentlab/CartpoleSwingup-v0",
              help="task with known dynamics: agentlab/CartpoleSwingup-v0 or Pendulum-v1")
@click.option("--seeds", type=int, default=3, help="seeds (each trains 8 models; epochs vary with the seed)")
@click.option("--preset", type=click.Choice(["smoke", "small", "full"]), default="small",
              help="pets config preset for models and controller")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="override a pets config value")
@click.option("--onpolicy-episodes", type=int, default=6, help="PETS episodes collected as on-policy data")
@click.option("--expert-episodes", type=int, default=3, help="oracle expert episodes (the last one is held out)")
@click.option("--grid-size", type=int, default=2000, help="uniform grid transitions for training and evaluation")
@click.option("--out", "out_dir", type=click.Path(), required=True, help="directory for mismatch.md/.csv/.png")
def mismatch(env_id: str, seeds: int, preset: str, overrides: tuple[str, ...], onpolicy_episodes: int,
             expert_episodes: int, grid_size: int, out_dir: str) -> None:
    """Correlation between model NLL (expert / on-policy / grid data) and controller return."""
    import torch

    from agentlab.agents.pets import ALGORITHM, PETSConfig
    from agentlab.config import resolve_config
    from agentlab.envs import make_env
    from agentlab.models.mismatch import cached_oracle, mismatch_points, write_mismatch_report
    from agentlab.models.tasks import get_task

    if seeds < 1:
        raise UserError("--seeds must be at least 1")
    if onpolicy_episodes < 3:
        raise UserError("--onpolicy-episodes must be at least 3 (random, training stages, held-out episode)")
    if expert_episodes < 2:
        raise UserError("--expert-episodes must be at least 2 (one is held out for evaluation)")
    if grid_size < 10:
        raise UserError("--grid-size must be at least 10")
    make_env(env_id).close()
    task = get_task(env_id)
    if task.true_dynamics is None:
        raise UserError(f"the mismatch diagnostic needs known dynamics; {env_id!r} has none "
                        "(use agentlab/CartpoleSwingup-v0 or Pendulum-v1)")
    cfg = resolve_config(PETSConfig, None, overrides, preset=ALGORITHM.presets.get(preset))
    torch.manual_seed(0)
    expert = cached_oracle(env_id, expert_episodes, 4242, cfg.oracle_horizon, cfg.oracle_population)
    click.echo(f"oracle expert return {expert['returns'].mean():.1f} over {expert_episodes} episodes")
    points = []
    for seed in range(seeds):
        click.echo(f"seed {seed}")
        points += mismatch_points(env_id, cfg, seed, onpolicy_episodes, expert, grid_size, log=click.echo)
    caption = (f"Objective mismatch on {env_id}: {len(points)} models, preset {preset}, seeds {seeds}, "
               f"{onpolicy_episodes} on-policy episodes, oracle expert return {expert['returns'].mean():.1f}.")
    for p in write_mismatch_report(points, Path(out_dir), name="mismatch", caption=caption):
        click.echo(f"wrote {p}")


@mbrl.command(context_settings={"show_default": True})
@click.option("--env", "env_id", default="agentlab/CartpoleSwingup-v0",
              help="task with known dynamics: agentlab/CartpoleSwingup-v0 or Pendulum-v1")
@click.option("--source", type=click.Choice(["grid", "random", "mixture"]), default="grid",
              help="training data: uniform state-action grid, random-action episodes, or half oracle-expert")
@click.option("--sizes", default="250,500,1000,2000", help="comma-separated dataset sizes (nested)")
@click.option("--seeds", type=int, default=2)
@click.option("--ess", "ess_target", type=float, default=0.5,
              help="sigma rule: weights' effective sample size as a fraction of the data")
@click.option("--preset", type=click.Choice(["smoke", "small", "full"]), default="small")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="override a pets config value")
@click.option("--out", "out_dir", type=click.Path(), required=True, help="directory for fixed.md and mismatch.*")
def fixed(env_id: str, source: str, sizes: str, seeds: int, ess_target: float, preset: str,
          overrides: tuple[str, ...], out_dir: str) -> None:
    """Re-weighting on fixed datasets: plain vs expert re-weighted NLL, same data, same controller."""
    from agentlab.agents.pets import ALGORITHM, PETSConfig
    from agentlab.config import resolve_config
    from agentlab.models.mismatch import cached_oracle, write_mismatch_report
    from agentlab.models.reweight import fixed_dataset_points, paired_summary
    from agentlab.models.tasks import get_task
    from agentlab.runs import atomic_write_text

    try:
        ns = [int(x) for x in sizes.split(",") if x.strip()]
    except ValueError:
        raise UserError(f"--sizes must be comma-separated integers, got {sizes!r}") from None
    if not ns or min(ns) < 10:
        raise UserError("--sizes must list sizes of at least 10")
    if seeds < 1:
        raise UserError("--seeds must be at least 1")
    if not 0 < ess_target < 1:
        raise UserError("--ess must be in (0, 1)")
    if get_task(env_id).true_dynamics is None:
        raise UserError(f"fixed-dataset re-weighting needs known dynamics; {env_id!r} has none "
                        "(use agentlab/CartpoleSwingup-v0 or Pendulum-v1)")
    cfg = resolve_config(PETSConfig, None, overrides, preset=ALGORITHM.presets.get(preset))
    expert = cached_oracle(env_id, 3, 4242, cfg.oracle_horizon, cfg.oracle_population)
    points = []
    for seed in range(seeds):
        for n in ns:
            points += fixed_dataset_points(env_id, cfg, seed, n, source, expert, ess_target, log=click.echo)
    lines = ["| transitions | seeds | plain | re-weighted | paired diff | wins | sigma | ESS/N |", "|" + "---|" * 8]
    for r in paired_summary(points):
        lines.append(f"| {r['n_train']} | {r['seeds']} | {r['plain']:.1f} | {r['reweighted']:.1f} | {r['diff']:+.1f} | "
                     f"{r['wins']}/{r['seeds']} | {r['sigma']:.3g} | {r['ess_frac']:.2f} |")
    out = Path(out_dir)
    atomic_write_text(out / "fixed.md", "\n".join(lines) + "\n")
    click.echo("\n".join(lines))
    write_mismatch_report(points, out, name="mismatch", caption=f"Fixed-dataset models on {env_id} ({source}).")
