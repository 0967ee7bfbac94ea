"""``agentlab data``: make, list and describe datasets."""

from __future__ import annotations

import json

import click
import numpy as np

from agentlab.errors import UserError


@click.group()
def data() -> None:
    """Make, list and describe offline datasets (D4RL HDF5, NPZ, Minari local store)."""


@data.command()
@click.argument("spec")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@click.option("--drop-invalid", is_flag=True, help="drop rows with NaN/Inf instead of refusing the file")
@click.option("--env", "env_id", help="also check dimensions and action bounds against this env")
def info(spec: str, as_json: bool, drop_invalid: bool, env_id: str | None) -> None:
    """Describe a dataset: SPEC is a path, a name in $AGENTLAB_DATA, minari:ID or ogbench:ENV_NAME."""
    from agentlab.data import check_against_env, load

    ds = load(spec, drop_invalid=drop_invalid)
    if env_id:
        check_against_env(ds, env_id)
    out = ds.stats()
    out["keys"] = sorted(["observations", "actions", "rewards", "next_observations", "terminals", "timeouts",
                          *ds.extras])
    out["source"] = ds.metadata.get("source", spec)
    out["metadata"] = {k: v for k, v in ds.metadata.items() if k != "source"}
    if as_json:
        click.echo(json.dumps(out, indent=2, default=str))
        return
    for k, v in out.items():
        if k == "metadata":
            for mk, mv in v.items():
                click.echo(f"  metadata/{mk}: {mv}")
        else:
            click.echo(f"{k}: {v}")


@data.command("list")
@click.option("--json", "as_json", is_flag=True)
def list_cmd(as_json: bool) -> None:
    """Datasets agentlab can make, and those already in the dataset directory."""
    from agentlab.data import dataset_dir

    try:
        from agentlab.data.generators import GENERATORS
    except ImportError:
        GENERATORS = {}
    root = dataset_dir()
    on_disk = sorted(p.name for p in root.glob("*") if p.suffix in (".hdf5", ".h5", ".npz")) if root.is_dir() else []
    og = root / "ogbench"
    rows = [{"name": n, "on_disk": any(f.startswith(n + ".") for f in on_disk)
             or (n.startswith("ogbench/") and (og / f"{n[len('ogbench/'):]}.npz").is_file()),
             "description": getattr(g, "description", "")} for n, g in sorted(GENERATORS.items())]
    if as_json:
        click.echo(json.dumps({"dataset_dir": str(root), "makeable": rows, "on_disk": on_disk}, indent=2))
        return
    click.echo(f"dataset directory: {root}")
    for r in rows:
        click.echo(f"  {'*' if r['on_disk'] else ' '} {r['name']:<28} {r['description']}")
    extra = [f for f in on_disk if not any(f.startswith(r["name"] + ".") for r in rows)]
    for f in extra:
        click.echo(f"  * {f}")
    click.echo("(* = on disk)")


@data.command()
@click.argument("name")
@click.option("--size", type=int, help="number of transitions (default: the generator's CPU-sized default)")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(), help="output file (default: $AGENTLAB_DATA/NAME.hdf5)")
@click.option("--force", is_flag=True, help="overwrite an existing file")
@click.option("--episodes", type=int, help="ogbench/ datasets: training episodes (default: the official count; "
              "the -val file gets a tenth)")
@click.option("--workers", type=int, default=1, show_default=True, help="ogbench/ datasets: parallel processes")
def make(name: str, size: int | None, seed: int, out: str | None, force: bool, episodes: int | None,
         workers: int) -> None:
    """Generate dataset NAME (see `agentlab data list`): D4RL-format HDF5, or for ogbench/NAME the
    OGBench .npz pair NAME.npz + NAME-val.npz (resumable: rerun the same command after an interruption)."""
    from agentlab.data.generators import make_dataset

    path = make_dataset(name, size=size, seed=seed, out=out, force=force, episodes=episodes, workers=workers)
    if name.startswith("ogbench/"):
        with np.load(path) as z:
            m = json.loads(str(z["metadata_json"]))
        click.echo(f"wrote {path} (+ -val): {m['episodes']} episodes, {m['rows']} steps = {m['transitions']} "
                   f"transitions; oracle success {m['oracle_success_rate']:.1f}% of {m['oracle_subtasks']} "
                   f"sub-tasks; {m['generation_time_s']:.0f} s")
        return
    from agentlab.data import load

    s = load(str(path)).stats()
    click.echo(f"wrote {path}: {s['transitions']} transitions, {s['episodes']} episodes, "
               f"return mean {s['return_mean']:.2f}" + (f", normalised {s['normalized_return_mean']:.1f}"
                                                         if "normalized_return_mean" in s else ""))


__all__ = ["UserError", "data"]
