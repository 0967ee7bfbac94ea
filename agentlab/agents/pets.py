r"""PETS (Chua et al., 2018) with objective-mismatch re-weighted model training (Lambert et al., 2020).

Loop (``agentlab train pets --env ID --steps N``; steps are environment steps)::

    seed_episodes episodes of uniform random actions -> replay data D
    every retrain_every env steps:  fit the ensemble p(s' - s [, r] | s, a) on D with weights w
    every step:                     a_t = first action of CEM_{a_{t:t+H}} E_{particles}[sum_k r(s_k, a_k, s_{k+1})]

The model is :class:`agentlab.models.dynamics.GaussianEnsemble` (bootstrap members, learned
log-variance bounds, elites, held-out early stopping) and the controller is
:class:`agentlab.models.cem.MPCPlanner` (truncated-normal CEM with momentum, mean of elites, warm
start, trajectory sampling over the elites). Rewards/terminations are the closed-form functions of
``agentlab.models.tasks`` (or learned: ``--set learn_reward=true``).

Objective-mismatch re-weighting: one-step NLL treats all transitions alike, but the controller only
needs the model to be right where good trajectories go. With expert transitions
:math:`E = \{(s^e_j, a^e_j)\}` the NLL of transition ``i`` is weighted by

.. math::  w_i = N \operatorname{softmax}_i\!\big(-d_i^2 / 2\sigma^2\big), \qquad
           d_i = \min_j \big\| \bar z_i - \bar z^e_j \big\|

(mean-1 Gaussian kernel of the distance in normalised state-action space; ``sigma = inf`` is plain
NLL). Config: ``--set reweight=expert --set sigma=0.5``, or ``--set ess_target=0.5`` to choose sigma at
every retrain so that the weights' effective sample size :math:`(\sum w)^2 / \sum w^2` is half the data. Expert transitions come from ``--demos FILE``
(any dataset ``agentlab.data.load`` reads) or, for tasks with known dynamics (cart-pole swing-up,
Pendulum), from an *oracle* CEM controller that plans with the true dynamics;
``reweight=best`` uses the agent's own best ``expert_episodes`` episodes so far instead.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import numpy as np
import torch

from agentlab.agents import Algorithm, TrainContext
from agentlab.agents.base import Agent, spaces_from_env
from agentlab.config import AlgoConfig, help_field
from agentlab.errors import UserError
from agentlab.loop import Trainer, run_loop
from agentlab.seeding import oracle_expert_seed, planner_episode_seed
from agentlab.models.cem import MPCPlanner
from agentlab.models.dynamics import (
    EnsembleTrainer,
    GaussianEnsemble,
    effective_sample_fraction,
    proximity_weights,
    sigma_for_ess,
)
from agentlab.models.tasks import get_task


@dataclasses.dataclass(frozen=True)
class PETSConfig(AlgoConfig):
    # dynamics ensemble (mbrl-lib defaults)
    members: int = help_field(7, "ensemble size")
    num_elites: int = help_field(5, "members used for planning (best held-out error)")
    hidden: list[int] = help_field([200, 200, 200, 200], "hidden layer sizes of each member")
    activation: str = help_field("silu", "hidden activation (relu, silu, elu, tanh, gelu)")
    learn_reward: bool = help_field(False, "predict the reward with the model (switched on automatically for tasks without a closed-form reward)")
    lr: float = help_field(7.5e-4, "Adam learning rate of the model")
    weight_decay: float = help_field(3e-5, "Adam L2 weight decay of the model")
    batch_size: int = help_field(256, "model minibatch size")
    holdout_ratio: float = help_field(0.1, "fraction of the data held out for early stopping and elites")
    patience: int = help_field(5, "epochs without a 1% held-out improvement before stopping")
    max_epochs: int = help_field(50, "cap on epochs per retraining")
    # planner (mbrl-lib PETS defaults)
    horizon: int = help_field(15, "planning horizon")
    population: int = help_field(350, "CEM population")
    iterations: int = help_field(5, "CEM iterations per plan")
    elite_ratio: float = help_field(0.1, "fraction of the population refitted to")
    momentum: float = help_field(0.1, "CEM momentum (alpha): weight of the old mean/variance")
    particles: int = help_field(20, "sampled trajectories per action sequence")
    propagation: str = help_field("random", "random (TS1: random elite per row and step) | fixed (TS-inf) | mean")
    terminal_value: str = help_field("task", "task: score the last planned state with the LQR cost-to-go of the learned model where the task states a quadratic cost (InvertedPendulum-v5; agentlab.models.lqr) | none")
    init_std: float = help_field(0.0, "initial CEM std as a fraction of the action half-range; 0: mbrl-lib's (high - low) / 4")
    # loop
    seed_episodes: int = help_field(1, "episodes of uniform random actions before planning")
    retrain_every: int = help_field(50, "env steps between model retrainings (and at the start of every planned episode with new data)")
    # objective-mismatch re-weighting
    reweight: str = help_field("none", "none | expert (oracle or --demos) | best (own best episodes)")
    sigma: float = help_field(math.inf, "kernel width in normalised state-action space; inf = plain NLL")
    ess_target: float = help_field(0.0, "if in (0, 1): at every retrain choose sigma so that the weights' effective sample size is this fraction of the data (overrides sigma)")
    expert_episodes: int = help_field(2, "expert episodes (oracle) or best own episodes used for weights")
    oracle_horizon: int = help_field(25, "horizon of the oracle (true-dynamics) CEM expert")
    oracle_population: int = help_field(200, "population of the oracle CEM expert")

    def __post_init__(self) -> None:
        _check(self)  # bad values fail when the config is resolved, before a run directory is written


def _check(cfg: PETSConfig) -> None:
    if cfg.reweight not in ("none", "expert", "best"):
        raise UserError(f"reweight must be none, expert or best, got {cfg.reweight!r}")
    if cfg.reweight != "none" and not cfg.sigma > 0:
        raise UserError(f"sigma must be positive, got {cfg.sigma}")
    if not 0 <= cfg.ess_target < 1:
        raise UserError(f"ess_target must be in [0, 1) (0: use sigma), got {cfg.ess_target}")
    if cfg.terminal_value not in ("task", "none"):
        raise UserError(f"terminal_value must be task or none, got {cfg.terminal_value!r}")
    if cfg.propagation not in ("random", "fixed", "mean"):
        raise UserError(f"propagation must be random, fixed or mean, got {cfg.propagation!r}")
    if not 1 <= cfg.num_elites <= cfg.members:
        raise UserError(f"num_elites must be between 1 and members ({cfg.members}), got {cfg.num_elites}")
    for name in ("horizon", "population", "iterations", "particles", "retrain_every", "members"):
        if getattr(cfg, name) < 1:
            raise UserError(f"{name} must be at least 1, got {getattr(cfg, name)}")
    if math.ceil(cfg.elite_ratio * cfg.population - 1e-9) < 2:
        raise UserError("elite_ratio * population must give at least 2 elites")


def make_planner(cfg: PETSConfig, env_id: str, act_low: Any, act_high: Any) -> MPCPlanner:
    task = get_task(env_id, cfg.learn_reward)
    return MPCPlanner(torch.as_tensor(act_low, dtype=torch.float32), torch.as_tensor(act_high, dtype=torch.float32),
                      horizon=cfg.horizon, population=cfg.population, iterations=cfg.iterations,
                      elite_ratio=cfg.elite_ratio, momentum=cfg.momentum, particles=cfg.particles,
                      reward_fn=task.plan_reward, term_fn=task.termination, init_std=cfg.init_std)


class PETSAgent(Agent):
    """The ensemble + its optimiser; ``act`` plans with CEM (one warm-started planner per env row)."""

    def __init__(self, config: PETSConfig, spaces: dict[str, Any]):
        super().__init__(spaces)
        _check(config)
        self.config = config
        self.env_id = spaces.get("env_id")
        if self.env_id is None:
            raise UserError("pets needs the environment id in the run's spaces record")
        self.learn_reward = config.learn_reward or get_task(self.env_id, config.learn_reward).reward is None
        self.model = GaussianEnsemble(self.obs_dim, self.act_dim, members=config.members, hidden=config.hidden,
                                      activation=config.activation, learn_reward=self.learn_reward,
                                      num_elites=config.num_elites)
        self.trainer = EnsembleTrainer(self.model, lr=config.lr, weight_decay=config.weight_decay,
                                       batch_size=config.batch_size, holdout_ratio=config.holdout_ratio,
                                       patience=config.patience, max_epochs=config.max_epochs)
        cfg = dataclasses.replace(config, learn_reward=self.learn_reward)
        self._planner_args = (cfg, self.env_id, spaces.get("act_low"), spaces.get("act_high"))
        self.planners: list[MPCPlanner] = [make_planner(*self._planner_args)]
        self.generator = torch.Generator().manual_seed(0)
        task = get_task(self.env_id, config.learn_reward)
        self._lqr = task.lqr if config.terminal_value == "task" else None
        self._terminal_key: tuple | None = None
        self.terminal_fn = None
        self.terminal_info: dict[str, float] = {}

    def _terminal(self):
        """The LQR terminal value of the *current* model (recomputed whenever the weights changed)."""
        if self._lqr is None:
            return None
        key = (self.model.version, tuple(self.model.elites.tolist()))
        if key != self._terminal_key:
            from agentlab.models.lqr import lqr_terminal

            q_diag, r, weight, cap = self._lqr
            self.terminal_fn, self.terminal_info = lqr_terminal(self.model, q_diag, r, weight, cap)
            self._terminal_key = key
        return self.terminal_fn

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"model": self.trainer.opt}

    def reset_episodes(self, num_envs: int, seed: int | None = None) -> None:
        """Fresh warm starts for ``num_envs`` episodes; ``seed`` makes the plans reproducible."""
        self.planners = [make_planner(*self._planner_args) for _ in range(max(1, num_envs))]
        if seed is not None:
            self.generator.manual_seed(int(seed))

    @torch.no_grad()
    def plan(self, obs: torch.Tensor, index: int = 0) -> torch.Tensor:
        step = self.model.sampler(self.config.propagation)
        self.planners[index].terminal_fn = self._terminal()
        return self.planners[index].plan(obs, step, self.generator)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        obs = torch.as_tensor(obs, dtype=torch.float32)
        if len(self.planners) < obs.shape[0]:
            self.reset_episodes(obs.shape[0])
        step = self.model.sampler(self.config.propagation)
        terminal = self._terminal()
        for p in self.planners:
            p.terminal_fn = terminal
        return torch.stack([self.planners[i].plan(obs[i], step, self.generator) for i in range(obs.shape[0])])


# -- experts for re-weighting -----------------------------------------------------------------------
def oracle_expert(env_id: str, episodes: int, seed: int, horizon: int = 25, population: int = 200,
                  iterations: int = 5) -> dict[str, np.ndarray]:
    """Transitions of a CEM controller that plans with the task's *true* dynamics."""
    from agentlab.envs import make_env

    task = get_task(env_id)
    if task.true_dynamics is None:
        raise UserError(f"no oracle expert for {env_id!r} (known dynamics only for cart-pole swing-up and "
                        "Pendulum-v1): pass expert demonstrations with --demos FILE, or use --set reweight=best")
    env = make_env(env_id)
    planner = MPCPlanner(torch.as_tensor(env.action_space.low), torch.as_tensor(env.action_space.high),
                         horizon=horizon, population=population, iterations=iterations, particles=1,
                         reward_fn=task.reward, term_fn=task.termination)

    def step(o: torch.Tensor, a: torch.Tensor, g: torch.Generator | None) -> tuple[torch.Tensor, None]:
        return task.true_dynamics(o, a), None

    gen = torch.Generator().manual_seed(seed)
    out: dict[str, list] = {"observations": [], "actions": [], "next_observations": [], "rewards": []}
    returns = []
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + ep)
        planner.reset()
        total, done = 0.0, False
        while not done:
            a = planner.plan(torch.as_tensor(obs), step, gen).numpy()
            nxt, r, term, trunc, _ = env.step(a)
            for k, v in zip(out, (obs, a, nxt, r)):
                out[k].append(np.asarray(v, dtype=np.float32))
            total += float(r)
            obs, done = nxt, term or trunc
        returns.append(total)
    env.close()
    res = {k: np.stack(v) for k, v in out.items()}
    res["returns"] = np.asarray(returns, dtype=np.float32)
    return res


