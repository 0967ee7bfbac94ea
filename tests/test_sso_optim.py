"""The guarantees of the target-based surrogate optimiser (agentlab.optim.SSO)."""

import numpy as np
import pytest
import torch
from scipy import optimize

from agentlab.optim import SSO


def _ls_problem(n=64, d=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64) / np.sqrt(n)  # well conditioned, ||X|| ~ 1
    y = torch.randn(n, generator=g, dtype=torch.float64)
    return X, y


@pytest.mark.parametrize("inner", ["sgd-armijo", "sgd", "adam"])
def test_least_squares_one_outer_step_reaches_minimiser(inner):
    # l(z) = 1/2 ||z - y||^2 has L = 1; with eta = 1/L the surrogate is l(z(theta)) - l(z_t), so one outer
    # step that solves the inner problem lands on the least-squares solution.
    X, y = _ls_problem()
    theta = torch.zeros(X.shape[1], dtype=torch.float64, requires_grad=True)
    lr = {"sgd-armijo": None, "sgd": 1.0, "adam": 0.02}[inner]
    steps = {"sgd-armijo": 100, "sgd": 200, "adam": 600}[inner]
    opt = SSO([theta], eta=1.0, inner_steps=steps, inner=inner, inner_lr=lr)
    z_t = (X @ theta).detach()
    info = opt.step(target_fn=lambda: X @ theta, target_grad=z_t - y)
    exact = torch.linalg.lstsq(X, y.unsqueeze(1)).solution.squeeze(1)
    assert torch.allclose(theta.detach(), exact, atol=1e-6), (theta, exact)
    assert info["surrogate"].shape == (steps,)
    assert info["surrogate"][0].item() == 0.0  # h_t(theta_t) = 0 by construction
    assert info["eta"] == 1.0


def _logreg_problem(n=200, d=5, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    w = rng.normal(size=d)
    logits = X @ w + rng.normal(scale=2.0, size=n)  # label noise: not separable, finite optimum
    y = np.where(logits > 0, 1.0, -1.0)
    return X, y


def test_logistic_regression_monotone_and_matches_scipy():
    X_np, y_np = _logreg_problem()
    n = len(y_np)

    def loss_np(w):
        return np.mean(np.logaddexp(0.0, -y_np * (X_np @ w)))

    def grad_np(w):
        s = -y_np / (1.0 + np.exp(y_np * (X_np @ w)))
        return X_np.T @ s / n

    ref = optimize.minimize(loss_np, np.zeros(X_np.shape[1]), jac=grad_np, method="BFGS",
                            options={"gtol": 1e-12, "maxiter": 10_000})
    X, y = torch.from_numpy(X_np), torch.from_numpy(y_np)
    theta = torch.zeros(X.shape[1], dtype=torch.float64, requires_grad=True)
    # l(z) = mean log(1 + exp(-y z)) is L-smooth in z with L = 1 / (4 n): eta = 1/L
    opt = SSO([theta], eta=4.0 * n, inner_steps=10, inner="sgd-armijo")

    def loss_t(z):
        return torch.nn.functional.softplus(-y * z).mean()

    losses = []
    for _ in range(80):
        z = (X @ theta).detach().requires_grad_(True)
        loss = loss_t(z)
        (g,) = torch.autograd.grad(loss, z)
        losses.append(loss.item())
        opt.step(target_fn=lambda: X @ theta, target_grad=g, targets=z.detach())
    final = loss_t(X @ theta).item()
    losses.append(final)
    diffs = np.diff(losses)
    assert np.all(diffs <= 1e-12), f"loss increased: max increase {diffs.max()}"
    assert abs(final - ref.fun) < 1e-4
    assert np.max(np.abs(theta.detach().numpy() - ref.x)) < 1e-4


def test_m1_inner_sgd_is_plain_sgd():
    torch.manual_seed(0)
    x = torch.randn(32, 5, dtype=torch.float64)
    labels = torch.randint(0, 3, (32,))

    def make():
        torch.manual_seed(1)
        return torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3)).double()

    a, b = make(), make()
    eta = 0.3
    sso = SSO(a.parameters(), eta=eta, inner_steps=1, inner="sgd", inner_lr=eta)
    sgd = torch.optim.SGD(b.parameters(), lr=eta)
    for _ in range(25):
        z = a(x).detach().requires_grad_(True)
        (g,) = torch.autograd.grad(torch.nn.functional.cross_entropy(z, labels), z)
        sso.step(target_fn=lambda: a(x), target_grad=g, targets=z.detach())
        sgd.zero_grad()
        torch.nn.functional.cross_entropy(b(x), labels).backward()
        sgd.step()
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.allclose(pa, pb, atol=1e-6, rtol=0)
    # and it moved: the equivalence is not the trivial "nothing happened"
    assert not torch.allclose(next(iter(make().parameters())), next(iter(a.parameters())))


