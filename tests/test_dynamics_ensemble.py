"""The probabilistic ensemble: NLL fitting, calibrated variance, weights, elites, sampling."""

import math

import pytest
import torch

from agentlab.models.dynamics import EnsembleTrainer, GaussianEnsemble, proximity_weights
from agentlab.nn import Normalizer

NOISE = 0.1


def linear_gaussian(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    A = torch.tensor([[0.9, 0.2], [-0.1, 0.8]])
    B = torch.tensor([[0.5], [1.0]])
    s = torch.randn(n, 2, generator=g)
    a = torch.rand(n, 1, generator=g) * 2 - 1
    s2 = s @ A.T + a @ B.T + NOISE * torch.randn(n, 2, generator=g)
    return s, a, s2


def test_nll_decreases_and_variance_matches_true_noise():
    torch.manual_seed(0)
    s, a, s2 = linear_gaussian(3000)
    model = GaussianEnsemble(2, 1, members=3, hidden=[32, 32], num_elites=2)
    trainer = EnsembleTrainer(model, lr=3e-3, batch_size=256, max_epochs=40, patience=40)
    ts, ta, ts2 = linear_gaussian(1000, seed=1)
    model.fit_normalizers(torch.cat([s, a], 1), s2 - s)
    before = model.gaussian_nll(ts, ta, ts2)
    info = trainer.fit(s, a, s2, generator=torch.Generator().manual_seed(0))
    after = model.gaussian_nll(ts, ta, ts2)
    assert after < before - 1.0, (before, after)
    # the NLL of the true model is 0.5 log(2 pi e sigma^2) per dimension
    assert after < 0.5 * math.log(2 * math.pi * math.e * NOISE**2) + 0.15
    _, var = model.predict(ts, ta)
    pred_var = var[model.elites].mean().item()
    assert abs(pred_var - NOISE**2) / NOISE**2 < 0.2, pred_var
    assert info["train/model_epochs"] >= 1


def test_weighted_loss_ignores_zero_weight_samples():
    torch.manual_seed(0)
    model = GaussianEnsemble(2, 1, members=2, hidden=[8], num_elites=1)
    z = torch.randn(2, 6, 3)
    y = torch.randn(2, 6, 2)
    w = torch.tensor([[1.0, 1, 1, 0, 0, 0]] * 2)
    g1 = torch.autograd.grad(model.loss(z, y, w * 2), list(model.parameters()))
    # the same loss on the first three samples only (mean over 3 of weight 1 == mean over 6 of weight 2)
    g2 = torch.autograd.grad(model.loss(z[:, :3], y[:, :3]), list(model.parameters()))
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b)


def test_proximity_weights_limits():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 3, generator=g)
    e = torch.zeros(5, 3)
    norm = Normalizer(3).fit(x)
    w_inf = proximity_weights(x, e, norm, math.inf)
    assert torch.equal(w_inf, torch.ones(200))
    w_big = proximity_weights(x, e, norm, 1e6)
    torch.testing.assert_close(w_big, torch.ones(200), atol=1e-5, rtol=0)
    for sigma in (0.1, 0.5, 2.0):
        w = proximity_weights(x, e, norm, sigma)
        assert w.mean().item() == pytest.approx(1.0, abs=1e-4)
        d = norm(x).sub(norm(e)[0]).norm(dim=1)
        order = torch.argsort(d)
        assert torch.all(w[order][1:] <= w[order][:-1] + 1e-6)  # weights decay with distance
    # a very small sigma puts (almost) all weight on the point nearest to the expert
    w = proximity_weights(x, e, norm, 1e-3)
    assert w.argmax() == d.argmin() and w.max() > 199
    with pytest.raises(ValueError):
        proximity_weights(x, e, norm, -1.0)


def test_elites_are_best_holdout_members_and_sampler_shapes():
    torch.manual_seed(0)
    s, a, s2 = linear_gaussian(600)
    model = GaussianEnsemble(2, 1, members=4, hidden=[16], num_elites=2)
    trainer = EnsembleTrainer(model, lr=3e-3, max_epochs=5, patience=5, holdout_ratio=0.2)
    trainer.fit(s, a, s2, generator=torch.Generator().manual_seed(0))
    assert len(set(model.elites.tolist())) == 2
    for prop in ("random", "fixed", "mean"):
        step = model.sampler(prop)
        g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
        n1, r1 = step(s[:7], a[:7], g1)
        n2, _ = step(s[:7], a[:7], g2)
        assert n1.shape == (7, 2) and r1 is None
        torch.testing.assert_close(n1, n2)
    # the mean propagation equals the elites' average predicted mean
    mean, _ = model.predict(s[:5], a[:5])
    torch.testing.assert_close(model.sampler("mean")(s[:5], a[:5], None)[0], s[:5] + mean[model.elites].mean(0))


