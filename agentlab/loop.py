"""The one training-loop skeleton every kind of algorithm runs in.

The loop owns the mechanics that must behave the same for every algorithm: the progress bar, the
every-N schedule (logging, evaluation, checkpoints), resume (load the checkpoint, restore RNG
states, drop the metrics logged after it, record changed options), the non-finite-loss guard and
the final evaluation. An algorithm kind supplies a :class:`Trainer`: its unit of work
(:meth:`Trainer.advance`), its state, and its evaluation.

Progress is counted in the unit the run's ``--steps`` counts (gradient steps offline, environment
steps online and model-based, expert-labelled interactions for DAgger); ``advance`` may move it by
more than one (an action-repeat step, a whole episode, a batch of interactions). A schedule fires
when the counter *crosses* a multiple of its period, so it does not depend on the step size.

One checkpoint schema (``model.pt``): ``{"step": progress, "rng": RNG states, **trainer.state_dict()}``.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any

from agentlab.errors import UserError


class NonFiniteLoss(UserError):
    """A logged training quantity became NaN or infinite; the run stops, the last checkpoint is kept."""


class Trainer(ABC):
    """What one kind of algorithm gives the shared loop (offline, online, model-based, DAgger)."""

    #: log a metrics row after every :meth:`advance` (episode- or batch-sized steps) rather than
    #: every ``log_every`` steps
    log_every_advance: bool = False
    #: checkpoint after every :meth:`advance` (when one advance is expensive, e.g. a planned episode)
    checkpoint_every_advance: bool = False
    #: the name of the throughput metric the loop logs
    rate_metric: str = "time/steps_per_s"

    def begin(self, step: int) -> None:  # noqa: B027 - optional hook
        """Called once before the first :meth:`advance` (after a resume: with the restored step)."""

    @abstractmethod
    def advance(self, step: int, total: int) -> tuple[int, Mapping[str, Any]]:
        """Do one unit of work from progress ``step``; return the new progress and its metrics
        (tensors are fine: the loop converts them only when it logs)."""

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs (networks, optimisers, buffers, counters)."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""

    def evaluate(self, final: bool) -> dict[str, float]:
        """Evaluation metrics (``eval/...``); ``final`` on the last step. Default: none."""
        return {}

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release environments and other resources."""


def crossed(prev: int, now: int, every: int) -> bool:
    """Did the progress counter pass a multiple of ``every`` going from ``prev`` to ``now``?"""
    return every > 0 and now // every > prev // every


def finite_row(info: Mapping[str, Any], step: int, run_path: Any = None) -> dict[str, float]:
    """``info`` as floats; a NaN or infinite training quantity stops the run with a one-line error."""
    row = {}
    for k, v in info.items():
        x = float(v.item() if hasattr(v, "item") else v)
        if not math.isfinite(x) and k.startswith("train/"):
            where = f"; the last good checkpoint in {run_path} is kept (model.pt)" if run_path else ""
            raise NonFiniteLoss(f"{k} is {x} at step {step}: training stopped{where}")
        row[k] = x
    return row


def resume_state(ctx: Any) -> dict[str, Any] | None:
    """On ``--resume``: the checkpoint (RNG states restored), with the metrics logged after it dropped."""
    if not ctx.resume or not ctx.run.has_checkpoint():
        return None
    state = ctx.run.load_checkpoint()
    ctx.run.truncate_metrics(int(state["step"]))
    return state


