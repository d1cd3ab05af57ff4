"""``neurosurgeon`` (Kang et al., ASPLOS 2017): the best single split point; see :mod:`edgeslice.planners.whole`.
"""

from __future__ import annotations

import numpy as np

from edgeslice.graph.layer import LayerGraph
from edgeslice.planners import register
from edgeslice.planners._shared.common import (
    evaluate,
    make,
    whole_segments,
)
from edgeslice.planners.options import NoOptions
from edgeslice.program.lower import lower
from edgeslice.program.memory import fits


@register("neurosurgeon", "Neurosurgeon: best single split point, layers [0,k) on the source and [k,L) on one server")
def plan_neurosurgeon(graph: LayerGraph, cluster, cost, opts: NoOptions):
    L = len(graph.layers)
    src = cluster.source
    servers = [n for n in cluster.names if n != src]
    best, best_t = None, np.inf
    for k in range(L + 1):
        for srv in servers if k < L else [src]:
            plan = make(graph, cluster, whole_segments(graph, [src] * k + [srv] * (L - k)), "neurosurgeon")
            if best is not None and not fits(lower(plan, graph), graph, cluster):  # memory_mb is a constraint
                continue
            t = evaluate(plan, graph, cluster, cost)
            if t < best_t or not fits(lower(best, graph), graph, cluster):
                best, best_t = plan, t
    return best  # make_plan refuses it, naming the device, when no split fits
