"""The search machinery of ``fl-psomw`` and ``fl-dpls``: particle decoding and repair, local search, the count-family DP seed.
"""

from __future__ import annotations

import numpy as np

from edgeslice.planners.fl.assign import _compositions, best_assignment
from edgeslice.planners.fl.exact import _keep_best
from edgeslice.planners.fl.flowshop import block_time, block_times_many
from edgeslice.planners.fl.space import FLSpace


def by_rank(counts, src: int) -> list[int]:
    """The device of each path by rank (rank 0: the smallest input region): ``counts[d]`` paths on each edge
    server ``d``, servers in device order, the rest on ``src`` — the rule that turns path counts into an
    assignment (the PSO's share genes, :func:`count_seed`'s family)."""
    row = []
    for d, c in enumerate(counts):
        if d != src:
            row += [d] * int(c)
    return row + [src] * (sum(int(c) for c in counts) - len(row))


class _Decoder:
    """Particle position (in [0, 1]^n) → a valid FL solution, repaired; fitness by the fast model + chain DP.

    A particle has ``slots`` block slots, each ``4 + D`` genes: *active*
    (> 0.5), *start* (which spatial unit the block starts at), *length* (1 to
    ``max_block`` units), *layout* (index into the layout menu), then one
    *share* gene per device: the block's ``P`` paths are split over the devices
    in proportion to ``max(0, share - 0.25)²`` (largest remainder; all zero:
    all local — so each device is left out with probability 1/4), the paths with the smallest input regions going to the edge
    servers first, in device order, the rest staying on the source.  Repair, so every
    particle decodes to a valid solution: a block is cut at the end of its
    spatial run; active blocks are sorted by start and a block overlapping or
    touching the previous one starts one unit after it (two blocks need a whole
    unit between them), or is dropped when nothing is left; a layout that does
    not fit the block's output map becomes the largest one that fits with no
    more paths (else the fewest-path one that fits, else the block is
    dropped).  The repaired genes are written back into the particle.  The
    whole units around the blocks are placed optimally by the chain DP and
    each block's paths are ordered by Minimizing Waiting.  Which individual
    path goes where beyond this rule is left to the local search
    (:meth:`polish`).
    """

    def __init__(self, space: FLSpace, slots: int = 3):
        self.s = space
        self.nl = len(space.layouts)
        self.pmax = max(r * c for r, c in space.layouts)
        self.slots = max(1, int(slots))
        self.width = 4 + space.D
        self.dim = self.slots * self.width
        self.starts = [u for u in range(space.U) if space.spatial[u]]
        self.cache: dict = {}
        self.block_cache: dict = {}
        self.reopt: dict = {}
        self.evaluations = 0

    def _fit_layout(self, i: int, j: int, li: int) -> int | None:
        s = self.s
        if s.usable(i, j, s.layouts[li]):
            return li
        want = s.layouts[li][0] * s.layouts[li][1]
        ok = [k for k in range(self.nl) if s.usable(i, j, s.layouts[k])]
        if not ok:
            return None
        size = lambda k: s.layouts[k][0] * s.layouts[k][1]  # noqa: E731
        fewer = [k for k in ok if size(k) <= want]
        return max(fewer, key=lambda k: (size(k), -k)) if fewer else min(ok, key=lambda k: (size(k), k))

    def decode(self, x: np.ndarray) -> tuple:
        s = self.s
        if not self.starts:
            return ()
        slots = []
        for q in range(self.slots):
            o = q * self.width
            if x[o] <= 0.5:
                continue
            i = self.starts[min(len(self.starts) - 1, int(x[o + 1] * len(self.starts)))]
            n = 1 + min(s.max_block - 1, int(x[o + 2] * s.max_block))
            j = i
            while j < s.U and j - i < n and s.spatial[j] and s.run_start[j] == s.run_start[i]:
                j += 1
            slots.append((i, j, q))
        slots.sort()
        blocks = []
        last_end = -1
        for i, j, q in slots:
            o = q * self.width
            if i <= last_end:  # overlaps or touches the previous block
                i = last_end + 1
                if i >= j:
                    x[o] = 0.45
                    continue
                x[o + 1] = (self.starts.index(i) + 0.5) / len(self.starts)
            li = min(self.nl - 1, int(x[o + 3] * self.nl))
            fl = self._fit_layout(i, j, li)
            if fl is None:
                x[o] = 0.45
                continue
            if fl != li:
                x[o + 3] = (fl + 0.5) / self.nl
            x[o + 2] = (j - i - 0.5) / s.max_block
            lay = s.layouts[fl]
            blocks.append((i, j, lay, self.assignment(i, j, lay, x[o + 4: o + 4 + s.D])))
            last_end = j
        return tuple(blocks)

    def assignment(self, i, j, lay, shares) -> tuple[int, ...]:
        """Paths of block (i, j) in ``lay`` over devices by ``shares`` (see the class docstring)."""
        s = self.s
        P = lay[0] * lay[1]
        w = np.maximum(0.0, np.asarray(shares, dtype=float) - 0.25) ** 2  # below 0.25: no path on that device
        if w.sum() <= 0:
            return (s.src,) * P
        raw = P * w / w.sum()
        cnt = np.floor(raw).astype(np.int64)
        for d in sorted(range(s.D), key=lambda d: (-(raw[d] - cnt[d]), d))[: P - int(cnt.sum())]:
            cnt[d] += 1
        bp = s.paths(i, j, lay)
        order = sorted(range(P), key=lambda p: (bp.in_bytes[p], p))
        assign = [s.src] * P
        for p, d in zip(order, by_rank(cnt, s.src)):
            assign[p] = d
        return tuple(assign)

    def best_counts(self, i, j, lay, hin, hout) -> tuple[int, ...]:
        """The block's best assignment for ``(h_in, h_out)``, one candidate per symmetry-class count (memoised)."""
        key = (i, j, lay, hin, hout)
        a = self.reopt.get(key)
        if a is None:
            a = self.reopt[key] = best_assignment(self.s.paths(i, j, lay), hin, hout, exhaustive=False)[1]
        return a

    def table(self, i, j, lay, assign) -> np.ndarray:
        key = (i, j, lay, assign)
        t = self.block_cache.get(key)
        if t is None:
            s = self.s
            bp = s.paths(i, j, lay)
            t = np.full((s.D, s.D), np.inf)
            for hin in (s.src,):  # note fl-space: a block's input is on the IoT device
                for hout in (range(s.D) if j < s.U else (s.sink,)):
                    t[hin, hout] = block_time(bp, assign, hin, hout, shared=s.shared)[0]
            self.block_cache[key] = t
        return t

    def fitness(self, key: tuple) -> tuple[float, list]:
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        self.evaluations += 1
        s = self.s
        forced = np.zeros(s.U, dtype=bool)
        tables = {}
        for i, j, lay, assign in key:
            forced[i:j] = True
            tables[(i, j)] = self.table(i, j, lay, assign)
        hit = self.cache[key] = s.dp(tables, forced)
        return hit

    def neighbours(self, key: tuple):
        """Solutions one move away: one path to another device, two paths swapped, another layout, a block edge
        moved (tiles keeping their devices, or re-split by the shares), a block removed or added."""
        s = self.s
        ends = {(ch[1], ch[2]): (ch[3], ch[4]) for ch in self.fitness(key)[1] if ch[0] == "block"}
        for b, (i, j, lay, assign) in enumerate(key):
            rest = key[:b] + key[b + 1:]
            hin, hout = ends[(i, j)]
            shares = 0.25 + 0.75 * np.sqrt(np.bincount(np.asarray(assign), minlength=s.D) / len(assign))
            for lay2 in s.layouts:  # the block's offloading re-decided for its current h_in, h_out, in each layout
                if s.usable(i, j, lay2):
                    yield rest[:b] + ((i, j, lay2, self.best_counts(i, j, lay2, hin, hout)),) + rest[b:]
            for p in range(len(assign)):
                for d in range(s.D):
                    if d != assign[p]:
                        yield rest[:b] + ((i, j, lay, assign[:p] + (d,) + assign[p + 1:]),) + rest[b:]
                for q in range(p + 1, len(assign)):
                    if assign[q] != assign[p]:
                        a2 = list(assign)
                        a2[p], a2[q] = a2[q], a2[p]
                        yield rest[:b] + ((i, j, lay, tuple(a2)),) + rest[b:]
            for lay2 in s.layouts:
                if lay2 != lay and s.usable(i, j, lay2):
                    yield rest[:b] + ((i, j, lay2, self.assignment(i, j, lay2, shares)),) + rest[b:]
            lo = key[b - 1][1] + 1 if b else 0
            hi = key[b + 1][0] - 1 if b + 1 < len(key) else s.U
            # move either edge of the block anywhere it may go (nearest first), in every layout, keeping the shares:
            # the output map changes size at pooling layers, so a new edge usually wants another layout
            moves = sorted([(i2, j) for i2 in range(lo, j) if i2 != i] + [(i, j2) for j2 in range(i + 1, hi + 1) if j2 != j],
                           key=lambda m: (abs(m[0] - i) + abs(m[1] - j), m))
            for i2, j2 in moves:
                if (i2, j2) in s.block_set:
                    for lay2 in sorted(s.layouts, key=lambda l: (l != lay, l)):
                        if s.usable(i2, j2, lay2):
                            if lay2 == lay:  # the same layout: each tile keeps its device (the tiles correspond)
                                yield rest[:b] + ((i2, j2, lay, assign),) + rest[b:]
                            yield rest[:b] + ((i2, j2, lay2, self.assignment(i2, j2, lay2, shares)),) + rest[b:]
            yield rest
        # add a block in a gap: every candidate block there, fewest paths, its offloading decided for the
        # devices the current solution runs the units before and after it on
        dev_of = {}
        for ch in self.fitness(key)[1]:
            if ch[0] == "whole":
                dev_of[ch[1]] = ch[2]
        taken = np.zeros(s.U + 1, dtype=bool)
        for i, j, _, _ in key:
            taken[max(0, i - 1):j + 1] = True
        for i, j in s.blocks():
            if taken[i:j].any():
                continue
            lay = next((l for l in s.layouts if s.usable(i, j, l)), None)
            if lay is None:
                continue
            hin = s.src  # note fl-space: a block's input is on the IoT device
            hout = dev_of.get(j, s.sink) if j < s.U else s.sink
            yield tuple(sorted(key + ((i, j, lay, self.best_counts(i, j, lay, hin, hout)),)))

    def polish(self, key: tuple, budget: int) -> tuple:
        """First-improvement local search from ``key`` (at most ``budget`` new evaluations)."""
        best = self.fitness(key)[0]
        start = self.evaluations
        improved = True
        while improved and self.evaluations - start < budget:
            improved = False
            for nb in self.neighbours(key):
                f = self.fitness(nb)[0]
                if f < best - 1e-15:
                    key, best, improved = nb, f, True
                    break
                if self.evaluations - start >= budget:
                    break
        return key