def demos_expert(spec: str) -> dict[str, np.ndarray]:
    from agentlab.data import load

    ds = load(spec)
    return {"observations": ds.observations, "actions": ds.actions, "next_observations": ds.next_observations,
            "rewards": ds.rewards, "returns": np.asarray([], dtype=np.float32)}


# -- the loop -------------------------------------------------------------------------------------
class PETSRunner:
    """The PETS training loop as an object (episodes on demand, state as tensors for checkpoints);
    used by ``agentlab train pets`` and by the reproduce table / mismatch diagnostic."""

    def __init__(self, cfg: PETSConfig, env_id: str, seed: int = 0, expert: dict[str, np.ndarray] | None = None):
        from agentlab.envs import make_env

        _check(cfg)
        self.cfg, self.env_id, self.seed = cfg, env_id, seed
        self.env = make_env(env_id)
        self.env.action_space.seed(seed)
        spaces = {**spaces_from_env(env_id), "env_id": env_id}
        self.spaces = spaces
        self.agent = PETSAgent(cfg, spaces)
        self.agent.generator.manual_seed(seed)
        self.data_gen = torch.Generator().manual_seed(seed + 1)
        D, A = self.agent.obs_dim, self.agent.act_dim
        self.buf = {"obs": np.zeros((0, D), np.float32), "act": np.zeros((0, A), np.float32),
                    "next_obs": np.zeros((0, D), np.float32), "rew": np.zeros(0, np.float32),
                    "episode": np.zeros(0, np.int64)}
        self.steps = self.episodes = 0
        self.since_train = 0
        self.trained = False
        self.returns: list[tuple[int, float]] = []  # (env steps at episode end, return)
        self.model_info: dict[str, float] = {}
        self.retrain_log: list[tuple[int, dict[str, float]]] = []  # (env step, model metrics) per retrain, drained by train()
        self.expert = expert
        if cfg.reweight == "expert" and expert is None:
            raise UserError("reweight=expert needs expert transitions (--demos FILE or an oracle task)")

    # -- model training ----------------------------------------------------------------------------
    def _expert_inputs(self) -> torch.Tensor | None:
        cfg = self.cfg
        if cfg.reweight == "none" or (math.isinf(cfg.sigma) and not cfg.ess_target):
            return None
        if cfg.reweight == "expert":
            e = self.expert
            return torch.as_tensor(np.concatenate([e["observations"], e["actions"]], 1), dtype=torch.float32)
        # best own episodes
        rets = {}
        for ep, (_, r) in enumerate(self.returns):
            rets[ep] = r
        best = sorted(rets, key=rets.get, reverse=True)[: cfg.expert_episodes]
        mask = np.isin(self.buf["episode"], best)
        return torch.as_tensor(np.concatenate([self.buf["obs"][mask], self.buf["act"][mask]], 1))

    def retrain(self) -> dict[str, float]:
        from agentlab.nn import Normalizer

        t0 = time.perf_counter()
        b = {k: torch.as_tensor(v) for k, v in self.buf.items()}
        inputs = torch.cat([b["obs"], b["act"]], 1)
        weights, expert_in = None, self._expert_inputs()
        if expert_in is not None and len(expert_in):
            norm = Normalizer(inputs.shape[1], eps=1e-6).fit(inputs)
            sigma = sigma_for_ess(inputs, expert_in, norm, self.cfg.ess_target) if self.cfg.ess_target else self.cfg.sigma
            weights = proximity_weights(inputs, expert_in, norm, sigma)
        info = self.agent.trainer.fit(b["obs"], b["act"], b["next_obs"], b["rew"], weights, self.data_gen)
        if self.agent._lqr is not None:  # the terminal value of the new model (1: its linearisation is stabilisable)
            self.agent._terminal()
            info["train/model_lqr_ok"] = self.agent.terminal_info.get("lqr_ok", 0.0)
        if weights is not None:
            info["train/weight_ess_frac"] = effective_sample_fraction(weights)
            info["train/weight_sigma"] = sigma
        info["time/model_train_s"] = time.perf_counter() - t0
        self.trained, self.since_train = True, 0
        self.model_info = info
        self.retrain_log.append((self.steps, {k if k.startswith("time/") else  # wall-clock stays under time/
                                              "model/" + k.split("/", 1)[1].removeprefix("model_"): v
                                              for k, v in info.items()}))
        return info

    # -- acting ------------------------------------------------------------------------------------
    def run_episode(self, max_steps: int | None = None) -> dict[str, float]:
        """One episode (random while ``episodes < seed_episodes``); returns its metrics."""
        cfg = self.cfg
        random_phase = self.episodes < cfg.seed_episodes
        obs, _ = self.env.reset(seed=planner_episode_seed(self.seed, self.episodes))
        self.agent.reset_episodes(1)
        total, n, plan_time, done = 0.0, 0, 0.0, False
        rows: dict[str, list] = {k: [] for k in self.buf}
        if not random_phase and (not self.trained or self.since_train > 0):
            self.retrain()  # every planned episode starts from a model that has seen all data so far
        while not done and (max_steps is None or n < max_steps):
            if random_phase:
                a = self.env.action_space.sample()
            else:
                if self.since_train >= cfg.retrain_every:
                    self._flush(rows)
                    self.retrain()
                t0 = time.perf_counter()
                a = self.agent.plan(torch.as_tensor(obs, dtype=torch.float32)).numpy()
                plan_time += time.perf_counter() - t0
            nxt, r, term, trunc, _ = self.env.step(a)
            for k, v in zip(rows, (obs, a, nxt, r, self.episodes)):
                rows[k].append(v)
            total += float(r)
            n += 1
            self.steps += 1
            self.since_train += 1
            obs, done = nxt, term or trunc
        self._flush(rows)
        self.returns.append((self.steps, total))
        self.episodes += 1
        info = {"train/episode_return": total, "train/episode_length": float(n), "train/episode": float(self.episodes)}
        if not random_phase:
            info["time/plan_ms_per_step"] = 1000 * plan_time / max(n, 1)
            info.update(self.model_info)
        return info

    def _flush(self, rows: dict[str, list]) -> None:
        if not rows["obs"]:
            return
        for k, v in rows.items():
            arr = np.asarray(v, dtype=self.buf[k].dtype).reshape(len(v), *self.buf[k].shape[1:])
            self.buf[k] = np.concatenate([self.buf[k], arr])
            v.clear()

    # -- checkpoint state ------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state = self.agent.checkpoint_state()
        state["buffer"] = {k: torch.from_numpy(v.copy()) for k, v in self.buf.items()}
        state["counters"] = torch.tensor([self.steps, self.episodes, self.since_train, int(self.trained)])
        state["returns"] = torch.tensor(self.returns, dtype=torch.float64).reshape(-1, 2)
        state["generators"] = {"plan": self.agent.generator.get_state(), "data": self.data_gen.get_state()}
        if self.expert is not None:
            state["expert"] = {k: torch.from_numpy(np.asarray(v)) for k, v in self.expert.items()}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.agent.load_checkpoint_state(state)
        self.buf = {k: v.numpy() for k, v in state["buffer"].items()}
        self.steps, self.episodes, self.since_train, trained = (int(x) for x in state["counters"])
        self.trained = bool(trained)
        self.returns = [(int(s), float(r)) for s, r in state["returns"].tolist()]
        self.agent.generator.set_state(state["generators"]["plan"])
        self.data_gen.set_state(state["generators"]["data"])
        if "expert" in state:
            self.expert = {k: v.numpy() for k, v in state["expert"].items()}


