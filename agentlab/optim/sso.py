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
  learning rate :math:`\eta` is exactly an SGD step of learning rate :math:`\eta` on :math:`f`.

Inner optimisers: ``"sgd-armijo"`` (gradient descent with a backtracking Armijo line search on the
surrogate, the reference default), ``"adam"`` and ``"sgd"``. Step-size schedules for
:math:`\eta_t` (t = outer steps taken so far): ``constant``; ``sqrt``:
:math:`\eta / \sqrt{t + 1}` (the decay the stochastic analysis needs); ``exp``:
:math:`\eta \cdot \text{decay}^t`.

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


class SSO(torch.optim.Optimizer):
    """Target-based surrogate optimiser.

    Args:
        params: parameters (or parameter groups) of the model that produces the targets.
        eta: target-space step size :math:`\\eta` (choose :math:`\\le 1/L` for the loss in target space).
        inner_steps: ``m``, cheap inner steps per outer step (per expensive gradient).
        inner: ``"sgd-armijo"`` | ``"adam"`` | ``"sgd"``.
        inner_lr: inner learning rate; for ``sgd-armijo`` the initial trial step (default 1.0), for
            ``adam`` the Adam learning rate (default 1e-3), for ``sgd`` the learning rate (default:
            follow :math:`\\eta_t`, which makes ``m = 1`` plain SGD on :math:`f`).
        eta_schedule: ``"constant"`` | ``"sqrt"`` | ``"exp"``.
        eta_decay: the factor of the ``exp`` schedule per outer step.
        armijo_c: sufficient-decrease constant ``c`` of the line search.
        armijo_beta: backtracking factor (``0 < beta < 1``).
        armijo_expand: the accepted step is multiplied by this before the next inner step's first trial.
        armijo_max_step: upper bound on the trial step.
        max_backtracks: trials per inner step; if none is accepted the parameters are left unchanged.
        adam_betas, adam_eps: Adam's constants for ``inner="adam"``.

    Usage::

        opt = SSO(model.parameters(), eta=1.0, inner_steps=10)
        z_t = model(x).detach()
        g = grad_of_loss_wrt_targets(z_t)          # the expensive part
        info = opt.step(target_fn=lambda: model(x), target_grad=g, targets=z_t)
    """

    def __init__(self, params: Iterable[torch.Tensor] | Iterable[dict[str, Any]], eta: float = 1.0,
                 inner_steps: int = 10, inner: str = "sgd-armijo", inner_lr: float | None = None,
                 eta_schedule: str = "constant", eta_decay: float = 0.99, armijo_c: float = 0.5,
                 armijo_beta: float = 0.7, armijo_expand: float = 1.5, armijo_max_step: float = 1e4,
                 max_backtracks: int = 50, adam_betas: tuple[float, float] = (0.9, 0.999),
                 adam_eps: float = 1e-8):
        if not (eta > 0 and math.isfinite(eta)):
            raise ValueError(f"eta must be a positive number, got {eta}")
        if int(inner_steps) != inner_steps or inner_steps < 1:
            raise ValueError(f"inner_steps must be a positive integer, got {inner_steps}")
        if inner not in INNER:
            raise ValueError(f"inner must be one of {INNER}, got {inner!r}")
        if eta_schedule not in SCHEDULES:
            raise ValueError(f"eta_schedule must be one of {SCHEDULES}, got {eta_schedule!r}")
        if inner_lr is not None and not inner_lr > 0:
            raise ValueError(f"inner_lr must be positive, got {inner_lr}")
        if not 0 < eta_decay <= 1:
            raise ValueError(f"eta_decay must be in (0, 1], got {eta_decay}")
        if not (0 < armijo_c < 1 and 0 < armijo_beta < 1 and armijo_expand >= 1):
            raise ValueError("need 0 < armijo_c < 1, 0 < armijo_beta < 1 and armijo_expand >= 1")
        defaults = dict(eta=float(eta), inner_steps=int(inner_steps), inner=inner, inner_lr=inner_lr,
                        eta_schedule=eta_schedule, eta_decay=float(eta_decay))
        super().__init__(params, defaults)
        self.inner_steps = int(inner_steps)
        self.inner = inner
        self.armijo = dict(c=float(armijo_c), beta=float(armijo_beta), expand=float(armijo_expand),
                           max_step=float(armijo_max_step), max_backtracks=int(max_backtracks))
        self.outer_steps = 0  # t: expensive gradients consumed so far
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
    def current_eta(self) -> float:
        """:math:`\\eta_t` for the next outer step."""
        g = self.param_groups[0]
        t = self.outer_steps
        if g["eta_schedule"] == "sqrt":
            return g["eta"] / math.sqrt(t + 1)
        if g["eta_schedule"] == "exp":
            return g["eta"] * g["eta_decay"] ** t
        return g["eta"]

    # -- the step ------------------------------------------------------------------------------
    def step(self, target_fn: Callable[[], torch.Tensor] | None = None,  # type: ignore[override]
             target_grad: torch.Tensor | None = None, targets: torch.Tensor | None = None) -> dict[str, Any]:
        """One outer step: ``m`` inner steps on the surrogate built from ``target_grad``.

        Args:
            target_fn: recomputes the targets ``z(theta)`` on the fixed batch (differentiable).
            target_grad: :math:`\\nabla_z \\ell(z_t)`, same shape as the targets.
            targets: :math:`z_t` if the caller already has it (saves one forward pass).

        Returns diagnostics (tensors stay on the device): ``surrogate`` (the surrogate value before
        each inner step, shape ``[m]``; the first is 0 by construction), ``surrogate_final`` (after
        the last step; only the line search computes it, otherwise NaN), ``eta`` (float),
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
        eta = self.current_eta()
        inv2eta = 0.5 / eta

        def surrogate() -> torch.Tensor:
            d = target_fn() - z0
            return (d * (g + inv2eta * d)).sum()  # <g, d> + ||d||^2 / (2 eta)

        m = self.inner_steps
        values = torch.empty(m, dtype=z0.dtype, device=z0.device)
        info: dict[str, Any] = {"eta": eta, "inner_steps": m}
        if self.inner == "sgd-armijo":
            info.update(self._armijo_loop(surrogate, values))
        else:
            params = [p for p in self._params if p.requires_grad]
            lr = self.param_groups[0]["inner_lr"]
            if self.inner == "sgd" and lr is None:
                lr = eta  # follow eta_t: m = 1 is then exactly SGD(lr = eta_t) on f
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
                "adam_t": self._adam_t, "adam_m": [t.clone() for t in self._adam_m],
                "adam_v": [t.clone() for t in self._adam_v]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict["base"])
        self.outer_steps = int(state_dict["outer_steps"])
        self._armijo_step = float(state_dict["armijo_step"])
        self._adam_t = int(state_dict.get("adam_t", 0))
        device_of = [p for p in self._params if p.requires_grad]
        self._adam_m = [t.to(p.device, p.dtype) for t, p in zip(state_dict.get("adam_m", []), device_of)]
        self._adam_v = [t.to(p.device, p.dtype) for t, p in zip(state_dict.get("adam_v", []), device_of)]
