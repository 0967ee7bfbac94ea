r"""Reward and termination functions of the tasks PETS supports, written out explicitly, and
``agentlab/CartpoleSwingup-v0``.

A planner needs ``r(s, a, s')`` and ``done(s')`` on batches of *predicted* transitions, so each
supported task states them here in torch (they must agree with the environment: tests check
them against real ``env.step`` rewards). Tasks without a closed-form reward (HalfCheetah-v5: its
reward uses the x position, which the observation omits) have the model learn the reward.

``agentlab/CartpoleSwingup-v0`` (:mod:`agentlab.envs.cartpole_swingup`; our choice for the cart-pole swing-up, documented in
``results/mbrl/README.md``): the cart-pole of DeepMind Control's ``cartpole-swingup`` -- cart
1 kg, pole 0.1 kg and 1 m long, force ``10 u`` with ``u`` in [-1, 1], pole starting hanging down,
the same observation layout ``[x, cos th, sin th, x', th']`` and the same smooth reward
``upright * centred * small_control * small_velocity`` -- integrated with the classic frictionless
cart-pole equations (Barto et al. 1983; semi-implicit Euler, 5 x 10 ms sub-steps per control step
of 50 ms) instead of MuJoCo, with 200 control steps (10 s) per episode. The 50 ms control step keeps
the number of CEM plans per episode at 200 (dm_control's 10 ms step needs 1000), which is what
makes the swing-up affordable on a CPU; ``dmc/cartpole-swingup`` itself is also supported (same
reward function, same observation layout). ``true_dynamics`` exposes the exact batched dynamics,
used by the oracle (expert) planner and the mismatch diagnostic's grid data.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import torch

from agentlab.envs.cartpole_swingup import (  # noqa: F401 - re-exported for the planner's tasks
    CARTPOLE,
    CartpoleSwingupEnv,
    _cartpole_substeps,
    _gaussian_tolerance,
    cartpole_swingup_reward,
)

def pendulum_reward(obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
    """Gymnasium Pendulum-v1: ``-(th^2 + 0.1 th'^2 + 0.001 u^2)`` of the state *before* the step."""
    th = torch.atan2(obs[..., 1], obs[..., 0])
    u = act[..., 0].clamp(-2, 2)
    return -(th.pow(2) + 0.1 * obs[..., 2].pow(2) + 0.001 * u.pow(2))


def inverted_pendulum_termination(next_obs: torch.Tensor) -> torch.Tensor:
    """InvertedPendulum-v5 ends when the pole leaves |angle| <= 0.2 or the state is not finite."""
    return (~torch.isfinite(next_obs).all(-1)) | (next_obs[..., 1].abs() > 0.2)


def inverted_pendulum_reward(obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
    """InvertedPendulum-v5: 1 for every step that does not terminate."""
    return (~inverted_pendulum_termination(next_obs)).to(next_obs.dtype)


#: weight of the planning shaping below; 25 steps x 0.01 = 0.25 < 1, so over any horizon below 50 steps
#: (with the terminal value's 0.5 at most) it can never outweigh one step of survival
TIE_BREAK = 0.01
#: InvertedPendulum-v5's stated quadratic planning cost q(s) = s^T diag(IP_Q) s on (x, angle, x', angle'):
#: 25 = 1 / 0.2^2 puts the angle in units of its termination bound and x in units of the rail (|x| <= 1);
#: IP_R weighs the action in the LQR terminal value (``agentlab.models.lqr``); IP_CAP caps that value
IP_Q, IP_R, IP_CAP = (1.0, 25.0, 0.1, 0.01), 0.01, 50.0


def inverted_pendulum_planning_reward(obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
    """The reward the planner maximises on InvertedPendulum-v5: the env reward (1 per surviving step)
    plus a lexicographic shaping, ``TIE_BREAK * (1 - min(q(s'), 1))`` on surviving steps, ``q`` the
    stated quadratic cost ``IP_Q`` (pole upright, cart centred, slow). With the sparse reward alone every
    sequence that survives the horizon scores the same, CEM's elites are a random subset of them and the
    cart drifts into the end of the rail; the shaping only ranks sequences of equal survival (its sum
    over a horizon below 50 steps, plus the terminal value's at most ``TIE_BREAK * IP_CAP``, stays
    below one step's reward). The env reward and every reported return are unchanged."""
    alive = inverted_pendulum_reward(obs, act, next_obs)
    q = (next_obs.pow(2) * torch.tensor(IP_Q, dtype=next_obs.dtype)).sum(-1).clamp(max=1)
    return alive * (1 + TIE_BREAK * (1 - q))


# -- exact dynamics (torch, batched) -------------------------------------------------------------
def cartpole_true_dynamics(obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
    th = torch.atan2(obs[..., 2], obs[..., 1])
    x, th, xd, thd = _cartpole_substeps(obs[..., 0], th, obs[..., 3], obs[..., 4], act[..., 0], torch)
    return torch.stack([x, torch.cos(th), torch.sin(th), xd, thd], -1)


def pendulum_true_dynamics(obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
    """Gymnasium Pendulum-v1 (g = 10, m = l = 1, dt = 0.05, |th'| <= 8, |u| <= 2)."""
    th = torch.atan2(obs[..., 1], obs[..., 0])
    u = act[..., 0].clamp(-2, 2)
    thd = (obs[..., 2] + (3 * 10.0 / 2 * torch.sin(th) + 3.0 * u) * 0.05).clamp(-8, 8)
    th = th + thd * 0.05
    return torch.stack([torch.cos(th), torch.sin(th), thd], -1)


# -- the task table ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Task:
    """What a planner knows about an environment in closed form."""

    reward: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None  # None: learn it
    termination: Callable[[torch.Tensor], torch.Tensor] | None = None
    true_dynamics: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
    #: box of (obs, act) for the mismatch diagnostic's uniform "grid" data, as (low, high) lists
    grid: tuple[list[float], list[float]] | None = None
    #: what the planner maximises when it differs from ``reward`` (a tie-breaker; ``reward`` stays the task's)
    planning_reward: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None = None
    #: stated quadratic cost for the planner's terminal value (``agentlab.models.lqr``):
    #: (Q diagonal, R, weight, cap) -- the last planned state is scored ``-weight * min(s^T P s, cap)``
    lqr: tuple[tuple[float, ...], float, float, float] | None = None

    @property
    def plan_reward(self) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None:
        return self.planning_reward if self.planning_reward is not None and self.reward is not None else self.reward


TASKS: dict[str, Task] = {
    "agentlab/CartpoleSwingup-v0": Task(cartpole_swingup_reward, None, cartpole_true_dynamics,
                                        grid=([-2.0, -math.pi, -4.0, -12.0, -1.0], [2.0, math.pi, 4.0, 12.0, 1.0])),
    "dmc/cartpole-swingup": Task(cartpole_swingup_reward),
    "Pendulum-v1": Task(pendulum_reward, None, pendulum_true_dynamics,
                        grid=([-math.pi, -8.0, -2.0], [math.pi, 8.0, 2.0])),
    "InvertedPendulum-v5": Task(inverted_pendulum_reward, inverted_pendulum_termination,
                                planning_reward=inverted_pendulum_planning_reward,
                                lqr=(IP_Q, IP_R, TIE_BREAK, IP_CAP)),
    "HalfCheetah-v5": Task(None),
}


def get_task(env_id: str, learn_reward: bool = False) -> Task:
    """The closed-form knowledge of ``env_id``; unknown envs are allowed only with a learned reward."""
    from agentlab.errors import UserError

    if learn_reward:
        base = TASKS.get(env_id, Task(None))
        return dataclasses.replace(base, reward=None)
    if env_id not in TASKS:
        raise UserError(f"pets has no reward function for {env_id!r} (supported: {', '.join(TASKS)}); "
                        "pass --set learn_reward=true to learn the reward with the model")
    return TASKS[env_id]


def grid_states(task: Task, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Uniform (obs, act) samples over the task's grid box, angles mapped to (cos, sin)."""
    lo, hi = (torch.tensor(v) for v in task.grid)
    u = lo + (hi - lo) * torch.rand(n, len(lo), generator=generator)
    if len(lo) == 5:  # cartpole: x, th, xd, thd, a
        obs = torch.stack([u[:, 0], torch.cos(u[:, 1]), torch.sin(u[:, 1]), u[:, 2], u[:, 3]], -1)
    else:  # pendulum: th, thd, a
        obs = torch.stack([torch.cos(u[:, 0]), torch.sin(u[:, 0]), u[:, 1]], -1)
    return obs, u[:, -1:]
