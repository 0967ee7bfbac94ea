"""The imitation reproduce table: its runs and its report (from synthetic results, no training)."""

from __future__ import annotations

from agentlab.reproduce import get_table


def test_imitation_table_specs():
    table = get_table("imitation")
    specs = table.specs("small", 3)
    assert {s.algo for s in specs} == {"ailboost", "dac", "bc"}
    assert {s.task for s in specs} == {"dmc/cartpole-swingup", "dmc/ball_in_cup-catch", "dmc/walker-walk", "Hopper-v5"}
    assert len(specs) == 4 * 3 * 3 and len({s.run_id for s in specs}) == len(specs)
    # Hopper-v5 (early termination: the absorbing-state case) runs without action repeat
    hopper = [s for s in specs if s.task == "Hopper-v5" and s.algo == "dac"][0]
    assert hopper.params["config"]["action_repeat"] == 1 and hopper.params["config"]["update_every"] == 2
    ail = [s for s in specs if s.algo == "ailboost"][0]
    dac = [s for s in specs if s.algo == "dac"][0]
    # the two adversarial methods share the learner configuration; only AILBoost has alpha
    assert {k: v for k, v in ail.params["config"].items() if k != "alpha"} == dac.params["config"]
    assert ail.params["steps"] == dac.params["steps"] and ail.params["num_demos"] == 1


def test_imitation_report_writes_table_csv_and_plots(tmp_path):
    table = get_table("imitation")
    records = []
    for spec in table.specs("small", 2):
        score = {"ailboost": 60.0, "dac": 50.0, "bc": 20.0}[spec.algo] + spec.seed
        res = {"score": score, "curve": [[0, 0.0], [1000, score]]}
        if spec.algo == "ailboost":
            res.update(last_learner_score=score + 5, last_curve=[[0, 0.0], [1000, score + 5]])
        records.append({"spec": spec.to_dict(), "result": res})
    meta = {"budget": "small", "seeds": 2, "git_sha": "abc", "command": "agentlab reproduce imitation",
            "complete": True}
    written = table.report(records, tmp_path, meta)
    names = {p.name for p in written}
    assert {"imitation.md", "imitation.csv", "imitation.png", "imitation_curves.png"} <= names
    md = (tmp_path / "imitation.md").read_text()
    assert "ailboost (last learner)" in md and "env steps" in md and "64x64" in md
    assert "60.5" in md  # mean of seeds 0, 1 for AILBoost
