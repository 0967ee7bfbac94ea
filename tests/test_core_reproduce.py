"""The reproduce runner: resumable, parallel == sequential, failures reported, aggregation."""

import numpy as np

from agentlab.reproduce import RunSpec
from agentlab.reproduce.aggregate import bootstrap_ci, iqm
from agentlab.reproduce.runner import run_table


def test_runner_writes_and_resumes(tmp_path):
    out = tmp_path / "t"
    s1 = run_table("selftest", "smoke", 1, out, log=lambda m: None)
    assert s1["meta"]["complete"] and len(s1["records"]) == 4
    for name in ("selftest.md", "selftest.csv", "selftest.png"):
        assert (out / name).is_file()
    md = (out / "selftest.md").read_text()
    assert "Budget `smoke`" in md and "seeds 1" in md and "Regenerate" in md
    logs = []
    s2 = run_table("selftest", "smoke", 1, out, log=logs.append)
    assert "4 already done, 0 to run" in logs[0]
    assert [r["result"] for r in s1["records"]] == [r["result"] for r in s2["records"]]


def test_only_runs_a_subset_but_reports_the_whole_table(tmp_path):
    import pytest

    from agentlab.errors import UserError

    out = tmp_path / "t"
    s1 = run_table("selftest", "smoke", 1, out, only=["bc-small"], log=lambda m: None)
    assert {r["spec"]["algo"] for r in s1["records"]} == {"bc-small"} and not s1["meta"]["complete"]
    md = (out / "selftest.md").read_text()
    assert "INCOMPLETE: 2/4" in md and "--only" not in md  # the regenerate line is the whole table's
    logs = []
    s2 = run_table("selftest", "smoke", 1, out, report_only=True, log=logs.append)
    assert "0 to run" in logs[0] and len(s2["records"]) == 2
    s3 = run_table("selftest", "smoke", 1, out, only=["bc-large", "linear-8d"], log=lambda m: None)
    assert len(s3["records"]) == 3  # bc-small on both tasks + bc-large on linear-8d (algorithm AND task)
    assert {(r["spec"]["algo"], r["spec"]["task"]) for r in s3["records"]} >= {("bc-large", "linear-8d")}
    assert not any(r["spec"]["algo"] == "bc-large" and r["spec"]["task"] == "linear-2d" for r in s3["records"])
    s4 = run_table("selftest", "smoke", 1, out, log=lambda m: None)
    assert s4["meta"]["complete"] and "INCOMPLETE" not in (out / "selftest.md").read_text()
    with pytest.raises(UserError, match="no algorithm or task"):
        run_table("selftest", "smoke", 1, out, only=["nope"], log=lambda m: None)


def test_parallel_equals_sequential(tmp_path):
    a = run_table("selftest", "smoke", 1, tmp_path / "a", workers=1, log=lambda m: None)
    b = run_table("selftest", "smoke", 1, tmp_path / "b", workers=2, log=lambda m: None)
    key = lambda r: r["spec"]["algo"] + r["spec"]["task"]  # noqa: E731
    assert [r["result"] for r in sorted(a["records"], key=key)] == [r["result"] for r in sorted(b["records"], key=key)]


def test_failed_run_reported_and_others_kept(tmp_path, failing_selftest):
    s = run_table("selftest", "smoke", 1, tmp_path / "f", log=lambda m: None)
    assert len(s["errors"]) == 1 and len(s["records"]) == 3
    assert not s["meta"]["complete"]
    assert "INCOMPLETE" in (tmp_path / "f" / "selftest.md").read_text()
    assert (tmp_path / "f" / "errors.json").is_file()


def test_run_id_stable_and_distinct():
    a = RunSpec("t", "fql", "hopper-medium", 0, "small", {"x": 1})
    b = RunSpec("t", "fql", "hopper-medium", 0, "small", {"x": 1})
    c = RunSpec("t", "fql", "hopper-medium", 1, "small", {"x": 1})
    assert a.run_id == b.run_id != c.run_id


def test_iqm_and_bootstrap():
    x = np.array([0.0, 1, 2, 3, 4, 5, 6, 100])
    assert iqm(x) == np.mean([2, 3, 4, 5])
    lo, hi = bootstrap_ci(np.random.default_rng(0).normal(size=200))
    assert lo < 0 < hi and hi - lo < 0.4
