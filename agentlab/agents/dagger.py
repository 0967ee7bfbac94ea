r"""Online imitation with expensive labels: DAgger (beta = 0) and BC on expert states (beta = 1),
optimised with target-based surrogates (SSO), Adam or SGD.

Each *outer* step rolls out :math:`B` new states in the environment (at every step the expert's
action is executed with probability :math:`\beta`, the learner's otherwise), the expert labels them
with its mean action :math:`a^*(s)`, and the policy takes one optimiser step on the loss of that
fresh batch only (online learning: the batch is never revisited):

.. math::

    \ell_t(z) = \frac{1}{B\,d} \sum_{i=1}^{B} \| z_i - a^*(s_i) \|^2, \qquad
    z_i(\theta) = \tanh(\mu_\theta(s_i)) \in [-1, 1]^d

(actions in the normalised [-1, 1] box). The expensive gradient is
:math:`g_t = \nabla_z \ell_t(z_t) = 2 (z_t - a^*) / (B d)`: it costs :math:`B` environment
interactions and :math:`B` expert queries. The optimisers spend it differently:

* ``sgd`` / ``adam``: one step on :math:`\ell_t(z(\theta))` per outer step (the baselines);
* ``sso``: ``inner_steps`` = m cheap steps on the surrogate
  :math:`\langle g_t, z(\theta) - z_t \rangle + \frac{1}{2\eta_t}\|z(\theta) - z_t\|^2`
  (:class:`agentlab.optim.SSO`). :math:`\ell_t` is :math:`L`-smooth in :math:`z` with
  :math:`L = 2/(Bd)`; ``eta`` is given in units of :math:`1/L`, so ``eta = 1`` makes the surrogate
  equal :math:`\ell_t(z(\theta)) - \ell_t(z_t)` (move the targets all the way to the labels) and
  ``eta < 1`` keeps the new outputs near the old ones (a proximal term in target space).

``eta`` may also be ``"sls"`` (SSO-SLS: an Armijo line search on :math:`\ell_t` in target space,
``eta_min`` / ``eta_max`` in units of :math:`1/L`) or ``"ada"`` (SSO-Ada:
:math:`\eta_t = \eta_0 / \sqrt{\sum_{s \le t} \|g_s\|^2}`, so that each step moves the targets by at
most :math:`\eta_0`; ``ada_eta0`` gives it as an RMS per action coordinate,
:math:`\eta_0 = \text{ada\_eta0} \sqrt{B d}`);
see :mod:`agentlab.optim.sso`.

Interaction: by default the learner executes its mean action :math:`\tanh(\mu_\theta(s))`. With
``stochastic_interaction`` (the reference's default) it samples
:math:`\tanh(\mu_\theta(s) + \sigma \epsilon)`, :math:`\epsilon \sim N(0, I)`, with
:math:`\sigma` = ``interaction_std`` = 1 (the reference's Gaussian policy has a log-std head that
starts at 0 and that the squared-error loss never trains), and the expert, when its action is
executed (beta > 0), samples from its own policy; labels are always the expert's mean and
evaluation always uses the learner's mean.

Observations are normalised with a fixed affine map fitted (mean, std) on the first batch (the
expert's rollout with ``expert_first_batch``); it is a buffer of the agent, so the checkpoint and
the policy from :func:`agentlab.load` carry it.

``--steps`` counts environment interactions; ``ceil(steps / B)`` outer steps are taken. With
``expert_first_batch`` the first batch is rolled out by the expert, as in the reference (the
untrained learner falls over at once). Checkpoints hold the policy, the optimiser, the RNG states
and the simulator state of the rollout (MuJoCo ``mj_getState``), so a resumed run collects exactly
the states an uninterrupted one would.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import time
from typing import Any, Literal

import numpy as np
import torch

from agentlab.agents import Algorithm, TrainContext
from agentlab.agents.base import Agent, spaces_from_env
from agentlab.agents.loops import evaluate_agent, evaluation_seed
from agentlab.loop import Trainer, run_loop
from agentlab.runs import json_from_tensor, json_tensor
from agentlab.seeding import dagger_rollout_seed
from agentlab.config import AlgoConfig, help_field
from agentlab.errors import UserError
from agentlab.nn import MLP


@dataclasses.dataclass(frozen=True)
class DAggerConfig(AlgoConfig):
    hidden: list[int] = help_field([256, 256], "hidden layer sizes of the policy MLP")
    beta: float = help_field(0.0, "probability of executing the expert's action while rolling out "
                                  "(0 = DAgger on the learner's states, 1 = BC on the expert's states)")
    batch_states: int = help_field(1000, "B: new states (environment interactions + expert labels) per outer step")
    optimizer: Literal["sso", "adam", "sgd"] = help_field("sso", "how each expensive batch gradient is used")
    lr: float = help_field(1e-3, "learning rate of the adam / sgd baselines (one step per outer step)")
    inner_steps: int = help_field(10, "sso: m, cheap inner steps on the surrogate per outer step")
    inner: Literal["sgd-armijo", "adam", "sgd"] = help_field("sgd-armijo", "sso: inner optimiser")
    inner_lr: float | None = help_field(None, "sso: inner learning rate (armijo: first trial step, default 1; "
                                              "adam: default 1e-3; sgd: required, a parameter-space rate)")
    eta: float | Literal["sls", "ada"] = help_field(1.0, "sso: target-space step in units of 1/L (1 = full step "
                                                        "to the labels), or 'sls' (Armijo in target space) / "
                                                        "'ada' (AdaGrad-norm in target space)")
    eta_schedule: Literal["constant", "sqrt", "exp"] = help_field("constant", "sso: eta_t schedule "
                                                                  "(constant, eta/sqrt(t+1), eta*decay^t)")
    eta_decay: float = help_field(0.98, "sso: decay per outer step of the exp schedule")
    armijo_c: float = help_field(0.1, "sso inner sgd-armijo: sufficient-decrease constant (reference 0.1)")
    armijo_beta: float = help_field(0.9, "sso inner sgd-armijo: backtracking factor (reference 0.9)")
    armijo_expand: float = help_field(2.0, "sso inner sgd-armijo: step growth between inner steps (reference 2.0)")
    sls_c: float = help_field(0.1, "sso eta=sls: sufficient-decrease constant (reference 0.1)")
    sls_beta: float = help_field(0.9, "sso eta=sls: backtracking factor (reference 0.9)")
    sls_expand: float = help_field(2.0, "sso eta=sls: growth of the first trial between outer steps (reference 2.0)")
    eta_min: float = help_field(1e-4, "sso eta=sls: smallest eta, in units of 1/L")
    eta_max: float = help_field(10.0, "sso eta=sls: largest eta and first trial, in units of 1/L")
    ada_eta0: float = help_field(0.5, "sso eta=ada: eta_0, the largest target-space step as an RMS per action "
                                      "coordinate (the reference's 50 in L2 over 1000 states is 0.9 on Hopper)")
    stochastic_interaction: bool = help_field(False, "roll out sampled actions: learner tanh(mu + std * N(0, 1)), "
                                                     "expert its own sample (the reference's default)")
    interaction_std: float = help_field(1.0, "pre-tanh std of the learner's samples with stochastic_interaction")
    normalize_obs: bool = help_field(True, "fit the observation normaliser (mean, std) on the first batch")
    expert: str = help_field("", "expert: '' = agentlab.experts.load_expert(env), or a run directory "
                                 "(agentlab.load)")
    expert_first_batch: bool = help_field(True, "roll out the first batch with the expert (as the reference)")

    def validate(self) -> None:
        check_config(self)


class DAggerAgent(Agent):
    """A deterministic tanh-squashed MLP policy (the mean of the reference's Gaussian policy)."""

    def __init__(self, config: DAggerConfig, spaces: dict[str, Any]):
        super().__init__(spaces)
        self.config = config
        self.actor = MLP(self.obs_dim, config.hidden, self.act_dim, activation="relu")

    def squashed_mean(self, obs: torch.Tensor) -> torch.Tensor:
        """The targets z(theta): actions in [-1, 1] (differentiable)."""
        return torch.tanh(self.actor(self.obs_norm(obs)))

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        return self.scale_action(self.squashed_mean(obs))


def check_config(cfg: DAggerConfig) -> None:
    if not 0.0 <= cfg.beta <= 1.0:
        raise UserError(f"beta must be in [0, 1], got {cfg.beta}")
    if cfg.batch_states < 1:
        raise UserError(f"batch_states must be a positive integer, got {cfg.batch_states}")
    if cfg.inner_steps < 1:
        raise UserError(f"inner_steps must be a positive integer, got {cfg.inner_steps}")
    for name in ("lr", "eta", "ada_eta0", "interaction_std", "eta_min", "eta_max"):
        v = getattr(cfg, name)
        if isinstance(v, str):
            continue
        if not (v > 0 and math.isfinite(v)):
            raise UserError(f"{name} must be a positive number, got {v}")
    if cfg.eta_min > cfg.eta_max:
        raise UserError(f"eta_min ({cfg.eta_min}) must not exceed eta_max ({cfg.eta_max})")
    if cfg.inner_lr is not None and not cfg.inner_lr > 0:
        raise UserError(f"inner_lr must be positive, got {cfg.inner_lr}")
    if cfg.optimizer == "sso" and cfg.inner == "sgd" and cfg.inner_lr is None:
        raise UserError("inner=sgd needs inner_lr (a parameter-space learning rate; eta is a target-space step, "
                        "1/L = B*d/2 here): pass --set inner_lr=0.01, or use inner=sgd-armijo")
    if cfg.eta == "ada" and cfg.eta_schedule != "constant":
        raise UserError("eta=ada sets its own decay: use eta_schedule=constant")
    for name in ("armijo_c", "armijo_beta", "sls_c", "sls_beta"):
        if not 0 < getattr(cfg, name) < 1:
            raise UserError(f"{name} must be in (0, 1), got {getattr(cfg, name)}")
    for name in ("armijo_expand", "sls_expand"):
        if not getattr(cfg, name) >= 1:
            raise UserError(f"{name} must be >= 1, got {getattr(cfg, name)}")
    if not 0 < cfg.eta_decay <= 1:
        raise UserError(f"eta_decay must be in (0, 1], got {cfg.eta_decay}")
    if not cfg.hidden or any(h < 1 for h in cfg.hidden):
        raise UserError(f"hidden must be a non-empty list of positive sizes, got {cfg.hidden}")


# -- the expert ----------------------------------------------------------------------------------
def load_expert_policy(ctx: TrainContext, cfg: DAggerConfig) -> Any:
    """``ctx.extra['expert']`` (an object, for tests and notebooks) > ``cfg.expert`` > the cached expert."""
    if ctx.extra.get("expert") is not None:
        return ctx.extra["expert"]
    if cfg.expert:
        import agentlab

        return agentlab.load(cfg.expert)
    try:
        from agentlab.experts import load_expert
    except ImportError as e:
        raise UserError(f"no expert available ({e}); pass --set expert=RUN_DIR") from None
    return load_expert(ctx.env_id)


def expert_labeller(expert: Any, deterministic: bool = True):
    """``obs [B, obs_dim] -> actions [B, act_dim]`` in env bounds: the expert's mean (``deterministic``,
    the labels) or a sample from its policy (an executed action under stochastic interaction)."""
    takes_det = "deterministic" in inspect.signature(expert.act).parameters

    def label(obs: np.ndarray) -> np.ndarray:
        a = expert.act(obs, deterministic=deterministic) if takes_det else expert.act(obs)
        return np.asarray(a, dtype=np.float32).reshape(len(obs), -1)

    return label


# -- rollouts ------------------------------------------------------------------------------------
class Rollout:
    """One environment stepped across outer steps (episodes continue from batch to batch).

    Episode ``k`` is reset with seed ``seed + k``. ``state()`` / ``restore()`` capture the position
    mid-episode (observation, step counter, MuJoCo simulator state) for exact resumption.
    """

    def __init__(self, env_id: str, seed: int):
        from agentlab.envs import make_env

        self.env = make_env(env_id)
        self.low = self.env.action_space.low.astype(np.float32)
        self.high = self.env.action_space.high.astype(np.float32)
        self.seed = seed
        self.episode = 0
        self.ep_return = 0.0
        self.obs = self._reset()

    def _reset(self) -> np.ndarray:
        obs, _ = self.env.reset(seed=self.seed + self.episode)
        return np.asarray(obs, dtype=np.float32)

    def collect(self, n: int, learner, label, beta: float, rng: np.random.Generator, expert_act=None
                ) -> tuple[np.ndarray, np.ndarray, list[float]]:
        """``n`` states, their expert labels (env bounds) and the returns of episodes finished meanwhile.

        ``expert_act`` (default: ``label``) is what the expert executes when it is chosen."""
        states = np.empty((n, len(self.obs)), dtype=np.float32)
        labels = np.empty((n, len(self.low)), dtype=np.float32)
        finished: list[float] = []
        mixed = beta > 0.0
        for i in range(n):
            states[i] = self.obs
            if mixed:  # the expert's action may be executed: query it now
                labels[i] = label(self.obs[None])[0]
                use_expert = beta >= 1.0 or rng.random() < beta
                if use_expert:
                    action = labels[i] if expert_act is None else expert_act(self.obs[None])[0]
                else:
                    action = learner(self.obs[None])[0]
            else:
                action = learner(self.obs[None])[0]
            obs, r, term, trunc, _ = self.env.step(np.clip(action, self.low, self.high))
            self.ep_return += float(r)
            if term or trunc:
                finished.append(self.ep_return)
                self.ep_return = 0.0
                self.episode += 1
                obs = self._reset()
            self.obs = np.asarray(obs, dtype=np.float32)
        if not mixed:  # pure DAgger: label the whole batch in one expert call
            labels[:] = label(states)
        return states, labels, finished

    # -- exact resumption --
    def _time_limit(self):
        e = self.env
        while e is not None:
            if hasattr(e, "_elapsed_steps"):
                return e
            e = getattr(e, "env", None)
        return None

    def state(self) -> dict[str, Any]:
        tl = self._time_limit()
        st = {"obs": torch.from_numpy(self.obs.copy()), "episode": self.episode, "ep_return": self.ep_return,
              "elapsed": int(tl._elapsed_steps) if tl is not None else 0}
        u = self.env.unwrapped
        if hasattr(u, "model") and hasattr(u, "data"):
            import mujoco

            spec = mujoco.mjtState.mjSTATE_INTEGRATION
            buf = np.empty(mujoco.mj_stateSize(u.model, spec), dtype=np.float64)
            mujoco.mj_getState(u.model, u.data, buf, spec)
            st["physics"] = torch.from_numpy(buf)
        elif hasattr(u, "state") and u.state is not None:
            st["physics_state"] = torch.as_tensor(np.asarray(u.state, dtype=np.float64))
        return st

    def restore(self, st: dict[str, Any]) -> None:
        self.episode = int(st["episode"])
        self.ep_return = float(st["ep_return"])
        self._reset()  # the same reset as the interrupted run, then overwrite the simulator state
        u = self.env.unwrapped
        if "physics" in st:
            import mujoco

            mujoco.mj_setState(u.model, u.data, st["physics"].numpy().astype(np.float64),
                               mujoco.mjtState.mjSTATE_INTEGRATION)
            mujoco.mj_forward(u.model, u.data)
        elif "physics_state" in st:
            u.state = st["physics_state"].numpy().copy()
        tl = self._time_limit()
        if tl is not None:
            tl._elapsed_steps = int(st["elapsed"])
        self.obs = st["obs"].numpy().copy()

    def close(self) -> None:
        self.env.close()


# -- the update ----------------------------------------------------------------------------------
def make_optimizer(cfg: DAggerConfig, agent: DAggerAgent) -> torch.optim.Optimizer:
    params = agent.actor.parameters()
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr)
    from agentlab.optim import SSO

    # eta in units of 1/L with L = 2 / (B d): the batch loss's smoothness in target space (B = batch_states;
    # the last batch may be smaller, which only makes eta more conservative)
    inv_L = cfg.batch_states * agent.act_dim / 2.0
    eta = cfg.eta if isinstance(cfg.eta, str) else cfg.eta * inv_L
    return SSO(params, eta=eta, inner_steps=cfg.inner_steps, inner=cfg.inner, inner_lr=cfg.inner_lr,
               eta_schedule=cfg.eta_schedule, eta_decay=cfg.eta_decay, armijo_c=cfg.armijo_c,
               armijo_beta=cfg.armijo_beta, armijo_expand=cfg.armijo_expand, sls_c=cfg.sls_c, sls_beta=cfg.sls_beta,
               sls_expand=cfg.sls_expand, eta_min=cfg.eta_min * inv_L, eta_max=cfg.eta_max * inv_L,
               ada_eta0=cfg.ada_eta0 * math.sqrt(cfg.batch_states * agent.act_dim))