class PETSTrainer(Trainer):
    """One step = one episode of PETS (model retrained every ``retrain_every`` env steps); progress
    counts environment steps; a checkpoint after every episode."""

    log_every_advance = True
    checkpoint_every_advance = True
    rate_metric = "time/env_steps_per_s"

    def __init__(self, ctx: TrainContext, runner: PETSRunner):
        self.ctx, self.runner = ctx, runner

    def advance(self, step: int, total: int) -> tuple[int, dict[str, float]]:
        info = self.runner.run_episode(total - step)
        for at, model_info in self.runner.retrain_log:  # one metrics.csv row per retrain: epochs, held-out error
            self.ctx.run.log(at, model_info)
        self.runner.retrain_log.clear()
        return self.runner.steps, info

    def evaluate(self, final: bool) -> dict[str, float]:
        from agentlab.seeding import evaluation_seed
        from agentlab.evaluation import evaluate
        from agentlab.policy import Policy

        res = evaluate(Policy(self.runner.agent), self.ctx.env_id, self.ctx.eval_episodes,
                       evaluation_seed(self.ctx.seed))
        return {f"eval/{k}": v for k, v in res.items() if k != "episodes"}

    def state_dict(self) -> dict[str, Any]:
        return self.runner.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.runner.load_state_dict(state)


