r"""AILBoost (Chang et al., ICLR 2024): adversarial imitation as boosting over a mixture of policies.

The learner is a mixture :math:`\pi_{mix} = \sum_k w_k \pi_k` of weak learners (snapshots of one SAC
actor that keeps training). Every round of ``round_steps`` env steps:

1. the data collected during the round (by the learner that becomes snapshot :math:`\pi_T`) enters
   the discriminator's buffer, and the mixture is updated
   :math:`d_{mix} \leftarrow (1 - \alpha)\, d_{mix} + \alpha\, d_{\pi_T}`: every stored sample weight is
   multiplied by :math:`1 - \alpha` and the round's :math:`n` samples get :math:`\alpha / n` each.
   After :math:`T` rounds learner :math:`k \ge 1` holds :math:`\alpha (1 - \alpha)^{T-1-k}` and the
   first learner (the seed phase) the remaining :math:`(1 - \alpha)^{T-1}`; the weights sum to 1;
2. the actor is snapshotted into the ensemble with the same weight;
3. the discriminator takes ``disc_updates`` steps on expert samples vs samples drawn *by weight*
   from the replay, i.e. from :math:`d_{mix}`, with the reverse-KL loss

   .. math:: L_D = \mathbb{E}_{E}[e^{-D}] + \mathbb{E}_{d_{mix}}[D] + \lambda\,\mathrm{GP},
             \qquad D^* = \log \frac{d_E}{d_{mix}}

   (``disc_loss=js`` and ``wasserstein`` are available);
4. SAC keeps learning off-policy from the *whole* replay, uniformly, with reward :math:`D(s, a)` from
   the current discriminator evaluated when a batch is sampled.

Evaluation reports both policies at every evaluation: ``eval/*`` is the mixture (the method's
output: each episode draws one snapshot by the true weights above and acts with its mean) and
``eval/last_*`` the latest learner alone (the SAC actor as it is now).

What differs from DAC (:mod:`agentlab.agents.dac`, ``dac_variant=fresh``) when both are given the
same discriminator settings (:mod:`agentlab.agents.discriminator`; the imitation table does):
only (a) the agent samples of the discriminator rounds, drawn from :math:`d_{mix}` by the mixture
weights instead of uniformly from the replay, and (b) the output policy, the mixture instead of the
latest actor. SAC, the reward (fresh at sampling), the round schedule, the gradient penalty and
the absorbing states are the same code. The class defaults of the discriminator are the AILBoost
code's (64x64 ReLU, tanh-bounded output, reverse-KL loss), DAC's are DAC's (256x256 tanh, linear
output, JS loss).

Departures from the reference code (github Cornell-RL/ailboost, ``train_state.py``,
``replay_buffer.py``, ``agent/boosting.py``), checked there:

* **Mixture weights at evaluation.** The reference draws a learner with
  ``np.random.choice(learners, p=get_learner_weights())``, where ``get_learner_weights`` returns
  the *sorted* (ascending) distinct per-learner weights, while ``learners`` is in the order they were
  added (oldest first). The true weights are :math:`(1-\alpha)^{T-1}` for the first learner and
  :math:`\alpha (1-\alpha)^{T-1-k}` for learner :math:`k \ge 1`, so the sort hands the largest
  weight to the latest learner: while :math:`(1-\alpha)^{T-1} > \alpha` (the first 59 rounds at
  :math:`\alpha = 0.05`) the latest learner gets the first learner's :math:`(1-\alpha)^{T-1}`
  (e.g. 0.90 instead of 0.05 at :math:`T = 3`) and the first (untrained) learner the smallest
  weight; later the first learner's weight lands in the middle of the sorted list. Its "boosted"
  evaluation is therefore closer to the latest learners than the method's mixture. Here the
  weights are applied to the learners they belong to (``mixture_weights``).
* **Which return the paper's figures use.** The reference logs two: ``eval/eval_return`` (the
  current, latest learner, 5 episodes) and ``eval/boosting_return`` (the ensemble draw above, 20
  episodes, ``boosting_num_eval_episodes``). The figures most likely plot the boosting return (the
  method's output, with its own larger episode count), i.e. a mixture tilted towards the latest
  learner by the ordering error; we cannot confirm this from the code alone. Hence both columns.
* **Learner samples.** The reference snapshots the actor at the start of a round and then rolls
  the snapshot out for ``n_samples`` (1,000) extra transitions into the discriminator buffer, which
  also replaces the policy's replay; those transitions count towards the env-step budget. Here the
  round's own training transitions (collected by the actor that becomes snapshot :math:`T`) are the
  new learner's samples. Reason: the collection would need a second environment inside the online
  loop and a replay sized for the extra transitions (:mod:`agentlab.agents.online`, shared with
  DAC and SAC), and at an equal env-step budget it would spend half of AILBoost's steps on
  transitions that DAC gets to learn from too; we keep the two methods at the same number of
  learner steps and env steps.
* **seed_steps = 0** (the reference's boosting config comment: "Boosting (0)") is allowed: the first
  round (at ``round_steps``) takes every transition so far as the first learner's samples.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch
from torch.func import functional_call

from agentlab.agents import Algorithm, TrainContext
from agentlab.agents.dac import DACAgent, DACConfig, DACLearner, build_imitation, eval_with_refs
from agentlab.config import help_field
from agentlab.errors import UserError
from agentlab.replay import ReplayBuffer


@dataclasses.dataclass(frozen=True)
class AILBoostConfig(DACConfig):
    disc_hidden: list[int] = help_field([64, 64], "discriminator hidden sizes (reference: 64x64)")
    disc_activation: str = help_field("relu", "discriminator hidden activation")
    disc_output: str = help_field("tanh", "discriminator output: tanh (reference, in [-1, 1]) or linear")
    disc_loss: str = help_field("rkl", "discriminator loss: rkl (reference), js or wasserstein")
    alpha: float = help_field(0.05, "mixture step size: weight of each new weak learner")

    def validate(self) -> None:
        super().validate()
        if self.dac_variant != "fresh":
            raise UserError("ailboost runs only with dac_variant=fresh (discriminator rounds, fresh rewards)")
        if not 0.0 < self.alpha <= 1.0:
            raise UserError(f"alpha must be in (0, 1], got {self.alpha}")


def mixture_weights(rounds: int, alpha: float) -> np.ndarray:
    """Closed-form weights of ``rounds`` learners: ``alpha (1 - alpha)^(T-1-k)``, first one the rest."""
    k = np.arange(rounds)
    w = alpha * (1 - alpha) ** (rounds - 1 - k)
    w[0] = (1 - alpha) ** (rounds - 1)
    return w


def mixture_update(buffer: ReplayBuffer, new_indices: torch.Tensor, alpha: float, first: bool) -> None:
    """``d <- (1 - alpha) d + alpha d_new`` on the buffer's per-sample weights (``first``: d = d_new)."""
    n = len(new_indices)
    if n == 0:
        raise ValueError("a boosting round needs at least one new transition")
    if first:
        buffer.scale_weights(0.0)
        buffer.set_weights(new_indices, 1.0 / n)
    else:
        buffer.scale_weights(1.0 - alpha)
        buffer.set_weights(new_indices, alpha / n)


