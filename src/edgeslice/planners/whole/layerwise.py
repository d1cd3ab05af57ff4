"""``layerwise``: an optimal chain partition by the unit-chain DP; see :mod:`edgeslice.planners.whole`.
"""

from __future__ import annotations

import numpy as np

from edgeslice.errors import EdgesliceError
from edgeslice.graph.layer import LayerGraph
from edgeslice.planners import register
from edgeslice.planners._shared.chain import OBJECTIVES, chain_dp
from edgeslice.planners._shared.common import (
    make,
    speed,
    whole_segments,
)
from edgeslice.planners._shared.tables import chain_arrays


@register("layerwise", "optimal chain partition by dynamic programming (--objective latency|throughput)", exact=True)
def plan_layerwise(graph: LayerGraph, cluster, cost, *, objective: str = "latency", max_devices: int = 6, **_):
    """Layer-wise DP (see :func:`chain_dp`); exact for chain models under the latency objective.

    For ``objective="throughput"`` at most ``max_devices`` devices are
    considered (the DP is exponential in their number): the fastest ones,
    the source always among them.
    """
    if objective not in OBJECTIVES:
        raise EdgesliceError(f"layerwise: --objective must be one of {', '.join(OBJECTIVES)}, not {objective!r}")
    arr = chain_arrays(graph, cluster, cost)
    allowed = None
    if objective == "throughput":
        max_devices = int(max_devices)
        if not 1 <= max_devices <= 12:
            raise EdgesliceError(f"layerwise: --max-devices must be between 1 and 12, not {max_devices}")
        devs = list(cluster.devices)
        order = sorted(range(len(devs)), key=lambda i: (-speed(devs[i]), i))
        keep = [i for i in order if devs[i].name == cluster.source][:1]
        keep += [i for i in order if devs[i].name != cluster.source][: max_devices - len(keep)]
        allowed = np.zeros(len(devs), dtype=bool)
        allowed[keep] = True
    _, dev = chain_dp(objective=objective, allowed=allowed, **arr)
    names = cluster.names
    return make(graph, cluster, whole_segments(graph, [names[d] for d in dev]), "layerwise", objective=objective)