def train(ctx: TrainContext) -> dict[str, float]:

    cfg: PETSConfig = ctx.config
    if ctx.env_id is None:
        raise UserError("pets is model-based online RL: pass --env ENV_ID")
    get_task(ctx.env_id, cfg.learn_reward)  # unsupported env without learn_reward fails before any work
    _check(cfg)
    resuming = ctx.resume and ctx.run.has_checkpoint()
    expert = None
    if resuming:  # the expert set is part of the run's state (an oracle is not recomputed)
        saved = ctx.run.load_checkpoint(restore_rng=False)
        if "expert" in saved:
            expert = {k: v.numpy() for k, v in saved["expert"].items()}
    elif cfg.reweight == "expert":
        expert = demos_expert(ctx.demos) if ctx.demos else oracle_expert(
            ctx.env_id, cfg.expert_episodes, seed=oracle_expert_seed(ctx.seed), horizon=cfg.oracle_horizon,
            population=cfg.oracle_population)
    runner = PETSRunner(cfg, ctx.env_id, ctx.seed, expert)
    ctx.run.write_config({**ctx.run.read_config(), "spaces": runner.spaces})
    if not resuming and expert is not None and len(expert["returns"]):
        ctx.run.log(0, {"train/expert_return": float(np.mean(expert["returns"]))})
    return run_loop(ctx, PETSTrainer(ctx, runner))


