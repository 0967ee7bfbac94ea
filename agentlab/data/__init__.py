"""Offline datasets: the :class:`Dataset` type, D4RL/NPZ/Minari loading, writers, scores, generators."""

from agentlab.data.dataset import Dataset
from agentlab.data.io import check_against_env, dataset_dir, load, read_hdf5, read_minari, save_d4rl
from agentlab.data.scores import D4RL_REF_SCORES, normalized_score, reference_scores

__all__ = [
           "D4RL_REF_SCORES",
           "Dataset",
           "check_against_env",
           "dataset_dir",
           "load",
           "normalized_score",
           "read_hdf5",
           "read_minari",
           "reference_scores",
           "save_d4rl",
]
