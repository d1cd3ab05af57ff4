"""``hvpm``: OfpCNN's hybrid horizontal + vertical partitioning (Yang et al., TPDS 2023); see :mod:`edgeslice.planners.hybrid`.

Note *hvpm*.  How the plan is made:

1. **The DP** (:class:`~edgeslice.planners.hybrid.space.HybridSpace`, note
   *hvpm-space*): a shortest path (:func:`~edgeslice.planners.hybrid.dp.layout_dp`)
   over states (unit boundary, layout of the tensor crossing it — whole on
   one device, or in speed-sized row strips or feature ranges over a device
   subset), jointly over the whole model.  Each step is one segment: vertical
   (a unit whole on one device), horizontal (up to ``max_block`` fused units in
   row strips over a subset, each part reading its rows and halos from
   whoever holds them) or, in the non-spatial tail, split by output features
   over a subset.  Who distributes a segment's input (the holder) and who
   gathers its output (the next vertical segment's device, or the sink) are
   part of the state, and need not compute in the segment.  Every device's
   ``memory_mb`` is respected: a choice that alone does not fit is left out;
   when the DP's plan still overflows a device (weights add up over
   segments), the weights on that device are priced and the DP rerun, up to
   :data:`MEMORY_ROUNDS` times — a heuristic (a Lagrangian price, not an
   exact knapsack); the seeds bring the exact memory-constrained whole-layer
   placements (``layerwise``, ``nfl``, ``dads``).
2. **Seeds** (``seeds=True``, default): the plans of the planners in
   :data:`SEEDS` with their default options — local, edge-only, Neurosurgeon's
   split, the layer-wise DP, DADS, NFL (layer-wise splits and whole-model
   offloading), FTP's grid tiles, AOFL's fused strips, MoDNN's per-layer
   strips, DeCNN's channel split, the FL planners' fused offloaded paths.  Each
   is a point of the hybrid space in its general form: a sequence of
   segments each vertical (one device) or horizontal (an exact tiling of its
   output — strips or a grid, any sizes, several tiles possibly on one device
   — or a split by output channels or input features), with every device's
   data coming from whoever holds it.  The DP enumerates only the
   speed-sized-strip part of that space; the seeds bring the rest.
3. **The choice**: the DP's plans and the seeds that fit every device's
   memory are each simulated (:func:`~edgeslice.planners._shared.common.evaluate`)
   and the fastest is returned, as an ``hvpm`` plan.  Ties keep the DP's plan.

Why the seeds: the DP scores a segment by its slowest part after the whole
previous layout is ready, an estimate of the simulator (which starts each
transfer as soon as its own producer is done, and on a shared medium orders
transfers as the Program lists them).  Its optimum is the best plan *by that
estimate*, not necessarily by the simulator.  With the other planners' plans
among the candidates and every candidate simulated, hvpm's predicted latency
is, by construction, at most that of each planner in :data:`SEEDS` that
returns a plan fitting the cluster (with its default options, on the same
cost model) — a guarantee against the simulator, not only against the DP's
estimate.  (Options given to those planners themselves, ``compare --max-block 4``
say, are not what the seeds use.)  The price is planning time: hvpm runs those planners too (the FL
searches dominate; on clusters of many devices they take long).
``seeds=False`` gives the DP alone.

Example::

    >>> from edgeslice.cluster.load import resolve_cluster
    >>> from edgeslice.cost import ClusterCost
    >>> from edgeslice.graph import trace
    >>> from edgeslice.planners import make_plan
    >>> from edgeslice.planners._shared.common import evaluate
    >>> g, _ = trace("alexnet", (3, 64, 64))
    >>> c = resolve_cluster("hetero3")
    >>> cost = ClusterCost(c)
    >>> t = evaluate(make_plan("hvpm", g, c, cost), g, c, cost)
    >>> all(t <= evaluate(make_plan(n, g, c, cost), g, c, cost) for n in ("aofl", "modnn", "layerwise"))
    True
    >>> c4 = resolve_cluster("testbed4")  # the DP alone: strips, vertical runs and the FC layers split by features
    >>> sorted({s.cut for s in make_plan("hvpm", g, c4, seeds=False).segments})
    ['channel', 'spatial', 'whole']
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from edgeslice.errors import EdgesliceError
from edgeslice.graph.layer import LayerGraph
from edgeslice.plan.plan import Plan
from edgeslice.planners import register
from edgeslice.planners._shared.common import evaluate, make
from edgeslice.planners.hybrid.space import HybridSpace
from edgeslice.planners.options import PlannerOptions, option, record
from edgeslice.program.lower import lower
from edgeslice.program.memory import misfits

# The planners whose plans are seeds (note *hvpm*): every planner `compare` runs by default but hvpm itself.
SEEDS = ("local", "edge", "neurosurgeon", "layerwise", "dads", "nfl", "ftp", "modnn", "aofl", "decnn", "fl-bf",
         "fl-dpls", "fl-psomw")
# DP reruns with weights priced on overflowing devices, at most.
MEMORY_ROUNDS = 12


@dataclass(frozen=True)
class HvpmOptions(PlannerOptions):
    max_block: int = option(8, "most units (runs of layers between cut points) fused into one horizontal segment")
    max_subset: int = option(5, "clusters of at most this many devices: strips over every subset; larger: over the k "
                                "fastest (and the source with the k-1 fastest others)", min=2, max=8)
    seeds: bool = option(True, "also simulate the other planners' plans (points of the hybrid space) and keep the "
                               "fastest, so hvpm is never slower than they are")


@dataclass
class HvpmResult:
    """What hvpm found: the plan, its predicted latency, where it came from, and every candidate's latency.

    ``candidates[origin]`` is the simulated latency (s) of the DP's plan (``"dp"``, ``"dp+memory1"``, ...)
    or of a seed planner's; a refusal or a plan that does not fit is its one-line reason instead.
    """

    plan: Plan
    latency_s: float
    origin: str
    candidates: dict = field(default_factory=dict)


def _dp_plans(graph: LayerGraph, cluster, cost, opts: HvpmOptions):
    """``(origin, plan)`` for the DP's plan and, where it overflows a device's memory, the DP's plans with the
    weights on the overflowing devices priced: the price grows fourfold until the plan fits, then is bisected
    (geometrically) towards the lowest price that still fits, :data:`MEMORY_ROUNDS` solves at most."""
    space = HybridSpace(graph, cluster, cost, max_block=opts.max_block, max_subset=opts.max_subset)
    path = space.solve()
    if not path.edges:
        return
    segs = space.segments(path)
    plan = make(graph, cluster, segs, "hvpm")
    yield "dp", plan
    bad = misfits(lower(plan, graph), graph, cluster)
    base = np.zeros(space.D)  # seconds per byte: filling a device costs about one plan's latency
    seen, lo, hi = [segs], 0.0, None
    for r in range(1, MEMORY_ROUNDS + 1):
        for name, _, _ in bad:
            d = space.names.index(name)
            base[d] = base[d] or path.value / max(space.cap[d], 1.0)
        if not bad and hi is None:
            return
        scale = (lo * 4 or 1.0) if hi is None else (np.sqrt(lo * hi) if lo else hi / 4)
        p = space.solve(scale * base)
        if not p.edges:
            return
        segs = space.segments(p)
        plan = make(graph, cluster, segs, "hvpm")
        if segs not in seen:
            seen.append(segs)
            yield f"dp+memory{r}", plan
        bad = misfits(lower(plan, graph), graph, cluster)
        if bad:
            lo = scale
        else:
            hi = scale


def _seed_plans(graph: LayerGraph, cluster, cost):
    from edgeslice.planners import planner_info

    for name in SEEDS:
        info = planner_info(name)
        try:
            yield name, info.fn(graph, cluster, cost, info.options())
        except EdgesliceError as exc:
            yield name, str(exc)


def hvpm_solve(graph: LayerGraph, cluster, cost, opts: HvpmOptions) -> HvpmResult:
    """Note *hvpm*: the DP's plans and (``opts.seeds``) the seeds, each simulated; the fastest that fits.

    When no candidate fits every device, the fastest is returned anyway and
    :func:`~edgeslice.planners.make_plan` refuses it in one line naming the device.
    """
    cands = list(_dp_plans(graph, cluster, cost, opts))
    if opts.seeds:
        cands += list(_seed_plans(graph, cluster, cost))
    results: dict = {}
    best = fallback = None
    for origin, plan in cands:
        if isinstance(plan, str):
            results[origin] = plan
            continue
        t = evaluate(plan, graph, cluster, cost)
        bad = misfits(lower(plan, graph), graph, cluster)
        results[origin] = t if not bad else f"does not fit device {bad[0][0]!r}"
        if fallback is None or t < fallback[0]:
            fallback = (t, origin, plan)
        if not bad and (best is None or t < best[0]):
            best = (t, origin, plan)
    pick = best or fallback
    if pick is None:  # nothing at all (no DP path, every seed refused): everything on the source, refused if too big
        from edgeslice.planners._shared.tables import _all_on

        plan = _all_on(graph, cluster, cluster.source, "hvpm")
        pick = (evaluate(plan, graph, cluster, cost), "local", plan)
    t, origin, plan = pick
    return HvpmResult(replace(plan, planner="hvpm", options=record(opts)), t, origin, results)


@register("hvpm", "OfpCNN's HVPM: DP over vertical (one device) and horizontal (speed-sized strips over a device "
                  "subset) segments, holders and gatherers; the other planners' plans as seeds, fastest simulated",
          options=HvpmOptions)
def plan_hvpm(graph: LayerGraph, cluster, cost, opts: HvpmOptions):
    return hvpm_solve(graph, cluster, cost, opts).plan
