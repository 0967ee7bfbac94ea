"""UCIP criteria, calibration, the detector (cache, persistence) and the statistics helpers."""

import numpy as np
import pytest

from agentlab.errors import UserError
from agentlab.monitors import stats as st
from agentlab.monitors.agents import generate
from agentlab.monitors.ucip import (Detector, autocorrelation_metric, balanced_threshold, eigenmode_persistence,
                                    fit_detector, perturbation_resilience, spectral_periodicity,
                                    split_calibration)


@pytest.fixture(scope="module")
def fitted():
    fitset = generate(["typeA", "typeB"], episodes=3, seed=0, size=8, layout_seed=0, agents_per_family=2)
    det = fit_detector(fitset, encoder="grid", model="qbm", n_h=4, steps=15, seed=0)
    evalset = generate(["typeA", "typeB", "cyclic"], episodes=3, seed=3, size=8, layout_seed=5)
    return det, fitset, evalset


def test_criteria_ranges_and_definitions():
    rng = np.random.default_rng(0)
    h = rng.normal(size=(100, 6))
    assert 0.0 <= eigenmode_persistence(h) <= 1.0
    assert abs(perturbation_resilience(h, h) - 1.0) < 1e-9
    assert eigenmode_persistence(np.ones((100, 6))) == 1.0
    assert np.isnan(eigenmode_persistence(h[:3]))
    t = np.arange(100)
    periodic = np.stack([np.sin(2 * np.pi * t / 5)] * 6, 1)
    assert spectral_periodicity(periodic) > 0.9 > 0.3 > spectral_periodicity(h)
    assert autocorrelation_metric(periodic) > autocorrelation_metric(h) + 0.2


def test_balanced_threshold_and_split():
    tau, bacc = balanced_threshold(np.array([0.0, 1, 2, 3]), np.array([0, 0, 1, 1]))
    assert tau == 1.5 and bacc == 1.0
    tau, bacc = balanced_threshold(np.zeros(4), np.array([0, 0, 1, 1]))
    assert not (np.zeros(4) > tau).any()  # a constant statistic flags nothing
    agents = np.repeat(np.arange(8), 3)
    labels = (agents % 2).astype(int)
    cal = split_calibration(agents, labels, 0.5, seed=0)
    assert not set(agents[cal]) & set(agents[~cal])  # no agent in both fit and calibration
    assert set(labels[cal]) == {0, 1}


def test_detector_scores_use_cache_and_survive_save_load(fitted, tmp_path):
    det, _, evalset = fitted
    recs = det.score_dataset(evalset)
    assert len(recs) == evalset.num_episodes()
    nocache = det.score_dataset(evalset, use_cache=False)
    for a, b in zip(recs, nocache):
        for k in ("score", "entropy", "mi", "eps", "pri"):
            assert a[k] == pytest.approx(b[k], abs=1e-9, nan_ok=True)
    det.save(tmp_path / "d.pt")
    det2 = Detector.load(tmp_path / "d.pt")
    assert det2.thresholds == det.thresholds and det2.orientation == det.orientation
    for a, b in zip(recs, det2.score_dataset(evalset)):
        assert a["score"] == pytest.approx(b["score"], abs=1e-12) and a["flag"] == b["flag"]
    assert {"score", "entropy", "mi", "eps", "pri", "spi", "acm", "flag"} <= set(recs[0])


def test_thresholds_come_from_the_calibration_split_only(fitted):
    det, fitset, evalset = fitted
    # refitting with the same fitting file gives the same thresholds whatever is evaluated later
    det2 = fit_detector(fitset, encoder="grid", model="qbm", n_h=4, steps=15, seed=0)
    assert det2.thresholds == pytest.approx(det.thresholds)
    assert det.info["calibration_episodes"] + det.info["fit_episodes"] == fitset.num_episodes()


def test_bad_inputs(fitted):
    det, fitset, _ = fitted
    with pytest.raises(UserError, match="labels key"):
        fit_detector(fitset, labels_key="nope")
    with pytest.raises(UserError, match="dimension"):
        det.score_episode(np.zeros((10, 17)))
    with pytest.raises(UserError, match="grid encoder"):
        from agentlab.monitors.ucip import build_detector
        build_detector(np.zeros((10, 17)), encoder="grid")


def test_generic_encoder_detector_runs_on_other_observation_spaces():
    rng = np.random.default_rng(0)
    from agentlab.data import Dataset

    n = 400
    obs = rng.normal(size=(n, 17)).astype(np.float32)
    ends = np.zeros(n, bool)
    ends[49::50] = True
    labels = np.repeat(np.arange(8) % 2, 50)
    ds = Dataset(obs + labels[:, None] * 0.5, rng.normal(size=(n, 6)), np.zeros(n), obs, np.zeros(n, bool), ends,
                 extras={"labels": labels, "agent_id": np.repeat(np.arange(8), 50)})
    det = fit_detector(ds, encoder="generic", model="rbm", steps=5)
    assert det.encoder.obs_dim == 17 and len(det.score_dataset(ds)) == 8


def test_stats_helpers():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 50)
    s = rng.normal(size=100) + 2 * y
    pos, neg = s[y == 1], s[y == 0]
    assert st.auc(s, y) == pytest.approx((pos[:, None] > neg[None]).mean())
    assert st.auc(np.zeros(4), np.array([0, 0, 1, 1])) == 0.5
    clusters = np.arange(100) // 5
    assert st.permutation_pvalue(s, y, clusters, 500) < 0.01
    assert st.permutation_pvalue(rng.normal(size=100), y, clusters, 500) > 0.01
    lo, hi = st.cluster_bootstrap(lambda i: st.auc(s[i], y[i]), clusters, y, 300)
    assert lo <= st.auc(s, y) <= hi
    lo, hi = st.wilson(3, 10)
    assert lo < 0.3 < hi
