"""QBM physics and training: exact states, partial traces, entropies, gradients, bounds."""

import math

import numpy as np
import pytest
import torch

from agentlab.errors import UserError
from agentlab.monitors.qbm import (QBM, QBMConfig, all_patterns, partial_traces, patterns_to_index, transverse_sum,
                                   von_neumann_entropy)


def _random_qbm(n_v=3, n_h=4, scale=1.0, seed=0, **kw):
    m = QBM(QBMConfig(n_visible=n_v, n_hidden=n_h, seed=seed, **kw))
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return m


def test_density_matrix_matches_matrix_exponential():
    m = _random_qbm(scale=0.8)
    v = m.patterns
    rho = m.density_matrices(v)
    ref = torch.matrix_exp(-m.config.beta * m.hamiltonian(v))
    ref = ref / torch.diagonal(ref, dim1=-2, dim2=-1).sum(-1)[:, None, None]
    assert torch.allclose(rho, ref, atol=1e-10)
    assert torch.allclose(torch.diagonal(rho, dim1=-2, dim2=-1).sum(-1), torch.ones(len(v), dtype=rho.dtype))
    assert torch.allclose(rho, rho.transpose(-1, -2))
    assert torch.linalg.eigvalsh(rho).min() > -1e-12


def test_lambda_min_shift_keeps_large_energies_finite():
    m = _random_qbm(scale=300.0)  # energies ~1e3: exp(-H) overflows without the lambda_min * I shift
    rho = m.density_matrices(m.patterns)
    assert torch.isfinite(rho).all()
    assert torch.allclose(torch.diagonal(rho, dim1=-2, dim2=-1).sum(-1), torch.ones(len(rho), dtype=rho.dtype))
    assert torch.isfinite(m.log_trace(m.patterns)).all()


def test_partial_trace_and_entropy_on_known_states():
    bell = torch.zeros(4, dtype=torch.float64)
    bell[0] = bell[3] = 1 / math.sqrt(2)
    rho = torch.outer(bell, bell)
    ra, rb = partial_traces(rho, 2, 2)
    assert torch.allclose(ra, torch.eye(2, dtype=torch.float64) / 2)
    assert torch.allclose(rb, torch.eye(2, dtype=torch.float64) / 2)
    assert abs(float(von_neumann_entropy(ra)) - math.log(2)) < 1e-12
    assert abs(float(von_neumann_entropy(rho))) < 1e-12
    # product state: partial traces return the factors (non-square split 2 x 4)
    a = torch.tensor([[0.7, 0.1], [0.1, 0.3]], dtype=torch.float64)
    b = torch.diag(torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64))
    ra, rb = partial_traces(torch.kron(a, b), 2, 4)
    assert torch.allclose(ra, a) and torch.allclose(rb, b)


def test_product_state_has_zero_mutual_information_and_coupled_state_does_not():
    prod = _random_qbm(n_h=4, couplings=False)
    st = prod.pattern_statistics(prod.patterns)
    assert float(st["mi"].abs().max()) < 1e-10
    coupled = _random_qbm(n_h=4, scale=0.3)
    with torch.no_grad():
        coupled.U.mul_(6.0)  # strong hidden-hidden ZZ couplings against the transverse field
    st2 = coupled.pattern_statistics(coupled.patterns)
    assert float(st2["mi"].max()) > 0.05
    # I = S_A + S_B - S_AB >= 0 (subadditivity)
    assert float((st2["entropy"] + st2["entropy_b"] - st2["entropy_ab"]).min()) > -1e-10


def test_gamma_zero_is_classical_and_matches_brute_force_shannon():
    m = _random_qbm(n_v=2, n_h=4, gamma=0.0)
    v = m.patterns[2:3]
    rho = m.density_matrices(v)[0]
    assert torch.allclose(rho, torch.diag(torch.diagonal(rho)))
    p = torch.diagonal(rho).reshape(4, 4)  # (A states, B states)
    pa = p.sum(1)
    s_a = -(pa * pa.log()).sum()
    st = m.pattern_statistics(v)
    assert abs(float(st["entropy"][0] - s_a)) < 1e-10


def test_gradients_equal_thermal_expectations():
    m = _random_qbm(n_v=3, n_h=3, scale=0.7)
    v = m.patterns[5:6]
    lt = m.log_trace(v).sum()
    gc, gu = torch.autograd.grad(lt, [m.c, m.U])
    rho = m.density_matrices(v)[0]
    z = m.spins
    p = torch.diagonal(rho)
    assert torch.allclose(gc, m.config.beta * (p @ z), atol=1e-8)  # d log Tr / d c_j = beta <Z_j>
    zz = torch.einsum("s,sj,sk->jk", p, z, z)
    assert torch.allclose(gu, m.config.beta * zz * m.triu_mask, atol=1e-8)


