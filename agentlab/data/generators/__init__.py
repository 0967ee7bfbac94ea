"""Dataset generators: ``agentlab data make NAME`` writes ``$AGENTLAB_DATA/NAME.hdf5`` (D4RL format).

* ``pointmaze-{umaze,medium,large}[-dense]``: D4RL maze2d-style data from a grid planner and a
  noisy PD waypoint controller (:mod:`agentlab.data.generators.pointmaze`); no training.
* ``{hopper,halfcheetah,walker2d}-{random,medium,expert,medium-replay,medium-expert}``: D4RL
  locomotion-style data from one cached stable-baselines3 PPO training run per environment
  (:mod:`agentlab.data.generators.locomotion`, :mod:`agentlab.experts`).

* ``ogbench/{cube-single,cube-double,scene,puzzle-3x3}-{play,noisy}-v0``,
  ``ogbench/pointmaze-{medium,large}-navigate-v0``: OGBench datasets regenerated with OGBench's own
  oracles in OGBench's ``.npz`` layout (``NAME.npz`` + ``NAME-val.npz`` in ``$AGENTLAB_DATA/ogbench/``;
  :mod:`agentlab.data.generators.ogbench_gen`), sized in episodes (``--episodes``), not transitions.

Every HDF5 file carries its provenance and reference scores under ``metadata/`` (``env_id``,
``generator``, ``seed``, ``size``, ``ref_min_score``, ``ref_max_score``, how they were measured).
"""

from __future__ import annotations

import dataclasses
import difflib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agentlab.errors import UserError


@dataclasses.dataclass(frozen=True)
class Generator:
    name: str
    description: str
    default_size: int | None  # None: the generator decides (medium-replay keeps the whole buffer)
    build: Callable[..., Any]  # build(size, seed, log) -> Dataset


def _maze(maze: str, dense: bool) -> Generator:
    from agentlab.data.generators import pointmaze

    default = pointmaze.DEFAULT_SIZE[maze]

    def build(size: int, seed: int, log: Any) -> Any:
        return pointmaze.make(maze, dense, size, seed, log)

    kind = "dense" if dense else "sparse"
    return Generator(f"pointmaze-{maze}{'-dense' if dense else ''}",
                     f"maze2d-style planner+PD controller to random targets, {kind} reward "
                     f"({default // 1000}k transitions)", default, build)


def _loco(env: str, level: str) -> Generator:
    from agentlab.data.generators import locomotion

    default = locomotion.DEFAULT_SIZE[level]

    def build(size: int | None, seed: int, log: Any) -> Any:
        return locomotion.make(env, level, size, seed, log)

    what = {"random": "uniform random actions", "medium": "PPO snapshot at ~1/3 of expert return",
            "expert": "final PPO policy", "medium-replay": "PPO rollouts up to the medium snapshot",
            "medium-expert": "medium + expert"}[level]
    size_s = f"{default // 1000}k transitions" if default else "all"
    return Generator(f"{env}-{level}", f"{locomotion.ENV_IDS[env]}: {what} ({size_s}; trains the expert if needed)",
                     default, build)


def _ogbench(name: str) -> Generator:
    from agentlab.data.generators import ogbench_gen

    spec = ogbench_gen.SPECS[name]

    def build(size: int | None, seed: int, log: Any) -> Any:
        raise UserError(f"ogbench/{name} is written by make_dataset(..., episodes=N) as OGBench .npz files")

    oracle = {"play": "plan oracle", "noisy": "Markov oracle + noise", "navigate": "subgoal-direction oracle"}
    return Generator(f"ogbench/{name}", f"OGBench {spec.env_name}, {oracle[spec.dataset_type]} "
                     f"({spec.episodes} x {ogbench_gen.EPISODE_STEPS} steps + {spec.episodes // 10}-episode -val)",
                     spec.official_transitions, build)


def _all() -> dict[str, Generator]:
    from agentlab.data.generators import locomotion, ogbench_gen, pointmaze

    gens = [_maze(m, d) for m in pointmaze.MAZE_STEPS for d in (False, True)]
    gens += [_loco(e, lv) for e in locomotion.ENV_IDS for lv in locomotion.LEVELS]
    gens += [_ogbench(n) for n in ogbench_gen.SPECS]
    return {g.name: g for g in gens}


GENERATORS: dict[str, Generator] = _all()


def make_dataset(name: str, size: int | None = None, seed: int = 0, out: str | Path | None = None,
                 force: bool = False, log: Any = print, episodes: int | None = None, workers: int = 1) -> Path:
    """Generate dataset ``name`` and write it as D4RL-format HDF5; returns the file path.

    An existing output file is an error unless ``force`` (nothing is touched before the new file is
    complete: it is written to a temporary file and renamed). ``ogbench/NAME`` datasets are sized by
    ``episodes`` (default: the official count), made by ``workers`` processes, resumable, and written as
    OGBench ``.npz`` files into the directory ``out`` (default ``$AGENTLAB_DATA/ogbench``)."""
    import agentlab
    from agentlab.data.io import dataset_dir, save_d4rl
    from agentlab.runs import git_sha

    if name.startswith("ogbench/"):
        from agentlab.data.generators import ogbench_gen

        if size is not None:
            raise UserError("ogbench/ datasets are sized in episodes: pass --episodes N, not --size")
        out_dir = Path(out) if out is not None else dataset_dir() / "ogbench"
        if out_dir.suffix in (".npz", ".hdf5", ".h5"):
            raise UserError(f"--out for an ogbench/ dataset is a directory (got {out_dir})")
        return ogbench_gen.make(name[len("ogbench/"):], out_dir, episodes=episodes, workers=workers, seed=seed,
                                force=force, log=log)[0]
    if episodes is not None:
        raise UserError("--episodes applies to ogbench/ datasets only; use --size (transitions)")
    if name not in GENERATORS:
        close = difflib.get_close_matches(name, list(GENERATORS), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else " (see `agentlab data list`)"
        raise UserError(f"unknown dataset {name!r}{hint}")
    if size is not None and size < 2:
        raise UserError(f"--size must be at least 2 (got {size})")
    gen = GENERATORS[name]
    path = Path(out) if out is not None else dataset_dir() / f"{name}.hdf5"
    if path.suffix not in (".hdf5", ".h5"):
        raise UserError(f"output {path} must end in .hdf5 or .h5 (D4RL format)")
    if path.exists() and not force:
        raise UserError(f"{path} already exists; pass --force to overwrite it")
    if path.is_dir():
        raise UserError(f"{path} is a directory")
    t0 = time.perf_counter()
    ds = gen.build(size if size is not None else gen.default_size, seed, log)
    ds.metadata.update({"dataset_name": name, "generator": f"agentlab.data.generators:{name}", "seed": seed,
                        "size": len(ds), "requested_size": size if size is not None else gen.default_size,
                        "agentlab_version": agentlab.__version__, "git_sha": git_sha(),
                        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                        "generation_time_s": round(time.perf_counter() - t0, 2)})
    ds.metadata.setdefault("format", "agentlab")
    save_d4rl(ds, path)
    return path


__all__ = ["GENERATORS", "Generator", "make_dataset"]