class Schedule:
    """One run's side of the loop: resume, then after every advance its logging, evaluation and
    checkpoints. :func:`run_loop` drives one; :func:`run_lockstep` drives several whose advances are
    one shared step (the vectorised multi-seed trainer)."""

    def __init__(self, ctx: Any, trainer: Trainer, total: int | None = None):
        self.ctx, self.trainer = ctx, trainer
        self.total = int(ctx.steps if total is None else total)
        state = resume_state(ctx)
        self.step = 0
        if state is not None:
            try:
                trainer.load_state_dict(state)
            except (RuntimeError, KeyError, ValueError) as e:
                raise UserError(f"cannot resume {ctx.run.path}: its checkpoint does not fit this configuration "
                                f"({str(e).splitlines()[0][:160]})") from None
            self.step = int(state["step"])
        if getattr(ctx, "on_resumed", None) is not None:
            ctx.on_resumed(self.step)  # config.yaml / meta.json record the options changed at this step
        self.ckpt_every = ctx.checkpoint_every or max(self.total // 10, 1)
        self.final: dict[str, float] = {}
        self.t_last = self.t0 = time.perf_counter()
        self.step_last = self.step

    @property
    def done(self) -> bool:
        return self.step >= self.total

    def after(self, step: int, info: Mapping[str, Any], bar: Any = None) -> None:
        """The schedule's work once progress has moved from ``self.step`` to ``step`` with metrics ``info``."""
        ctx, trainer, prev = self.ctx, self.trainer, self.step
        self.step = step
        last = step >= self.total
        do_eval = ctx.eval_episodes > 0 and (last or crossed(prev, step, ctx.eval_every))
        do_ckpt = last or trainer.checkpoint_every_advance or crossed(prev, step, self.ckpt_every)
        if do_eval or last or trainer.log_every_advance or crossed(prev, step, ctx.log_every):
            row = finite_row(info, step, ctx.run.path)
            now = time.perf_counter()
            row[trainer.rate_metric] = (step - self.step_last) / max(now - self.t_last, 1e-9)
            row["time/elapsed_s"] = now - self.t0
            self.t_last, self.step_last = now, step
            if do_eval:
                row.update(trainer.evaluate(final=last))
            ctx.run.log(step, row)
            self.final = row
            if bar is not None:
                bar.update(step)
        elif do_ckpt:
            finite_row(info, step, ctx.run.path)  # never checkpoint weights that produced a NaN
        if do_ckpt:
            ctx.run.save_checkpoint({**trainer.state_dict(), "step": step})


def run_loop(ctx: Any, trainer: Trainer, total: int | None = None) -> dict[str, float]:
    """Drive ``trainer`` to ``total`` progress (default ``ctx.steps``) with the run's schedule.

    Returns the last logged row (it holds the final evaluation when ``ctx.eval_episodes > 0``).
    """
    sched = Schedule(ctx, trainer, total)

    def advance(step: int) -> tuple[int, list[Mapping[str, Any]]]:
        new_step, info = trainer.advance(step, sched.total)
        return new_step, [info]

    return _drive([sched], advance)[0]


def run_lockstep(members: list[tuple[Any, Trainer]],
                 advance: Callable[[int], list[Mapping[str, Any]]]) -> list[dict[str, float]]:
    """Drive several runs whose steps are one shared ``advance(step) -> [info per run]`` (one gradient
    step of every run), each with its own schedule, run directory and checkpoints.

    The runs must be at the same progress (all new, or all resumed from checkpoints of one step) and
    have the same ``steps``. Their schedules run in member order after every shared step, so the global
    RNG state the last member checkpoints is the one the next step starts from: a resumed group
    continues exactly as an uninterrupted one. Returns each run's last logged row.
    """
    scheds = [Schedule(ctx, trainer) for ctx, trainer in members]
    if len({s.step for s in scheds}) != 1 or len({s.total for s in scheds}) != 1:
        where = ", ".join(f"{s.ctx.run.path} at step {s.step} of {s.total}" for s in scheds)
        raise UserError(f"runs trained together must be at the same step of the same length: {where}")
    return _drive(scheds, lambda step: (step + 1, advance(step)))


def _drive(scheds: list[Schedule], advance: Callable[[int], tuple[int, list[Mapping[str, Any]]]]
           ) -> list[dict[str, float]]:
    """The loop itself: ``advance(step) -> (new step, [info per schedule])`` until the runs are done."""
    first = scheds[0]
    for s in scheds:
        s.trainer.begin(s.step)
    label = first.ctx.algo if len(scheds) == 1 else f"{first.ctx.algo} x{len(scheds)}"
    try:
        with first.ctx.run.progress(first.total, first.step, label) as bar:
            while not first.done:
                step, infos = advance(first.step)
                for s, info in zip(scheds, infos):
                    s.after(step, info, bar if s is first else None)
    finally:
        for s in scheds:
            s.trainer.close()
    return [s.final for s in scheds]