@pytest.mark.parametrize("inner", ["adam", "sgd"])
def test_inner_loop_does_not_sync_with_host(monkeypatch, inner):
    # with adam / sgd the inner loop must not read device values on the host
    model = torch.nn.Linear(4, 2)
    x = torch.randn(16, 4)
    opt = SSO(model.parameters(), eta=1.0, inner_steps=5, inner=inner, inner_lr=0.01)
    z = model(x).detach()
    g = torch.randn_like(z)

    def forbidden(*_a, **_k):
        raise AssertionError("host sync inside SSO.step")

    monkeypatch.setattr(torch.Tensor, "item", forbidden)
    monkeypatch.setattr(torch.Tensor, "__bool__", forbidden)
    monkeypatch.setattr(torch.Tensor, "__float__", forbidden)
    info = opt.step(target_fn=lambda: model(x), target_grad=g, targets=z)
    monkeypatch.undo()
    assert torch.isfinite(info["surrogate"]).all()
    assert info["surrogate"][-1].item() < 0  # the surrogate went down from 0


def test_armijo_diagnostics_and_surrogate_decreases():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))
    x, y = torch.randn(64, 4), torch.randn(64, 2)
    opt = SSO(model.parameters(), eta=32.0, inner_steps=20)
    z = model(x).detach()
    g = 2 * (z - y) / z.numel()
    info = opt.step(target_fn=lambda: model(x), target_grad=g, targets=z)
    vals = info["surrogate"]
    assert torch.all(vals[1:] <= vals[:-1] + 1e-7)  # Armijo: every accepted step decreases h
    assert info["surrogate_final"] <= vals[-1]
    assert info["step_size"] > 0 and isinstance(info["backtracks"], int)
    assert ((model(x) - y).pow(2).mean() < (z - y).pow(2).mean()).item()


def test_eta_schedules():
    p = torch.nn.Parameter(torch.zeros(2))
    for sched, expect in [("constant", [2.0, 2.0, 2.0]), ("sqrt", [2.0, 2.0 / 2**0.5, 2.0 / 3**0.5]),
                          ("exp", [2.0, 1.0, 0.5])]:
        opt = SSO([p], eta=2.0, inner_steps=1, inner="sgd", inner_lr=0.1, eta_schedule=sched, eta_decay=0.5)
        got = []
        for _ in range(3):
            got.append(opt.step(target_fn=lambda: p * 1.0, target_grad=torch.ones(2))["eta"])
        assert np.allclose(got, expect)


