"""Exact planners over whole segments: Neurosurgeon, a layer-wise DP, DADS min-cut, brute force.

Each planner places *whole* layers on devices (no spatial or channel cuts) and
is optimal over its own space for its own objective:

``neurosurgeon`` (Kang et al., ASPLOS 2017)
    the best single split point: layers ``[0, k)`` on the source, ``[k, L)`` on
    one server, every ``k`` and every server tried and scored with
    :func:`~edgeslice.planners.common.evaluate` (lower + simulate), so it is
    exact over its space for any model, DAGs included.  Ties: smaller ``k``,
    then the server listed first.
``layerwise``
    an optimal chain partition by dynamic programming (:func:`chain_dp`) over
    "which device runs layer ``i``", devices reusable, consecutive layers on one
    device forming one segment (one task overhead).  The latency objective is
    exactly what the simulator predicts for a *chain* model (every layer reads
    only the previous one) without a bandwidth trace (note *chain-latency*
    below); on a DAG it charges all the bytes crossing a boundary as one
    transfer at that boundary, an approximation (a skip tensor really travels
    once, straight to its reader).  ``objective="throughput"`` minimises the
    bottleneck of a pipeline instead: the slowest stage (on distinct devices)
    or link serialisation; at most ``max_devices`` = 6 devices are considered,
    the fastest, always including the source.  On a ``shared`` medium the transfers of
    different stages would add up; the DP still takes their maximum.
``dads`` (Hu et al., INFOCOM 2019)
    a minimum s-t cut (:func:`dads_cut`) between the source (local) and the
    fastest other device (edge): each layer local or edge, minimising the *sum*
    of compute and upload times (DADS's light-load model, not the simulated
    makespan).  Data may only flow local → edge, so the plan is valid even
    when local and edge runs alternate in topological order.
``bruteforce``
    every assignment of layers to devices, each scored with ``evaluate``;
    refuses with an :class:`~edgeslice.errors.EdgesliceError` when
    ``devices ** layers`` exceeds ``limit`` (default 200 000).  For tests and
    tiny cases.

The numeric cores (:func:`chain_dp`, :func:`dads_cut`) are pure functions of
arrays, tested against brute force on random tables (DESIGN.md style rule 2);
the planner functions only adapt the graph, cluster and cost model to arrays
(:func:`chain_arrays`) and build the Plan.

Note *chain-latency*.  For a chain model placed as whole segments the
simulator runs one task per segment, one after another: the input crosses from
the source to the first segment's device (if different), each segment costs
``task_overhead + Σ layer times`` on its device, each boundary between devices
costs ``bytes / rate + latency`` of the one tensor crossing it, and the output
crosses to the sink.  Nothing overlaps, so the latency is the plain sum that
:func:`chain_dp` minimises.

Example::

    >>> from edgeslice.cluster.load import resolve_cluster
    >>> from edgeslice.cost import ClusterCost
    >>> from edgeslice.graph import trace
    >>> from edgeslice.planners import make_plan
    >>> from edgeslice.planners.common import evaluate
    >>> g, _ = trace("alexnet", (3, 64, 64))
    >>> c = resolve_cluster("iot-edge")
    >>> best = evaluate(make_plan("layerwise", g, c), g, c, ClusterCost(c))
    >>> best <= evaluate(make_plan("neurosurgeon", g, c), g, c, ClusterCost(c)) + 1e-12
    True
"""

from __future__ import annotations

import itertools

import numpy as np

from edgeslice.errors import EdgesliceError
from edgeslice.graph.layer import INPUT, LayerGraph
from edgeslice.planners import register
from edgeslice.planners.common import crossing_bytes, evaluate, fastest, layer_times, make, speed, whole_segments

OBJECTIVES = ("latency", "throughput")
_REF_BYTES = float(1 << 20)  # probe size for turning cost.transfer into a rate


# ---------------------------------------------------------------------------
# numeric cores (pure functions of arrays)
# ---------------------------------------------------------------------------


