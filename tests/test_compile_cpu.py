"""``compile=default`` (and, for FQL, ``max-autotune-no-cudagraphs``) on CPU: the compiled loss graph gives the
eager update.

Regression for the crash where dynamo met oneDNN's fused ``linear + gelu`` op of the no-autograd
sampler path (``torch.ops.mkldnn._linear_pointwise``): under ``torch.compile`` that path now takes
the plain linear + GELU (inductor fuses it itself). Random draws are injected, so eager and compiled
agents see the same numbers; tiny networks (2x32, batch 16). The equality tests take ~30 s each
(inductor compilation) and are marked slow; the probe of the fusion switch runs by default.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from agentlab.agents import flow
from agentlab.agents.base import spaces_of
from agentlab.agents.fidec import FiDecAgent, FiDecConfig
from agentlab.agents.fql import FQLAgent, FQLConfig

OBS, ACT, B, UPDATES = 5, 3, 16, 3


def batches(seed: int = 0) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [{"observations": torch.randn(B, OBS, generator=g), "actions": torch.rand(B, ACT, generator=g) * 2 - 1,
             "rewards": torch.randn(B, generator=g), "masks": torch.ones(B),
             "next_observations": torch.randn(B, OBS, generator=g)} for _ in range(UPDATES)]


def fql_draws(u: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(100 + u)
    return {"z": torch.randn(B, ACT, generator=g), "next_z": torch.randn(B, ACT, generator=g),
            "bc_x0": torch.randn(B, ACT, generator=g), "bc_t": torch.rand(B, 1, generator=g)}


def run(cls, cfg, draws) -> tuple[list[dict[str, float]], dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    agent = cls(cfg, spaces_of(OBS, ACT))
    infos = []
    for u, b in enumerate(batches()):
        agent.injected_draws = draws(u)
        infos.append({k: float(v) for k, v in agent.update(b).items()})
    return infos, {n: p.detach().clone() for n, p in agent.named_parameters()}


def assert_same(eager, compiled, tol: float = 1e-5) -> None:
    (ie, pe), (ic, pc) = eager, compiled
    for a, b in zip(ie, ic):
        assert a.keys() == b.keys()
        for k in a:
            assert abs(a[k] - b[k]) <= tol * max(1.0, abs(a[k])), (k, a[k], b[k])
    for n in pe:
        assert torch.allclose(pe[n], pc[n], atol=tol, rtol=tol), n


def test_onednn_fusion_is_off_under_compile():
    seen = []

    def probe(h):
        seen.append(flow._fusable(h))
        return h

    with torch.no_grad():
        torch.compile(probe, backend="eager", fullgraph=True)(torch.randn(2, 2))
    assert seen == [False]


@pytest.mark.slow  # ~35 s each, mostly the first inductor compilation
@pytest.mark.parametrize("mode", ["default", "max-autotune-no-cudagraphs"])
def test_compiled_fql_update_matches_eager_on_cpu(mode):
    torch._dynamo.reset()
    cfg = FQLConfig(hidden=[32, 32], critic_hidden=[32, 32], batch_size=B)
    eager = run(FQLAgent, cfg, fql_draws)
    compiled = run(FQLAgent, dataclasses.replace(cfg, compile=mode), fql_draws)
    assert_same(eager, compiled)


@pytest.mark.slow  # ~30 s
def test_compiled_fidec_update_matches_eager_on_cpu():
    torch._dynamo.reset()
    cfg = FiDecConfig(hidden=[32, 32], critic_hidden=[32, 32], batch_size=B)
    k = cfg.num_fisher_samples

    def draws(u: int) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(200 + u)
        d = {"z": torch.randn(B, ACT, generator=g), "next_z": torch.randn(B, ACT, generator=g),
             "bc_x0": torch.randn(B, ACT, generator=g), "bc_t": torch.rand(B, 1, generator=g)}
        if k:
            d |= {"fisher_z": torch.randn(B * k, ACT, generator=g), "fisher_x0": torch.randn(B * k, ACT, generator=g),
                  "fisher_t": torch.rand(B * k, 1, generator=g)}
        return d

    assert_same(run(FiDecAgent, cfg, draws), run(FiDecAgent, dataclasses.replace(cfg, compile="default"), draws))