def test_state_dict_roundtrip_continues_identically():
    def run(split):
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 2)
        x, y = torch.randn(20, 3), torch.randn(20, 2)
        opt = SSO(model.parameters(), eta=10.0, inner_steps=3, inner="adam", inner_lr=0.05, eta_schedule="sqrt")
        for t in range(6):
            if t == split:
                state = {k: v.clone() for k, v in model.state_dict().items()}
                ostate = opt.state_dict()
                model = torch.nn.Linear(3, 2)
                model.load_state_dict(state)
                opt = SSO(model.parameters(), eta=10.0, inner_steps=3, inner="adam", inner_lr=0.05,
                          eta_schedule="sqrt")
                opt.load_state_dict(ostate)
            z = model(x).detach()
            opt.step(target_fn=lambda m=model: m(x), target_grad=(z - y) / 20, targets=z)
        return model.weight.detach()

    assert torch.equal(run(None), run(3))


def test_bad_arguments():
    p = [torch.nn.Parameter(torch.zeros(1))]
    with pytest.raises(ValueError):
        SSO(p, eta=0.0)
    with pytest.raises(ValueError):
        SSO(p, inner_steps=0)
    with pytest.raises(ValueError):
        SSO(p, inner="lbfgs")
    with pytest.raises(ValueError):
        SSO(p, eta_schedule="cosine")
    opt = SSO(p)
    with pytest.raises(TypeError):
        opt.step()
    with pytest.raises(ValueError):
        opt.step(target_fn=lambda: p[0] * 2, target_grad=torch.zeros(3))


def _mlp_regression(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2)).double()
    x, y = torch.randn(40, 4, dtype=torch.float64), torch.randn(40, 2, dtype=torch.float64)
    return model, x, y


@pytest.mark.parametrize("c", [0.1, 0.5])
def test_sls_eta_satisfies_target_space_armijo_and_is_maximal(c):
    # a non-quadratic loss in target space (log-cosh), so the accepted eta is not a closed form
    model, x, y = _mlp_regression()

    def loss_of(z):
        return torch.log(torch.cosh(3.0 * (z - y))).mean()

    beta, eta_max = 0.9, 1e4
    opt = SSO(model.parameters(), eta="sls", inner_steps=5, sls_c=c, sls_beta=beta, eta_max=eta_max)
    for _ in range(6):
        z = model(x).detach().requires_grad_(True)
        (g,) = torch.autograd.grad(loss_of(z), z)
        z = z.detach()
        prev = opt._sls_eta
        info = opt.step(target_fn=lambda: model(x), target_grad=g, targets=z, target_loss=loss_of)
        eta = info["eta"]
        # the Armijo condition holds at the chosen eta ...
        assert loss_of(z - eta * g) <= loss_of(z) - c * eta * g.pow(2).sum() + 1e-15
        # ... and failed at the trial before it (eta / beta), unless eta is the first trial
        first = eta_max if prev is None else min(2.0 * prev, eta_max)
        if info["sls_backtracks"] > 0:
            assert loss_of(z - eta / beta * g) > loss_of(z) - c * eta / beta * g.pow(2).sum()
            assert np.isclose(eta, first * beta ** info["sls_backtracks"])
        else:
            assert np.isclose(eta, first)
        if c == 0.5:
            # c = 1/2: the surrogate is an upper bound of the loss at its target-space minimiser z - eta g
            d = -eta * g
            assert loss_of(z + d) <= loss_of(z) + (g * d).sum() + d.pow(2).sum() / (2 * eta) + 1e-15


def test_sls_on_a_quadratic_accepts_up_to_2_1_minus_c_over_L():
    # l(z) = ||z - y||^2 / 2 (L = 1): Armijo holds iff eta <= 2 (1 - c) / L, the largest trial below it is taken
    p = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    y = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    opt = SSO([p], eta="sls", inner_steps=1, inner="sgd", inner_lr=0.1, sls_c=0.1, eta_max=100.0)
    info = opt.step(target_fn=lambda: p * 1.0, target_grad=(p - y).detach(), targets=p.detach().clone(),
                    target_loss=lambda z: 0.5 * (z - y).pow(2).sum())
    assert 1.8 * 0.9 < info["eta"] <= 1.8
    assert np.isclose(info["eta"], 100.0 * 0.9 ** info["sls_backtracks"])


