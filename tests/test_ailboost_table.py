"""The imitation reproduce table: its runs and its report (from synthetic results, no training)."""

from __future__ import annotations

from agentlab.reproduce import get_table


def test_imitation_table_specs():
    table = get_table("imitation")
    specs = table.specs("small", 3)
    assert {s.algo for s in specs} == {"ailboost", "dac", "dac_paper", "bc"}
    assert {s.task for s in specs} == {"dmc/cartpole-swingup", "dmc/walker-walk", "dmc/cheetah-run"}
    assert {s.params["num_demos"] for s in specs} == {1, 10}
    assert len(specs) == 3 * 2 * 3 * 4 and len({s.run_id for s in specs}) == len(specs)
    full = table.specs("full", 3)
    assert {s.task for s in full} == {"dmc/cartpole-swingup", "dmc/walker-walk", "dmc/cheetah-run"}
    assert {s.params["num_demos"] for s in full} == {1, 10} and len(full) == 3 * 2 * 3 * 4
    ail = [s for s in specs if s.algo == "ailboost"][0]
    dac = [s for s in specs if s.algo == "dac"][0]
    # the two adversarial methods share the learner configuration; only AILBoost has alpha
    assert {k: v for k, v in ail.params["config"].items() if k != "alpha"} == dac.params["config"]
    assert ail.params["steps"] == dac.params["steps"] and ail.params["num_demos"] == 1


def test_run_cells_fills_one_cell_and_skips_it_after(tmp_path, monkeypatch):
    from agentlab.reproduce.tables import imitation as T

    calls = []
    monkeypatch.setattr(T, "run", lambda spec: calls.append(spec) or {"score": float(spec.seed), "curve": []})
    done = T.run_cells("dmc/walker-walk", 10, 1, out_dir=tmp_path, log=lambda *_: None)
    assert len(done) == 4 and {c.algo for c in calls} == set(T.ALGOS)
    assert all(c.task == "dmc/walker-walk" and c.seed == 1 and c.params["num_demos"] == 10 for c in calls)
    # the records are the table's own (same run ids), and a second call runs nothing
    ids = {s.run_id for s in T.specs("small", 3)}
    assert {p.stem for p in (tmp_path / "runs").glob("*.json")} <= ids
    assert T.run_cells("dmc/walker-walk", 10, 1, ["bc"], out_dir=tmp_path, log=lambda *_: None) == []


def test_imitation_report_writes_table_csv_and_plots(tmp_path):
    table = get_table("imitation")
    records = []
    for spec in table.specs("small", 2):
        score = {"ailboost": 60.0, "dac": 50.0, "dac_paper": 40.0, "bc": 20.0}[spec.algo] + spec.seed
        res = {"score": score, "curve": [[0, 0.0], [1000, score]]}
        if spec.algo == "ailboost":
            res.update(last_learner_score=score + 5, last_curve=[[0, 0.0], [1000, score + 5]])
        if spec.algo != "bc":
            res["disc_separation"] = [[0, 0.1], [1000, 1.0]]
        records.append({"spec": spec.to_dict(), "result": res})
    meta = {"budget": "small", "seeds": 2, "git_sha": "abc", "command": "agentlab reproduce imitation",
            "complete": True}
    written = table.report(records, tmp_path, meta)
    names = {p.name for p in written}
    assert {"imitation.md", "imitation.csv", "imitation.png", "imitation_curves.png",
            "imitation_disc_separation.png"} <= names
    md = (tmp_path / "imitation.md").read_text()
    for col in ("ailboost (mixture)", "ailboost (latest)", "dac (shared disc)", "dac (paper)", "bc"):
        assert col in md
    assert "env steps" in md and "64x64" in md and "cartpole-swingup, 1 demo" in md
    assert "60.5" in md and "65.5" in md and "40.5" in md  # means of seeds 0, 1
