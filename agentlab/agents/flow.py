r"""Shared pieces of the flow-policy agents (``flow_bc``, ``fql``, ``fidec``/``deflow``).

Flow matching on the linear path (rectified flow). With :math:`x_0 \sim \mathcal N(0, I)`, a dataset
action :math:`x_1` and :math:`t \sim U[0, 1]`,

.. math::  x_t = (1 - t) x_0 + t x_1, \qquad
           L_{bc}(\beta) = \mathbb E \, \| v_\beta(s, x_t, t) - (x_1 - x_0) \|^2 .

Sampling integrates :math:`\dot x = v_\beta(s, x, t)` from noise with ``steps`` Euler steps
(one network call per step for the whole batch) and clips the result to [-1, 1].

The optimum of :math:`L_{bc}` is :math:`v(x, t) = \mathbb E[x_1 - x_0 \mid x_t = x]`, which gives
the score of the noised marginal exactly:

.. math::  \nabla_x \log p_t(x) = -\frac{\mathbb E[x_0 \mid x_t = x]}{1 - t}
           = \frac{t\, v(x, t) - x}{1 - t}

(FiDec's reference code uses the proxy :math:`v / (1 - t)` instead; :func:`flow_score` has both).

Also here: :class:`FlowActorCritic`, the update step shared by FQL and FiDec (one optimiser over the
sum of the loss terms, gradient clipping, Polyak target; optionally a compiled loss graph),
:class:`EnsembleCritic`, a generic ensemble Q(s, a) built on
:class:`agentlab.nn.EnsembleMLP` (all members in one batched matmul per layer), with a forward
whose gradient reaches only the action (for actor losses), and the reference initialisation.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from agentlab.agents.base import Agent
from agentlab.config import AlgoConfig, help_field
from agentlab.nn import (ACTIVATIONS, MLP, EnsembleLayerNorm, EnsembleLinear, EnsembleMLP, GELUTanh, affine,
                         polyak_update, vmapped)

#: actions used as flow targets are clipped to this magnitude (the reference clips to 1 - 1e-5)
ACTION_CLIP = 1.0 - 1e-5


@dataclasses.dataclass(frozen=True)
class FlowActorCriticConfig(AlgoConfig):
    """Fields shared by the flow actor-critic agents (FQL, FiDec/DeFlow); defaults = reference values."""

    hidden: list[int] = help_field([512, 512, 512, 512], "hidden sizes of the flow and of the actor network "
                                   "(FQL: one-step policy; FiDec: residual map delta)")
    critic_hidden: list[int] = help_field([512, 512, 512, 512], "hidden sizes of each critic member")
    num_critics: int = help_field(2, "critic ensemble size")
    critic_layer_norm: bool = help_field(True, "LayerNorm in the critic (after the activation, eps 1e-6: the reference)")
    activation: Literal["gelu_tanh", "gelu", "relu", "silu", "tanh", "elu"] = help_field(
        "gelu_tanh", "hidden activation of every network (reference: jax.nn.gelu, i.e. the tanh approximation; "
        "gelu = the exact erf one)")
    lr: float = help_field(3e-4, "Adam learning rate (one optimiser over all parameters)")
    batch_size: int = help_field(256, "minibatch size")
    discount: float = help_field(0.99, "discount gamma")
    tau: float = help_field(0.005, "Polyak rate of the target critic")
    grad_clip: float = help_field(5.0, "global gradient-norm clip (0 = off)")
    q_agg: Literal["mean", "min"] = help_field("mean", "aggregation of target Q over the ensemble (min for hard tasks)")
    flow_steps: int = help_field(10, "Euler steps of the flow sampler")
    normalize_q_loss: bool = help_field(False, "divide the Q term by sg(mean |Q|)")
    compile: Literal["none", "default", "reduce-overhead", "max-autotune-no-cudagraphs"] = help_field(
        "none", "torch.compile the loss graph (torch.compile's mode names); on a GPU reduce-overhead (CUDA graphs) "
        "made 4x512 updates ~4x faster; on CPU `default` is 1.11-1.49x the official JAX code (eager 0.79-1.19x), after "
        "2-65 s of compilation (BENCHMARKS.md). The draws inside the compiled graph come from inductor's generator: "
        "seeded, but not the eager run's stream (torch._inductor.config.fallback_random=True makes them equal)")


def _mkldnn_linear_pointwise_ok() -> bool:
    """Is oneDNN's fused ``linear + gelu(tanh)`` (``torch.ops.mkldnn._linear_pointwise``) usable here?"""
    try:
        x, w, b = torch.randn(4, 3), torch.randn(5, 3), torch.randn(5)
        y = torch.ops.mkldnn._linear_pointwise(x, w, b, "gelu", [], "tanh")
        ref = nn.functional.gelu(x @ w.t() + b, approximate="tanh")
        return bool(torch.allclose(y, ref, atol=1e-5))
    except (AttributeError, RuntimeError, NotImplementedError):
        return False


