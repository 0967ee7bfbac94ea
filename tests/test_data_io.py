"""Dataset IO: D4RL round trip, qlearning_dataset semantics, NPZ, and every bad input the issue lists."""

from __future__ import annotations

import hashlib
import json

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from agentlab.cli import cli
from agentlab.data import Dataset, load, normalized_score, save_d4rl


def _random_dataset(n=50, obs_dim=3, act_dim=2, seed=0, **meta) -> Dataset:
    rng = np.random.default_rng(seed)
    obs = rng.standard_normal((n, obs_dim)).astype(np.float32)
    nobs = rng.standard_normal((n, obs_dim)).astype(np.float32)
    term = np.zeros(n, bool)
    tout = np.zeros(n, bool)
    term[19] = True
    tout[34] = True
    tout[-1] = True
    return Dataset(obs, rng.uniform(-1, 1, (n, act_dim)), rng.standard_normal(n), nobs, term, tout,
                   metadata={"env_id": "Hopper-v5", "ref_min_score": -1.0, "ref_max_score": 3.0, **meta},
                   extras={"infos/qpos": rng.standard_normal((n, 4)).astype(np.float32)})


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _invoke(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _assert_one_line_error(res, *needles):
    assert res.exit_code != 0, res.output
    lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, res.output
    assert lines[0].startswith("error: ")
    assert "Traceback" not in res.output
    for n in needles:
        assert n in lines[0], (n, lines[0])


# -- round trip and D4RL compatibility ------------------------------------------------------------
def test_round_trip_keeps_arrays_extras_and_metadata(tmp_path):
    ds = _random_dataset(meta_list=[1, 2], nested={"a": 1}, nothing=None, name="x")
    path = save_d4rl(ds, tmp_path / "d.hdf5")
    back = load(str(path))
    for key in ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts"):
        np.testing.assert_array_equal(getattr(back, key), getattr(ds, key))
    np.testing.assert_array_equal(back.extras["infos/qpos"], ds.extras["infos/qpos"])
    for k, v in ds.metadata.items():
        assert back.metadata[k] == v, k
    assert back.num_episodes() == 3
    assert normalized_score(back, [3.0])[0] == pytest.approx(100.0)


def test_written_file_has_d4rl_keys_and_dtypes(tmp_path):
    """What d4rl's get_dataset reads: top-level arrays with D4RL dtypes, rewards/terminals 1-D."""
    path = save_d4rl(_random_dataset(), tmp_path / "d.hdf5")
    with h5py.File(path, "r") as f:
        assert f["observations"].dtype == np.float32 and f["observations"].shape == (50, 3)
        assert f["actions"].dtype == np.float32
        assert f["rewards"].dtype == np.float32 and f["rewards"].shape == (50,)
        assert f["next_observations"].dtype == np.float32
        assert f["terminals"].dtype == np.bool_ and f["terminals"].shape == (50,)
        assert f["timeouts"].dtype == np.bool_
        assert f["infos/qpos"].shape == (50, 4)
        assert f["metadata/env_id"][()].decode() == "Hopper-v5"
        # d4rl.get_dataset loads every key with [:] and falls back to [()] for scalars
        keys = []
        f.visititems(lambda k, o: keys.append(k) if isinstance(o, h5py.Dataset) else None)
        for k in keys:
            try:
                f[k][:]
            except ValueError:
                f[k][()]


def test_timeouts_without_next_observations_follow_qlearning_dataset(tmp_path):
    """obs[i+1] becomes s'; the transition at a timeout and the file's last row are dropped."""
    obs = np.arange(10, dtype=np.float32)[:, None] * np.ones((1, 2), np.float32)
    acts = np.arange(10, dtype=np.float32)[:, None] / 10
    rews = np.arange(10, dtype=np.float32)
    term = np.zeros(10, bool)
    tout = np.zeros(10, bool)
    term[2] = True   # episode 0: rows 0-2, ends in a true termination
    tout[6] = True   # episode 1: rows 3-6, truncated at 6 -> row 6 dropped
    with h5py.File(tmp_path / "hand.hdf5", "w") as f:
        f["observations"], f["actions"], f["rewards"] = obs, acts, rews
        f["terminals"], f["timeouts"] = term, tout
    ds = load(str(tmp_path / "hand.hdf5"))
    kept = [0, 1, 2, 3, 4, 5, 7, 8]  # qlearning_dataset keeps i in range(N-1) unless timeouts[i]
    np.testing.assert_array_equal(ds.observations[:, 0], np.array(kept, np.float32))
    np.testing.assert_array_equal(ds.next_observations[:, 0], np.array(kept, np.float32) + 1)
    np.testing.assert_array_equal(ds.rewards, rews[kept])
    np.testing.assert_array_equal(ds.actions[:, 0], acts[kept, 0])
    np.testing.assert_array_equal(ds.terminals, term[kept])
    # episode boundaries survive: after the terminal, before the dropped timeout, at the end
    assert [(s.start, s.stop) for s in ds.episode_slices()] == [(0, 3), (3, 6), (6, 8)]
    assert ds.timeouts.tolist() == [False] * 5 + [True, False, False]


def test_npz_and_name_lookup(tmp_path, data_dir):
    ds = _random_dataset()
    np.savez(data_dir / "mine.npz", observations=ds.observations, actions=ds.actions, rewards=ds.rewards,
             next_observations=ds.next_observations, terminals=ds.terminals, timeouts=ds.timeouts,
             metadata_json=json.dumps({"env_id": "Hopper-v5"}))
    back = load("mine")
    np.testing.assert_array_equal(back.observations, ds.observations)
    assert back.metadata["env_id"] == "Hopper-v5"
    save_d4rl(ds, data_dir / "named.hdf5")
    assert len(load("named")) == 50


def test_sample_shapes_and_masks():
    ds = _random_dataset()
    b = ds.sample(256, generator=torch.Generator().manual_seed(0))
    assert b["observations"].shape == (256, 3) and b["actions"].shape == (256, 2)
    assert b["rewards"].shape == (256,) and b["masks"].shape == (256,)
    assert torch.equal(b["masks"], 1 - b["terminals"])
    assert b["observations"].dtype == torch.float32


def test_info_json_reports_returns_and_normalised_score(tmp_path):
    path = save_d4rl(_random_dataset(), tmp_path / "d.hdf5")
    res = _invoke("data", "info", str(path), "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    ds = load(str(path))
    rets = ds.episode_returns()
    assert out["transitions"] == 50 and out["episodes"] == 3
    assert out["return_mean"] == pytest.approx(rets.mean(), rel=1e-6)
    assert out["normalized_return_mean"] == pytest.approx(100 * (rets.mean() + 1) / 4, rel=1e-5)
    assert "infos/qpos" in out["keys"]


# -- bad input: one line, exit != 0, no traceback, nothing written or changed -----------------------
def test_missing_file():
    _assert_one_line_error(_invoke("data", "info", "/nonexistent/x.hdf5"), "not found")


def test_not_hdf5_or_npz(tmp_path):
    p = tmp_path / "junk.hdf5"
    p.write_text("hello, not a dataset\n")
    before = _digest(p)
    _assert_one_line_error(_invoke("data", "info", str(p)), "neither an HDF5 nor an NPZ")
    bad_npz = tmp_path / "junk.npz"
    bad_npz.write_bytes(b"PK\x03\x04garbage")
    _assert_one_line_error(_invoke("data", "info", str(bad_npz)), "not a readable NPZ")
    assert _digest(p) == before


def test_required_key_missing(tmp_path):
    p = tmp_path / "nokey.hdf5"
    with h5py.File(p, "w") as f:
        f["observations"] = np.zeros((5, 2), np.float32)
        f["actions"] = np.zeros((5, 1), np.float32)
        f["terminals"] = np.zeros(5, bool)
    before = _digest(p)
    _assert_one_line_error(_invoke("data", "info", str(p)), "'rewards'", "missing")
    assert _digest(p) == before


def test_arrays_of_different_lengths(tmp_path):
    p = tmp_path / "len.hdf5"
    with h5py.File(p, "w") as f:
        f["observations"] = np.zeros((5, 2), np.float32)
        f["actions"] = np.zeros((4, 1), np.float32)
        f["rewards"] = np.zeros(5, np.float32)
        f["terminals"] = np.zeros(5, bool)
    _assert_one_line_error(_invoke("data", "info", str(p)), "different lengths", "actions 4")


def test_nan_inf_rejected_with_counts_or_dropped(tmp_path):
    ds = _random_dataset()
    ds.observations[3, 0] = np.nan
    ds.observations[7, 1] = np.inf
    ds.rewards[9] = np.nan
    p = tmp_path / "nan.hdf5"
    with h5py.File(p, "w") as f:  # written raw: save_d4rl is not asked to validate
        for k in ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts"):
            f[k] = getattr(ds, k)
    before = _digest(p)
    res = _invoke("data", "info", str(p))
    _assert_one_line_error(res, "NaN/Inf", "observations: 2 rows", "rewards: 1 rows", "--drop-invalid")
    res = _invoke("data", "info", str(p), "--drop-invalid", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["transitions"] == 47 and out["metadata"]["dropped_invalid_rows"] == 3
    assert _digest(p) == before


def test_actions_outside_action_space(tmp_path):
    ds = _random_dataset(obs_dim=11, act_dim=3)
    ds.actions[5] = [0.0, 2.5, 0.0]
    p = save_d4rl(ds, tmp_path / "acts.hdf5")
    before = _digest(p)
    _assert_one_line_error(_invoke("data", "info", str(p), "--env", "Hopper-v5"), "1 dataset actions",
                           "outside")
    assert _digest(p) == before


def test_dataset_and_env_dimensions_disagree(tmp_path):
    p = save_d4rl(_random_dataset(obs_dim=5, act_dim=3), tmp_path / "dims.hdf5")
    _assert_one_line_error(_invoke("data", "info", str(p), "--env", "Hopper-v5"), "dimension 5", "(11,)")
    p2 = save_d4rl(_random_dataset(obs_dim=11, act_dim=2), tmp_path / "dims2.hdf5")
    _assert_one_line_error(_invoke("data", "info", str(p2), "--env", "Hopper-v5"), "actions", "(3,)")


def test_minari_id_not_on_disk_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    res = _invoke("data", "info", "minari:mujoco/hopper/medium-v0")
    _assert_one_line_error(res, "not on disk", str(tmp_path / "minari"), "never downloads")
    assert not (tmp_path / "minari").exists()  # nothing created, nothing downloaded


def test_make_refuses_unknown_name_and_existing_file(data_dir):
    _assert_one_line_error(_invoke("data", "make", "pointmaze-umaz"), "unknown dataset", "pointmaze-umaze")
    p = data_dir / "pointmaze-umaze.hdf5"
    p.write_bytes(b"precious")
    _assert_one_line_error(_invoke("data", "make", "pointmaze-umaze", "--size", "10"), "already exists", "--force")
    assert p.read_bytes() == b"precious"
    _assert_one_line_error(_invoke("data", "make", "pointmaze-umaze", "--size", "1", "--out",
                                   str(data_dir / "x.hdf5")), "--size")
    assert not (data_dir / "x.hdf5").exists()


@pytest.mark.parametrize("every", [100, 3])  # sparse timeouts (run-copy path) and dense ones (gather path)
def test_qlearning_semantics_match_reference_loop(tmp_path, every):
    n = 1000
    rng = np.random.default_rng(1)
    obs = rng.standard_normal((n, 3)).astype(np.float32)
    acts = rng.standard_normal((n, 2)).astype(np.float32)
    rews = rng.standard_normal(n).astype(np.float32)
    term = rng.random(n) < 0.01
    tout = np.zeros(n, bool)
    tout[every - 1::every] = True
    tout &= ~term
    qpos = rng.standard_normal((n, 4)).astype(np.float32)
    with h5py.File(tmp_path / "v0.hdf5", "w") as f:
        f["observations"], f["actions"], f["rewards"], f["terminals"], f["timeouts"] = obs, acts, rews, term, tout
        f["infos/qpos"] = qpos
    ds = load(str(tmp_path / "v0.hdf5"))
    # d4rl.qlearning_dataset, written out as the loop it is
    rows = [i for i in range(n - 1) if not tout[i]]
    np.testing.assert_array_equal(ds.observations, obs[rows])
    np.testing.assert_array_equal(ds.next_observations, obs[np.array(rows) + 1])
    np.testing.assert_array_equal(ds.actions, acts[rows])
    np.testing.assert_array_equal(ds.rewards, rews[rows])
    np.testing.assert_array_equal(ds.terminals, term[rows])
    np.testing.assert_array_equal(ds.extras["infos/qpos"], qpos[rows])


def test_normalized_score_uses_d4rl_constants_for_d4rl_files_and_metadata_for_ours(tmp_path):
    ds = _random_dataset()
    p = tmp_path / "hopper-medium-v2.hdf5"
    with h5py.File(p, "w") as f:  # a D4RL file: no agentlab metadata
        for k in ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts"):
            f[k] = getattr(ds, k)
    d4 = load(str(p))
    assert normalized_score(d4, [3234.3])[0] == pytest.approx(100.0)
    assert normalized_score(d4, [-20.272305])[0] == pytest.approx(0.0)
    assert normalized_score("maze2d-umaze-v1", [161.86])[0] == pytest.approx(100.0)
    ours = save_d4rl(_random_dataset(), tmp_path / "hopper-medium.hdf5")
    assert normalized_score(load(str(ours)), [1.0])[0] == pytest.approx(50.0)  # metadata: -1 .. 3
    from agentlab.errors import UserError

    with pytest.raises(UserError, match="no reference scores"):
        normalized_score("agentlab/pointmaze-umaze-v0", [1.0])
