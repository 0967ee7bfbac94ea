"""Optimisers: :class:`SSO`, target-based surrogate optimisation (see :mod:`agentlab.optim.sso`)."""

from agentlab.optim.sso import SSO

__all__ = ["SSO"]
