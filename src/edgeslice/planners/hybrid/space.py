"""The HVPM space on one (graph, cluster, cost): layouts, segment choices, and the DP's edge table.

Note *hvpm-space*.  The model is cut at its cut points
(:func:`~edgeslice.planners._shared.common.cut_points`) into *units*.  At
each unit boundary ``k`` the one tensor crossing it is held in a *layout*:

- ``hold(h)``: whole on device ``h`` (the device that ran the unit before
  it; at ``k = 0`` the model input on the source);
- ``strips(S)``: in row strips over the devices of ``S``, sized by their
  load-adjusted speed (:func:`~edgeslice.planners._shared.common.speed`), as
  a horizontal segment over ``S`` left it;
- ``channels(S)``: in output-feature ranges over ``S``, sized the same way.

A *choice* takes the tensor at boundary ``i`` to boundary ``j``:

- *vertical*: unit ``i`` whole on device ``d`` (``j = i + 1``; a run of units
  on one device is one segment, so longer vertical runs are chains of these
  at no extra cost);
- *horizontal*: units ``i .. j-1`` (at most ``max_block``, all spatially
  local layers) fused and cut into speed-sized row strips over a subset
  ``S``: each part reads its rows of the input plus halos;
- *by features*: units ``i .. j-1`` of the non-spatial tail (a Linear layer
  and what follows it, no flatten) cut into speed-sized output-feature ranges
  over ``S``: each part reads the whole input.

The device that distributes a segment's input is whoever holds it (the
previous segment's device, or every strip owner for a halo exchange), and
the one that gathers its output is the next vertical segment's device (or
the sink); neither need compute in the segment.  A choice from a layout
costs, for each part, the receive time of what it lacks (each piece over its
own link, in parallel; on a ``shared`` medium one after another, in part
order) plus its task time (overhead + :meth:`steps_time` of its analysed
steps, :func:`~edgeslice.program.lower.analyse_part`); the choice costs its
slowest part.  The final edge delivers the output to the sink.  Scoring a
choice by its slowest part after the last piece of the previous layout is
an estimate of the simulator (which starts each piece when its own producer
is done); the planner therefore simulates what the DP finds (note *hvpm*).

Subsets ``S``: every subset of two or more devices when the cluster has at
most ``max_subset`` devices; otherwise, for each size ``k``, the ``k``
fastest devices and the source with the ``k - 1`` fastest others.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import numpy as np

from edgeslice.graph.layer import INPUT, LayerGraph
from edgeslice.plan.plan import Part, Segment
from edgeslice.plan.validate import cuttable, spatial_ok
from edgeslice.planners._shared.common import (
    cut_points,
    layer_times,
    proportional,
    speed,
)
from edgeslice.planners._shared.tables import link_arrays, overheads
from edgeslice.program import regions as R
from edgeslice.program.lower import analyse_part, segment_envelope

WHOLE, SPATIAL, CHANNEL = "whole", "spatial", "channel"


class Layout(NamedTuple):
    """How the tensor at a boundary is held: ``kind`` (hold, strips, channels) and its pieces."""

    kind: str
    devices: tuple[int, ...]
    regions: tuple[R.Region, ...]


class Choice(NamedTuple):
    """Units ``i .. j-1`` cut as ``cut`` into parts on ``devices`` computing ``regions`` of the last layer's output.

    ``need[q]`` is the region of the boundary tensor part ``q`` reads, ``comp[q]`` its task time,
    ``weights[q]`` the weight bytes it holds; ``out`` the layout it leaves at ``j``.
    """

    i: int
    j: int
    cut: str
    devices: tuple[int, ...]
    regions: tuple[R.Region, ...]
    need: np.ndarray  # (parts, dims, 2)
    comp: np.ndarray
    weights: np.ndarray
    out: int


def subsets(cluster, max_subset: int) -> list[tuple[int, ...]]:
    """Device subsets (indices, in cluster order) a horizontal segment may use (see note *hvpm-space*)."""
    D = len(cluster.devices)
    if D <= max_subset:
        return [s for k in range(2, D + 1) for s in itertools.combinations(range(D), k)]
    order = sorted(range(D), key=lambda i: (-speed(cluster.devices[i]), i))
    src = cluster.names.index(cluster.source)
    others = [i for i in order if i != src]
    out = []
    for k in range(2, D + 1):
        for s in (order[:k], [src] + others[: k - 1]):
            t = tuple(sorted(s))
            if t not in out:
                out.append(t)
    return out


def _boxes(regions) -> np.ndarray:
    """Regions as an array ``(regions, dims, 2)`` of ``(lo, hi)``."""
    return np.array([[list(r) for r in reg] for reg in regions], dtype=np.int64)


def _cat(chunks, dtype) -> np.ndarray:
    return np.concatenate(chunks).astype(dtype) if chunks else np.zeros(0, dtype)


class HybridSpace:
    """The layouts, choices and edge table of note *hvpm-space* for one (graph, cluster, cost).

    Example::

        >>> from edgeslice.cluster import Cluster
        >>> from edgeslice.cost import ClusterCost
        >>> from edgeslice.graph import trace
        >>> g, _ = trace("alexnet", (3, 64, 64))
        >>> c = Cluster.uniform(3)
        >>> sp = HybridSpace(g, c, ClusterCost(c), max_block=4, max_subset=5)
        >>> path = sp.solve()
        >>> 0 < path.value < float("inf") and {s.cut for s in sp.segments(path)} <= {"whole", "spatial", "channel"}
        True
    """

    def __init__(self, graph: LayerGraph, cluster, cost, *, max_block: int, max_subset: int):
        self.graph, self.cluster, self.cost = graph, cluster, cost
        L = len(graph.layers)
        self.pts = pts = [0] + cut_points(graph) + [L]
        self.U = U = len(pts) - 1
        self.names = names = cluster.names
        self.D = D = len(names)
        self.src, self.sink = names.index(cluster.source), names.index(cluster.sink)
        self.shared = cluster.medium == "shared"
        self.rate, self.lat = link_arrays(cluster, cost)
        self.ov = overheads(cluster, cost)
        self.cap = np.array([d.memory_mb * 1e6 for d in cluster.devices])
        self.unit = graph.batch * graph.itemsize
        self.tensor = [INPUT] + [graph.layers[pts[k] - 1].name for k in range(1, U)] + [graph.output]
        self.shape = [tuple(graph.input_shape)] + [graph.shape(t) for t in self.tensor[1:]]
        self.subsets = subsets(cluster, max_subset)
        T = np.vstack([np.zeros(D), np.cumsum(layer_times(graph, cluster, cost), axis=0)])
        self.unit_time = T[pts[1:]] - T[pts[:-1]]  # (U, D)
        self.layouts: list[list[Layout]] = [[] for _ in range(U + 1)]
        self._index: list[dict] = [{} for _ in range(U + 1)]
        self._layout(0, Layout("hold", (self.src,), (R.full(self.shape[0]),)))
        for k in range(1, U + 1):
            for d in range(D):
                self._layout(k, Layout("hold", (d,), (R.full(self.shape[k]),)))
        self.choices: list[Choice] = []
        self._table: dict | None = None
        self._pieces: dict[int, tuple] = {}  # boundary -> (layouts, piece devices, piece boxes, first piece of each)
        self._whole()
        self._cuts(max_block)

    # ---- building --------------------------------------------------------
    def _layout(self, k: int, lay: Layout) -> int:
        key = (lay.devices, lay.regions)
        hit = self._index[k].get(key)
        if hit is None:
            hit = self._index[k][key] = len(self.layouts[k])
            self.layouts[k].append(lay)
        return hit

    def _unit_weights(self, a: int, e: int, share: float = 1.0) -> float:
        return share * sum(l.param_bytes for l in self.graph.layers[a : e + 1])

    def _whole(self) -> None:
        g = self.graph
        for u in range(self.U):
            a, e = self.pts[u], self.pts[u + 1] - 1
            w = self._unit_weights(a, e)
            peak = max(l.out_bytes for l in g.layers[a : e + 1])
            need = _boxes([R.full(self.shape[u])])
            for d in range(self.D):
                if w + peak > self.cap[d]:
                    continue  # this unit alone does not fit the device
                out = self._layout(u + 1, Layout("hold", (d,), (R.full(self.shape[u + 1]),)))
                self.choices.append(Choice(u, u + 1, WHOLE, (d,), (R.full(self.shape[u + 1]),), need,
                                           np.array([self.ov[d] + self.unit_time[u, d]]), np.array([w]), out))

    def _cuts(self, max_block: int) -> None:
        g, pts = self.graph, self.pts
        devs = self.cluster.devices
        for i in range(self.U):
            for j in range(i + 1, min(self.U, i + max_block) + 1):
                a, e = pts[i], pts[j] - 1
                last = g.layers[e]
                if spatial_ok(g, a, e)[0]:
                    if last.out_shape[1] < 2:
                        continue
                    cut, n = SPATIAL, last.out_shape[1]
                elif (cuttable(g, a, e)[0] and last.out_shape[0] >= 2 and g.layers[a].flops
                      and not any(l.kind == "flatten" for l in g.layers[a : e + 1])):
                    cut, n = CHANNEL, last.out_shape[0]  # modnn's rule: a Linear layer (and what follows) by features
                else:
                    continue
                env = segment_envelope(g, a, e)  # as the lowering analyses parts
                seen = set()
                for S in self.subsets:
                    ranges = proportional(n, [speed(devs[d]) for d in S])
                    parts = tuple((d, r) for d, r in zip(S, ranges) if r)
                    if len(parts) < 2 or parts in seen:
                        continue
                    seen.add(parts)
                    self._cut(i, j, cut, parts, env)

    def _cut(self, i: int, j: int, cut: str, parts, env) -> None:
        g = self.graph
        a, e = self.pts[i], self.pts[j] - 1
        last = g.layers[e]
        shape = last.out_shape
        regions, needs, comp, wts = [], [], [], []
        for d, r in parts:
            reg = ((0, shape[0]), r, (0, shape[2])) if cut == SPATIAL else (r,) + R.full(shape[1:])
            steps, ext = analyse_part(g, a, e, {last.name: reg}, None, env)
            if set(ext) != {self.tensor[i]}:
                return  # reads something other than the boundary tensor: not a segment of this space
            share = 1.0 if cut == SPATIAL else (r[1] - r[0]) / shape[0]
            w = self._unit_weights(a, e, share)
            peak = max(R.volume(s.region) for s in steps) * self.unit
            if w + peak > self.cap[d]:
                return  # this part alone does not fit its device
            regions.append(reg)
            needs.append(ext[self.tensor[i]])
            comp.append(self.ov[d] + self.cost.steps_time(g, steps, self.cluster.devices[d]))
            wts.append(w)
        devices = tuple(d for d, _ in parts)
        out = self._layout(j, Layout("strips" if cut == SPATIAL else "channels", devices, tuple(regions)))
        self.choices.append(Choice(i, j, cut, devices, tuple(regions), _boxes(needs), np.array(comp), np.array(wts), out))

    # ---- the edge table --------------------------------------------------
    def _receive(self, k: int, devices, need: np.ndarray, comp: np.ndarray) -> np.ndarray:
        """Per layout at boundary ``k``: the slowest part's (receive + ``comp``) for parts on ``devices`` reading ``need``."""
        hit = self._pieces.get(k)
        if hit is None or hit[0] != len(self.layouts[k]):
            lays = self.layouts[k]
            hit = self._pieces[k] = (len(lays), np.array([d for lay in lays for d in lay.devices]),
                                     _boxes([r for lay in lays for r in lay.regions]),
                                     np.cumsum([0] + [len(lay.devices) for lay in lays[:-1]]))
        _, pdev, pbox, starts = hit
        q = np.asarray(devices)
        lo = np.maximum(need[:, None, :, 0], pbox[None, :, :, 0])
        hi = np.minimum(need[:, None, :, 1], pbox[None, :, :, 1])
        nbytes = np.prod(np.clip(hi - lo, 0, None), axis=2) * self.unit  # (parts, pieces)
        nbytes = np.where(pdev[None, :] == q[:, None], 0, nbytes)
        with np.errstate(divide="ignore", invalid="ignore"):
            ser = np.where(nbytes > 0, nbytes / self.rate[pdev[None, :], q[:, None]], 0.0)
        lat = np.where(nbytes > 0, self.lat[pdev[None, :], q[:, None]], 0.0)
        if self.shared:  # one channel: the pieces go one after another, in part order
            arrive = np.cumsum(np.add.reduceat(ser, starts, axis=1), axis=0) + np.maximum.reduceat(lat, starts, axis=1)
        else:
            arrive = np.maximum.reduceat(ser + lat, starts, axis=1)
        return (arrive + comp[:, None]).max(axis=0)

    def edges(self, price=None) -> dict:
        """The :func:`~edgeslice.planners.hybrid.dp.layout_dp` arguments, and ``choice[e]``: the choice edge ``e`` makes.

        ``price[d]`` (seconds per byte) adds the weight bytes each choice puts on ``d``, priced (memory rounds).
        """
        if self._table is None:
            self._table = self._build_table()
        arr = dict(self._table)
        if price is not None:
            held = np.zeros((len(self.choices), self.D))
            for c, ch in enumerate(self.choices):
                np.add.at(held[c], list(ch.devices), ch.weights)
            arr["w"] = arr["w"] + (held @ np.asarray(price, dtype=float))[arr["choice"]]
        return arr

    def _build_table(self) -> dict:
        off = np.cumsum([0] + [len(l) for l in self.layouts])
        boundary = np.repeat(np.arange(self.U + 1), [len(l) for l in self.layouts])
        src, dst, w, choice = [], [], [], []
        for c, ch in enumerate(self.choices):
            cost = self._receive(ch.i, ch.devices, ch.need, ch.comp)
            if ch.cut == WHOLE and ch.i > 0:  # the same device goes on: one segment, no overhead, nothing moves
                d = ch.devices[0]
                cost[self._index[ch.i][((d,), (R.full(self.shape[ch.i]),))]] = self.unit_time[ch.i, d]
            n = len(cost)
            src.append(off[ch.i] + np.arange(n))
            dst.append(np.full(n, off[ch.j] + ch.out))
            w.append(cost)
            choice.append(np.full(n, c))
        final = np.full(off[-1], np.inf)
        final[off[self.U]:] = self._receive(self.U, (self.sink,), _boxes([R.full(self.shape[self.U])]), np.zeros(1))
        return {"boundary": boundary, "src": _cat(src, np.int64), "dst": _cat(dst, np.int64), "w": _cat(w, float),
                "start": 0, "final": final, "choice": _cat(choice, np.int64)}

    def solve(self, price=None):
        """The DP's cheapest path (:class:`~edgeslice.planners.hybrid.dp.Path`) with its edges as choice indices."""
        from edgeslice.planners.hybrid.dp import Path, layout_dp

        arr = self.edges(price)
        choice = arr.pop("choice")
        p = layout_dp(**arr)
        return Path(p.value, tuple(int(choice[e]) for e in p.edges))

    # ---- plans -----------------------------------------------------------
    def segments(self, path) -> list[Segment]:
        """The plan's segments for a path of choices (consecutive vertical units on one device merged)."""
        g, names = self.graph, self.names
        segs: list[Segment] = []
        run = None  # (first unit, last unit, device) of an open vertical run
        for c in path.edges:
            ch = self.choices[c]
            if ch.cut == WHOLE and run is not None and run[2] == ch.devices[0]:
                run = (run[0], ch.i, run[2])
                continue
            if run is not None:
                segs.append(self._segment(*run))
                run = None
            if ch.cut == WHOLE:
                run = (ch.i, ch.i, ch.devices[0])
                continue
            first, last = g.layers[self.pts[ch.i]].name, g.layers[self.pts[ch.j] - 1].name
            if ch.cut == SPATIAL:
                parts = tuple(Part(names[d], rows=r[1], cols=r[2]) for d, r in zip(ch.devices, ch.regions))
            else:
                parts = tuple(Part(names[d], channels=r[0]) for d, r in zip(ch.devices, ch.regions))
            segs.append(Segment(first, last, ch.cut, parts))
        if run is not None:
            segs.append(self._segment(*run))
        return segs

    def _segment(self, u0: int, u1: int, d: int) -> Segment:
        g = self.graph
        return Segment(g.layers[self.pts[u0]].name, g.layers[self.pts[u1 + 1] - 1].name, WHOLE, (Part(self.names[d]),))
