"""The unit-chain DP: the optimal placement of a chain of units on devices.

One numeric core that ``layerwise``, ``nfl`` and the FL planners (through
:meth:`~edgeslice.planners.fl.space.FLSpace.dp`) and ``aofl`` call; pure functions of arrays,
tested against brute force on random tables (DESIGN.md style rule 2).

Note *chain-latency*.  For a chain model placed as whole segments the
simulator runs one task per segment, one after another: the input crosses from
the source to the first segment's device (if different), each segment costs
``task_overhead + Σ layer times`` on its device, each boundary between devices
costs ``bytes / rate + latency`` of the one tensor crossing it, and the output
crosses to the sink.  Nothing overlaps, so the latency is the plain sum that
:func:`chain_dp` minimises.
"""

from __future__ import annotations

import numpy as np

from edgeslice.planners._shared.milp import Rows

OBJECTIVES = ("latency", "throughput")


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
    """The latency objective: the unit-chain DP without blocks, one unit per layer."""
    sol = UnitChain(T, X, ov, src, sink).solve(allowed=ok)
    dev = np.zeros(T.shape[0], dtype=np.int64)
    for _, u, d in sol.choices:
        dev[u] = d
    return sol.value, dev


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


# ---------------------------------------------------------------------------
# the unit-chain DP with fused blocks (nfl, FL planners, aofl; layerwise's latency objective)
# ---------------------------------------------------------------------------


class ChainSolution:
    """The tables of one :meth:`UnitChain.solve`: the optimum, and the best way to reach any boundary."""

    def __init__(self, chain: "UnitChain", W, G, bw, bg):
        self._c, self.W, self.G, self._bw, self._bg = chain, W, G, bw, bg
        c = chain
        finalw = [W[c.U][d] + c.Xl[c.U][d][c.sink] for d in range(c.D)]
        dw = min(range(c.D), key=lambda d: (finalw[d], d))
        best, state = finalw[dw], ("W", dw)
        if G[c.U][c.sink] < best:
            best, state = G[c.U][c.sink], ("G", c.sink)
        self.value = float(best)
        self.choices = self._back(c.U, state) if best < np.inf else []

    def blocks_to(self, k: int, d: int) -> list:
        """The choices of the best solution whose block ends at boundary ``k`` delivering to device ``d``."""
        return self._back(k, ("G", d))

    def _back(self, k: int, state) -> list:
        src = self._c.src
        choices = []
        while k > 0:
            kind, d = state
            if kind == "G":
                i, hin, via_g = self._bg[(k, d)]
                choices.append(("block", i, k, hin, d))
                k = i
                state = ("S", src) if i == 0 else (("G", hin) if via_g else ("W", hin))
                continue
            choices.append(("whole", k - 1, d))
            p = self._bw[k][d]
            k -= 1
            state = ("S", src) if p == -3 else (("G", d) if p == -2 else ("W", p))
        choices.reverse()
        return choices


class UnitChain:
    """The unit-chain DP: place a chain of ``U`` units on ``D`` devices, some runs of units as fused blocks.

    ``T[u, d]`` seconds of unit ``u`` on device ``d``; ``X[k, a, b]`` seconds
    to move the tensor at boundary ``k`` (before unit ``k``; ``X[0]`` the
    input, ``X[U]`` the output) from ``a`` to ``b`` (0 when ``a == b``);
    ``ov[d]`` the overhead of a segment on ``d``; the input is on ``src`` and
    the output is wanted on ``sink``.  A run of consecutive whole units on one
    device is one segment (one overhead); devices may be reused.

    :meth:`solve` takes ``blocks[(i, j)]``: a ``D × D`` table ``t[h_in,
    h_out]`` of the time of units ``i..j-1`` run as one block reading its input
    on ``h_in`` and delivering its output to ``h_out`` (``inf`` where
    impossible), or None.  States: ``W[k, d]`` — the tensor at boundary ``k``
    made by an open whole segment on ``d``; ``G[k, d]`` — delivered by a block
    to ``d``, whose next whole unit must run there (a new segment).  A block
    reads ``W[i]`` (or the source at ``i = 0``); with ``adjacent=True`` also
    ``G[i]`` (a block right after a block, as AOFL's fused blocks are).
    ``forced[u]`` marks units that may only be inside a block; ``allowed[d]``
    limits the devices whole units may use.  O(U·D² + Σ blocks·D²), in plain
    Python lists: D is small, where numpy's per-call cost would dominate.

    Example (two units, the second much faster on device 1)::

        >>> T = np.array([[1.0, 1.0], [1.0, 0.1]])
        >>> X = np.array([[[0, 5.0], [5.0, 0]], [[0, 0.2], [0.2, 0]], [[0, 0.2], [0.2, 0]]])
        >>> sol = UnitChain(T, X, np.zeros(2), 0, 0).solve()
        >>> round(sol.value, 6), sol.choices
        (1.5, [('whole', 0, 0), ('whole', 1, 1)])
    """

    def __init__(self, T, X, ov, src: int, sink: int):
        T = np.asarray(T, dtype=float)
        self.U, self.D = T.shape
        self.src, self.sink = int(src), int(sink)
        X = np.asarray(X, dtype=float)
        ov = np.broadcast_to(np.asarray(ov, dtype=float), (self.D,))
        D = self.D
        self.XO = [[[(0.0 if a == b else float(X[k, a, b] + ov[b])) for b in range(D)] for a in range(D)]
                   for k in range(self.U + 1)]
        self.Tl, self.ovl, self.Xl = T.tolist(), ov.tolist(), X.tolist()

    def solve(self, blocks: dict | None = None, forced=None, *, allowed=None, adjacent: bool = False) -> ChainSolution:
        U, D = self.U, self.D
        inf = float("inf")
        XO, ov, X = self.XO, self.ovl, self.Xl
        T = self.Tl
        if allowed is not None:
            bad = [d for d in range(D) if not allowed[d]]
            T = [[inf if d in bad else v for d, v in enumerate(row)] for row in T]
        W = [[inf] * D for _ in range(U + 1)]
        G = [[inf] * D for _ in range(U + 1)]
        bw = [[-1] * D for _ in range(U + 1)]  # back pointer for W: previous device, -2 = from G, -3 = start
        ends: dict[int, list] = {}
        for (i, j), t in (blocks or {}).items():
            if t is not None:
                ends.setdefault(j, []).append((i, np.asarray(t).tolist()))
        bg: dict[tuple[int, int], tuple[int, int, bool]] = {}
        src = self.src
        for k in range(U + 1):
            for i, t in ends.get(k, ()):  # blocks ending at k
                Gk = G[k]
                for ho in range(D):
                    via_g = False
                    if i == 0:
                        v, hi = t[src][ho], src
                    else:
                        Wi = W[i]
                        v, hi = inf, -1
                        for h in range(D):
                            c = Wi[h] + t[h][ho]
                            if c < v:
                                v, hi = c, h
                        if adjacent:
                            Gi = G[i]
                            for h in range(D):
                                c = Gi[h] + t[h][ho]
                                if c < v:
                                    v, hi, via_g = c, h, True
                    if v < Gk[ho]:
                        Gk[ho] = v
                        bg[(k, ho)] = (i, hi, via_g)
            if k == U:
                break
            if forced is not None and forced[k]:
                continue
            Tk = T[k]
            if k == 0:
                for e in range(D):
                    W[1][e] = X[0][src][e] + ov[e] + Tk[e]
                    bw[1][e] = -3
                continue
            Wk, Gk, XOk, Wn, bn = W[k], G[k], XO[k], W[k + 1], bw[k + 1]
            for e in range(D):
                v, pv = inf, -1
                for d in range(D):
                    c = Wk[d] + XOk[d][e]
                    if c < v:
                        v, pv = c, d
                fg = Gk[e] + ov[e]
                if fg < v:
                    v, pv = fg, -2
                Wn[e] = v + Tk[e]
                bn[e] = pv
        return ChainSolution(self, W, G, bw, bg)