#: checked once at import; off with AGENTLAB_NO_ONEDNN_FUSION=1
_ONEDNN_FUSION = not os.environ.get("AGENTLAB_NO_ONEDNN_FUSION") and _mkldnn_linear_pointwise_ok()


def _fusable(h: torch.Tensor) -> bool:
    # Not under torch.compile: dynamo cannot trace the mkldnn op, and inductor fuses linear + GELU itself;
    # not under vmap, which has no batching rule for it.
    return (_ONEDNN_FUSION and not torch.compiler.is_compiling() and h.device.type == "cpu"
            and h.dtype == torch.float32 and not (torch.is_grad_enabled() and h.requires_grad) and not vmapped(h))


def glorot_init_(module: nn.Module) -> nn.Module:
    """The reference (Flax) initialisation: Glorot-uniform weights, zero biases.

    PyTorch's default ``Linear`` init is smaller than Flax's for these layer shapes; flow
    policies and their critics are sensitive to it, so every network of these agents uses this.
    """
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, EnsembleLinear):
            fan_in, fan_out = m.weight.shape[1], m.weight.shape[2]
            bound = math.sqrt(6.0 / (fan_in + fan_out))
            nn.init.uniform_(m.weight, -bound, bound)
            nn.init.zeros_(m.bias)
    return module


