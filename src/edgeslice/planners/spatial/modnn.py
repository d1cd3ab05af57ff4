"""``modnn``: MoDNN's speed-sized row strips per layer; see :mod:`edgeslice.planners.spatial`.
"""

from __future__ import annotations

from edgeslice.graph.layer import LayerGraph
from edgeslice.plan.plan import Part, Segment
from edgeslice.plan.validate import cuttable, spatial_ok
from edgeslice.planners import register
from edgeslice.planners._shared.common import (
    make,
    proportional,
    speed,
)
from edgeslice.planners.options import NoOptions


def _speed_parts(graph: LayerGraph, a: int, b: int, cluster) -> tuple[str, tuple[Part, ...]] | None:
    """Row strips (spatial) or output ranges (channel) of segment a..b sized by device speed."""
    weights = [speed(d) for d in cluster.devices]
    last = graph.layers[b]
    if len(last.out_shape) == 3 and spatial_ok(graph, a, b)[0]:
        _, h, w = last.out_shape
        parts = tuple(Part(d.name, rows=r, cols=(0, w)) for d, r in zip(cluster.devices, proportional(h, weights)) if r)
        return "spatial", parts
    if cuttable(graph, a, b)[0] and last.out_shape[0] >= 2 and not any(
            l.kind in ("flatten",) for l in graph.layers[a : b + 1]):
        parts = tuple(Part(d.name, channels=r) for d, r in zip(cluster.devices, proportional(last.out_shape[0], weights)) if r)
        return "channel", parts
    return None


@register("modnn", "MoDNN: each conv/pool/FC layer split by device speed (row strips / output neurons), no fusion")
def plan_modnn(graph: LayerGraph, cluster, cost, opts: NoOptions):
    groups, start = [], 0
    for i in range(1, len(graph.layers) + 1):
        if i == len(graph.layers) or graph.layers[i].kind in ("conv", "linear", "maxpool", "avgpool", "adaptive_avgpool",
                                                               "adaptive_maxpool", "cat", "binary", "flatten"):
            groups.append((start, i - 1))
            start = i
    segs = []
    for a, b in groups:
        cut = _speed_parts(graph, a, b, cluster) if graph.layers[a].flops else None
        if cut is None or len(cut[1]) < 2:
            segs.append(Segment(graph.layers[a].name, graph.layers[b].name, "whole", (Part(cluster.source),)))
        else:
            segs.append(Segment(graph.layers[a].name, graph.layers[b].name, cut[0], cut[1]))
    return make(graph, cluster, segs, "modnn")
