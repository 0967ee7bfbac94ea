r"""Cross-entropy method (CEM) over action sequences, and model-predictive control with
trajectory sampling (the "TS" of PETS).

CEM keeps a diagonal Gaussian :math:`\mathcal N(\mu, \operatorname{diag}\sigma^2)` over action
sequences :math:`a_{1:H}`. Each iteration draws ``population`` sequences from the Gaussian
truncated at two standard deviations, with the variance shrunk so that the truncated support stays
inside the action box (:math:`\sigma^2 \le \min((\mu - lb)/2, (ub - \mu)/2)^2`); scores them;
refits mean and (maximum-likelihood, i.e. biased) variance to the top ``ceil(elite_ratio *
population)`` sequences ("elites", mbrl-lib's rounding) and moves the Gaussian
there with momentum :math:`\alpha`: :math:`\mu \leftarrow \alpha\mu + (1-\alpha)\mu_{elite}`
(same for :math:`\sigma^2`). The returned plan is the final mean (the mean of the elites, smoothed),
which is more stable than the best sample. Truncated-normal draws use the inverse CDF,
:math:`z = \Phi^{-1}(\Phi(-2) + u(\Phi(2) - \Phi(-2)))`, so a seeded generator gives the same plan.

The score of a sequence is the model return averaged over ``particles`` sampled trajectories:
every (sequence, particle) pair is one row of a single batch ``[population x particles, D]`` that
the ensemble propagates in one batched call per step (rows spread over the elite members), the
reward is computed from the predicted transition by the task's explicit reward function (or taken
from the model when it is learned), and after a predicted termination a particle earns nothing.
The MPC controller plans every step, executes the first action, and warm-starts the next plan
with the previous mean shifted by one step.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

Objective = Callable[[torch.Tensor], torch.Tensor]
RewardFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
TermFn = Callable[[torch.Tensor], torch.Tensor]
StepFn = Callable[[torch.Tensor, torch.Tensor, "torch.Generator | None"], "tuple[torch.Tensor, torch.Tensor | None]"]

_LO, _HI = 0.022750131948179195, 0.9772498680518208  # Phi(-2), Phi(2)


def truncated_normal(shape: tuple[int, ...], generator: torch.Generator | None = None,
                     dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> torch.Tensor:
    """Standard normal samples truncated to [-2, 2] (inverse-CDF: one draw per sample, no rejection)."""
    u = torch.rand(shape, generator=generator, dtype=dtype, device=device)
    return torch.special.ndtri(_LO + u * (_HI - _LO))


class CEM:
    """Truncated-normal CEM maximising ``objective(samples [pop, *shape]) -> [pop]``."""

    def __init__(self, population: int = 350, iterations: int = 5, elite_ratio: float = 0.1, momentum: float = 0.1,
                 lower: torch.Tensor | float = -1.0, upper: torch.Tensor | float = 1.0, init_std: float = 0.0):
        self.population, self.iterations, self.momentum = population, iterations, momentum
        self.init_std = init_std  # > 0: initial std as a fraction of the half-range; 0: mbrl-lib's (ub - lb) / 4
        self.num_elites = math.ceil(elite_ratio * population - 1e-9)  # rounds up, as mbrl-lib
        if self.num_elites < 2:
            raise ValueError("elite_ratio * population must give at least 2 elites")
        if self.num_elites > population:
            raise ValueError("elite_ratio * population exceeds the population")
        self.lower, self.upper = torch.as_tensor(lower, dtype=torch.float32), torch.as_tensor(upper, dtype=torch.float32)

    def optimize(self, objective: Objective, mean: torch.Tensor, var: torch.Tensor | None = None,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """Return the final mean (shape of ``mean``) and ``{"value": best elite mean value}``."""
        lb, ub = self.lower.to(mean), self.upper.to(mean)
        mu = mean.clone()
        if var is None:
            std0 = (ub - lb) / 2 * self.init_std if self.init_std > 0 else (ub - lb) / 4
            var = std0.pow(2).expand_as(mu).clone()
        else:
            var = var.clone()
        best_value = float("-inf")
        for _ in range(self.iterations):
            cvar = torch.minimum(var, torch.minimum((mu - lb) / 2, (ub - mu) / 2).pow(2))
            z = truncated_normal((self.population, *mu.shape), generator, mu.dtype, mu.device)
            samples = mu + cvar.sqrt() * z
            values = objective(samples)
            values = torch.nan_to_num(values, nan=-1e10, posinf=-1e10, neginf=-1e10)
            top = torch.topk(values, self.num_elites).indices
            elites = samples[top]
            mu = self.momentum * mu + (1 - self.momentum) * elites.mean(0)
            var = self.momentum * var + (1 - self.momentum) * elites.var(0, unbiased=False)
            best_value = max(best_value, float(values[top].mean()))
        return mu, {"value": best_value}


def sequence_returns(step: StepFn, reward_fn: RewardFn | None, term_fn: TermFn | None, obs: torch.Tensor,
                     actions: torch.Tensor, particles: int, generator: torch.Generator | None = None,
                     terminal_fn: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """Mean predicted return over ``particles`` trajectories of each sequence ``actions [P, H, A]``
    from the single state ``obs [D]``: one batched model call per step for all ``P x particles`` rows.
    ``terminal_fn(s_H)`` (optional) adds a value of the last predicted state to particles still alive."""
    P, H, _ = actions.shape
    B = P * particles
    x = obs.reshape(1, -1).expand(B, -1)
    acts = actions.repeat_interleave(particles, 0)  # rows p*particles .. : the particles of sequence p
    total = torch.zeros(B, dtype=x.dtype, device=x.device)
    alive = torch.ones(B, dtype=x.dtype, device=x.device)
    for t in range(H):
        a = acts[:, t]
        nxt, r_model = step(x, a, generator)
        r = reward_fn(x, a, nxt) if reward_fn is not None else r_model
        total = total + alive * r
        if term_fn is not None:
            alive = alive * (~term_fn(nxt)).to(alive.dtype)
        x = nxt
    if terminal_fn is not None:
        total = total + alive * terminal_fn(x)
    return total.view(P, particles).mean(1)


class MPCPlanner:
    """Plan-every-step CEM controller with warm start: ``plan(obs, step_fn) -> first action``."""

    def __init__(self, act_low: torch.Tensor, act_high: torch.Tensor, horizon: int = 15, population: int = 350,
                 iterations: int = 5, elite_ratio: float = 0.1, momentum: float = 0.1, particles: int = 20,
                 reward_fn: RewardFn | None = None, term_fn: TermFn | None = None, init_std: float = 0.0):
        self.low, self.high = torch.as_tensor(act_low, dtype=torch.float32), torch.as_tensor(act_high, dtype=torch.float32)
        self.horizon, self.particles = horizon, particles
        self.reward_fn, self.term_fn = reward_fn, term_fn
        self.cem = CEM(population, iterations, elite_ratio, momentum, self.low, self.high, init_std)
        self.prev: torch.Tensor | None = None
        #: optional value of the last predicted state (set by the agent, e.g. an LQR cost-to-go)
        self.terminal_fn: Callable[[torch.Tensor], torch.Tensor] | None = None

    def reset(self) -> None:
        self.prev = None

    def initial_mean(self) -> torch.Tensor:
        mid = (self.low + self.high) / 2
        if self.prev is None:
            return mid.expand(self.horizon, -1).clone()
        # warm start: drop the executed first action, repeat the centre at the end
        return torch.cat([self.prev[1:], mid.unsqueeze(0)], 0)

    @torch.no_grad()
    def plan(self, obs: torch.Tensor, step: StepFn, generator: torch.Generator | None = None) -> torch.Tensor:
        obs = torch.as_tensor(obs, dtype=torch.float32)

        def objective(seqs: torch.Tensor) -> torch.Tensor:
            return sequence_returns(step, self.reward_fn, self.term_fn, obs, seqs, self.particles, generator,
                                    self.terminal_fn)

        mean, _ = self.cem.optimize(objective, self.initial_mean(), generator=generator)
        self.prev = mean
        return mean[0].clamp(self.low, self.high)