def build_agent(config: PETSConfig, spaces: dict[str, Any]) -> PETSAgent:
    return PETSAgent(config, spaces)


#: `small` keeps mbrl-lib's 4 x 200 members (3 x 64 networks could not model the swing-up) and cuts the planner
#: to 60 sequences x 4 particles x 3 iterations at horizon 25 (horizon 15 caps even a true-dynamics CEM at ~85 on
#: the cart-pole swing-up): ~130 ms of one CPU core per action (results/mbrl/README.md); with a few hundred
#: transitions a batch of 256 would give one gradient step per epoch, hence the smaller batch
SMALL = {"members": 5, "num_elites": 3, "hidden": [200, 200, 200, 200], "horizon": 25, "population": 60,
         "particles": 4, "iterations": 3, "retrain_every": 200, "batch_size": 64, "max_epochs": 40, "patience": 5,
         "oracle_population": 100, "oracle_horizon": 25}
SMOKE = {**SMALL, "members": 3, "num_elites": 2, "hidden": [32, 32], "population": 20, "particles": 2,
         "iterations": 2, "horizon": 5, "max_epochs": 3, "oracle_population": 20, "oracle_horizon": 5,
         "expert_episodes": 1}

ALGORITHM = Algorithm(name="pets", config_cls=PETSConfig, train=train, build_agent=build_agent, kind="mbrl",
                      description="PETS: probabilistic ensemble + CEM with trajectory sampling; "
                                  "objective-mismatch re-weighting with --set reweight=expert --set sigma=S",
                      presets={"small": SMALL, "smoke": SMOKE})