class AILBoostAgent(DACAgent):
    """DAC's networks plus the ensemble of actor snapshots (flat parameter vectors) and their weights."""

    def __init__(self, config: AILBoostConfig, spaces: dict[str, Any]):
        super().__init__(config, spaces)
        self._names = [n for n, _ in self.actor.named_parameters()]
        self._shapes = [p.shape for p in self.actor.parameters()]
        n_params = sum(p.numel() for p in self.actor.parameters())
        self.register_buffer("member_params", torch.zeros(0, n_params))
        self.register_buffer("member_weights", torch.zeros(0, dtype=torch.float64))
        self._episode_members: torch.Tensor | None = None
        #: False: act with the latest learner only (diagnostics)
        self.use_mixture = True

    @property
    def eval_max_parallel(self) -> int:
        """The evaluator steps one mixture episode at a time, so each keeps its own drawn member."""
        return 1 if self.use_mixture and len(self.member_weights) else super().eval_max_parallel

    # -- the mixture -----------------------------------------------------------------------------
    def add_member(self, alpha: float) -> None:
        """Snapshot the current actor with weight ``alpha`` (the first snapshot gets weight 1)."""
        flat = torch.cat([p.detach().reshape(-1) for p in self.actor.parameters()]).unsqueeze(0)
        first = len(self.member_weights) == 0
        w = self.member_weights * (1.0 - alpha)
        new = torch.ones(1, dtype=torch.float64, device=w.device) * (1.0 if first else alpha)
        self.member_weights = torch.cat([w, new])
        self.member_params = torch.cat([self.member_params, flat.to(self.member_params.device)])

    def member_state(self, k: int) -> dict[str, torch.Tensor]:
        chunks = torch.split(self.member_params[k], [s.numel() for s in self._shapes])
        return {n: c.view(s) for n, c, s in zip(self._names, chunks, self._shapes)}

    def reset_episodes(self, num_envs: int, seed: int | None = None) -> None:
        """Draw one member per episode, by weight (called by the evaluator before each group)."""
        super().reset_episodes(num_envs, seed)
        if len(self.member_weights) == 0 or not self.use_mixture:
            self._episode_members = None
            return
        g = torch.Generator().manual_seed(int(seed or 0))
        self._episode_members = torch.multinomial(self.member_weights.cpu().float(), num_envs, True, generator=g)

    def policy_action(self, obs: torch.Tensor, deterministic: bool) -> torch.Tensor:
        """Mixture action: rows use their episode's member; without a drawn episode, the latest actor."""
        if self._episode_members is None:
            return super().policy_action(obs, deterministic)
        x = self.obs_norm(self.with_indicator(obs))
        members = self._episode_members[: x.shape[0]]
        out = torch.empty(x.shape[0], self.act_dim, device=x.device)
        for k in members.unique().tolist():
            rows = (members == k).nonzero().squeeze(-1).to(x.device)
            a, _ = functional_call(self.actor, self.member_state(k), (x[rows],),
                                   {"deterministic": deterministic, "with_logp": False})
            out[rows] = a
        return out

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
        # the ensemble grows during training: size the buffers from the checkpoint first
        self.member_params = torch.zeros_like(state_dict["member_params"])
        self.member_weights = torch.zeros_like(state_dict["member_weights"])
        return super().load_state_dict(state_dict, strict, assign)


