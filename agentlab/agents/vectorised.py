r"""Several seeds of one offline agent trained as one: every update of N runs in one set of kernels.

N agents built from the same config on the same dataset (different seeds, so different initial weights,
batches and draws) have their parameters stacked along a new leading axis, ``[N, ...]``. One update is

.. math::  \textstyle \mathcal L(\Theta) = \sum_{i=1}^{N} \sum_j L_j(\theta_i;\ \text{batch}_i,\ \text{draws}_i)

with the agent's own ``losses`` evaluated per seed by ``torch.func.vmap`` (``randomness="different"``:
each seed draws its own noise). Because seed ``i``'s terms depend only on :math:`\theta_i`,
:math:`\partial\mathcal L / \partial\theta_i` is exactly seed ``i``'s own gradient; the global-norm clip is
taken per seed; Adam and the Polyak target are elementwise, so on the stacked tensors they are each
seed's own. One stacked update therefore equals N single updates given the same batches and draws (to
float32 summation order: ``tests/test_vectorised.py``), while a layer costs one batched matmul for all
seeds instead of N matmuls -- what pays where kernel launches, not FLOPs, bound an update (4x512 on a
GPU). On this CPU it does not pay (BENCHMARKS.md, ``benchmarks/bench_vectorised_seeds.py``).

Each agent's parameters and buffers become views of the stacked tensors, so ``agents[i]`` always holds
seed ``i``'s current weights: it acts, evaluates and checkpoints as an ordinary agent, and
:meth:`SeedStack.checkpoint_state` writes seed ``i``'s Adam state in the single-run format (a run
trained in a stack resumes alone, and the other way round).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, vmap

from agentlab.agents.base import Agent
from agentlab.agents.flow import make_adam
from agentlab.errors import UserError


class _Losses(nn.Module):
    """``forward = agent.losses``, so ``functional_call`` can run the losses on substituted tensors."""

    def __init__(self, agent: Agent):
        super().__init__()
        self.agent = agent

    def forward(self, batch: dict[str, torch.Tensor], draws: dict[str, torch.Tensor] | None):
        self.agent.injected_draws = draws
        try:
            return self.agent.losses(batch)
        finally:
            self.agent.injected_draws = None


class SeedStack:
    """Trains ``agents`` (same class and config, typically different seeds) as one stacked update.

    ``update(batches)`` takes the per-seed batches stacked, ``{key: [N, B, ...]}``, and returns
    per-seed diagnostics ``{key: [N]}``. Optional ``draws={name: [N, ...]}`` replaces the random draws
    (as ``FlowActorCritic.injected_draws`` does for one agent; the equivalence test uses it).
    """

    def __init__(self, agents: Sequence[Agent]):
        if len(agents) < 1:
            raise UserError("a seed stack needs at least one agent")
        kinds = {(type(a), repr(a.config)) for a in agents}
        if len(kinds) != 1:
            raise UserError("a seed stack needs agents of one class and one config (only the seed may differ)")
        self.agents = list(agents)
        self.template = agents[0]
        self.config = self.template.config
        self._losses = _Losses(self.template)
        names = [n for n, _ in self.template.named_parameters()]
        self.params: dict[str, torch.Tensor] = {}
        for n in names:
            members = [dict(a.named_parameters())[n] for a in self.agents]
            stacked = torch.stack([m.detach() for m in members]).requires_grad_(members[0].requires_grad)
            self.params[n] = stacked
            for i, m in enumerate(members):
                m.data = stacked.detach()[i]  # the agent's parameter now reads the stacked storage
        self.buffers: dict[str, torch.Tensor] = {}
        for n, _ in self.template.named_buffers():
            members = [dict(a.named_buffers())[n] for a in self.agents]
            stacked = torch.stack(members)
            self.buffers[n] = stacked
            for i, m in enumerate(members):
                m.data = stacked[i]
        #: the trainable stacked tensors, in the order of the agents' own Adam (``make_adam``)
        self.trainable = [self.params[n] for n in names if self.params[n].requires_grad]
        self.opt = make_adam(self.trainable, self.template.opt.param_groups[0]["lr"])
        critic = getattr(self.template, "critic", None)
        target = getattr(self.template, "target_critic", None)
        self._polyak = None
        if critic is not None and target is not None:
            src = [self.params[f"critic.{n}"] for n, _ in critic.named_parameters()]
            dst = [self.params[f"target_critic.{n}"] for n, _ in target.named_parameters()]
            self._polyak = (dst, src)
        # the draws argument is batched when given (the equivalence test), else None: the seeds draw their own
        self._vmapped_losses = {given: vmap(self._per_seed_losses, in_dims=(0, 0, 0, 0 if given else None),
                                            randomness="different") for given in (True, False)}
        self.compile_mode = getattr(self.config, "compile", "none")
        if self.compile_mode != "none":
            # the agent's ``compile`` option, applied to the vmapped loss graph (forward and, through
            # AOTAutograd, backward); as for one agent, compiled draws come from inductor's generator
            mode = None if self.compile_mode == "default" else self.compile_mode
            self._vmapped_losses = {k: torch.compile(f, mode=mode) for k, f in self._vmapped_losses.items()}

    def _per_seed_losses(self, params, buffers, batch, draws):
        terms, info = functional_call(self._losses, ({f"agent.{k}": v for k, v in params.items()},
                                                     {f"agent.{k}": v for k, v in buffers.items()}), (batch, draws))
        return terms, info

    def update(self, batches: dict[str, torch.Tensor],
               draws: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """One update of every seed: losses per seed, one backward, per-seed clip, Polyak, Adam."""
        cudagraphs = self.compile_mode == "reduce-overhead"
        if cudagraphs:
            torch.compiler.cudagraph_mark_step_begin()
        terms, info = self._vmapped_losses[draws is not None](self.params, self.buffers, batches, draws)
        if cudagraphs:  # the graph's outputs live in buffers the next replay overwrites
            info = {k: v.clone() for k, v in info.items()}
        loss = torch.stack(list(terms.values())).sum()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        clip = float(getattr(self.config, "grad_clip", 0.0))
        if clip > 0:
            info["train/grad_norm"] = self.clip_per_seed(clip)
        if self._polyak is not None:
            dst, src = self._polyak
            with torch.no_grad():
                torch._foreach_lerp_(dst, [s.detach() for s in src], float(self.config.tau))
        self.opt.step()
        with torch.no_grad():
            self.buffers["steps_done"] += 1
        return info

    @torch.no_grad()
    def clip_per_seed(self, max_norm: float) -> torch.Tensor:
        """Each seed's gradients scaled to global norm <= ``max_norm`` (``clip_grad_norm_``'s rule); its norms ``[N]``."""
        grads = [p.grad for p in self.trainable if p.grad is not None]
        sq = torch.stack([g.reshape(g.shape[0], -1).pow(2).sum(1) for g in grads]).sum(0)
        norms = sq.sqrt()
        coef = (max_norm / (norms + 1e-6)).clamp(max=1.0)
        torch._foreach_mul_(grads, [coef.view(-1, *([1] * (g.dim() - 1))) for g in grads])
        return norms

    # -- per-seed checkpoints in the single-run format ----------------------------------------------
    def checkpoint_state(self, i: int) -> dict[str, Any]:
        """Seed ``i`` as ``Agent.checkpoint_state()`` writes it (its Adam moments sliced out)."""
        opt_state = self.opt.state_dict()
        state = {}
        for j, p in enumerate(self.trainable):
            s = self.opt.state.get(p)
            if s:
                state[j] = {"step": s["step"].clone(), "exp_avg": s["exp_avg"][i].clone(),
                            "exp_avg_sq": s["exp_avg_sq"][i].clone()}
        groups = [{**{k: v for k, v in g.items() if k != "params"}, "params": list(range(len(self.trainable)))}
                  for g in opt_state["param_groups"]]
        agent_sd = {k: v.clone() for k, v in self.agents[i].state_dict().items()}
        return {"agent": agent_sd, "optimizers": {"all": {"state": state, "param_groups": groups}}}

    def load_checkpoint_state(self, i: int, state: dict[str, Any]) -> None:
        """Restore seed ``i`` from a single-run checkpoint (written alone or by :meth:`checkpoint_state`)."""
        self.agents[i].load_state_dict(state["agent"])  # copies into the views, i.e. into the stack
        saved = state.get("optimizers", {}).get("all", {}).get("state", {})
        if len(saved) not in (0, len(self.trainable)):
            raise UserError(f"seed {i}'s optimiser state has {len(saved)} tensors, the stack {len(self.trainable)}")
        for j, p in enumerate(self.trainable):
            s = saved.get(j, saved.get(str(j)))
            if s is None:
                continue
            mine = self.opt.state[p]
            if not mine:
                mine["step"] = torch.zeros((), dtype=torch.float32)
                mine["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                mine["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            mine["exp_avg"][i].copy_(s["exp_avg"])
            mine["exp_avg_sq"][i].copy_(s["exp_avg_sq"])
            if i > 0 and float(mine["step"]) != float(s["step"]):
                raise UserError(f"seed {i} was checkpointed at Adam step {float(s['step']):g}, the stack's other "
                                f"seeds at {float(mine['step']):g}: a stack resumes only runs at the same step")
            mine["step"] = s["step"].clone().to(mine["step"].dtype)
