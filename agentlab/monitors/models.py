r"""Latent models scored with one statistic: the QBM and its baselines.

Every model maps a binary visible pattern ``v`` to a hidden/latent *state* and reports, per pattern,
``entropy`` = :math:`S(\rho_A)`, ``mi`` = :math:`I(A{:}B)` and a ``latent`` vector (used by the
temporal criteria). Because visible patterns are binary, a model is summarised by a table over all
:math:`2^{n_v}` patterns (the pattern cache).

* ``qbm``: transverse-field QBM with hidden ZZ couplings (:mod:`agentlab.monitors.qbm`).
* ``qbm_product``: the reference implementation's model (no hidden couplings) -- a product state, so
  :math:`I(A{:}B) = 0`; the ablation.
* ``bm``: classical Boltzmann machine with hidden couplings (:math:`\Gamma = 0`): the state is a
  diagonal (classical) distribution; :math:`I(A{:}B)` is the classical mutual information.
* ``rbm``: classical RBM (:math:`\Gamma = 0`, no hidden couplings): :math:`I(A{:}B) = 0`,
  :math:`S(\rho_A)` = sum of the hidden units' binary entropies.
* ``pca`` and ``ae``: deterministic codes :math:`z(v) \in \mathbb{R}^4`. To score them with the *same*
  statistic the code is read as a pure two-qubit state :math:`|z\rangle/\lVert z\rVert`, reshaped
  2 x 2; :math:`S(\rho_A)` comes from its Schmidt coefficients and :math:`I(A{:}B) = 2 S(\rho_A)`
  (pure state). This is a formal device so that every row of the table uses one formula; it gives
  no physical meaning to the codes.
"""

from __future__ import annotations

import numpy as np
import torch

from agentlab.errors import UserError
from agentlab.monitors.qbm import (
    QBM,
    QBMConfig,
    all_patterns,
    entropy_from_probs,
    patterns_to_index,
)

MODEL_KINDS = ("qbm", "qbm_product", "bm", "rbm", "pca", "ae")


def qbm_config_for(kind: str, n_v: int, n_h: int = 6, gamma: float = 0.5, seed: int = 0, **kw) -> QBMConfig:
    base = dict(n_visible=n_v, n_hidden=n_h, seed=seed, **kw)
    if kind == "qbm":
        return QBMConfig(gamma=gamma, couplings=True, **base)
    if kind == "qbm_product":
        return QBMConfig(gamma=gamma, couplings=False, **base)
    if kind == "bm":
        return QBMConfig(gamma=0.0, couplings=True, **base)
    if kind == "rbm":
        return QBMConfig(gamma=0.0, couplings=False, **base)
    raise ValueError(kind)


def pure_state_stats(z: torch.Tensor) -> dict[str, torch.Tensor]:
    """Read codes z (P, 4) as pure 2x2 states; S_A from Schmidt coefficients, I = 2 S_A."""
    norm = z.norm(dim=-1, keepdim=True)
    psi = torch.where(norm > 1e-12, z / norm.clamp(min=1e-12), torch.zeros_like(z))
    sv = torch.linalg.svdvals(psi.reshape(-1, 2, 2))
    s_a = entropy_from_probs(sv**2)
    s_a = torch.where(s_a < 1e-10, torch.zeros_like(s_a), s_a)
    return {"entropy": s_a, "mi": 2 * s_a, "latent": z}


class LatentModel:
    """Common interface: ``fit(v)``, ``table()`` (stats of all 2^n_v patterns), ``stats(v)``, ``state()``."""

    kind: str
    n_v: int

    def fit(self, v: np.ndarray) -> list[float]:
        raise NotImplementedError

    def stats(self, v: np.ndarray) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def table(self) -> dict[str, np.ndarray]:
        return self.stats(all_patterns(self.n_v).numpy().astype(np.uint8))

    def state(self) -> dict:
        raise NotImplementedError


class QBMModel(LatentModel):
    def __init__(self, kind: str, config: QBMConfig, device: str = "cpu"):
        self.kind, self.n_v = kind, config.n_visible
        self.qbm = QBM(config, device=device)

    def fit(self, v: np.ndarray) -> list[float]:
        return self.qbm.fit(v)

    def stats(self, v: np.ndarray) -> dict[str, np.ndarray]:
        vt = torch.as_tensor(np.asarray(v), dtype=torch.float64, device=self.qbm.W.device)
        return {k: x.cpu().numpy() for k, x in self.qbm.pattern_statistics(vt).items()
                if k in ("entropy", "mi", "latent")}

    def log_likelihood(self, v: np.ndarray) -> float:
        counts = np.bincount(patterns_to_index(v), minlength=2**self.n_v)
        with torch.no_grad():
            return -float(self.qbm.nll(torch.as_tensor(counts, dtype=torch.float64, device=self.qbm.W.device),
                                       bound=False))

    def state(self) -> dict:
        return {"kind": self.kind, **self.qbm.state()}


