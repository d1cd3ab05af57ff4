"""The HVPM dynamic programme: a shortest path over (boundary, layout) states, on arrays.

A pure function of arrays (DESIGN.md style rule 2), kept apart from the
adapter that builds the arrays from a graph, a cluster and a cost model
(:mod:`edgeslice.planners.hybrid.space`), and tested against brute force on
random tables.

States are numbered globally; ``boundary[s]`` is the boundary state ``s``
belongs to.  Edge ``e`` goes from ``src[e]`` to ``dst[e]`` with
``boundary[src[e]] < boundary[dst[e]]`` (a segment moves forward) and costs
``w[e]`` seconds (``inf``: impossible).  The path starts in state ``start``
at time 0 and ends in any state ``s`` of the last boundary, paying
``final[s]`` more (delivering the output to the sink).  Because every edge
moves forward, processing the edges by the boundary they reach is a
topological order: each boundary's states are final before any edge leaves
them.  O(E log E).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Path(NamedTuple):
    """The cheapest path: its cost and the edges it takes, first to last (empty: no finite path)."""

    value: float
    edges: tuple[int, ...]


def layout_dp(boundary, src, dst, w, start: int, final) -> Path:
    """The cheapest path from ``start`` through the edges to a state of the last boundary (see the module docstring).

    ``boundary`` (one entry per state), ``src``, ``dst``, ``w`` (one entry per
    edge) and ``final`` (one entry per state; used for the states of the last
    boundary, ``inf`` elsewhere or where the output cannot be delivered).
    Ties go to the edge listed first.

    Example (two boundaries after the start; the direct edge is dearer than the two-step path)::

        >>> boundary = [0, 1, 1, 2]
        >>> p = layout_dp(boundary, src=[0, 0, 1, 2, 0], dst=[1, 2, 3, 3, 3], w=[1.0, 0.5, 1.0, 2.0, 2.5],
        ...               start=0, final=[np.inf, np.inf, np.inf, 0.1])
        >>> round(p.value, 6), p.edges
        (2.1, (0, 2))
    """
    boundary = np.asarray(boundary, dtype=np.int64)
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    w = np.asarray(w, dtype=float)
    final = np.asarray(final, dtype=float)
    n = len(boundary)
    if not (len(src) == len(dst) == len(w)) or len(final) != n:
        raise ValueError("layout_dp: src, dst and w need one entry per edge, final one per state")
    if len(src) and np.any(boundary[src] >= boundary[dst]):
        raise ValueError("layout_dp: every edge must move to a later boundary")
    best = np.full(n, np.inf)
    back = np.full(n, -1, dtype=np.int64)
    best[start] = 0.0
    reach = boundary[dst]
    order = np.argsort(reach, kind="stable")
    cuts = np.flatnonzero(np.diff(reach[order])) + 1
    for group in np.split(order, cuts) if len(order) else []:
        cand = best[src[group]] + w[group]
        pick = np.lexsort((group, cand, dst[group]))  # by target, then cost, then edge index
        g, c, t = group[pick], cand[pick], dst[group][pick]
        first = np.r_[True, t[1:] != t[:-1]]
        g, c, t = g[first], c[first], t[first]
        better = c < best[t]
        best[t[better]] = c[better]
        back[t[better]] = g[better]
    last = boundary == boundary.max()
    total = np.where(last, best + final, np.inf)
    s = int(np.argmin(total))
    value = float(total[s])
    if not np.isfinite(value):
        return Path(np.inf, ())
    edges = []
    while s != start:
        e = int(back[s])
        edges.append(e)
        s = int(src[e])
    return Path(value, tuple(reversed(edges)))
