"""The two reference points every comparison starts from: ``local`` and ``edge``."""

from __future__ import annotations

from edgeslice.graph.layer import LayerGraph
from edgeslice.plan.plan import Part, Segment
from edgeslice.planners import register
from edgeslice.planners._shared.common import fastest, make
from edgeslice.planners.options import NoOptions


@register("local", "everything on the source device")
def plan_local(graph: LayerGraph, cluster, cost, opts: NoOptions):
    names = [l.name for l in graph.layers]
    return make(graph, cluster, [Segment(names[0], names[-1], "whole", (Part(cluster.source),))], "local")


@register("edge", "everything on the fastest device; input shipped there, result shipped back")
def plan_edge(graph: LayerGraph, cluster, cost, opts: NoOptions):
    names = [l.name for l in graph.layers]
    dev = fastest(cluster).name
    return make(graph, cluster, [Segment(names[0], names[-1], "whole", (Part(dev),))], "edge")