def test_learned_reward_output():
    model = GaussianEnsemble(2, 1, members=2, hidden=[8], num_elites=1, learn_reward=True)
    nxt, r = model.sampler("fixed")(torch.zeros(3, 2), torch.zeros(3, 1), None)
    assert nxt.shape == (3, 2) and r.shape == (3,)


def test_retrain_on_more_data_never_ends_worse():
    """Successive fits of one trainer on a growing dataset (rows appended; later rows come from a wider
    state distribution, so the normalisers move between fits): the error on an independent test set of
    the final distribution never goes up from one retrain to the next."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(3)

    def chunk(n, seed, scale):  # linear_gaussian with the states scaled: s2 = A (scale s) + B a + noise
        s, a, s2 = linear_gaussian(n, seed)
        return s * scale, a, s2 + (scale - 1) * s @ torch.tensor([[0.9, 0.2], [-0.1, 0.8]]).T

    parts = [chunk(n, 10 + i, 1.0 + i) for i, n in enumerate((150, 350, 1000))]
    s_all, a_all, s2_all = (torch.cat(x) for x in zip(*parts))
    ts, ta, ts2 = (torch.cat(x) for x in zip(*[chunk(300, 50 + i, 1.0 + i) for i in range(3)]))
    model = GaussianEnsemble(2, 1, members=3, hidden=[32, 32], num_elites=2)
    trainer = EnsembleTrainer(model, lr=3e-3, batch_size=64, max_epochs=60, patience=5)
    errors, seen = [], 0
    for s, _, _ in parts:
        seen += len(s)
        info = trainer.fit(s_all[:seen], a_all[:seen], s2_all[:seen], generator=g)
        assert info["train/model_epochs"] >= info["train/model_best_epoch"] >= 0
        mean, _ = model.predict(ts, ta)
        errors.append((mean[model.elites].mean(0) - (ts2 - ts)).pow(2).mean().item())
    assert all(b <= a for a, b in zip(errors, errors[1:])), errors


def _member_heldout_error(model, s, a, s2, ratio):
    """Per-member MSE of the predicted mean on the held-out rows of ``(s, a, s2)`` (the rows
    ``holdout_mask`` holds out), per dimension in units of the targets' std -- the trainer's own
    early-stopping score, computed here from raw predictions so it also scores a model *before* it
    is refit (its normalisers are still the old ones)."""
    from agentlab.models.dynamics import holdout_mask

    val = holdout_mask(len(s), ratio)
    y = s2 - s
    std = Normalizer(y.shape[1], eps=1e-6).fit(y).std
    mean, _ = model.predict(s[val], a[val])
    return ((mean - y[val]) / std).pow(2).mean(-1).mean(-1)  # [members]


def _expected_epochs(trainer):
    """Epochs a fit runs under the stated rule: stop after ``patience`` epochs in which no member beat the
    fit's *own* running best (from +inf, not the pre-fit score) by more than 1%, or at max_epochs."""
    best, stale = None, 0
    for i, err in enumerate(trainer.history):
        sig = torch.ones_like(err, dtype=torch.bool) if best is None else (best - err) > trainer.improvement * best.abs()
        best = err if best is None else torch.minimum(best, err)
        stale = 0 if sig.any() else stale + 1
        if stale >= trainer.patience:
            return i + 1
    return len(trainer.history)