def chain_latency_milp(T, X, ov, src: int, sink: int, w, a, cap) -> tuple[float, np.ndarray] | None:
    """:func:`chain_dp`'s latency objective under a memory capacity per device, as a MILP (HiGHS via scipy).

    ``w[l]`` bytes of layer ``l``'s weights and ``a[l]`` bytes of its working
    set (note *resident* in :mod:`edgeslice.program.memory`); device ``d`` may
    hold ``Σ w[l]·x[l, d] + max_l a[l]·x[l, d] ≤ cap[d]``.  Variables:
    ``x[l, d]`` (layer on device, binary), ``z[k, a, b]`` (the device changes
    from ``a`` to ``b`` before layer ``k``: ``z ≥ x[k-1, a] + x[k, b] − 1``,
    and minimisation keeps it at the product since its cost is ≥ 0), ``p[d]``
    (the device's peak working set).  Returns ``(value, device per layer)``,
    or None when no placement fits.

    Example (the fast device 1 is too small for layer 1)::

        >>> T = np.array([[1.0, 0.1], [1.0, 0.1]])
        >>> X = np.zeros((3, 2, 2)); X[1] = X[2] = [[0, 0.01], [0.01, 0]]
        >>> v, dev = chain_latency_milp(T, X, 0.0, 0, 0, w=[1, 5], a=[0, 0], cap=[10, 4])
        >>> round(v, 6), dev.tolist()
        (1.11, [1, 0])
    """
    T = np.asarray(T, dtype=float)
    L, D = T.shape
    X = np.asarray(X, dtype=float)
    ov = np.broadcast_to(np.asarray(ov, dtype=float), (D,))
    w, a, cap = (np.asarray(v, dtype=float) for v in (w, a, cap))
    pairs = [(p, q) for p in range(D) for q in range(D) if p != q]
    nx, nz = L * D, (L - 1) * len(pairs)
    n = nx + nz + D
    xi = lambda l, d: l * D + d  # noqa: E731
    zi = lambda k, j: nx + (k - 1) * len(pairs) + j  # noqa: E731
    c = np.zeros(n)
    c[:nx] = T.ravel()
    for d in range(D):
        c[xi(0, d)] += X[0, src, d] + ov[d]
        c[xi(L - 1, d)] += X[L, d, sink]
    for k in range(1, L):
        for j, (p, q) in enumerate(pairs):
            c[zi(k, j)] = X[k, p, q] + ov[q]
    rows = Rows(n)
    row = rows.add

    for l in range(L):
        row([(xi(l, d), 1.0) for d in range(D)], 1.0, 1.0)
    for k in range(1, L):
        for j, (p, q) in enumerate(pairs):
            row([(zi(k, j), 1.0), (xi(k - 1, p), -1.0), (xi(k, q), -1.0)], -1.0, np.inf)
    for d in range(D):
        row([(xi(l, d), w[l]) for l in range(L)] + [(nx + nz + d, 1.0)], -np.inf, cap[d])
        for l in range(L):
            if a[l] > 0:
                row([(nx + nz + d, 1.0), (xi(l, d), -a[l])], 0.0, np.inf)
    x = rows.solve(c, integer=nx, upper=np.r_[np.ones(nx + nz), np.full(D, np.inf)])
    if x is None:
        return None
    return float(c @ x), np.argmax(x[:nx].reshape(L, D), axis=1)
