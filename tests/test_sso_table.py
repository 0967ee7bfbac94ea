"""The ``sso`` reproduce table end to end at the smoke budget (a fixed linear expert stands in)."""

import json

import numpy as np
import pytest

from agentlab.reproduce import get_table
from agentlab.reproduce.runner import run_table


class LinearExpert:
    def __init__(self, obs_dim, act_dim):
        self.K = np.random.default_rng(0).normal(scale=0.1, size=(act_dim, obs_dim)).astype(np.float32)

    def act(self, obs, deterministic=True):
        return np.clip(np.asarray(obs, dtype=np.float32) @ self.K.T, -1, 1)


@pytest.fixture
def expert(monkeypatch):
    import agentlab.experts

    monkeypatch.setattr(agentlab.experts, "load_expert", lambda env_id, *a, **k: LinearExpert(11, 3))


def test_specs_cover_methods_modes_and_equal_interactions():
    specs = get_table("sso").specs("small", 3)
    algos = {s.algo for s in specs}
    assert algos == {"sgd", "adam", "sso-m1", "sso-m10", "sso-m100", "sso-m100-sqrt"}
    assert {s.task for s in specs if s.algo == "sso-m100-sqrt"} == {"Hopper-v5-dagger", "Walker2d-v5-dagger"}
    assert {s.task for s in specs} == {"Hopper-v5-dagger", "Walker2d-v5-dagger", "Hopper-v5-bc", "Walker2d-v5-bc"}
    assert len({s.params["steps"] for s in specs}) == 1  # equal environment interactions for every method
    assert len({s.run_id for s in specs}) == len(specs)


def test_smoke_table_runs_and_reports(tmp_path, expert):
    summary = run_table("sso", "smoke", seeds=1, out_dir=tmp_path, log=lambda *_: None)
    assert not summary["errors"], summary["errors"]
    for name in ("sso.md", "sso.csv", "sso.png", "sso_loss.md", "sso_auc.md", "sso_curves.png", "sso_wallclock.png"):
        assert (tmp_path / name).is_file(), name
    rec = json.loads(next((tmp_path / "runs").glob("sso-m10__*.json")).read_text())["result"]
    assert rec["interactions"] == 300 and len(rec["curve"]) == 1
    md = (tmp_path / "sso.md").read_text()
    assert "sso-m10" in md and "adam" in md and "B = 100" in md


def test_fresh_budget_uses_never_used_seeds_and_the_fixed_columns():
    specs = get_table("sso").specs("fresh", 3)
    assert {s.seed for s in specs} == {10, 11, 12}  # seeds 0-2 chose the schedule, 98/99 were development runs
    assert {s.algo for s in specs} == {"adam", "sso-m100", "sso-m100-sqrt", "adam-rawobs", "sso-m100-rawobs"}
    assert {s.task for s in specs} == {"Hopper-v5-dagger", "Walker2d-v5-dagger"}
    small = {(s.algo, s.task): s.params for s in get_table("sso").specs("small", 1)}
    for s in specs:  # the same runs as the small table's, only the seeds differ
        if s.algo.endswith("-rawobs"):  # the exploratory columns: the same without the observation normaliser
            base = small[(s.algo[:-7], s.task)]
            assert sorted(s.params["sets"]) == sorted(base["sets"] + ["normalize_obs=false"])
            assert {k: v for k, v in s.params.items() if k != "sets"} == {k: v for k, v in base.items() if k != "sets"}
        else:
            assert s.params == small[(s.algo, s.task)]
