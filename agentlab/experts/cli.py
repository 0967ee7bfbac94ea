"""``agentlab experts train|collect|list``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


from agentlab.errors import UserError
from agentlab.experts.levels import expert_levels
from agentlab.experts.rollout import collect
from agentlab.experts.store import ALGOS, experts_root, list_experts, load_expert
from agentlab.experts.train import train_expert


# -- CLI -----------------------------------------------------------------------------------------
def _cli() -> Any:
    import click

    @click.group()
    def experts() -> None:
        """Train expert policies (SB3 PPO/SAC, cached in $AGENTLAB_DATA/experts) and collect demonstrations."""

    @experts.command()
    @click.option("--env", "env_id", required=True, help="environment id, e.g. Hopper-v5 or dmc/walker-walk")
    @click.option("--algo", type=click.Choice(ALGOS), default="ppo", show_default=True)
    @click.option("--steps", type=int, help="environment steps (default: ppo 1M, sac 100k)")
    @click.option("--seed", type=int, default=0, show_default=True)
    @click.option("--force", is_flag=True, help="delete a cached expert and train from scratch")
    @click.option("--levels/--no-levels", default=True, show_default=True,
                  help="afterwards measure reference returns and choose the medium snapshot")
    def train(env_id: str, algo: str, steps: int | None, seed: int, force: bool, levels: bool) -> None:
        """Train (or resume) the expert for ENV; a finished one is reused."""
        path = train_expert(env_id, algo, steps, seed, force, log=click.echo)
        if levels:
            lv = expert_levels(env_id, algo, seed, log=click.echo)
            click.echo(f"ref_min {lv['ref_min_score']:.1f}, ref_max {lv['ref_max_score']:.1f}, "
                       f"medium snapshot {lv['medium_snapshot']} ({lv['medium_return']:.1f})")
        click.echo(f"expert: {path}")

    @experts.command("collect")
    @click.option("--env", "env_id", required=True)
    @click.option("--episodes", type=int, required=True)
    @click.option("--out", type=click.Path(), required=True, help="output D4RL-format HDF5 file")
    @click.option("--seed", type=int, default=0, show_default=True)
    @click.option("--algo", type=click.Choice(ALGOS), help="which cached expert (default: any finished one)")
    @click.option("--stochastic", is_flag=True, help="sample actions instead of the deterministic mean")
    @click.option("--force", is_flag=True, help="overwrite --out if it exists")
    def collect_cmd(env_id: str, episodes: int, out: str, seed: int, algo: str | None, stochastic: bool,
                    force: bool) -> None:
        """Roll out the cached expert for ENV and write the episodes as a D4RL-format HDF5 file."""
        if Path(out).exists() and not force:
            raise UserError(f"{out} exists; pass --force to overwrite it")
        if episodes < 1:
            raise UserError("--episodes must be at least 1")
        pol = load_expert(env_id, algo)
        ds = collect(pol, env_id, episodes, seed, out, deterministic=not stochastic)
        click.echo(f"wrote {out}: {len(ds)} transitions, {episodes} episodes, "
                   f"return {ds.metadata['expert_return_mean']:.1f} +- {ds.metadata['expert_return_std']:.1f}")

    @experts.command("list")
    @click.option("--json", "as_json", is_flag=True)
    def list_cmd(as_json: bool) -> None:
        """Cached experts with their training progress."""
        rows = list_experts()
        if as_json:
            click.echo(json.dumps(rows, indent=2))
            return
        click.echo(f"experts directory: {experts_root()}")
        for r in rows:
            state = "done" if r["finished"] else f"partial ({r['steps']}/{r['target_steps']})"
            ref = f", expert return {r['ref_max_score']:.1f}" if r["ref_max_score"] is not None else ""
            click.echo(f"  {r['env_id']:<24} {r['algo']:<12} seed {r['seed']}  {state}{ref}")

    return experts


experts_cli = _cli()

if __name__ == "__main__":  # python -m agentlab.experts.cli
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    experts_cli()
