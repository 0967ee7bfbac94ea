"""The vectorised multi-seed update equals each seed's own update (same batches, same draws)."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch

from agentlab.agents.base import spaces_of
from agentlab.agents.fidec import FiDecAgent, FiDecConfig
from agentlab.agents.flow_bc import FlowBCAgent, FlowBCConfig
from agentlab.agents.fql import FQLAgent, FQLConfig
from agentlab.agents.vectorised import SeedStack
from agentlab.errors import UserError

B, OBS, ACT, SEEDS, UPDATES = 32, 5, 3, 3, 3


def batch(g: torch.Generator) -> dict[str, torch.Tensor]:
    return {"observations": torch.randn(B, OBS, generator=g), "actions": torch.rand(B, ACT, generator=g) * 2 - 1,
            "rewards": torch.randn(B, generator=g), "masks": (torch.rand(B, generator=g) > 0.1).float(),
            "next_observations": torch.randn(B, OBS, generator=g)}


def draws(g: torch.Generator, k: int) -> dict[str, torch.Tensor]:
    d = {"z": torch.randn(B, ACT, generator=g), "next_z": torch.randn(B, ACT, generator=g),
         "bc_x0": torch.randn(B, ACT, generator=g), "bc_t": torch.rand(B, 1, generator=g)}
    if k:
        d |= {"fisher_z": torch.randn(B * k, ACT, generator=g), "fisher_x0": torch.randn(B * k, ACT, generator=g),
              "fisher_t": torch.rand(B * k, 1, generator=g) * 0.05 + 0.85}
    return d


def stacked(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def build(cls, cfg, seed: int):
    torch.manual_seed(seed)
    agent = cls(cfg, spaces_of(OBS, ACT))
    agent.obs_norm.set(torch.linspace(-0.5, 0.5, OBS), torch.linspace(0.5, 2.0, OBS))
    return agent


CASES = {
    "fql": (FQLAgent, FQLConfig(hidden=[32, 32], critic_hidden=[32, 32], batch_size=B, alpha=3.0), 0),
    # clip 0.5 binds: exercises the per-seed clipping
    "fidec": (FiDecAgent, FiDecConfig(hidden=[32, 32], critic_hidden=[32, 32], batch_size=B, num_fisher_samples=2,
                                      fisher_t_width=0.05, grad_clip=0.5, normalize_q_loss=True), 2),
    "deflow": (FiDecAgent, FiDecConfig(hidden=[32, 32], critic_hidden=[32, 32], batch_size=B, fisher="identity"), 0),
}


@pytest.mark.parametrize("name", list(CASES))
def test_stacked_update_equals_each_seeds_own(name):
    cls, cfg, k = CASES[name]
    singles = [build(cls, cfg, s) for s in range(SEEDS)]
    stack = SeedStack([copy.deepcopy(a) for a in singles])
    g = torch.Generator().manual_seed(7)
    for _ in range(UPDATES):
        bs = [batch(g) for _ in range(SEEDS)]
        ds = [draws(g, k) for _ in range(SEEDS)]
        infos = []
        for a, b_, d in zip(singles, bs, ds):
            a.injected_draws = d
            infos.append(a.update(b_))
        info = stack.update(stacked(bs), stacked(ds))
        for key in infos[0]:
            want = torch.stack([i[key] for i in infos])
            assert torch.allclose(info[key], want, rtol=1e-5, atol=1e-6), (key, info[key], want)
    if name == "fidec":
        assert (info["train/grad_norm"] > 0.5).all()  # the clip bound in every seed
    for i, a in enumerate(singles):
        mine = dict(stack.agents[i].named_parameters())
        for n, p in a.named_parameters():
            assert torch.allclose(mine[n], p, rtol=1e-5, atol=1e-6), (i, n)


def test_flow_bc_and_checkpoint_round_trip():
    cfg = FlowBCConfig(hidden=[16, 16], batch_size=B)
    stack = SeedStack([build(FlowBCAgent, cfg, s) for s in range(2)])
    g = torch.Generator().manual_seed(1)
    for _ in range(2):
        stack.update(stacked([batch(g) for _ in range(2)]))
    # seed 1 of the stack, resumed as an ordinary agent, continues exactly as it would have in the stack
    alone = build(FlowBCAgent, cfg, 99)
    alone.load_checkpoint_state(stack.checkpoint_state(1))
    assert int(alone.steps_done) == 2
    b = [batch(g) for _ in range(2)]
    torch.manual_seed(3)
    x0, t = torch.randn(B, ACT), torch.rand(B, 1)
    # BC-flow draws its own noise: compare one update with the same draws through flow_matching_loss
    from agentlab.agents import flow

    orig = flow.flow_matching_loss

    def fixed(vf, obs, actions, x0_=None, t_=None):
        return orig(vf, obs, actions, x0, t)

    import agentlab.agents.flow_bc as fb
    fb.flow_matching_loss = fixed
    try:
        alone.update(b[1])
        stack.update(stacked(b))
    finally:
        fb.flow_matching_loss = orig
    for n, p in alone.named_parameters():
        assert torch.allclose(dict(stack.agents[1].named_parameters())[n], p, rtol=1e-5, atol=1e-6), n
    # and back: a stack resumed from single-run checkpoints
    again = SeedStack([build(FlowBCAgent, cfg, 5), build(FlowBCAgent, cfg, 6)])
    again.load_checkpoint_state(0, stack.checkpoint_state(0))
    again.load_checkpoint_state(1, alone.checkpoint_state())
    for i, source in enumerate([stack.agents[0], alone]):
        for n, p in source.named_parameters():
            assert torch.equal(dict(again.agents[i].named_parameters())[n], p), (i, n)
    for p_again, p_stack in zip(again.trainable, stack.trainable):
        assert torch.equal(again.opt.state[p_again]["exp_avg"][0], stack.opt.state[p_stack]["exp_avg"][0])
        assert float(again.opt.state[p_again]["step"]) == 3.0


def test_seeds_draw_differently_and_configs_must_match():
    cfg = FQLConfig(hidden=[16, 16], critic_hidden=[16, 16], batch_size=B)
    a = build(FQLAgent, cfg, 0)
    stack = SeedStack([a, copy.deepcopy(a)])  # identical weights: only the draws can differ
    g = torch.Generator().manual_seed(0)
    one = batch(g)
    info = stack.update(stacked([one, one]))
    assert info["train/bc_flow_loss"][0] != info["train/bc_flow_loss"][1]
    with pytest.raises(UserError, match="one config"):
        SeedStack([a, build(FQLAgent, dataclasses.replace(cfg, alpha=1.0), 1)])


def _jobs(root, dataset, steps, seeds=(0, 1), resume=False):
    return [dict(algo=None if resume else "fidec", out=root / f"s{s}", resume=resume, seed=s, dataset=str(dataset),
                 env_id="Pendulum-v1", steps=steps, eval_every=10, eval_episodes=1, log_every=10, preset="smoke",
                 checkpoint_every=10) for s in seeds]


def test_runs_trained_together_are_ordinary_runs_and_resume_exactly(tmp_path, pendulum_dataset):
    from agentlab.runs import read_metrics
    from agentlab.training import train, train_together

    rows = train_together(_jobs(tmp_path / "whole", pendulum_dataset, 30))
    assert len(rows) == 2 and all("eval/return_mean" in r for r in rows)
    assert rows[0]["train/critic_loss"] != rows[1]["train/critic_loss"]  # two seeds, two runs
    train_together(_jobs(tmp_path / "split", pendulum_dataset, 20))
    train_together(_jobs(tmp_path / "split", pendulum_dataset, 30, resume=True))
    for s in (0, 1):
        whole, split = read_metrics(tmp_path / "whole" / f"s{s}"), read_metrics(tmp_path / "split" / f"s{s}")
        assert [r["step"] for r in whole] == [r["step"] for r in split] == [10, 20, 30]
        for a, b in zip(whole, split):
            for k in a:
                if not k.startswith("time/"):
                    assert a[k] == pytest.approx(b[k], rel=1e-6, abs=1e-7), (s, k)
    # a run of the group goes on alone
    train(None, tmp_path / "whole" / "s1", resume=True, steps=40)
    assert read_metrics(tmp_path / "whole" / "s1")[-1]["step"] == 40


def test_group_must_match_and_bad_input_is_one_line(tmp_path, pendulum_dataset):
    from agentlab.reproduce.runner import group_by_seed, run_table
    from agentlab.reproduce.tables import offline
    from agentlab.training import train_together

    jobs = _jobs(tmp_path / "m", pendulum_dataset, 20)
    jobs[1]["steps"] = 30
    with pytest.raises(UserError, match="only the seed may differ"):
        train_together(jobs)
    assert not (tmp_path / "m" / "s0").exists()  # nothing half-made is left behind
    with pytest.raises(UserError, match="cannot train several runs per process"):
        run_table("selftest", "smoke", 2, tmp_path / "t", runs_per_process=2, log=lambda m: None)
    with pytest.raises(UserError, match="at least 1"):
        run_table("offline", "smoke", 2, tmp_path / "t", runs_per_process=0, log=lambda m: None)
    specs = offline.specs("small", 3)
    jobs3 = group_by_seed(specs, 2)
    assert sorted(s.run_id for j in jobs3 for s in j) == sorted(s.run_id for s in specs)
    assert all(len({(s.algo, s.task) for s in j}) == 1 and len({s.seed for s in j}) == len(j) for j in jobs3)
    assert {len(j) for j in jobs3} == {2, 1} and len(group_by_seed(specs, 1)) == len(specs)


@pytest.mark.slow  # ~40 s: the first inductor compilation of the vmapped graph
def test_compiled_stack_equals_eager_stack():
    torch._dynamo.reset()
    cls, cfg, k = CASES["fql"]
    eager = SeedStack([build(cls, cfg, s) for s in range(2)])
    compiled = SeedStack([build(cls, dataclasses.replace(cfg, compile="default"), s) for s in range(2)])
    g = torch.Generator().manual_seed(3)
    for _ in range(UPDATES):
        bs, ds = stacked([batch(g) for _ in range(2)]), stacked([draws(g, k) for _ in range(2)])
        a, b = eager.update(bs, ds), compiled.update(bs, ds)  # injected draws: no random op in the graph
        for key in a:
            assert torch.allclose(a[key], b[key], rtol=1e-5, atol=1e-6), key
    for pa, pb in zip(eager.trainable, compiled.trainable):
        assert torch.allclose(pa, pb, rtol=1e-5, atol=1e-6)