class PCAModel(LatentModel):
    def __init__(self, n_v: int, k: int = 4):
        self.kind, self.n_v, self.k = "pca", n_v, k

    def fit(self, v: np.ndarray) -> list[float]:
        x = np.asarray(v, np.float64)
        self.mean = x.mean(0)
        _, s, vt = np.linalg.svd(x - self.mean, full_matrices=False)
        comps = np.zeros((self.k, self.n_v))
        comps[: min(self.k, len(vt))] = vt[: self.k]
        self.components = comps
        return []

    def stats(self, v: np.ndarray) -> dict[str, np.ndarray]:
        z = torch.as_tensor((np.asarray(v, np.float64) - self.mean) @ self.components.T)
        return {k: x.numpy() for k, x in pure_state_stats(z).items()}

    def state(self) -> dict:
        return {"kind": "pca", "n_v": self.n_v, "mean": torch.as_tensor(self.mean),
                "components": torch.as_tensor(self.components)}


class AEModel(LatentModel):
    """Autoencoder n_v -> 16 -> 4 (tanh) -> 16 -> n_v, Bernoulli reconstruction, pattern-count weighted."""

    def __init__(self, n_v: int, k: int = 4, seed: int = 0, steps: int = 300):
        self.kind, self.n_v, self.k, self.steps = "ae", n_v, k, steps
        g = torch.Generator().manual_seed(seed)
        torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=g)))
        self.enc = torch.nn.Sequential(torch.nn.Linear(n_v, 16), torch.nn.Tanh(), torch.nn.Linear(16, k), torch.nn.Tanh())
        self.dec = torch.nn.Sequential(torch.nn.Linear(k, 16), torch.nn.Tanh(), torch.nn.Linear(16, n_v))

    def fit(self, v: np.ndarray) -> list[float]:
        counts = np.bincount(patterns_to_index(v), minlength=2**self.n_v)
        keep = counts > 0
        x = all_patterns(self.n_v, torch.float32)[torch.as_tensor(keep)]
        w = torch.as_tensor(counts[keep] / counts.sum(), dtype=torch.float32)
        opt = torch.optim.Adam(list(self.enc.parameters()) + list(self.dec.parameters()), lr=1e-2)
        hist = []
        for _ in range(self.steps):
            opt.zero_grad()
            logits = self.dec(self.enc(x))
            loss = (torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1) * w).sum()
            loss.backward()
            opt.step()
            hist.append(float(loss.detach()))
        return hist

    @torch.no_grad()
    def stats(self, v: np.ndarray) -> dict[str, np.ndarray]:
        z = self.enc(torch.as_tensor(np.asarray(v), dtype=torch.float32)).double()
        return {k: x.numpy() for k, x in pure_state_stats(z).items()}

    def state(self) -> dict:
        return {"kind": "ae", "n_v": self.n_v, "k": self.k,
                "enc": {k: t.clone() for k, t in self.enc.state_dict().items()},
                "dec": {k: t.clone() for k, t in self.dec.state_dict().items()}}


def make_model(kind: str, n_v: int, n_h: int = 6, gamma: float = 0.5, seed: int = 0, device: str = "cpu",
               **qbm_kw) -> LatentModel:
    if kind in ("qbm", "qbm_product", "bm", "rbm"):
        return QBMModel(kind, qbm_config_for(kind, n_v, n_h, gamma, seed, **qbm_kw), device=device)
    if kind == "pca":
        return PCAModel(n_v)
    if kind == "ae":
        return AEModel(n_v, seed=seed)
    raise UserError(f"unknown model {kind!r}; choose from {', '.join(MODEL_KINDS)}")


def model_from_state(state: dict, device: str = "cpu") -> LatentModel:
    kind = state["kind"]
    if kind in ("qbm", "qbm_product", "bm", "rbm"):
        m = QBMModel.__new__(QBMModel)
        m.kind, m.qbm = kind, QBM.from_state(state, device=device)
        m.n_v = m.qbm.config.n_visible
        return m
    if kind == "pca":
        m = PCAModel(int(state["n_v"]))
        m.mean, m.components = state["mean"].numpy(), state["components"].numpy()
        return m
    if kind == "ae":
        m = AEModel(int(state["n_v"]), int(state["k"]), steps=0)
        m.enc.load_state_dict(state["enc"])
        m.dec.load_state_dict(state["dec"])
        return m
    raise UserError(f"detector holds an unknown model kind {kind!r}")