def test_exact_nll_gradient_matches_finite_differences():
    m = _random_qbm(n_v=3, n_h=3, scale=0.5)
    counts = torch.tensor([5, 0, 3, 1, 0, 2, 7, 1], dtype=torch.float64)
    loss = m.nll(counts, bound=False)
    (g,) = torch.autograd.grad(loss, [m.W])
    eps = 1e-6
    with torch.no_grad():
        for idx in [(0, 0), (2, 1), (1, 2)]:
            m.W[idx] += eps
            up = float(m.nll(counts, bound=False))
            m.W[idx] -= 2 * eps
            dn = float(m.nll(counts, bound=False))
            m.W[idx] += eps
            assert abs((up - dn) / (2 * eps) - float(g[idx])) < 1e-6


def test_probabilities_normalised_and_training_improves_likelihood():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 2, size=(4, 4))
    data = base[rng.integers(0, 4, size=400)]  # 4 prototype patterns
    m = QBM(QBMConfig(n_visible=4, n_hidden=4, steps=60, lr=0.1))
    assert abs(float(m.log_prob_patterns().detach().exp().sum()) - 1.0) < 1e-10
    hist = m.fit(data)
    assert hist[-1] < hist[0] - 0.5
    counts = np.bincount(patterns_to_index(data), minlength=16)
    emp = counts[counts > 0] / counts.sum()
    assert hist[-1] < -(emp * np.log(emp)).sum() + 0.5  # close to the data entropy (the optimum)


def test_golden_thompson_bound_is_an_upper_bound():
    m = _random_qbm(n_v=3, n_h=4, scale=0.9)
    exact = m.log_trace(m.patterns, bound=False)
    bound = m.log_trace(m.patterns, bound=True)
    assert (bound >= exact - 1e-10).all()
    assert (bound > exact + 1e-6).any()  # strict for Gamma > 0


def test_golden_thompson_training_runs_and_product_closed_form():
    m = QBM(QBMConfig(n_visible=3, n_hidden=4, training="golden_thompson", steps=5))
    m.fit(np.random.default_rng(0).integers(0, 2, size=(50, 3)))
    p = _random_qbm(n_h=3, couplings=False)
    closed = p.log_trace(p.patterns)
    p.config.couplings = True
    with torch.no_grad():
        p.U.zero_()
    assert torch.allclose(closed, p.log_trace(p.patterns), atol=1e-10)


def test_exact_limit_requires_the_bound_option():
    with pytest.raises(UserError, match="exact limit"):
        QBM(QBMConfig(n_visible=2, n_hidden=13))
    QBM(QBMConfig(n_visible=2, n_hidden=13, training="golden_thompson", allow_large=True))


def test_helpers():
    assert all_patterns(3)[5].tolist() == [1.0, 0.0, 1.0]
    assert patterns_to_index(np.array([[1, 0, 1], [0, 0, 1]])).tolist() == [5, 1]
    x = transverse_sum(2)
    assert torch.allclose(torch.linalg.eigvalsh(x), torch.tensor([-2.0, 0.0, 0.0, 2.0], dtype=torch.float64))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")
def test_cuda_matches_cpu():
    m = _random_qbm(n_v=3, n_h=4)
    st = m.pattern_statistics(m.patterns)
    mc = QBM.from_state(m.state(), device="cuda")
    st2 = mc.pattern_statistics(mc.patterns)
    assert torch.allclose(st["mi"], st2["mi"].cpu(), atol=1e-8)


def test_diagonal_statistics_match_dense_for_gamma_zero_and_bound_beyond_exact_limit():
    m = _random_qbm(n_v=3, n_h=4, gamma=0.0, scale=1.0)
    st = m.pattern_statistics(m.patterns)
    rho = torch.diag_embed(torch.softmax(-m.diagonal_energy(m.patterns), -1))
    ra, rb = partial_traces(rho, 4, 4)
    assert torch.allclose(st["entropy"], von_neumann_entropy(ra), atol=1e-12)
    assert torch.allclose(st["mi"], von_neumann_entropy(ra) + von_neumann_entropy(rb) - von_neumann_entropy(rho),
                          atol=1e-10)
    big = QBM(QBMConfig(n_visible=3, n_hidden=13, training="golden_thompson", allow_large=True, steps=2))
    big.fit(np.random.default_rng(0).integers(0, 2, size=(30, 3)))
    st = big.pattern_statistics(big.patterns)
    assert torch.isfinite(st["mi"]).all() and st["latent"].shape == (8, 13)


