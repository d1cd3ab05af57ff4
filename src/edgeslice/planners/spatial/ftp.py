"""``ftp``: DeepThings' fused tile partitioning; see :mod:`edgeslice.planners.spatial`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from edgeslice.errors import EdgesliceError, OptionError
from edgeslice.graph.layer import LayerGraph
from edgeslice.plan.plan import Part, Segment
from edgeslice.plan.validate import spatial_ok
from edgeslice.planners import register
from edgeslice.planners._shared.common import (
    evaluate,
    make,
)
from edgeslice.planners.options import PlannerOptions, option


def _grid_shape(n_devices: int) -> tuple[int, int]:
    """The most square N×M grid with N·M = number of devices (N ≥ M)."""
    m = int(math.isqrt(n_devices))
    while n_devices % m:
        m -= 1
    return n_devices // m, m


def _tail(graph: LayerGraph, start: int, device: str) -> list[Segment]:
    if start >= len(graph.layers):
        return []
    return [Segment(graph.layers[start].name, graph.layers[-1].name, "whole", (Part(device),))]


def _grid(graph: LayerGraph, last: int, n: int, m: int, devices) -> tuple[Part, ...]:
    _, h, w = graph.layers[last].out_shape
    rb = [h * i // n for i in range(n + 1)]
    cb = [w * j // m for j in range(m + 1)]
    return tuple(Part(devices[(i * m + j) % len(devices)], rows=(rb[i], rb[i + 1]), cols=(cb[j], cb[j + 1]))
                 for i in range(n) for j in range(m))


@dataclass(frozen=True)
class FtpOptions(PlannerOptions):
    """``n`` and ``m`` go together: both, or neither for the most square N×M grid with N·M = the number of devices."""

    n: int | None = option(None, "grid rows, with --m (neither: the most square grid, N*M = devices)")
    m: int | None = option(None, "grid columns, with --n")
    layers: int | None = option(None, "fused layers tiled (default: every prefix that can be tiled, the fastest kept)")

    def check(self) -> None:
        if (self.n is None) != (self.m is None):
            given, other = ("n", "m") if self.m is None else ("m", "n")
            raise OptionError(f"options 'n' and 'm' (--n, --m) go together: got {given}={getattr(self, given)} without "
                              f"{other}; give both, or neither for the most square grid over the devices")


@register("ftp", "DeepThings fused tile partitioning: N×M grid over the first L fused layers, rest on the gateway (--n --m --layers)",
          options=FtpOptions)
def plan_ftp(graph: LayerGraph, cluster, cost, opts: FtpOptions):
    n, m, layers = opts.n, opts.m, opts.layers
    if n is None or m is None:
        n, m = _grid_shape(len(cluster.devices))
    gateway = cluster.source
    if layers is not None:
        if not 1 <= layers <= len(graph.layers):
            raise EdgesliceError(f"ftp: --layers must be between 1 and {len(graph.layers)} for {graph.spec}, not {layers}")
        ok, why = spatial_ok(graph, 0, layers - 1)
        if not ok:
            raise EdgesliceError(f"ftp: the first {layers} layers of {graph.spec} cannot be tiled: {why}")
        ends = [layers - 1]
    else:
        ends = [e for e in range(len(graph.layers)) if spatial_ok(graph, 0, e)[0]]
    best = None
    for e in ends:
        _, h, w = graph.layers[e].out_shape
        if h < n or w < m:
            continue
        segs = [Segment(graph.layers[0].name, graph.layers[e].name, "spatial", _grid(graph, e, n, m, cluster.names))]
        plan = make(graph, cluster, segs + _tail(graph, e + 1, gateway), "ftp", n=n, m=m, layers=e + 1)
        t = evaluate(plan, graph, cluster, cost)
        if best is None or t < best[0]:
            best = (t, plan)
    if best is None:  # nothing can be tiled: the gateway runs it all
        return make(graph, cluster, _tail(graph, 0, gateway), "ftp", n=n, m=m)
    return best[1]
