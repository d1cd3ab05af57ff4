"""Tools every planner shares: evaluating a plan, building whole-segment plans, cost tables.

A planner is a pure function ``(graph, cluster, cost, **options) -> Plan``.
Search-based planners score candidates with :func:`evaluate` (lower +
simulate: the same prediction the user sees); DP and min-cut planners work on
the arrays from :func:`layer_times` and :func:`crossing_bytes` and are tested
against brute force on random tables.
"""

from __future__ import annotations

import numpy as np

from edgeslice.cluster.model import Cluster, Device
from edgeslice.graph.layer import INPUT, LayerGraph
from edgeslice.plan.plan import ModelRef, Part, Plan, Segment
from edgeslice.program.lower import lower
from edgeslice.sim.simulate import simulate


def model_ref(graph: LayerGraph) -> ModelRef:
    """What a plan records of its model; a model file's content digest too, so a changed file is refused."""
    from edgeslice.models import source_digest

    return ModelRef(graph.spec, graph.input_shape, graph.batch, graph.fingerprint, source=source_digest(graph.spec))


def make(graph: LayerGraph, cluster: Cluster, segments, planner: str, **options) -> Plan:
    """A Plan over ``cluster``'s devices from ``segments`` (Segment values); the plan carries ``cluster``."""
    return Plan(model_ref(graph), cluster.names, cluster.source, cluster.sink, tuple(segments), planner=planner,
                options=tuple(sorted(options.items())), cluster=cluster)


def whole_segments(graph: LayerGraph, devices_per_layer) -> list[Segment]:
    """Whole segments from one device name per layer (consecutive equal devices merge)."""
    segs, start = [], 0
    names = [l.name for l in graph.layers]
    for i in range(1, len(names) + 1):
        if i == len(names) or devices_per_layer[i] != devices_per_layer[start]:
            segs.append(Segment(names[start], names[i - 1], "whole", (Part(devices_per_layer[start]),)))
            start = i
    return segs


def evaluate(plan: Plan, graph: LayerGraph, cluster: Cluster, cost) -> float:
    """Predicted latency (s) of one request: lower + simulate."""
    return simulate(lower(plan, graph), graph, cluster, cost, events=False).latency_s


def speed(d: Device) -> float:
    """Effective compute rate of a device (GFLOPS left after its background load)."""
    return d.gflops * max(1e-3, 1.0 - d.cpu_load)


def fastest(cluster: Cluster, exclude: str | None = None) -> Device:
    """The fastest device (ties: the first listed), optionally not ``exclude``."""
    cands = [d for d in cluster.devices if d.name != exclude] or list(cluster.devices)
    return max(cands, key=lambda d: (speed(d), -cluster.devices.index(d)))


def layer_times(graph: LayerGraph, cluster: Cluster, cost) -> np.ndarray:
    """``T[i, d]``: seconds to compute all of layer ``i`` on device ``d`` (no task overhead)."""
    t = np.zeros((len(graph.layers), len(cluster.devices)))
    for j, d in enumerate(cluster.devices):
        for i, l in enumerate(graph.layers):
            t[i, j] = cost.layer_time(l, 1.0, d, graph.batch)
    return t


def crossing_bytes(graph: LayerGraph) -> np.ndarray:
    """``B[k]``: bytes of the tensors that cross the boundary before layer ``k`` (k = 0..L).

    ``B[0]`` is the model input, ``B[L]`` the model output; in between, every
    tensor made before ``k`` and read at or after ``k`` (skip connections count).
    """
    L = len(graph.layers)
    unit = graph.batch * graph.itemsize
    size = {INPUT: unit * int(np.prod(graph.input_shape))}
    size.update({l.name: l.out_bytes for l in graph.layers})
    made = {INPUT: -1}
    made.update({l.name: i for i, l in enumerate(graph.layers)})
    last_use = {}
    for i, l in enumerate(graph.layers):
        for src in l.inputs:
            last_use[src] = max(last_use.get(src, -1), i)
    last_use[graph.output] = L
    b = np.zeros(L + 1, dtype=np.int64)
    for name, lu in last_use.items():
        b[made[name] + 1 : lu + 1] += size[name]
    return b


def cut_points(graph: LayerGraph) -> list[int]:
    """Positions ``k`` (1..L-1) where exactly one tensor — layer ``k-1``'s output — crosses.

    These are the natural block boundaries of DAG models (between residual or
    inception blocks) and every boundary of a chain model.
    """
    key = ("cut_points",)
    hit = graph.memo.get(key)
    if hit is not None:
        return hit
    L = len(graph.layers)
    made = {l.name: i for i, l in enumerate(graph.layers)}
    last_use: dict[str, int] = {}
    for i, l in enumerate(graph.layers):
        for src in l.inputs:
            last_use[src] = max(last_use.get(src, -1), i)
    open_at = [0] * (L + 1)  # tensors made by layers (not the input) crossing boundary k
    for name, lu in last_use.items():
        if name in made:
            for k in range(made[name] + 1, lu + 1):
                open_at[k] += 1
    input_last = last_use.get(INPUT, 0)
    pts = [k for k in range(1, L) if open_at[k] == 1 and k > input_last
           and any(c for c in graph.consumers[graph.layers[k - 1].name])]
    graph.memo[key] = pts
    return pts


def proportional(n: int, weights: list[float]) -> list[tuple[int, int] | None]:
    """Split ``[0, n)`` into consecutive ranges sized by ``weights`` (largest remainder).

    A weight whose share rounds to nothing gets ``None`` (that device gets no part).
    """
    total = sum(weights)
    raw = [n * w / total for w in weights]
    sizes = [int(r) for r in raw]
    for i in sorted(range(len(raw)), key=lambda i: raw[i] - sizes[i], reverse=True)[: n - sum(sizes)]:
        sizes[i] += 1
    out, lo = [], 0
    for s in sizes:
        out.append((lo, lo + s) if s > 0 else None)
        lo += s
    return out
