"""The online loop shared by off-policy learners (sac, dac, ailboost).

One environment, one replay buffer (:class:`agentlab.replay.ReplayBuffer`), one agent step per
iteration (``action_repeat`` env steps; the step budget and every logged step count env steps): act (uniform random during the learner's ``seed_steps``, then the stochastic policy) ->
store ``(s, a, r, s', terminated)`` with the action in [-1, 1] (truncations are not terminals, so
they bootstrap) -> ``learner.after_step(step, buffer)`` (gradient updates, discriminator rounds)
-> log / evaluate / checkpoint.

A learner supplies ``agent`` (an :class:`agentlab.agents.base.Agent` with ``explore``),
``config`` (with ``seed_steps`` and ``buffer_size``), ``wrap_env(env)``, ``after_step``,
``evaluate(final)`` (``final``: the run's last evaluation), ``extra_state()`` and ``load_extra_state(state)``. Checkpoints hold the agent, its
optimisers, the replay buffer, the learner's extra state and the RNG states, so a killed run
resumes (the interrupted episode restarts from a fresh reset).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from agentlab.agents import TrainContext
from agentlab.agents.loops import save
from agentlab.replay import ReplayBuffer


def train_online(ctx: TrainContext, learner: Any) -> dict[str, float]:
    from agentlab.envs import make_env, max_episode_steps

    agent, cfg = learner.agent, learner.config
    env = learner.wrap_env(make_env(ctx.env_id))
    repeat = int(getattr(cfg, "action_repeat", 1))
    total = ctx.steps // repeat  # agent steps; ctx.steps and all logged steps count env steps
    obs_dim = int(np.prod(env.observation_space.shape))
    episode_len = max(1, (max_episode_steps(ctx.env_id) or 1000) // repeat)
    capacity = min(int(cfg.buffer_size), total + 2 * (total // episode_len) + 16)
    buffer = ReplayBuffer(capacity, obs_dim, agent.act_dim, ctx.device)

    start = 0
    if ctx.resume and ctx.run.has_checkpoint():
        state = ctx.run.load_checkpoint()
        agent.load_checkpoint_state(state)
        buffer.load_state_dict(state["buffer"])
        learner.load_extra_state(state.get("learner", {}))
        start = int(state["agent_step"])
        ctx.run.truncate_metrics(start * repeat)

    def crossed(step: int, every: int) -> bool:
        """Did the env-step counter pass a multiple of ``every`` during agent step ``step``?"""
        return every > 0 and (step * repeat) // every > ((step - 1) * repeat) // every

    action_space = env.action_space
    action_space.seed(ctx.seed + start)
    obs, _ = env.reset(seed=ctx.seed + start)
    ep_return, episodes = 0.0, 0
    recent_returns: list[float] = []
    ckpt_every = ctx.checkpoint_every or max(ctx.steps // 10, 1)
    eval_every = ctx.eval_every or ctx.steps
    final: dict[str, float] = {}
    t0, t_last, step_last = time.perf_counter(), time.perf_counter(), start
    info: dict[str, Any] = {}
    with ctx.run.progress(ctx.steps, start * repeat, ctx.algo) as bar:
        for step in range(start + 1, total + 1):
            if step <= cfg.seed_steps:
                a = agent.unscale_action_np(action_space.sample())
            else:
                a = agent.explore(obs)
            next_obs, reward, terminated, truncated, _ = env.step(agent.scale_action_np(a))
            buffer.add_step(obs, a, reward, next_obs, terminated)
            ep_return += float(reward)
            obs = next_obs
            if terminated or truncated:
                recent_returns.append(ep_return)
                episodes += 1
                obs, _ = env.reset()
                ep_return = 0.0
            out = learner.after_step(step, buffer)
            if out:
                info = out
            do_eval = ctx.eval_episodes > 0 and (crossed(step, eval_every) or step == total)
            if do_eval or crossed(step, ctx.log_every) or step == total:
                row = {k: float(v) for k, v in info.items()}
                now = time.perf_counter()
                row["time/env_steps_per_s"] = (step - step_last) * repeat / max(now - t_last, 1e-9)
                row["time/elapsed_s"] = now - t0
                t_last, step_last = now, step
                if recent_returns:
                    row["train/episode_return"] = float(np.mean(recent_returns[-10:]))
                    row["train/episodes"] = float(episodes)
                if do_eval:
                    row.update(learner.evaluate(final=step == total))
                ctx.run.log(step * repeat, row)
                final = row
                bar.update(step * repeat)
            if crossed(step, ckpt_every) or step == total:
                save(ctx, agent, step * repeat, {"agent_step": step, "buffer": buffer.state_dict(),
                                                 "learner": learner.extra_state()})
    env.close()
    return final