@pytest.mark.parametrize("lr", [3e-3, 0.3])
def test_retrain_never_returns_a_worse_heldout_error_than_before_it(lr):
    """A retrain on more data (rows appended, from a wider distribution, so the normalisers move) must
    end every member at a held-out error no worse than the member had on the same held-out rows before
    the retrain -- also when the retrain itself only makes things worse (lr 0.3 diverges: a trainer
    whose running best starts at +inf ends on a damaged epoch and fails this)."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(5)
    parts = [linear_gaussian(n, 20 + i) for i, n in enumerate((300, 300, 600))]
    parts = [(s * (1 + i), a, s2 * (1 + i)) for i, (s, a, s2) in enumerate(parts)]
    s_all, a_all, s2_all = (torch.cat(x) for x in zip(*parts))
    model = GaussianEnsemble(2, 1, members=3, hidden=[32, 32], num_elites=2)
    EnsembleTrainer(model, lr=3e-3, batch_size=64, max_epochs=30, patience=5).fit(
        s_all[:300], a_all[:300], s2_all[:300], generator=g)
    trainer = EnsembleTrainer(model, lr=lr, batch_size=64, max_epochs=8, patience=3)
    seen = 300
    for s, _, _ in parts[1:]:
        seen += len(s)
        data = (s_all[:seen], a_all[:seen], s2_all[:seen])
        before = _member_heldout_error(model, *data, trainer.holdout_ratio)
        info = trainer.fit(*data, generator=g)
        after = _member_heldout_error(model, *data, trainer.holdout_ratio)
        assert torch.all(after <= before * (1 + 1e-4) + 1e-7), (before, after)
        torch.testing.assert_close(trainer.prefit_error, before, rtol=1e-4, atol=1e-7)  # renormalisation is exact
        assert len(trainer.history) == _expected_epochs(trainer)  # patience follows the fit's own progress
        if lr == 0.3:  # the diverging retrain keeps the previous weights
            assert info["train/model_kept_prefit"] == model.members
        else:  # a sane retrain improves on the new data
            assert after.mean() < before.mean()


def test_renormalize_preserves_predictions():
    torch.manual_seed(0)
    s, a, s2 = linear_gaussian(400)
    model = GaussianEnsemble(2, 1, members=2, hidden=[16], num_elites=1, learn_reward=True)
    r = s.sum(1)
    y = torch.cat([s2 - s, r[:, None]], 1)
    model.fit_normalizers(torch.cat([s, a], 1), y)
    mean0, var0 = model.predict(s, a)
    old = [t.clone() for t in (model.in_norm.mean, model.in_norm.std, model.out_norm.mean, model.out_norm.std)]
    model.fit_normalizers(torch.cat([s * 3 + 1, a], 1), y * 2 - 0.5)
    model.renormalize_(*old)
    mean1, var1 = model.predict(s, a)
    torch.testing.assert_close(mean1, mean0, rtol=1e-4, atol=1e-5)  # the mean (the held-out score) is exact
    assert torch.isfinite(var1).all()  # the variance only where the soft log-variance bounds are inactive


def test_holdout_rows_keep_their_split_as_data_grows():
    from agentlab.models.dynamics import holdout_mask

    small, big = holdout_mask(500, 0.1), holdout_mask(5000, 0.1)
    assert torch.equal(small, big[:500])
    assert abs(big.float().mean().item() - 0.1) < 0.005


def test_fit_ends_on_each_members_best_epoch():
    """Slow learning (every epoch improves by well under the 1% patience threshold): the fit must still
    end on each member's best held-out epoch, not on an earlier snapshot or the initial weights."""
    torch.manual_seed(0)
    s, a, s2 = linear_gaussian(1000)
    model = GaussianEnsemble(2, 1, members=3, hidden=[32, 32], num_elites=2)
    trainer = EnsembleTrainer(model, lr=2e-6, batch_size=64, max_epochs=12, patience=12)
    trainer.fit(s, a, s2, generator=torch.Generator().manual_seed(0))
    from agentlab.models.dynamics import holdout_mask

    val = holdout_mask(1000, 0.1)
    z = model.in_norm(torch.cat([s, a], 1))[val]
    y = ((s2 - s - model.out_norm.mean) / model.out_norm.std)[val]
    final = trainer._holdout_error(z, y, torch.ones(len(z)))
    best = torch.stack(trainer.history).min(0).values
    torch.testing.assert_close(final, best)
    assert len(trainer.history) == 12


def test_sigma_for_ess_hits_the_target():
    from agentlab.models.dynamics import effective_sample_fraction, sigma_for_ess

    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 3, generator=g)
    e = torch.randn(20, 3, generator=g) * 0.3
    norm = Normalizer(3).fit(x)
    for target in (0.2, 0.5, 0.8):
        sigma = sigma_for_ess(x, e, norm, target)
        assert effective_sample_fraction(proximity_weights(x, e, norm, sigma)) == pytest.approx(target, abs=1e-3)
    assert sigma_for_ess(x, e, norm, 0.2) < sigma_for_ess(x, e, norm, 0.8)
    assert effective_sample_fraction(torch.ones(7)) == pytest.approx(1.0)
