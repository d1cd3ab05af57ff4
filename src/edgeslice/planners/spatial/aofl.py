"""``aofl``: AOFL's dynamic programming over fusion points; see :mod:`edgeslice.planners.spatial`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgeslice.graph.layer import LayerGraph
from edgeslice.plan.plan import Part, Segment
from edgeslice.plan.validate import spatial_ok
from edgeslice.planners import register
from edgeslice.planners._shared.chain import UnitChain
from edgeslice.planners._shared.common import (
    cut_points,
    evaluate,
    fastest,
    make,
    proportional,
    speed,
)
from edgeslice.planners.options import PlannerOptions, option
from edgeslice.planners.spatial.ftp import _tail
from edgeslice.program import regions as R
from edgeslice.program.lower import analyse_part, segment_envelope


def _strips(graph: LayerGraph, e: int, cluster) -> list[tuple[str, tuple[int, int]]]:
    _, h, _ = graph.layers[e].out_shape
    return [(d.name, r) for d, r in zip(cluster.devices, proportional(h, [speed(d) for d in cluster.devices])) if r]


def _block_cost(graph: LayerGraph, a: int, e: int, cluster, cost, held: dict | None) -> float:
    """Slowest device's (halo receive + compute) time for block a..e in speed-sized strips.

    ``held`` maps device → the region of the block's input it already holds
    (the previous block's strip on it); None means the input is all on the source.
    """
    env = segment_envelope(graph, a, e)
    last = graph.layers[e]
    devices = {d.name: d for d in cluster.devices}
    unit = graph.batch * graph.itemsize
    worst = 0.0
    for dev, rows in _strips(graph, e, cluster):
        req = {last.name: ((0, last.out_shape[0]), rows, (0, last.out_shape[2]))}
        steps, ext = analyse_part(graph, a, e, req, None, env)
        recv = 0
        for tensor, region in ext.items():
            have = None
            if held is None:
                have = region if dev == cluster.source else None
            elif tensor in held.get(dev, {}):
                have = R.intersect(region, held[dev][tensor])
            recv += (R.volume(region) - R.volume(have)) * unit
        src = cluster.source if held is None else dev
        t = cost.task_overhead_s + cost.steps_time(graph, steps, devices[dev])
        if recv:
            peers = [n for n in devices if n != dev] if held is not None else [src]
            ser, lat = max((cost.transfer(recv, p, dev) for p in peers), key=lambda x: x[0] + x[1])
            t += ser + lat
        worst = max(worst, t)
    return worst


@dataclass(frozen=True)
class AoflOptions(PlannerOptions):
    max_block: int = option(8, "most units (runs of layers between cut points) fused into one block")


@register("aofl", "AOFL: dynamic programming over fusion points, strip-partitioned fused blocks sized by device speed",
          options=AoflOptions)
def plan_aofl(graph: LayerGraph, cluster, cost, opts: AoflOptions):
    max_block = opts.max_block
    pts = [0] + cut_points(graph) + [len(graph.layers)]
    # block candidates between boundaries pts[i] .. pts[j] (layers pts[i] .. pts[j]-1)
    spatial_end = 0
    for j in range(1, len(pts)):
        if spatial_ok(graph, 0, pts[j] - 1)[0] or spatial_ok(graph, pts[j - 1], pts[j] - 1)[0]:
            spatial_end = j
        else:
            break
    # the unit-chain DP on one "device": units are the runs between fusion points, every unit inside a
    # block (forced), blocks may follow blocks (adjacent); the best way to reach each boundary is kept
    U = len(pts) - 1
    blocks, reach = {}, {0}
    for j in range(1, spatial_end + 1):
        for i in range(max(0, j - max_block), j):
            if i not in reach:
                continue
            a, e = pts[i], pts[j] - 1
            if not spatial_ok(graph, a, e)[0] or graph.layers[e].out_shape[1] < 2:
                continue
            held = None
            if i > 0:
                prev = graph.layers[a - 1]
                held = {d: {prev.name: ((0, prev.out_shape[0]), r, (0, prev.out_shape[2]))} for d, r in _strips(graph, a - 1, cluster)}
            blocks[(i, j)] = [[_block_cost(graph, a, e, cluster, cost, held)]]
            reach.add(j)
    sol = UnitChain(np.zeros((U, 1)), np.zeros((U + 1, 1, 1)), 0.0, 0, 0).solve(blocks, [True] * U, adjacent=True)
    best = {0: []}
    for j in range(1, spatial_end + 1):
        if sol.G[j][0] < np.inf:
            best[j] = [(pts[i], pts[k] - 1) for _, i, k, _, _ in sol.blocks_to(j, 0)]
    tail_dev = fastest(cluster).name
    candidates = []
    for j, blocks in best.items():
        segs = [Segment(graph.layers[a].name, graph.layers[e].name, "spatial",
                        tuple(Part(d, rows=r, cols=(0, graph.layers[e].out_shape[2])) for d, r in _strips(graph, e, cluster)))
                for a, e in blocks]
        segs += _tail(graph, pts[j], tail_dev)
        candidates.append(make(graph, cluster, segs, "aofl", max_block=max_block))
    # the DP chose the best blocks for every split between the strip part and the tail; simulate to pick the split
    return min(candidates, key=lambda p: evaluate(p, graph, cluster, cost))
