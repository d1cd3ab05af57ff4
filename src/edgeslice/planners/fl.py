"""FL + PSOMW (Zhou et al., TPDS 2023) and its baselines: ``nfl``, ``fl-psomw``, ``fl-dpls``, ``fl-bf``, ``fl-dp``.

An IoT device (the cluster's source) runs a CNN with help from edge servers
(every other device).  Fused-layer (FL) conversion turns a run of layers into
parallel *paths* — spatial tiles traced back through the run, paying halo
recomputation — each kept on the device or offloaded, so local compute,
upload and edge compute overlap.  The space, the time model and Minimizing
Waiting are described in :mod:`edgeslice.planners.fl_model` (notes
*fl-space*, *fl-time*, *mw*) and ``docs/fl-psomw.md``.

``nfl``
    the same partial offloading without FL conversion: whole units (layers
    between cut points) on the device or any edge server, optimal over that
    space by a chain DP (:meth:`FLSpace.dp` without blocks).
``fl-psomw``
    particle swarm optimisation over the FL strategy (which units are fused,
    each block's layout) and the path offloading decisions; every particle is
    repaired to a valid solution and completed by Minimizing Waiting (path
    order) and by the optimal placement of the whole units around its blocks
    (a chain DP).  The best particles, the NFL solution and the solution of a
    chain DP over every block with *count-family* offloading
    (:func:`count_seed`) are then improved by a local search; the final
    answer is the better (simulated) of that and NFL's, so it is never worse
    than ``nfl``.  Options: ``swarm``, ``iterations``, ``seed``,
    ``max_block``, ``patience``, ``polish``.
``fl-dpls``
    the same without the swarm: :func:`count_seed`'s solution and NFL's,
    improved by the same local search.  Deterministic; on the benchmark sweep
    within 0.01% of brute force on average (2 of 140 instances missed by
    0.3% and 1.2%; ``fl-psomw`` misses none) in about 73% of its time.
``fl-bf``
    exact over the same space: a DP over fused-block boundaries whose block
    costs come from trying *every* assignment of paths to devices (``D ** P``
    per block, layout and ``(h_in, h_out)``; blocks of one layout are
    evaluated together, :func:`~edgeslice.planners.fl_model.block_times_many`),
    refusing above ``limit`` assignment evaluations.
:func:`plan_fl_dp` (not registered)
    the same optimum with paths of identical costs treated as interchangeable
    (:func:`~edgeslice.planners.fl_model.symmetry_classes`), enumerating only
    how many of each class go to each device.  Measured, it is *not* faster
    than ``fl-bf``: halos, borders and uneven strip heights leave almost every
    path with its own costs, so the classes are nearly all singletons; the
    local search of ``fl-psomw`` uses it to re-decide one block's offloading.

Example::

    >>> from edgeslice.cluster.load import resolve_cluster
    >>> from edgeslice.graph import trace
    >>> from edgeslice.planners import make_plan
    >>> from edgeslice.planners.common import evaluate
    >>> from edgeslice.cost import ClusterCost
    >>> g, _ = trace("alexnet", (3, 64, 64))
    >>> c = resolve_cluster("iot-edge")
    >>> k = ClusterCost(c)
    >>> fl = evaluate(make_plan("fl-psomw", g, c, k, iterations=10), g, c, k)
    >>> fl <= evaluate(make_plan("nfl", g, c, k), g, c, k) + 1e-12
    True
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from edgeslice.errors import EdgesliceError
from edgeslice.graph.layer import LayerGraph
from edgeslice.plan.plan import Part, Plan, Segment
from edgeslice.planners import register
from edgeslice.planners.common import evaluate, make
from edgeslice.planners.fl_model import (LAYOUTS, FLSpace, _compositions, all_assignments, best_assignment, block_time,
                                         block_times_many, class_assignments, symmetry_classes)


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


# ---------------------------------------------------------------------------
# NFL
# ---------------------------------------------------------------------------


def nfl_solve(space: FLSpace) -> tuple[float, Plan]:
    t, choices = space.dp({})
    return t, build_plan(space, choices, {}, "nfl")


@register("nfl", "no-fused-layer partial offloading: whole layers on the device or an edge server, optimal by chain DP", exact=True)
def plan_nfl(graph: LayerGraph, cluster, cost, **_):
    return nfl_solve(_space(graph, cluster, cost))[1]


# ---------------------------------------------------------------------------
# exact: fl-bf (every assignment) and fl-dp (symmetry classes)
# ---------------------------------------------------------------------------


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


@register("fl-bf", "FL brute force: every fused-block choice, layout and path assignment (exact; small cases, --limit)", exact=True)
def plan_fl_bf(graph: LayerGraph, cluster, cost, *, limit: float = 2e6, max_block: int = 12, layouts=None, **_):
    space = _space(graph, cluster, cost, layouts, max_block)
    return exact_solve(space, exhaustive=True, limit=limit, planner="fl-bf", max_block=max_block).plan


def plan_fl_dp(graph: LayerGraph, cluster, cost, *, max_block: int = 12, layouts=None, **_):
    space = _space(graph, cluster, cost, layouts, max_block)
    return exact_solve(space, exhaustive=False, planner="fl-dp", max_block=max_block).plan


# ---------------------------------------------------------------------------
# PSOMW
# ---------------------------------------------------------------------------


def by_rank(counts, src: int) -> list[int]:
    """The device of each path by rank (rank 0: the smallest input region): ``counts[d]`` paths on each edge
    server ``d``, servers in device order, the rest on ``src`` — the rule that turns path counts into an
    assignment (the PSO's share genes, :func:`count_seed`'s family)."""
    row = []
    for d, c in enumerate(counts):
        if d != src:
            row += [d] * int(c)
    return row + [src] * (sum(int(c) for c in counts) - len(row))


def _keep_best(tables: dict, payload: dict, ij: tuple, src: int, hout: int, D: int, value: float, choice) -> None:
    """Record ``value`` as block ``ij``'s time for ``(src, hout)`` (and ``choice`` as how) when it beats the one kept."""
    t = tables.get(ij)
    if t is None:
        t = tables[ij] = np.full((D, D), np.inf)
    if value < t[src, hout]:
        t[src, hout] = value
        payload[ij + (hout,)] = choice


