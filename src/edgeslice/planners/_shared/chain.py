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
