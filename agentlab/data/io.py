"""Reading and writing datasets: D4RL-format HDF5, NPZ, Minari's local store.

D4RL semantics: files hold ``observations, actions, rewards, terminals`` (+ ``timeouts``,
``next_observations``, ``infos/*``, ``metadata/*`` in v2 files). When ``next_observations`` is
missing it is built from ``observations[i + 1]`` and the transition at a timeout (whose successor
is the next episode's first state) is dropped, exactly as ``d4rl.qlearning_dataset`` does (that
function also drops the last transition of the file).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from agentlab.data.dataset import CORE_KEYS, Dataset
from agentlab.data.dataset import dataset_dir  # noqa: F401 - re-exported
from agentlab.errors import UserError

REQUIRED_KEYS = ("observations", "actions", "rewards", "terminals")


def _meta_value(v: Any) -> Any:
    if isinstance(v, bytes):
        v = v.decode()
    if isinstance(v, str):
        # save_d4rl stores lists, dicts and None as JSON text
        if v == "null" or (v[:1] in "[{" and v[-1:] in "]}"):
            try:
                return json.loads(v)
            except ValueError:
                return v
        return v
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist() if v.size > 1 else v.item()
    return v


def _row_gather(keep: np.ndarray) -> Any:
    """``gather(arr, shift=0, inplace=False)`` = ``arr[np.flatnonzero(keep) + shift]``.

    Dropped rows (timeouts) are sparse, so the kept rows form long runs. Copying whole runs runs at
    memcpy speed (3-4x faster than a fancy-index gather); with ``inplace`` the runs are moved left
    inside ``arr`` itself (a freshly read array we own) and a view of the front is returned, so no
    new array is allocated at all: on a 1M-transition file that allocation (page faults) costs more
    than the read itself."""
    dropped = np.flatnonzero(~keep)
    n_keep = int(keep.sum())
    if len(dropped) > len(keep) // 50:
        idx = np.flatnonzero(keep)
        return lambda arr, shift=0, inplace=False: arr.take(idx + shift, 0)
    starts = np.concatenate([[0], dropped + 1])
    ends = np.concatenate([dropped, [len(keep)]])
    runs = [(int(a), int(b)) for a, b in zip(starts, ends) if b > a]

    def gather(arr: np.ndarray, shift: int = 0, inplace: bool = False) -> np.ndarray:
        if inplace and shift == 0 and arr.flags.writeable and arr.flags.c_contiguous:
            dst = 0
            for a, b in runs:
                if dst != a:
                    arr[dst:dst + b - a] = arr[a:b]  # dst < a: overlapping moves are handled by numpy
                dst += b - a
            return arr[:n_keep]
        if not runs:
            return arr[:0]
        return np.concatenate([arr[a + shift:b + shift] for a, b in runs], 0)

    return gather


def _from_arrays(arrays: dict[str, np.ndarray], metadata: dict[str, Any], source: str,
                 drop_invalid: bool = False, owns_arrays: bool = False) -> Dataset:
    for key in REQUIRED_KEYS:
        if key not in arrays:
            raise UserError(f"{source}: required key {key!r} is missing (has: {', '.join(sorted(arrays))})")
    n = len(arrays["observations"])
    for key in REQUIRED_KEYS + tuple(k for k in ("timeouts", "next_observations") if k in arrays):
        if len(arrays[key]) != n:
            raise UserError(f"{source}: arrays have different lengths (observations {n}, {key} {len(arrays[key])})")
    obs = np.asarray(arrays["observations"], dtype=np.float32)
    terminals = np.asarray(arrays["terminals"]).astype(bool).reshape(-1)
    timeouts = np.asarray(arrays.get("timeouts", np.zeros(n, bool))).astype(bool).reshape(-1)
    extras = {k: np.asarray(v) for k, v in arrays.items() if k not in CORE_KEYS and len(v) == n}
    actions = np.asarray(arrays["actions"], dtype=np.float32)
    rewards = np.asarray(arrays["rewards"], dtype=np.float32).reshape(-1)
    if "next_observations" in arrays:
        # every row kept as stored: no copies
        ds_arrays = dict(observations=obs, actions=actions, rewards=rewards,
                         next_observations=np.asarray(arrays["next_observations"], dtype=np.float32),
                         terminals=terminals, timeouts=timeouts)
    else:
        # qlearning_dataset: s' = obs[i+1]; drop timeout transitions and the final row.
        if n <= 1:
            raise UserError(f"{source}: too few transitions to build next_observations")
        keep = ~timeouts
        keep[-1] = False
        # the transition before a dropped timeout now ends its episode
        prev_of_drop = np.flatnonzero(~keep[:-1]) - 1
        prev_of_drop = prev_of_drop[prev_of_drop >= 0]
        timeouts = timeouts.copy()
        timeouts[prev_of_drop] = ~terminals[prev_of_drop]
        gather = _row_gather(keep)
        # s' first (it reads obs before obs is compacted); then arrays read from the file, which
        # we own, are compacted in place; the caller's arrays are never modified
        owned = owns_arrays  # (arrays converted by asarray above are copies, also ours)
        next_obs = gather(obs, 1)
        ds_arrays = dict(observations=gather(obs, inplace=owned), actions=gather(actions, inplace=owned),
                         rewards=gather(rewards, inplace=owned), next_observations=next_obs,
                         terminals=gather(terminals), timeouts=gather(timeouts))
        extras = {k: gather(v, inplace=owned) for k, v in extras.items()}
    ds = Dataset(**ds_arrays, metadata=dict(metadata), extras=extras)
    ds = ds.checked(source, drop_invalid)
    ds.metadata.setdefault("source", source)
    return ds


def read_hdf5(path: str | Path, drop_invalid: bool = False) -> Dataset:
    import h5py

    path = Path(path)
    if not path.is_file():
        raise UserError(f"dataset file not found: {path}")
    try:
        f = h5py.File(path, "r")
    except OSError:
        raise UserError(f"{path} is not a readable HDF5 file") from None
    arrays: dict[str, np.ndarray] = {}
    metadata: dict[str, Any] = {}
    with f:
        def visit(name: str, obj: Any) -> None:
            if isinstance(obj, h5py.Dataset):
                if name.startswith("metadata/"):
                    metadata[name[len("metadata/"):]] = _meta_value(obj[()])
                elif obj.shape != ():
                    arrays[name] = obj[()]
        f.visititems(visit)
        for k, v in f.attrs.items():
            metadata.setdefault(k, _meta_value(v))
        if "metadata" in f:
            for k, v in f["metadata"].attrs.items():
                metadata[k] = _meta_value(v)
    if "metadata_json" in metadata:
        metadata.update(json.loads(metadata.pop("metadata_json")))
    metadata.setdefault("format", "agentlab" if metadata.get("generator") else "d4rl")
    if "dataset_name" not in metadata:
        metadata["dataset_name"] = path.stem
    return _from_arrays(arrays, metadata, str(path), drop_invalid, owns_arrays=True)


def read_npz(path: str | Path, drop_invalid: bool = False) -> Dataset:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"dataset file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception:  # noqa: BLE001 - any unreadable archive is a user problem
        raise UserError(f"{path} is not a readable NPZ file") from None
    metadata: dict[str, Any] = {"dataset_name": path.stem, "format": "npz"}
    if "metadata_json" in arrays:
        metadata.update(json.loads(str(arrays.pop("metadata_json"))))
    return _from_arrays(arrays, metadata, str(path), drop_invalid)


def save_d4rl(dataset: Dataset, path: str | Path) -> Path:
    """Write a D4RL-format HDF5 file (same keys and dtypes as D4RL v2), atomically.

    Keys: ``observations`` (float32), ``actions`` (float32), ``rewards`` (float32),
    ``next_observations`` (float32), ``terminals`` (bool), ``timeouts`` (bool), extras as their own
    datasets (``infos/qpos`` etc.), metadata as scalar datasets under ``metadata/``.
    """
    import h5py

    from agentlab.runs import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("observations", data=dataset.observations.astype(np.float32), compression=None)
            f.create_dataset("actions", data=dataset.actions.astype(np.float32))
            f.create_dataset("rewards", data=dataset.rewards.astype(np.float32))
            f.create_dataset("next_observations", data=dataset.next_observations.astype(np.float32))
            f.create_dataset("terminals", data=dataset.terminals.astype(bool))
            f.create_dataset("timeouts", data=dataset.timeouts.astype(bool))
            for key, arr in dataset.extras.items():
                f.create_dataset(key, data=arr)
            for key, value in dataset.metadata.items():
                if isinstance(value, (dict, list, tuple)) or value is None:
                    value = json.dumps(value)
                f.create_dataset(f"metadata/{key}", data=value)
        os.chmod(tmp, 0o644)  # the temporary file is private (0600); a dataset is for everyone to read
    return path


def read_minari(dataset_id: str, drop_invalid: bool = False) -> Dataset:
    """A Minari dataset from the local store (``$MINARI_DATASETS_PATH``), never downloading."""
    root = Path(os.environ.get("MINARI_DATASETS_PATH", Path.home() / ".minari" / "datasets"))
    if not (root / dataset_id / "data").is_dir():
        raise UserError(f"minari dataset {dataset_id!r} is not on disk (looked in {root / dataset_id}); "
                        "agentlab never downloads - place it there or set MINARI_DATASETS_PATH")
    import minari

    try:
        md = minari.load_dataset(dataset_id, download=False)
    except Exception as e:  # noqa: BLE001
        raise UserError(f"cannot load minari dataset {dataset_id!r}: {str(e).splitlines()[0]}") from None
    obs, acts, rews, nobs, terms, touts = [], [], [], [], [], []
    for ep in md.iterate_episodes():
        o = ep.observations
        if isinstance(o, dict):
            o = np.concatenate([np.asarray(o[k]).reshape(len(ep.rewards) + 1, -1) for k in sorted(o)], 1)
        o = np.asarray(o, dtype=np.float32).reshape(len(ep.rewards) + 1, -1)
        obs.append(o[:-1])
        nobs.append(o[1:])
        acts.append(np.asarray(ep.actions, dtype=np.float32).reshape(len(ep.rewards), -1))
        rews.append(np.asarray(ep.rewards, dtype=np.float32))
        terms.append(np.asarray(ep.terminations, bool))
        t = np.asarray(ep.truncations, bool).copy()
        if not t[-1] and not terms[-1][-1]:
            t[-1] = True  # every episode ends somewhere
        touts.append(t)
    if not obs:
        raise UserError(f"minari dataset {dataset_id!r} has no episodes")
    meta: dict[str, Any] = {"dataset_name": dataset_id, "format": "minari", "source": f"minari:{dataset_id}"}
    spec = md.spec
    env_spec = getattr(spec, "env_spec", None)
    if env_spec is not None:
        meta["env_id"] = env_spec.id
    # Minari keeps the reference returns in the storage metadata (0-1 scale there; ours is 0-100)
    stored = dict(getattr(getattr(md, "storage", None), "metadata", {}) or {})
    ref_min = stored.get("ref_min_score", getattr(spec, "ref_min_score", None))
    ref_max = stored.get("ref_max_score", getattr(spec, "ref_max_score", None))
    if ref_min is not None and ref_max is not None:
        meta["ref_min_score"], meta["ref_max_score"] = float(ref_min), float(ref_max)
    cat = np.concatenate
    return _from_arrays(dict(observations=cat(obs), actions=cat(acts), rewards=cat(rews), next_observations=cat(nobs),
                             terminals=cat(terms), timeouts=cat(touts)), meta, f"minari:{dataset_id}", drop_invalid)


def resolve_path(spec: str) -> Path | None:
    """A dataset name from our directory (``NAME`` or ``NAME.hdf5``) or an explicit path."""
    p = Path(spec).expanduser()
    if p.exists():
        return p
    for cand in (dataset_dir() / spec, dataset_dir() / f"{spec}.hdf5", dataset_dir() / f"{spec}.npz"):
        if cand.is_file():
            return cand
    return None


def load(spec: str | Path, drop_invalid: bool = False) -> Dataset:
    """Load a dataset from a path (``.hdf5``/``.h5``/``.npz``), a name in the dataset directory,
    ``minari:ID`` (Minari's local store) or ``ogbench:ENV_NAME`` (an OGBench single-task dataset,
    :mod:`agentlab.data.ogbench`)."""
    spec = str(spec)
    if spec.startswith("minari:"):
        return read_minari(spec[len("minari:"):], drop_invalid)
    if spec.startswith("ogbench:"):
        from agentlab.data.ogbench import load as load_ogbench

        return load_ogbench(spec[len("ogbench:"):], drop_invalid)
    path = resolve_path(spec)
    if path is None:
        raise UserError(f"dataset not found: {spec!r} (not a file, and not in {dataset_dir()}; "
                        "make one with `agentlab data make NAME`)")
    if path.is_dir():
        raise UserError(f"{path} is a directory, not a dataset file")
    with open(path, "rb") as f:
        magic = f.read(8)
    if magic.startswith(b"PK"):  # NPZ = zip archive
        return read_npz(path, drop_invalid)
    if magic != b"\x89HDF\r\n\x1a\n":
        raise UserError(f"{path} is neither an HDF5 nor an NPZ file")
    return read_hdf5(path, drop_invalid)


def check_against_env(dataset: Dataset, env_id: str, atol: float = 1e-4) -> None:
    """Dataset and environment dimensions agree; actions lie inside the action space."""
    from agentlab.envs import env_spaces

    obs_space, act_space = env_spaces(env_id)
    if obs_space.shape is not None and tuple(obs_space.shape) != (dataset.obs_dim,):
        raise UserError(f"dataset observations have dimension {dataset.obs_dim} but {env_id} observations have "
                        f"shape {tuple(obs_space.shape)}")
    if act_space.shape is not None and tuple(act_space.shape) != (dataset.act_dim,):
        raise UserError(f"dataset actions have dimension {dataset.act_dim} but {env_id} actions have shape "
                        f"{tuple(act_space.shape)}")
    low, high = getattr(act_space, "low", None), getattr(act_space, "high", None)
    if low is not None:
        outside = int(((dataset.actions < low - atol) | (dataset.actions > high + atol)).any(1).sum())
        if outside:
            raise UserError(f"{outside} dataset actions lie outside {env_id}'s action space "
                            f"[{float(np.min(low))}, {float(np.max(high))}]")
