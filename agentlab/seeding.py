"""Named seed streams: every seed agentlab derives from a run's ``--seed`` is defined here, once.

Streams never overlap in practice (different multipliers and offsets), so evaluation episodes never
replay training episodes and a run's data-collection seeds do not depend on its evaluation
schedule. Each function is a pure function of its arguments: resuming a run re-derives the same
seeds. ``seed_everything`` (the global RNGs) lives in :mod:`agentlab.runs`.
"""

from __future__ import annotations


def evaluation_seed(seed: int) -> int:
    """First episode seed of a run's evaluations (episode ``i`` of an evaluation uses ``+ i``)."""
    return 1_000_003 + 1_000 * seed


def online_episode_seed(seed: int, episode: int) -> int:
    """``reset`` seed of training episode ``episode`` of an off-policy learner (sac, dac, ailboost)."""
    return seed + 7919 * episode


def planner_episode_seed(seed: int, episode: int) -> int:
    """``reset`` seed of PETS's training episode ``episode``."""
    return seed * 100_003 + episode


def oracle_expert_seed(seed: int) -> int:
    """First episode seed of the oracle-expert episodes PETS's re-weighting is built from."""
    return evaluation_seed(seed) + 77


def dagger_rollout_seed(seed: int) -> int:
    """Base seed of DAgger's rollout environment (its episodes count up from it)."""
    return 10_000 * seed
