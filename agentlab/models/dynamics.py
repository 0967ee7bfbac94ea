r"""Probabilistic ensemble dynamics model (the "PE" of PETS) with per-sample weighted NLL.

Each of the ``N`` members is a Gaussian MLP on normalised inputs :math:`z = (s, a)`:

.. math::  p_k(y \mid z) = \mathcal N\big(\mu_k(z), \operatorname{diag} e^{\ell_k(z)}\big),
           \qquad y = \frac{(s' - s,\ [r]) - m_y}{\sigma_y}

(targets are the state delta, plus the reward when the task's reward is not known in closed form,
standardised by an output normaliser). The raw log-variance head is squashed into soft bounds,
``l = max - softplus(max - l); l = min + softplus(l - min)``, so the variance can neither collapse
nor explode on data far from the training set; as in mbrl-lib's default the bounds are constant
(``min = -10``, ``max = 0.5``, here in standardised target units); ``learn_logvar_bounds=True``
learns them, with the penalty below. The training loss of member ``k`` on its
bootstrap batch ``B_k`` is the *weighted* Gaussian NLL

.. math::  L_k = \frac{1}{|B_k|}\sum_{i \in B_k} w_i \cdot \frac1d \sum_j
           \big[(\mu_{kj} - y_{ij})^2 e^{-\ell_{kj}} + \ell_{kj}\big]
           \;\Big[+\; 0.01 \Big(\sum_j \ell^{\max}_{kj} - \sum_j \ell^{\min}_{kj}\Big)\Big]

summed over members (the bracket only with learned bounds; Adam with L2 weight decay). With
:math:`w_i = 1` this is the PETS loss;
the objective-mismatch re-weighting (Lambert et al., 2020) passes
:math:`w_i \propto \exp(-d_i^2 / 2\sigma^2)` with :math:`d_i` the distance of ``(s_i, a_i)`` to
the nearest expert point in normalised state-action space (:func:`proximity_weights`).

Training holds out a fixed fraction of the rows (by row index, so a row's split never changes as the
dataset grows), keeps for every member the parameters of its best held-out epoch of the current fit,
stops when no member improved by more than 1% for ``patience`` epochs, and ranks the members by
held-out error: the best ``num_elites`` ("elites") are the ones used for planning. On the first fit the
running best starts at +inf; on a retrain the weights it starts from are first re-expressed in the
refitted normalisers (:meth:`GaussianEnsemble.renormalize_`, exact for the mean) and scored on the new
held-out rows as "epoch 0", so a member that no epoch improves keeps its previous weights and a retrain
never returns a worse held-out error than the model had before it (as mbrl-lib, which keeps the last
weights unless an epoch improves on them). Each fit starts a fresh Adam and draws one bootstrap
resample per member.
All members run as one batched module (``agentlab.nn.EnsembleMLP``: one ``baddbmm`` per layer).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from agentlab.nn import EnsembleLinear, EnsembleMLP, Normalizer


class GaussianEnsemble(nn.Module):
    """``members`` Gaussian MLPs ``(s, a) -> N(delta s [, r], diag var)`` as one batched module."""

    def __init__(self, obs_dim: int, act_dim: int, *, members: int = 7, hidden: Sequence[int] = (200, 200, 200, 200),
                 activation: str = "silu", learn_reward: bool = False, num_elites: int = 5,
                 min_logvar: float = -10.0, max_logvar: float = 0.5, learn_logvar_bounds: bool = False):
        super().__init__()
        if not 1 <= num_elites <= members:
            raise ValueError(f"num_elites must be in [1, members={members}], got {num_elites}")
        self.obs_dim, self.act_dim, self.members = obs_dim, act_dim, members
        self.learn_reward = learn_reward
        self.in_dim = obs_dim + act_dim
        self.out_dim = obs_dim + int(learn_reward)
        self.net = EnsembleMLP(members, self.in_dim, list(hidden), 2 * self.out_dim, activation)
        self.in_norm = Normalizer(self.in_dim, eps=1e-6)
        self.out_norm = Normalizer(self.out_dim, eps=1e-6)
        hi = torch.full((members, 1, self.out_dim), float(max_logvar))
        lo = torch.full((members, 1, self.out_dim), float(min_logvar))
        self.learn_logvar_bounds = learn_logvar_bounds
        if learn_logvar_bounds:
            self.max_logvar, self.min_logvar = nn.Parameter(hi), nn.Parameter(lo)
        else:  # mbrl-lib's default: constant bounds (same state-dict keys)
            self.register_buffer("max_logvar", hi)
            self.register_buffer("min_logvar", lo)
        self.register_buffer("elites", torch.arange(num_elites))
        # bumped whenever the weights change (fit, renormalise, load): caches of quantities derived
        # from the weights (the LQR terminal value) compare versions instead of hashing tensors
        self.version = 0

    def load_state_dict(self, *args: Any, **kwargs: Any):
        self.version += 1
        return super().load_state_dict(*args, **kwargs)

    # -- normalisation ---------------------------------------------------------------------------
    def fit_normalizers(self, inputs: torch.Tensor, targets: torch.Tensor) -> None:
        self.in_norm.fit(inputs)
        self.out_norm.fit(targets)

    def make_targets(self, obs: torch.Tensor, next_obs: torch.Tensor, rewards: torch.Tensor | None) -> torch.Tensor:
        """Raw regression targets: ``s' - s`` (and ``r`` when the reward is learned)."""
        delta = next_obs - obs
        if self.learn_reward:
            return torch.cat([delta, rewards.reshape(-1, 1)], -1)
        return delta

    @property
    def normalizers_fitted(self) -> bool:
        """Whether :meth:`fit_normalizers` has run (the input normaliser is not the identity)."""
        return not (bool(torch.all(self.in_norm.mean == 0)) and bool(torch.all(self.in_norm.std == 1)))

    @torch.no_grad()
    def renormalize_(self, in_mean: torch.Tensor, in_std: torch.Tensor, out_mean: torch.Tensor,
                     out_std: torch.Tensor) -> None:
        """Re-express the weights, trained under the normalisers ``(in_mean, in_std)`` /
        ``(out_mean, out_std)``, in the *current* normalisers' coordinates: the first layer absorbs the
        input change (exact) and the output layer the target change -- exact for the predicted mean,
        and a shift of the raw log-variance by ``2 log(out_std / current std)`` before the soft bounds
        (so the variance is preserved wherever the bounds are inactive)."""
        linears = [m for m in self.net.net if isinstance(m, EnsembleLinear)]
        first, last = linears[0], linears[-1]
        r_in = self.in_norm.std / in_std
        c_in = (self.in_norm.mean - in_mean) / in_std
        first.bias.add_(torch.einsum("i,nih->nh", c_in, first.weight).unsqueeze(1))
        first.weight.mul_(r_in.view(1, -1, 1))
        r_out = out_std / self.out_norm.std
        c_out = (out_mean - self.out_norm.mean) / self.out_norm.std
        D = self.out_dim
        last.weight[..., :D] *= r_out
        last.bias[..., :D] = last.bias[..., :D] * r_out + c_out
        last.bias[..., D:] += 2 * torch.log(r_out)
        self.version += 1

    # -- forward ---------------------------------------------------------------------------------
    def _bound(self, logvar: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
        logvar = hi - F.softplus(hi - logvar)
        return lo + F.softplus(logvar - lo)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised inputs ``[N, B, in]`` (or ``[B, in]``) -> mean, log-variance ``[N, B, out]``
        in normalised target space."""
        out = self.net(z)
        mean, raw = out.split(self.out_dim, -1)
        return mean, self._bound(raw, self.min_logvar, self.max_logvar)

    def nll(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-member, per-sample Gaussian NLL ``[N, B]`` (mean over output dims, no constant)."""
        mean, logvar = self(z)
        return ((mean - y).pow(2) * torch.exp(-logvar) + logvar).mean(-1)

    def loss(self, z: torch.Tensor, y: torch.Tensor, w: torch.Tensor | None = None) -> torch.Tensor:
        """Weighted NLL of member batches ``z [N, B, in]``, ``y [N, B, out]``, ``w [N, B]``, summed over
        members, plus the soft-bound regulariser."""
        nll = self.nll(z, y)
        if w is not None:
            nll = nll * w
        loss = nll.mean(-1).sum()
        if self.learn_logvar_bounds:
            loss = loss + 0.01 * (self.max_logvar.sum() - self.min_logvar.sum())
        return loss

    @torch.no_grad()
    def predict(self, obs: torch.Tensor, act: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw-space mean and variance of the targets for every member: ``[N, B, out]`` each."""
        z = self.in_norm(torch.cat([obs, act], -1))
        mean, logvar = self(z)
        std = self.out_norm.std
        return mean * std + self.out_norm.mean, torch.exp(logvar) * std.pow(2)

    @torch.no_grad()
    def gaussian_nll(self, obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor,
                     rewards: torch.Tensor | None = None, members: str = "elites") -> float:
        """Mean per-dimension Gaussian NLL (with the 0.5 log 2 pi constant) of raw transitions under
        the mixture-free ensemble average of the member NLLs (elites by default), in raw units. This
        is the number the objective-mismatch diagnostic compares across models."""
        y = self.make_targets(obs, next_obs, rewards)
        mean, var = self.predict(obs, act)
        if members == "elites":
            mean, var = mean[self.elites], var[self.elites]
        nll = 0.5 * ((mean - y).pow(2) / var + var.log() + math.log(2 * math.pi))
        return float(nll.mean())

    # -- planning-time sampling -----------------------------------------------------------------
    @torch.no_grad()
    def sampler(self, propagation: str = "random", members: torch.Tensor | None = None
                ) -> Callable[[torch.Tensor, torch.Tensor, torch.Generator | None], tuple[torch.Tensor, torch.Tensor | None]]:
        """A function ``step(obs [B, D], act [B, A], generator) -> (next_obs [B, D], reward [B] | None)``
        that samples from the elite members, all ``B`` rows in one batched pass.

        ``propagation="random"`` (TS1, mbrl-lib's ``random_model``): every step, each row is sent to
        a random elite (a fresh permutation split into equal chunks, so no compute is wasted).
        ``"fixed"`` (TS-infinity): row ``j`` always uses elite ``j mod k``; ``"mean"``: the elites'
        mean prediction without sampling noise (deterministic; ``B x k`` compute).
        """
        if propagation not in ("random", "fixed", "mean"):
            raise ValueError(f"unknown propagation {propagation!r}")
        idx = self.elites if members is None else members
        k = len(idx)
        # gather the elites' weights once per plan, not once per step
        layers: list[Any] = []
        for m in self.net.net:
            if isinstance(m, EnsembleLinear):
                layers.append((m.weight[idx].detach(), m.bias[idx].detach()))
            else:
                layers.append(m)
        lo, hi = self.min_logvar[idx].detach(), self.max_logvar[idx].detach()
        in_mean, in_std = self.in_norm.mean, self.in_norm.std
        out_mean, out_std = self.out_norm.mean, self.out_norm.std
        obs_dim, out_dim, learn_reward = self.obs_dim, self.out_dim, self.learn_reward

        def net(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            h = z
            for layer in layers:
                h = torch.baddbmm(layer[1], h, layer[0]) if isinstance(layer, tuple) else layer(h)
            mean, raw = h.split(out_dim, -1)
            return mean, self._bound(raw, lo, hi)

        def step(obs: torch.Tensor, act: torch.Tensor, generator: torch.Generator | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
            B = obs.shape[0]
            z = (torch.cat([obs, act], -1) - in_mean) / in_std
            if propagation == "mean":
                mean, _ = net(z.unsqueeze(0).expand(k, B, -1))
                y = mean.mean(0)
            else:
                pad = (-B) % k
                if pad:
                    z = torch.cat([z, z[:pad]], 0)
                n = z.shape[0]
                if propagation == "random":
                    perm = torch.randperm(n, generator=generator, device=z.device)
                    zz = z[perm].view(k, n // k, -1)
                else:  # row j -> member j % k
                    zz = z.view(n // k, k, -1).transpose(0, 1)
                mean, logvar = net(zz)
                eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
                yy = mean + torch.exp(0.5 * logvar) * eps
                if propagation == "random":
                    y = torch.empty_like(yy.reshape(n, -1))
                    y[perm] = yy.reshape(n, -1)
                else:
                    y = yy.transpose(0, 1).reshape(n, -1)
                y = y[:B]
            y = y * out_std + out_mean
            next_obs = obs + y[:, :obs_dim]
            return next_obs, (y[:, obs_dim] if learn_reward else None)

        return step


def proximity_weights(inputs: torch.Tensor, expert_inputs: torch.Tensor, normalizer: Normalizer | None,
                      sigma: float, chunk: int = 4096) -> torch.Tensor:
    """Objective-mismatch re-weighting: ``w_i ~ exp(-d_i^2 / (2 sigma^2))``, mean 1.

    ``d_i`` is the Euclidean distance of ``inputs[i]`` (raw ``(s, a)``) to the nearest row of
    ``expert_inputs``, both normalised by ``normalizer`` (the model's input normaliser). The weights
    are computed as ``N * softmax(-d^2 / 2 sigma^2)``, which is the normalised exponential without
    underflow for small ``sigma``. ``sigma = inf`` gives exactly uniform weights (plain NLL).
    """
    n = inputs.shape[0]
    if math.isinf(sigma):
        return torch.ones(n, dtype=inputs.dtype, device=inputs.device)
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    x, e = inputs, expert_inputs
    if normalizer is not None:
        x, e = normalizer(x), normalizer(e)
    d2 = torch.cat([torch.cdist(x[i:i + chunk], e).min(1).values.pow(2) for i in range(0, n, chunk)])
    return n * torch.softmax(-d2 / (2 * sigma**2), 0)


def effective_sample_fraction(weights: torch.Tensor) -> float:
    """Kish effective sample size of ``weights`` as a fraction of their number: ``(sum w)^2 / (N sum w^2)``."""
    w = weights.double()
    return float(w.sum() ** 2 / w.pow(2).sum() / len(w))


def sigma_for_ess(inputs: torch.Tensor, expert_inputs: torch.Tensor, normalizer: Normalizer | None,
                  target: float = 0.5, iters: int = 40) -> float:
    """The kernel width whose :func:`proximity_weights` have effective sample size ``target * N``.

    The ESS fraction grows monotonically from ``1 / N``-ish (``sigma -> 0``: all weight on the nearest
    rows) to 1 (``sigma -> inf``), so a bisection on ``log sigma`` finds it. This is the stated rule that
    fixes sigma from the *training* data alone (never from evaluation returns)."""
    if not 0 < target < 1:
        raise ValueError(f"target must be in (0, 1), got {target}")
    lo, hi = math.log(1e-4), math.log(1e4)
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if effective_sample_fraction(proximity_weights(inputs, expert_inputs, normalizer, math.exp(mid))) < target:
            lo = mid
        else:
            hi = mid
    return math.exp(0.5 * (lo + hi))


def holdout_mask(n: int, ratio: float, offset: float = 0.0) -> torch.Tensor:
    """Which of rows ``0..n-1`` are held out: row ``i`` is held out iff ``frac(offset + i * phi) < ratio``
    (``phi`` the golden ratio). The assignment depends on the row index only, so a row keeps its split
    when the dataset grows: a model trained at one retrain has never seen the rows that score it at
    the next (a fresh random split would leak its own training rows into the held-out set)."""
    i = torch.arange(n, dtype=torch.float64)
    return torch.frac(offset + i * 0.6180339887498949) < ratio


class EnsembleTrainer:
    r"""Fits a :class:`GaussianEnsemble` on a (growing) dataset; every :meth:`fit` is self-contained.

    Per fit: the normalisers are refit on all rows, a fresh Adam is built (no moment estimates carried
    over from a fit on other data and other normaliser statistics), every member draws *one* bootstrap
    resample of the training rows (fixed for the fit, reshuffled every epoch, as mbrl-lib's
    ``BootstrapIterator``), and each member keeps the parameters of its best held-out epoch *of this
    fit*. On the first fit the running best starts at :math:`+\infty`. On a retrain (``keep_prefit``,
    the default) the starting weights are re-expressed in the refitted normalisers, which leaves the
    predicted mean unchanged, and scored on the new held-out rows as epoch 0: the running best starts
    there, so a member keeps its previous weights unless an epoch of this fit beats them, and a retrain
    never ends with a worse held-out error than the model had before it (tested). Patience (stop after
    ``patience`` epochs without a 1% gain) follows the fit's own epochs, from +inf, not the pre-fit score:
    the first steps of a fresh Adam on warm-started weights are usually worse than the start, and
    stopping there would freeze the model (seen in amendment 3 of results/mbrl/README.md). The held-out rows
    are fixed by row index (:func:`holdout_mask`), so no earlier fit has trained on them either: the
    pre-fit score is an honest one.
    """

    def __init__(self, model: GaussianEnsemble, lr: float = 7.5e-4, weight_decay: float = 3e-5,
                 batch_size: int = 256, holdout_ratio: float = 0.1, max_holdout: int = 5000, patience: int = 5,
                 max_epochs: int = 100, improvement: float = 0.01, keep_prefit: bool = True):
        self.model = model
        self.keep_prefit = keep_prefit
        self.lr, self.weight_decay = lr, weight_decay
        self.opt = self._new_optimizer()
        self.batch_size, self.holdout_ratio, self.max_holdout = batch_size, holdout_ratio, max_holdout
        self.patience, self.max_epochs, self.improvement = patience, max_epochs, improvement

    def _new_optimizer(self) -> torch.optim.Adam:
        return torch.optim.Adam(self.model.parameters(), lr=self.lr, weight_decay=self.weight_decay)

    @torch.no_grad()
    def _holdout_error(self, z: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """Per-member weighted MSE of the mean on the held-out set (normalised target space)."""
        mean, _ = self.model(z)
        return ((mean - y).pow(2).mean(-1) * w).mean(-1)

    @torch.no_grad()
    def holdout_error(self, obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor,
                      rewards: torch.Tensor | None = None) -> torch.Tensor:
        """Per-member (unweighted) MSE of the mean on raw transitions, in the current normalised target
        space: the score :meth:`fit` early-stops on, for data outside the fit."""
        model = self.model
        targets = model.make_targets(obs, next_obs, rewards)
        z = model.in_norm(torch.cat([obs, act], -1))
        y = (targets - model.out_norm.mean) / model.out_norm.std
        return self._holdout_error(z, y, torch.ones(len(z)))

    def fit(self, obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor, rewards: torch.Tensor | None = None,
            weights: torch.Tensor | None = None, generator: torch.Generator | None = None,
            max_epochs: int | None = None, early_stopping: bool = True) -> dict[str, float]:
        """Refit the normalisers on all data, then train with one bootstrap resample per member and
        held-out early stopping. Rows keep their held-out assignment across calls when the data grows
        by appending. Returns ``train/model_*`` metrics (epochs run, best epoch, held-out error)."""
        model = self.model
        inputs = torch.cat([obs, act], -1)
        targets = model.make_targets(obs, next_obs, rewards)
        prefit = self.keep_prefit and model.normalizers_fitted
        if prefit:
            old_norms = [t.clone() for t in (model.in_norm.mean, model.in_norm.std, model.out_norm.mean,
                                             model.out_norm.std)]
        model.fit_normalizers(inputs, targets)
        if prefit:
            model.renormalize_(*old_norms)  # same predictions as before the refit of the normalisers
        z_all, y_all = model.in_norm(inputs), (targets - model.out_norm.mean) / model.out_norm.std
        n = z_all.shape[0]
        w_all = torch.ones(n) if weights is None else weights.reshape(-1).to(z_all)
        is_val = holdout_mask(n, self.holdout_ratio) if early_stopping else torch.zeros(n, dtype=torch.bool)
        val = torch.nonzero(is_val).flatten()[: self.max_holdout]
        if n - len(val) < 2:
            val = val[:0]
        is_val = torch.zeros(n, dtype=torch.bool)
        is_val[val] = True
        tr = torch.nonzero(~is_val).flatten()
        n_val = len(val)
        z_tr, y_tr, w_tr = z_all[tr], y_all[tr], w_all[tr]
        z_val, y_val, w_val = z_all[val], y_all[val], w_all[val]
        N, n_tr = model.members, len(tr)
        epochs_max = self.max_epochs if max_epochs is None else max_epochs
        self.opt = self._new_optimizer()
        boot = torch.randint(0, n_tr, (N, n_tr), generator=generator)  # one bootstrap resample per member and fit
        best = torch.full((N,), math.inf)
        fit_best = torch.full((N,), math.inf)
        best_epoch = torch.zeros(N)
        best_state = {k: v.detach().clone() for k, v in model.named_parameters()} if n_val else None
        self.prefit_error: torch.Tensor | None = None
        if prefit and n_val:  # epoch 0: the weights the retrain starts from, on this fit's held-out rows
            model.eval()
            self.prefit_error = self._holdout_error(z_val, y_val, w_val)
            best = self.prefit_error.clone()
        stale, epochs, last_loss = 0, 0, float("nan")
        self.history: list[torch.Tensor] = []  # per-epoch held-out error of every member (this fit)
        model.train()
        for _ in range(epochs_max):
            order = torch.argsort(torch.rand(N, n_tr, generator=generator), 1)
            ep_idx = torch.gather(boot, 1, order)
            total = torch.zeros(())
            for b in range(0, n_tr, self.batch_size):
                ib = ep_idx[:, b:b + self.batch_size]
                loss = model.loss(z_tr[ib], y_tr[ib], w_tr[ib])
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                self.opt.step()
                total += loss.detach() * ib.shape[1]
            last_loss = float(total) / (n_tr * N)
            epochs += 1
            if n_val:
                err = self._holdout_error(z_val, y_val, w_val)
                self.history.append(err)
                better = err < best  # keep each member's best epoch (or its pre-fit weights if none beats them)
                # patience follows this fit's own progress (its running best starts at +inf), not the pre-fit
                # score: a fresh Adam's first steps on warm-started weights are often worse than the start
                significant = torch.isinf(fit_best) | ((fit_best - err) > self.improvement * fit_best.abs())
                fit_best = torch.minimum(fit_best, err)
                if better.any():
                    with torch.no_grad():
                        for k, p in model.named_parameters():
                            best_state[k][better] = p.detach()[better]
                    best = torch.where(better, err, best)
                    best_epoch = torch.where(better, torch.tensor(float(epochs)), best_epoch)
                if significant.any():
                    stale = 0
                else:
                    stale += 1
                    if stale >= self.patience:
                        break
        model.eval()
        if n_val:
            with torch.no_grad():
                for k, p in model.named_parameters():
                    p.copy_(best_state[k])
            score = self._holdout_error(z_val, y_val, w_val)
            model.elites.copy_(torch.argsort(score)[: len(model.elites)])
        else:
            score = torch.full((N,), float("nan"))
        elites = model.elites
        model.version += 1
        extra = {}
        if self.prefit_error is not None:
            extra = {"train/model_prefit_mse": float(self.prefit_error[elites].mean()),
                     "train/model_kept_prefit": float((best_epoch == 0).sum())}
        return {**extra, "train/model_loss": last_loss, "train/model_epochs": float(epochs),
                "train/model_best_epoch": float(best_epoch[elites].mean()) if n_val else float(epochs),
                "train/model_holdout_mse": float(score[elites].mean()) if n_val else float("nan"),
                "train/model_holdout_n": float(n_val), "train/model_data": float(n)}


def to_tensor(x: Any) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x, dtype=np.float32))
