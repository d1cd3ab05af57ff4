"""Spatial planners users know: DeepThings' FTP, MoDNN's speed-sized strips, AOFL's fusion DP.

- ``ftp`` (Zhao et al., DeepThings, TCAD 2018): an N×M grid of tiles over the
  first L fused layers, tiles spread round-robin over the devices, the rest of
  the model on the gateway (the source).  Without ``layers``, every prefix that
  can be tiled is tried and the fastest (simulated) kept.
- ``modnn`` (Mao et al., MoDNN, DATE 2017): every conv/pool layer (with the
  element-wise layers after it) is its own segment, cut into 1-D row strips
  sized by device speed; fully-connected layers are split by output neurons,
  also by speed.  No fusion: every layer exchanges its halo rows.
- ``aofl`` (Zhou et al., "Adaptive parallel execution of DNNs on heterogeneous
  edge devices", SEC 2019): dynamic programming over fusion points — which runs
  of layers to fuse into one strip-partitioned block — with strips sized by
  device speed, scoring each block by its slowest device's halo receive plus
  compute time; the non-spatial tail runs whole on the fastest device.
"""

from __future__ import annotations

import math

from edgeslice.errors import EdgesliceError
from edgeslice.graph.layer import LayerGraph
from edgeslice.plan.plan import Part, Segment
from edgeslice.plan.validate import cuttable, spatial_ok
from edgeslice.planners import register
from edgeslice.planners.common import cut_points, evaluate, fastest, make, proportional, speed
from edgeslice.program import regions as R
from edgeslice.program.lower import analyse_part, segment_envelope


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


@register("ftp", "DeepThings fused tile partitioning: N×M grid over the first L fused layers, rest on the gateway (--n --m --layers)")
def plan_ftp(graph: LayerGraph, cluster, cost, *, n: int | None = None, m: int | None = None, layers: int | None = None, **_):
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
        return make(graph, cluster, _tail(graph, 0, gateway), "ftp", n=n, m=m, layers=0)
    return best[1]


def _speed_parts(graph: LayerGraph, a: int, b: int, cluster) -> tuple[str, tuple[Part, ...]] | None:
    """Row strips (spatial) or output ranges (channel) of segment a..b sized by device speed."""
    weights = [speed(d) for d in cluster.devices]
    last = graph.layers[b]
    if len(last.out_shape) == 3 and spatial_ok(graph, a, b)[0]:
        _, h, w = last.out_shape
        parts = tuple(Part(d.name, rows=r, cols=(0, w)) for d, r in zip(cluster.devices, proportional(h, weights)) if r)
        return "spatial", parts
    if cuttable(graph, a, b)[0] and last.out_shape[0] >= 2 and not any(
            l.kind in ("flatten",) for l in graph.layers[a : b + 1]):
        parts = tuple(Part(d.name, channels=r) for d, r in zip(cluster.devices, proportional(last.out_shape[0], weights)) if r)
        return "channel", parts
    return None


@register("modnn", "MoDNN: each conv/pool/FC layer split by device speed (row strips / output neurons), no fusion")
def plan_modnn(graph: LayerGraph, cluster, cost, **_):
    groups, start = [], 0
    for i in range(1, len(graph.layers) + 1):
        if i == len(graph.layers) or graph.layers[i].kind in ("conv", "linear", "maxpool", "avgpool", "adaptive_avgpool",
                                                               "adaptive_maxpool", "cat", "binary", "flatten"):
            groups.append((start, i - 1))
            start = i
    segs = []
    for a, b in groups:
        cut = _speed_parts(graph, a, b, cluster) if graph.layers[a].flops else None
        if cut is None or len(cut[1]) < 2:
            segs.append(Segment(graph.layers[a].name, graph.layers[b].name, "whole", (Part(cluster.source),)))
        else:
            segs.append(Segment(graph.layers[a].name, graph.layers[b].name, cut[0], cut[1]))
    return make(graph, cluster, segs, "modnn")


def _strips(graph: LayerGraph, e: int, cluster) -> list[tuple[str, tuple[int, int]]]:
    _, h, _ = graph.layers[e].out_shape
    return [(d.name, r) for d, r in zip(cluster.devices, proportional(h, [speed(d) for d in cluster.devices])) if r]


def _block_cost(graph: LayerGraph, a: int, e: int, cluster, cost, held: dict | None) -> float:
    """Slowest device's (halo receive + compute) time for block a..e in speed-sized strips.

    ``held`` maps device → the region of the block's input it already holds
    (the previous block's strip on it); None means the input is all on the source.
    """
    env = segment_envelope(graph, a, e)
    last = graph.layers[e]
    devices = {d.name: d for d in cluster.devices}
    unit = graph.batch * graph.itemsize
    worst = 0.0
    for dev, rows in _strips(graph, e, cluster):
        req = {last.name: ((0, last.out_shape[0]), rows, (0, last.out_shape[2]))}
        steps, ext = analyse_part(graph, a, e, req, None, env)
        recv = 0
        for tensor, region in ext.items():
            have = None
            if held is None:
                have = region if dev == cluster.source else None
            elif tensor in held.get(dev, {}):
                have = R.intersect(region, held[dev][tensor])
            recv += (R.volume(region) - R.volume(have)) * unit
        src = cluster.source if held is None else dev
        t = cost.task_overhead_s + cost.steps_time(graph, steps, devices[dev])
        if recv:
            peers = [n for n in devices if n != dev] if held is not None else [src]
            ser, lat = max((cost.transfer(recv, p, dev) for p in peers), key=lambda x: x[0] + x[1])
            t += ser + lat
        worst = max(worst, t)
    return worst


@register("aofl", "AOFL: dynamic programming over fusion points, strip-partitioned fused blocks sized by device speed")
def plan_aofl(graph: LayerGraph, cluster, cost, *, max_block: int = 8, **_):
    pts = [0] + cut_points(graph) + [len(graph.layers)]
    # block candidates between boundaries pts[i] .. pts[j] (layers pts[i] .. pts[j]-1)
    spatial_end = 0
    for j in range(1, len(pts)):
        if spatial_ok(graph, 0, pts[j] - 1)[0] or spatial_ok(graph, pts[j - 1], pts[j] - 1)[0]:
            spatial_end = j
        else:
            break
    best = {0: (0.0, [])}
    for j in range(1, spatial_end + 1):
        for i in range(max(0, j - max_block), j):
            if i not in best:
                continue
            a, e = pts[i], pts[j] - 1
            if not spatial_ok(graph, a, e)[0] or graph.layers[e].out_shape[1] < 2:
                continue
            held = None
            if i > 0:
                prev = graph.layers[a - 1]
                held = {d: {prev.name: ((0, prev.out_shape[0]), r, (0, prev.out_shape[2]))} for d, r in _strips(graph, a - 1, cluster)}
            c = best[i][0] + _block_cost(graph, a, e, cluster, cost, held)
            if j not in best or c < best[j][0]:
                best[j] = (c, best[i][1] + [(a, e)])
    tail_dev = fastest(cluster).name
    candidates = []
    for j, (_, blocks) in best.items():
        segs = [Segment(graph.layers[a].name, graph.layers[e].name, "spatial",
                        tuple(Part(d, rows=r, cols=(0, graph.layers[e].out_shape[2])) for d, r in _strips(graph, e, cluster)))
                for a, e in blocks]
        segs += _tail(graph, pts[j], tail_dev)
        candidates.append(make(graph, cluster, segs, "aofl", max_block=max_block))
    # the DP chose the best blocks for every split between the strip part and the tail; simulate to pick the split
    return min(candidates, key=lambda p: evaluate(p, graph, cluster, cost))
