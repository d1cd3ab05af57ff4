"""Cost tables for the array-based planners: per-layer times, link rates and latencies, overheads.

The planner functions only adapt the graph, cluster and cost model to arrays
(:func:`chain_arrays`) and build the Plan; the numeric cores live in
:mod:`edgeslice.planners._shared.chain` and :mod:`edgeslice.planners.whole.dads`.
"""

from __future__ import annotations

import itertools

import numpy as np

from edgeslice.graph.layer import INPUT, LayerGraph
from edgeslice.planners._shared.common import (
    crossing_bytes,
    layer_times,
    make,
    whole_segments,
)

_REF_BYTES = float(1 << 20)  # probe size for turning cost.transfer into a rate


def is_chain(graph: LayerGraph) -> bool:
    """True when every layer reads only the previous one (the first: the input) and the last is the output."""
    prev = INPUT
    for l in graph.layers:
        if set(l.inputs) != {prev}:
            return False
        prev = l.name
    return graph.output == prev


def link_arrays(cluster, cost) -> tuple[np.ndarray, np.ndarray]:
    """``rate[a, b]`` (bytes/s, ``inf`` on the diagonal) and ``lat[a, b]`` (s) from ``cost.transfer`` at time 0."""
    names = cluster.names
    D = len(names)
    rate = np.full((D, D), np.inf)
    lat = np.zeros((D, D))
    for a, b in itertools.permutations(range(D), 2):
        ser, l = cost.transfer(_REF_BYTES, names[a], names[b])
        rate[a, b] = _REF_BYTES / ser if ser > 0 else np.inf
        lat[a, b] = l
    return rate, lat


def overheads(cluster, cost) -> np.ndarray:
    """Task overhead (s) of each device under ``cost`` (per-device cost models may differ)."""
    pick = getattr(cost, "model_for", None)
    return np.array([getattr(pick(d) if pick else cost, "task_overhead_s", cost.task_overhead_s)
                     for d in cluster.devices], dtype=float)


def chain_arrays(graph: LayerGraph, cluster, cost) -> dict:
    """The :func:`chain_dp` arguments for ``graph`` on ``cluster``: T, B, rate, lat, overhead, src, sink."""
    rate, lat = link_arrays(cluster, cost)
    names = cluster.names
    return {"T": layer_times(graph, cluster, cost), "B": crossing_bytes(graph).astype(float), "rate": rate,
            "lat": lat, "overhead": overheads(cluster, cost), "src": names.index(cluster.source),
            "sink": names.index(cluster.sink)}


def _transfer_s(cost, nbytes: float, a: str, b: str) -> float:
    if a == b:
        return 0.0
    ser, lat = cost.transfer(nbytes, a, b)
    return ser + lat


def _all_on(graph: LayerGraph, cluster, device: str, planner: str, **options):
    return make(graph, cluster, whole_segments(graph, [device] * len(graph.layers)), planner, **options)
