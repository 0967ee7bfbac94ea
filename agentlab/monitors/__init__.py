"""Agent monitoring: the UCIP protocol with a quantum Boltzmann machine (see docs of each module).

``UCIPMonitor(env, detector)`` (gym wrapper), ``Detector`` (fit/score/save/load), ``QBM``.
Imports are lazy so ``import agentlab.monitors`` stays cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = ["UCIPMonitor", "Detector", "QBM", "QBMConfig", "fit_detector", "make_sb3_callback"]

_WHERE = {"UCIPMonitor": "wrapper", "make_sb3_callback": "wrapper", "Detector": "ucip", "fit_detector": "ucip",
          "QBM": "qbm", "QBMConfig": "qbm"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f"agentlab.monitors.{_WHERE[name]}"), name)
    raise AttributeError(name)