class _Decoder:
    """Particle position (in [0, 1]^n) → a valid FL solution, repaired; fitness by the fast model + chain DP.

    A particle has ``slots`` block slots, each ``4 + D`` genes: *active*
    (> 0.5), *start* (which spatial unit the block starts at), *length* (1 to
    ``max_block`` units), *layout* (index into the layout menu), then one
    *share* gene per device: the block's ``P`` paths are split over the devices
    in proportion to ``max(0, share - 0.25)²`` (largest remainder; all zero:
    all local — so each device is left out with probability 1/4), the paths with the smallest input regions going to the edge
    servers first, in device order, the rest staying on the source.  Repair, so every
    particle decodes to a valid solution: a block is cut at the end of its
    spatial run; active blocks are sorted by start and a block overlapping or
    touching the previous one starts one unit after it (two blocks need a whole
    unit between them), or is dropped when nothing is left; a layout that does
    not fit the block's output map becomes the largest one that fits with no
    more paths (else the fewest-path one that fits, else the block is
    dropped).  The repaired genes are written back into the particle.  The
    whole units around the blocks are placed optimally by the chain DP and
    each block's paths are ordered by Minimizing Waiting.  Which individual
    path goes where beyond this rule is left to the local search
    (:meth:`polish`).
    """

    def __init__(self, space: FLSpace, slots: int = 3):
        self.s = space
        self.nl = len(space.layouts)
        self.pmax = max(r * c for r, c in space.layouts)
        self.slots = max(1, int(slots))
        self.width = 4 + space.D
        self.dim = self.slots * self.width
        self.starts = [u for u in range(space.U) if space.spatial[u]]
        self.cache: dict = {}
        self.block_cache: dict = {}
        self.reopt: dict = {}
        self.evaluations = 0

    def _fit_layout(self, i: int, j: int, li: int) -> int | None:
        s = self.s
        if s.usable(i, j, s.layouts[li]):
            return li
        want = s.layouts[li][0] * s.layouts[li][1]
        ok = [k for k in range(self.nl) if s.usable(i, j, s.layouts[k])]
        if not ok:
            return None
        size = lambda k: s.layouts[k][0] * s.layouts[k][1]  # noqa: E731
        fewer = [k for k in ok if size(k) <= want]
        return max(fewer, key=lambda k: (size(k), -k)) if fewer else min(ok, key=lambda k: (size(k), k))

    def decode(self, x: np.ndarray) -> tuple:
        s = self.s
        if not self.starts:
            return ()
        slots = []
        for q in range(self.slots):
            o = q * self.width
            if x[o] <= 0.5:
                continue
            i = self.starts[min(len(self.starts) - 1, int(x[o + 1] * len(self.starts)))]
            n = 1 + min(s.max_block - 1, int(x[o + 2] * s.max_block))
            j = i
            while j < s.U and j - i < n and s.spatial[j] and s.run_start[j] == s.run_start[i]:
                j += 1
            slots.append((i, j, q))
        slots.sort()
        blocks = []
        last_end = -1
        for i, j, q in slots:
            o = q * self.width
            if i <= last_end:  # overlaps or touches the previous block
                i = last_end + 1
                if i >= j:
                    x[o] = 0.45
                    continue
                x[o + 1] = (self.starts.index(i) + 0.5) / len(self.starts)
            li = min(self.nl - 1, int(x[o + 3] * self.nl))
            fl = self._fit_layout(i, j, li)
            if fl is None:
                x[o] = 0.45
                continue
            if fl != li:
                x[o + 3] = (fl + 0.5) / self.nl
            x[o + 2] = (j - i - 0.5) / s.max_block
            lay = s.layouts[fl]
            blocks.append((i, j, lay, self.assignment(i, j, lay, x[o + 4: o + 4 + s.D])))
            last_end = j
        return tuple(blocks)

    def assignment(self, i, j, lay, shares) -> tuple[int, ...]:
        """Paths of block (i, j) in ``lay`` over devices by ``shares`` (see the class docstring)."""
        s = self.s
        P = lay[0] * lay[1]
        w = np.maximum(0.0, np.asarray(shares, dtype=float) - 0.25) ** 2  # below 0.25: no path on that device
        if w.sum() <= 0:
            return (s.src,) * P
        raw = P * w / w.sum()
        cnt = np.floor(raw).astype(np.int64)
        for d in sorted(range(s.D), key=lambda d: (-(raw[d] - cnt[d]), d))[: P - int(cnt.sum())]:
            cnt[d] += 1
        bp = s.paths(i, j, lay)
        order = sorted(range(P), key=lambda p: (bp.in_bytes[p], p))
        assign = [s.src] * P
        for p, d in zip(order, by_rank(cnt, s.src)):
            assign[p] = d
        return tuple(assign)

    def best_counts(self, i, j, lay, hin, hout) -> tuple[int, ...]:
        """The block's best assignment for ``(h_in, h_out)``, one candidate per symmetry-class count (memoised)."""
        key = (i, j, lay, hin, hout)
        a = self.reopt.get(key)
        if a is None:
            a = self.reopt[key] = best_assignment(self.s.paths(i, j, lay), hin, hout, exhaustive=False)[1]
        return a

    def table(self, i, j, lay, assign) -> np.ndarray:
        key = (i, j, lay, assign)
        t = self.block_cache.get(key)
        if t is None:
            s = self.s
            bp = s.paths(i, j, lay)
            t = np.full((s.D, s.D), np.inf)
            for hin in (s.src,):  # note fl-space: a block's input is on the IoT device
                for hout in (range(s.D) if j < s.U else (s.sink,)):
                    t[hin, hout] = block_time(bp, assign, hin, hout, shared=s.shared)[0]
            self.block_cache[key] = t
        return t

    def fitness(self, key: tuple) -> tuple[float, list]:
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        self.evaluations += 1
        s = self.s
        forced = np.zeros(s.U, dtype=bool)
        tables = {}
        for i, j, lay, assign in key:
            forced[i:j] = True
            tables[(i, j)] = self.table(i, j, lay, assign)
        hit = self.cache[key] = s.dp(tables, forced)
        return hit

    def neighbours(self, key: tuple):
        """Solutions one move away: one path to another device, two paths swapped, another layout, a block edge
        moved (tiles keeping their devices, or re-split by the shares), a block removed or added."""
        s = self.s
        ends = {(ch[1], ch[2]): (ch[3], ch[4]) for ch in self.fitness(key)[1] if ch[0] == "block"}
        for b, (i, j, lay, assign) in enumerate(key):
            rest = key[:b] + key[b + 1:]
            hin, hout = ends[(i, j)]
            shares = 0.25 + 0.75 * np.sqrt(np.bincount(np.asarray(assign), minlength=s.D) / len(assign))
            for lay2 in s.layouts:  # the block's offloading re-decided for its current h_in, h_out, in each layout
                if s.usable(i, j, lay2):
                    yield rest[:b] + ((i, j, lay2, self.best_counts(i, j, lay2, hin, hout)),) + rest[b:]
            for p in range(len(assign)):
                for d in range(s.D):
                    if d != assign[p]:
                        yield rest[:b] + ((i, j, lay, assign[:p] + (d,) + assign[p + 1:]),) + rest[b:]
                for q in range(p + 1, len(assign)):
                    if assign[q] != assign[p]:
                        a2 = list(assign)
                        a2[p], a2[q] = a2[q], a2[p]
                        yield rest[:b] + ((i, j, lay, tuple(a2)),) + rest[b:]
            for lay2 in s.layouts:
                if lay2 != lay and s.usable(i, j, lay2):
                    yield rest[:b] + ((i, j, lay2, self.assignment(i, j, lay2, shares)),) + rest[b:]
            lo = key[b - 1][1] + 1 if b else 0
            hi = key[b + 1][0] - 1 if b + 1 < len(key) else s.U
            # move either edge of the block anywhere it may go (nearest first), in every layout, keeping the shares:
            # the output map changes size at pooling layers, so a new edge usually wants another layout
            moves = sorted([(i2, j) for i2 in range(lo, j) if i2 != i] + [(i, j2) for j2 in range(i + 1, hi + 1) if j2 != j],
                           key=lambda m: (abs(m[0] - i) + abs(m[1] - j), m))
            for i2, j2 in moves:
                if (i2, j2) in s.block_set:
                    for lay2 in sorted(s.layouts, key=lambda l: (l != lay, l)):
                        if s.usable(i2, j2, lay2):
                            if lay2 == lay:  # the same layout: each tile keeps its device (the tiles correspond)
                                yield rest[:b] + ((i2, j2, lay, assign),) + rest[b:]
                            yield rest[:b] + ((i2, j2, lay2, self.assignment(i2, j2, lay2, shares)),) + rest[b:]
            yield rest
        # add a block in a gap: every candidate block there, fewest paths, its offloading decided for the
        # devices the current solution runs the units before and after it on
        dev_of = {}
        for ch in self.fitness(key)[1]:
            if ch[0] == "whole":
                dev_of[ch[1]] = ch[2]
        taken = np.zeros(s.U + 1, dtype=bool)
        for i, j, _, _ in key:
            taken[max(0, i - 1):j + 1] = True
        for i, j in s.blocks():
            if taken[i:j].any():
                continue
            lay = next((l for l in s.layouts if s.usable(i, j, l)), None)
            if lay is None:
                continue
            hin = s.src  # note fl-space: a block's input is on the IoT device
            hout = dev_of.get(j, s.sink) if j < s.U else s.sink
            yield tuple(sorted(key + ((i, j, lay, self.best_counts(i, j, lay, hin, hout)),)))

    def polish(self, key: tuple, budget: int) -> tuple:
        """First-improvement local search from ``key`` (at most ``budget`` new evaluations)."""
        best = self.fitness(key)[0]
        start = self.evaluations
        improved = True
        while improved and self.evaluations - start < budget:
            improved = False
            for nb in self.neighbours(key):
                f = self.fitness(nb)[0]
                if f < best - 1e-15:
                    key, best, improved = nb, f, True
                    break
                if self.evaluations - start >= budget:
                    break
        return key


