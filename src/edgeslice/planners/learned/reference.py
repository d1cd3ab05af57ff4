"""References for the ``contention`` mode, where no exact episode optimum is known: the exact best
placement of a window of tasks, and a look-ahead heuristic of ours.

In ``contention`` mode one task's placement delays the next (FIFO ESs, shared
channels, the devices' CPUs), so the per-task DP of the paper mode is no
longer the optimum.  Two references, both **offline** — they see the coming
tasks' arrivals, devices, channel rates and deadlines, which the agents and
``queue-dp`` do not:

- :func:`window_optimum`: the exact minimum of ``Σ task costs`` (the
  environment's negated rewards: delays, deadline penalties, energy
  overdraft) over the next ``W`` tasks from the queues as they stand — a
  depth-first branch and bound over every block's place, children tried
  cheapest first, pruned by the cost so far plus a bound no placement can beat
  (each remaining block at least its fastest compute time).  Exponential in
  ``W · M``: meant for small instances (``tests/planners/learned/
  test_reference.py`` checks it against brute force).  :func:`window_policy`
  uses it with a receding horizon: solve the window, commit its first task,
  move on.
- :func:`lookahead_policy` (ours, any size): the task's ``candidates`` best
  placements by :func:`~edgeslice.planners.learned.heuristics.queue_dp_paths`
  plus "everything on ES n" for every n, each scored by committing it and then
  letting ``queue-dp`` place the next ``horizon`` tasks; the cheapest total
  wins, so a placement that clogs a queue the next tasks need loses.

>>> from edgeslice.planners.learned.env import MECEnv
>>> env = MECEnv("contention", tasks=6, edge_servers=2, blocks=3, iot_devices=2, es_hz=[6e9, 9e9],
...              es_gain_db=[-118.0, -120.0])
>>> _ = env.reset(seed=0)
>>> cost, places = window_optimum(env.net, 0, 2)
>>> len(places), places[0].shape
(2, (3,))
>>> bool(cost <= sum(-env.run_task(p)["reward"] for p in places) + 1e-9)
True
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edgeslice.planners.learned.heuristics import queue_dp, queue_dp_paths
from edgeslice.planners.learned.network import Network, advance, penalty


def window_optimum(net: Network, t0: int, window: int) -> tuple[float, list[np.ndarray]]:
    """``(cost, places per task)``: the exact best placement of tasks ``t0 .. t0 + window - 1`` from ``net``'s
    current queues and budgets (see the module docstring); ``net`` is not changed."""
    cfg = net.cfg
    M, P = net.M, net.N + 1
    tasks = list(range(t0, min(t0 + window, net.T)))
    fastest = [min(net.comp[p][m] for p in range(P)) for m in range(M)]
    rest = [sum(fastest[m:]) for m in range(M + 1)]  # a lower bound on blocks m.. of one task
    best = [float("inf"), None]

    def task(k: int, chan, es, locs, left, cost: float, done: tuple) -> None:
        if k == len(tasks):
            if cost < best[0]:
                best[0], best[1] = cost, done
            return
        t = tasks[k]
        dev = int(net.device[t])
        block(k, t, dev, 0, 0, float(net.arrival[t]), chan, es, locs, locs[dev], left, 0.0, cost, (), done)

    def block(k, t, dev, m, q, ready, chan, es, locs, loc, left, joules, cost, path, done) -> None:
        if m == M:
            cost += cfg.energy_price * max(joules - max(left[dev], 0.0), 0.0)
            left2 = left[:dev] + (left[dev] - joules,) + left[dev + 1:]
            locs2 = locs[:dev] + (loc,) + locs[dev + 1:]
            task(k + 1, chan, es, locs2, left2, cost, (*done, path))
            return
        if cost + rest[m] + (len(tasks) - k - 1) * rest[0] >= best[0]:
            return
        tau = net.tau[t, m]
        kids = []
        for p in range(P):
            tt, ch, s2, l2, j = advance(net, t, m, q, p, ready, chan, es, loc)
            L = tt - ready
            kids.append((cost + L + cfg.beta * penalty(L, tau), p, tt, ch, s2, l2, j))
        kids.sort(key=lambda x: x[0])
        for c, p, tt, ch, s2, l2, j in kids:
            block(k, t, dev, m + 1, p, tt, ch, s2, locs, l2, left, joules + j, c, (*path, p), done)

    task(0, tuple(net.chan_free), tuple(net.es_free), tuple(net.local_free), tuple(net.energy_left), 0.0, ())
    return best[0], [np.array(p, dtype=np.int64) for p in best[1]]


def window_policy(window: int = 2) -> Callable:
    """A policy placing each task by :func:`window_optimum` over it and the next ``window - 1`` (receding)."""

    def policy(env) -> np.ndarray:
        return window_optimum(env.net, env.t, window)[1][0]

    return policy


def lookahead_policy(horizon: int = 3, candidates: int = 4) -> Callable:
    """Ours: each task's best ``candidates`` queue-dp placements and every all-on-one-ES placement, scored by
    the cost of the task plus ``queue-dp`` on the next ``horizon`` tasks (see the module docstring)."""

    def policy(env) -> np.ndarray:
        net = env.net
        cands = [p for _, p in queue_dp_paths(env, candidates)]
        cands += [np.full(env.M, n, dtype=np.int64) for n in range(1, env.P)]
        seen, best, arg = set(), float("inf"), cands[0]
        t0, saved = env.t, net.state()
        for c in cands:
            key = tuple(c.tolist())
            if key in seen:
                continue
            seen.add(key)
            cost = -env.run_task(c)["reward"]
            for _ in range(horizon):
                if env.t >= net.T or cost >= best:
                    break
                cost -= env.run_task(queue_dp(env))["reward"]
            env.t = t0
            net.restore(saved)
            if cost < best:
                best, arg = cost, c
        return arg

    return policy