def transfer_table(B, rate, lat, *, with_latency: bool = True) -> np.ndarray:
    """``X[k, a, b]``: seconds to move ``B[k]`` bytes from device ``a`` to ``b`` (0 when ``a == b``)."""
    B = np.asarray(B, dtype=float)
    rate = np.asarray(rate, dtype=float)
    lat = np.asarray(lat, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = B[:, None, None] / rate[None, :, :]
    if with_latency:
        x = x + lat[None, :, :]
    x = np.where(np.isnan(x), 0.0, x)
    d = rate.shape[0]
    x[:, np.arange(d), np.arange(d)] = 0.0
    return x


def chain_dp(T, B, rate, lat, overhead, src: int, sink: int, objective: str = "latency", *,
             allowed=None) -> tuple[float, np.ndarray]:
    """Optimal placement of a chain of layers on devices; returns ``(objective value, device per layer)``.

    ``T[i, d]`` seconds of layer ``i`` on device ``d``; ``B[k]`` bytes crossing
    the boundary before layer ``k`` (``B[0]`` the input, ``B[L]`` the output);
    ``rate[a, b]`` bytes/s and ``lat[a, b]`` seconds between devices;
    ``overhead`` seconds per segment (a scalar or one per device); the input is
    on ``src`` and the output is wanted on ``sink``.  ``allowed`` (booleans per
    device) limits which devices may run layers (default all).

    ``objective="latency"`` minimises ``x(B[0], src→d_first) + Σ_segments
    (overhead + Σ T) + Σ_boundaries x(B[k], d_prev→d_next) + x(B[L],
    d_last→sink)`` with ``x(b, a→c) = b / rate + lat`` between different
    devices and 0 on one device; a run of layers on one device is one segment
    and devices may be reused.  O(L·D²).

    ``objective="throughput"`` minimises the bottleneck of a pipeline: the
    maximum over stages of ``overhead + Σ T`` and over the links it uses
    (input, boundaries, output) of the serialisation time ``b / rate`` — a
    link's latency delays a request but does not limit the rate, as in the
    simulator.  Every stage is on a distinct device: DP over (layer, set of
    used devices, last device), O(2^D·D²·L²) with numpy over the L² part, so
    at most 12 allowed devices.

    Example::

        >>> T = np.array([[1.0, 0.1], [1.0, 0.1]])
        >>> rate = np.array([[np.inf, 10.0], [10.0, np.inf]])
        >>> lat = np.zeros((2, 2))
        >>> v, dev = chain_dp(T, [20.0, 1.0, 1.0], rate, lat, 0.0, 0, 0)
        >>> round(v, 6), dev.tolist()  # layer 0 local (the input is big), layer 1 on the fast device
        (1.3, [0, 1])
    """
    T = np.asarray(T, dtype=float)
    L, D = T.shape
    if L == 0:
        raise ValueError("chain_dp: no layers")
    B = np.asarray(B, dtype=float)
    if B.shape != (L + 1,):
        raise ValueError(f"chain_dp: B must have L + 1 = {L + 1} entries, not {B.shape}")
    ov = np.broadcast_to(np.asarray(overhead, dtype=float), (D,)).astype(float)
    ok = np.ones(D, dtype=bool) if allowed is None else np.asarray(allowed, dtype=bool)
    if not ok.any():
        raise ValueError("chain_dp: no allowed device")
    if objective == "latency":
        return _chain_latency(T, transfer_table(B, rate, lat), ov, ok, src, sink)
    if objective == "throughput":
        return _chain_throughput(T, transfer_table(B, rate, lat, with_latency=False), ov, ok, src, sink)
    raise ValueError(f"chain_dp: objective must be one of {OBJECTIVES}, not {objective!r}")


def _chain_latency(T, X, ov, ok, src, sink):
    L, D = T.shape
    inf = np.inf
    cost = np.full((L, D), inf)
    back = np.zeros((L, D), dtype=np.int64)
    cost[0] = np.where(ok, X[0, src] + ov + T[0], inf)
    diag = np.arange(D)
    for k in range(1, L):
        # M[d, e]: best cost of layers [0, k) ending on d, then layer k on e (T[k, e] added below)
        M = cost[k - 1][:, None] + X[k] + ov[None, :]
        M[diag, diag] = cost[k - 1]  # same device: the segment continues, no overhead, no transfer
        M[:, ~ok] = inf
        back[k] = np.argmin(M, axis=0)
        cost[k] = M[back[k], diag] + T[k]
    final = cost[L - 1] + X[L, :, sink]
    d = int(np.argmin(final))
    value = float(final[d])
    dev = np.zeros(L, dtype=np.int64)
    for k in range(L - 1, -1, -1):
        dev[k] = d
        d = int(back[k, d])
    return value, dev


def _chain_throughput(T, X, ov, ok, src, sink):
    L, D = T.shape
    cand = [int(d) for d in np.flatnonzero(ok)]
    m = len(cand)
    if m > 12:
        raise ValueError(f"chain_dp: the throughput objective handles at most 12 devices, not {m}")
    inf = np.inf
    P = np.vstack([np.zeros(D), np.cumsum(T, axis=0)])  # P[j, d] = Σ T[:j, d]
    kk, jj = np.meshgrid(np.arange(L + 1), np.arange(L + 1), indexing="ij")
    later = jj > kk
    # dp[(mask, e)] = (best bottleneck over [0, j) with the last stage ending at j on device e, parent k, parent d)
    dp: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for pe, e in enumerate(cand):
        v = np.maximum(X[0, src, e], ov[e] + P[:, e] - P[0, e])
        v[0] = inf
        dp[(1 << pe, pe)] = (v, np.zeros(L + 1, dtype=np.int64), np.full(L + 1, -1, dtype=np.int64))
    stages = [np.where(later, ov[e] + P[None, :, e] - P[:, None, e], inf) for e in cand]  # stages[pe][k, j]
    for mask in range(1, 1 << m):  # adding a device makes the mask larger: increasing order is topological
        for pd in range(m):
            st = dp.get((mask, pd))
            if st is None:
                continue
            vec = st[0]
            if not np.isfinite(vec[:L]).any():
                continue
            d = cand[pd]
            for pe in range(m):
                if mask >> pe & 1:
                    continue
                e = cand[pe]
                c = np.maximum(np.maximum(vec, X[:, d, e])[:, None], stages[pe])  # c[k, j]
                ks = np.argmin(c, axis=0)
                best = c[ks, np.arange(L + 1)]
                key = (mask | 1 << pe, pe)
                old = dp.get(key)
                if old is None:
                    dp[key] = (best, ks, np.full(L + 1, pd, dtype=np.int64))
                else:
                    better = best < old[0]
                    dp[key] = (np.where(better, best, old[0]), np.where(better, ks, old[1]),
                               np.where(better, pd, old[2]))
    best_key, value = None, inf
    for (mask, pe), (vec, _, _) in sorted(dp.items()):
        v = max(vec[L], X[L, cand[pe], sink])
        if v < value:
            best_key, value = (mask, pe), v
    dev = np.zeros(L, dtype=np.int64)
    mask, pe, j = best_key[0], best_key[1], L
    while j > 0:
        _, ks, pds = dp[(mask, pe)]
        k, pd = int(ks[j]), int(pds[j])
        dev[k:j] = cand[pe]
        mask &= ~(1 << pe)
        j, pe = k, pd
    return float(value), dev


def dads_cut(n: int, edges, local_t, edge_t, up_t, down_out_t: float, *, up_in: float = 0.0,
             output: int | None = None, keep_out_t: float = 0.0) -> tuple[float, frozenset]:
    """DADS: each of ``n`` DAG nodes local or edge, minimising the sum of times; returns ``(cost, on_edge)``.

    ``edges`` are ``(u, v)`` pairs, ``u`` made before ``v`` reads it, ``u = -1``
    the model input (which lives on the local device).  The cost of an
    assignment is ``Σ local_t[v]`` over local nodes + ``Σ edge_t[v]`` over edge
    nodes + ``up_t[u]`` for every local ``u`` read by at least one edge node
    (a tensor is uploaded once, however many edge consumers it has) +
    ``up_in`` when an edge node reads the input + ``down_out_t`` when the
    ``output`` node (default ``n - 1``) is on the edge, ``keep_out_t`` when it
    is local.  No edge node may feed a local one (data flows local → edge only).

    Solved as one minimum s-t cut (networkx): node → sink edges carry the
    local time, source → node edges the edge time, a tensor with several
    consumers gets an auxiliary node so it is paid once, and infinite reverse
    edges forbid edge → local flow.  Capacities are scaled to integers
    (networkx's max-flow is exact only on integers), so the cut is optimal to
    about 1e-15 of the total; the cost returned is recomputed exactly.

    Example::

        >>> cost, edge = dads_cut(3, [(-1, 0), (0, 1), (1, 2)], [1, 5, 5], [1, 1, 1], [0.5, 0.1, 0.1], 0.1, up_in=2.0)
        >>> round(cost, 6), sorted(edge)
        (3.6, [1, 2])
    """
    import networkx as nx

    local_t = np.asarray(local_t, dtype=float)
    edge_t = np.asarray(edge_t, dtype=float)
    up_t = np.asarray(up_t, dtype=float)
    out = n - 1 if output is None else output
    if n == 0:
        return 0.0, frozenset()
    consumers: dict[int, set[int]] = {}
    for u, v in edges:
        if not -1 <= u < n or not 0 <= v < n or u == v:
            raise ValueError(f"dads_cut: bad edge ({u}, {v}) for {n} nodes")
        consumers.setdefault(int(u), set()).add(int(v))
    cap: dict[tuple, float] = {}
    infinite: set[tuple] = set()

    def add(a, b, c):
        if c > 0:
            cap[(a, b)] = cap.get((a, b), 0.0) + float(c)

    S, Tn = "s", "t"
    for v in range(n):
        add(S, v, edge_t[v])  # cut when v is on the edge
        add(v, Tn, local_t[v])  # cut when v is local
    add(S, out, down_out_t)
    add(out, Tn, keep_out_t)
    for u, cs in sorted(consumers.items()):
        head = S if u < 0 else u
        up = up_in if u < 0 else up_t[u]
        if u >= 0:
            for v in cs:
                infinite.add((v, u))  # v local while u on the edge is forbidden
        if len(cs) == 1:
            add(head, next(iter(cs)), up)
        else:
            a = ("aux", u)
            add(head, a, up)
            for v in cs:
                infinite.add((a, v))
    total = sum(cap.values())
    scale = 2.0 ** 50 / total if total > 0 else 1.0
    G = nx.DiGraph()
    G.add_nodes_from([S, Tn, *range(n)])
    for (a, b), c in cap.items():
        G.add_edge(a, b, capacity=int(round(c * scale)))
    for a, b in infinite:
        if G.has_edge(a, b):  # an edge that is also infinite: infinite wins
            del G[a][b]["capacity"]
        else:
            G.add_edge(a, b)
    _, (_, sink_side) = nx.minimum_cut(G, S, Tn)
    on_edge = frozenset(v for v in range(n) if v in sink_side)
    return dads_cost(n, edges, local_t, edge_t, up_t, down_out_t, on_edge, up_in=up_in, output=out,
                     keep_out_t=keep_out_t), on_edge


def dads_cost(n: int, edges, local_t, edge_t, up_t, down_out_t: float, on_edge, *, up_in: float = 0.0,
              output: int | None = None, keep_out_t: float = 0.0) -> float:
    """The :func:`dads_cut` objective of one assignment (``inf`` when an edge node feeds a local one)."""
    out = n - 1 if output is None else output
    e = set(on_edge)
    total = sum(float(edge_t[v]) if v in e else float(local_t[v]) for v in range(n))
    uploaded = set()
    for u, v in edges:
        if u >= 0 and u in e and v not in e:
            return float("inf")
        if v in e and (u < 0 or u not in e):
            uploaded.add(u)
    total += sum(up_in if u < 0 else float(up_t[u]) for u in sorted(uploaded))
    if n:
        total += down_out_t if out in e else keep_out_t
    return total


# ---------------------------------------------------------------------------
# adapters: graph / cluster / cost -> arrays
# ---------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------
# planners
# ---------------------------------------------------------------------------


@register("neurosurgeon", "Neurosurgeon: best single split point, layers [0,k) on the source and [k,L) on one server")
def plan_neurosurgeon(graph: LayerGraph, cluster, cost, **_):
    L = len(graph.layers)
    src = cluster.source
    servers = [n for n in cluster.names if n != src]
    best, best_t = None, np.inf
    for k in range(L + 1):
        for srv in servers if k < L else [src]:
            plan = make(graph, cluster, whole_segments(graph, [src] * k + [srv] * (L - k)), "neurosurgeon")
            t = evaluate(plan, graph, cluster, cost)
            if t < best_t:
                best, best_t = plan, t
    return best


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


def dads_arrays(graph: LayerGraph, cluster, cost, edge: str) -> dict:
    """The :func:`dads_cut` arguments for ``graph`` between the source and ``edge``."""
    src, sink = cluster.source, cluster.sink
    names = cluster.names
    T = layer_times(graph, cluster, cost)
    n = len(graph.layers)
    edges = []
    for v, l in enumerate(graph.layers):
        for u in dict.fromkeys(l.inputs):
            edges.append((-1 if u == INPUT else graph.index(u), v))
    in_bytes = graph.batch * graph.itemsize * int(np.prod(graph.input_shape))
    out = graph.index(graph.output)
    out_bytes = graph.layers[out].out_bytes
    return {
        "n": n, "edges": edges, "local_t": T[:, names.index(src)], "edge_t": T[:, names.index(edge)],
        "up_t": np.array([_transfer_s(cost, l.out_bytes, src, edge) for l in graph.layers]),
        "down_out_t": _transfer_s(cost, out_bytes, edge, sink), "up_in": _transfer_s(cost, in_bytes, src, edge),
        "output": out, "keep_out_t": _transfer_s(cost, out_bytes, src, sink),
    }


@register("dads", "DADS: minimum s-t cut of the DAG between the source and the fastest other device", exact=True)
def plan_dads(graph: LayerGraph, cluster, cost, **_):
    src = cluster.source
    if len(cluster.devices) == 1:
        return _all_on(graph, cluster, src, "dads")
    edge = fastest(cluster, exclude=src).name
    _, on_edge = dads_cut(**dads_arrays(graph, cluster, cost, edge))
    per_layer = [edge if i in on_edge else src for i in range(len(graph.layers))]
    return make(graph, cluster, whole_segments(graph, per_layer), "dads")


@register("bruteforce", "every assignment of whole layers to devices, simulated (small cases; --limit)", exact=True)
def plan_bruteforce(graph: LayerGraph, cluster, cost, *, limit: int = 200_000, **_):
    L, names = len(graph.layers), list(cluster.names)
    limit = int(limit)
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
        t = evaluate(plan, graph, cluster, cost)
        if t < best_t:
            best, best_t = plan, t
    return best
