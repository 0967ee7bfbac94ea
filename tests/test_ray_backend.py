"""The Ray backend gives the same numbers as the local one and survives failing tasks."""

import sys

import pytest
from click.testing import CliRunner

from agentlab.reproduce.runner import run_table

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_local():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def _results(summary):
    return {r["spec"]["algo"] + r["spec"]["task"] + str(r["spec"]["seed"]): r["result"] for r in summary["records"]}


def test_ray_matches_local(tmp_path, ray_local):
    local = run_table("selftest", "smoke", 1, tmp_path / "local", backend="local", log=lambda m: None)
    remote = run_table("selftest", "smoke", 1, tmp_path / "ray", backend="ray", log=lambda m: None)
    assert remote["meta"]["complete"] and _results(local) == _results(remote)
    # resumable: a second call runs nothing
    logs = []
    run_table("selftest", "smoke", 1, tmp_path / "ray", backend="ray", log=logs.append)
    assert "0 to run" in logs[0]


def test_ray_failed_task_reported_and_retried(tmp_path, ray_local, failing_selftest):
    s = run_table("selftest", "smoke", 1, tmp_path / "f", backend="ray", retries=1, log=lambda m: None)
    assert len(s["errors"]) == 1 and len(s["records"]) == 3
    assert "asked to fail" in next(iter(s["errors"].values()))
    assert "INCOMPLETE" in (tmp_path / "f" / "selftest.md").read_text()


def test_missing_ray_is_one_line_error(tmp_path, monkeypatch):
    from agentlab.cli import cli

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    r = CliRunner().invoke(cli, ["reproduce", "selftest", "--backend", "ray", "--seeds", "1", "--out",
                                 str(tmp_path / "x")])
    assert r.exit_code == 2 and r.output.strip().startswith("error:") and "agentlab[ray]" in r.output
    assert len(r.output.strip().splitlines()) == 1