def count_seed(space: FLSpace) -> tuple[float, tuple]:
    """``(time, solution key)``: a whole FL solution from a chain DP over *every* block, each block restricted to its count family.

    The *count family* of a (block, layout) gives each edge server some
    number of paths — the smallest input regions first, servers in device
    order, the rest local (the rule the PSO's share genes decode by) — one
    assignment per way of writing ``P`` as ``D`` counts, ``P + 1`` with one
    server.  Every usable (block, layout) is scored on its whole family at
    once (:func:`~edgeslice.planners.fl_model.block_times_many`, one numpy
    pass per layout and ``h_out``); the chain DP (:meth:`FLSpace.dp`) then
    picks the block structure and the placement of the whole units around
    it.  So the time is the optimum over every solution whose blocks take
    count-family assignments (tested against enumeration), and the key (as
    :class:`_Decoder` uses them) achieves it.  PSOMW starts a local search
    from it: it finds block structures the swarm's random starts miss (two
    fused blocks, a block deep in the model), and the local search then moves
    single paths off the family.
    """
    D, src = space.D, space.src
    ends: dict[int, list[int]] = {}
    for (i, j) in space.blocks():
        ends.setdefault(j, []).append(i)
    tables: dict = {}
    payload: dict = {}
    for lay in space.layouts:
        P = lay[0] * lay[1]
        cands, comp, inb, outb = [], [], [], []
        for j, starts in ends.items():
            if space.fits(j, lay):
                c, ib, ob, ok = space.block_arrays(j, lay, starts)
                cands += [(i, j) for i, good in zip(starts, ok) if good]
                comp.append(c[ok])
                inb.append(ib[ok])
                outb.append(np.broadcast_to(ob, ib[ok].shape))
        if not cands:
            continue
        comp, inb, outb = np.concatenate(comp), np.concatenate(inb), np.concatenate(outb)
        # the family by rank, then per block by its paths' ranks (stable: ties in path order, as _Decoder.assignment)
        ranked = np.array([by_rank(cnt, src) for cnt in _compositions(P, D)], dtype=np.int64)
        rank = np.argsort(inb, axis=1, kind="stable")
        A = np.empty((len(cands), len(ranked), P), dtype=np.int64)
        np.put_along_axis(A, np.broadcast_to(rank[:, None, :], A.shape), np.broadcast_to(ranked, A.shape), axis=2)
        up = inb[:, :, None] * space.ser1[src][None, None, :]
        for hout in range(D):  # (a block ending the model with h_out not the sink: the DP never reads it)
            T = block_times_many(comp, up, outb[:, :, None] * space.ser1[:, hout][None, None, :], space.lat, A, src, hout)
            best = np.argmin(T, axis=1)
            for k in range(len(cands)):
                _keep_best(tables, payload, cands[k], src, hout, D, T[k, best[k]], (lay, A[k, best[k]]))
    val, choices = space.dp(tables)
    out = []
    for ch in choices:
        if ch[0] == "block":
            lay, row = payload[(ch[1], ch[2], ch[4])]
            out.append((ch[1], ch[2], lay, tuple(int(x) for x in row)))
    return val, tuple(out)


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


@register("fl-dpls", "FL without a swarm: chain DP over every fused block with count-family offloading, then "
                     "PSOMW's local search (--polish); deterministic")
def plan_fl_dpls(graph: LayerGraph, cluster, cost, *, max_block: int = 12, layouts=None, polish: int = 1200, **_):
    return dpls_solve(_space(graph, cluster, cost, layouts, max_block), polish=polish).plan


@register("fl-psomw", "FL + PSOMW (Zhou et al. TPDS 2023): particle swarm over fused blocks and path offloading, "
                      "Minimizing-Waiting path order (--swarm --iterations --seed)")
def plan_fl_psomw(graph: LayerGraph, cluster, cost, *, swarm: int = 24, iterations: int = 40, seed: int = 0,
                  patience: int | None = None, max_block: int = 12, layouts=None, slots: int = 3, polish: int = 1200, **_):
    space = _space(graph, cluster, cost, layouts, max_block)
    return psomw_solve(space, swarm=swarm, iterations=iterations, seed=seed, patience=patience, slots=slots,
                       polish=polish).plan
