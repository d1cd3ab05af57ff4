"""``layerwise``: an optimal chain partition by the unit-chain DP; see :mod:`edgeslice.planners.whole`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from edgeslice.graph.layer import LayerGraph
from edgeslice.planners import register
from edgeslice.planners._shared.chain import (
    chain_dp,
    chain_latency_milp,
    transfer_table,
)
from edgeslice.planners._shared.common import (
    make,
    speed,
    whole_segments,
)
from edgeslice.planners._shared.tables import chain_arrays
from edgeslice.planners.options import PlannerOptions, option
from edgeslice.program.lower import lower
from edgeslice.program.memory import fits, layer_activation_bytes


@dataclass(frozen=True)
class LayerwiseOptions(PlannerOptions):
    objective: Literal["latency", "throughput"] = option(  # the objectives of chain_dp (OBJECTIVES)
        "latency", "what to minimise: one request's latency, or the pipeline's bottleneck stage (throughput)")
    max_devices: int = option(6, "throughput: most devices the DP considers (the fastest, the source among them)", max=12)


@register("layerwise", "optimal chain partition by dynamic programming (--objective latency|throughput)", exact=True,
          options=LayerwiseOptions)
def plan_layerwise(graph: LayerGraph, cluster, cost, opts: LayerwiseOptions):
    """Layer-wise DP (see :func:`chain_dp`); exact for chain models under the latency objective.

    For ``objective="throughput"`` at most ``max_devices`` devices are
    considered (the DP is exponential in their number): the fastest ones,
    the source always among them.
    """
    objective, max_devices = opts.objective, opts.max_devices  # validated: LayerwiseOptions
    arr = chain_arrays(graph, cluster, cost)
    allowed = None
    if objective == "throughput":
        devs = list(cluster.devices)
        order = sorted(range(len(devs)), key=lambda i: (-speed(devs[i]), i))
        keep = [i for i in order if devs[i].name == cluster.source][:1]
        keep += [i for i in order if devs[i].name != cluster.source][: max_devices - len(keep)]
        allowed = np.zeros(len(devs), dtype=bool)
        allowed[keep] = True
    _, dev = chain_dp(objective=objective, allowed=allowed, **arr)
    names = cluster.names
    plan = make(graph, cluster, whole_segments(graph, [names[d] for d in dev]), "layerwise", objective=objective)
    if objective == "latency" and not fits(lower(plan, graph), graph, cluster):
        # the unconstrained optimum does not fit some device's memory_mb: the same objective under the
        # memory constraint, exactly (note *resident*: whole layers cost w[l] + a peak of a[l] each)
        w = [l.param_bytes for l in graph.layers]
        a = [layer_activation_bytes(graph, l.name) for l in graph.layers]
        cap = [d.memory_mb * 1e6 for d in cluster.devices]
        X = transfer_table(arr["B"], arr["rate"], arr["lat"])
        res = chain_latency_milp(arr["T"], X, arr["overhead"], arr["src"], arr["sink"], w, a, cap)
        if res is not None:
            plan = make(graph, cluster, whole_segments(graph, [names[d] for d in res[1]]), "layerwise",
                        objective=objective)
    return plan  # make_plan refuses it, naming the device, when even the constrained optimum does not fit
