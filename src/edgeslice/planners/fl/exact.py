"""``nfl`` and ``fl-bf``: the exact planners over the FL space, and the Plan builder every FL planner shares.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from edgeslice.errors import EdgesliceError
from edgeslice.graph.layer import LayerGraph
from edgeslice.plan.plan import Part, Plan, Segment
from edgeslice.planners import register
from edgeslice.planners._shared.chain import chain_latency_milp
from edgeslice.planners._shared.common import make
from edgeslice.planners.fl.assign import (
    all_assignments,
    class_assignments,
    symmetry_classes,
)
from edgeslice.planners.fl.flowshop import block_time, block_times_many
from edgeslice.planners.fl.space import LAYOUTS, FLSpace
from edgeslice.planners.options import NoOptions, PlannerOptions, option, parse_layouts
from edgeslice.program.lower import lower
from edgeslice.program.memory import fits, layer_activation_bytes

# The FL planners' shared options, declared once.
STANDARD_LAYOUTS = ",".join(f"{r}x{c}" for r, c in LAYOUTS)


def max_block_option():
    return option(12, "most units (runs of layers between cut points) fused into one block")


def layouts_option():
    return option(STANDARD_LAYOUTS, "the path layouts a block may take, rows x columns, comma-separated",
                  parse=parse_layouts)


@dataclass
class FLResult:
    """What an FL planner found: the plan, its fast-model time, and (PSO) the convergence curve."""

    plan: Plan
    fast_time_s: float
    curve: list[float] = field(default_factory=list)
    evaluations: int = 0
    planning_s: float = 0.0
    chose_nfl: bool = False


def _layouts(opt) -> tuple[tuple[int, int], ...]:
    if opt is None:
        return LAYOUTS
    if isinstance(opt, str):
        opt = opt.split(",")
    out = []
    for x in opt:
        if isinstance(x, str):
            r, _, c = x.partition("x")
            x = (int(r), int(c or 1))
        out.append((int(x[0]), int(x[1])))
    return tuple(out)


def _space(graph, cluster, cost, layouts=None, max_block: int = 12) -> FLSpace:
    if len(cluster.devices) < 1:
        raise EdgesliceError("FL planners need at least one device")
    return FLSpace(graph, cluster, cost, layouts=_layouts(layouts), max_block=max_block)


def build_plan(space: FLSpace, choices, blocks: dict, planner: str, **options) -> Plan:
    """A Plan from DP choices; ``blocks[(i, j, h_in, h_out)] = (layout, assignment)``.

    Whole units in a row on one device become one segment; a block becomes a
    spatial segment whose parts are listed in Minimizing-Waiting order (the
    Program order, hence the simulator's and the runtime's processing and
    upload order).
    """
    g = space.graph
    names = space.names
    segs: list[Segment] = []
    run = None  # (first unit, last unit, device)
    for ch in choices:
        if ch[0] == "whole":
            _, u, d = ch
            if run is not None and run[2] == d and run[1] == u - 1:
                run = (run[0], u, d)
                continue
            if run is not None:
                segs.append(_whole(space, run))
            run = (u, u, d)
            continue
        if run is not None:
            segs.append(_whole(space, run))
            run = None
        _, i, j, hin, hout = ch
        layout, assign = blocks[(i, j, hin, hout)]
        bp = space.paths(i, j, layout)
        _, order = block_time(bp, assign, hin, hout, shared=space.shared)
        parts = tuple(Part(names[assign[p]], rows=bp.tiles[p][0], cols=bp.tiles[p][1]) for p in order)
        segs.append(Segment(g.layers[space.pts[i]].name, g.layers[space.pts[j] - 1].name, "spatial", parts))
    if run is not None:
        segs.append(_whole(space, run))
    return make(g, space.cluster, segs, planner, **options)


def _whole(space: FLSpace, run) -> Segment:
    u0, u1, d = run
    g = space.graph
    return Segment(g.layers[space.pts[u0]].name, g.layers[space.pts[u1 + 1] - 1].name, "whole", (Part(space.names[d]),))


def nfl_solve(space: FLSpace) -> tuple[float, Plan]:
    t, choices = space.dp({})
    return t, build_plan(space, choices, {}, "nfl")


@register("nfl", "no-fused-layer partial offloading: whole layers on the device or an edge server, optimal by chain DP", exact=True)
def plan_nfl(graph: LayerGraph, cluster, cost, opts: NoOptions):
    space = _space(graph, cluster, cost)
    plan = nfl_solve(space)[1]
    if fits(lower(plan, graph), graph, cluster):
        return plan
    # the unconstrained optimum does not fit some device's memory_mb: the same chain over units under the
    # memory constraint, exactly (note *resident*: a whole unit costs its weights and a peak of its largest layer's)
    units = [range(space.pts[u], space.pts[u + 1]) for u in range(space.U)]
    w = [sum(graph.layers[i].param_bytes for i in r) for r in units]
    a = [max(layer_activation_bytes(graph, graph.layers[i].name) for i in r) for r in units]
    cap = [d.memory_mb * 1e6 for d in cluster.devices]
    res = chain_latency_milp(space.T, space.X, space.ov, space.src, space.sink, w, a, cap)
    if res is None:
        return plan  # make_plan refuses it, naming the device
    return build_plan(space, [("whole", u, int(d)) for u, d in enumerate(res[1])], {}, "nfl")


def exact_solve(space: FLSpace, *, exhaustive: bool, limit: float | None = None, planner: str = "fl-bf",
                **options) -> FLResult:
    """The optimum over the FL space: DP over blocks, each block's assignment by enumeration."""
    t0 = time.perf_counter()
    D, U = space.D, space.U
    cand = []
    work = 0
    for (i, j) in space.blocks():
        for lay in space.layouts:
            if not space.fits(j, lay):
                continue
            P = lay[0] * lay[1]
            nin = 1
            nout = D if j < U else 1
            cand.append((i, j, lay))
            work += (D ** P if exhaustive else 1) * nin * nout
    if limit is not None and work > limit:
        raise EdgesliceError(
            f"{planner}: {space.graph.spec} has {len(space.graph.layers)} layers in {U} units and {len(cand)} (block, layout) "
            f"candidates on {D} devices: {work:.3g} path assignments to try, over --limit {limit:.3g}; use fl-psomw or "
            f"fl-dpls (searches, not exhaustive), a larger --limit, a smaller input, fewer devices, or --max-block")
    tables: dict = {}
    payload: dict = {}
    evals = 0
    src = space.src  # note fl-space: a block is the IoT device offloading, its input is on the device
    by_lay: dict = {}
    for (i, j, lay) in cand:
        bp = space.paths(i, j, lay)
        if bp.valid:
            by_lay.setdefault(lay, []).append(bp)
    for lay, bps in by_lay.items():
        P = lay[0] * lay[1]
        if exhaustive:
            A = all_assignments(P, D)
            chunk = max(1, 400_000 // (len(A) * P))  # blocks per numpy pass, bounding its arrays
        else:
            chunk = 1  # each block has its own symmetry classes
        for c0 in range(0, len(bps), chunk):
            grp = bps[c0:c0 + chunk]
            AA = np.broadcast_to(A, (len(grp),) + A.shape) if exhaustive else \
                class_assignments(symmetry_classes(grp[0]), P, D)[None]
            comp = np.stack([bp.comp for bp in grp])
            up = np.stack([bp.up[:, src, :] for bp in grp])
            for hout in (range(D) if any(bp.j < U for bp in grp) else (space.sink,)):
                times = block_times_many(comp, up, np.stack([bp.down[:, :, hout] for bp in grp]), space.lat, AA, src, hout)
                evals += times.shape[1] * sum(bp.j < U or hout == space.sink for bp in grp)
                best = np.argmin(times, axis=1)
                for k, bp in enumerate(grp):
                    if bp.j < U or hout == space.sink:
                        _keep_best(tables, payload, (bp.i, bp.j), src, hout, D, times[k, best[k]], (lay, AA[k, best[k]]))
    val, choices = space.dp(tables)
    payload = {(i, j, src, hout): (lay, tuple(int(x) for x in row)) for (i, j, hout), (lay, row) in payload.items()}
    plan = build_plan(space, choices, payload, planner, **options)
    return FLResult(plan, val, [], evals, time.perf_counter() - t0)


@dataclass(frozen=True)
class FLBfOptions(PlannerOptions):
    limit: float = option(2e6, "most path assignments to evaluate before refusing")
    max_block: int = max_block_option()
    layouts: str = layouts_option()


@register("fl-bf", "FL brute force: every fused-block choice, layout and path assignment (exact; small cases, --limit)", exact=True,
          options=FLBfOptions)
def plan_fl_bf(graph: LayerGraph, cluster, cost, opts: FLBfOptions):
    space = _space(graph, cluster, cost, opts.layouts, opts.max_block)
    return exact_solve(space, exhaustive=True, limit=opts.limit, planner="fl-bf", max_block=opts.max_block).plan


def plan_fl_dp(graph: LayerGraph, cluster, cost, *, max_block: int = 12, layouts=None):
    space = _space(graph, cluster, cost, layouts, max_block)
    return exact_solve(space, exhaustive=False, planner="fl-dp", max_block=max_block).plan


def _keep_best(tables: dict, payload: dict, ij: tuple, src: int, hout: int, D: int, value: float, choice) -> None:
    """Record ``value`` as block ``ij``'s time for ``(src, hout)`` (and ``choice`` as how) when it beats the one kept."""
    t = tables.get(ij)
    if t is None:
        t = tables[ij] = np.full((D, D), np.inf)
    if value < t[src, hout]:
        t[src, hout] = value
        payload[ij + (hout,)] = choice
