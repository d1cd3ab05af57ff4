"""``fl-psomw`` (particle swarm + Minimizing Waiting) and ``fl-dpls`` (DP + local search).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from edgeslice.graph.layer import LayerGraph
from edgeslice.planners import register
from edgeslice.planners._shared.common import evaluate, make
from edgeslice.planners.fl.exact import (
    FLResult,
    _space,
    build_plan,
    layouts_option,
    max_block_option,
    nfl_solve,
)
from edgeslice.planners.fl.search import _Decoder, count_seed
from edgeslice.planners.fl.space import FLSpace
from edgeslice.planners.options import PlannerOptions, option


def polish_option():
    return option(1200, "local-search evaluations (0: no local search)", min=0)


def psomw_solve(space: FLSpace, *, swarm: int = 24, iterations: int = 40, seed: int = 0, patience: int | None = None,
                slots: int = 3, polish: int = 1200, inertia=(0.9, 0.4), c1: float = 1.5, c2: float = 1.5,
                vmax: float = 0.25) -> FLResult:
    """PSO with Minimizing Waiting over the FL space; returns the best plan and the convergence curve.

    Local-best PSO on a ring (inertia falling linearly from ``inertia[0]`` to
    ``inertia[1]``, velocities clamped to ``vmax``, positions to [0, 1]).
    Then a first-improvement local search (:meth:`_Decoder.polish`: path
    moves, layouts, block edges, blocks added and dropped), ``polish``
    evaluations shared by its starts: the best three distinct personal bests,
    the NFL solution (no block) and :func:`count_seed`'s solution, which
    brings block structures the swarm's random starts rarely hit (two blocks,
    a block deep in the model).  The curve is the best fast-model time after
    initialisation, after each iteration, and after the local search.
    ``patience`` stops the swarm after that many iterations without
    improvement.  Deterministic for a given ``seed``.
    """
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    dec = _Decoder(space, slots)
    n, dim = max(2, int(swarm)), dec.dim
    X = rng.random((n, dim))
    # most particles start with one active block, few with more
    for q in range(dec.slots):
        o = q * dec.width
        X[:, o] = np.where(rng.random(n) < (0.8 if q == 0 else 0.15), 0.75, 0.25)
    # a third of the swarm starts its first block at the model input, where the largest maps are and where
    # overlapping the input's upload with local work pays most (FL's main case)
    X[: n // 3, 1] = rng.random(n // 3) * 0.5 / max(1, len(dec.starts))
    # (NFL, no block, competes at the end: seeding it here would pull the swarm to "no block" at once)
    V = (rng.random((n, dim)) - 0.5) * 2 * vmax
    keys = [dec.decode(X[k]) for k in range(n)]
    fit = np.array([dec.fitness(k)[0] for k in keys])
    pbest, pfit = X.copy(), fit.copy()
    g = int(np.argmin(fit))
    gfit, gkey = float(fit[g]), keys[g]
    curve = [gfit]
    still = 0
    for it in range(int(iterations)):
        w = inertia[0] + (inertia[1] - inertia[0]) * it / max(1, int(iterations) - 1)
        r1, r2 = rng.random((n, dim)), rng.random((n, dim))
        # ring neighbourhood (lbest): each particle follows the best of itself and its two neighbours,
        # which keeps the swarm from collapsing onto the first good solution
        nb = np.stack([np.roll(pfit, 1), pfit, np.roll(pfit, -1)])
        pick = np.argmin(nb, axis=0)
        lbest = np.where((pick == 0)[:, None], np.roll(pbest, 1, axis=0),
                         np.where((pick == 2)[:, None], np.roll(pbest, -1, axis=0), pbest))
        V = np.clip(w * V + c1 * r1 * (pbest - X) + c2 * r2 * (lbest - X), -vmax, vmax)
        X = np.clip(X + V, 0.0, 1.0)
        improved = False
        for k in range(n):
            key = dec.decode(X[k])
            f = dec.fitness(key)[0]
            if f < pfit[k]:
                pbest[k], pfit[k] = X[k].copy(), f
                if f < gfit - 1e-15:
                    gfit, gkey = f, key
                    improved = True
        curve.append(gfit)
        still = 0 if improved else still + 1
        if patience is not None and still >= patience:
            break
    if polish:
        # local search from the best few distinct personal bests (the swarm's basins), the best result wins
        starts = []
        for k in np.argsort(pfit, kind="stable"):
            kk = dec.decode(pbest[k].copy())
            if kk not in starts:
                starts.append(kk)
            if len(starts) == 3:
                break
        if gkey not in starts:
            starts[-1:] = [gkey]
        if () not in starts:
            starts.append(())  # and from NFL: adding one block at a time
        cs = count_seed(space)[1]
        if cs not in starts:
            starts.insert(0, cs)  # and from the structure DP's solution (count_seed)
        found = [dec.polish(kk, int(polish) // len(starts)) for kk in starts]
        gkey = min(found, key=lambda kk: (dec.fitness(kk)[0], found.index(kk)))
        curve.append(dec.fitness(gkey)[0])
    opts = dict(swarm=int(swarm), iterations=int(iterations), seed=int(seed), polish=int(polish), max_block=space.max_block)
    if patience is not None:
        opts["patience"] = int(patience)
    return _finish(space, dec, gkey, "fl-psomw", opts, curve, t0)


def _finish(space: FLSpace, dec: _Decoder, gkey: tuple, planner: str, opts: dict, curve: list, t0: float) -> FLResult:
    """The solution ``gkey`` as a Plan — or NFL's plan where the simulator says NFL is faster."""
    val, choices = dec.fitness(gkey)
    payload = {}
    for i, j, lay, assign in gkey:
        for ch in choices:
            if ch[0] == "block" and ch[1] == i and ch[2] == j:
                payload[(i, j, ch[3], ch[4])] = (lay, assign)
    plan = build_plan(space, choices, payload, planner, **opts)
    # never worse than NFL, judged by the simulator (the fast model is exact only on switched links without a trace)
    nfl_t, nfl_plan = nfl_solve(space)
    chose_nfl = False
    if gkey and evaluate(nfl_plan, space.graph, space.cluster, space.cost) < evaluate(plan, space.graph, space.cluster, space.cost):
        plan, val, chose_nfl = make(space.graph, space.cluster, nfl_plan.segments, planner, **opts), nfl_t, True
    return FLResult(plan, float(val), curve, dec.evaluations, time.perf_counter() - t0, chose_nfl)


