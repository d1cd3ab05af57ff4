"""The exact optimum of a ``paper``-mode episode: a DP per task and one small MILP for the energy budget.

Without queues a task's placement affects no other task except through its
device's energy budget.  So:

1. **Per task**, the best placement for a price ``λ`` per joule is a shortest
   path over M blocks × (N + 1) places (:func:`task_dp`, edge cost
   ``L_m + β max(0, L_m - τ_m) + λ e_m``), and every placement worth
   considering lies on the task's exact Pareto front of (delay cost, energy),
   found by a label-setting DP that keeps the non-dominated labels at each
   (block, place) (:func:`pareto_front`).
2. **Per episode**, the objective is ``Σ_t cost_t + energy_price · Σ_d max(0,
   Σ_{t∈d} e_t - E_max)``; when the tasks' cheapest points fit the budgets
   that is the answer, otherwise one point per task is chosen from the fronts
   by a multiple-choice knapsack MILP (HiGHS through ``scipy.optimize.milp``,
   zero gap) — exact, because a dominated placement is never needed.

Checked against brute force over all placements of every task on random
small instances (``tests/planners/learned/test_optimum.py``).

>>> from edgeslice.planners.learned.config import load_config
>>> from edgeslice.planners.learned.network import Network
>>> net = Network(load_config("paper", tasks=30), seed=3)
>>> opt = episode_optimum(net)
>>> len(opt.places), opt.places[0].shape
(30, (6,))
>>> bool(opt.objective >= sum(task_dp(net, t)[0] for t in range(30)) - 1e-9)  # the budget can only cost
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgeslice.planners.learned.network import Network


def _edge_costs(net: Network, t: int):
    D, E = net.tables(t)
    tau = net.tau[t][:, None, None]
    C = D + net.cfg.beta * np.maximum(D - tau, 0.0)
    return C, E


def task_dp(net: Network, t: int, lam: float = 0.0) -> tuple[float, float, np.ndarray]:
    """``(delay cost, energy, places)`` of task ``t``'s placement minimising ``cost + lam · energy`` (exact)."""
    C, E = _edge_costs(net, t)
    W = C + lam * E
    M, P = W.shape[0], W.shape[1]
    V = W[0, 0].copy()
    back = np.zeros((M, P), dtype=np.int64)
    for m in range(1, M):
        tot = V[:, None] + W[m]
        back[m] = np.argmin(tot, axis=0)
        V = tot[back[m], np.arange(P)]
    p = int(np.argmin(V))
    places = np.zeros(M, dtype=np.int64)
    for m in range(M - 1, -1, -1):
        places[m] = p
        p = int(back[m, p])
    return path_cost(C, E, places) + (places,)


def path_cost(C, E, places) -> tuple[float, float]:
    q, c, e = 0, 0.0, 0.0
    for m, p in enumerate(places):
        c += C[m, q, p]
        e += E[m, q, p]
        q = p
    return float(c), float(e)


def _prune(labels):
    """The non-dominated (cost, energy, path) labels, sorted by cost."""
    labels.sort(key=lambda x: (x[0], x[1]))
    out, best_e = [], float("inf")
    for lab in labels:
        if lab[1] < best_e - 1e-15:
            out.append(lab)
            best_e = lab[1]
    return out


def pareto_front(net: Network, t: int) -> list[tuple[float, float, tuple[int, ...]]]:
    """Every placement of task ``t`` not dominated in (delay cost, energy): ``[(cost, energy, places), ...]``."""
    C, E = _edge_costs(net, t)
    M, P = C.shape[0], C.shape[1]
    at = [_prune([(C[0, 0, p], E[0, 0, p], (p,))]) for p in range(P)]
    for m in range(1, M):
        nxt = []
        for p in range(P):
            cand = [(c + C[m, q, p], e + E[m, q, p], path + (p,)) for q in range(P) for c, e, path in at[q]]
            nxt.append(_prune(cand))
        at = nxt
    return _prune([lab for labs in at for lab in labs])


@dataclass(frozen=True)
class Optimum:
    """The best placement of every task of an episode and its objective (the negated episode reward)."""

    objective: float
    places: list[np.ndarray]
    energy_j: float
    method: str  # "dp" (budgets do not bind) or "milp"


def episode_optimum(net: Network) -> Optimum:
    """The exact optimum of a paper-mode episode (see the module docstring)."""
    cfg = net.cfg
    if cfg.mode != "paper":
        raise ValueError("the exact optimum is for paper mode (no queues); contention mode has queue-dp")
    T = net.T
    fronts = [pareto_front(net, t) for t in range(T)]
    dev = net.device
    budget = cfg.energy_budget_j
    cheapest = [f[0] for f in fronts]
    use = np.zeros(cfg.iot_devices)
    for t, lab in enumerate(cheapest):
        use[dev[t]] += lab[1]
    if cfg.energy_price == 0 or (use <= budget + 1e-12).all():
        obj = sum(lab[0] for lab in cheapest) + cfg.energy_price * float(np.maximum(use - budget, 0).sum())
        return Optimum(obj, [np.array(lab[2]) for lab in cheapest], float(use.sum()), "dp")
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import coo_matrix

    sizes = [len(f) for f in fronts]
    n = sum(sizes)
    D = cfg.iot_devices
    c = np.concatenate([[lab[0] for lab in f] for f in fronts] + [np.full(D, cfg.energy_price)])
    rows, cols, vals, lo, hi = [], [], [], [], []
    col = 0
    for t, f in enumerate(fronts):  # one point per task
        for k in range(len(f)):
            rows.append(t), cols.append(col + k), vals.append(1.0)
        col += len(f)
        lo.append(1.0), hi.append(1.0)
    col = 0
    for t, f in enumerate(fronts):  # energy of device d minus its overdraft within its budget
        for k, lab in enumerate(f):
            rows.append(T + int(dev[t])), cols.append(col + k), vals.append(lab[1])
        col += len(f)
    for d in range(D):
        rows.append(T + d), cols.append(n + d), vals.append(-1.0)
        lo.append(-np.inf), hi.append(budget)
    A = coo_matrix((vals, (rows, cols)), shape=(T + D, n + D)).tocsr()
    integrality = np.concatenate([np.ones(n), np.zeros(D)])
    res = milp(c, constraints=LinearConstraint(A, lo, hi), integrality=integrality,
               bounds=Bounds(np.zeros(n + D), np.concatenate([np.ones(n), np.full(D, np.inf)])),
               options={"mip_rel_gap": 0.0})
    x = np.round(res.x[:n])
    places, col, energy, cost = [], 0, np.zeros(D), 0.0
    for t, f in enumerate(fronts):
        k = int(np.argmax(x[col: col + len(f)]))
        col += len(f)
        places.append(np.array(f[k][2]))
        cost += f[k][0]
        energy[dev[t]] += f[k][1]
    obj = cost + cfg.energy_price * float(np.maximum(energy - budget, 0).sum())
    return Optimum(obj, places, float(energy.sum()), "milp")
