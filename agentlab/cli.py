"""The ``agentlab`` command line (click).

Groups: ``envs``, ``data``, ``train``, ``eval``, ``monitor``, ``reproduce`` (+ ``experts``, ``mbrl``).
Method modules add their own groups through :data:`COMMAND_MODULES` (imported lazily, so
``agentlab --help`` does not import torch-heavy modules). Every user mistake raises
:class:`agentlab.errors.UserError`, printed here as one line with exit code 2.
"""

from __future__ import annotations

import importlib
import json
import sys
from typing import Any

import click

from agentlab import __version__
from agentlab.errors import UserError
from agentlab.options import RunOptions

#: command name -> "module:attribute" of a click command or group defined by a method module
COMMAND_MODULES: dict[str, str] = {
    "data": "agentlab.data.cli:data",
    "mbrl": "agentlab.models.cli:mbrl",
    "monitor": "agentlab.monitors.cli:monitor",
    "experts": "agentlab.experts:experts_cli",
}

_HELP = {
    "data": "Make, list and describe offline datasets (D4RL HDF5, NPZ, Minari).",
    "monitor": "UCIP monitor: fit a QBM detector on trajectories, score episodes, report.",
    "experts": "Train expert policies (cached) and collect demonstrations.",
    "mbrl": "Model-based RL diagnostics (objective mismatch).",
}


class LazyGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UserError as e:
            click.echo(f"error: {e}", err=True)
            ctx.exit(UserError.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted: a run with a checkpoint continues with --resume (one stopped before its first "
                       "checkpoint is removed)", err=True)
            ctx.exit(130)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMAND_MODULES))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in COMMAND_MODULES:
            module, _, attr = COMMAND_MODULES[name].partition(":")
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            if name in COMMAND_MODULES:
                rows.append((name, _HELP.get(name, "")))
            else:
                cmd = super().get_command(ctx, name)
                rows.append((name, cmd.get_short_help_str(80) if cmd else ""))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="agentlab")
def cli() -> None:
    """agentlab: offline RL (FiDec, FQL, BC-flow), adversarial imitation (AILBoost, DAC),
    model-based RL (PETS + objective-mismatch re-weighting), target-based surrogate optimisation
    (SSO) and agent monitoring (UCIP), on Gymnasium and PyTorch.

    \b
    Typical session:
      agentlab data make pointmaze-umaze
      agentlab train fidec --dataset pointmaze-umaze --env agentlab/pointmaze-umaze-v0 \\
          --steps 20000 --out runs/fidec-umaze
      agentlab eval runs/fidec-umaze --episodes 20
      agentlab reproduce offline --budget small --seeds 3
    """


def echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, default=float))


# -- envs ----------------------------------------------------------------------------------------
@cli.group()
def envs() -> None:
    """List registered environments and check them against Gymnasium's API."""


@envs.command("list")
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
def envs_list(as_json: bool) -> None:
    """Registered environment ids with observation and action spaces."""
    from agentlab.envs import env_spaces, registered_ids

    rows = []
    for env_id in registered_ids():
        try:
            o, a = env_spaces(env_id)
            rows.append({"id": env_id, "observation_space": str(o), "action_space": str(a)})
        except Exception as e:  # noqa: BLE001 - an env that cannot be built is listed as such
            rows.append({"id": env_id, "observation_space": f"unavailable: {type(e).__name__}", "action_space": ""})
    if as_json:
        echo_json(rows)
        return
    from rich.console import Console
    from rich.table import Table

    t = Table("id", "observation space", "action space")
    for r in rows:
        t.add_row(r["id"], r["observation_space"], r["action_space"])
    Console(width=160).print(t)


@envs.command("check")
@click.argument("env_id")
def envs_check(env_id: str) -> None:
    """Run Gymnasium's check_env on ENV_ID."""
    import warnings

    from gymnasium.utils.env_checker import check_env

    from agentlab.envs import make_env

    env = make_env(env_id)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped, skip_render_check=True)
    env.close()
    for w in caught:
        click.echo(f"warning: {w.message}")
    click.echo(f"{env_id}: check_env passed")


_RUN_DEFAULTS = RunOptions()


# -- train / eval --------------------------------------------------------------------------------
@cli.command(context_settings={"show_default": True})
@click.argument("algo", required=False)
@click.option("--env", "env_id", help="environment id (evaluation, and online/imitation training)")
@click.option("--dataset", help="offline dataset: file, name in $AGENTLAB_DATA, minari:ID, or ogbench:ENV_NAME "
              "(e.g. ogbench:cube-single-play-singletask-task2-v0)")
