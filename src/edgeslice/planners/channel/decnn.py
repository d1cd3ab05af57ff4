"""``decnn``: DeCNN's channel-group partitioning; see :mod:`edgeslice.planners.channel`.

How the plan is made (a function of the graph, the cluster and the cost model):

1. **Units.**  A decoupled model's grouped convolutions have ``g`` groups (the
   largest number that divides every grouped, non-depthwise convolution's
   groups; option ``groups`` overrides).  The split is in whole groups: the
   ``min(g, devices)`` fastest devices get consecutive groups in proportion to
   their speed (equal devices: one group each), the others stay idle.  Group
   sizes are fixed by the model, so on unequal devices the shares are rounded
   to whole groups — a model built with unequal groups would follow speed
   more closely; the zoo's variants have equal ones.  A model with no grouped
   convolution is split naively: every device, output channels in proportion
   to speed.
2. **Segments.**  A new segment starts at every layer that reads across the
   split (:func:`breaks`): an ungrouped convolution, a Linear layer, a channel
   shuffle, a concat.  In a decoupled ResNet that is the stem, each shuffle
   and the classifier: one segment per stage, nothing exchanged inside one.
3. **Cuts.**  Every segment is cut by output channels into the units above,
   except a Linear layer whose input comes split from the segment before it:
   that one is cut by *input* features along the same split (each device
   multiplies its slice of the features, the partial sums are reduced on the
   device that reads them, the sink); what follows a reduced Linear layer runs
   whole on the sink.
4. **Stem.**  Split by channels, the first segment's ungrouped layers need the
   whole input image on every device: the source sends it to all
   (``stem="split"``); or it computes them alone and scatters their output
   (``stem="source"``); or they are cut in row strips, each device receiving
   only its rows of the image (and halos), and their output is exchanged
   all-to-all into channel groups (``stem="strips"``, where those layers are
   spatially local).  ``stem="auto"`` (default) simulates each and keeps the
   fastest.

Example::

    >>> from edgeslice.graph import trace
    >>> from edgeslice.planners import make_plan
    >>> g, _ = trace("resnet18_decoupled", (3, 64, 64))
    >>> plan = make_plan("decnn", g, devices=4)
    >>> [s.cut for s in plan.segments]  # the stem in row strips was fastest here
    ['spatial', 'channel', 'channel', 'channel', 'channel', 'input']
    >>> [p.channels for p in plan.segments[2].parts]  # stage 2: group i of 192 channels on device i
    [(0, 48), (48, 96), (96, 144), (144, 192)]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from edgeslice.graph.layer import Layer, LayerGraph
from edgeslice.plan.plan import Part, Segment
from edgeslice.errors import PlanError
from edgeslice.plan.validate import cuttable, spatial_ok
from edgeslice.planners import register
from edgeslice.planners._shared.common import evaluate, make, proportional, speed
from edgeslice.planners.options import PlannerOptions, option
from edgeslice.program import regions as R


@dataclass(frozen=True)
class DecnnOptions(PlannerOptions):
    groups: int | None = option(None, "channel groups the split follows (default: the model's grouped convolutions' "
                                      "groups; a model without any is split naively over every device)")
    stem: Literal["auto", "split", "source", "strips"] = option(
        "auto", "ungrouped first layers: split by channels with the input sent to all (split), whole on the source "
                "with their output scattered (source), in row strips then exchanged all-to-all (strips), or the "
                "fastest, simulated (auto)")


def model_groups(graph: LayerGraph) -> int:
    """The number of channel groups a decoupled model's grouped convolutions share (1: none).

    The gcd of every grouped convolution's groups, depthwise ones (one channel a group) left out.
    """
    g = 0
    for l in graph.layers:
        if l.kind == "conv" and l.geometry.groups > 1 and l.geometry.groups != l.in_shapes[0][0]:
            g = math.gcd(g, l.geometry.groups)
    return g or 1


def _channels(shape: tuple[int, ...]) -> int:
    return shape[0] if shape else 0


def breaks(layer: Layer, g: int) -> bool:
    """Whether ``layer`` reads across a split into ``g`` equal channel groups (so it starts a segment).

    For each group of its output (all of its rows and columns), the channels of every input it
    reads (:func:`edgeslice.program.regions.backward`) must be that input's same group; a
    flatten's features count by channel.  Channel counts that ``g`` does not divide break.
    """
    if g <= 1:
        return False
    cout = _channels(layer.out_shape)
    if cout % g or any(_channels(s) % g for s in layer.in_shapes) or not layer.in_shapes:
        return True
    for i in range(g):
        out = ((i * cout // g, (i + 1) * cout // g),) + R.full(layer.out_shape[1:])
        try:
            comp, ins = R.backward(layer, out)
            if comp[0] != out[0]:
                return True
        except ValueError:
            return True
        for shp, r in zip(layer.in_shapes, ins):
            c = _channels(shp)
            if r is not None and r[0] != (i * c // g, (i + 1) * c // g):
                return True
    return False


def _grouped(layer: Layer) -> bool:
    return layer.kind == "conv" and layer.geometry.groups > 1


def _spans(graph: LayerGraph, g: int) -> list[tuple[int, int]]:
    """Segments (first, last) by :func:`breaks`, merged forward until each is cuttable (one output)."""
    starts = [0] + [i for i in range(1, len(graph.layers)) if breaks(graph.layers[i], g)]
    spans = [(a, b - 1) for a, b in zip(starts, starts[1:] + [len(graph.layers)])]
    out: list[tuple[int, int]] = []
    a = None
    for s, e in spans:
        a = s if a is None else a
        if cuttable(graph, a, e)[0] or e == len(graph.layers) - 1:
            out.append((a, e))
            a = None
    return out


def _split(cluster, units: int | None) -> list[tuple[str, float]]:
    """The devices that get work, in cluster order, with their speeds: all, or the ``units`` fastest."""
    devs = sorted(cluster.devices, key=lambda d: (-speed(d), cluster.devices.index(d)))
    if units is not None:
        devs = devs[:units]
    devs.sort(key=lambda d: cluster.devices.index(d))
    return [(d.name, speed(d)) for d in devs]


def _ranges(n: int, who: list[tuple[str, float]], units: int | None) -> list[tuple[str, tuple[int, int]]]:
    """``[0, n)`` split over ``who`` by speed: in whole units of ``n / units`` (groups), else in channels."""
    weights = [w for _, w in who]
    if units is None:
        rs = proportional(n, weights)
        return [(d, r) for (d, _), r in zip(who, rs) if r]
    per = n // units
    rs = proportional(units, weights)
    return [(d, (r[0] * per, r[1] * per)) for (d, _), r in zip(who, rs) if r]


def _segments(graph: LayerGraph, cluster, units: int | None, who, stem: str) -> list[Segment]:
    layers = graph.layers
    g = units if units is not None else len(who)
    spans = _spans(graph, g)
    if stem in ("source", "strips"):
        a, b = spans[0]
        k = next((i for i in range(a, b + 1) if _grouped(layers[i])), b + 1)
        spans = [(a, k - 1)] + ([(k, b)] if k <= b else []) + spans[1:]
    segs: list[Segment] = []
    split_before = False  # the previous segment's output is channel-split
    reduced = False  # a partial-sum Linear came: the rest runs whole on the sink
    for si, (a, b) in enumerate(spans):
        first, last = layers[a], layers[b]
        name = (first.name, last.name)
        if reduced:
            segs.append(Segment(*name, "whole", (Part(cluster.sink),)))
            continue
        if stem in ("source", "strips") and si == 0 and not any(_grouped(l) for l in layers[a : b + 1]):
            if stem == "strips":
                if not spatial_ok(graph, a, b)[0] or len(last.out_shape) != 3:
                    return []
                _, h, w = last.out_shape
                rows = proportional(h, [s for _, s in who])
                segs.append(Segment(*name, "spatial", tuple(Part(d, rows=r, cols=(0, w)) for (d, _), r in zip(who, rows) if r)))
            else:
                segs.append(Segment(*name, "whole", (Part(cluster.source),)))
            split_before = False
            continue
        if first.kind == "linear" and split_before and len(segs[-1].parts) > 1:
            prev = segs[-1].parts
            fin, cprev = first.in_shapes[0][0], layers[a - 1].out_shape[0]
            parts = tuple(Part(p.device, inputs=(p.channels[0] * fin // cprev, p.channels[1] * fin // cprev)) for p in prev)
            segs.append(Segment(first.name, first.name, "input", parts))
            if b > a:
                segs.append(Segment(layers[a + 1].name, last.name, "whole", (Part(cluster.sink),)))
            reduced = True
            continue
        cout = _channels(last.out_shape)
        rs = _ranges(cout, who, units if cout % (units or 1) == 0 else None) if cout >= 2 and cuttable(graph, a, b)[0] else []
        if len(rs) > 1:
            segs.append(Segment(*name, "channel", tuple(Part(d, channels=r) for d, r in rs)))
            split_before = True
        else:
            segs.append(Segment(*name, "whole", (Part(cluster.sink),)))
            split_before = False
    return segs


@register("decnn", "DeCNN: channel groups of a decoupled model per device, all-to-all at shuffles, FC split by input "
                   "(naive channel split on other models)", options=DecnnOptions)
def plan_decnn(graph: LayerGraph, cluster, cost, opts: DecnnOptions):
    g = opts.groups if opts.groups is not None else model_groups(graph)
    units = g if g > 1 else None
    who = _split(cluster, units)
    stems = ("split", "source", "strips") if opts.stem == "auto" else (opts.stem,)
    best = None
    for stem in stems:
        segs = _segments(graph, cluster, units, who, stem)
        if not segs:
            if opts.stem == "strips":
                raise PlanError(f"decnn: the first layers of {graph.spec} are not all spatially local; "
                                "--stem strips cannot cut them in rows (use split, source or auto)")
            continue
        plan = make(graph, cluster, segs, "decnn", stem=stem, groups=g)
        t = evaluate(plan, graph, cluster, cost)
        if best is None or t < best[0]:
            best = (t, plan)
    return best[1]