class ConditionedMLP(nn.Module):
    """An MLP on ``cat(obs, x[, t])`` whose first layer is split by input block.

    Splitting the first layer's weight lets the Euler sampler compute the observation part once
    per integration instead of once per step, and avoids materialising ``cat(...)`` each step.
    The parameters are one ``nn.Linear`` per layer (``net``), so the state dict is a plain MLP.
    """

    def __init__(self, obs_dim: int, x_dim: int, hidden: Sequence[int], out_dim: int, time_input: bool,
                 activation: str = "gelu_tanh"):
        super().__init__()
        self.obs_dim, self.x_dim, self.time_input = obs_dim, x_dim, time_input
        self.net = glorot_init_(MLP(obs_dim + x_dim + int(time_input), list(hidden), out_dim, activation=activation))
        self.linears = [m for m in self.net if isinstance(m, nn.Linear)]
        self.act_fn = ACTIVATIONS[activation]()

    def forward(self, obs: torch.Tensor, x: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:
        parts = [obs, x] if not self.time_input else [obs, x, t]
        first = self.linears[0]
        return self._after_first_layer(affine(first.bias, torch.cat(parts, -1), first.weight.t()))

    def obs_features(self, obs: torch.Tensor) -> torch.Tensor:
        """``obs @ W_obs^T + b`` of the first layer (constant along an ODE trajectory)."""
        first = self.linears[0]
        return affine(first.bias, obs, first.weight[:, : self.obs_dim].t())

    def forward_from_features(self, h_obs: torch.Tensor, x: torch.Tensor,
                              t: float | torch.Tensor | None = None) -> torch.Tensor:
        """The network output given precomputed :meth:`obs_features` and a time (scalar or ``[N, 1]``)."""
        w = self.linears[0].weight
        if self.time_input:
            # the time enters through the matmul (as one more input column), not as t * w[:, -1]
            # afterwards: a column view of w (stride = input width) makes torch.compile's CPU kernel
            # for the whole fused activation scalar code (measured ~4x slower than vectorised)
            t_col = t if isinstance(t, torch.Tensor) else x.new_full((x.shape[0], 1), float(t or 0.0))
            h = affine(h_obs, torch.cat([x, t_col], -1), w[:, self.obs_dim:].t())
        else:
            h = affine(h_obs, x, w[:, self.obs_dim: self.obs_dim + self.x_dim].t())
        if _fusable(h) and isinstance(self.act_fn, GELUTanh):
            # no autograd, CPU float32: hidden layers as oneDNN's fused linear + tanh-GELU (one pass)
            a = self.act_fn(h)
            for layer in self.linears[1:-1]:
                a = torch.ops.mkldnn._linear_pointwise(a, layer.weight, layer.bias, "gelu", [], "tanh")
            last = self.linears[-1]
            return torch.addmm(last.bias, a, last.weight.t())
        return self._after_first_layer(h)

    def _after_first_layer(self, h: torch.Tensor) -> torch.Tensor:
        """The rest of the network given the first layer's pre-activation ``h``."""
        for layer in self.linears[1:]:
            h = affine(layer.bias, self.act_fn(h), layer.weight.t())
        return h


class VelocityField(ConditionedMLP):
    """:math:`v_\\beta(s, x, t)`: the flow-matching velocity network (reference: 4x512 GELU MLP)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int], activation: str = "gelu_tanh"):
        super().__init__(obs_dim, act_dim, hidden, act_dim, time_input=True, activation=activation)

    @torch.no_grad()
    def sample(self, obs: torch.Tensor, noise: torch.Tensor, steps: int,
               h_obs: torch.Tensor | None = None) -> torch.Tensor:
        """Euler integration from ``noise`` at t=0 to t=1; one network call per step; clipped to [-1, 1].

        All rows (e.g. the batch, the next observations and K Fisher samples per state) go through
        the same call, so the cost is ``steps`` matmul chains regardless of how they are grouped.
        ``h_obs``: :meth:`obs_features` of ``obs`` if the caller already has them.
        """
        h_obs = self.obs_features(obs) if h_obs is None else h_obs
        x = noise
        dt = 1.0 / steps
        for i in range(steps):
            x = torch.add(x, self.forward_from_features(h_obs, x, i * dt), alpha=dt)
        return x.clamp(-1.0, 1.0)


def flow_matching_loss(vf: VelocityField, obs: torch.Tensor, actions: torch.Tensor,
                       x0: torch.Tensor | None = None, t: torch.Tensor | None = None) -> torch.Tensor:
    """:math:`L_{bc}` on the linear path; ``actions`` in [-1, 1] (clipped to +-(1 - 1e-5) here).

    ``x0 [B, d]`` and ``t [B, 1]`` are drawn here unless given (the parity check injects them).
    """
    x1 = actions.clamp(-ACTION_CLIP, ACTION_CLIP)
    x0 = torch.randn_like(x1) if x0 is None else x0
    t = torch.rand(x1.shape[0], 1, device=x1.device, dtype=x1.dtype) if t is None else t
    xt = torch.lerp(x0, x1, t)
    return (vf(obs, xt, t) - (x1 - x0)).pow(2).mean()


def flow_score(v: torch.Tensor, x: torch.Tensor, t: torch.Tensor | float,
               kind: Literal["proxy", "exact"] = "proxy", eps: float = 1e-6) -> torch.Tensor:
    """Score estimate of the noised marginal at ``(x, t)`` from the velocity ``v = v_beta(s, x, t)``.

    ``exact``: :math:`(t v - x) / (1 - t)`, the score of :math:`p_t` for the linear path.
    ``proxy``: :math:`v / (1 - t)`, what FiDec's reference code uses. Near t = 1 the two differ by
    the term :math:`(x - t v)/(1-t) \\approx x_0`, which is noise independent of the action mode.
    """
    one_minus_t = (1.0 - t).clamp_min(eps) if isinstance(t, torch.Tensor) else max(1.0 - t, eps)
    if kind == "proxy":
        return v / one_minus_t
    if kind == "exact":
        return (t * v - x) / one_minus_t
    raise ValueError(f"unknown score kind {kind!r}")


class EnsembleCritic(nn.Module):
    """``n`` Q-networks Q_k(s, a) evaluated together: ``forward(obs, act) -> [n, B]``.

    Reference (FQL/FiDec): 2 members, 4x512 GELU MLPs, each hidden layer ``Dense -> gelu ->
    LayerNorm(eps=1e-6)`` (Flax's order and epsilon; ``layer_norm``). ``frozen(obs, act)`` runs
    the same networks on *detached* parameters, so an actor loss built on it sends gradient to the
    action only, never to the critic (what ``stop_gradient`` on the critic's params does in JAX).
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int], n: int = 2, layer_norm: bool = True,
                 activation: str = "gelu_tanh"):
        super().__init__()
        self.n = n
        self.net = glorot_init_(EnsembleMLP(n, obs_dim + act_dim, list(hidden), 1, activation=activation,
                                            layer_norm=layer_norm, norm_after_act=True, ln_eps=1e-6))

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([obs, act], -1)).squeeze(-1)

    def frozen(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        # The forward of ``self.net`` spelled out on detached weights (cheaper than functional_call).
        x = torch.cat([obs, act], -1)
        x = x.unsqueeze(0).expand(self.n, *x.shape)
        for m in self.net.net:
            if isinstance(m, EnsembleLinear):
                x = affine(m.bias.detach(), x, m.weight.detach())
            elif isinstance(m, EnsembleLayerNorm):
                x = torch.addcmul(m.bias.detach(), F.layer_norm(x, x.shape[-1:], eps=m.eps), m.weight.detach())
            else:
                x = m(x)
        return x.squeeze(-1)

    @staticmethod
    def aggregate(qs: torch.Tensor, how: Literal["mean", "min"] = "mean") -> torch.Tensor:
        """Reduce the ensemble axis: ``mean`` (reference default) or ``min`` (clipped double Q)."""
        return qs.mean(0) if how == "mean" else qs.min(0).values


def make_adam(module: nn.Module | Sequence[torch.Tensor], lr: float) -> torch.optim.Optimizer:
    """One Adam over all trainable parameters (of a module, or the given tensors): the fused kernel (one
    pass per tensor, CPU and CUDA), else the multi-tensor implementation. Same update as optax.adam (eps
    1e-8 outside the sqrt)."""
    params = [p for p in (module.parameters() if isinstance(module, nn.Module) else module) if p.requires_grad]
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(params, lr=lr, foreach=True)


def td_target(rewards: torch.Tensor, masks: torch.Tensor, next_q: torch.Tensor, discount: float) -> torch.Tensor:
    return rewards + discount * masks * next_q


class FlowActorCritic(Agent):
    """Base of FQL and FiDec: subclasses define ``losses(batch) -> (terms, info)``, ``self.opt``
    (one Adam over all parameters), ``self.critic`` and ``self.target_critic``.

    One update = backward of ``sum(terms)``, global grad-norm clip, Adam step, Polyak target. As in
    the reference, the target moves towards the critic *before* this update's Adam step.

    Random draws go through :meth:`draw` by name; setting ``injected_draws = {name: tensor}``
    replaces them (``benchmarks/parity`` feeds the reference's draws this way).
    With ``config.compile`` the loss graph (forward; its backward through AOTAutograd) is compiled
    once, on the first update; the clip, the optimiser step and the target update stay eager. Under
    ``reduce-overhead`` the compiled graph replays as a CUDA graph whose outputs live in reused
    buffers, so the diagnostics are cloned before they leave :meth:`update`.
    """

    config: FlowActorCriticConfig
    opt: torch.optim.Optimizer
    injected_draws: dict[str, torch.Tensor] | None = None

    def draw(self, name: str, shape: tuple[int, ...], like: torch.Tensor,
             low: float | None = None, high: float | None = None) -> torch.Tensor:
        """A standard-normal draw, or ``U[low, high)`` when ``low`` is given; ``injected_draws[name]`` if set."""
        if self.injected_draws is not None:
            return self.injected_draws[name]
        if low is None:
            return torch.randn(shape, device=like.device, dtype=like.dtype)
        if vmapped(like):  # vmap draws per seed only out of place (the eager stream below is kept as it was)
            return torch.rand(shape, device=like.device, dtype=like.dtype) * (high - low) + low
        return torch.empty(shape, device=like.device, dtype=like.dtype).uniform_(low, high)

    def losses(self, batch: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        raise NotImplementedError

    def _loss_graph(self):
        mode = self.config.compile
        if mode == "none":
            return self.losses
        fn = self.__dict__.get("_compiled_losses")  # built lazily: an agent that never trains stays picklable
        if fn is None:
            fn = torch.compile(self.losses, mode=None if mode == "default" else mode)
            self.__dict__["_compiled_losses"] = fn
        return fn

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        cudagraphs = self.config.compile == "reduce-overhead"
        if cudagraphs:
            torch.compiler.cudagraph_mark_step_begin()
        terms, info = self._loss_graph()(batch)
        if cudagraphs:
            info = {k: v.clone() for k, v in info.items()}
        loss = sum(terms.values())
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.grad_clip > 0:
            info["train/grad_norm"] = torch.nn.utils.clip_grad_norm_(self.opt.param_groups[0]["params"],
                                                                     self.config.grad_clip, foreach=True)
        polyak_update(self.target_critic, self.critic, self.config.tau)  # pre-step critic, as the reference
        self.opt.step()
        return info