def count_seed(space: FLSpace) -> tuple[float, tuple]:
    """``(time, solution key)``: a whole FL solution from a chain DP over *every* block, each block restricted to its count family.

    The *count family* of a (block, layout) gives each edge server some
    number of paths — the smallest input regions first, servers in device
    order, the rest local (the rule the PSO's share genes decode by) — one
    assignment per way of writing ``P`` as ``D`` counts, ``P + 1`` with one
    server.  Every usable (block, layout) is scored on its whole family at
    once (:func:`~edgeslice.planners.fl_model.block_times_many`, one numpy
    pass per layout and ``h_out``); the chain DP (:meth:`FLSpace.dp`) then
    picks the block structure and the placement of the whole units around
    it.  So the time is the optimum over every solution whose blocks take
    count-family assignments (tested against enumeration), and the key (as
    :class:`_Decoder` uses them) achieves it.  PSOMW starts a local search
    from it: it finds block structures the swarm's random starts miss (two
    fused blocks, a block deep in the model), and the local search then moves
    single paths off the family.
    """
    D, src = space.D, space.src
    ends: dict[int, list[int]] = {}
    for (i, j) in space.blocks():
        ends.setdefault(j, []).append(i)
    tables: dict = {}
    payload: dict = {}
    for lay in space.layouts:
        P = lay[0] * lay[1]
        cands, comp, inb, outb = [], [], [], []
        for j, starts in ends.items():
            if space.fits(j, lay):
                c, ib, ob, ok = space.block_arrays(j, lay, starts)
                cands += [(i, j) for i, good in zip(starts, ok) if good]
                comp.append(c[ok])
                inb.append(ib[ok])
                outb.append(np.broadcast_to(ob, ib[ok].shape))
        if not cands:
            continue
        comp, inb, outb = np.concatenate(comp), np.concatenate(inb), np.concatenate(outb)
        # the family by rank, then per block by its paths' ranks (stable: ties in path order, as _Decoder.assignment)
        ranked = np.array([by_rank(cnt, src) for cnt in _compositions(P, D)], dtype=np.int64)
        rank = np.argsort(inb, axis=1, kind="stable")
        A = np.empty((len(cands), len(ranked), P), dtype=np.int64)
        np.put_along_axis(A, np.broadcast_to(rank[:, None, :], A.shape), np.broadcast_to(ranked, A.shape), axis=2)
        up = inb[:, :, None] * space.ser1[src][None, None, :]
        for hout in range(D):  # (a block ending the model with h_out not the sink: the DP never reads it)
            T = block_times_many(comp, up, outb[:, :, None] * space.ser1[:, hout][None, None, :], space.lat, A, src, hout)
            best = np.argmin(T, axis=1)
            for k in range(len(cands)):
                _keep_best(tables, payload, cands[k], src, hout, D, T[k, best[k]], (lay, A[k, best[k]]))
    val, choices = space.dp(tables)
    out = []
    for ch in choices:
        if ch[0] == "block":
            lay, row = payload[(ch[1], ch[2], ch[4])]
            out.append((ch[1], ch[2], lay, tuple(int(x) for x in row)))
    return val, tuple(out)
