"""The FL (fused-layer) partial-offloading space and its fast time model (Zhou et al., TPDS 2023).

This module is the numeric core behind the ``nfl``, ``fl-psomw`` and ``fl-bf``
planners (:mod:`edgeslice.planners.fl`); see ``docs/fl-psomw.md``.

**The space** (note *fl-space*).  The model is cut at its *cut points*
(boundaries where exactly one tensor crosses, :func:`~edgeslice.planners._shared.common.cut_points`)
into *units*.  A solution is a sequence of

- *whole* runs of units, each on one device (the IoT source or an edge
  server): layer-wise partial offloading, as in NFL;
- *fused blocks*: a run of at most ``max_block`` spatially cuttable units
  turned into ``P`` parallel *paths* — equal row strips or an equal grid
  from a small menu of layouts (:data:`LAYOUTS`) over the block's output map —
  each path placed on a device and the paths processed in an order.

Two blocks are always separated by at least one whole unit (adjacent runs
would be one block), so a block reads its input from one device (``h_in``: the
previous whole segment's, or the source for the model input) and delivers its
output to one device (``h_out``: the next whole segment's, or the sink).  A
block is the IoT device's partial offloading, so its input is on the device
(``h_in`` = source, enforced by the planners; :meth:`FLSpace.dp` itself
accepts any ``h_in``): spreading a block over several servers after the data
has left the device would be model parallelism among servers, another method.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgeslice.graph.layer import LayerGraph
from edgeslice.plan.validate import spatial_ok
from edgeslice.planners._shared.chain import UnitChain
from edgeslice.planners._shared.common import crossing_bytes, cut_points
from edgeslice.program import regions as R
from edgeslice.program.lower import segment_envelope

# Equal strips (rows, 1) and grids (rows, cols): the path layouts a block may take.
LAYOUTS: tuple[tuple[int, int], ...] = ((2, 1), (3, 1), (4, 1), (5, 1), (6, 1), (7, 1), (8, 1), (2, 2), (2, 3), (3, 3))


@dataclass
class BlockPaths:
    """Per-path costs of one fused block in one layout (arrays over paths ``p`` and devices ``a, b``).

    ``comp[p, d]``: task time of path ``p`` on device ``d`` (overhead included);
    ``up[p, a, b]`` / ``down[p, a, b]``: serialisation time of its input /
    output region from ``a`` to ``b`` (0 when ``a == b``); ``lat[a, b]``: link
    latency.  ``tiles`` are the output ``(rows, cols)`` of each path.
    """

    i: int
    j: int
    layout: tuple[int, int]
    tiles: tuple[tuple[tuple[int, int], tuple[int, int]], ...]
    comp: np.ndarray
    up: np.ndarray
    down: np.ndarray
    lat: np.ndarray
    in_bytes: np.ndarray
    out_bytes: np.ndarray
    valid: bool = True

    @property
    def n(self) -> int:
        return len(self.tiles)


class FLSpace:
    """The FL space of one (graph, cluster, cost): units, whole-unit costs, and block paths on demand.

    Built once per planning call; block paths are computed lazily per
    ``(end unit, layout)`` with one backward region sweep (see
    :meth:`_sweep`) and memoised on the graph (geometry) and on this object
    (costs).
    """

    def __init__(self, graph: LayerGraph, cluster, cost, *, layouts=LAYOUTS, max_block: int = 12):
        self.graph, self.cluster, self.cost = graph, cluster, cost
        self.layouts = tuple(tuple(x) for x in layouts)
        self.max_block = int(max_block)
        self.devs = cluster.devices
        self.names = cluster.names
        self.D = len(self.devs)
        self.src = self.names.index(cluster.source)
        self.sink = self.names.index(cluster.sink)
        self.shared = cluster.medium == "shared"
        L = len(graph.layers)
        self.pts = [0] + cut_points(graph) + [L]
        self.U = len(self.pts) - 1
        self.unit_of_layer = np.zeros(L, dtype=np.int64)
        for u in range(self.U):
            self.unit_of_layer[self.pts[u]:self.pts[u + 1]] = u
        self.ov = np.array([cost.task_time(graph, _NoSteps, d) for d in self.devs])
        lt = np.array([[cost.layer_time(l, 1.0, d, graph.batch) for d in self.devs] for l in graph.layers])
        self.T = np.array([lt[self.pts[u]:self.pts[u + 1]].sum(axis=0) for u in range(self.U)])
        self.B = crossing_bytes(graph)[self.pts].astype(float)
        self.ser1 = np.zeros((self.D, self.D))  # seconds per byte
        self.lat = np.zeros((self.D, self.D))
        for a in range(self.D):
            for b in range(self.D):
                if a != b:
                    s, l = cost.transfer(1 << 20, self.names[a], self.names[b], 0.0)
                    self.ser1[a, b], self.lat[a, b] = s / (1 << 20), l
        # X[k, a, b]: seconds to move the tensor at boundary k from a to b (simulator's numbers)
        self.X = np.zeros((self.U + 1, self.D, self.D))
        for k in range(self.U + 1):
            for a in range(self.D):
                for b in range(self.D):
                    if a != b:
                        s, l = cost.transfer(int(self.B[k]), self.names[a], self.names[b], 0.0)
                        self.X[k, a, b] = s + l
        self.spatial = np.zeros(self.U, dtype=bool)
        for u in range(self.U):
            a, e = self.pts[u], self.pts[u + 1] - 1
            self.spatial[u] = len(graph.layers[e].out_shape) == 3 and spatial_ok(graph, a, e)[0]
        self.run_start = np.zeros(self.U, dtype=np.int64)
        for u in range(self.U):
            self.run_start[u] = self.run_start[u - 1] if u and self.spatial[u - 1] and self.spatial[u] else u
        self._paths: dict = {}
        self._sweeps: dict = {}
        self._aff: dict = {}
        self._chain = None
        self._blocks = None
        self.blocks()

    # ---- candidate blocks ---------------------------------------------------------------
    def fits(self, j: int, layout: tuple[int, int]) -> bool:
        """Whether ``layout`` tiles the output map of unit ``j - 1`` (every tile at least one element)."""
        _, h, w = self.graph.layers[self.pts[j] - 1].out_shape
        return layout[0] <= h and layout[1] <= w

    def blocks(self) -> list[tuple[int, int]]:
        """Every candidate block ``(i, j)``: units ``i..j-1``, spatial, at most ``max_block`` units, some layout fits.

        Whether a layout is *usable* there (:meth:`usable`) is checked when it is used.
        """
        if self._blocks is None:
            out = []
            for j in range(1, self.U + 1):
                if self.spatial[j - 1] and any(self.fits(j, lay) for lay in self.layouts):
                    out += [(i, j) for i in range(self.first_start(j), j)]
            self._blocks = out
            self.block_set = frozenset(out)
        return self._blocks

    # ---- block paths ---------------------------------------------------------------------
    def first_start(self, j: int) -> int:
        """The first unit a block ending at unit ``j`` may start at."""
        return max(int(self.run_start[j - 1]), j - self.max_block)

    def tiles(self, j: int, layout: tuple[int, int]):
        _, h, w = self.graph.layers[self.pts[j] - 1].out_shape
        n, m = layout
        rb = [h * r // n for r in range(n + 1)]
        cb = [w * c // m for c in range(m + 1)]
        return tuple(((rb[r], rb[r + 1]), (cb[c], cb[c + 1])) for r in range(n) for c in range(m))

    def _sweep(self, j: int):
        """Backward region sweep of every tile of every fitting layout from unit ``j - 1`` to the start of its spatial run.

        Mirrors :func:`edgeslice.program.lower.analyse_part` layer by layer
        (with :func:`~edgeslice.program.regions.backward_boxes`, all tiles in
        one numpy pass), so that for *every* block start ``i`` in the run the
        computed regions of layers ``pts[i]..`` and the input region at
        boundary ``pts[i]`` are exactly what lowering the block
        ``[pts[i], pts[j])`` gives (tested).  The sweep starts no further back
        than the longest block ending at ``j`` (``max_block`` units).  Returns,
        per layout: (region fraction per path and layer ``pts[i0]..pts[j]-1``,
        input volume per path and boundary — 0 outside the run, output volume
        per path, the block starts where two paths read the same input region).
        """
        g = self.graph
        i0 = self.first_start(j)
        a = self.pts[i0]
        e = self.pts[j] - 1
        lays = tuple(lay for lay in self.layouts if self.fits(j, lay))
        key = ("fl-sweep", a, e, lays)
        hit = g.memo.get(key)
        if hit is not None:
            return hit
        env = segment_envelope(g, a, e)
        layers = g.layers[a:e + 1]
        inside = {l.name for l in layers}
        last = g.layers[e]
        tiles = [t for lay in lays for t in self.tiles(j, lay)]
        box = np.array([[r0, r1, c0, c1] for (r0, r1), (c0, c1) in tiles], dtype=np.int64)
        req = {last.name: box}
        frac = np.zeros((len(tiles), e - a + 1))
        pre: dict[str, np.ndarray] = {}
        external: dict[str, np.ndarray] = {}
        for x in range(e - a, -1, -1):
            l = layers[x]
            r = req.get(l.name)
            if r is None:
                continue
            pre[l.name] = r
            if l.name in env:  # lower._extend: reaching the envelope's edge means reaching the map's border
                (_, (h0, h1), (w0, w1)) = env[l.name]
                _, H, W = l.out_shape
                r = np.stack([np.where(r[:, 0] <= h0, 0, r[:, 0]), np.where(r[:, 1] >= h1, H, r[:, 1]),
                              np.where(r[:, 2] <= w0, 0, r[:, 2]), np.where(r[:, 3] >= w1, W, r[:, 3])], axis=1)
            for src, ir in zip(l.inputs, R.backward_boxes(l, r)):  # regions.route, on boxes
                dest = req if src in inside else external
                old = dest.get(src)
                dest[src] = ir if old is None else np.stack(
                    [np.minimum(old[:, 0], ir[:, 0]), np.maximum(old[:, 1], ir[:, 1]),
                     np.minimum(old[:, 2], ir[:, 2]), np.maximum(old[:, 3], ir[:, 3])], axis=1)
            _, H, W = l.out_shape
            frac[:, x] = ((r[:, 1] - r[:, 0]) * (r[:, 3] - r[:, 2])) / (H * W)

        def vol(name, b):
            return g.shape(name)[0] * (b[:, 1] - b[:, 0]) * (b[:, 3] - b[:, 2])

        invol = np.zeros((len(tiles), self.U + 1))
        inkey: dict[int, np.ndarray] = {}
        names = sorted(external)
        invol[:, i0] = sum(vol(n, external[n]) for n in names)
        inkey[i0] = np.concatenate([external[n] for n in names], axis=1)
        for i in range(i0 + 1, j):
            n = g.layers[self.pts[i] - 1].name
            invol[:, i] = vol(n, pre[n])
            inkey[i] = pre[n]
        outvol = last.out_shape[0] * (box[:, 1] - box[:, 0]) * (box[:, 3] - box[:, 2])
        rows = {i: [tuple(r) for r in v.tolist()] for i, v in inkey.items()}
        out = {}
        k = 0
        for lay in lays:
            P = lay[0] * lay[1]
            sl = slice(k, k + P)
            # a block start where two paths read the very same input region is left out: lowering sends such a
            # region once per device, not once per path (an upsampling layer, or tiles whose receptive fields
            # cover the whole map), which the per-path time model would overcharge
            dup = frozenset(i for i in range(i0, j) if len(set(rows[i][sl])) < P)
            out[lay] = (frac[sl], invol[sl], outvol[sl].astype(float), dup)
            k += P
        g.memo[key] = out
        return out

    def _layer_costs(self, j: int, layout):
        """Per-path arrays for every block ending at unit ``j``: prefix sums of layer times per device, input volumes."""
        key = (j, layout)
        hit = self._sweeps.get(key)
        if hit is not None:
            return hit
        g, cost = self.graph, self.cost
        tiles = self.tiles(j, layout)
        P = len(tiles)
        a = self.pts[self.first_start(j)]
        e = self.pts[j] - 1
        fr, invol, outvol, dup = self._sweep(j)[layout]
        aff = self._affine_run(a, e)
        if aff is not None:  # every layer affine in the fraction (the analytic model): one broadcast
            times = aff[0][None, :, :] + fr[:, :, None] * aff[1][None, :, :]
        else:
            times = np.zeros((P, e - a + 1, self.D))
            for x, li in enumerate(range(a, e + 1)):
                aff = self._affine(li)
                if aff is not None:
                    times[:, x, :] = aff[0][None, :] + fr[:, x, None] * aff[1][None, :]
                else:
                    l = g.layers[li]
                    times[:, x, :] = [[cost.layer_time(l, fr[p, x], d, g.batch) for d in self.devs] for p in range(P)]
        pref = np.concatenate([np.zeros((P, 1, self.D)), np.cumsum(times, axis=1)], axis=1)
        hit = self._sweeps[key] = (tiles, a, pref, invol, outvol, dup)
        return hit

    def _affine_run(self, a: int, e: int):
        """``(t0, t1)`` stacked over layers ``a..e`` (``n × D`` each) when every one is affine (:meth:`_affine`), else None."""
        key = ("run", a, e)
        hit = self._aff.get(key, 0)
        if hit == 0:
            parts = [self._affine(li) for li in range(a, e + 1)]
            hit = None if any(x is None for x in parts) else (np.stack([x[0] for x in parts]), np.stack([x[1] for x in parts]))
            self._aff[key] = hit
        return hit

    def _affine(self, li: int):
        """``(t0, t1)`` per device with ``layer_time(f) = t0 + f·t1`` when the cost model is affine in the fraction, else None.

        The analytic model is (overhead + work × fraction ÷ rate); a profiled
        one need not be, so affinity is checked at three fractions.
        """
        hit = self._aff.get(li, 0)
        if hit != 0:
            return hit
        g, cost = self.graph, self.cost
        l = g.layers[li]
        t0 = np.array([cost.layer_time(l, 0.0, d, g.batch) for d in self.devs])
        t1 = np.array([cost.layer_time(l, 1.0, d, g.batch) for d in self.devs]) - t0
        th = np.array([cost.layer_time(l, 0.37, d, g.batch) for d in self.devs])
        ok = np.allclose(t0 + 0.37 * t1, th, rtol=1e-12, atol=0.0)
        self._aff[li] = (t0, t1) if ok else None
        return self._aff[li]

    def paths(self, i: int, j: int, layout) -> BlockPaths:
        """Costs of block ``(i, j)`` cut into ``layout`` (memoised)."""
        key = (i, j, tuple(layout))
        bp = self._paths.get(key)
        if bp is not None:
            return bp
        (comp,), (inb,), outb, (valid,) = self.block_arrays(j, tuple(layout), (i,))
        up = inb[:, None, None] * self.ser1[None, :, :]
        down = outb[:, None, None] * self.ser1[None, :, :]
        bp = self._paths[key] = BlockPaths(i, j, tuple(layout), self.tiles(j, tuple(layout)), comp, up, down, self.lat,
                                           inb, outb, bool(valid))
        return bp

    def block_arrays(self, j: int, layout, starts):
        """Per-path arrays of the blocks ``(i, j)`` for every ``i`` in ``starts``, cut into ``layout``, stacked.

        Returns ``comp`` (``K × P × D``: task time per path and device),
        ``in_bytes`` (``K × P``), ``out_bytes`` (``P``: the same for every
        start) and whether each start is usable (no two paths read the same
        input region) — what :meth:`paths` is made of, for many blocks at once.
        """
        _, a, pref, invol, outvol, dup = self._layer_costs(j, tuple(layout))
        unit = self.graph.batch * self.graph.itemsize
        idx = [self.pts[i] - a for i in starts]
        comp = pref[None, :, -1, :] - pref[:, idx, :].transpose(1, 0, 2) + self.ov[None, None, :]
        inb = invol[:, list(starts)].T * unit
        return comp, inb, outvol * unit, np.array([i not in dup for i in starts])

    def usable(self, i: int, j: int, layout) -> bool:
        """Whether block ``(i, j)`` may take ``layout``: it fits the output map and no two paths read the same input region."""
        return self.fits(j, layout) and self.paths(i, j, layout).valid

    # ---- chain DP over units with blocks -------------------------------------------------
    def dp(self, blocks: dict, forced=None):
        """Best time over whole-unit placements given block options; returns (time, choice list).

        The unit-chain DP (:class:`~edgeslice.planners._shared.chain.UnitChain`) over this space's
        unit times, transfers and overheads: ``blocks[(i, j)]`` is a ``D × D``
        array ``t[h_in, h_out]`` of block times (``inf`` where impossible) or
        None; ``forced`` (booleans per unit) marks units that may only be inside
        a block.  Returns the choices as ``("whole", u, d)`` and
        ``("block", i, j, h_in, h_out)`` in unit order.
        """
        if self._chain is None:
            self._chain = UnitChain(self.T, self.X, self.ov, self.src, self.sink)
        sol = self._chain.solve(blocks, forced)
        return sol.value, sol.choices

class _NoStepsTask:
    steps = ()


_NoSteps = _NoStepsTask()
