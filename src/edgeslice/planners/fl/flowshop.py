"""The FL fast time model and Minimizing Waiting (Zhou et al., TPDS 2023).

**The time model** (note *fl-time*).  A Plan of this shape is a chain of
stages that never overlap: a whole segment costs ``task overhead + Σ layer
times`` plus the transfer of the one tensor crossing into it; a block costs
the time from "input ready on ``h_in``" to "every path's output on
``h_out``".  Inside a block, in the Program order the simulator and the
runtime both follow: each path's input region (halo included) is uploaded
``h_in → d`` over that link, one transfer at a time in path order; device
``d`` computes its paths in path order as their inputs arrive; then each
path's output goes ``d → h_out``, one at a time in path order, after every
upload of the block on that link.  Different devices and links run in
parallel, so the block time is the maximum over devices ``d`` of the finish
time of ``d``'s *group* of paths: a flow shop upload → compute → download.
:func:`block_time` computes it exactly as the simulator does (tested equal to
``lower`` + ``simulate`` to 1e-9 relative on switched links without a
bandwidth trace); with a bandwidth trace or a shared medium it is an
approximation, and the planners always pick their final answer with the
simulator.

**Minimizing Waiting** (note *mw*).  Per group, the order of paths is chosen
among Johnson orders: Johnson's rule is optimal for two machines (upload →
compute when the output stays on that device; compute → download for the
device that holds the input); for the three-machine case (upload → compute →
download) the best of four Johnson orders (the pairs ``(a, b)``, ``(a, c)``,
``(a+b, b+c)`` — Campbell–Dudek–Smith — and ``(a, b+c)``) is taken.
Johnson's relative order of two jobs does not depend on the other jobs, so one
global ranking per device restricted to any subset is the subset's Johnson
order — which lets :func:`block_times` evaluate thousands of assignments at
once.
"""

from __future__ import annotations

import numpy as np

from edgeslice.planners.fl.space import BlockPaths


def johnson(a, b) -> list[int]:
    """Johnson's rule for the two-machine flow shop: jobs with ``a ≤ b`` by ``a`` ascending, then the rest by ``b`` descending.

    Minimises the makespan of jobs that each take ``a[i]`` on machine 1 and
    then ``b[i]`` on machine 2 (Johnson 1954).  Ties keep index order.

    >>> johnson([3, 1, 4], [2, 5, 4])
    [1, 2, 0]
    """
    n = len(a)
    first = sorted((i for i in range(n) if a[i] <= b[i]), key=lambda i: (a[i], i))
    second = sorted((i for i in range(n) if a[i] > b[i]), key=lambda i: (-b[i], i))
    return first + second


def flowshop_makespan(order, a, b, c=None, lag1: float = 0.0, lag2: float = 0.0, start2: float = 0.0) -> float:
    """Makespan of jobs in ``order`` through machines 1 → 2 (→ 3), each machine one job at a time.

    ``lag1`` delays a job between machines 1 and 2, ``lag2`` after machine 3
    (a link's latency); machine 3 is free from ``start2`` on.
    """
    t1 = t2 = 0.0
    t3 = start2
    fin = 0.0
    for i in order:
        t1 += a[i]
        t2 = max(t2, t1 + lag1) + b[i]
        if c is None:
            fin = max(fin, t2)
        else:
            t3 = max(t3, t2) + c[i]
            fin = max(fin, t3 + lag2)
    return fin


def _group_variants(bp: BlockPaths, g: int, h_in: int, h_out: int) -> list[list[int]]:
    """Global Johnson rankings of all paths for group ``g`` (restrict to the group's paths)."""
    P = bp.n
    a = bp.up[:, h_in, g] if g != h_in else None
    b = bp.comp[:, g]
    c = bp.down[:, g, h_out] if g != h_out else None
    if a is None and c is None:
        return [list(range(P))]
    if a is None:
        return [johnson(b, c)]
    if c is None:
        return [johnson(a, b)]
    cands = [johnson(a, b), johnson(a, c), johnson(a + b, b + c), johnson(a, b + c)]
    out = []
    for o in cands:
        if o not in out:
            out.append(o)
    return out


def group_finish(bp: BlockPaths, members, g: int, h_in: int, h_out: int, order, start2: float = 0.0) -> float:
    """Finish time (outputs on ``h_out``) of the paths ``members`` on device ``g`` processed in ``order``."""
    seq = [p for p in order if p in members]
    if not seq:
        return 0.0
    a = bp.up[:, h_in, g] if g != h_in else np.zeros(bp.n)
    lag1 = bp.lat[h_in, g] if g != h_in else 0.0
    c = bp.down[:, g, h_out] if g != h_out else None
    return flowshop_makespan(seq, a, bp.comp[:, g], c, lag1, bp.lat[g, h_out] if c is not None else 0.0, start2)


def block_time(bp: BlockPaths, assign, h_in: int, h_out: int, *, shared: bool = False) -> tuple[float, list[int]]:
    """Block time and path order (Minimizing Waiting) for one assignment of paths to devices.

    On switched links each device's group is ordered by the best of its
    Johnson orders (note *mw*) and the block ends when the slowest group's
    outputs are on ``h_out``.  On a shared medium every transfer uses one
    channel: the groups' orders are concatenated and the block is simulated
    as one list schedule (:func:`simulate_block`).
    """
    assign = list(assign)
    groups: dict[int, set] = {}
    for p, d in enumerate(assign):
        groups.setdefault(int(d), set()).add(p)
    orders = []
    worst = 0.0
    ups_to_out = sum(bp.up[p, h_in, h_out] for p in groups.get(h_out, ())) if h_out != h_in else 0.0
    for g in sorted(groups):
        start2 = ups_to_out if (g == h_in and h_out != h_in) else 0.0
        best = None
        for o in _group_variants(bp, g, h_in, h_out):
            f = group_finish(bp, groups[g], g, h_in, h_out, o, start2)
            if best is None or f < best[0]:
                best = (f, [p for p in o if p in groups[g]])
        worst = max(worst, best[0])
        orders.append(best[1])
    order = [p for o in orders for p in o]
    if shared:
        return simulate_block(bp, assign, order, h_in, h_out, shared=True), order
    return worst, order


