"""``dads`` (Hu et al., INFOCOM 2019): a minimum s-t cut of the DAG between the source and the fastest other device.

:func:`dads_cut` is the numeric core (a pure function of arrays, tested against brute force);
:func:`dads_arrays` adapts a graph and cluster to it.
"""

from __future__ import annotations

import numpy as np

from edgeslice.graph.layer import INPUT, LayerGraph
from edgeslice.planners import register
from edgeslice.planners._shared.common import (
    fastest,
    layer_times,
    make,
    whole_segments,
)
from edgeslice.planners._shared.milp import Rows
from edgeslice.planners._shared.tables import _all_on, _transfer_s
from edgeslice.planners.options import NoOptions
from edgeslice.program.lower import lower
from edgeslice.program.memory import fits, layer_activation_bytes


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


def dads_cut_memory(n: int, edges, local_t, edge_t, up_t, down_out_t: float, *, w, a, cap_local: float,
                    cap_edge: float, up_in: float = 0.0, output: int | None = None,
                    keep_out_t: float = 0.0) -> tuple[float, frozenset] | None:
    """:func:`dads_cut`'s objective under each side's memory capacity, as a MILP (HiGHS via scipy).

    ``w[v]`` bytes of node ``v``'s weights, ``a[v]`` of its working set (note
    *resident* in :mod:`edgeslice.program.memory`): the local side may hold
    ``Σ w·(1 − y) + max a·(1 − y) ≤ cap_local``, the edge ``Σ w·y + max a·y ≤
    cap_edge`` (``y[v] = 1``: on the edge).  ``z[u] ≥ y[v] − y[u]`` marks a
    local tensor uploaded (once) for an edge reader, ``y[u] ≤ y[v]`` keeps data
    flowing local → edge.  Returns ``(cost, on_edge)`` or None when nothing fits.

    Example (:func:`dads_cut`'s; the edge too small for node 2, which the local side cannot then hand on)::

        >>> args = (3, [(-1, 0), (0, 1), (1, 2)], [1, 5, 5], [1, 1, 1], [0.5, 0.1, 0.1], 0.1)
        >>> dads_cut_memory(*args, up_in=2.0, w=[1, 1, 5], a=[0, 0, 0], cap_local=10, cap_edge=4)
        (11.0, frozenset())
        >>> cost, edge = dads_cut_memory(*args, up_in=2.0, w=[1, 1, 5], a=[0, 0, 0], cap_local=5, cap_edge=10)
        >>> round(cost, 6), sorted(edge)
        (3.6, [1, 2])
    """
    out = n - 1 if output is None else output
    consumers: dict[int, set[int]] = {}
    for u, v in edges:
        consumers.setdefault(int(u), set()).add(int(v))
    ups = sorted(consumers)  # z per uploaded tensor (u = -1: the input)
    Y, Z, PL, PE = 0, n, n + len(ups), n + len(ups) + 1
    N = PE + 1
    c = np.zeros(N)
    c[:n] = np.asarray(edge_t, float) - np.asarray(local_t, float)
    c[Y + out] += down_out_t - keep_out_t
    for k, u in enumerate(ups):
        c[Z + k] = up_in if u < 0 else float(up_t[u])
    rows = Rows(N)
    row = rows.add

    for k, u in enumerate(ups):
        for v in consumers[u]:
            row([(Z + k, 1.0), (Y + v, -1.0)] + ([(Y + u, 1.0)] if u >= 0 else []), 0.0, np.inf)
            if u >= 0:
                row([(Y + v, 1.0), (Y + u, -1.0)], 0.0, np.inf)  # no edge → local flow
    w, a = np.asarray(w, float), np.asarray(a, float)
    row([(Y + v, -w[v]) for v in range(n)] + [(PL, 1.0)], -np.inf, cap_local - w.sum())
    row([(Y + v, w[v]) for v in range(n)] + [(PE, 1.0)], -np.inf, cap_edge)
    for v in range(n):
        if a[v] > 0:
            row([(PL, 1.0), (Y + v, a[v])], a[v], np.inf)
            row([(PE, 1.0), (Y + v, -a[v])], 0.0, np.inf)
    x = rows.solve(c, integer=n, upper=np.r_[np.ones(n + len(ups)), np.inf, np.inf])
    if x is None:
        return None
    on_edge = frozenset(v for v in range(n) if x[Y + v] > 0.5)
    return dads_cost(n, edges, local_t, edge_t, up_t, down_out_t, on_edge, up_in=up_in, output=out,
                     keep_out_t=keep_out_t), on_edge


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
def plan_dads(graph: LayerGraph, cluster, cost, opts: NoOptions):
    src = cluster.source
    if len(cluster.devices) == 1:
        return _all_on(graph, cluster, src, "dads")
    edge = fastest(cluster, exclude=src).name
    arrays = dads_arrays(graph, cluster, cost, edge)
    _, on_edge = dads_cut(**arrays)
    per_layer = [edge if i in on_edge else src for i in range(len(graph.layers))]
    plan = make(graph, cluster, whole_segments(graph, per_layer), "dads")
    if fits(lower(plan, graph), graph, cluster):
        return plan
    # the cut does not fit the memory_mb of one side: the same objective under both sides' capacities, exactly
    res = dads_cut_memory(**arrays, w=[l.param_bytes for l in graph.layers],
                          a=[layer_activation_bytes(graph, l.name) for l in graph.layers],
                          cap_local=cluster.device(src).memory_mb * 1e6, cap_edge=cluster.device(edge).memory_mb * 1e6)
    if res is None:
        return plan  # make_plan refuses it, naming the device
    per_layer = [edge if i in res[1] else src for i in range(len(graph.layers))]
    return make(graph, cluster, whole_segments(graph, per_layer), "dads")
