"""Run a placement policy over seeded episodes and report the paper's figures.

Per task (means over all tasks of all episodes): ``total_delay_s`` (Σ_m L_m),
``edge_delay_s`` (transmissions and ES compute, waits included),
``local_delay_s`` (device compute), ``energy_j``; ``miss_rate`` is the share
of blocks whose delay exceeds their deadline; ``reward`` the mean task reward
(the environment's, energy overdraft included).  The evaluation episodes use
seeds ``10_000 + i``, which training never draws.

>>> from edgeslice.planners.learned.heuristics import POLICIES
>>> r = evaluate(POLICIES["local"], "paper", episodes=1, tasks=50)
>>> r["edge_delay_s"], r["total_delay_s"] == r["local_delay_s"]
(0.0, True)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edgeslice.planners.learned.config import MECConfig, load_config
from edgeslice.planners.learned.env import MECEnv

EVAL_SEED = 10_000
FIELDS = ("total_delay_s", "edge_delay_s", "local_delay_s", "miss_rate", "energy_j", "reward")


def evaluate(policy: Callable, config: str | dict | MECConfig = "paper", *, episodes: int = 5,
             seed: int = EVAL_SEED, plan_episode: Callable | None = None, **overrides) -> dict:
    """Mean figures of ``policy`` over ``episodes`` seeded episodes (see the module docstring).

    ``plan_episode(env) -> [places per task]``, when given, places a whole
    episode at once from its instance (the exact optimum) instead of ``policy``.
    """
    cfg = load_config(config, **overrides)
    env = MECEnv(cfg)
    sums = dict.fromkeys(FIELDS, 0.0)
    tasks = blocks = 0
    for i in range(episodes):
        env.reset(seed=seed + i)
        planned = plan_episode(env) if plan_episode is not None else None
        for t in range(env.net.T):
            places = planned[t] if planned is not None else policy(env)
            info = env.run_task(places)
            sums["total_delay_s"] += info["delay_s"]
            sums["edge_delay_s"] += info["edge_delay_s"]
            sums["local_delay_s"] += info["local_delay_s"]
            sums["miss_rate"] += info["misses"]
            sums["energy_j"] += info["energy_j"]
            sums["reward"] += info["reward"]
        tasks += env.net.T
        blocks += env.net.T * env.M
    out = {k: v / tasks for k, v in sums.items()}
    out["miss_rate"] = sums["miss_rate"] / blocks
    return {k: float(np.round(v, 9)) for k, v in out.items()}


def optimum_episode(env) -> list:
    """The exact optimum's placements for the episode ``env`` was just reset to (paper mode)."""
    from edgeslice.planners.learned.optimum import episode_optimum

    return episode_optimum(env.net).places
