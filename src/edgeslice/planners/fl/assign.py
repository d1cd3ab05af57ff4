"""Assignments of a block's paths to devices: all of them, or one per symmetry class (paths of identical costs).
"""

from __future__ import annotations

import numpy as np

from edgeslice.planners.fl.flowshop import block_times
from edgeslice.planners.fl.space import BlockPaths


def symmetry_classes(bp: BlockPaths) -> list[list[int]]:
    """Paths with identical costs everywhere (compute on every device, every transfer), in index order.

    Swapping two such paths changes nothing in any schedule, so an exact
    search only needs how many paths of each class go to each device.
    """
    classes: dict[bytes, list[int]] = {}
    for p in range(bp.n):
        key = np.concatenate([bp.comp[p].ravel(), bp.up[p].ravel(), bp.down[p].ravel()]).tobytes()
        classes.setdefault(key, []).append(p)
    return list(classes.values())


def _compositions(n: int, k: int):
    """Every way to write ``n`` as ``k`` non-negative integers, in lexicographic order."""
    if k == 1:
        yield (n,)
        return
    for x in range(n, -1, -1):
        for rest in _compositions(n - x, k - 1):
            yield (x,) + rest


def class_assignments(classes: list[list[int]], P: int, D: int) -> np.ndarray:
    """One representative assignment per multiset of (class, device) counts (rows of an ``N × P`` array)."""
    per_class = []
    for members in classes:
        opts = []
        for comp in _compositions(len(members), D):
            row = []
            for d, cnt in enumerate(comp):
                row += [d] * cnt
            opts.append(row)
        per_class.append((members, opts))
    rows = [np.zeros(P, dtype=np.int64)]
    for members, opts in per_class:
        new = []
        for r in rows:
            for o in opts:
                r2 = r.copy()
                r2[members] = o
                new.append(r2)
        rows = new
    return np.array(rows, dtype=np.int64)


def all_assignments(P: int, D: int) -> np.ndarray:
    """Every assignment of ``P`` paths to ``D`` devices (``D ** P`` rows)."""
    return np.array(np.unravel_index(np.arange(D ** P), (D,) * P), dtype=np.int64).T


def best_assignment(bp: BlockPaths, h_in: int, h_out: int, *, exhaustive: bool = True) -> tuple[float, tuple[int, ...]]:
    """The optimal assignment of the block's paths (with MW order) for ``(h_in, h_out)``.

    ``exhaustive`` tries all ``D ** P``; otherwise one per symmetry class count
    (:func:`symmetry_classes`) — the same optimum, far fewer candidates.
    """
    D = bp.comp.shape[1]
    A = all_assignments(bp.n, D) if exhaustive else class_assignments(symmetry_classes(bp), bp.n, D)
    t = block_times(bp, A, h_in, h_out)
    k = int(np.argmin(t))
    return float(t[k]), tuple(int(x) for x in A[k])
