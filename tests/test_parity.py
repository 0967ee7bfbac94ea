"""Our FQL / FiDec updates replayed against numbers from the official JAX code (no JAX needed).

``tests/data/parity_*.npz`` were written by ``benchmarks/parity/parity.py --write-fixture`` from
the reference agents (seohongpark/fql, ARC0127/Fisher-Decorator): the reference's initial
parameters, 3 batches, the random draws of each update and the reference's loss terms and
parameters after the 3 updates. Here our agent starts from the same parameters, is fed the same
draws and must land on the same numbers (float32 rounding: relative difference <= 1e-5).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from agentlab.agents.base import spaces_of
from agentlab.agents.fidec import FiDecAgent, FiDecConfig
from agentlab.agents.fql import FQLAgent, FQLConfig

DATA = Path(__file__).parent / "data"
CASES = sorted(p.stem for p in DATA.glob("parity_*.npz"))
TOL = 1e-5
#: parameters: optax computes Adam's bias correction 1 - 0.999^t in float32 (relative error ~1.3e-5,
#: ~6.4e-6 on the step), torch in float64, so a zero-initialised bias (= the sum of its steps)
#: differs by ~7e-6 relative after one update and ~8.5e-6 after three; in float64 (parity.py
#: --dtype float64) the difference vanishes. This bound leaves room for that rounding, not more.
TOL_PARAMS = 1.5e-5


def rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-12))


def replay(case: str, **config_changes) -> tuple[float, float]:
    """Largest relative difference of (loss terms over the updates, parameters after the last one)."""
    data = np.load(DATA / f"{case}.npz")
    meta = json.loads(str(data["meta"]))
    cls, cfg_cls = (FQLAgent, FQLConfig) if meta["algorithm"] == "fql" else (FiDecAgent, FiDecConfig)
    cfg = dataclasses.replace(cfg_cls(**meta["config"]), **config_changes)
    init = {k[len("init/"):]: data[k] for k in data.files if k.startswith("init/")}
    obs_dim, act_dim = data["batch0/observations"].shape[1], data["batch0/actions"].shape[1]
    torch.manual_seed(0)
    agent = cls(cfg, spaces_of(obs_dim, act_dim))
    params = dict(agent.named_parameters())
    assert set(init) == set(params), "fixture does not cover every parameter"
    with torch.no_grad():
        for name, value in init.items():
            params[name].copy_(torch.from_numpy(value))
    loss_rel = 0.0
    for u in range(meta["updates"]):
        batch = {k.split("/")[1]: torch.from_numpy(data[k]) for k in data.files if k.startswith(f"batch{u}/")}
        agent.injected_draws = {k.split("/")[1]: torch.from_numpy(data[k])
                                for k in data.files if k.startswith(f"draw{u}/")}
        info = agent.update(batch)
        for k in data.files:
            name = k[len(f"loss{u}/"):]
            if k.startswith(f"loss{u}/") and name != "qscale":
                # q_mean averages values of both signs: compared relative to the batch's max |Q|
                scale = float(data[f"loss{u}/qscale"]) if name == "train/q_mean" else abs(float(data[k]))
                loss_rel = max(loss_rel, abs(float(info[name]) - float(data[k])) / max(scale, 1e-12))
    param_rel = max(rel(p.detach().numpy(), data[f"final/{n}"]) for n, p in agent.named_parameters())
    return loss_rel, param_rel


def test_fixtures_present():
    assert {"parity_fql", "parity_fidec_K8_width"} <= set(CASES)


@pytest.mark.parametrize("case", CASES)
def test_update_matches_reference(case):
    loss_rel, param_rel = replay(case)
    assert loss_rel <= TOL, f"{case}: loss terms differ from the reference by {loss_rel:.2e}"
    assert param_rel <= TOL_PARAMS, f"{case}: parameters after 3 updates differ from the reference by {param_rel:.2e}"


@pytest.mark.parametrize("change", [{"activation": "gelu"}, {"discount": 0.98}, {"lr": 4e-4}])
def test_replay_detects_a_changed_update(change):
    """The comparison is sharp: the exact GELU, another discount or learning rate fail it."""
    loss_rel, param_rel = replay("parity_fql", **change)
    assert max(loss_rel, param_rel) > 10 * TOL


def test_gelu_tanh_matches_flax_formula_with_and_without_autograd():
    from agentlab.nn import GELUTanh

    x = torch.linspace(-8, 8, 4001, dtype=torch.float64)
    flax_gelu = 0.5 * x * (1 + torch.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))
    g = GELUTanh()
    with torch.no_grad():
        fast = g(x.float())
    graded = g(x.float().requires_grad_())
    assert torch.allclose(fast.double(), flax_gelu, atol=2e-6, rtol=0)
    assert torch.allclose(graded.detach().double(), flax_gelu, atol=2e-6, rtol=0)


def test_gelu_tanh_gradient():
    from agentlab.nn import GELUTanh

    x = (torch.randn(200, dtype=torch.float64) * 3).requires_grad_()
    assert torch.autograd.gradcheck(GELUTanh(), (x,))
    ours = torch.autograd.grad(GELUTanh()(x).sum(), x)[0]
    ref = torch.autograd.grad(torch.nn.functional.gelu(x, approximate="tanh").sum(), x)[0]
    assert torch.allclose(ours, ref, atol=1e-12)
