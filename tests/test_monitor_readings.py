"""Corrected readings of the ucip table: seed-level bootstrap, alpha means, baselines, backfill."""

import json

import numpy as np
import pytest

from agentlab.monitors import stats as st
from agentlab.monitors.baselines import baseline_scores, fit_logistic, histograms, logit, sparse_histogram


def test_seed_bootstrap_sees_seed_to_seed_variation():
    # seed 0's detector separates perfectly, seed 1's is inverted: a cluster-only CI would be narrow
    y = np.array([1] * 10 + [0] * 10)
    scores = {0: np.r_[np.ones(10), np.zeros(10)], 1: np.r_[np.zeros(10), np.ones(10)]}
    groups = {s: st.cluster_groups(np.arange(20), y) for s in scores}
    ci = st.seed_bootstrap(lambda d: [np.mean([st.auc(scores[s][i], y[i]) for s, i in d.values()])], groups, 400)
    assert ci[0, 0] == pytest.approx(0.0) and ci[1, 0] == pytest.approx(1.0)
    one = st.seed_bootstrap(lambda d: [np.mean([st.auc(scores[s][i], y[i]) for s, i in d.values()])],
                            {0: groups[0]}, 200)
    assert one[0, 0] == pytest.approx(1.0)


def test_alpha_r_over_means_and_over_episodes_and_per_seed_auc():
    from agentlab.reproduce.tables.ucip import alpha_r_means, per_seed_auc

    rng = np.random.default_rng(0)
    recs = []
    for seed in range(3):
        for a in np.round(np.arange(11) * 0.1, 1):
            for _ in range(6):  # noisy episodes around a linear mean
                recs.append({"family": "alpha", "alpha": float(a), "agent": f"s{seed}-{int(a * 10)}",
                             "score": float(a + rng.normal(0, 0.7)), "raw": float(-a)})
    out = alpha_r_means(recs, "score", n_boot=50)
    assert out["r_means"] > 0.75 and out["r_episodes"] < 0.6 and out["r_means_ci"][0] <= out["r_means"]
    assert alpha_r_means(recs, "raw", 0)["r_means"] == pytest.approx(-1.0)
    ab = [{"family": f, "alpha": np.nan, "agent": f"s{s}-{f}{k}", "score": float(f == "typeA") + (s == 1) * 0.0
           - 2.0 * (s == 1) * float(f == "typeA"), "raw": 0.0}
          for s in range(2) for f in ("typeA", "typeB") for k in range(4)]
    ps = per_seed_auc(ab, n_boot=100)
    assert ps["per_seed"] == [1.0, 0.0] and ps["mean"] == 0.5 and ps["ci"] == (0.0, 1.0)


def test_logistic_regression_on_histograms_and_calibrated_baselines():
    rng = np.random.default_rng(1)
    fit = []
    for i in range(40):
        lab = i % 2
        pats = rng.choice([3, 7] if lab else [3, 9], size=30)
        fit.append({"label": lab, "cal": i >= 20, "length": 30 + 10 * lab + int(rng.integers(5)),
                    "safe_frac": 0.5, "hist": sparse_histogram(pats)})
    X = histograms([e["hist"] for e in fit])
    assert np.allclose(X.sum(1), 1.0)
    theta = fit_logistic(X[:20], np.array([e["label"] for e in fit[:20]]))
    assert st.auc(logit(theta, X[20:]), np.array([e["label"] for e in fit[20:]])) == 1.0
    ev = [{"length": 35 + 10 * (i % 2), "safe_frac": 0.5, "hist": sparse_histogram([7] * 5 if i % 2 else [9] * 5)}
          for i in range(6)]
    out = baseline_scores({"fit": fit}, ev)
    y = np.arange(6) % 2
    for name in ("length", "lr_hist"):
        assert out[name]["orientation"] == 1.0 and (out[name]["pass"] == y.astype(bool)).all(), name
    # a constant baseline flags nothing (ties broken towards the highest threshold)
    assert not out["safe_frac"]["pass"].any()


def test_backfill_checks_regenerated_data_against_stored_records(tmp_path):
    from agentlab.reproduce import RunSpec
    from agentlab.reproduce.tables.ucip import FAMILIES_ALL, backfill, backfill_path, episode_rows, make_data

    params = {"size": 6, "fit_layouts": 1, "eval_layouts": 1, "agents": 2, "episodes": 1, "alpha_episodes": 1,
              "steps": 1}
    spec = RunSpec("ucip", "ucip", "grid6", 0, "smoke", params)
    fitset, evalset, _ = make_data(params, 6, 0)
    recs = [{"family": FAMILIES_ALL[r["family_id"]], "length": r["length"], "safe_frac": r["safe_frac"]}
            for r in episode_rows(evalset)]
    stored = {"spec": spec.to_dict(), "result": {"size": 6, "records": recs, "n_fit_episodes": fitset.num_episodes()}}
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "a.json").write_text(json.dumps(stored))
    assert backfill(tmp_path, (6,), (6,), log=lambda m: None) == [backfill_path(tmp_path, spec.to_dict())]
    block = json.loads(backfill_path(tmp_path, spec.to_dict()).read_text())
    assert len(block["eval"]) == len(recs) and block["backfill"]["eval_checked"]
    assert 0 < block["fit_data_entropy"] <= np.log(256)
    backfill_path(tmp_path, spec.to_dict()).unlink()
    recs[0]["length"] += 1  # a stored record that the seeds do not reproduce
    (tmp_path / "runs" / "a.json").write_text(json.dumps(stored))
    with pytest.raises(RuntimeError, match="differ"):
        backfill(tmp_path, (6,), (6,), log=lambda m: None)
    assert not backfill_path(tmp_path, spec.to_dict()).exists()
