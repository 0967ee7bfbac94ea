r"""Target-based surrogate optimisation (SSO; Lavington, Vaswani, Babanezhad, Schmidt, Le Roux, ICML 2023).

Setting: minimise :math:`f(\theta) = \ell(z(\theta))` where the *targets* :math:`z(\theta)` (model
outputs: logits, actions, predictions on a batch) are cheap to evaluate, but the gradient of the
loss with respect to them, :math:`g_t = \nabla_z \ell(z_t)`, is expensive (it needs new environment
interaction, expert labels, a simulator call). At the current targets :math:`z_t = z(\theta_t)` build

.. math::

    h_t(\theta) = \langle g_t,\, z(\theta) - z_t \rangle + \frac{1}{2\eta_t} \| z(\theta) - z_t \|^2

(the surrogate of the paper with the constant :math:`\ell(z_t)` dropped, so :math:`h_t(\theta_t) = 0`)
and decrease it with ``m`` cheap inner steps of a deterministic optimiser on the fixed batch, then pay
for the next expensive gradient. Properties used by the tests:

* if :math:`\ell` is :math:`L`-smooth and :math:`\eta \le 1/L`, then
  :math:`\ell(z(\theta)) \le \ell(z_t) + h_t(\theta)` for *every* :math:`\theta`, so any inner
  progress (:math:`h_t(\theta_{t+1}) \le 0`) never increases the loss (majorisation-minimisation);
* for :math:`\ell(z) = \tfrac12\|z - y\|^2` and :math:`\eta = 1/L = 1` the surrogate equals
  :math:`\ell(z(\theta)) - \ell(z_t)`: one outer step with an exact inner solve is the minimiser;
* :math:`\nabla h_t(\theta_t) = J^\top g_t = \nabla f(\theta_t)`, so ``m = 1`` inner SGD step of
  learning rate ``inner_lr`` is exactly an SGD step of that learning rate on :math:`f` (for any eta).

How :math:`\eta_t` is chosen (``eta``), with :math:`g_t` the expensive gradient and
:math:`\ell_t` the loss of the current batch as a function of the targets (t = outer steps so far):

* a number: :math:`\eta_t = \eta \cdot s_t`, with the schedule factor :math:`s_t` = 1 (``constant``),
  :math:`1/\sqrt{t + 1}` (``sqrt``, the decay the stochastic analysis needs) or
  :math:`\text{decay}^t` (``exp``);
* ``"sls"`` (SSO-SLS): a backtracking Armijo line search *in target space* (cheap: it evaluates
  :math:`\ell_t` at trial targets, never the model). Starting from
  :math:`\min(\text{expand} \cdot \eta_{t-1}, \eta_{\max})`, the trial :math:`\eta` shrinks by
  :math:`\beta` until

  .. math:: \ell_t(z_t - \eta g_t) \le \ell_t(z_t) - c\, \eta \|g_t\|^2,

  then is clipped to :math:`[\eta_{\min}, \eta_{\max}]` and multiplied by the schedule factor. The
  right-hand side with :math:`c = 1/2` is the surrogate's own value at its target-space minimiser
  :math:`z_t - \eta g_t`, so with ``sls_c = 0.5`` the accepted :math:`\eta` makes the surrogate an
  upper bound of :math:`\ell_t` at the point it pulls towards (the majorisation the full-batch
  guarantee needs, checked where it matters instead of assumed through a global :math:`L`). The
  defaults are the reference's (c = 0.1, beta = 0.9, expand = 2.0). Note the reference code weights
  :math:`\|z - z_t\|^2` by :math:`1/\eta` (not :math:`1/(2\eta)`), so the same accepted step moves
  its targets half as far as here.
* ``"ada"`` (SSO-Ada): AdaGrad-norm in target space,

  .. math:: \eta_t = \frac{\eta_0}{\sqrt{\sum_{s \le t} \|g_s\|^2}},

  so the target-space step :math:`\eta_t \|g_t\| \le \eta_0` (``ada_eta0``, a distance in target
  space, unchanged by rescaling the loss). The reference code's ``eta = 1e-2`` on a summed loss
  corresponds to :math:`\eta_0 = 1 / (2 \cdot 10^{-2}) = 50`. No schedule on top (as the reference).

Inner optimisers: ``"sgd-armijo"`` (gradient descent with a backtracking Armijo line search on the
surrogate, the reference default; its constants default to the reference's c = 0.1, beta = 0.9,
expand = 2.0), ``"adam"`` (``inner_lr`` default 1e-3) and ``"sgd"``. ``"sgd"`` needs an explicit
``inner_lr``: it is a step in *parameter* space, and :math:`\eta` (a target-space step, e.g.
:math:`1/L = 4n` for a mean logistic loss over n outputs) is not a safe one.

Device notes: the same code runs on CPU and CUDA. With the ``adam`` and ``sgd`` inner optimisers the
inner loop never synchronises with the host (surrogate values are written into a device tensor);
the Armijo line search has to read one scalar per trial step (accept / backtrack).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch

INNER = ("sgd-armijo", "adam", "sgd")
SCHEDULES = ("constant", "sqrt", "exp")
ETA_RULES = ("sls", "ada")


class SSO(torch.optim.Optimizer):
    """Target-based surrogate optimiser.

    Args:
        params: parameters (or parameter groups) of the model that produces the targets.
        eta: target-space step size: a number :math:`\\eta` (choose :math:`\\le 1/L` for the loss in
            target space), ``"sls"`` (Armijo line search in target space; ``step`` then needs
            ``target_loss``) or ``"ada"`` (AdaGrad-norm in target space).
        inner_steps: ``m``, cheap inner steps per outer step (per expensive gradient).
        inner: ``"sgd-armijo"`` | ``"adam"`` | ``"sgd"``.
        inner_lr: inner learning rate (parameter space); for ``sgd-armijo`` the initial trial step
            (default 1.0), for ``adam`` the Adam learning rate (default 1e-3), for ``sgd`` required.
        eta_schedule: ``"constant"`` | ``"sqrt"`` | ``"exp"`` (a factor on a numeric or ``"sls"`` eta).
        eta_decay: the factor of the ``exp`` schedule per outer step.
        armijo_c: sufficient-decrease constant ``c`` of the inner line search (reference: 0.1).
        armijo_beta: backtracking factor (``0 < beta < 1``; reference: 0.9).
        armijo_expand: the accepted step is multiplied by this before the next inner step's first
            trial (reference: 2.0).
        armijo_max_step: upper bound on the trial step.
        max_backtracks: trials per inner step; if none is accepted the parameters are left unchanged.
        sls_c, sls_beta, sls_expand: the target-space line search of ``eta="sls"`` (reference: 0.1,
            0.9, 2.0).
        eta_min, eta_max: the clip of the ``sls`` eta; ``eta_max`` is also its first trial.
        ada_eta0: :math:`\\eta_0` of ``eta="ada"`` (a target-space distance; reference: 50).
        adam_betas, adam_eps: Adam's constants for ``inner="adam"``.

    Usage::

        opt = SSO(model.parameters(), eta=1.0, inner_steps=10)
        z_t = model(x).detach()
        g = grad_of_loss_wrt_targets(z_t)          # the expensive part
        info = opt.step(target_fn=lambda: model(x), target_grad=g, targets=z_t)
        # eta="sls" also needs the batch loss as a function of the targets:
        info = opt.step(target_fn=lambda: model(x), target_grad=g, targets=z_t, target_loss=loss_of_z)
    """

    def __init__(self, params: Iterable[torch.Tensor] | Iterable[dict[str, Any]], eta: float | str = 1.0,
                 inner_steps: int = 10, inner: str = "sgd-armijo", inner_lr: float | None = None,
                 eta_schedule: str = "constant", eta_decay: float = 0.99, armijo_c: float = 0.1,
                 armijo_beta: float = 0.9, armijo_expand: float = 2.0, armijo_max_step: float = 1e4,
                 max_backtracks: int = 100, sls_c: float = 0.1, sls_beta: float = 0.9, sls_expand: float = 2.0,
                 eta_min: float = 1e-4, eta_max: float = 1e4, ada_eta0: float = 50.0,
                 adam_betas: tuple[float, float] = (0.9, 0.999), adam_eps: float = 1e-8):
        if isinstance(eta, str):
            if eta not in ETA_RULES:
                raise ValueError(f"eta must be a positive number or one of {ETA_RULES}, got {eta!r}")
        elif not (eta > 0 and math.isfinite(eta)):
            raise ValueError(f"eta must be a positive number or one of {ETA_RULES}, got {eta}")
        if int(inner_steps) != inner_steps or inner_steps < 1:
            raise ValueError(f"inner_steps must be a positive integer, got {inner_steps}")
        if inner not in INNER:
            raise ValueError(f"inner must be one of {INNER}, got {inner!r}")
        if eta_schedule not in SCHEDULES:
            raise ValueError(f"eta_schedule must be one of {SCHEDULES}, got {eta_schedule!r}")
        if inner_lr is not None and not inner_lr > 0:
            raise ValueError(f"inner_lr must be positive, got {inner_lr}")
        if inner == "sgd" and inner_lr is None:
            raise ValueError("inner='sgd' needs inner_lr, a parameter-space learning rate (eta is a target-space "
                             "step and not a safe one); use e.g. a tuned SGD learning rate, or inner='sgd-armijo', "
                             "which chooses its own step")
        if not 0 < eta_decay <= 1:
            raise ValueError(f"eta_decay must be in (0, 1], got {eta_decay}")
        if not (0 < armijo_c < 1 and 0 < armijo_beta < 1 and armijo_expand >= 1):
            raise ValueError("need 0 < armijo_c < 1, 0 < armijo_beta < 1 and armijo_expand >= 1")
        if not (0 < sls_c < 1 and 0 < sls_beta < 1 and sls_expand >= 1):
            raise ValueError("need 0 < sls_c < 1, 0 < sls_beta < 1 and sls_expand >= 1")
        if not 0 < eta_min <= eta_max < math.inf:
            raise ValueError(f"need 0 < eta_min <= eta_max < inf, got {eta_min}, {eta_max}")
        if not (ada_eta0 > 0 and math.isfinite(ada_eta0)):
            raise ValueError(f"ada_eta0 must be a positive number, got {ada_eta0}")
        if eta == "ada" and eta_schedule != "constant":
            raise ValueError("eta='ada' sets its own decay: use eta_schedule='constant'")
        defaults = dict(eta=eta if isinstance(eta, str) else float(eta), inner_steps=int(inner_steps), inner=inner, inner_lr=inner_lr,
                        eta_schedule=eta_schedule, eta_decay=float(eta_decay))
        super().__init__(params, defaults)
        self.inner_steps = int(inner_steps)
        self.inner = inner
        self.armijo = dict(c=float(armijo_c), beta=float(armijo_beta), expand=float(armijo_expand),
                           max_step=float(armijo_max_step), max_backtracks=int(max_backtracks))
        self.sls = dict(c=float(sls_c), beta=float(sls_beta), expand=float(sls_expand), eta_min=float(eta_min),
                        eta_max=float(eta_max))
        self.ada_eta0 = float(ada_eta0)
        self.outer_steps = 0  # t: expensive gradients consumed so far
        self._sls_eta: float | None = None  # the last accepted (unscheduled) line-search eta
        self._ada_sum = 0.0  # sum of ||g_s||^2 so far (a host float: one read per outer step)
        self._params = [p for g in self.param_groups for p in g["params"]]
        self.adam_betas = (float(adam_betas[0]), float(adam_betas[1]))
        self.adam_eps = float(adam_eps)
        # inner Adam state: moments as tensors beside the parameters, the step count as a host int so
        # bias correction never reads the device (torch.optim.Adam keeps it in a tensor)
        self._adam_t = 0
        self._adam_m: list[torch.Tensor] = []
        self._adam_v: list[torch.Tensor] = []
        # the line search's current step (carried across inner and outer steps, like SLS)
        self._armijo_step = float(inner_lr or 1.0)

    # -- schedule ------------------------------------------------------------------------------
    def schedule_factor(self) -> float:
        """:math:`s_t` of the schedule for the next outer step."""
        g = self.param_groups[0]
        t = self.outer_steps
        if g["eta_schedule"] == "sqrt":
            return 1.0 / math.sqrt(t + 1)
        if g["eta_schedule"] == "exp":
            return g["eta_decay"] ** t
        return 1.0

    def current_eta(self) -> float:
        """:math:`\\eta_t` for the next outer step (numeric eta only: the adaptive rules need its gradient)."""
        eta = self.param_groups[0]["eta"]
        if isinstance(eta, str):
            raise ValueError(f"eta={eta!r} is chosen inside step() from the expensive gradient")
        return eta * self.schedule_factor()

    @torch.no_grad()
    def sls_eta(self, target_loss: Callable[[torch.Tensor], torch.Tensor], targets: torch.Tensor,
                target_grad: torch.Tensor) -> tuple[float, int]:
        """SSO-SLS: the Armijo step in target space (before the schedule) and the number of rejected trials.

        Accept the first trial with ``l(z - eta g) <= l(z) - c eta ||g||^2``; trials start at
        ``min(expand * previous, eta_max)`` and shrink by ``beta``; the result is clipped to
        ``[eta_min, eta_max]`` (``eta_min`` if no trial above it passes)."""
        cfg = self.sls
        z, g = targets.detach(), target_grad.detach()
        l0 = float(target_loss(z))
        g2 = float(g.pow(2).sum())
        eta = cfg["eta_max"] if self._sls_eta is None else min(cfg["expand"] * self._sls_eta, cfg["eta_max"])
        rejected = 0
        if g2 > 0:
            while eta > cfg["eta_min"] and float(target_loss(z - eta * g)) > l0 - cfg["c"] * eta * g2:
                eta *= cfg["beta"]
                rejected += 1
        eta = min(max(eta, cfg["eta_min"]), cfg["eta_max"])
        self._sls_eta = eta
        return eta, rejected

    def ada_eta(self, target_grad: torch.Tensor) -> float:
        """SSO-Ada: ``eta_0 / sqrt(sum_{s<=t} ||g_s||^2)`` (adds this outer step's gradient to the sum)."""
        self._ada_sum += float(target_grad.detach().pow(2).sum())
        return self.ada_eta0 / math.sqrt(max(self._ada_sum, 1e-300))

    # -- the step ------------------------------------------------------------------------------
    def step(self, target_fn: Callable[[], torch.Tensor] | None = None,  # type: ignore[override]
             target_grad: torch.Tensor | None = None, targets: torch.Tensor | None = None,
             target_loss: Callable[[torch.Tensor], torch.Tensor] | None = None) -> dict[str, Any]:
        """One outer step: ``m`` inner steps on the surrogate built from ``target_grad``.

        Args:
            target_fn: recomputes the targets ``z(theta)`` on the fixed batch (differentiable).
            target_grad: :math:`\\nabla_z \\ell(z_t)`, same shape as the targets.
            targets: :math:`z_t` if the caller already has it (saves one forward pass).
            target_loss: :math:`z \\mapsto \\ell_t(z)`, the batch loss as a function of the targets
                (needed by ``eta="sls"`` only; it must be cheap: no new labels, no model call).

        Returns diagnostics (tensors stay on the device): ``surrogate`` (the surrogate value before
        each inner step, shape ``[m]``; the first is 0 by construction), ``surrogate_final`` (after
        the last step; only the line search computes it, otherwise NaN), ``eta`` (float, the
        :math:`\\eta_t` used; ``sls_backtracks`` too for ``eta="sls"``),
        ``inner_steps`` (int) and, for ``sgd-armijo``, ``step_size`` (float, the last accepted step),
        ``backtracks`` (int, rejected trials in total) and ``rejected_steps`` (1 if the line search found
        no decrease, which ends the inner loop early: the point is stationary to rounding; else 0).
        """
        if target_fn is None or target_grad is None:
            raise TypeError("SSO.step needs target_fn (recomputes the targets) and target_grad (dl/dz at them)")
        g = target_grad.detach()
        if targets is None:
            with torch.no_grad():
                targets = target_fn()
        z0 = targets.detach()
        if z0.shape != g.shape:
            raise ValueError(f"target_grad has shape {tuple(g.shape)} but the targets have shape {tuple(z0.shape)}")
        rule = self.param_groups[0]["eta"]
        info: dict[str, Any] = {}
        if rule == "sls":
            if target_loss is None:
                raise TypeError("eta='sls' needs target_loss (the batch loss as a function of the targets)")
            eta, info["sls_backtracks"] = self.sls_eta(target_loss, z0, g)
            eta *= self.schedule_factor()
        elif rule == "ada":
            eta = self.ada_eta(g)
        else:
            eta = self.current_eta()
        inv2eta = 0.5 / eta

        def surrogate() -> torch.Tensor:
            d = target_fn() - z0
            return (d * (g + inv2eta * d)).sum()  # <g, d> + ||d||^2 / (2 eta)

        m = self.inner_steps
        values = torch.empty(m, dtype=z0.dtype, device=z0.device)
        info.update({"eta": eta, "inner_steps": m})
        if self.inner == "sgd-armijo":
            info.update(self._armijo_loop(surrogate, values))
        else:
            params = [p for p in self._params if p.requires_grad]
            lr = self.param_groups[0]["inner_lr"]
            update = self._adam_update if self.inner == "adam" else self._sgd_update
            for i in range(m):
                for p in params:
                    p.grad = None
                s = surrogate()
                s.backward()
                update(params, lr if lr is not None else 1e-3)
                values[i] = s.detach()  # device-side copy, no host sync
            for p in params:
                p.grad = None
            info["surrogate_final"] = torch.full((), float("nan"), dtype=z0.dtype, device=z0.device)
        info["surrogate"] = values
        self.outer_steps += 1
        return info

    @staticmethod
    def _grads(params: list[torch.Tensor]) -> list[torch.Tensor]:
        return [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]

    @torch.no_grad()
    def _sgd_update(self, params: list[torch.Tensor], lr: float) -> None:
        torch._foreach_add_(params, self._grads(params), alpha=-lr)

    @torch.no_grad()
    def _adam_update(self, params: list[torch.Tensor], lr: float) -> None:
        """Adam (Kingma & Ba; torch.optim.Adam's formula) with multi-tensor ops and a host step count."""
        b1, b2 = self.adam_betas
        if not self._adam_m:
            self._adam_m = [torch.zeros_like(p) for p in params]
            self._adam_v = [torch.zeros_like(p) for p in params]
        grads = self._grads(params)
        self._adam_t += 1
        bc1 = 1 - b1 ** self._adam_t
        bc2 = 1 - b2 ** self._adam_t
        torch._foreach_lerp_(self._adam_m, grads, 1 - b1)
        torch._foreach_mul_(self._adam_v, b2)
        torch._foreach_addcmul_(self._adam_v, grads, grads, value=1 - b2)
        denom = torch._foreach_sqrt(self._adam_v)
        torch._foreach_div_(denom, math.sqrt(bc2))
        torch._foreach_add_(denom, self.adam_eps)
        torch._foreach_addcdiv_(params, self._adam_m, denom, value=-lr / bc1)

    @torch.no_grad()
    def _armijo_loop(self, surrogate: Callable[[], torch.Tensor], values: torch.Tensor) -> dict[str, Any]:
        """Gradient descent on the surrogate with a backtracking Armijo line search.

        Accept step ``a`` when ``h(theta - a grad) <= h(theta) - c a ||grad||^2``; otherwise shrink
        ``a`` by ``beta``. The accepted step times ``expand`` is the next first trial, so the step
        adapts up as well as down. The comparison needs one host read per trial.
        """
        cfg = self.armijo
        params = [p for p in self._params if p.requires_grad]
        backup = [torch.empty_like(p) for p in params]
        # start from the previous outer step's *first* accepted step (times expand): the end of an inner
        # loop can sit at the rounding floor of the surrogate, where only tiny steps pass the test
        step = self._armijo_step
        first_accepted: float | None = None
        backtracks = 0
        rejected = 0
        s_new = None
        for i in range(len(values)):
            for p in params:
                p.grad = None
            with torch.enable_grad():
                s = surrogate()
                s.backward()
            grads = self._grads(params)
            gnorm2 = torch.stack([gr.pow(2).sum() for gr in grads]).sum()
            values[i] = s
            torch._foreach_copy_(backup, params)
            if i > 0:
                step = min(step * cfg["expand"], cfg["max_step"])
            first = step
            accepted = False
            for _ in range(cfg["max_backtracks"]):
                torch._foreach_copy_(params, backup)
                torch._foreach_add_(params, grads, alpha=-step)
                s_new = surrogate()
                if bool(s_new <= s - cfg["c"] * step * gnorm2):  # the one host sync per trial
                    accepted = True
                    if first_accepted is None:
                        first_accepted = step
                    break
                backtracks += 1
                step *= cfg["beta"]
            if not accepted:  # no decrease found: a stationary point (to rounding); the rest would repeat it
                torch._foreach_copy_(params, backup)
                s_new = s
                rejected += 1
                values[i + 1:] = s
                step = first
                break
        for p in params:
            p.grad = None
        if first_accepted is not None:
            self._armijo_step = min(first_accepted * cfg["expand"], cfg["max_step"])
        final = s_new if s_new is not None else torch.zeros((), dtype=values.dtype, device=values.device)
        return {"surrogate_final": final.detach(), "step_size": step, "backtracks": backtracks,
                "rejected_steps": rejected}

    # -- state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"base": super().state_dict(), "outer_steps": self.outer_steps, "armijo_step": self._armijo_step,
                "sls_eta": self._sls_eta, "ada_sum": self._ada_sum,
                "adam_t": self._adam_t, "adam_m": [t.clone() for t in self._adam_m],
                "adam_v": [t.clone() for t in self._adam_v]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict["base"])
        self.outer_steps = int(state_dict["outer_steps"])
        self._armijo_step = float(state_dict["armijo_step"])
        self._sls_eta = state_dict.get("sls_eta")
        self._ada_sum = float(state_dict.get("ada_sum", 0.0))
        self._adam_t = int(state_dict.get("adam_t", 0))
        device_of = [p for p in self._params if p.requires_grad]
        self._adam_m = [t.to(p.device, p.dtype) for t, p in zip(state_dict.get("adam_m", []), device_of)]
        self._adam_v = [t.to(p.device, p.dtype) for t, p in zip(state_dict.get("adam_v", []), device_of)]
