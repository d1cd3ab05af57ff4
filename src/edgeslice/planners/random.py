"""The random planner: valid plans that mix every kind of cut, for fuzzing and exploring.

It draws segment boundaries, then for each segment one of the cuts that is
legal there — whole, spatial (row strips or an R×C grid with unequal sizes),
channel ranges, or input-feature ranges of a lone Linear layer (partial sums) —
and places each part on a random device.  Channel cuts are drawn only where
they recompute nothing (each part's FLOPs add up to the segment's), so a plan
without spatial cuts has exactly the model's FLOPs; spatial cuts pay halos.

The same seed, graph and devices always give the same plan.
"""

from __future__ import annotations

import random

from edgeslice.cluster.model import Cluster
from edgeslice.graph.layer import LayerGraph
from edgeslice.plan.plan import Part, Plan, Segment
from edgeslice.plan.validate import cuttable, spatial_ok
from edgeslice.planners._shared.common import model_ref
from edgeslice.program.lower import (
    analyse_part,
    part_requests,
    segment_envelope,
    step_flops,
)


def _bounds(rng: random.Random, n: int, k: int) -> list[tuple[int, int]]:
    """``k`` consecutive non-empty ranges covering ``[0, n)``, with random (unequal) sizes."""
    cuts = sorted(rng.sample(range(1, n), k - 1)) if k > 1 else []
    edges = [0, *cuts, n]
    return list(zip(edges[:-1], edges[1:]))


def _channel_redundant(graph: LayerGraph, a: int, b: int, seg: Segment) -> bool:
    total = sum(l.flops for l in graph.layers[a : b + 1])
    got = 0
    env = segment_envelope(graph, a, b)
    for p in seg.parts:
        req, partial = part_requests(graph, a, b, seg, p)
        got += step_flops(graph, analyse_part(graph, a, b, req, partial, env)[0])
    return got != total


def _spans(rng: random.Random, graph: LayerGraph, max_segments: int) -> list[tuple[int, int]]:
    n = len(graph.layers)
    k = rng.randint(1, min(max_segments, n))
    cuts = set(rng.sample(range(1, n), k - 1)) if k > 1 else set()
    linears = [i for i, l in enumerate(graph.layers) if l.kind == "linear"]
    if linears and rng.random() < 0.6:  # isolate a Linear so partial-sum cuts get drawn
        i = rng.choice(linears)
        cuts |= {c for c in (i, i + 1) if 0 < c < n}
    edges = [0, *sorted(cuts), n]
    return [(edges[j], edges[j + 1] - 1) for j in range(len(edges) - 1)]


def random_plan(graph: LayerGraph, devices: tuple[str, ...], source: str, sink: str, *, seed: int = 0,
                max_segments: int = 8, max_parts: int = 4, cluster: Cluster | None = None) -> Plan:
    """Draw a valid plan for ``graph`` over ``devices`` (see module docstring)."""
    rng = random.Random(seed)
    segments = []
    for a, b in _spans(rng, graph, max_segments):
        last = graph.layers[b]
        first = graph.layers[a].name
        options = [("whole", 1.0)]
        if len(last.out_shape) == 3 and last.out_shape[1] * last.out_shape[2] >= 2 and spatial_ok(graph, a, b)[0]:
            options.append(("spatial", 2.0))
        if last.out_shape[0] >= 2 and cuttable(graph, a, b)[0]:
            options.append(("channel", 2.0))
        if a == b and last.kind == "linear" and last.in_shapes[0][0] >= 2:
            options.append(("input", 2.0))
        seg = None
        for _ in range(4):
            cut = rng.choices([o for o, _ in options], [w for _, w in options])[0]
            dev = lambda: rng.choice(devices)  # noqa: E731
            if cut == "whole":
                seg = Segment(first, last.name, "whole", (Part(dev()),))
            elif cut == "spatial":
                _, h, w = last.out_shape
                r = rng.randint(1, min(max_parts, h))
                c = rng.randint(1, min(max_parts, w))
                if r * c == 1:
                    r, c = (2, 1) if h >= 2 else (1, 2)
                parts = tuple(Part(dev(), rows=rr, cols=cc) for rr in _bounds(rng, h, r) for cc in _bounds(rng, w, c))
                seg = Segment(first, last.name, "spatial", parts)
            elif cut == "channel":
                k = rng.randint(2, min(max_parts, last.out_shape[0]))
                seg = Segment(first, last.name, "channel", tuple(Part(dev(), channels=r) for r in _bounds(rng, last.out_shape[0], k)))
                if _channel_redundant(graph, a, b, seg):
                    options = [o for o in options if o[0] != "channel"]
                    seg = None
                    continue
            else:
                fin = last.in_shapes[0][0]
                k = rng.randint(2, min(max_parts, fin))
                seg = Segment(first, last.name, "input", tuple(Part(dev(), inputs=r) for r in _bounds(rng, fin, k)))
            break
        if seg is None:
            seg = Segment(first, last.name, "whole", (Part(rng.choice(devices)),))
        segments.append(seg)
    model = model_ref(graph)
    return Plan(model, tuple(devices), source, sink, tuple(segments), planner="random",
                options=(("seed", seed),), cluster=cluster)


from dataclasses import dataclass  # noqa: E402

from edgeslice.planners import register  # noqa: E402
from edgeslice.planners.options import PlannerOptions, option  # noqa: E402


@dataclass(frozen=True)
class RandomOptions(PlannerOptions):
    seed: int = option(0, "random seed (the same seed gives the same plan)", min=0)
    max_segments: int = option(8, "most segments drawn")
    max_parts: int = option(4, "most parts per segment (and rows / columns of a grid)", min=2)


@register("random", "random valid plan mixing spatial, channel and partial-sum cuts (a fuzzer; --seed)",
          options=RandomOptions)
def plan_random(graph: LayerGraph, cluster, cost, opts: RandomOptions) -> Plan:
    return random_plan(graph, cluster.names, cluster.source, cluster.sink, seed=opts.seed,
                       max_segments=opts.max_segments, max_parts=opts.max_parts,
                       cluster=cluster)
