"""Built-in benchmarks (``edgeslice bench ...``), shared with ``benchmarks/``.

``bench_simulate``: plan evaluations (lower + simulate) per second for VGG-16,
four devices, a 4×4 grid over its first 10 layers.  Each evaluation is a
*different* plan — the tiles are re-placed on random devices, as a planner
searching placements would — so the lowering's placement-dependent work
(matching needs to producers, transfers) and the whole simulation are redone
every time; the region analysis, which depends only on the cut geometry, is
memoised on the graph as in real planning.
"""

from __future__ import annotations

import random
import time
from dataclasses import replace


def grid_plan(graph, layers: int = 10, rows: int = 4, cols: int = 4, devices: int = 4):
    """An R×C grid of equal tiles over the first ``layers`` layers, tiles round-robin, the rest whole on d0."""
    from edgeslice.plan import Part, Plan, Segment
    from edgeslice.planners._shared.common import model_ref

    names = [l.name for l in graph.layers]
    _, h, w = graph.layers[layers - 1].out_shape
    rb = [h * i // rows for i in range(rows + 1)]
    cb = [w * j // cols for j in range(cols + 1)]
    devs = tuple(f"d{i}" for i in range(devices))
    parts = tuple(Part(devs[(i * cols + j) % devices], rows=(rb[i], rb[i + 1]), cols=(cb[j], cb[j + 1]))
                  for i in range(rows) for j in range(cols))
    ref = model_ref(graph)
    return Plan(ref, devs, "d0", "d0", (Segment(names[0], names[layers - 1], "spatial", parts),
                                         Segment(names[layers], names[-1], "whole", (Part("d0"),))))


def bench_simulate(seconds: float = 3.0, seed: int = 0) -> dict:
    from edgeslice.cluster import Cluster
    from edgeslice.cost import ClusterCost
    from edgeslice.graph import trace
    from edgeslice.program import lower
    from edgeslice.sim import simulate

    graph, _ = trace("vgg16", (3, 224, 224))
    cluster = Cluster.uniform(4, gflops=8.0, bandwidth_mbps=50.0)
    cost = ClusterCost(cluster)
    base = grid_plan(graph)
    rng = random.Random(seed)
    devs = base.devices

    def variant():
        s0 = base.segments[0]
        parts = tuple(replace(p, device=rng.choice(devs)) for p in s0.parts)
        return replace(base, segments=(replace(s0, parts=parts),) + base.segments[1:])

    simulate(lower(base, graph), graph, cluster, cost)  # warm the geometry memo once
    plans = [variant() for _ in range(256)]
    n, latencies = 0, []
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        p = plans[n % len(plans)]
        latencies.append(simulate(lower(p, graph), graph, cluster, cost, events=False).latency_s)
        n += 1
    dt = time.perf_counter() - t0
    return {"plans_per_s": n / dt, "evaluations": n, "seconds": dt, "distinct_plans": len(set(plans)),
            "latency_range_s": [min(latencies), max(latencies)],
            "description": "VGG-16 224x224, 4 devices (8 GFLOPS, 50 Mbit/s), 4x4 grid over first 10 layers, random tile placement"}
