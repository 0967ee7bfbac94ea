r"""A terminal value for the planner from the *learned* model: the LQR cost-to-go at an operating point.

Open-loop CEM over action sequences struggles on an unstable system whose task has a slow mode that
needs a long manoeuvre: balancing InvertedPendulum-v5 with the cart kept off the ends of its rail.
The pole's unstable mode grows ~1.2x per 0.04 s step, so a long horizon makes sampled sequences
ill-conditioned (1.2^25 ~ 95x), while re-centring the cart is non-minimum-phase (the cart must first
move *away* to lean the pole toward the centre), which a short horizon cannot see. The textbook
remedy (receding-horizon control with a terminal cost, e.g. Mayne et al. 2000, Automatica 36) is to
score the last predicted state with the infinite-horizon cost-to-go of the linearised system:

.. math::  V(s) = (s - s^*)^\top P (s - s^*), \qquad
           P = A^\top P A - A^\top P B (R + B^\top P B)^{-1} B^\top P A + Q

where ``A, B`` are the Jacobians of the model's elite-mean next-state prediction at the task's
operating point ``(s^*, a^*)`` (recomputed after every retrain: only the learned model is used, never
the true dynamics) and ``Q, R`` are the task's stated quadratic cost (``Task.lqr``). If the linearised
model is not stabilisable (early, bad models) the terminal value is switched off for that model.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch


def linearize(model, obs0: torch.Tensor, act0: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Jacobians ``A = d s'/d s`` and ``B = d s'/d a`` of the elites' mean next-state prediction."""
    D = model.obs_dim

    def f(z: torch.Tensor) -> torch.Tensor:
        zn = model.in_norm(z.unsqueeze(0))
        mean, _ = model(zn)  # [N, 1, out] normalised
        delta = (mean * model.out_norm.std + model.out_norm.mean)[model.elites].mean(0)[0, :D]
        return z[:D] + delta

    z0 = torch.cat([obs0, act0]).float()
    with torch.enable_grad():
        J = torch.autograd.functional.jacobian(f, z0)
    J = J.detach().double().numpy()
    return J[:, :D], J[:, D:]


def dare(A: np.ndarray, B: np.ndarray, Q: np.ndarray, R: np.ndarray) -> np.ndarray | None:
    """The stabilising solution of the discrete algebraic Riccati equation, or None if there is none."""
    import scipy.linalg as sl

    try:
        P = sl.solve_discrete_are(A, B, Q, R)
    except (np.linalg.LinAlgError, ValueError):
        return None
    if not np.all(np.isfinite(P)):
        return None
    K = np.linalg.solve(R + B.T @ P @ B, B.T @ P @ A)
    if np.max(np.abs(np.linalg.eigvals(A - B @ K))) >= 1:  # the closed loop of the model must be stable
        return None
    return P


def lqr_terminal(model, q_diag, r: float, weight: float, cap: float,
                 obs0: torch.Tensor | None = None) -> tuple[Callable[[torch.Tensor], torch.Tensor] | None, dict]:
    """``terminal(s_H) = -weight * min(V(s_H), cap)`` for the model's LQR cost-to-go ``V`` at
    ``(obs0, 0)`` (``obs0`` defaults to the origin), or ``None`` if the linearised model is not
    stabilisable. Also returns diagnostics (the closed-loop spectral radius is implied < 1)."""
    D, A_dim = model.obs_dim, model.act_dim
    s0 = torch.zeros(D) if obs0 is None else obs0
    A, B = linearize(model, s0, torch.zeros(A_dim))
    Q, R = np.diag(np.asarray(q_diag, dtype=float)), np.eye(A_dim) * float(r)
    P = dare(A, B, Q, R)
    if P is None:
        return None, {"lqr_ok": 0.0}
    Pt = torch.as_tensor(P, dtype=torch.float32)

    def terminal(x: torch.Tensor) -> torch.Tensor:
        d = x - s0
        return -weight * ((d @ Pt) * d).sum(-1).clamp(max=cap)

    return terminal, {"lqr_ok": 1.0, "lqr_trace_P": float(np.trace(P))}
