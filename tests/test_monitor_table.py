"""The `ucip` reproduce table end to end on a tiny budget (slow: fits six models)."""

import json

import pytest

from agentlab.reproduce import RunSpec, get_table


@pytest.mark.slow
def test_ucip_table_run_and_report(tmp_path):
    table = get_table("ucip")
    specs = table.specs("smoke", 1)
    assert {s.params["size"] for s in specs} == {10, 20, 50}
    params = {"size": 8, "fit_layouts": 1, "eval_layouts": 1, "agents": 2, "episodes": 2, "alpha_episodes": 1,
              "steps": 3}
    spec = RunSpec("ucip", "ucip", "grid8", 0, "smoke", params)
    from agentlab.reproduce.tables.ucip import run

    result = run(spec)
    json.dumps(result)  # JSON-serialisable
    assert result["models"]["qbm_product"]["table_mi_max"] < 1e-9  # product state: I(A:B) = 0
    assert result["models"]["qbm"]["table_mi_max"] > 0
    written = table.report([{"spec": spec.to_dict(), "result": result}], tmp_path,
                           {"budget": "smoke", "git_sha": "test", "command": "test"})
    names = {p.name for p in written}
    assert {"ucip.md", "ucip.csv", "ucip.png", "ucip_roc_mi.png"} <= names
    md = (tmp_path / "ucip.md").read_text()
    assert "qbm_product" in md and "What the signal is" in md
    # corrected readings: both protocols, per-seed AUCs and calibrated baseline rows from the run's block
    rd = (tmp_path / "ucip_readings.md").read_text()
    assert "ucip_readings.md" in md and "ucip_readings.csv" in names
    assert "Readings both ways" in rd and "| lr_hist |" in rd and "| length |" in rd and "Convergence" in rd
    block = result["baseline"]
    assert len(block["eval"]) == len(result["records"]) and len(block["fit"]) == result["n_fit_episodes"]
    assert block["fit_data_entropy"] <= result["models"]["bm"]["final_nll"] + 1e-9  # cross-entropy >= entropy