def test_sls_schedule_and_needs_target_loss():
    p = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    y = torch.ones(2, dtype=torch.float64)
    opt = SSO([p], eta="sls", inner_steps=1, inner="sgd", inner_lr=0.01, eta_schedule="sqrt", eta_max=1.0)
    with pytest.raises(TypeError, match="target_loss"):
        opt.step(target_fn=lambda: p * 1.0, target_grad=(p - y).detach())
    etas = [opt.step(target_fn=lambda: p * 1.0, target_grad=(p - y).detach(),
                     target_loss=lambda z: 0.5 * (z - y).pow(2).sum())["eta"] for _ in range(3)]
    # eta_max = 1 = 1/L always passes (c = 0.1), so eta_t = 1 / sqrt(t + 1)
    assert np.allclose(etas, [1.0, 2 ** -0.5, 3 ** -0.5])


def test_ada_eta_matches_its_formula():
    model, x, y = _mlp_regression(1)
    eta0 = 7.0
    opt = SSO(model.parameters(), eta="ada", ada_eta0=eta0, inner_steps=3, inner="adam", inner_lr=0.01)
    total = 0.0
    for _ in range(5):
        z = model(x).detach()
        g = 2 * (z - y) / z.numel()
        total += g.pow(2).sum().item()
        info = opt.step(target_fn=lambda: model(x), target_grad=g, targets=z)
        assert np.isclose(info["eta"], eta0 / np.sqrt(total), rtol=1e-12)
        assert info["eta"] * g.norm().item() <= eta0 * (1 + 1e-12)  # the target-space step is at most eta0
    # invariant to rescaling the loss: eta_t g_t is unchanged when l -> 100 l
    a = SSO([torch.nn.Parameter(torch.zeros(1))], eta="ada", inner="sgd", inner_lr=1.0)
    b = SSO([torch.nn.Parameter(torch.zeros(1))], eta="ada", inner="sgd", inner_lr=1.0)
    ga, gb = torch.tensor([0.3, -0.4]), 100 * torch.tensor([0.3, -0.4])
    assert np.isclose(a.ada_eta(ga) * 0.5, b.ada_eta(gb) * 50.0)


def test_adaptive_eta_state_roundtrip():
    model, x, y = _mlp_regression(2)
    opt = SSO(model.parameters(), eta="ada", inner_steps=2)
    sls = SSO(model.parameters(), eta="sls", inner_steps=2)
    z = model(x).detach()
    g = 2 * (z - y) / z.numel()
    opt.step(target_fn=lambda: model(x), target_grad=g, targets=z)
    sls.step(target_fn=lambda: model(x), target_grad=g, targets=z, target_loss=lambda q: (q - y).pow(2).mean())
    o2 = SSO(model.parameters(), eta="ada", inner_steps=2)
    o2.load_state_dict(opt.state_dict())
    s2 = SSO(model.parameters(), eta="sls", inner_steps=2)
    s2.load_state_dict(sls.state_dict())
    assert o2._ada_sum == opt._ada_sum > 0 and s2._sls_eta == sls._sls_eta is not None


def test_inner_sgd_needs_an_explicit_learning_rate():
    p = [torch.nn.Parameter(torch.zeros(1))]
    with pytest.raises(ValueError, match="inner_lr"):
        SSO(p, eta=8000.0, inner="sgd")
    with pytest.raises(ValueError, match="eta"):
        SSO(p, eta="armijo")
    with pytest.raises(ValueError, match="schedule"):
        SSO(p, eta="ada", eta_schedule="sqrt")


def test_default_armijo_constants_are_the_references():
    opt = SSO([torch.nn.Parameter(torch.zeros(1))])
    assert (opt.armijo["c"], opt.armijo["beta"], opt.armijo["expand"]) == (0.1, 0.9, 2.0)
    assert (opt.sls["c"], opt.sls["beta"], opt.sls["expand"]) == (0.1, 0.9, 2.0)
