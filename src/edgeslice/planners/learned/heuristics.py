"""The non-learned placements of the MEC comparison, each a function ``policy(env) -> places``.

A policy sees the environment as it stands before the current task (its
``net`` instance and ``t``) and returns one place per block (0 the device,
n the n-th ES).  The paper's baselines:

- ``local``: every block on the device;  ``edge``: every block on the ES whose
  channel is best for this task;
- ``greedy``: each block to the least-loaded ES (load: the ES's queued work in
  seconds in contention mode; in paper mode, which has no queues, the work
  placed on it so far in the episode);
- ``apdi``: the blocks spread evenly over the ESs, in N contiguous runs;
- ``rpdi``: each block to a place drawn uniformly (seeded);

and ours:

- ``optimum`` (paper mode): the episode's exact optimum
  (:mod:`~edgeslice.planners.learned.optimum`), replayed task by task;
- ``queue-dp`` (both modes): for each task, a label-setting DP over (block,
  place) that simulates the queues as they stand — the transfer waits for its
  channel, the block for its ES or CPU — keeps the labels not dominated in
  (ready time, cost so far, energy), and prices energy beyond the device's
  remaining budget at ``energy_price``; in paper mode it is the per-task
  optimum with energy priced by the budget left.

>>> from edgeslice.planners.learned.env import MECEnv
>>> env = MECEnv("paper", tasks=5)
>>> _ = env.reset(seed=0)
>>> [POLICIES[k](env).tolist() for k in ("local", "apdi")]
[[0, 0, 0, 0, 0, 0], [1, 1, 2, 3, 3, 4]]
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edgeslice.planners.learned.network import advance, penalty


def local(env) -> np.ndarray:
    return np.zeros(env.M, dtype=np.int64)


def edge(env) -> np.ndarray:
    n = int(np.argmax(env.net.R[env.t]))
    return np.full(env.M, n + 1, dtype=np.int64)


def greedy(env) -> np.ndarray:
    net = env.net
    if env.contention:
        now = float(net.arrival[env.t])
        load = [max(f - now, 0.0) for f in net.es_free]
    else:
        load = [c / f for c, f in zip(net.es_cycles, net.F[1:])]
    out = np.zeros(env.M, dtype=np.int64)
    for m in range(env.M):
        n = int(np.argmin(load))
        out[m] = n + 1
        load[n] += net.comp[n + 1][m]
    return out


def apdi(env) -> np.ndarray:
    M, N = env.M, env.N
    return np.array([1 + (m * N) // M for m in range(M)], dtype=np.int64)


def rpdi_factory(seed: int = 0) -> Callable:
    rng = np.random.default_rng(seed)

    def rpdi(env) -> np.ndarray:
        return rng.integers(0, env.P, env.M).astype(np.int64)

    return rpdi


def queue_dp(env) -> np.ndarray:
    """Ours: the best placement of this task given the queues as they stand (see the module docstring)."""
    return queue_dp_paths(env, 1)[0][1]


def queue_dp_paths(env, k: int = 1) -> list[tuple[float, np.ndarray]]:
    """The ``k`` best ``(value, places)`` of :func:`queue_dp`'s final labels, the best first."""
    net, cfg, t = env.net, env.cfg, env.t
    dev = int(net.device[t])
    tau = net.tau[t]
    left = max(net.energy_left[dev], 0.0)
    # a label: (ready, cost, energy, chan_free tuple, es_free tuple, local_free, path)
    start = (float(net.arrival[t]), 0.0, 0.0, tuple(net.chan_free), tuple(net.es_free), net.local_free[dev], ())
    at = {0: [start]}
    for m in range(env.M):
        nxt: dict[int, list] = {p: [] for p in range(env.P)}
        for q, labels in at.items():
            for ready, cost, en, chan, es, loc, path in labels:
                for p in range(env.P):
                    tt, ch, s2, l2, j = advance(net, t, m, q, p, ready, chan, es, loc)
                    L = tt - ready
                    nxt[p].append((tt, cost + L + cfg.beta * penalty(L, tau[m]), en + j, ch, s2, l2, path + (p,)))
        at = {p: _front(labels) for p, labels in nxt.items() if labels}
    final = sorted(((lab[1] + cfg.energy_price * max(lab[2] - left, 0.0), lab[6])
                    for labels in at.values() for lab in labels), key=lambda x: x[0])  # ties: the first found
    return [(v, np.array(path, dtype=np.int64)) for v, path in final[:k]]


def _front(labels: list, cap: int = 24) -> list:
    """Labels not dominated in (ready, cost, energy); at most ``cap``, the cheapest first."""
    labels.sort(key=lambda x: (x[1], x[0], x[2]))
    out = []
    for lab in labels:
        if not any(o[0] <= lab[0] and o[1] <= lab[1] and o[2] <= lab[2] for o in out):
            out.append(lab)
            if len(out) >= cap:
                break
    return out


POLICIES: dict[str, Callable] = {
    "local": local,
    "edge": edge,
    "greedy": greedy,
    "apdi": apdi,
    "rpdi": rpdi_factory(0),
    "queue-dp": queue_dp,
}