@click.option("--demos", help="demonstrations file (imitation algorithms)")
@click.option("--num-demos", type=int, help="use the first N demonstration episodes")
@click.option("--steps", type=int, help="training steps (gradient steps offline, env steps online)")
@click.option("--seed", type=int, help=f"random seed [default: {_RUN_DEFAULTS.seed}]")
@click.option("--out", "out", type=click.Path(), help="run directory to create")
@click.option("--config", "config_file", type=click.Path(), help="YAML file with config values")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="override a config value (repeatable)")
@click.option("--preset", help="named config preset, e.g. small or smoke (default: full = reference values)")
@click.option("--optimizer", help="for algorithms with an optimizer choice (dagger): sso | adam | sgd "
              "(same as --set optimizer=NAME)")
@click.option("--device", help=f"auto | cpu | cuda [default: {_RUN_DEFAULTS.device}]")
@click.option("--eval-every", type=int, help="evaluate every N steps (needs --env; 0 = at the end) "
              f"[default: {_RUN_DEFAULTS.eval_every}]")
@click.option("--eval-episodes", type=int, help="episodes per evaluation (0 = no evaluation) "
              f"[default: {_RUN_DEFAULTS.eval_episodes}]")
@click.option("--checkpoint-every", type=int, help=f"0 = every steps/10 [default: {_RUN_DEFAULTS.checkpoint_every}]")
@click.option("--log-every", type=int, help=f"log a metrics row every N steps [default: {_RUN_DEFAULTS.log_every}]")
@click.option("--resume", "resume_dir", type=click.Path(), help="continue the run in this directory")
@click.option("--force", is_flag=True, help="overwrite an existing run directory")
@click.option("--tensorboard", is_flag=True, help="also write TensorBoard events")
@click.option("--help-config", is_flag=True, help="list ALGO's config keys with defaults and exit")
def train(algo: str | None, env_id: str | None, dataset: str | None, demos: str | None, num_demos: int | None,
          steps: int | None, seed: int | None, out: str | None, config_file: str | None, overrides: tuple[str, ...],
          optimizer: str | None, preset: str | None, device: str | None, eval_every: int | None,
          eval_episodes: int | None, checkpoint_every: int | None, log_every: int | None, resume_dir: str | None, force: bool, tensorboard: bool, help_config: bool) -> None:
    """Train ALGO and write a run directory (config.yaml, metrics.csv, model.pt, meta.json).

    \b
    Algorithms: bc, flow_bc, fql, fidec, deflow (offline, --dataset); sac (online, --env);
    dac, ailboost (imitation, --env --demos); pets (model-based, --env); dagger (--env).
    pets re-weighting: --set reweight=expert --set sigma=S (oracle expert, or --demos FILE).
    dagger: --optimizer sso|adam|sgd (SSO's inner loop: --set inner_steps=M --set inner=sgd-armijo).
    Examples:
      agentlab train fql --dataset hopper-medium --env Hopper-v5 --steps 100000 --out runs/fql
      agentlab train fidec ... --set target_divergence=0.005 --set hidden=[256,256]
      agentlab train --resume runs/fql --steps 200000   # extend; new --set values are applied
                                                        # and recorded in config.yaml / meta.json
    """
    from agentlab.agents import get_algorithm
    from agentlab.config import describe_config

    if help_config:
        if algo is None:
            raise UserError("--help-config needs an algorithm name")
        a = get_algorithm(algo)
        for name, typ, default, hlp in describe_config(a.config_cls):
            click.echo(f"{name} ({typ}, default {default!r}): {hlp}")
        if a.presets:
            click.echo(f"presets: {', '.join(a.presets)}")
        return
    from agentlab.training import train as run_training

    if resume_dir is None and out is None:
        raise UserError("--out RUN_DIR is required (or --resume RUN_DIR)")
    if resume_dir is not None and out is not None and resume_dir != out:
        raise UserError("pass either --out RUN_DIR (a new run) or --resume RUN_DIR, not both")
    if eval_every and env_id is None and resume_dir is None:
        raise UserError("--eval-every needs --env")
    if optimizer is not None:
        if algo is None or "optimizer" not in {f[0] for f in describe_config(get_algorithm(algo).config_cls)}:
            raise UserError(f"--optimizer applies to algorithms with an optimizer choice (dagger), not {algo!r}")
        overrides = (*overrides, f"optimizer={optimizer}")
    final = run_training(algo, resume_dir or out, steps=steps, seed=seed, env_id=env_id, dataset=dataset, demos=demos,
                         num_demos=num_demos, config_file=config_file, overrides=overrides, preset=preset,
                         device=device, resume=resume_dir is not None, force=force, tensorboard=tensorboard,
                         eval_every=eval_every, eval_episodes=eval_episodes, checkpoint_every=checkpoint_every,
                         log_every=log_every)
    shown = {k: round(v, 4) for k, v in (final or {}).items() if k.startswith(("eval/", "train/"))}
    click.echo(f"run written to {resume_dir or out}: " + ", ".join(f"{k}={v}" for k, v in shown.items()))