def update(cfg: DAggerConfig, agent: DAggerAgent, opt: torch.optim.Optimizer, states: torch.Tensor,
           labels: torch.Tensor) -> dict[str, Any]:
    """One outer step on a fresh batch; returns tensors (no host sync) and plain diagnostics."""
    if cfg.optimizer in ("adam", "sgd"):
        loss = (agent.squashed_mean(states) - labels).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"train/loss": loss.detach()}
    # sso: the expensive gradient at the current targets, then m cheap inner steps
    with torch.no_grad():
        z_t = agent.squashed_mean(states)
    g = 2.0 * (z_t - labels) / z_t.numel()
    info = opt.step(target_fn=lambda: agent.squashed_mean(states), target_grad=g, targets=z_t,
                    target_loss=lambda z: (z - labels).pow(2).mean())
    out = {"train/loss": (z_t - labels).pow(2).mean(), "train/eta": info["eta"] / (z_t.numel() / 2.0),
           "train/surrogate_last": info["surrogate"][-1]}
    if "backtracks" in info:
        out["train/armijo_step"] = info["step_size"]
        out["train/backtracks"] = info["backtracks"]
    return out


# -- the loop ------------------------------------------------------------------------------------
class DAggerTrainer(Trainer):
    """One step = one outer step: roll out ``batch_states`` states, label them, update. Progress
    counts labelled interactions (the expensive resource), as ``--steps`` does."""

    log_every_advance = True
    rate_metric = "time/interactions_per_s"

    def __init__(self, ctx: TrainContext, cfg: DAggerConfig, spaces: dict[str, Any]):
        self.ctx, self.cfg = ctx, cfg
        expert = load_expert_policy(ctx, cfg)
        self.label = expert_labeller(expert)
        self.expert_sample = expert_labeller(expert, deterministic=False) if cfg.stochastic_interaction else None
        self.agent = DAggerAgent(cfg, spaces).to(ctx.device)
        self.opt = make_optimizer(cfg, self.agent)
        self.rollout = Rollout(ctx.env_id, seed=dagger_rollout_seed(ctx.seed))
        self.rng = np.random.default_rng(ctx.seed)
        self.outer, self.wall, self.expert_return = 0, 0.0, None

    def torch_learner(self, obs: np.ndarray) -> np.ndarray:
        agent, cfg = self.agent, self.cfg
        with torch.no_grad():
            o = torch.as_tensor(obs, device=self.ctx.device)
            if not cfg.stochastic_interaction:
                return agent.act(o).cpu().numpy()
            pre = agent.actor(agent.obs_norm(o))
            noise = torch.as_tensor(self.rng.standard_normal(pre.shape), dtype=pre.dtype, device=pre.device)
            return agent.scale_action(torch.tanh(pre + cfg.interaction_std * noise)).cpu().numpy()

    def advance(self, step: int, total: int) -> tuple[int, dict[str, Any]]:
        cfg, agent, ctx = self.cfg, self.agent, self.ctx
        t0 = time.perf_counter()
        self.outer += 1
        n = min(cfg.batch_states, total - step)
        expert_rollout = cfg.expert_first_batch and self.outer == 1
        # one observation per call: a NumPy copy of the policy is ~10x cheaper than a torch call here
        if ctx.device.type == "cpu":
            learner = NumpyActor(agent, cfg.interaction_std if cfg.stochastic_interaction else 0.0, self.rng)
        else:
            learner = self.torch_learner
        if self.expert_sample is not None:  # the expert's own samples (SB3 draws from torch's RNG): seed it from
            torch.manual_seed(int(self.rng.integers(2**31)))  # the saved NumPy stream so that resume is exact
        states, labels, finished = self.rollout.collect(n, learner, self.label, 1.0 if expert_rollout else cfg.beta,
                                                        self.rng, expert_act=self.expert_sample)
        t1 = time.perf_counter()
        if self.outer == 1 and cfg.normalize_obs:  # fixed from here on; saved with the agent's buffers
            agent.obs_norm.fit(torch.as_tensor(states))
        s = torch.as_tensor(states, device=ctx.device)
        a = agent.unscale_action(torch.as_tensor(labels, device=ctx.device)).clamp(-1.0, 1.0)
        row = {k: float(v) for k, v in update(cfg, agent, self.opt, s, a).items()}  # the one host sync
        t2 = time.perf_counter()
        agent.steps_done += 1
        self.wall += t2 - t0
        row.update({"train/outer_step": self.outer, "time/interactions": step + n, "time/wall_s": self.wall,
                    "time/rollout_s": t1 - t0, "time/update_s": t2 - t1})
        if finished:
            row["train/episode_return"] = float(np.mean(finished))
        return step + n, row

    def evaluate(self, final: bool) -> dict[str, float]:
        from agentlab.evaluation import evaluate

        ctx = self.ctx
        if self.expert_return is None:  # the expert under the same protocol: the normaliser of the score
            self.expert_return = evaluate(_Labelled(self.label), ctx.env_id, ctx.eval_episodes,
                                          evaluation_seed(ctx.seed))["return_mean"]
        res = evaluate_agent(ctx, self.agent, ref_scores=ctx.env_id)
        res["eval/expert_return"] = self.expert_return
        res["eval/expert_normalized_return"] = 100.0 * res["eval/return_mean"] / max(abs(self.expert_return), 1e-8)
        return res

    def state_dict(self) -> dict[str, Any]:
        state = {"agent": self.agent.state_dict(), "optimizer": self.opt.state_dict(), "outer": self.outer,
                 "wall_s": self.wall, "rollout": self.rollout.state(), "np_rng": json_tensor(self.rng.bit_generator.state)}
        if self.expert_return is not None:
            state["expert_return"] = self.expert_return
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.agent.load_state_dict(state["agent"])
        self.opt.load_state_dict(state["optimizer"])
        self.outer, self.wall = int(state["outer"]), float(state["wall_s"])
        self.expert_return = state.get("expert_return")
        self.rollout.restore(state["rollout"])
        self.rng.bit_generator.state = json_from_tensor(state["np_rng"])

    def close(self) -> None:
        self.rollout.close()


