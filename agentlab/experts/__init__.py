"""Expert policies trained with stable-baselines3, cached on disk, shared by every method.

One training run per ``(env, algo, seed)`` lives in ``$AGENTLAB_DATA/experts/<env>/<algo>-s<seed>/``:

* ``snapshots/step_<N>.zip`` + ``step_<N>_vecnormalize.pkl``: the SB3 model (and its observation
  normaliser) every ``snapshot_every`` environment steps. They make training resumable (a killed run
  continues from its last snapshot) and give the intermediate policies D4RL's "medium" level needs.
* ``snapshots/step_<N>_rollouts.npz``: the raw transitions the learner collected since the previous
  snapshot (un-normalised observations and rewards, executed = clipped actions). Concatenated up
  to the medium snapshot they are D4RL's "medium-replay" buffer.
* ``model.zip`` / ``vecnormalize.pkl``: the final (expert) policy; ``meta.json``: the training
  budget, per-snapshot training returns, and, after :func:`expert_levels`, the measured reference
  returns (random policy, expert, chosen medium snapshot).

PPO (on-policy, ~1.3k env steps/s on Hopper here) is the default for the MuJoCo locomotion tasks;
SAC (~100 steps/s with SB3 on this CPU, far more sample-efficient) is available for small tasks such
as DeepMind Control. ``load_expert`` returns an :class:`ExpertPolicy` whose ``act(obs_batch)``
applies the saved observation normalisation, so the policy behaves exactly as it did in training.


The package: :mod:`~agentlab.experts.store` (paths, loading), :mod:`~agentlab.experts.train`
(training), :mod:`~agentlab.experts.rollout` (rollouts, demonstrations), :mod:`~agentlab.experts.levels`
(D4RL levels), :mod:`~agentlab.experts.cli` (the ``agentlab experts`` commands).
"""

from __future__ import annotations

from agentlab.experts.cli import experts_cli
from agentlab.experts.levels import EVAL_SEED, expert_levels
from agentlab.experts.rollout import collect, measure_return, rollout
from agentlab.experts.store import (
    ALGOS,
    DEFAULT_SNAPSHOT_EVERY,
    DEFAULT_STEPS,
    N_ENVS,
    AgentlabExpert,
    ExpertPolicy,
    RandomPolicy,
    env_slug,
    expert_dir,
    experts_root,
    find_expert,
    list_experts,
    load_expert,
)
from agentlab.experts.train import replay_transitions, train_expert

__all__ = ["ALGOS", "DEFAULT_SNAPSHOT_EVERY", "DEFAULT_STEPS", "EVAL_SEED", "N_ENVS", "AgentlabExpert", "ExpertPolicy",
           "RandomPolicy", "collect", "env_slug", "expert_dir", "expert_levels", "experts_cli", "experts_root",
           "find_expert", "list_experts", "load_expert", "measure_return", "replay_transitions", "rollout",
           "train_expert"]