def simulate_block(bp: BlockPaths, assign, order, h_in: int, h_out: int, *, shared: bool = False) -> float:
    """Block time by list scheduling in Program order (uploads and computes by part, then outputs by part).

    The reference the fast evaluators are tested against; it is what
    ``_simulate_one`` does on the block's tasks.
    """
    free: dict = {}
    ready = {}

    def link(x, y):
        return "medium" if shared else (x, y)

    for p in order:
        d = int(assign[p])
        arr = 0.0
        if d != h_in:
            k = link(h_in, d)
            s = free.get(k, 0.0)
            free[k] = s + bp.up[p, h_in, d]
            arr = free[k] + bp.lat[h_in, d]
        st = max(free.get(("dev", d), 0.0), arr)
        free[("dev", d)] = ready[p] = st + bp.comp[p, d]
    fin = 0.0
    for p in order:
        d = int(assign[p])
        if d == h_out:
            fin = max(fin, ready[p])
            continue
        k = link(d, h_out)
        s = max(ready[p], free.get(k, 0.0))
        free[k] = s + bp.down[p, d, h_out]
        fin = max(fin, free[k] + bp.lat[d, h_out])
    return fin


def johnson_many(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """:func:`johnson` for every row of ``a`` and ``b`` (``K × P``) at once: a ``K × P`` array of orders (ties in index order)."""
    first = a <= b
    return np.lexsort((np.where(first, a, -b), ~first), axis=-1)


def block_times(bp: BlockPaths, A: np.ndarray, h_in: int, h_out: int) -> np.ndarray:
    """:func:`block_time` for every row of ``A`` (assignments, ``N × P``) at once, switched links."""
    return block_times_many(bp.comp[None], bp.up[None, :, h_in, :], bp.down[None, :, :, h_out], bp.lat,
                            np.asarray(A)[None], h_in, h_out)[0]


def block_times_many(comp: np.ndarray, up: np.ndarray, down: np.ndarray, lat: np.ndarray, A: np.ndarray,
                     h_in: int, h_out: int) -> np.ndarray:
    """:func:`block_time` for ``K`` blocks with ``P`` paths each and ``N`` assignments per block.

    ``comp[k, p, d]``: path ``p`` of block ``k`` on device ``d``;
    ``up[k, p, d]``: its upload ``h_in → d``; ``down[k, p, d]``: its output's
    download ``d → h_out`` (all ``K × P × D``); ``A``: ``K × N × P``
    assignments.  Returns ``K × N`` times, switched links.  Each device's
    group is run in each of its Johnson orders (note *mw*; one global ranking
    per block, restricted to the group by masking) as a vectorised flow shop,
    and the best order kept; the block ends with its slowest group.
    """
    A = np.asarray(A)
    K, N, P = A.shape
    D = comp.shape[2]
    worst = np.zeros((K, N))
    zero = np.zeros((K, N))
    ups_to_out = ((A == h_out) * up[:, None, :, h_out]).sum(axis=2) if h_out != h_in else zero
    At = np.ascontiguousarray(A.transpose(0, 2, 1))  # K × P × N
    kk = np.arange(K)[:, None]
    for g in range(D):
        Mt = At == g
        if not Mt.any():
            continue
        start2 = ups_to_out if (g == h_in and h_out != h_in) else zero
        a, b, c = up[:, :, g], comp[:, :, g], down[:, :, g]
        lag1 = lat[h_in, g] if g != h_in else 0.0
        lag2 = lat[g, h_out] if g != h_out else 0.0
        if g == h_in and g == h_out:
            orders = [np.broadcast_to(np.arange(P), (K, P))]
        elif g == h_in:
            orders = [johnson_many(b, c)]
        elif g == h_out:
            orders = [johnson_many(a, b)]
        else:
            orders = [johnson_many(a, b), johnson_many(a, c), johnson_many(a + b, b + c), johnson_many(a, b + c)]
        best = None
        for o in orders:
            ao, bo, co = (np.take_along_axis(x, o, axis=1) for x in (a, b, c))
            Mo = Mt[kk, o]  # K × P × N: whether the path at each position of the order is in the group
            t1 = np.zeros((K, N))
            t2 = np.zeros((K, N))
            t3 = start2.copy()
            fin = np.zeros((K, N))
            for q in range(P):
                m = Mo[:, q, :]
                if g != h_in:
                    n1 = t1 + ao[:, q, None]
                    t1 = np.where(m, n1, t1)
                    n2 = np.maximum(t2, n1 + lag1) + bo[:, q, None]
                else:
                    n2 = t2 + bo[:, q, None]
                t2 = np.where(m, n2, t2)
                if g != h_out:
                    n3 = np.maximum(t3, n2) + co[:, q, None]
                    t3 = np.where(m, n3, t3)
                    fin = np.where(m, np.maximum(fin, n3 + lag2), fin)
                else:
                    fin = np.where(m, np.maximum(fin, n2), fin)
            best = fin if best is None else np.minimum(best, fin)
        worst = np.maximum(worst, best)
    return worst