def train(ctx: TrainContext) -> dict[str, float]:
    cfg: DAggerConfig = ctx.config  # type: ignore[assignment]
    check_config(cfg)
    if ctx.env_id is None:
        raise UserError("dagger is an online imitation algorithm: pass --env")
    spaces = spaces_from_env(ctx.env_id)
    ctx.run.write_config({**ctx.run.read_config(), "spaces": spaces})
    return run_loop(ctx, DAggerTrainer(ctx, cfg, spaces))


class NumpyActor:
    """A NumPy snapshot of the (ReLU MLP) policy for stepping one environment: same function as
    :meth:`DAggerAgent.act`, without torch's per-call overhead (~0.1 ms against ~10 us here).
    With ``std > 0`` it samples ``tanh(mu + std * N(0, 1))`` from ``rng`` (stochastic interaction)."""

    def __init__(self, agent: DAggerAgent, std: float = 0.0, rng: np.random.Generator | None = None):
        if std > 0 and rng is None:
            raise ValueError("a stochastic NumpyActor needs rng")
        self.std = float(std)
        self.rng = rng
        layers = [m for m in agent.actor if isinstance(m, torch.nn.Linear)]
        self.w = [m.weight.detach().cpu().numpy().T.copy() for m in layers]
        self.b = [m.bias.detach().cpu().numpy().copy() for m in layers]
        self.mean = agent.obs_norm.mean.cpu().numpy()
        self.obs_std = agent.obs_norm.std.cpu().numpy()
        self.scale = agent.act_scale.cpu().numpy()
        self.center = agent.act_center.cpu().numpy()

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        h = (obs - self.mean) / self.obs_std
        for w, b in zip(self.w[:-1], self.b[:-1]):
            h = np.maximum(h @ w + b, 0.0)
        pre = h @ self.w[-1] + self.b[-1]
        if self.std > 0:
            pre = pre + self.std * self.rng.standard_normal(pre.shape)
        return np.tanh(pre) * self.scale + self.center


class _Labelled:
    """The expert's deterministic mean as a batched policy for :func:`agentlab.evaluation.evaluate`."""

    def __init__(self, label):
        self.label = label

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.label(np.asarray(obs, dtype=np.float32))


ALGORITHM = Algorithm(name="dagger", config_cls=DAggerConfig, train=train, build_agent=DAggerAgent, kind="imitation",
                      description="online imitation (DAgger beta=0 / BC beta=1) with SSO, Adam or SGD",
                      presets={"smoke": {"hidden": [64, 64], "batch_states": 100},
                               "small": {"hidden": [256, 256], "batch_states": 500}})
