r"""Quantum Boltzmann machine with classical visible units and quantum hidden units.

Model (Amin et al., PRX 8, 021050, 2018, restricted to classical visible units):

.. math::

    H(v) = -b^\top v - \sum_j a_j(v) Z_j - \sum_{j<k} U_{jk} Z_j Z_k - \Gamma \sum_j X_j,
    \qquad a(v) = W^\top v + c,

acting on the :math:`2^{n_h}`-dimensional hidden Hilbert space, with :math:`v \in \{0,1\}^{n_v}`.
The joint state is block diagonal over visible patterns,
:math:`\rho = \bigoplus_v e^{-\beta H(v)} / Z`, so

.. math::

    \log P(v) = \log \operatorname{Tr} e^{-\beta H(v)} - \log \sum_{v'} \operatorname{Tr} e^{-\beta H(v')}

is computable exactly for small :math:`n_v, n_h` from the eigenvalues of each block. Exact
maximum likelihood differentiates through ``torch.linalg.eigvalsh`` (the eigenvalue gradient is
:math:`\partial\lambda_i = u_i^\top \partial H u_i`, i.e. the analytic clamped-minus-model
gradient :math:`\langle \partial H \rangle_{\rho(v)} - \langle \partial H \rangle_{\rho}`).

With ``learn_gamma=True``, :math:`\Gamma` is a parameter of the exact likelihood as well
(:math:`\partial H / \partial \Gamma = -\sum_j X_j`); its sign is irrelevant (a rotation of every
hidden qubit about Z maps :math:`\Gamma \to -\Gamma`), so :math:`|\Gamma|` is reported.

Memory of the exact path: one pattern's dense block holds :math:`4^{n_h}` float64 numbers
(128 MiB at :math:`n_h = 12`), and eigendecomposition plus the stored eigenvectors for the gradient
take a few such blocks. Patterns are therefore processed in chunks sized by :data:`MEMORY_BUDGET`
(:func:`exact_chunk`); when the saved state for all :math:`2^{n_v}` patterns would not fit, the
gradient is accumulated chunk by chunk in two passes (first the no-grad log-traces give
:math:`\partial\,\mathrm{NLL} / \partial \log \operatorname{Tr} e^{-\beta H(v)} = P(v) - \hat p(v)`,
then each chunk is recomputed with gradients), so the peak stays at one chunk. At :math:`n_h = 12`
that is one pattern at a time (about 0.6 GiB), and one likelihood evaluation costs
:math:`2^{n_v}` dense 4096 x 4096 eigendecompositions (seconds each on one CPU core): possible, not
practical for training.

Beyond the exact limit (``n_h > 12``, only with the bound option) the reported state is the
Golden-Thompson surrogate :math:`e^{-\beta H_{\mathrm{diag}}(v)}/Z` (classical correlations only);
with :math:`\Gamma = 0` that is the exact state.

The hidden state for a pattern is :math:`\rho(v) = e^{-\beta H(v)} / \operatorname{Tr} e^{-\beta H(v)}`,
computed from ``eigh`` with the eigenvalues shifted by :math:`\lambda_{\min}` (i.e. a shift by
:math:`\lambda_{\min} I`, never by a scalar added to every matrix entry). Hidden units are split
into halves A|B; we report :math:`S(\rho_A)` and :math:`I(A{:}B) = S_A + S_B - S_{AB}`. For a mixed
state :math:`S(\rho_A)` alone mixes cross-partition correlation with plain thermal mixedness;
:math:`I(A{:}B)` is zero for every product state (``U = 0``) and is the quantity that measures
coupling between the halves (classical + quantum correlation; it is not an entanglement
monotone for mixed states).

Scalable option (``training="golden_thompson"``): Golden-Thompson gives
:math:`\operatorname{Tr} e^{-\beta H(v)} \le \cosh(\beta\Gamma)^{n_h} \operatorname{Tr} e^{-\beta H_{\mathrm{diag}}(v)}`;
the constant cancels in the normalised likelihood, so bound training is exact training of the
diagonal (classical) Boltzmann machine, :math:`O(2^{n_h})` per pattern instead of
:math:`O(8^{n_h})`. :math:`\Gamma` then only enters when the state is evaluated.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

from agentlab.errors import UserError

EXACT_LIMIT = 12  #: largest n_h for which density matrices are built exactly (2^12 x 2^12)
EIG_CUTOFF = 1e-12
MEMORY_BUDGET = 1 << 30  #: bytes the exact path may hold for one chunk of patterns (1 GiB)
BLOCKS_PER_PATTERN = 5  #: dense d x d float64 blocks alive per pattern (H, eigenvectors, rho, products)


def exact_chunk(n_hidden: int, budget: int = MEMORY_BUDGET, cap: int = 256) -> int:
    """Patterns per chunk so that ``BLOCKS_PER_PATTERN`` dense blocks per pattern fit in ``budget``
    bytes (at least 1, at most ``cap``): 256 for n_h <= 8, 1 at n_h = 12 (0.6 GiB per pattern)."""
    per = BLOCKS_PER_PATTERN * 8 * 4**n_hidden
    return int(max(1, min(cap, budget // per)))


@dataclass
class QBMConfig:
    #: number of classical visible units (binary patterns: 2^n_v)
    n_visible: int = 8
    #: number of quantum hidden units (qubits); split in halves A|B for the entropies
    n_hidden: int = 6
    #: transverse-field strength Gamma (0 = classical Boltzmann machine); initial value if learned
    gamma: float = 0.5
    #: learn Gamma by exact maximum likelihood (requires training="exact")
    learn_gamma: bool = False
    #: inverse temperature beta
    beta: float = 1.0
    #: learn hidden-hidden ZZ couplings U (False = product-state ablation, I(A:B) = 0)
    couplings: bool = True
    #: "exact" (ML through eigvalsh) or "golden_thompson" (bound; scalable)
    training: str = "exact"
    #: Adam learning rate
    lr: float = 0.05
    #: full-batch gradient steps (the data enter only as pattern counts)
    steps: int = 150
    #: L2 penalty on weights
    weight_decay: float = 1e-3
    #: allow n_hidden > EXACT_LIMIT (requires training="golden_thompson"; slow evaluation)
    allow_large: bool = False
    #: random seed for the initial weights
    seed: int = 0


@contextlib.contextmanager
def single_thread():
    """Batched eigh of many small matrices gains nothing from intra-op threads on CPU and loses a
    lot under contention (measured 12x slower with 2 threads on a loaded 2-core machine), so the QBM's
    CPU kernels run on one thread; the previous setting is restored afterwards."""
    n = torch.get_num_threads()
    if n > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if n > 1:
            torch.set_num_threads(n)


def all_patterns(n: int, dtype=torch.float64) -> torch.Tensor:
    """All 2^n binary patterns, row i = binary digits of i (most significant first)."""
    idx = torch.arange(2**n)
    bits = (idx.unsqueeze(1) >> torch.arange(n - 1, -1, -1)) & 1
    return bits.to(dtype)


def spin_table(n: int, dtype=torch.float64) -> torch.Tensor:
    """z[s, j] in {+1,-1}: eigenvalue of Z_j on computational basis state s (bit 0 -> +1)."""
    return 1.0 - 2.0 * all_patterns(n, dtype)


def transverse_sum(n: int, dtype=torch.float64) -> torch.Tensor:
    """Dense matrix of sum_j X_j on n qubits (qubit 0 is the most significant bit)."""
    d = 2**n
    m = torch.zeros(d, d, dtype=dtype)
    idx = torch.arange(d)
    for j in range(n):
        flip = idx ^ (1 << (n - 1 - j))
        m[idx, flip] += 1.0
    return m


def patterns_to_index(v: np.ndarray) -> np.ndarray:
    """Binary rows -> integer pattern index (most significant bit first)."""
    v = np.asarray(v).astype(np.int64)
    w = 1 << np.arange(v.shape[1] - 1, -1, -1, dtype=np.int64)
    return v @ w


def entropy_from_probs(p: torch.Tensor) -> torch.Tensor:
    """Shannon/von Neumann entropy (nats) from eigenvalues along the last axis; drops < 1e-12."""
    p = p.clamp(min=0.0)
    mask = p > EIG_CUTOFF
    safe = torch.where(mask, p, torch.ones_like(p))
    return -(torch.where(mask, p * torch.log(safe), torch.zeros_like(p))).sum(-1)


def von_neumann_entropy(rho: torch.Tensor) -> torch.Tensor:
    """S(rho) = -Tr rho log rho for a batch of density matrices (..., d, d)."""
    ev = torch.linalg.eigvalsh(rho)
    return entropy_from_probs(ev)


def partial_traces(rho: torch.Tensor, d_a: int, d_b: int) -> tuple[torch.Tensor, torch.Tensor]:
    """rho_A = Tr_B rho and rho_B = Tr_A rho for rho of shape (..., d_a*d_b, d_a*d_b)."""
    r = rho.reshape(*rho.shape[:-2], d_a, d_b, d_a, d_b)
    rho_a = torch.einsum("...ijkj->...ik", r)
    rho_b = torch.einsum("...ijil->...jl", r)
    return rho_a, rho_b


class QBM(torch.nn.Module):
    """QBM with classical visibles and transverse-field hidden qubits (see module docstring)."""

    def __init__(self, config: QBMConfig, device: str | torch.device = "cpu"):
        super().__init__()
        c = config
        if c.n_hidden < 2:
            raise UserError(f"n_hidden must be >= 2 (got {c.n_hidden}): the hidden units are split in halves A|B")
        if c.training not in ("exact", "golden_thompson"):
            raise UserError(f"training must be 'exact' or 'golden_thompson', got {c.training!r}")
        if c.n_hidden > EXACT_LIMIT and not (c.allow_large and c.training == "golden_thompson"):
            raise UserError(
                f"n_hidden={c.n_hidden} exceeds the exact limit {EXACT_LIMIT}; use the Golden-Thompson bound "
                "option (training='golden_thompson', allow_large=True)"
            )
        if c.learn_gamma and c.training != "exact":
            raise UserError("learn_gamma needs training='exact' (the Golden-Thompson bound does not depend on Gamma)")
        if c.n_visible > 16:
            raise UserError(f"n_visible={c.n_visible} > 16: the exact partition function sums 2^n_v patterns")
        self.config = c
        g = torch.Generator().manual_seed(int(c.seed))
        dt = torch.float64
        self.b = torch.nn.Parameter(torch.zeros(c.n_visible, dtype=dt))
        self.W = torch.nn.Parameter(0.1 * torch.randn(c.n_visible, c.n_hidden, generator=g, dtype=dt))
        self.c = torch.nn.Parameter(0.1 * torch.randn(c.n_hidden, generator=g, dtype=dt))
        self.U = torch.nn.Parameter(0.1 * torch.randn(c.n_hidden, c.n_hidden, generator=g, dtype=dt))
        if c.learn_gamma:
            self.gamma_param = torch.nn.Parameter(torch.tensor(float(c.gamma), dtype=dt))
        self.register_buffer("triu_mask", torch.triu(torch.ones(c.n_hidden, c.n_hidden, dtype=dt), 1))
        self.register_buffer("spins", spin_table(c.n_hidden, dt))
        self.register_buffer("patterns", all_patterns(c.n_visible, dt))
        self._xsum = None  # built lazily: 2^n_h x 2^n_h dense
        self.to(device)

    # ------------------------------------------------------------------ Hamiltonian
    @property
    def n_a(self) -> int:
        return self.config.n_hidden // 2

    def gamma(self):
        """Transverse field: the config value, or the learned parameter (a tensor) with learn_gamma."""
        return self.gamma_param if self.config.learn_gamma else self.config.gamma

    def classical(self) -> bool:
        """True when the state is diagonal (Gamma fixed at 0)."""
        return not self.config.learn_gamma and self.config.gamma == 0.0

    def gamma_value(self) -> float:
        return abs(float(torch.as_tensor(self.gamma()).detach()))

    def coupling(self) -> torch.Tensor:
        if not self.config.couplings:
            return torch.zeros_like(self.U)
        return self.U * self.triu_mask

    def xsum(self) -> torch.Tensor:
        if self._xsum is None or self._xsum.device != self.W.device:
            self._xsum = transverse_sum(self.config.n_hidden, self.W.dtype).to(self.W.device)
        return self._xsum

    def diagonal_energy(self, v: torch.Tensor) -> torch.Tensor:
        """Diagonal of H(v) in the computational basis, shape (P, 2^n_h); excludes -b.v."""
        a = v @ self.W + self.c  # (P, n_h)
        s = self.spins  # (d, n_h)
        field = -(a @ s.T)  # (P, d)
        zz = -torch.einsum("sj,jk,sk->s", s, self.coupling(), s)  # (d,)
        return field + zz.unsqueeze(0)

    def hamiltonian(self, v: torch.Tensor) -> torch.Tensor:
        """Dense H(v) (hidden block, without the visible bias term), shape (P, d, d)."""
        diag = self.diagonal_energy(v)
        h = torch.diag_embed(diag)
        if not self.classical():
            h = h - self.gamma() * self.xsum()
        return h

    # ------------------------------------------------------------------ likelihood
    def log_trace(self, v: torch.Tensor, bound: bool = False) -> torch.Tensor:
        """log Tr exp(-beta H(v)) including the visible bias (differentiable), shape (P,)."""
        beta = self.config.beta
        vis = beta * (v @ self.b)
        if not self.config.couplings and not bound:
            # product state: H(v) = sum_j h_j with h_j = -a_j Z - Gamma X, eigenvalues +-sqrt(a_j^2 + Gamma^2)
            a = v @ self.W + self.c
            e = torch.sqrt(a * a + self.gamma() ** 2)
            return (beta * e + torch.log1p(torch.exp(-2.0 * beta * e))).sum(-1) + vis
        if bound or self.classical():
            diag = self.diagonal_energy(v)
            lt = torch.logsumexp(-beta * diag, dim=-1)
            if bound and self.config.gamma != 0.0:
                lt = lt + self.config.n_hidden * math.log(math.cosh(beta * self.config.gamma))
            return lt + vis
        ev = torch.linalg.eigvalsh(self.hamiltonian(v))
        return torch.logsumexp(-beta * ev, dim=-1) + vis

    def chunk(self, bound: bool = False) -> int:
        """Patterns per chunk: dense blocks only on the exact path with Gamma != 0 and couplings."""
        dense = not (bound or self.classical() or not self.config.couplings)
        return exact_chunk(self.config.n_hidden) if dense else 256

    def all_log_traces(self, bound: bool = False) -> torch.Tensor:
        c = self.chunk(bound)
        return torch.cat([self.log_trace(self.patterns[i : i + c], bound) for i in range(0, len(self.patterns), c)])

    def log_partition(self, bound: bool = False) -> torch.Tensor:
        return torch.logsumexp(self.all_log_traces(bound), dim=0)

    def log_prob_patterns(self, bound: bool | None = None) -> torch.Tensor:
        """log P(v) for all 2^n_v patterns (index order of :func:`all_patterns`)."""
        if bound is None:
            bound = self.config.training == "golden_thompson"
        lt = self.all_log_traces(bound)
        return lt - torch.logsumexp(lt, dim=0)

    def nll(self, counts: torch.Tensor, bound: bool | None = None) -> torch.Tensor:
        """Mean negative log-likelihood of data given as pattern counts (length 2^n_v)."""
        lp = self.log_prob_patterns(bound)
        return -(counts * lp).sum() / counts.sum()

    def needs_accumulation(self, bound: bool = False, budget: int = MEMORY_BUDGET) -> bool:
        """True when the autograd state of all 2^n_v dense blocks would exceed ``budget`` bytes."""
        dense = not (bound or self.classical() or not self.config.couplings)
        return dense and len(self.patterns) * 2 * 8 * 4**self.config.n_hidden > budget

    def nll_backward(self, counts: torch.Tensor, bound: bool = False) -> torch.Tensor:
        """NLL with its gradient accumulated chunk by chunk (peak memory: one chunk).

        d NLL / d lt(v) = P(v) - counts(v) / N, so a no-grad pass gives the weights and each chunk's
        ``(w * lt_chunk).sum()`` is back-propagated on its own; equal to ``nll(...).backward()``."""
        with torch.no_grad():
            lt = self.all_log_traces(bound)
            logz = torch.logsumexp(lt, dim=0)
            p_hat = counts / counts.sum()
            w = torch.exp(lt - logz) - p_hat
            loss = -(p_hat * (lt - logz)).sum()
        c = self.chunk(bound)
        for i in range(0, len(self.patterns), c):
            (w[i : i + c] * self.log_trace(self.patterns[i : i + c], bound)).sum().backward()
        return loss

    def fit(self, v: np.ndarray, steps: int | None = None, progress=None) -> list[float]:
        """Exact (or Golden-Thompson) maximum likelihood on binary rows ``v`` (N, n_v)."""
        with single_thread():
            return self._fit(v, steps, progress)

    def _fit(self, v: np.ndarray, steps: int | None = None, progress=None) -> list[float]:
        v = np.asarray(v)
        if v.ndim != 2 or v.shape[1] != self.config.n_visible:
            raise UserError(f"expected binary patterns of shape (N, {self.config.n_visible}), got {v.shape}")
        if len(v) == 0:
            raise UserError("no visible patterns to fit")
        counts = np.bincount(patterns_to_index(v), minlength=2**self.config.n_visible)
        counts_t = torch.as_tensor(counts, dtype=self.W.dtype, device=self.W.device)
        opt = torch.optim.Adam(self.parameters(), lr=self.config.lr)
        bound = self.config.training == "golden_thompson"
        hist = []
        accumulate = self.needs_accumulation(bound)
        for _ in range(steps if steps is not None else self.config.steps):
            opt.zero_grad()
            reg = self.config.weight_decay * (self.W.pow(2).sum() + self.coupling().pow(2).sum())
            if accumulate:
                loss = self.nll_backward(counts_t, bound)
                reg.backward()
            else:
                loss = self.nll(counts_t, bound)
                (loss + reg).backward()
            opt.step()
            hist.append(float(loss.detach()))
            if progress is not None:
                progress()
        return hist

    # ------------------------------------------------------------------ states and statistics
    @torch.no_grad()
    def density_matrices(self, v: torch.Tensor) -> torch.Tensor:
        """rho(v) = exp(-beta H(v)) / Tr, shape (P, d, d), via eigh with a lambda_min * I shift."""
        if self.classical():
            diag = -self.config.beta * self.diagonal_energy(v)
            p = torch.softmax(diag, dim=-1)
            return torch.diag_embed(p)
        ev, vec = torch.linalg.eigh(self.hamiltonian(v))
        shifted = ev - ev[..., :1]  # eigh sorts ascending: ev[..., 0] = lambda_min
        w = torch.exp(-self.config.beta * shifted)
        w = w / w.sum(-1, keepdim=True)
        return (vec * w.unsqueeze(-2)) @ vec.transpose(-1, -2)

    @torch.no_grad()
    def pattern_statistics(self, v: torch.Tensor, chunk: int | None = None) -> dict[str, torch.Tensor]:
        """Per-pattern S_A, S_B, S_AB, I(A:B) and hidden magnetisations <Z_j>; ``chunk`` patterns at a
        time (default: :func:`exact_chunk`, i.e. bounded memory)."""
        with single_thread():
            return self._pattern_statistics(v, chunk or min(64, exact_chunk(self.config.n_hidden)))

    def _pattern_statistics(self, v: torch.Tensor, chunk: int) -> dict[str, torch.Tensor]:
        n_a = self.n_a
        d_a, d_b = 2**n_a, 2 ** (self.config.n_hidden - n_a)
        out = {"entropy": [], "entropy_b": [], "entropy_ab": [], "mi": [], "latent": []}
        diagonal = self.classical() or self.config.n_hidden > EXACT_LIMIT
        for i in range(0, len(v), chunk):
            if diagonal:
                # classical state (Gamma = 0), or beyond the exact limit the Golden-Thompson surrogate
                # exp(-beta H_diag(v)) / Z: entropies from the diagonal, no dense matrices
                p = torch.softmax(-self.config.beta * self.diagonal_energy(v[i : i + chunk]), dim=-1)
                pr = p.reshape(-1, d_a, d_b)
                s_a, s_b, s_ab = entropy_from_probs(pr.sum(2)), entropy_from_probs(pr.sum(1)), entropy_from_probs(p)
                out["entropy"].append(s_a)
                out["entropy_b"].append(s_b)
                out["entropy_ab"].append(s_ab)
                mi = s_a + s_b - s_ab
                out["mi"].append(torch.where(mi < 1e-10, torch.zeros_like(mi), mi))
                out["latent"].append(p @ self.spins)
                continue
            rho = self.density_matrices(v[i : i + chunk])
            ra, rb = partial_traces(rho, d_a, d_b)
            s_a, s_b, s_ab = von_neumann_entropy(ra), von_neumann_entropy(rb), von_neumann_entropy(rho)
            diag = torch.diagonal(rho, dim1=-2, dim2=-1)
            out["entropy"].append(s_a)
            out["entropy_b"].append(s_b)
            out["entropy_ab"].append(s_ab)
            mi = s_a + s_b - s_ab
            out["mi"].append(torch.where(mi < 1e-10, torch.zeros_like(mi), mi))  # round-off (~1e-15) -> exact 0
            out["latent"].append(diag @ self.spins)
        return {k: torch.cat(x) for k, x in out.items()}

    @torch.no_grad()
    def log_negativity(self, v: torch.Tensor) -> torch.Tensor:
        """E_N = log2 || rho(v)^{T_A} ||_1 across the A|B cut, per pattern (0 for separable-looking
        PPT states, > 0 certifies entanglement between the hidden halves)."""
        n_a = self.n_a
        d_a, d_b = 2**n_a, 2 ** (self.config.n_hidden - n_a)
        if self.classical():
            return torch.zeros(len(v), dtype=self.W.dtype)
        out = []
        c = min(64, exact_chunk(self.config.n_hidden))
        for i in range(0, len(v), c):
            rho = self.density_matrices(v[i : i + c])
            r = rho.reshape(-1, d_a, d_b, d_a, d_b).permute(0, 3, 2, 1, 4).reshape(rho.shape)  # T_A: i <-> k
            tn = torch.linalg.eigvalsh(r).abs().sum(-1)
            e = torch.log2(tn)
            out.append(torch.where(e < 1e-10, torch.zeros_like(e), e))
        return torch.cat(out)

    @torch.no_grad()
    def gamma_gap_ratio(self, v: torch.Tensor) -> torch.Tensor:
        """|Gamma| / (E_1 - E_0) of the classical part H_diag(v), per pattern (inf if degenerate)."""
        e = torch.sort(self.diagonal_energy(v), dim=-1).values
        gap = e[:, 1] - e[:, 0]
        return self.gamma_value() / gap

    # ------------------------------------------------------------------ persistence
    def state(self) -> dict:
        return {"config": asdict(self.config), "params": {k: p.detach().cpu() for k, p in self.named_parameters()}}

    @classmethod
    def from_state(cls, state: dict, device="cpu") -> QBM:
        m = cls(QBMConfig(**state["config"]), device=device)
        with torch.no_grad():
            for k, p in m.named_parameters():
                p.copy_(state["params"][k].to(p.device, p.dtype))
        return m