def dpls_solve(space: FLSpace, *, polish: int = 1200) -> FLResult:
    """No swarm: :func:`count_seed`'s solution and NFL's, each improved by PSOMW's local search; the better wins.

    The two local searches share ``polish`` evaluations.  The curve is the
    structure DP's time, then the local search's result.
    """
    t0 = time.perf_counter()
    dec = _Decoder(space)
    val, key = count_seed(space)
    starts = list(dict.fromkeys([key, ()]))
    found = [dec.polish(kk, int(polish) // len(starts)) for kk in starts]
    gkey = min(found, key=lambda kk: (dec.fitness(kk)[0], found.index(kk)))
    return _finish(space, dec, gkey, "fl-dpls", dict(polish=int(polish), max_block=space.max_block),
                   [float(val), dec.fitness(gkey)[0]], t0)


@dataclass(frozen=True)
class FLDplsOptions(PlannerOptions):
    max_block: int = max_block_option()
    layouts: str = layouts_option()
    polish: int = polish_option()


@register("fl-dpls", "FL without a swarm: chain DP over every fused block with count-family offloading, then "
                     "PSOMW's local search (--polish); deterministic", options=FLDplsOptions)
def plan_fl_dpls(graph: LayerGraph, cluster, cost, opts: FLDplsOptions):
    return dpls_solve(_space(graph, cluster, cost, opts.layouts, opts.max_block), polish=opts.polish).plan


@dataclass(frozen=True)
class FLPsomwOptions(PlannerOptions):
    swarm: int = option(24, "particles in the swarm", min=2)
    iterations: int = option(40, "swarm iterations")
    seed: int = option(0, "random seed (the same seed gives the same plan)", min=0)
    patience: int | None = option(None, "stop the swarm after this many iterations without improvement (default: never)")
    polish: int = polish_option()
    slots: int = option(3, "most fused blocks one particle encodes")
    max_block: int = max_block_option()
    layouts: str = layouts_option()


@register("fl-psomw", "FL + PSOMW (Zhou et al. TPDS 2023): particle swarm over fused blocks and path offloading, "
                      "Minimizing-Waiting path order (--swarm --iterations --seed)", options=FLPsomwOptions)
def plan_fl_psomw(graph: LayerGraph, cluster, cost, opts: FLPsomwOptions):
    space = _space(graph, cluster, cost, opts.layouts, opts.max_block)
    return psomw_solve(space, swarm=opts.swarm, iterations=opts.iterations, seed=opts.seed, patience=opts.patience,
                       slots=opts.slots, polish=opts.polish).plan
