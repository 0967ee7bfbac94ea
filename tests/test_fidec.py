"""Correctness of the flow-policy agents (flow_bc, fql, fidec/deflow) on problems with known answers.

* BC-flow reproduces a two-mode action distribution (proportions, no mass between the modes).
* Offline bandit (one-step episodes, the rarer mode pays more): FQL and FiDec choose the better
  mode and stay inside the data's support; the behaviour flow inside them keeps the proportions.
* The Fisher estimate from a learned flow on a Gaussian with non-diagonal covariance points in the
  direction of the analytic Fisher (cosine > 0.9), with both score estimates.
* With F = I the divergence is exactly mean(delta^2); gradient routing checked with hooks.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from agentlab.agents.base import spaces_of
from agentlab.agents.fidec import DeFlowConfig, FiDecAgent, FiDecConfig
from agentlab.agents.flow import flow_matching_loss
from agentlab.agents.flow_bc import FlowBCAgent, FlowBCConfig
from agentlab.agents.fql import FQLAgent, FQLConfig

MU_A = np.array([-0.5, -0.5])  # common mode, low reward
MU_B = np.array([0.5, 0.5])  # rare mode (25%), high reward
P_B = 0.25


def bandit_data(n: int = 4000, seed: int = 0) -> dict[str, torch.Tensor]:
    """One-step episodes: 2-D actions from two tight modes; reward 1 - |a - mu_B|^2 (peaks inside B)."""
    rng = np.random.default_rng(seed)
    is_b = rng.random(n) < P_B
    a = (np.where(is_b[:, None], MU_B, MU_A) + 0.08 * rng.standard_normal((n, 2))).clip(-1, 1)
    r = 1.0 - ((a - MU_B) ** 2).sum(1)
    obs = np.zeros((n, 1))
    arrays = dict(observations=obs, actions=a, rewards=r, next_observations=obs, terminals=np.ones(n),
                  masks=np.zeros(n))
    return {k: torch.as_tensor(v, dtype=torch.float32) for k, v in arrays.items()}


def train(agent, data: dict[str, torch.Tensor], steps: int, batch: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    info = {}
    for _ in range(steps):
        idx = torch.randint(len(data["rewards"]), (batch,), generator=gen)
        info = agent.update({k: v[idx] for k, v in data.items()})
    return info


def mode_stats(actions: torch.Tensor) -> dict[str, float]:
    a = actions.numpy()
    d_a = np.linalg.norm(a - MU_A, axis=1)
    d_b = np.linalg.norm(a - MU_B, axis=1)
    along = a.sum(1) / math.sqrt(2)  # coordinate on the A -> B axis; modes at -+0.71, std 0.08
    return {"frac_b": float((d_b < d_a).mean()), "in_b": float((d_b < 0.3).mean()),
            "between": float((np.abs(along) < 0.3).mean())}


def test_flow_bc_reproduces_two_modes():
    torch.manual_seed(0)
    data = bandit_data()
    frac_data = mode_stats(data["actions"])["frac_b"]
    agent = FlowBCAgent(FlowBCConfig(hidden=[64, 64], lr=3e-3), spaces_of(1, 2))
    train(agent, data, 1500, 256)
    s = mode_stats(agent.act(torch.zeros(4000, 1)))
    assert abs(s["frac_b"] - frac_data) < 0.04, s
    assert s["between"] < 0.04, s  # a Gaussian / MSE policy would put its mass here


@pytest.mark.slow  # ~10 s each on an idle core; far more on the shared machine
@pytest.mark.parametrize("algo", ["fql", "fidec"])
def test_offline_bandit_picks_better_mode_inside_support(algo):
    torch.manual_seed(0)
    data = bandit_data()
    small = dict(hidden=[64, 64], critic_hidden=[64, 64], lr=3e-3, flow_steps=5, normalize_q_loss=True)
    if algo == "fql":
        agent = FQLAgent(FQLConfig(alpha=0.3, **small), spaces_of(1, 2))
    else:  # a budget large enough to cross between the modes (|B - A|^2 / d = 1)
        agent = FiDecAgent(FiDecConfig(alpha=1.0, target_divergence=1.0, num_fisher_samples=2, **small),
                           spaces_of(1, 2))
    train(agent, data, 800, 128)
    s = mode_stats(agent.act(torch.zeros(2000, 1)))
    assert s["frac_b"] > 0.95, s  # chooses the better (rarer) mode ...
    assert s["in_b"] > 0.9, s  # ... and stays inside its support (no off-data Q exploitation)
    # the behaviour flow inside learns only from the BC loss: it keeps the data's proportions
    base = mode_stats(agent.flow.sample(torch.zeros(2000, 1), torch.randn(2000, 2), 10))
    assert abs(base["frac_b"] - P_B) < 0.08, base


def test_fisher_from_learned_flow_matches_analytic():
    torch.manual_seed(0)
    rot = torch.tensor([[math.cos(math.pi / 6), -math.sin(math.pi / 6)], [math.sin(math.pi / 6), math.cos(math.pi / 6)]])
    cov = rot @ torch.diag(torch.tensor([0.3 ** 2, 0.08 ** 2])) @ rot.T
    mean = torch.tensor([0.1, -0.1])
    chol = torch.linalg.cholesky(cov)
    agent = FiDecAgent(FiDecConfig(hidden=[64, 64], critic_hidden=[8]), spaces_of(1, 2))
    opt = torch.optim.Adam(agent.flow.parameters(), lr=3e-3)
    for _ in range(1200):
        loss = flow_matching_loss(agent.flow, torch.zeros(256, 1), mean + torch.randn(256, 2) @ chol.T)
        opt.zero_grad()
        loss.backward()
        opt.step()
    k = 4096
    samples = agent.flow.sample(torch.zeros(k, 1), torch.randn(k, 2), 10)
    analytic = torch.linalg.inv(cov)  # Fisher of a Gaussian w.r.t. its location

    def cos(a: torch.Tensor, b: torch.Tensor) -> float:
        return float((a * b).sum() / (a.norm() * b.norm()))

    assert cos(torch.eye(2), analytic) < 0.8  # an isotropic metric fails this test ...
    for score in ("proxy", "exact"):  # ... the flow's Fisher passes it, with either score estimate
        agent.config = dataclasses.replace(agent.config, fisher_score=score)
        fisher = agent.fisher_matrix(torch.zeros(1, 1), samples)[0]
        assert torch.allclose(fisher.trace(), torch.tensor(2.0), atol=1e-5)  # trace-normalised: tr = d
        assert cos(fisher, analytic) > 0.9, score


def _batch(n: int = 32, obs_dim: int = 3, act_dim: int = 2) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {"observations": torch.randn(n, obs_dim, generator=g), "actions": torch.rand(n, act_dim, generator=g) * 2 - 1,
            "rewards": torch.randn(n, generator=g), "next_observations": torch.randn(n, obs_dim, generator=g),
            "terminals": torch.zeros(n), "masks": torch.ones(n)}


TINY = dict(hidden=[16, 16], critic_hidden=[16, 16], flow_steps=3, num_fisher_samples=2)


def test_identity_metric_divergence_is_mean_delta_squared():
    torch.manual_seed(0)
    agent = FiDecAgent(DeFlowConfig(**TINY), spaces_of(3, 2))
    assert agent.config.fisher == "identity"
    seen = []
    agent.delta.register_forward_hook(lambda m, i, out: seen.append(out) if out.requires_grad else None)
    _, info = agent.losses(_batch())
    assert len(seen) == 1
    assert torch.equal(info["train/divergence"], seen[0].detach().pow(2).mean())
    # the general quadratic form with F~ = I gives the same number
    delta = seen[0].detach()
    eye = torch.eye(2).expand(len(delta), 2, 2)
    assert torch.allclose(FiDecAgent.divergence(delta, eye), delta.pow(2).mean(), rtol=1e-6, atol=0)
    # and trace normalisation maps an isotropic Fisher to exactly that
    assert torch.allclose(FiDecAgent.divergence(delta, 7.0 * eye / 7.0), delta.pow(2).mean(), rtol=1e-6, atol=0)


def _grads(term: torch.Tensor, params: list[torch.Tensor]) -> list[torch.Tensor | None]:
    return torch.autograd.grad(term, params, retain_graph=True, allow_unused=True)


def _nonzero(grads) -> bool:
    return any(g is not None and bool(g.abs().sum() > 0) for g in grads)


@pytest.mark.parametrize("fisher", ["flow", "identity"])
def test_fidec_gradient_routing(fisher):
    torch.manual_seed(0)
    agent = FiDecAgent(FiDecConfig(fisher=fisher, **TINY), spaces_of(3, 2))
    groups = {"flow": list(agent.flow.parameters()), "delta": list(agent.delta.parameters()),
              "critic": list(agent.critic.parameters()), "log_alpha": [agent.log_alpha]}
    expected = {"critic": {"critic"}, "bc": {"flow"}, "divergence": {"delta"}, "q": {"delta"},
                "alpha": {"log_alpha"}}
    torch.manual_seed(1)
    terms, _ = agent.losses(_batch())
    assert set(terms) == set(expected)
    for name, term in terms.items():
        reached = {g for g, ps in groups.items() if _nonzero(_grads(term, ps))}
        assert reached == expected[name], (name, reached)
    # Hooks during a full update: the flow's gradient is exactly the BC loss's, delta's the actor's.
    want_flow = _grads(terms["bc"], groups["flow"])
    want_delta = _grads(terms["divergence"] + terms["q"], groups["delta"])
    got: dict[str, dict[int, torch.Tensor]] = {"flow": {}, "delta": {}}
    for key in got:
        for i, p in enumerate(groups[key]):
            p.register_hook(lambda g, key=key, i=i: got[key].__setitem__(i, g.clone()))
    torch.manual_seed(1)  # the same random draws as above
    agent.update(_batch())
    for key, want in (("flow", want_flow), ("delta", want_delta)):
        assert sorted(got[key]) == list(range(len(want)))  # each parameter received one gradient
        for i, w in enumerate(want):
            torch.testing.assert_close(got[key][i], w)


def test_fql_gradient_routing():
    torch.manual_seed(0)
    agent = FQLAgent(FQLConfig(hidden=[16, 16], critic_hidden=[16, 16], flow_steps=3), spaces_of(3, 2))
    groups = {"flow": list(agent.flow.parameters()), "actor": list(agent.actor.parameters()),
              "critic": list(agent.critic.parameters())}
    expected = {"critic": {"critic"}, "bc": {"flow"}, "distill": {"actor"}, "q": {"actor"}}
    terms, _ = agent.losses(_batch())
    for name, term in terms.items():
        reached = {g for g, ps in groups.items() if _nonzero(_grads(term, ps))}
        assert reached == expected[name], (name, reached)


def test_target_critic_is_not_trained_and_tracks_polyak():
    torch.manual_seed(0)
    agent = FiDecAgent(FiDecConfig(**TINY), spaces_of(3, 2))
    before = [p.clone() for p in agent.target_critic.parameters()]
    agent.update(_batch())
    tau = agent.config.tau
    for tp, p, b in zip(agent.target_critic.parameters(), agent.critic.parameters(), before):
        assert not tp.requires_grad
        torch.testing.assert_close(tp, (1 - tau) * b + tau * p)


def test_update_returns_tensors_without_host_sync():
    agent = FiDecAgent(FiDecConfig(**TINY), spaces_of(3, 2))
    info = agent.update(_batch())
    assert info and all(isinstance(v, torch.Tensor) and not v.requires_grad for v in info.values())


def test_same_seed_same_numbers():
    def run() -> dict[str, float]:
        torch.manual_seed(3)
        agent = FiDecAgent(FiDecConfig(**TINY), spaces_of(3, 2))
        for _ in range(3):
            info = agent.update(_batch())
        return {k: float(v) for k, v in info.items()}

    assert run() == run()


def test_deflow_is_fidec_with_identity_metric():
    from agentlab.agents import get_algorithm

    fidec, deflow = get_algorithm("fidec"), get_algorithm("deflow")
    assert deflow.build_agent is fidec.build_agent
    diff = {f.name for f in dataclasses.fields(FiDecConfig)
            if getattr(FiDecConfig(), f.name) != getattr(DeFlowConfig(), f.name)}
    assert diff == {"fisher"}


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["fql", "fidec"])
def test_compiled_loss_graph_matches_eager(algo):
    """``compile=default`` (torch.compile of the loss graph) computes the same losses and trains the same
    parameters as eager (with inductor's random ops falling back to eager's RNG stream)."""
    import torch._inductor.config as inductor_config

    from agentlab.agents import get_algorithm
    from agentlab.agents.base import spaces_of
    from agentlab.config import config_from_dict

    a = get_algorithm(algo)
    g = torch.Generator().manual_seed(0)
    batch = {"observations": torch.randn(64, 5, generator=g), "actions": torch.rand(64, 2, generator=g) * 2 - 1,
             "rewards": torch.randn(64, generator=g), "next_observations": torch.randn(64, 5, generator=g),
             "terminals": torch.zeros(64), "masks": torch.ones(64)}
    agents, first_info = {}, {}
    with inductor_config.patch(fallback_random=True):
        for mode in ("none", "default"):
            torch.manual_seed(0)
            agent = a.build_agent(config_from_dict(a.config_cls, {"hidden": [16, 16], "critic_hidden": [16, 16],
                                                                 "flow_steps": 3, "compile": mode}),
                                  spaces_of(5, 2))
            torch.manual_seed(1)
            first_info[mode] = agent.update(batch)
            for _ in range(2):
                agent.update(batch)
            agents[mode] = agent
    for k, v in first_info["none"].items():
        assert torch.allclose(v, first_info["default"][k], rtol=1e-4, atol=1e-5), k
    for (name, p_eager), (_, p_comp) in zip(agents["none"].named_parameters(), agents["default"].named_parameters()):
        assert torch.allclose(p_eager, p_comp, atol=1e-4), name
