"""``bruteforce``: every assignment of whole layers to devices, each simulated (tests and tiny cases).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from edgeslice.errors import EdgesliceError
from edgeslice.graph.layer import LayerGraph
from edgeslice.planners import register
from edgeslice.planners._shared.common import (
    evaluate,
    make,
    whole_segments,
)
from edgeslice.planners.options import PlannerOptions, option
from edgeslice.program.lower import lower
from edgeslice.program.memory import fits


@dataclass(frozen=True)
class BruteforceOptions(PlannerOptions):
    limit: int = option(200_000, "most assignments (devices ** layers) to try before refusing")


@register("bruteforce", "every assignment of whole layers to devices, simulated (small cases; --limit)", exact=True,
          options=BruteforceOptions)
def plan_bruteforce(graph: LayerGraph, cluster, cost, opts: BruteforceOptions):
    L, names = len(graph.layers), list(cluster.names)
    limit = opts.limit
    count = len(names) ** L
    if count > limit:
        raise EdgesliceError(
            f"bruteforce: model {graph.spec!r} has {L} layers and cluster {cluster.name!r} has {len(names)} devices, "
            f"so {len(names)}**{L} = {count:.3g} assignments, over the limit of {limit}; "
            f"use a smaller model or cluster, raise --limit, or use 'layerwise' (exact for chains)")
    order = [cluster.source] + [n for n in names if n != cluster.source]  # ties: more work on the source
    best, best_t = None, np.inf
    for per_layer in itertools.product(order, repeat=L):
        plan = make(graph, cluster, whole_segments(graph, per_layer), "bruteforce", limit=limit)
        if not fits(lower(plan, graph), graph, cluster):  # every device's memory_mb is a constraint
            continue
        t = evaluate(plan, graph, cluster, cost)
        if t < best_t:
            best, best_t = plan, t
    if best is None:  # nothing fits: make_plan names the device the all-on-the-source plan overflows
        return make(graph, cluster, whole_segments(graph, [cluster.source] * L), "bruteforce", limit=limit)
    return best
