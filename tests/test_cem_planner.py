"""CEM and the trajectory-sampling MPC planner."""

import torch

from agentlab.models.cem import CEM, MPCPlanner, sequence_returns, truncated_normal
from agentlab.models.dynamics import GaussianEnsemble


def test_truncated_normal_support_and_moments():
    z = truncated_normal((20000,), torch.Generator().manual_seed(0))
    assert z.min() >= -2 and z.max() <= 2
    assert abs(z.mean().item()) < 0.03
    assert abs(z.std().item() - 0.88) < 0.02  # std of N(0,1) truncated at +-2


def test_cem_finds_optimum_of_quadratic():
    target = torch.tensor([[0.3, -0.5], [0.7, 0.1], [-0.2, 0.9]])
    cem = CEM(population=200, iterations=30, elite_ratio=0.1, momentum=0.1, lower=-1.0, upper=1.0)

    def objective(x):
        return -(x - target).pow(2).sum((1, 2))

    mean, info = cem.optimize(objective, torch.zeros(3, 2), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(mean, target, atol=1e-2, rtol=0)
    assert info["value"] > -1e-3


def test_cem_respects_bounds_with_optimum_outside():
    cem = CEM(population=100, iterations=10, lower=-1.0, upper=1.0)
    mean, _ = cem.optimize(lambda x: x.sum((1, 2)), torch.zeros(4, 1), generator=torch.Generator().manual_seed(0))
    assert torch.all(mean <= 1.0) and torch.all(mean > 0.9)


def test_sequence_returns_termination_masks_reward():
    # state counts steps; reward 1 per step; terminate when the state reaches 3
    def step(x, a, g):
        return x + 1, None

    ret = sequence_returns(step, lambda x, a, n: torch.ones(x.shape[0]), lambda n: n[:, 0] >= 3,
                           torch.zeros(1), torch.zeros(2, 10, 1), particles=3)
    torch.testing.assert_close(ret, torch.full((2,), 3.0))


def _planner_and_model():
    torch.manual_seed(0)
    model = GaussianEnsemble(3, 1, members=3, hidden=[16], num_elites=2)
    planner = MPCPlanner(torch.tensor([-2.0]), torch.tensor([2.0]), horizon=5, population=30, iterations=2,
                         particles=4, reward_fn=lambda o, a, n: -n.pow(2).sum(-1))
    return model, planner


def test_planning_deterministic_under_seed():
    model, planner = _planner_and_model()
    obs = torch.tensor([0.5, -0.3, 0.1])
    acts = []
    for seed in (7, 7, 8):
        planner.reset()
        acts.append(planner.plan(obs, model.sampler("random"), torch.Generator().manual_seed(seed)))
    torch.testing.assert_close(acts[0], acts[1], rtol=0, atol=0)
    assert not torch.equal(acts[0], acts[2])


def test_warm_start_shifts_previous_plan():
    model, planner = _planner_and_model()
    g = torch.Generator().manual_seed(0)
    planner.plan(torch.zeros(3), model.sampler("fixed"), g)
    prev = planner.prev.clone()
    init = planner.initial_mean()
    torch.testing.assert_close(init[:-1], prev[1:])
    torch.testing.assert_close(init[-1], torch.zeros(1))
