"""`agentlab monitor ...` end to end, and its one-line errors."""

import json

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from agentlab.cli import cli


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("ucip")
    r = CliRunner()
    res = r.invoke(cli, ["monitor", "agents", "--family", "typeA", "--family", "typeB", "--episodes", "3", "--agents", "2",
                         "--size", "8", "--out", str(d / "fit.hdf5")])
    assert res.exit_code == 0, res.output
    res = r.invoke(cli, ["monitor", "agents", "--family", "typeA,typeB,cyclic,alpha=0.5", "--episodes", "2", "--seed", "3",
                         "--size", "8", "--layout-seed", "4", "--out", str(d / "eval.hdf5")])
    assert res.exit_code == 0, res.output
    res = r.invoke(cli, ["monitor", "fit", "--trajectories", str(d / "fit.hdf5"), "--out", str(d / "det.pt"),
                         "--n-hidden", "4", "--steps", "10"])
    assert res.exit_code == 0, res.output
    return d


def test_fit_score_report(files):
    r = CliRunner()
    res = r.invoke(cli, ["monitor", "score", "--detector", str(files / "det.pt"), "--trajectories",
                         str(files / "eval.hdf5"), "--json"])
    assert res.exit_code == 0, res.output
    recs = json.loads(res.output)
    assert len(recs) == 8 and [x["episode"] for x in recs] == list(range(8))
    assert {"score", "entropy", "mi", "eps", "pri", "spi", "acm", "flag"} <= set(recs[0])
    res = r.invoke(cli, ["monitor", "score", "--detector", str(files / "det.pt"), "--trajectories", str(files / "eval.hdf5")])
    assert res.exit_code == 0 and len(res.output.strip().splitlines()) == 9
    res = r.invoke(cli, ["monitor", "report", "--detector", str(files / "det.pt"), "--trajectories",
                         str(files / "eval.hdf5"), "--out", str(files / "rep")])
    assert res.exit_code == 0, res.output
    assert (files / "rep" / "report.md").is_file() and (files / "rep" / "roc.png").is_file()
    assert (files / "rep" / "alpha_sweep.png").is_file()


def _one_line_error(res, pattern):
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.strip().splitlines() if ln]
    assert len(lines) == 1 and lines[0].startswith("error:") and pattern in lines[0], res.output


def test_bad_inputs(files, tmp_path):
    r = CliRunner()
    empty = tmp_path / "empty.hdf5"
    with h5py.File(empty, "w") as f:
        for k in ("observations", "next_observations"):
            f.create_dataset(k, data=np.zeros((0, 11), np.float32))
        f.create_dataset("actions", data=np.zeros((0, 1), np.float32))
        f.create_dataset("rewards", data=np.zeros(0, np.float32))
        f.create_dataset("terminals", data=np.zeros(0, bool))
        f.create_dataset("timeouts", data=np.zeros(0, bool))
    _one_line_error(r.invoke(cli, ["monitor", "fit", "--trajectories", str(empty), "--out", str(tmp_path / "d.pt")]),
                    "no transitions")
    _one_line_error(r.invoke(cli, ["monitor", "fit", "--trajectories", str(files / "fit.hdf5"), "--labels-key", "nope",
                                   "--out", str(tmp_path / "d.pt")]), "labels key 'nope'")
    _one_line_error(r.invoke(cli, ["monitor", "fit", "--trajectories", str(files / "fit.hdf5"), "--n-hidden", "14",
                                   "--out", str(tmp_path / "d.pt")]), "exact limit")
    assert not (tmp_path / "d.pt").exists()
    # a detector for the 11-dim gridworld on 17-dim trajectories
    other = tmp_path / "other.hdf5"
    from agentlab.data import Dataset, save_d4rl

    n = 20
    save_d4rl(Dataset(np.zeros((n, 17)), np.zeros((n, 6)), np.zeros(n), np.zeros((n, 17)), np.zeros(n, bool),
                      np.arange(n) % 10 == 9), other)
    _one_line_error(r.invoke(cli, ["monitor", "score", "--detector", str(files / "det.pt"), "--trajectories", str(other)]),
                    "dimension 11")
    _one_line_error(r.invoke(cli, ["monitor", "score", "--detector", str(other), "--trajectories", str(other)]),
                    "not a UCIP detector")
    _one_line_error(r.invoke(cli, ["monitor", "agents", "--family", "typeZ", "--out", str(tmp_path / "x.hdf5")]),
                    "unknown agent family")
