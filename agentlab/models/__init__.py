"""Model-based RL building blocks: the probabilistic dynamics ensemble, the CEM planner with
trajectory sampling, the explicit reward/termination functions of the supported tasks, and the
objective-mismatch diagnostic. The ``pets`` algorithm (``agentlab/agents/pets.py``) puts them together.
"""