class AILBoostLearner(DACLearner):
    def start_round(self, step: int, buffer: ReplayBuffer) -> None:
        c = self.config
        first = len(self.agent.member_weights) == 0
        # the first learner's samples: everything collected so far (the seed phase, or with
        # seed_steps=0 the first round); later learners: the round's transitions
        new = buffer.recent_indices(step if first else c.round_steps)
        mixture_update(buffer, new, c.alpha, first)
        self.agent.add_member(c.alpha)

    def sample_agent(self, buffer: ReplayBuffer, n: int) -> tuple[dict[str, torch.Tensor], None]:
        return buffer.sample(n, weighted=True), None  # samples drawn from d_mix

    def evaluate(self, final: bool = False) -> dict[str, float]:
        agent = self.agent
        out = eval_with_refs(self.ctx, agent, self.demos_meta)  # the mixture (the method's output)
        # and the latest learner alone, at every evaluation (the reference logs both)
        agent.use_mixture = False
        try:
            last = eval_with_refs(self.ctx, agent, self.demos_meta)
        finally:
            agent.use_mixture = True
        out.update({k.replace("eval/", "eval/last_"): v for k, v in last.items()})
        out["train/ensemble_size"] = float(len(agent.member_weights))
        return out


def train(ctx: TrainContext) -> dict[str, float]:
    from agentlab.agents.online import train_online

    agent, expert, ds = build_imitation(ctx, AILBoostAgent)
    learner = AILBoostLearner(ctx, agent, expert)
    learner.demos_meta = ds.metadata
    return train_online(ctx, learner)


ALGORITHM = Algorithm(name="ailboost", config_cls=AILBoostConfig, train=train, build_agent=AILBoostAgent,
                      kind="imitation",
                      description="AILBoost: boosted mixture of SAC learners, weighted discriminator replay, "
                                  "reverse-KL discriminator",
                      presets={"smoke": {"hidden": [64, 64], "disc_hidden": [32, 32], "seed_steps": 200,
                                         "batch_size": 64, "round_steps": 100, "disc_updates": 5,
                                         "disc_batch_size": 64}})