def test_learned_gamma_gradient_matches_finite_differences_and_round_trips():
    m = _random_qbm(n_v=3, n_h=4, scale=0.7, learn_gamma=True, gamma=0.8)
    counts = torch.tensor([5.0, 1, 0, 3, 2, 7, 1, 4], dtype=torch.float64)
    m.zero_grad()
    m.nll(counts).backward()
    g = float(m.gamma_param.grad)
    eps = 1e-6
    with torch.no_grad():
        m.gamma_param += eps
        up = float(m.nll(counts))
        m.gamma_param -= 2 * eps
        down = float(m.nll(counts))
        m.gamma_param += eps
    assert g == pytest.approx((up - down) / (2 * eps), rel=1e-5, abs=1e-9)
    v = (np.random.default_rng(0).random((200, 3)) < 0.3).astype(np.uint8)
    before = m.gamma_value()
    m.fit(v, steps=20)
    assert m.gamma_value() != before
    m2 = QBM.from_state(m.state())
    assert m2.gamma_value() == pytest.approx(m.gamma_value())
    assert torch.allclose(m2.log_prob_patterns(), m.log_prob_patterns())
    with pytest.raises(UserError, match="learn_gamma"):
        QBM(QBMConfig(learn_gamma=True, training="golden_thompson"))


def test_chunked_gradient_accumulation_equals_full_backward_and_memory_bound():
    from agentlab.monitors.qbm import BLOCKS_PER_PATTERN, MEMORY_BUDGET, exact_chunk

    m = _random_qbm(n_v=4, n_h=4, scale=0.6, gamma=0.9)
    counts = torch.arange(16, dtype=torch.float64) % 5
    m.zero_grad()
    full = m.nll(counts)
    full.backward()
    g1 = {k: p.grad.clone() for k, p in m.named_parameters()}
    m.zero_grad()
    acc = m.nll_backward(counts)
    assert float(acc) == pytest.approx(float(full), abs=1e-12)
    for k, p in m.named_parameters():
        assert torch.allclose(p.grad, g1[k], atol=1e-12), k
    # n_h = 12: one dense pattern block is 128 MiB; chunks stay within the budget, gradients accumulate
    assert exact_chunk(12) == 1 and exact_chunk(12) * BLOCKS_PER_PATTERN * 8 * 4**12 <= MEMORY_BUDGET
    assert exact_chunk(4) == 256 and exact_chunk(10) * BLOCKS_PER_PATTERN * 8 * 4**10 <= MEMORY_BUDGET
    big = QBM(QBMConfig(n_visible=8, n_hidden=12, gamma=0.5))
    assert big.needs_accumulation() and big.chunk() == 1
    assert not m.needs_accumulation() and not QBM(QBMConfig(n_hidden=12, gamma=0.0)).needs_accumulation()


def test_log_negativity_matches_explicit_partial_transpose():
    m = _random_qbm(n_v=2, n_h=4, scale=1.5, gamma=1.5, beta=3.0)
    v = m.patterns
    en = m.log_negativity(v)
    rho = m.density_matrices(v).numpy()
    for p in range(len(v)):
        r = rho[p].reshape(4, 4, 4, 4)
        pt = np.zeros_like(r)
        for i in range(4):
            for j in range(4):
                for k in range(4):
                    for li in range(4):
                        pt[i, j, k, li] = r[k, j, i, li]
        ref = np.log2(np.abs(np.linalg.eigvalsh(pt.reshape(16, 16))).sum())
        assert float(en[p]) == pytest.approx(max(ref, 0.0) if ref > 1e-10 else 0.0, abs=1e-9)
    assert float(en.max()) > 0.01  # strongly coupled, cold, transverse field: entangled halves
    assert float(_random_qbm(n_v=2, n_h=4, scale=1.5, gamma=0.0).log_negativity(v).abs().max()) == 0.0
    prod = _random_qbm(n_v=2, n_h=4, scale=1.5, gamma=1.5, couplings=False)
    assert float(prod.log_negativity(v).max()) < 1e-9  # product state: PPT
    assert torch.isfinite(m.gamma_gap_ratio(v)).all() and (m.gamma_gap_ratio(v) >= 0).all()