@cli.command("eval")
@click.argument("run_dir", type=click.Path())
@click.option("--episodes", type=int, default=10, show_default=True)
@click.option("--env", "env_id", help="override the run's environment")
@click.option("--seed", type=int, default=12345, show_default=True, help="first evaluation episode seed")
@click.option("--device", default="cpu", show_default=True)
@click.option("--stochastic", is_flag=True, help="sample actions instead of the deterministic mean")
@click.option("--json", "as_json", is_flag=True)
def eval_cmd(run_dir: str, episodes: int, env_id: str | None, seed: int, device: str, stochastic: bool,
             as_json: bool) -> None:
    """Evaluate a trained run: mean return and, with reference scores, the normalised score (0-100)."""
    from pathlib import Path

    import agentlab
    from agentlab.agents import load_agent  # noqa: F401  (validates the run directory first)
    from agentlab.config import load_yaml
    from agentlab.evaluation import evaluate
    from agentlab.runs import CONFIG_FILE

    p = Path(run_dir)
    if not (p / CONFIG_FILE).is_file():
        raise UserError(f"{run_dir} is not a run directory (no {CONFIG_FILE})")
    saved = load_yaml(p / CONFIG_FILE)
    opts = saved.get("run", {})
    env_id = env_id or opts.get("env_id")
    if env_id is None:
        raise UserError("this run has no environment; pass --env ENV_ID")
    policy = agentlab.load(run_dir, device=device, deterministic=not stochastic)
    ref = None
    ds_spec = opts.get("dataset") or opts.get("demos")
    if ds_spec:
        try:
            from agentlab.data import load

            ref = load(ds_spec).metadata
        except UserError:
            ref = None
    res = evaluate(policy, env_id, episodes, seed, ref)
    res["success_percent"] = 100.0 * res["success_rate"]  # OGBench's scale (0-100)
    res["env_id"] = env_id
    res["algo"] = saved.get("algo")
    if as_json:
        echo_json(res)
        return
    line = f"{saved.get('algo')} on {env_id}: return {res['return_mean']:.2f} +- {res['return_std']:.2f} " \
           f"over {episodes} episodes"
    if "normalized_score" in res:
        line += f", normalised score {res['normalized_score']:.1f}"
    if env_id.startswith("ogbench/") or res["success_rate"] > 0:  # goal-reaching tasks report success
        line += f", success {res['success_percent']:.1f}%"
    click.echo(line)


# -- reproduce -----------------------------------------------------------------------------------
@cli.command(context_settings={"show_default": True})
@click.argument("table")
@click.option("--budget", type=click.Choice(["smoke", "small", "full"]), default="smoke")
@click.option("--seeds", type=int, default=3)
@click.option("--backend", type=click.Choice(["local", "ray"]), default="local")
@click.option("--workers", type=int, default=1, help="parallel processes for the local backend")
@click.option("--address", help="Ray cluster address (auto, or ray://HOST:PORT); default starts a local Ray")
@click.option("--gpus-per-run", type=float, default=0.0)
@click.option("--cpus-per-run", type=float, default=1.0)
@click.option("--retries", type=int, default=0, help="re-run failed Ray tasks up to N times")
@click.option("--out", "out_dir", type=click.Path(), help="output directory (default results/TABLE/BUDGET)")
@click.option("--only", multiple=True, help="run only these algorithms or tasks (repeatable); the report "
              "still covers every stored run")
@click.option("--report-only", is_flag=True, help="run nothing: rewrite the report from the stored runs")
@click.option("--runs-per-process", type=int, default=1,
              help="train up to N runs that differ only by seed in one process, every gradient step of all of "
              "them as one vectorised update (offline tables; pays on a GPU, not on a CPU: BENCHMARKS.md)")
def reproduce(table: str, budget: str, seeds: int, backend: str, workers: int, address: str | None,
              gpus_per_run: float, cpus_per_run: float, retries: int, out_dir: str | None,
              only: tuple[str, ...], report_only: bool, runs_per_process: int) -> None:
    """Run a result TABLE (resumable: finished runs are skipped) and write TABLE.md/.csv/.png.

    Tables: offline, imitation, mbrl, sso, ucip (and `agentlab reproduce list`)."""
    from agentlab.reproduce import TABLES
    from agentlab.reproduce.runner import run_table

    if table == "list":
        for name in sorted(TABLES):
            click.echo(name)
        return
    summary = run_table(table, budget, seeds, out_dir, backend, workers, address, gpus_per_run, cpus_per_run,
                        retries, only or None, report_only=report_only, log=click.echo,
                        runs_per_process=runs_per_process)
    for p in summary["written"]:
        click.echo(f"wrote {p}")
    if summary["errors"]:
        click.echo(f"error: {len(summary['errors'])} runs failed (see {summary['out_dir']}/errors.json)", err=True)
        sys.exit(1)


def main() -> None:
    cli(prog_name="agentlab")


if __name__ == "__main__":
    main()
